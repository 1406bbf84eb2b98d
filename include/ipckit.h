/*
 * ipckit.h - one message API over every classic Linux IPC mechanism.
 *
 * A channel (ipk_chan) is made by ipk_listen() (bind, create, own) or ipk_dial() (connect, open)
 * from an address such as "unix:/run/app.sock", "tcp://127.0.0.1:9000" or "mq:/jobs?prio=5".
 * One ipk_send() is one ipk_recv() on every transport: message boundaries are always kept.
 *
 * Error model: every call returns 0 (or a length, or a count) on success and a negative code on
 * failure. A code is either a negated errno value (-EACCES, -ECONNREFUSED, -EAGAIN, ...) or one of
 * the IPK_E* codes below. errno is never the interface. ipk_strerror() names a code;
 * ipk_errmsg() gives the detailed message of the last failure in the calling thread (which object,
 * which limit, which sizes).
 *
 * Timeouts: timeout_ms < 0 waits forever, 0 never blocks (-EAGAIN when nothing can be done now),
 * > 0 is a deadline kept across EINTR and partial reads and writes; IPK_ETIMEDOUT when it passes.
 *
 * The library never prints, never exits, never installs a signal handler, and never lets SIGPIPE
 * kill the caller. Descriptors it opens are close-on-exec. A channel is used by one thread at a
 * time, and by one process: after fork(), use it in the parent or in the child, not both (their
 * descriptors share one open file description, whose blocking mode ipckit sets per call).
 * Different channels are independent.
 */
#ifndef IPCKIT_H
#define IPCKIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IPK_VERSION_MAJOR  0
#define IPK_VERSION_MINOR  1
#define IPK_VERSION_PATCH  0
#define IPK_VERSION_STRING "0.1.0"

/* ipckit's own error codes; all other negative codes are -errno. */
#define IPK_EOF       (-4095) /* the peer closed the channel at a message boundary */
#define IPK_ETIMEDOUT (-4094) /* the deadline passed before the operation could finish */
#define IPK_EMSGSIZE  (-4093) /* message larger than the buffer, the maximum, or the path */
#define IPK_EPROTO    (-4092) /* the peer broke the framing: short frame, oversized header, ... */
#define IPK_EADDR     (-4091) /* malformed address */
#define IPK_ENOTBUILT (-4090) /* the transport is not built in this version */
#define IPK_EOPTION   (-4089) /* unknown option, or an option value out of range */
#define IPK_ENOTSUP   (-4088) /* the operation does not apply to this transport or role */
#define IPK_ECLOSED   (-4087) /* the channel was shut down after an earlier fatal error */

#if defined(__GNUC__)
#define IPK_API __attribute__((visibility("default")))
#else
#define IPK_API
#endif

typedef struct ipk_chan ipk_chan;
typedef struct ipk_opts ipk_opts;

/* One message for ipk_sendv(). */
typedef struct ipk_iov {
    const void *base;
    size_t len;
} ipk_iov;

/*
 * Per-message metadata, for the transports that carry it. On send, fields that do not apply are
 * ignored; on receive, fields the transport does not report are set to 0 / -1.
 */
typedef struct ipk_msginfo {
    unsigned prio; /* mq: priority (send: overrides ?prio=; recv: the message's priority) */
    long type;     /* sysv: message type (send: > 0; recv: the received type) */
    int signo;     /* signal: the signal that carried the message (recv) */
    pid_t pid;     /* signal, unix: the sender's pid (recv), -1 when unknown */
    uid_t uid;     /* signal, unix: the sender's uid (recv), (uid_t)-1 when unknown */
    /* Room for fields of later versions, so that the struct keeps its size and this version's
     * programs keep working with a later library: zero it before a send (IPK_MSGINFO_INIT or
     * memset); a receive sets it. */
    uint64_t reserved_[6];
} ipk_msginfo;

