/*
 * worker.c - one worker process: a loop (loop.c) over the shared listening sockets, this
 * worker's connections, its signalfd and, through the library's poller, its own handles on the
 * queues; the user's handlers are called for every message.
 *
 * Listening sockets were made by the master before fork; every worker watches them with
 * EPOLLEXCLUSIVE, so a new connection wakes one worker (or a few), not all of them. This works
 * the same for TCP and Unix sockets, where SO_REUSEPORT would only help TCP/UDP.
 *
 * A connection's bytes are read into the worker's scratch buffer and cut into messages there by
 * the library's codec (src/core/codec.c); only the start of a message that has not fully arrived
 * is copied into the connection's own buffer, which grows with the bytes received (never with
 * the length a client declares: that is checked against the maximum first) and is freed as soon
 * as it is empty. Replies are framed into the connection's output buffer and written after the
 * batch; once written the buffer goes back to the worker (a few 4 KiB buffers are kept for the
 * next replies, so a request costs no malloc; larger ones are freed). So an idle connection
 * holds no buffer at all. While replies are unwritten the connection is not read (a client that
 * does not read is throttled, not buffered).
 *
 * A handler may also answer later (server.h: srv_conn_hold/release; --exec, exec.c, does): the
 * connection stays open for the reply, also after its client's EOF, and a closed connection's
 * memory is only freed after the batch, once nothing holds it (bury). Deferred replies are
 * written after the batch; a throttled worker (srv_throttle) reads no connection, and those it
 * meets leave the epoll set until the throttle lifts.
 *
 * Per request a connection costs what a plain epoll echo's does: one read, one write of the
 * replies, a share of one epoll_wait. The loop sleeps in epoll_wait without a timeout (a
 * timeout arms and cancels a kernel timer on every wait); a timerfd wakes it on the tick for
 * the sweep instead. The clock is read once per wake-up.
 */
#include "server.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define SCRATCH     ((size_t)64 << 10)
#define ACCEPT_MAX  64     /* connections or datagrams taken per wake-up: no hogging a burst */
#define QUEUE_MAX   64     /* queue messages taken per wake-up */
#define PAUSE_MS    100.0  /* accept paused this long when out of descriptors */
#define DRAIN_GRACE 1000.0 /* a connection accepted just before QUIT may still send its request */
#define OUT_HIGH    ((size_t)256 << 10) /* unwritten replies past this: stop handling requests */
#define TICK_MS     5                   /* a queue the poller cannot take is tried this often */
#define PARK_MS     100 /* a ring without producers is looked at this often (queue_park) */
#define BUF_MIN     ((size_t)4096) /* the first size of a connection's buffer */
#define SPARE_MAX   16 /* written reply buffers of BUF_MIN kept by a worker for the next replies */
#define WATCH_MAX   2  /* srv_watch_fd / srv_watch_chan: the --exec coprocess's two directions */
#define W_NONE      0x100u /* conn->events: not in the epoll set (nothing to read or write now) */

enum conn_kind { C_STREAM, C_PACKET, C_DGRAM, C_QUEUE };

struct ipk_conn {
    enum conn_kind kind;
    int fd;
    int li; /* listener index */
    enum ipk__framing framing;
    size_t max;
    int closing; /* EOF seen or the handler asked: close once the replies are out */
    int dead;    /* closed: sends fail */
    int fresh;   /* nothing received yet: a request may be on its way */
    int opened;  /* on_open accepted it: on_close is due */
    int due;     /* deferred replies still to come (srv_conn_hold) */
    int dirty;   /* on the worker's list of connections to write after the batch */
    int stalled; /* on the worker's list of connections not read while it is throttled */
    unsigned events;
    double last, frame_t0;
    unsigned char *in; /* the start of a message still arriving */
    size_t in_len, in_cap;
    unsigned char *out; /* framed replies not yet written */
    size_t out_off, out_len, out_cap;
    void *data;
    struct ipk_conn *prev, *next;   /* the live connections; once dead, the graveyard */
    struct ipk_conn *dnext, *snext; /* the dirty and the stalled list */
    /* C_DGRAM: the sender of the datagram being handled */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    ipk_chan *q; /* C_QUEUE: this worker's handle on the queue */
    int ticked;  /* C_QUEUE: not in the poller (it refused): tried every TICK_MS */
    int parked;  /* C_QUEUE: out of the poller until the next look (queue_park) */
};
typedef struct ipk_conn conn;

typedef struct worker {
    ipk_server *s;
    int id, sfd, tfd, reserve; /* tfd: the timerfd of the tick */
    int tick;                  /* ms between sweeps */
    srv_loop loop;
    int draining, drain_req;
    int accepting; /* the connection listeners are watched */
    srv_stats *st; /* this worker's live counters */
    double drain_end, paused_until, now;
    int nconn;
    conn *head;
    conn *grave;   /* closed connections, freed after the batch once nothing refers to them */
    conn *dirty;   /* connections with deferred replies to write after the batch */
    conn *stall;   /* connections left unread while throttled */
    int throttled; /* srv_throttle: connections are not read */
    int unstall;   /* throttling ended: the stalled connections are read again after the batch */
    struct {
        srv_watch_fn *fn; /* NULL: free */
        void *arg;
        int fd;       /* srv_watch_fd, else -1 */
        ipk_chan *ch; /* srv_watch_chan, else NULL */
    } watch[WATCH_MAX];
    conn *lconn;          /* per listener: the datagram sender / queue handle */
    int *lfd;             /* per listener: this worker's copy of the socket, -1 once closed */
    int nticked, nparked; /* queues tried on a tick, queues parked */
    double unpark_at;
    size_t qcap; /* size of qbuf */
    unsigned char *qbuf;
    unsigned char *spare[SPARE_MAX]; /* reply buffers of BUF_MIN bytes, not in use */
    int nspare;
    unsigned char scratch[SCRATCH];
} worker;

