/*
 * transport.h - the one place where the core and the transports meet.
 *
 * Every transport (src/transport/<family>/) defines one `const ipk__transport ipk__tr_<scheme>`
 * per scheme and registers it with one ipk_transport() line in its folder's CMakeLists.txt; the
 * build generates the registry (registry.c) from those lines, so no other file lists schemes.
 * The core finds a transport by scheme (ipk__transport_find) and calls through this table. A
 * transport never includes another transport, and the core never includes a transport's source.
 *
 * Conventions for every operation below:
 * - Return 0 (or a length/count) on success, a negative ipckit code on failure, with
 *   ipk__err() having set the detailed message. Never print, never exit.
 * - `dl` is an absolute deadline (see ipk__deadline() in ipk.h): IPK__DL_NOW means "do not block,
 *   return -EAGAIN", IPK__DL_FOREVER means "block until done". Blocking waits go through
 *   ipk__wait_fd() or an equivalent that keeps the deadline across EINTR.
 * - EINTR is never returned to the caller: the wrappers in sys.c retry it with the remaining
 *   time. Partial reads and writes are completed in the transport or in stream.c, never exposed.
 * - The core has validated arguments (non-NULL channel, role allows the call, msg != NULL when
 *   len > 0, len <= c->max) and checked c->broken before calling.
 */
#ifndef IPK_TRANSPORT_H
#define IPK_TRANSPORT_H

#include "ipk.h"

/* Transport flags: the public IPK_SCHEME_* bits of ipckit.h (what kind of channel the scheme
 * makes; IPK_SCHEME_STREAM: c->rfd/c->wfd carry frames handled by stream.c), and these. */
#define IPK__TF_STREAM     IPK_SCHEME_STREAM
#define IPK__TF_ACCEPT     IPK_SCHEME_ACCEPT
#define IPK__TF_QUERY_LAST 0x10000u /* the body may hold '?': the query starts at the last '?' */
#define IPK__TF_PUBLIC     0xffffu  /* the bits ipk_scheme_flags() reports */
/* A queue that outlives its producers: end of stream only means none is attached now, and one
 * may come (an shm ring). The server parks such a queue instead of retiring its workers. */
#define IPK__TF_EOF_WAITS 0x20000u

/* What a poller watches for one channel (see poll_src below). */
#define IPK__PS_CHECK 0x1u
#define IPK__PS_TIMED 0x2u
#define IPK__PS_FDS   3 /* descriptors a channel may offer */
enum { IPK__PC_PEEK = 0, IPK__PC_ARM = 1, IPK__PC_DISARM = 2 };
typedef struct ipk__pollsrc {
    int fd[IPK__PS_FDS];      /* -1 when unused */
    uint32_t ev[IPK__PS_FDS]; /* EPOLLIN / EPOLLOUT for fd[i] */
    unsigned flags;           /* IPK__PS_* */
} ipk__pollsrc;