#define IPK_MSGINFO_INIT                                                                           \
    {                                                                                              \
        0, 0, 0, -1, (uid_t)-1,                                                                    \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Options. Every key may also be given in the address query ("?key=value&key=value"); a value set
 * here overrides the same key in the address. Unknown keys make listen/dial fail with IPK_EOPTION.
 * Common keys: max (largest message, e.g. 16m), framing (len|raw|line), perm (octal mode of
 * created objects), keep (1: the owner does not remove the object on close). Transport keys are in
 * ipckit-transports(7). */
IPK_API ipk_opts *ipk_opts_new(void);
IPK_API int ipk_opts_set(ipk_opts *o, const char *key, const char *value);
IPK_API void ipk_opts_free(ipk_opts *o);

/* Channels. *out is set only on success. */
IPK_API int ipk_listen(ipk_chan **out, const char *url, const ipk_opts *opts);
IPK_API int ipk_dial(ipk_chan **out, const char *url, const ipk_opts *opts);
IPK_API int ipk_accept(ipk_chan *listener, ipk_chan **peer, int timeout_ms);

/* Sends one whole message or nothing. On a connected unix: or tcp: stream (flush= not 0) a
 * message of up to 8 KiB is coalesced: copied into the channel's 64 KiB output buffer, written
 * with the messages around it when the buffer fills, before this channel receives, waits in a
 * poller, flushes, shuts down or closes, at exit(), and otherwise by a per-process thread within
 * flush=US microseconds (default 200). Order is kept. A write of buffered messages that fails
 * (peer gone) is returned by every later send, sendv, flush, shutdown and close: those messages
 * did not reach the peer, as bytes in a kernel socket buffer would not. flush=0: written through.
 * See ipckit(3), "Send coalescing". */
IPK_API int ipk_send(ipk_chan *c, const void *msg, size_t len, int timeout_ms);
IPK_API long ipk_recv(ipk_chan *c, void *buf, size_t cap, int timeout_ms);
IPK_API int ipk_sendx(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                      int timeout_ms);
IPK_API long ipk_recvx(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int timeout_ms);

/* Sends up to n messages, in order, with as few system calls as the transport allows (coalesced
 * as by ipk_send on a unix: or tcp: stream, one writev on another stream, one sendmmsg on a
 * datagram socket). Returns how many were sent (>= 1), or an error when none was. */
IPK_API long ipk_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int timeout_ms);

/* After ipk_recv() returned IPK_EMSGSIZE because cap was too small: the size of the message that
 * did not fit (it is still queued; call again with a larger buffer). 0 when unknown. */
IPK_API size_t ipk_needed(const ipk_chan *c);

/* Whether a whole message is already buffered in the channel, so that ipk_recv() will not block
 * even though ipk_fd() may not poll readable. */
IPK_API int ipk_pending(const ipk_chan *c);

/* Writes buffered output (coalesced messages, a frame a timed-out send had started), waiting up
 * to timeout_ms. 0 when nothing is left; the sticky error of a failed coalesced write. */
IPK_API int ipk_flush(ipk_chan *c, int timeout_ms);

/* A descriptor to poll for readability (POLLIN), or IPK_ENOTSUP where the mechanism has none. */
IPK_API int ipk_fd(const ipk_chan *c);

/* The channel's address, resolved (e.g. the port a "tcp://127.0.0.1:0" listener got). */
IPK_API const char *ipk_addr(const ipk_chan *c);

/* The scheme ("tcp", "mq", ...) of a channel. */
IPK_API const char *ipk_scheme(const ipk_chan *c);

/* Credentials of the peer of a connected unix socket or of the child of exec:. */
IPK_API int ipk_peer(const ipk_chan *c, pid_t *pid, uid_t *uid, gid_t *gid);

/* Ends the sending direction of a stream channel: what was sent is delivered, then the peer
 * sees end of stream, and receiving goes on (e.g. closing sort's input to read its output
 * through exec:). Further sends fail. IPK_ENOTSUP on message transports. */
IPK_API int ipk_shutdown(ipk_chan *c, int timeout_ms);

/* Releases the channel and, when it owns the object (listener of fifo, mq, shm, sysv, unix path,
 * file) and keep is not set, removes it - unless messages still wait in it for a receiver (see
 * ipk_undelivered()): then the object stays, so that no message a send reported as sent is
 * destroyed by a close. keep=1 never removes, keep=0 removes even then. Buffered output (coalesced
 * messages, what a timed-out send left) is written first (up to 1 s); if that fails, or a
 * coalesced write had failed, its error is returned. For exec:, closes
 * the child's stdin, reaps it and returns its wait status (>= 0, as from waitpid). Always frees the
 * channel, also on error. */
IPK_API int ipk_close(ipk_chan *c);