static worker *cur; /* the worker of this process, for ipk_conn_worker() */

static void worker_exit(worker *w, int code) __attribute__((noreturn));

/* ---- handlers ---- */

static int echo(ipk_conn *c, const void *msg, size_t len, void *arg)
{
    (void)arg;
    return ipk_conn_send(c, msg, len);
}

static void count(_Atomic long *v, long d)
{
    atomic_fetch_add_explicit(v, d, memory_order_relaxed);
}

static int call_msg(worker *w, conn *c, const void *msg, size_t len)
{
    int (*fn)(ipk_conn *, const void *, size_t, void *) = w->s->h.on_msg ? w->s->h.on_msg : echo;
    count(&w->st->msgs_in, 1);
    int r = fn(c, msg, len, w->s->arg);
    if (r < 0)
        count(&w->st->errs, 1);
    return r;
}

/* ---- connections ---- */

/* Room for n more bytes at the end of a buffer (grown by doubling from BUF_MIN). */
static int room(unsigned char **b, size_t *cap, size_t len, size_t n)
{
    if (*cap - len >= n)
        return 0;
    size_t c = *cap ? *cap : BUF_MIN;
    while (c - len < n)
        c *= 2;
    unsigned char *p = realloc(*b, c);
    if (p == NULL)
        return -1;
    *b = p;
    *cap = c;
    return 0;
}

/* Room for n more bytes of replies: an empty connection takes a spare buffer first. */
static int out_room(worker *w, conn *c, size_t n)
{
    if (c->out == NULL && w->nspare > 0 && n <= BUF_MIN) {
        c->out = w->spare[--w->nspare];
        c->out_cap = BUF_MIN;
    }
    return room(&c->out, &c->out_cap, c->out_len, n);
}

/* The connection's reply buffer, all written: kept for the next replies or freed. */
static void out_release(worker *w, conn *c)
{
    if (c->out && c->out_cap == BUF_MIN && w->nspare < SPARE_MAX)
        w->spare[w->nspare++] = c->out;
    else
        free(c->out);
    c->out = NULL;
    c->out_cap = c->out_off = c->out_len = 0;
}

/* Closes c: its descriptor at once; its memory after the batch (an event of the same batch may
 * still name it, and a deferred reply, the dirty or the stalled list may hold it: see bury). */
static void conn_close(worker *w, conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    if (c->opened && w->s->h.on_close)
        w->s->h.on_close(c, w->s->arg);
    if (!w->draining) /* a retiring worker's slot belongs to its successor */
        count(&w->st->conns, -1);
    close(c->fd); /* also leaves the loop */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    out_release(w, c);
    c->prev = NULL;
    c->next = w->grave;
    w->grave = c;
    w->nconn--;
}

/* Frees the closed connections nothing refers to any more. */
static void bury(worker *w)
{
    for (conn **pp = &w->grave, *c; (c = *pp) != NULL;) {
        if (c->due || c->dirty || c->stalled) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        free(c);
    }
}

static int conn_watch(worker *w, conn *c, unsigned ev)
{
    if (ev == c->events)
        return 0;
    /* A connection with nothing to read or write leaves the set: a peer's hang-up would
     * otherwise be reported, and handled, again and again while a deferred reply is due. */
    int r = ev == W_NONE          ? srv_loop_del(&w->loop, c->fd)
            : c->events == W_NONE ? srv_loop_add(&w->loop, c->fd, ev, c)
                                  : srv_loop_mod(&w->loop, c->fd, ev, c);
    if (r != 0)
        return -1;
    c->events = ev;
    return 0;
}

static int at_boundary(const conn *c)
{
    return c->in_len == 0;
}

/*
 * Handles the whole messages in buf[0, n) and returns how many bytes it used, or -1 when the
 * connection must go now (a frame over the maximum). Stops early when the replies pile up, the
 * handler asked to close, or (draining) after the first message: what follows is a new request.
 */
static long conn_handle(worker *w, conn *c, const unsigned char *buf, size_t n, int eof)
{
    size_t pos = 0;
    while (!c->closing && !w->throttled && c->out_len - c->out_off < OUT_HIGH) {
        ipk__frame f;
        int r = ipk__codec_decode(c->framing, buf + pos, n - pos, c->max, eof, &f);
        if (r < 0) {
            count(&w->st->errs, 1);
            ipk_serve_log("worker %d: a client declared a %zu-byte message; max %zu: closed", w->id,
                          f.len, c->max);
            return -1;
        }
        if (r == 0)
            break;
        pos += f.end;
        if (call_msg(w, c, buf + pos - f.end + f.off, f.len) < 0)
            c->closing = 1;
        if (w->draining)
            return (long)n; /* what follows is a new request: not served any more */
    }
    return (long)pos;
}

/* Runs the messages already buffered in c->in (after a read, or once replies drained). */
static int conn_handle_buffered(worker *w, conn *c, int eof)
{
    if (c->in_len == 0)
        return 0;
    long used = conn_handle(w, c, c->in, c->in_len, eof);
    if (used < 0)
        return -1;
    c->in_len -= (size_t)used;
    if (c->in_len == 0) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
        c->frame_t0 = 0;
    } else if (used > 0) {
        memmove(c->in, c->in + used, c->in_len);
        c->frame_t0 = w->now;
    }
    return 0;
}

