/*
 * ipk.h - internal declarations shared by the core and the transports: the channel object,
 * parsed addresses, options, deadlines, errors and the system-call wrappers.
 */
#ifndef IPK_INT_H
#define IPK_INT_H

#define _GNU_SOURCE 1
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "codec.h" /* enum ipk__framing */
#include "ipckit.h"

#define IPK__DEFAULT_MAX ((size_t)16 << 20) /* default largest message: 16 MiB */
#define IPK__HARD_MAX    ((size_t)1 << 31)  /* no message can exceed 2 GiB - 1 (fits a long) */

/* Marks the functions a small message's send or receive passes through. GCC places them
 * together (.text.hot), so one call touches a few code pages instead of one per source file:
 * where the kernel flushes the TLB on every system call (page-table isolation without PCID),
 * each extra page is a TLB miss per call (docs/PERFORMANCE.md, issue 16 item 4). */
#define IPK__HOTPATH __attribute__((hot))

/* Deadlines: absolute CLOCK_MONOTONIC nanoseconds, or one of these. */
#define IPK__DL_NOW     ((int64_t)0)
#define IPK__DL_FOREVER INT64_MAX

/* ---- addresses (addr.c; numbers and the key/value list in parse.c) ---- */

struct ipk__transport;

typedef struct ipk__kv {
    char *key;
    char *val;
    struct ipk__kv *next;
} ipk__kv;

typedef struct ipk__addr {
    const struct ipk__transport *tr; /* the registry's entry for the scheme */
    const char *scheme_name;
    char *body;     /* everything between "scheme:" (and "//") and "?" */
    ipk__kv *query; /* options given in the address */
    union {
        struct {            /* tcp, udp */
            char host[256]; /* literal or name; "" means loopback (listen) */
            int any;        /* "*": every interface */
            uint16_t port;
        } inet;
        struct {            /* unix, unixgram, unixpacket */
            char path[108]; /* sun_path bytes; abstract names without the leading NUL */
            size_t len;     /* bytes used in path */
            int abstract;
        } un;
        struct { /* mq, shm: "/name" */
            char name[NAME_MAX + 1];
        } posix;
        struct {         /* sysv */
            int literal; /* key given as a number */
            long key;    /* when literal */
            int proj;    /* ftok project id, 1..255 (from ?proj=, default 1) */
        } sysv;
        struct {       /* signal */
            pid_t pid; /* 0 for self */
        } sig;
    } u;
} ipk__addr;

int ipk__addr_parse(ipk__addr *a, const char *url);
void ipk__addr_free(ipk__addr *a);
/* Parses "1234", "64k", "16m", "1g" (powers of 1024) (parse.c). */
int ipk__parse_size(const char *s, size_t *out);
int ipk__parse_long(const char *s, long min, long max, long *out);

/* ---- options (opts.c) ---- */

struct ipk_opts {
    ipk__kv *kv;
};

const char *ipk__opt(const ipk_chan *c, const char *key);
/* Typed getters: 0 with *out set (def when absent), or IPK_EOPTION with the message set. */
int ipk__opt_size(const ipk_chan *c, const char *key, size_t def, size_t *out);
int ipk__opt_long(const ipk_chan *c, const char *key, long min, long max, long def, long *out);
int ipk__opt_bool(const ipk_chan *c, const char *key, int def, int *out);
ipk__kv *ipk__kv_dup(const ipk__kv *kv);
int ipk__kv_set(ipk__kv **list, const char *key, const char *val);
void ipk__kv_free(ipk__kv *kv);

/* ---- the channel (chan.c) ---- */

/* How to write to a descriptor without SIGPIPE: sockets use MSG_NOSIGNAL; pipes block the
 * signal around the write unless the process ignores it. */
enum ipk__wkind { IPK__W_PIPE = 0, IPK__W_SOCK = 1 };

enum ipk__role { IPK__LISTENER = 1, IPK__DIALER, IPK__ACCEPTED };

/* Receive buffer of a stream channel (stream.c). Bytes [off, off+len) are unread. */
typedef struct ipk__rbuf {
    char *buf;
    size_t cap, off, len;
    size_t frame; /* with have_frame: length of the frame whose payload is pending; without:
                   * the last frame's length (stream.c reads a large one's successor directly) */
    int have_frame;
    int eof;
    size_t pos; /* bytes read from the stream so far (modulo SIZE_MAX + 1) */
    /* ipk_peek (stream.c): a message is held in place at buf + off, peek_len bytes long;
     * ipk_release consumes peek_end bytes (payload, and a line's newline: a len frame's header
     * is consumed when it is parsed). Nothing else moves the buffer while one is held. */
    int peeked;
    size_t peek_len, peek_end;
} ipk__rbuf;