typedef struct ipk__transport {
    const char *scheme;
    unsigned flags;    /* IPK_SCHEME_* and IPK__TF_* */
    const char *usage; /* how to write the address, e.g. "tcp://HOST:PORT" */
    /* NULL-terminated list of option keys this transport accepts besides "max". */
    const char *const *keys;
    /* One line for ipckit-transports(7) and `ipckit info`. */
    const char *summary;

    /* Parses a->body (the text between "scheme:" and the query) into a->u; a->query is parsed.
     * url is for messages only. 0, or IPK_EADDR with a message. NULL: any non-empty body. */
    int (*parse)(ipk__addr *a, const char *url);

    /* Create/bind/own the object named by c->addr (listener role), or open/connect to it
     * (dialer role). On entry c->addr and c->opts are parsed and c->max/c->framing/c->perm/
     * c->keep are set; on success the transport has set c->rfd/c->wfd (or c->tp) and c->name.
     * On failure it has released everything it acquired; the core frees the channel. */
    int (*listen)(ipk_chan *c);
    int (*dial)(ipk_chan *c);

    /* Listener only (IPK__TF_ACCEPT). Fills in the already allocated `peer` (role ACCEPTED, same
     * options as the listener) with the next connection. May block until dl. */
    int (*accept)(ipk_chan *l, ipk_chan *peer, int64_t dl);

    /* Sends one whole message or nothing. The caller keeps ownership of msg; the transport
     * copies what it must keep. -EAGAIN (DL_NOW) or IPK_ETIMEDOUT when it cannot be sent in
     * time, -EPIPE when the peer is gone, IPK_EMSGSIZE when the mechanism cannot carry len. */
    int (*send)(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi, int64_t dl);

    /* Optional: several messages with as few system calls as possible. Returns the number sent
     * (>= 1) or an error if none was. NULL: the core loops over send(). */
    long (*sendv)(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl);

    /* Receives one whole message into buf (cap bytes, owned by the caller) and returns its
     * length. A message larger than cap is left queued where the mechanism allows it (else the
     * transport must say so in its docs), c->need is set to its size, and the result is
     * IPK_EMSGSIZE. IPK_EOF when the peer closed at a message boundary. mi may be NULL. */
    long (*recv)(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl);

    /* Optional: a descriptor that polls readable when recv() would not block. NULL: the core
     * returns c->rfd if >= 0, else IPK_ENOTSUP. */
    int (*fd)(const ipk_chan *c);

    /* Optional: how a poller (poller.c) waits on this channel. poll_src says what to watch:
     * up to IPK__PS_FDS descriptors with their EPOLL* events, and whether the poller must ask
     * poll_check (IPK__PS_CHECK: the descriptor is only a hint or a wake-up line) and do so on
     * a back-off timer (IPK__PS_TIMED: nothing tells, e.g. System V queues). It may create a
     * wake-up descriptor, which poll_end releases (also called by close). NULL: c->rfd for
     * IPK_POLLIN, c->wfd for IPK_POLLOUT, and their readiness (plus ipk_pending) is the truth.
     * poll_check returns the IPK_POLL* bits of `interest` ready now, without blocking, or a
     * negative code (reported as IPK_POLLHUP). op IPK__PC_ARM: when nothing is ready, declare
     * the waiter asleep so that the peer's next publish signals the wake-up descriptor, having
     * re-checked after declaring (no lost wake-up); IPK__PC_DISARM withdraws that, then checks;
     * IPK__PC_PEEK only checks. */
    int (*poll_src)(ipk_chan *c, unsigned interest, struct ipk__pollsrc *src);
    int (*poll_check)(ipk_chan *c, unsigned interest, int op);
    void (*poll_end)(ipk_chan *c);

    /* Optional: whether a whole message is buffered in user space. NULL: stream.c's answer for
     * streams, 0 otherwise. */
    int (*pending)(const ipk_chan *c);

    /* Optional, for mechanisms whose object stores messages: whether messages sent into the
     * object still wait there for a receiver. > 0 when some do (their number where the
     * mechanism tells it, else 1), 0 when none, < 0 when it cannot be told. The core asks it
     * before an owner's close when keep= was not given, and leaves the object in place unless
     * the answer is 0 (DESIGN §6: no implicit removal destroys a message). Must not block.
     * NULL: the mechanism stores nothing (sockets, exec:, signal:). */
    long (*undelivered)(const ipk_chan *c);

    /* Releases what listen/dial/accept acquired; removes the object when c->owner && !c->keep.
     * Must not block longer than a bounded time. Returns 0 or the first error met (the channel
     * is released regardless). The core closes c->rfd/c->wfd afterwards if still >= 0. */
    int (*close)(ipk_chan *c);

    /* Optional: writes what a timed-out send left in c->out (see stream.c). NULL: the core uses
     * ipk__stream_flush(). For stream transports that must do more while they wait. */
    int (*flush)(ipk_chan *c, int64_t dl);

    /* Optional: one screen about the mechanism and the live kernel limits for address a. */
    long (*info)(const ipk__addr *a, char *buf, size_t cap);

    /* Optional zero-copy (see ipk_reserve() in ipckit.h). peek returns the next message in
     * place (its length, *p pointing at it), the same one again until release consumes it;
     * the pointer stays valid until release or close, so nothing else may move the buffer it
     * points into (a recv meanwhile is -EINVAL). release without a peeked message: -EINVAL. */
    int (*reserve)(ipk_chan *c, void **p, size_t len, int64_t dl);
    int (*commit)(ipk_chan *c, size_t len);
    long (*peek)(ipk_chan *c, const void **p, int64_t dl);
    int (*release)(ipk_chan *c);

    /* Optional: the kernel objects the transport creates (objects.h). kinds: NULL-terminated.
     * objects() adds every such object that exists (a transport whose objects another scheme
     * already lists leaves it NULL). resolve() adds the object the address names: c is parsed
     * (c->addr, c->opts = the query, keys checked) and nothing is opened; 0, -ENOENT when it
     * does not exist, or another code with the message set. */
    const struct ipk__objkind *const *kinds;
    int (*objects)(struct ipk_objects *set);
    int (*resolve)(const ipk_chan *c, struct ipk_objects *set);
} ipk__transport;

/* The registry (registry.c, generated from the ipk_transport() lines): the transport of a scheme
 * name of n bytes, NULL when no transport of that name exists. A scheme known to the build but
 * switched off (-DIPK_TRANSPORT_<NAME>=OFF) has an entry whose listen is NULL. */
const ipk__transport *ipk__transport_find(const char *scheme, size_t n);
/* The i-th transport of the registry, NULL past the end. */
const ipk__transport *ipk__transport_at(size_t i);
static inline int ipk__transport_built(const ipk__transport *tr)
{
    return tr->listen != NULL;
}

/* Stream framing over c->rfd/c->wfd (stream.c), for transports with IPK__TF_STREAM. */
int ipk__stream_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi, int64_t dl);
long ipk__stream_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl);
long ipk__stream_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl);
int ipk__stream_pending(const ipk_chan *c);
/* Zero-copy receive: the next message in place in c->in, valid until ipk__stream_release. */
long ipk__stream_peek(ipk_chan *c, const void **p, int64_t dl);
int ipk__stream_release(ipk_chan *c);
/* Writes what a timed-out send left in c->out. */
int ipk__stream_flush(ipk_chan *c, int64_t dl);
/* Whether key is an option of tr (its keys, or "max"). */
int ipk__transport_key(const ipk__transport *tr, const char *key);
/* Address forms shared by several transports (addr.c), for their parse member. */
int ipk__addr_path(ipk__addr *a, const char *url);       /* a non-empty path below PATH_MAX */
int ipk__addr_posix_name(ipk__addr *a, const char *url); /* "/NAME", as mq_open and shm_open */

#endif