/* Writes the replies, then decides what to wait for next; closes the connection when done. */
static void conn_pump(worker *w, conn *c)
{
    while (c->out_off < c->out_len) {
        const unsigned char *p = c->out + c->out_off;
        size_t n = c->out_len - c->out_off, rec = 0;
        if (c->kind == C_PACKET) { /* one queued packet: {u32 length, bytes} */
            uint32_t plen;
            memcpy(&plen, p, sizeof plen);
            rec = sizeof plen;
            p += rec;
            n = plen;
        }
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            break;
        if (k < 0 || (k == 0 && n > 0)) {
            conn_close(w, c);
            return;
        }
        c->out_off += rec + (c->kind == C_PACKET ? n : (size_t)k);
        c->last = w->now;
    }
    int flushed = c->out_off == c->out_len;
    if (flushed && c->out) /* an idle connection keeps no buffer */
        out_release(w, c);
    /* Requests that waited for the replies to drain, or for the worker's throttle to lift (a
     * partial request left in c->in costs one look at its header). */
    if (flushed && c->in_len && !c->closing && !w->throttled) {
        if (conn_handle_buffered(w, c, 0) != 0) {
            conn_close(w, c);
            return;
        }
        if (c->out_len) {
            conn_pump(w, c);
            return;
        }
    }
    if (flushed && c->due == 0 && (c->closing || (w->draining && at_boundary(c)))) {
        conn_close(w, c);
        return;
    }
    unsigned want = flushed ? SRV_IN : SRV_OUT;
    if (flushed && (c->closing || w->throttled)) {
        /* Waiting for deferred replies after the client's EOF, or not read while throttled. */
        want = W_NONE;
        if (w->throttled && !c->closing && !c->stalled) {
            c->stalled = 1;
            c->snext = w->stall;
            w->stall = c;
        }
    }
    /* Packets go on being read while their queued replies stay under OUT_HIGH: a client may
     * send many before it reads (its sends would otherwise block on our full receive queue). */
    if (!flushed && c->kind == C_PACKET && !c->closing && !w->draining && !w->throttled &&
        c->out_len - c->out_off < OUT_HIGH)
        want |= SRV_IN;
    if (conn_watch(w, c, want) != 0)
        conn_close(w, c);
}

/* A seqpacket connection: one packet is one message, no framing. */
static void packet_read(worker *w, conn *c)
{
    ssize_t n = recv(c->fd, w->scratch, sizeof w->scratch, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || (size_t)n > sizeof w->scratch || (size_t)n > c->max) {
        if (n > 0)
            count(&w->st->errs, 1);
        conn_close(w, c);
        return;
    }
    c->last = w->now;
    c->fresh = 0;
    if (call_msg(w, c, w->scratch, (size_t)n) < 0)
        c->closing = 1;
    if (c->closing || c->out_off < c->out_len)
        conn_pump(w, c); /* replies queued: written before the next request is read */
}

static void conn_read(worker *w, conn *c)
{
    if (w->throttled) { /* no new request now (nor its EOF): off the set until it lifts */
        conn_pump(w, c);
        return;
    }
    if (c->kind == C_PACKET) {
        packet_read(w, c);
        return;
    }
    ssize_t n = read(c->fd, w->scratch, sizeof w->scratch);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(w, c);
        return;
    }
    if (n == 0) {
        /* A last line without its newline is still a message; a cut frame is dropped, and
         * counted as an error. */
        if (conn_handle_buffered(w, c, 1) != 0) {
            conn_close(w, c);
            return;
        }
        if (c->in_len)
            count(&w->st->errs, 1);
        c->closing = 1;
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        conn_pump(w, c);
        return;
    }
    c->last = w->now;
    c->fresh = 0;
    if (c->in_len == 0) { /* the common case: messages handled where they were read */
        long used = conn_handle(w, c, w->scratch, (size_t)n, 0);
        if (used < 0) {
            conn_close(w, c);
            return;
        }
        size_t rest = (size_t)n - (size_t)used;
        if (rest) {
            if (room(&c->in, &c->in_cap, 0, rest) != 0) {
                conn_close(w, c);
                return;
            }
            memcpy(c->in, w->scratch + used, rest);
            c->in_len = rest;
            c->frame_t0 = w->now;
        }
    } else {
        if (room(&c->in, &c->in_cap, c->in_len, (size_t)n) != 0) {
            conn_close(w, c);
            return;
        }
        memcpy(c->in + c->in_len, w->scratch, (size_t)n);
        c->in_len += (size_t)n;
        if (conn_handle_buffered(w, c, 0) != 0) {
            conn_close(w, c);
            return;
        }
    }
    conn_pump(w, c);
}

/* ---- listeners ---- */

/* Watches (on) or stops watching the listeners of one kind. */
static void watch_kind(worker *w, enum srv_kind kind, int on)
{
    for (size_t i = 0; i < w->s->nl; i++) {
        const srv_listener *l = &w->s->l[i];
        if (w->lfd[i] < 0 || l->kind != kind)
            continue;
        if (on)
            srv_loop_add(&w->loop, w->lfd[i], SRV_IN | (kind == SRV_ACCEPT ? SRV_EXCL : 0),
                         &w->lconn[i]);
        else
            srv_loop_del(&w->loop, w->lfd[i]);
    }
}