/*
 * The poller: one wait over channels of any scheme (shm: and sysv: included, which have no
 * descriptor of their own). Level-triggered: a channel is reported for as long as it is ready,
 * and a message already buffered in user space (ipk_pending()) makes it readable even when its
 * descriptor is not. What "ready" means per transport is in ipckit-transports(7).
 *
 * ipk_poller_add: c joins the poller with an interest (IPK_POLLIN: a message can be received,
 * or on a listener a connection accepted; IPK_POLLOUT: a message can be sent) and a user
 * pointer returned with its events. A channel is in one poller at a time. ipk_poller_mod changes
 * the interest, ipk_poller_del removes it; ipk_close() removes a channel from every poller it is
 * in. Add, mod and del may be called from another thread while one thread waits.
 *
 * ipk_poller_wait: fills up to max events and returns how many (>= 1), or -EAGAIN (timeout 0)
 * / IPK_ETIMEDOUT when nothing became ready in time; EINTR is never returned. IPK_POLLHUP with
 * the interest bits means the descriptor reported hang-up or an error: the next call on the
 * channel says which. One thread waits on a poller at a time.
 *
 * ipk_poller_fd: one descriptor (an epoll instance) that polls readable whenever a wait would
 * find something, so a poller nests in a foreign event loop (libuv, GLib, asyncio): when it is
 * readable, call ipk_poller_wait(p, ev, max, 0) and handle what it returns, until -EAGAIN.
 * Until that -EAGAIN the descriptor may stay readable; after it, the poller is armed.
 */
typedef struct ipk_poller ipk_poller;

#define IPK_POLLIN  0x1u
#define IPK_POLLOUT 0x2u
#define IPK_POLLHUP 0x4u

typedef struct ipk_pollev {
    ipk_chan *chan;
    unsigned events; /* IPK_POLLIN, IPK_POLLOUT, IPK_POLLHUP */
    void *user;
} ipk_pollev;

IPK_API int ipk_poller_new(ipk_poller **out);
IPK_API int ipk_poller_add(ipk_poller *p, ipk_chan *c, unsigned events, void *user);
IPK_API int ipk_poller_mod(ipk_poller *p, ipk_chan *c, unsigned events, void *user);
IPK_API int ipk_poller_del(ipk_poller *p, ipk_chan *c);
IPK_API int ipk_poller_wait(ipk_poller *p, ipk_pollev *ev, int max, int timeout_ms);
IPK_API int ipk_poller_fd(ipk_poller *p);
/* Frees the poller; its channels stay open (and leave it). */
IPK_API void ipk_poller_free(ipk_poller *p);
/* Whether ipk_close() will leave the object this channel owns in place because messages still
 * wait in it for a receiver: > 0 when so (the number of messages for mq: and sysv:, else 1),
 * 0 when close will remove it or removes nothing anyway (a dialer, keep= given, a mechanism
 * that stores no messages: sockets, exec:, signal:). What waits: mq:/sysv: queued messages;
 * shm: ring records not yet received (duplex=1: those sent to the dialer's end), or with
 * mode=segment a posted text not yet read; fifo: bytes in the pipe not yet read (they
 * outlive the close only while a writer keeps the FIFO open); file: any record of a log (a
 * log is never consumed: each reader keeps its own offset), a non-empty file in mode=whole. */
IPK_API long ipk_undelivered(const ipk_chan *c);

/* Zero-copy, where the transport supports it; IPK_ENOTSUP elsewhere.
 * ipk_reserve (shm:): space for a message of len bytes, written in place, then ipk_commit(c, len')
 * with len' <= len. ipk_peek (shm:, and the byte streams unix:, tcp:, fifo:, exec:): waits as
 * ipk_recv does, then returns the next message's length with *p pointing at it in place, valid
 * until ipk_release() (or close); peeking again returns the same one, ipk_recv while it is held
 * is -EINVAL, ipk_release without a peeked message -EINVAL. See ipckit(3). */
IPK_API int ipk_reserve(ipk_chan *c, void **p, size_t len, int timeout_ms);
IPK_API int ipk_commit(ipk_chan *c, size_t len);
IPK_API long ipk_peek(ipk_chan *c, const void **p, int timeout_ms);
IPK_API int ipk_release(ipk_chan *c);

IPK_API const char *ipk_strerror(int err);
/* The detailed message of the last failure in the calling thread ("" when there is none). It
 * names the object, the limit and the sizes involved, e.g. "mq:/jobs: msgsize 1048576 exceeds
 * /proc/sys/fs/mqueue/msgsize_max (8192)". Valid until the next ipckit call in this thread. */