/* Output not yet written: bytes [off, len) of buf (cap bytes). Without coalescing, the rest of a
 * frame a timed-out send left half-written; with it (coalesce.c), also whole small frames that
 * ipk_send accepted and will write together. Flushed before anything else is sent. */
typedef struct ipk__wbuf {
    char *buf;
    size_t len, off, cap;
} ipk__wbuf;

/* Send coalescing of a stream socket (coalesce.c). The owner changes out and the fields below
 * only with mu held; the flusher thread only ever trylocks mu. */
typedef struct ipk__co {
    int on;                /* small frames are buffered (flush=US, US > 0) */
    int listed;            /* on the process's list of coalescing channels */
    int64_t bound;         /* ns a buffered byte may wait for the flusher */
    pthread_mutex_t mu;    /* guards c->out and err against the flusher */
    _Atomic int64_t since; /* when out went from empty to non-empty; 0: empty */
    _Atomic int err;       /* a write error the flusher met (sticky), 0 if none */
    struct ipk_chan *next; /* the list (coalesce.c), guarded by its lock */
    struct ipk_chan **prev;
} ipk__co;

struct ipk_chan {
    const struct ipk__transport *tr;
    ipk__addr addr;
    ipk__kv *opts; /* address query merged with ipk_opts (the latter wins) */
    char *name;    /* ipk_addr(): resolved address */
    char *errmsg;  /* ipk_chan_errmsg(): detail of the last failed call, or NULL */
    enum ipk__role role;
    int rfd, wfd; /* descriptors the core may poll/close; -1 when unused */
    int owner;    /* created the object: removes it on close unless keep */
    int keep;
    int perm;   /* mode for created objects (default 0600) */
    size_t max; /* largest message either way */
    enum ipk__framing framing;
    int broken;            /* sticky fatal error (stream desynchronised, peer gone) */
    size_t need;           /* see ipk_needed() */
    int64_t t_call;        /* ipk_recvx: the clock its deadline was computed from (a timeout
                            * > 0), else 0; a transport that needs the time left at its start
                            * reads this instead of the clock again (sock.c) */
    int sigpipe_ign;       /* SIGPIPE was ignored at open: pipe writes skip the signal mask dance */
    enum ipk__wkind wkind; /* set by the transport: c->wfd is a socket or a pipe */
    int status;            /* exec: wait status after close, else -1 */
    pid_t peer_pid;
    uid_t peer_uid;
    gid_t peer_gid;
    ipk__rbuf in;
    ipk__wbuf out;
    ipk__co co;
    signed char fdmode[2];  /* stream.c: O_NONBLOCK state last set on rfd [0] and wfd [1]:
                               0 unknown, 1 blocking, 2 non-blocking (see ipk__fd_mode) */
    void *tp;               /* transport-private state */
    struct ipk__preg *preg; /* poller.c: this channel's registrations, linked by next_in_chan */
};

/* Send coalescing (coalesce.c; stream.c buffers). co_open turns it on for c (bound: ns a buffered
 * byte may wait) and lists c for the flusher; co_close unlists it (before its descriptor closes).
 * With c->co.mu held: co_armed after c->out went from empty to non-empty (starts or wakes the
 * flusher as needed; an error when the flusher cannot run), co_push writes what the socket takes
 * now without blocking, co_error is the sticky write error (0 if none). */
#define IPK__CO_DEFAULT_US 200     /* flush= default: a buffered byte waits at most ~200 us */
#define IPK__CO_MAX_US     1000000 /* flush= at most 1 s */
void ipk__co_open(ipk_chan *c, int64_t bound_ns);
void ipk__co_close(ipk_chan *c);
int ipk__co_armed(ipk_chan *c);
void ipk__co_push(ipk_chan *c);
int ipk__co_error(ipk_chan *c);
/* Without c->co.mu: co_push unless the owner holds the lock (a poller about to wait). */
void ipk__co_nudge(ipk_chan *c);