static void watch_accept(worker *w, int on)
{
    if (on != w->accepting)
        watch_kind(w, SRV_ACCEPT, on);
    w->accepting = on;
}

static void watch_listeners(worker *w, int on)
{
    watch_kind(w, SRV_DGRAM, on);
    watch_accept(w, on);
}

/*
 * Balanced accepting: EPOLLEXCLUSIVE wakes the same idle worker again and again, so one worker
 * would take nearly every connection. A worker holding more than its share (the average over
 * the workers, plus one) stops watching the listeners until the others catch up. The least
 * loaded worker is always within its share, but it may be asleep having stopped watching
 * itself earlier, when it was over a share that has grown since: so a worker that stops
 * watching wakes all the others (the balance eventfd, edge-triggered: one wake-up per worker
 * per write, nobody reads it), and each looks at its share again. Without that wake-up, a
 * connection could wait in the backlog until a sleeping worker's timer (250 ms and more).
 */
static int over_share(const worker *w)
{
    if (w->draining) /* taking what waits in the backlog before closing: no share applies */
        return 0;
    long sum = 0;
    for (int i = 0; i < w->s->workers && i < SRV_MAX_WORKERS; i++)
        sum += atomic_load_explicit(&w->s->stats[i].conns, memory_order_relaxed);
    long mine = atomic_load_explicit(&w->st->conns, memory_order_relaxed);
    return mine > sum / w->s->workers + 1;
}

static void stop_for_share(worker *w)
{
    if (!w->accepting)
        return;
    watch_accept(w, 0);
    uint64_t one = 1;
    if (write(w->s->balance_fd, &one, sizeof one) < 0) {
        /* EAGAIN at a counter near 2^64 only: the others still wake on their timers */
    }
}

/* Out of descriptors: the reserve descriptor is given up to accept and close the connection at
 * the head of the queue (the client learns at once instead of waiting); if even that fails,
 * accepting pauses for a moment. Either way the loop does not spin on a readable listener. */
static void accept_emfile(worker *w, int lfd)
{
    count(&w->st->emfile, 1);
    if (w->reserve >= 0) {
        close(w->reserve);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        int again = fd < 0 && errno == EAGAIN; /* another worker took it */
        if (fd >= 0)
            close(fd);
        w->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if ((fd >= 0 || again) && w->reserve >= 0)
            return;
    }
    ipk_serve_log("worker %d: out of descriptors, accepting paused", w->id);
    watch_listeners(w, 0);
    w->paused_until = w->now + PAUSE_MS;
}

/* A unix listener's allow-lists, checked on the peer's credentials (SO_PEERCRED, taken by the
 * kernel at connect); a peer not allowed is counted, logged and closed before any byte. */
static int peer_allowed(worker *w, const srv_listener *l, int fd)
{
    if (l->n_uid == 0 && l->n_gid == 0)
        return 1;
    struct ucred cr = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
    socklen_t sl = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) == 0 && srv_allowed(l, cr.uid, cr.gid))
        return 1;
    count(&w->st->refused, 1);
    ipk_serve_log("worker %d: %s: peer pid %d uid %d gid %d not allowed: closed", w->id, l->addr,
                  (int)cr.pid, (int)cr.uid, (int)cr.gid);
    return 0;
}