IPK_API const char *ipk_errmsg(void);
/* The detailed message of the last call on channel c that failed ("" when none has), kept with
 * the channel: a failure on another channel, or in another thread, does not replace it. Valid
 * until the next failing call on c or ipk_close(c). */
IPK_API const char *ipk_chan_errmsg(const ipk_chan *c);

/* The schemes: the registry of transports this library knows, built or not.
 * ipk_scheme_at(i) is the i-th scheme name ("unix", "mq", ...), NULL past the end.
 * ipk_scheme_flags() says what kind of channel it makes (0 for an unknown scheme). */
#define IPK_SCHEME_BUILT  0x01u /* implemented in this build (else listen/dial: IPK_ENOTBUILT) */
#define IPK_SCHEME_STREAM 0x02u /* a byte stream carrying frames (framing=len|raw|line) */
#define IPK_SCHEME_ACCEPT 0x04u /* connection-oriented: a listener accepts peers */
#define IPK_SCHEME_DGRAM  0x08u /* a datagram socket: one message per datagram or packet */
#define IPK_SCHEME_QUEUE  0x10u /* a named queue object that outlives its processes */
#define IPK_SCHEME_SIGNAL 0x20u /* signals with a payload */
IPK_API const char *ipk_scheme_at(size_t i);
IPK_API unsigned ipk_scheme_flags(const char *scheme);
IPK_API int ipk_scheme_built(const char *scheme); /* ipk_scheme_flags() & IPK_SCHEME_BUILT */
/* How to write its address ("tcp://HOST:PORT"), a one-line summary, and its i-th option key
 * besides max (NULL past the end). NULL for an unknown scheme. */
IPK_API const char *ipk_scheme_usage(const char *scheme);
IPK_API const char *ipk_scheme_summary(const char *scheme);
IPK_API const char *ipk_scheme_option(const char *scheme, size_t i);

/* A one-screen description of the semantics of url's scheme and the live kernel limits that
 * apply (written into buf, like snprintf). */
IPK_API long ipk_info(const char *url, char *buf, size_t cap);

/* ---- IPC objects on this machine ----
 *
 * The kernel objects that outlive processes - POSIX queues and shared memory, System V queues,
 * FIFOs, Unix socket files, and the kinds no transport creates (named semaphores, System V
 * segments and semaphore sets) - found, named by the ipckit address that opens them, with their
 * holders and whether they may go. Each transport lists the kinds it creates (the registry), so
 * ipckit ls and rm see what every transport of this build makes.
 *
 * A list (ipk_objects) owns its objects; an object is opaque and read through the accessors
 * below, so that a later version can add what it knows about objects without changing a size
 * or a layout a program was built against (unlike a public struct).
 *
 * An object's state, from the evidence of /proc, the kernel's own records and the object:
 *   IPK_OBJ_IN_USE       a live process holds it (open, mapped, attached, bound), or is its owner
 *   IPK_OBJ_STALE        its owner is gone and nothing waits in it: removing it loses nothing
 *   IPK_OBJ_UNDELIVERED  its owner is gone but messages wait to be delivered: it stays unless a
 *                        removal is forced (IPK_OBJ_FORCE)
 *   IPK_OBJ_UNKNOWN      the evidence is incomplete (a process could not be inspected, a queue
 *                        never used, a depth that could not be read)
 */
typedef struct ipk_objects ipk_objects;
typedef struct ipk_object ipk_object;

enum { IPK_OBJ_UNKNOWN = 0, IPK_OBJ_IN_USE = 1, IPK_OBJ_STALE = 2, IPK_OBJ_UNDELIVERED = 3 };
#define IPK_OBJ_FORCE 0x1u /* ipk_object_remove(): also when messages wait (never when in use) */
/* ipk_object_remove(): also another user's object (for root: ipckit rm --all-users). */
#define IPK_OBJ_ALL_USERS 0x2u

/* An empty list. */
IPK_API int ipk_objects_new(ipk_objects **out);
/* Adds every object found: FIFOs and socket files are looked for in dirs (NULL-terminated, 4
 * levels deep; NULL: /tmp and /run), the other kinds live in kernel name spaces. What could not
 * be read is said by ipk_objects_note(); 0 or a negative code (-ENOMEM). */