/* Sets c->name (copied). */
int ipk__set_name(ipk_chan *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the poller (poller.c) ---- */

/* Called by the core: ipk_close() takes c out of every poller; a receive that leaves a whole
 * message buffered in user space tells the pollers to report it. */
void ipk__poll_forget(ipk_chan *c);
void ipk__poll_pending(ipk_chan *c);

/* ---- errors (error.c) ---- */

/* Records the detailed message for the calling thread and returns code. */
int ipk__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": <strerror(code)>". */
int ipk__errsys(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ipk__err_clear(void);

/* ---- time and system calls (sys.c) ---- */

int64_t ipk__now(void);
int64_t ipk__deadline(int timeout_ms);
/* Milliseconds left (rounded up), -1 for forever, 0 when passed. */
int ipk__remaining_ms(int64_t dl);
/* The code for "the deadline passed": -EAGAIN for DL_NOW, IPK_ETIMEDOUT otherwise. */
int ipk__expired(int64_t dl);
/* Waits until fd polls for `events` (POLLIN/POLLOUT), keeping dl across EINTR. Returns the
 * revents (> 0), or ipk__expired(dl). POLLHUP/POLLERR count as ready: the next I/O says why. */
int ipk__wait_fd(int fd, short events, int64_t dl);
/* The same for several descriptors (revents set in p[]): the number ready, or ipk__expired(dl). */
struct pollfd;
int ipk__wait_fds(struct pollfd *p, int n, int64_t dl);

/* For a mechanism with no descriptor to poll (System V queues, a full signal queue): waits
 * before the next non-blocking attempt - first IPK__BACKOFF_YIELDS times a sched_yield(), then
 * a sleep of 50 us doubling up to 2 ms, never past dl (start *step_us at 0). Returns 0 to try
 * again, or the expiry code once the deadline has passed. */
#define IPK__BACKOFF_YIELDS 16u
int ipk__backoff(int64_t dl, unsigned *step_us);
/* The number in a /proc file such as /proc/sys/kernel/msgmax, or def when it cannot be read. */
long ipk__proc_long(const char *path, long def);

/* EINTR-retrying wrappers returning -errno; they go through the fault-injection table. */
ssize_t ipk__read(int fd, void *buf, size_t n);
ssize_t ipk__readv(int fd, const struct iovec *iov, int n);
ssize_t ipk__writev(int fd, const struct iovec *iov, int n, enum ipk__wkind kind, int sigpipe_ign);
int ipk__set_nonblock(int fd);
/* Puts fd in blocking (blocking != 0) or non-blocking mode unless *state says it already is;
 * *state caches the mode (0 unknown, 1 blocking, 2 non-blocking). */
int ipk__fd_mode(int fd, signed char *state, int blocking);
int ipk__close_fd(int fd);
/* Whether SIGPIPE is currently ignored in this process (then pipe writes need no mask). */
int ipk__sigpipe_ignored(void);

/* A listener found its object (FIFO, queue) in place: 0 when it may use it (the caller owns
 * it, its mode is within perm), else -EEXIST with the reason. name is for the message. */
int ipk__listen_adopt(const char *name, uid_t uid, mode_t mode, int perm);

/* Whether path still names the file (dev, ino) that a channel created: 1 yes; 0 gone, or
 * replaced by someone else's (which its close must leave); or, when that cannot be told, a
 * negative code with a message (the object is then left, and close says so). name is for the
 * message. */
int ipk__still_ours(const char *name, const char *path, dev_t dev, ino_t ino);

/* After an EMFILE from a call that also says it for a limit of its own (inotify_init1: the
 * user's instances; mq_open: RLIMIT_MSGQUEUE): -EMFILE naming RLIMIT_NOFILE when the
 * descriptor table is what is full, else 0 (the caller names its own limit). Keeps errno. */
int ipk__emfile_fds(const char *name);

/* Every other system call, and fault injection for tests (SQLite-style), in sys.h. */
#include "sys.h"

/* Small string helper: snprintf into buf that never overflows; returns bytes that would be
 * written (like snprintf). */
size_t ipk__strlcpy(char *dst, const char *src, size_t cap);
/* For a transport's info(): runs print(f, a) on an in-memory stream and copies the text into
 * buf (cap bytes, always terminated). Returns the full length, like snprintf, or -ENOMEM. */
long ipk__info_print(const ipk__addr *a, char *buf, size_t cap,
                     void (*print)(FILE *f, const ipk__addr *a));

#endif