static void accept_some(worker *w, int li)
{
    const srv_listener *l = &w->s->l[li];
    for (int i = 0; i < ACCEPT_MAX; i++) {
        int fd = accept4(w->lfd[li], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_emfile(w, w->lfd[li]);
            return; /* EAGAIN (another worker took it), ECONNABORTED, ... */
        }
        if (!peer_allowed(w, l, fd)) {
            close(fd);
            continue;
        }
        conn *c = w->s->max_conn <= 0 || w->nconn < w->s->max_conn ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            close(fd); /* over max_conn: closed at once */
            continue;
        }
        *c = (conn){.kind = l->seqpacket ? C_PACKET : C_STREAM,
                    .fd = fd,
                    .li = li,
                    .framing = l->framing,
                    .max = srv_max(w->s, l),
                    .fresh = 1,
                    .last = w->now,
                    .events = SRV_IN};
        if (srv_loop_add(&w->loop, fd, SRV_IN, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = w->head;
        if (w->head)
            w->head->prev = c;
        w->head = c;
        w->nconn++;
        count(&w->st->conns, 1);
        count(&w->st->conns_total, 1);
        if (w->s->h.on_open && w->s->h.on_open(c, w->s->arg) < 0) {
            conn_close(w, c);
            continue;
        }
        c->opened = 1;
        if (c->out_len) /* a greeting sent by on_open goes now, not after the first request */
            conn_pump(w, c);
        if (over_share(w)) {
            stop_for_share(w);
            return;
        }
    }
}

/* Datagrams: each is one message; replies go to its sender (see ipk_conn_send). */
static void dgram_some(worker *w, int li)
{
    conn *c = &w->lconn[li];
    for (int i = 0; i < ACCEPT_MAX; i++) {
        c->peer_len = sizeof c->peer;
        ssize_t n = recvfrom(w->lfd[li], w->scratch, sizeof w->scratch, MSG_DONTWAIT,
                             (struct sockaddr *)&c->peer, &c->peer_len);
        if (n < 0)
            return;
        call_msg(w, c, w->scratch, (size_t)n);
    }
}

/*
 * A shared-memory ring says end of stream once every producer that attached has closed, and
 * the poller reports that as readable for as long as it lasts; but a job queue outlives its
 * producers. So the ring leaves the poller and is looked at again every PARK_MS (back in the
 * poller, which reports it at once if it is still without producers), until one sends.
 */
static void queue_park(worker *w, conn *c)
{
    if (!c->ticked && srv_loop_del_chan(&w->loop, c->q) != 0)
        return;
    c->parked = 1;
    w->nparked++;
    w->unpark_at = w->now + PARK_MS;
}

static void queue_unpark(worker *w)
{
    for (size_t i = 0; i < w->s->nl && w->nparked > 0; i++) {
        conn *c = &w->lconn[i];
        if (!c->parked)
            continue;
        if (!c->ticked && srv_loop_add_chan(&w->loop, c->q, SRV_IN, c) != 0)
            continue; /* stays parked: tried again in PARK_MS */
        c->parked = 0;
        w->nparked--;
    }
    w->unpark_at = w->now + PARK_MS;
}

/* Takes what the queue holds now (up to QUEUE_MAX messages); returns how many. */
static int queue_some(worker *w, int li, int timeout_ms)
{
    conn *c = &w->lconn[li];
    int n = 0;
    for (; n < QUEUE_MAX && !w->draining && !c->parked; n++) {
        long r = ipk_recv(c->q, w->qbuf, w->qcap, n == 0 ? timeout_ms : 0);
        if (r == IPK_EOF && w->s->l[li].eof_waits) {
            queue_park(w, c);
            break;
        }
        if (r < 0) {
            if (r != -EAGAIN && r != IPK_ETIMEDOUT) {
                /* The queue is gone or broken (or holds a message above max, which would block
                 * it forever): this worker ends, and the master respawns it with back-off. */
                ipk_serve_log("worker %d: %s: %s", w->id, ipk_addr(c->q), ipk_errmsg());
                worker_exit(w, 1);
            }
            break;
        }
        call_msg(w, c, w->qbuf, (size_t)r);
    }
    return n;
}

/* This worker's handle on every queue: dialled after fork, so each worker is a consumer of its
 * own (an shm ring with multi=1 serialises them; mq and sysv queues do it in the kernel). */
static int open_queues(worker *w)
{
    for (size_t i = 0; i < w->s->nl; i++) {
        const srv_listener *l = &w->s->l[i];
        if (l->kind != SRV_QUEUE)
            continue;
        if (strncmp(l->url, "file:", 5) == 0 && w->id != 1) {
            w->lfd[i] = -1; /* a log has no consumer groups: one reader */
            continue;
        }
        conn *c = &w->lconn[i];
        int r = ipk_dial(&c->q, l->url, l->opts);
        if (r != 0) {
            ipk_serve_log("worker %d: %s: %s", w->id, l->url, ipk_errmsg());
            return r;
        }
        size_t max = srv_max(w->s, l);
        if (max > w->qcap)
            w->qcap = max;
        if (l->timed) { /* nothing signals it: the tick (loop.c) */
            c->ticked = 1;
            w->nticked++;
        } else if ((r = srv_loop_add_chan(&w->loop, c->q, SRV_IN, c)) != 0) {
            /* An shm ring takes a bounded number of waiting pollers (-EBUSY). */
            ipk_serve_log("worker %d: %s: %s; tried every %d ms", w->id, l->url, ipk_errmsg(),
                          TICK_MS);
            c->ticked = 1;
            w->nticked++;
        }
    }
    if (w->qcap && (w->qbuf = malloc(w->qcap)) == NULL)
        return -ENOMEM;
    return 0;
}

/* ---- graceful shutdown and timeouts ---- */

/* Whether c may be closed by a graceful shutdown: no request started, no reply unwritten, and
 * no request waiting in the socket (one that did arrive is served first). */
static int drain_idle(worker *w, conn *c)
{
    if (!at_boundary(c) || c->out_off != c->out_len || c->due)
        return 0;
    char b;
    return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0 &&
           (!c->fresh || w->now - c->last >= DRAIN_GRACE);
}

static void start_drain(worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    w->drain_end = w->now + w->s->shutdown_ms;
    watch_listeners(w, 0);
    for (size_t i = 0; i < w->s->nl; i++) { /* queues: no new job is taken */
        conn *c = &w->lconn[i];
        if (c->q && !c->ticked && !c->parked)
            srv_loop_del_chan(&w->loop, c->q);
    }
    for (size_t i = 0; i < w->s->nl; i++)
        if (w->lfd[i] >= 0 && w->s->l[i].kind != SRV_QUEUE) {
            /* A client whose connect() completed waits in the backlog: it is in flight too.
             * Take every such connection (each gets DRAIN_GRACE to send its request) before
             * closing this worker's copy; new clients then go to the others, or wait. */
            if (w->s->l[i].kind == SRV_ACCEPT)
                for (int before = -1; before != w->nconn;) {
                    before = w->nconn;
                    accept_some(w, (int)i);
                }
            close(w->lfd[i]);
            w->lfd[i] = -1;
        }
    for (conn *c = w->head, *nx; c; c = nx) {
        nx = c->next;
        if (drain_idle(w, c))
            conn_close(w, c);
    }
    ipk_serve_log("worker %d: draining, %d connection%s in flight", w->id, w->nconn,
                  w->nconn == 1 ? "" : "s");
}

/* Closes connections idle for idle_timeout, or whose request is older than read_timeout while
 * they are being read (not while their replies wait for the client to read). A new connection
 * that has sent nothing yet gets read_timeout for its first byte (nginx's client_header_
 * timeout): a client that connects and says nothing holds a descriptor for that long, not for
 * the idle timeout. */
static void sweep(worker *w)
{
    for (conn *c = w->head, *nx; c; c = nx) {
        nx = c->next;
        if (w->draining && drain_idle(w, c)) {
            conn_close(w, c);
            continue;
        }
        double read_t0 = c->fresh ? c->last : c->frame_t0;
        if ((c->due == 0 && w->now - c->last >= w->s->idle_ms) ||
            (read_t0 > 0 && c->events == SRV_IN && w->now - read_t0 >= w->s->read_ms)) {
            count(&w->st->timeouts, 1);
            conn_close(w, c);
        }
    }
}

static void worker_exit(worker *w, int code)
{
    if (w->s->h.on_worker_stop)
        w->s->h.on_worker_stop(w->id, w->s->arg);
    for (size_t i = 0; i < w->s->nl; i++)
        if (w->lconn[i].q)
            ipk_close(w->lconn[i].q);
    _exit(code);
}

static void on_signals(worker *w)
{
    struct signalfd_siginfo si;
    while (read(w->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            _exit(0); /* fast shutdown: connections are reset by the kernel */
        case SIGQUIT:
            w->drain_req = 1; /* after the batch: draining closes connections it may name */
            break;
        case SIGUSR1:
            if (w->s->log_path)
                srv_log_open(w->s->log_path);
            break;
        default:
            break;
        }
    }
}

/*
 * A worker's connections are bounded by its descriptors: the soft RLIMIT_NOFILE (often 1,024)
 * is raised to the hard one (when that is unlimited, to the kernel's fs.nr_open), so that the
 * default max_conn (no cap) means what the administrator allowed. Only the worker's limit: the
 * master keeps its own, which a binary upgrade passes on unchanged. A --exec coprocess, started
 * by the worker, inherits the raised limit.
 */
static void raise_nofile(int id)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY) {
        char b[32] = "";
        int fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
        if (fd >= 0)
            close(fd);
        want = n > 0 ? (rlim_t)strtoull(b, NULL, 10) : 0;
    }
    if (want <= rl.rlim_cur)
        return;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        ipk_serve_log("worker %d: raising the descriptor limit to %llu: %s", id,
                      (unsigned long long)want, strerror(errno));
}