IPK_API int ipk_objects_scan(ipk_objects *l, const char *const *dirs);
/* Adds the object url names, parsed by its transport's own address grammar (options included:
 * "sysv:FILE?proj=3"); also "sem:/NAME" and "sysv-msg:ID", "sysv-shm:ID", "sysv-sem:ID", the
 * names of ipk_object_url() for kinds that have no scheme. 0; IPK_EADDR or IPK_EOPTION for a
 * malformed address or an unknown option, IPK_ENOTSUP when the scheme names no kernel object
 * (tcp:, exec:, an abstract socket), -ENOENT when the object does not exist. */
IPK_API int ipk_objects_resolve(ipk_objects *l, const char *url);
IPK_API size_t ipk_objects_count(const ipk_objects *l);
IPK_API const ipk_object *ipk_objects_at(const ipk_objects *l, size_t i);
/* Whether some process could not be inspected (holders may be missing: such objects are
 * IPK_OBJ_UNKNOWN rather than stale). */
IPK_API int ipk_objects_partial(const ipk_objects *l);
/* The i-th remark of the scans ("/dev/shm: Permission denied: ..."), NULL past the end. */
IPK_API const char *ipk_objects_note(const ipk_objects *l, size_t i);
IPK_API void ipk_objects_free(ipk_objects *l);

/* The kinds this build knows ("posix-mq", "fifo", ...), NULL past the end. */
IPK_API const char *ipk_object_kind_at(size_t i);

IPK_API const char *ipk_object_kind(const ipk_object *o);
/* The scheme of the transport that creates such objects ("mq"), NULL for the other kinds. */
IPK_API const char *ipk_object_scheme(const ipk_object *o);
/* Its name in its own name space: a path, "/NAME", "@NAME", a System V key "0x0000002a". */
IPK_API const char *ipk_object_name(const ipk_object *o);
/* The address that names it: ipk_objects_resolve() takes it back. */
IPK_API const char *ipk_object_url(const ipk_object *o);
IPK_API long ipk_object_id(const ipk_object *o); /* System V id, else -1 */
IPK_API uid_t ipk_object_uid(const ipk_object *o);
IPK_API unsigned ipk_object_mode(const ipk_object *o); /* permission bits */
/* Bytes the object occupies (a segment), -1 where that does not apply. */
IPK_API long long ipk_object_size(const ipk_object *o);
/* Messages and bytes waiting to be received, as the kernel or the ring header says (mq
 * curmsgs, sysv qnum and cbytes, a shm ring's records, a FIFO's FIONREAD); -1 when unknown or
 * not applicable. */
IPK_API long long ipk_object_messages(const ipk_object *o);
IPK_API long long ipk_object_bytes(const ipk_object *o);
/* The processes that hold it (open, mapped, attached) or that the kernel recorded as its last
 * users; ipk_object_holders() counts those alive. */
IPK_API size_t ipk_object_npids(const ipk_object *o);
IPK_API pid_t ipk_object_pid(const ipk_object *o, size_t i);
IPK_API int ipk_object_holders(const ipk_object *o);
/* 1 its owner is gone, 0 it is alive, -1 cannot tell. */
IPK_API int ipk_object_owner_gone(const ipk_object *o);
IPK_API int ipk_object_state(const ipk_object *o);       /* IPK_OBJ_* */
IPK_API const char *ipk_object_why(const ipk_object *o); /* the evidence for the state */
/* Removes it: refused while in use (-EBUSY) and, unless flags has IPK_OBJ_FORCE, while messages
 * wait in it (-ENOTEMPTY), as its state says. Checks again first that the name still denotes
 * the object inspected (-ESTALE) and, unless forced, that nothing waits in it now; a message
 * sent between that check and the removal is lost with it (the kernel has no removal
 * conditional on emptiness). An object whose owner (ipk_object_uid) is not the caller's
 * effective uid is refused (-EPERM) unless flags has IPK_OBJ_ALL_USERS: a program running as
 * root that removes what a scan found never takes other users' objects by default, and one that
 * is not root is kept from them even where the kernel would let it (a FIFO in a directory anyone
 * may write). With the flag, the caller's rights are the kernel's business. */
IPK_API int ipk_object_remove(const ipk_object *o, unsigned flags);

IPK_API const char *ipk_version(void);

#ifdef __cplusplus
}
#endif
#endif /* IPCKIT_H */