static void worker_init(worker *w, ipk_server *s, int id)
{
    w->s = s;
    w->id = id;
    w->now = srv_now_ms();
    w->st = &s->stats[id - 1];
    w->st->conns = 0;
    /* The master blocked these before fork; the worker reads them from its own signalfd. If the
     * master dies without telling, the kernel sends TERM; if it died before prctl, the parent
     * is already another process. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != s->master_pid)
        _exit(0);
    if (s->status.fd >= 0)
        close(s->status.fd); /* the master's alone: a worker holding it would keep it open */
    raise_nofile(id);
    w->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    int tick = s->idle_ms < s->read_ms ? s->idle_ms : s->read_ms;
    w->tick = tick / 4 < 10 ? 10 : tick / 4 > 250 ? 250 : tick / 4;
    struct itimerspec its = {.it_interval = {w->tick / 1000, (long)(w->tick % 1000) * 1000000}};
    its.it_value = its.it_interval;
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int lr = srv_loop_new(&w->loop);
    w->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->lconn = calloc(s->nl ? s->nl : 1, sizeof *w->lconn);
    w->lfd = calloc(s->nl ? s->nl : 1, sizeof *w->lfd);
    if (w->sfd < 0 || w->tfd < 0 || lr != 0 || !w->lconn || !w->lfd ||
        timerfd_settime(w->tfd, 0, &its, NULL) != 0 ||
        srv_loop_add(&w->loop, w->sfd, SRV_IN, &w->sfd) != 0 ||
        srv_loop_add(&w->loop, w->tfd, SRV_IN, &w->tfd) != 0 ||
        srv_loop_add(&w->loop, s->balance_fd, SRV_IN | SRV_EDGE, &s->balance_fd) != 0) {
        ipk_serve_log("worker %d: signalfd/timerfd/epoll: %s", id, strerror(errno));
        _exit(1);
    }
    for (size_t i = 0; i < s->nl; i++) {
        const srv_listener *l = &s->l[i];
        w->lfd[i] = l->kind == SRV_QUEUE ? -1 : l->fd;
        w->lconn[i] = (conn){.kind = l->kind == SRV_DGRAM   ? C_DGRAM
                                     : l->kind == SRV_QUEUE ? C_QUEUE
                                                            : C_STREAM, /* accepts */
                             .fd = w->lfd[i],
                             .li = (int)i,
                             .framing = l->framing,
                             .max = srv_max(s, l)};
    }
    if (open_queues(w) != 0)
        _exit(1);
    if (s->h.on_worker_start && s->h.on_worker_start(id, s->arg) < 0) {
        ipk_serve_log("worker %d: the start handler failed", id);
        _exit(1);
    }
    watch_listeners(w, 1);
}

/* The queues the poller would not take, tried in turn; returns how many messages were taken. */
static int tick_queues(worker *w)
{
    int got = 0;
    for (size_t i = 0; i < w->s->nl; i++)
        if (w->lconn[i].ticked && !w->lconn[i].parked)
            got += queue_some(w, (int)i, 0);
    return got;
}

/* How long the loop may sleep: until a parked ring's next look or the next try of the queues
 * nothing signals; else without a timeout (-1), the timerfd waking it for the sweep. */
static int wait_ms(const worker *w, int busy)
{
    if (busy) /* ticked queues had more to take */
        return 0;
    if (w->draining)
        return -1;
    int ms = w->nticked ? TICK_MS : -1;
    if (w->nparked) {
        double left = w->unpark_at - w->now;
        if (left <= 0)
            ms = 0;
        else if (ms < 0 || left < ms)
            ms = (int)left + 1;
    }
    return ms;
}

/* After a batch: the stalled connections are read again once the throttle lifted, deferred
 * replies are written, and the requests taken go to the --exec coprocess. */
static void after_batch(worker *w)
{
    while (w->unstall && w->stall && !w->throttled) {
        conn *c = w->stall;
        w->stall = c->snext;
        c->stalled = 0;
        if (!c->dead)
            conn_pump(w, c);
    }
    if (w->stall == NULL || w->throttled)
        w->unstall = 0;
    while (w->dirty) {
        conn *c = w->dirty;
        w->dirty = c->dnext;
        c->dirty = 0;
        if (!c->dead)
            conn_pump(w, c);
    }
    srv_exec_flush();
}

void srv_worker(ipk_server *s, int id)
{
    static worker wk; /* big scratch: not on the stack */
    worker *w = &wk;
    cur = w;
    worker_init(w, s, id);
    double next_sweep = w->now + w->tick;
    int busy = 0, rebalance = 0;
    for (;;) {
        srv_event ev[64];
        int n = srv_loop_wait(&w->loop, ev, 64, wait_ms(w, busy));
        /* The clock is read once per wake-up (and after trying the queues on a tick): what
         * follows the batch sees the time it began, so a slow handler only defers a timeout
         * by that batch. */
        w->now = srv_now_ms();
        for (int i = 0; i < n; i++) {
            void *p = ev[i].ptr;
            if (p == &w->sfd) {
                on_signals(w);
                continue;
            }
            if (p == &w->tfd) {
                uint64_t expired;
                if (read(w->tfd, &expired, sizeof expired) < 0) {
                    /* EAGAIN: another wake-up read it; the sweep looks at the clock anyway */
                }
                continue;
            }
            if (p == &s->balance_fd) {
                rebalance = 1; /* the share is looked at after the batch */
                continue;
            }
            if ((char *)p >= (char *)w->watch && (char *)p < (char *)(w->watch + WATCH_MAX)) {
                int k = (int)(((char *)p - (char *)w->watch) / sizeof w->watch[0]);
                if (w->watch[k].fn) /* else unwatched earlier in the batch */
                    w->watch[k].fn(w->watch[k].arg, ev[i].events);
                continue;
            }
            conn *c = p;
            if (c >= w->lconn && c < w->lconn + s->nl) { /* a listener or a queue */
                if (c->kind == C_QUEUE)
                    queue_some(w, c->li, 0);
                else if (w->lfd[c->li] < 0)
                    continue;
                else if (c->kind == C_DGRAM)
                    dgram_some(w, c->li);
                else
                    accept_some(w, c->li);
                continue;
            }
            /* A connection closed earlier in the batch (by a coprocess's failure) keeps its
             * memory until the batch ends (bury). */
            if (c->dead)
                continue;
            if (ev[i].events & SRV_OUT)
                conn_pump(w, c);
            else
                conn_read(w, c);
        }
        if (n < 0) {
            ipk_serve_log("worker %d: wait: %s", id, ipk_strerror(n));
            _exit(1);
        }
        /* Two workers on one CPU: one that never blocks (every connection busy) would keep the
         * CPU for a whole scheduler slice while the other's connections wait, a p99 of
         * milliseconds (bench/serve_bench, run G in docs/PERFORMANCE.md: 12x the raw echo's at
         * 16 connections). After each batch it lets a runnable worker of its CPU go first;
         * alone on its CPU, sched_yield() returns at once (one system call per batch). */
        after_batch(w);
        if (n > 0)
            sched_yield();
        if (w->nticked && !w->draining) {
            busy = tick_queues(w) > 0;
            w->now = srv_now_ms();
        } else
            busy = 0;
        if (w->nparked && !w->draining && w->now >= w->unpark_at)
            queue_unpark(w);
        if (w->drain_req)
            start_drain(w);
        if (!w->draining && w->paused_until == 0 && over_share(w))
            stop_for_share(w);
        else if (!w->draining && w->paused_until == 0) {
            watch_accept(w, 1);
            /* The worker that stopped may have been woken for a connection still in the
             * backlog: that wake-up was its alone (EPOLLEXCLUSIVE), so look now. */
            for (size_t i = 0; rebalance && i < s->nl; i++)
                if (s->l[i].kind == SRV_ACCEPT && w->lfd[i] >= 0)
                    accept_some(w, (int)i);
        }
        rebalance = 0;
        if (w->paused_until > 0 && w->now >= w->paused_until && !w->draining) {
            w->paused_until = 0;
            watch_listeners(w, 1);
        }
        if (w->now >= next_sweep) {
            sweep(w);
            srv_exec_sweep(w->now);
            after_batch(w);
            next_sweep = w->now + w->tick;
        }
        bury(w);
        if (w->draining && (w->nconn == 0 || w->now >= w->drain_end))
            worker_exit(w, 0);
    }
}

/* ---- the handlers' side of a connection ---- */

int ipk_conn_send(ipk_conn *c, const void *msg, size_t len)
{
    if (c == NULL || (msg == NULL && len > 0))
        return -EINVAL;
    if (c->dead || (c->closing && c->due == 0))
        return IPK_ECLOSED;
    if (len > c->max)
        return IPK_EMSGSIZE;
    switch (c->kind) {
    case C_QUEUE:
        return IPK_ENOTSUP;
    case C_DGRAM:
        if (sendto(c->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&c->peer,
                   c->peer_len) < 0)
            return -errno; /* a datagram that cannot go now is dropped: UDP promises no more */
        count(&cur->st->msgs_out, 1);
        return 0;
    case C_PACKET:
        /* At once when nothing waits before it; else, or when the client's receive queue is
         * full, queued as {u32 length, packet} for conn_pump (which stops reading requests
         * until the queue has drained: a client that sends before it reads is slowed, not
         * reset). */
        if (c->out_off == c->out_len) {
            if (send(c->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
                count(&cur->st->msgs_out, 1);
                return 0;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->closing = 1;
                return -errno;
            }
            c->out_off = c->out_len = 0;
        }
        if (out_room(cur, c, sizeof(uint32_t) + len) != 0)
            return -ENOMEM;
        uint32_t plen = (uint32_t)len;
        memcpy(c->out + c->out_len, &plen, sizeof plen);
        if (len)
            memcpy(c->out + c->out_len + sizeof plen, msg, len);
        c->out_len += sizeof plen + len;
        count(&cur->st->msgs_out, 1);
        return 0;
    case C_STREAM:
        break;
    }
    unsigned char hdr[IPK__HDR_LEN];
    size_t pre, post;
    const char *postp;
    int r = ipk__codec_encode(c->framing, msg, len, hdr, &pre, &postp, &post);
    if (r != 0)
        return r;
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (out_room(cur, c, pre + len + post) != 0)
        return -ENOMEM;
    memcpy(c->out + c->out_len, hdr, pre);
    if (len)
        memcpy(c->out + c->out_len + pre, msg, len);
    memcpy(c->out + c->out_len + pre + len, postp, post);
    c->out_len += pre + len + post;
    count(&cur->st->msgs_out, 1);
    return 0;
}

void ipk_conn_close(ipk_conn *c)
{
    if (c && (c->kind == C_STREAM || c->kind == C_PACKET))
        c->closing = 1;
}

void ipk_conn_set_data(ipk_conn *c, void *data)
{
    if (c)
        c->data = data;
}

void *ipk_conn_data(const ipk_conn *c)
{
    return c ? c->data : NULL;
}

int ipk_conn_listener(const ipk_conn *c)
{
    return c ? c->li : -EINVAL;
}

int ipk_conn_worker(const ipk_conn *c)
{
    (void)c;
    return cur ? cur->id : 0;
}

int ipk_conn_peer(const ipk_conn *c, pid_t *pid, uid_t *uid, gid_t *gid)
{
    if (c == NULL)
        return -EINVAL;
    if (!cur->s->l[c->li].unix_family || (c->kind != C_STREAM && c->kind != C_PACKET))
        return IPK_ENOTSUP;
    struct ucred cr;
    socklen_t sl = sizeof cr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) != 0)
        return -errno;
    if (pid)
        *pid = cr.pid;
    if (uid)
        *uid = cr.uid;
    if (gid)
        *gid = cr.gid;
    return 0;
}

/* ---- deferred replies and extra descriptors (server.h; exec.c) ---- */

/* A descriptor (ch NULL) or a channel (fd -1) joins the loop in a free watch slot. */
static int watch_add(int fd, ipk_chan *ch, unsigned events, srv_watch_fn *fn, void *arg)
{
    int k = 0;
    while (k < WATCH_MAX && cur->watch[k].fn != NULL)
        k++;
    if (k == WATCH_MAX)
        return -ENOSPC;
    int r = ch ? srv_loop_add_chan(&cur->loop, ch, events, &cur->watch[k])
               : srv_loop_add(&cur->loop, fd, events, &cur->watch[k]);
    if (r != 0)
        return r;
    cur->watch[k].fn = fn;
    cur->watch[k].arg = arg;
    cur->watch[k].fd = fd;
    cur->watch[k].ch = ch;
    return k;
}

int srv_watch_fd(int fd, unsigned events, srv_watch_fn *fn, void *arg)
{
    return watch_add(fd, NULL, events, fn, arg);
}

int srv_watch_chan(ipk_chan *c, unsigned events, srv_watch_fn *fn, void *arg)
{
    return watch_add(-1, c, events, fn, arg);
}

void srv_unwatch(int k)
{
    if (k < 0 || k >= WATCH_MAX || cur->watch[k].fn == NULL)
        return;
    if (cur->watch[k].fd >= 0)
        srv_loop_del(&cur->loop, cur->watch[k].fd);
    if (cur->watch[k].ch)
        srv_loop_del_chan(&cur->loop, cur->watch[k].ch);
    cur->watch[k].fn = NULL;
}

int srv_conn_hold(ipk_conn *c)
{
    if (c->kind != C_STREAM && c->kind != C_PACKET)
        return IPK_ENOTSUP;
    c->due++;
    return 0;
}

void srv_conn_release(ipk_conn *c, int ok)
{
    c->due--;
    if (c->dead)
        return; /* bury frees it once nothing refers to it */
    if (!ok)
        c->closing = 1;
    if (!c->dirty) {
        c->dirty = 1;
        c->dnext = cur->dirty;
        cur->dirty = c;
    }
}

void srv_throttle(int on)
{
    if (cur->throttled && !on)
        cur->unstall = 1;
    cur->throttled = on;
}

double srv_worker_now(void)
{
    return cur->now;
}
