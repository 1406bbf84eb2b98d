/*
 * serve_worker.c - one worker of ipckit serve: an epoll loop over the shared listening socket,
 * its nonblocking connections and a signalfd.
 *
 * The listening socket was made by the master before fork; every worker adds it to its own epoll
 * with EPOLLEXCLUSIVE, so a new connection wakes one worker (or a few), not all of them. This
 * works the same for TCP and Unix sockets, where SO_REUSEPORT would only help TCP/UDP.
 *
 * Per connection the output buffer is also the frame assembly area: out[off, ready) are complete
 * echoes waiting for the socket, out[ready, len) is the frame being received (header first, so an
 * echo leaves with one write; the buffer grows with the bytes received, not with the length a
 * client declares). Only complete frames are written; while any are unwritten the
 * connection is not read (the client that does not read its echoes is throttled, not buffered).
 * A declared length above --max-frame closes the connection before anything is allocated.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve.h"

#define SCRATCH     ((size_t)64 << 10)
#define ACCEPT_MAX  64     /* connections taken per wake-up, so one worker does not hog a burst */
#define PAUSE_MS    100.0  /* accept paused this long when out of descriptors */
#define DRAIN_GRACE 1000.0 /* a connection accepted just before QUIT may still send its request */
#define KEEP_OUT    ((size_t)64 << 10) /* an idle connection keeps at most this much buffer */

typedef struct conn {
    int fd;
    int closing; /* EOF seen: close once the complete echoes are out */
    int fresh;   /* nothing received yet: a request may be on its way */
    struct conn *prev, *next;
    double last;     /* last byte moved */
    double frame_t0; /* when the unfinished frame began; 0 at a frame boundary */
    unsigned char hdr[4];
    unsigned hn;   /* header bytes received */
    uint32_t need; /* payload bytes of the current frame still to come */
    uint32_t events;
    unsigned char *out;
    size_t cap, off, ready, len;
} conn;

typedef struct worker {
    const serve_cfg *cfg;
    int id, ep, sfd, lfd, reserve;
    int draining, drain_req;
    double drain_end, paused_until;
    int nconn;
    conn *head;
    double now;
    unsigned char scratch[SCRATCH];
} worker;

static void conn_close(worker *w, conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->out);
    free(c);
    w->nconn--;
}

static int conn_watch(worker *w, conn *c, uint32_t ev)
{
    if (ev == c->events)
        return 0;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
        return -1;
    c->events = ev;
    return 0;
}

/* Room for n more bytes at out + len; moves the unwritten part to the front first. */
static int conn_room(conn *c, size_t n)
{
    if (c->off > 0) {
        memmove(c->out, c->out + c->off, c->len - c->off);
        c->ready -= c->off;
        c->len -= c->off;
        c->off = 0;
    }
    if (c->cap - c->len >= n)
        return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap - c->len < n)
        cap *= 2;
    unsigned char *p = realloc(c->out, cap);
    if (p == NULL)
        return -1;
    c->out = p;
    c->cap = cap;
    return 0;
}

static int at_boundary(const conn *c)
{
    return c->hn == 0;
}

/* Echo protocol: appends p[0, n) to the frame being assembled. -1: close the connection. When
 * draining, stops after the first completed frame (what follows is a new request). */
static int feed_echo(worker *w, conn *c, const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (c->hn < 4) {
            if (c->hn == 0)
                c->frame_t0 = w->now;
            size_t k = 4 - c->hn < n ? 4 - c->hn : n;
            memcpy(c->hdr + c->hn, p, k);
            c->hn += (unsigned)k;
            p += k;
            n -= k;
            if (c->hn < 4)
                break;
            uint32_t len = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                           (uint32_t)c->hdr[2] << 8 | c->hdr[3];
            if (len > w->cfg->max_frame || conn_room(c, 4) != 0)
                return -1;
            memcpy(c->out + c->len, c->hdr, 4);
            c->len += 4;
            c->need = len;
        } else {
            size_t k = c->need < n ? c->need : n;
            /* Memory follows the bytes that came, not the length declared. */
            if (conn_room(c, k) != 0)
                return -1;
            memcpy(c->out + c->len, p, k);
            c->len += k;
            c->need -= (uint32_t)k;
            p += k;
            n -= k;
        }
        if (c->hn == 4 && c->need == 0) {
            c->hn = 0;
            c->ready = c->len;
            c->frame_t0 = 0;
            if (w->draining)
                return 0;
        }
    }
    return 0;
}

static int feed_raw(conn *c, const unsigned char *p, size_t n)
{
    if (conn_room(c, n) != 0)
        return -1;
    memcpy(c->out + c->len, p, n);
    c->len += n;
    c->ready = c->len;
    return 0;
}

/* Writes the complete echoes, then decides what to wait for next; closes the connection when it
 * is done. */
static void conn_pump(worker *w, conn *c)
{
    while (c->off < c->ready) {
        ssize_t k = write(c->fd, c->out + c->off, c->ready - c->off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            break;
        if (k <= 0) {
            conn_close(w, c);
            return;
        }
        c->off += (size_t)k;
        c->last = w->now;
    }
    int flushed = c->off == c->ready;
    if (flushed && c->off == c->len) {
        c->off = c->ready = c->len = 0;
        if (c->cap > KEEP_OUT) {
            free(c->out);
            c->out = NULL;
            c->cap = 0;
        }
    }
    if (flushed && (c->closing || (w->draining && at_boundary(c)))) {
        conn_close(w, c);
        return;
    }
    if (conn_watch(w, c, flushed ? EPOLLIN : EPOLLOUT) != 0)
        conn_close(w, c);
}

static void conn_read(worker *w, conn *c)
{
    ssize_t n = read(c->fd, w->scratch, sizeof w->scratch);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(w, c);
        return;
    }
    if (n == 0) {
        c->closing = 1;
        c->len = c->ready; /* a frame cut short by EOF is dropped */
        c->hn = 0;
    } else {
        c->last = w->now;
        c->fresh = 0;
        int r = w->cfg->proto == SERVE_ECHO ? feed_echo(w, c, w->scratch, (size_t)n)
                                            : feed_raw(c, w->scratch, (size_t)n);
        if (r != 0) {
            conn_close(w, c);
            return;
        }
    }
    conn_pump(w, c);
}

static void watch_listener(worker *w, int on)
{
    struct epoll_event e = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL};
    if (on)
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &e);
    else
        epoll_ctl(w->ep, EPOLL_CTL_DEL, w->lfd, NULL);
}

/* Out of descriptors: the reserve descriptor is given up to accept and close the connection at
 * the head of the queue (the client learns at once instead of waiting); if even that fails,
 * accepting pauses for a moment. Either way the loop does not spin on a readable listener. */
static void accept_emfile(worker *w)
{
    if (w->reserve >= 0) {
        close(w->reserve);
        int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
        int again = fd < 0 && errno == EAGAIN; /* another worker took it */
        if (fd >= 0)
            close(fd);
        w->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if ((fd >= 0 || again) && w->reserve >= 0)
            return;
    }
    serve_log("worker %d: out of descriptors, accepting paused", w->id);
    watch_listener(w, 0);
    w->paused_until = w->now + PAUSE_MS;
}

static void accept_some(worker *w)
{
    for (int i = 0; i < ACCEPT_MAX; i++) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_emfile(w);
            return; /* EAGAIN (another worker took it), ECONNABORTED, ... */
        }
        conn *c = w->nconn < w->cfg->max_conn ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            close(fd); /* over --max-conn: closed at once */
            continue;
        }
        c->fd = fd;
        c->fresh = 1;
        c->last = w->now;
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = w->head;
        if (w->head)
            w->head->prev = c;
        w->head = c;
        w->nconn++;
    }
}

/* Datagram raw echo: each datagram goes back to its sender; one that cannot be sent at once is
 * dropped (UDP promises no more). */
static void dgram_echo(worker *w)
{
    for (int i = 0; i < ACCEPT_MAX; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t n = recvfrom(w->lfd, w->scratch, sizeof w->scratch, MSG_DONTWAIT,
                             (struct sockaddr *)&ss, &sl);
        if (n < 0)
            return;
        sendto(w->lfd, w->scratch, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
    }
}

/* Whether c may be closed by a graceful shutdown: no frame started, no echo unwritten, and no
 * request waiting in the socket (one that did arrive is served first). */
static int drain_idle(worker *w, conn *c)
{
    if (!at_boundary(c) || c->off != c->ready)
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
    w->drain_end = w->now + w->cfg->shutdown_ms;
    watch_listener(w, 0);
    close(w->lfd); /* this worker's copy: new connections go to the others, or wait */
    w->lfd = -1;
    for (conn *c = w->head, *nx; c; c = nx) {
        nx = c->next;
        if (drain_idle(w, c))
            conn_close(w, c);
    }
    serve_log("worker %d: draining, %d connection%s in flight", w->id, w->nconn,
              w->nconn == 1 ? "" : "s");
}

/* Closes connections idle for --idle-timeout, or whose frame is older than --read-timeout while
 * they are being read (not while their echoes wait for the client to read). */
static void sweep(worker *w)
{
    for (conn *c = w->head, *nx; c; c = nx) {
        nx = c->next;
        if (w->now - c->last >= w->cfg->idle_ms || (w->draining && drain_idle(w, c)) ||
            (c->frame_t0 > 0 && c->events == EPOLLIN && w->now - c->frame_t0 >= w->cfg->read_ms))
            conn_close(w, c);
    }
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
            if (w->cfg->log_path)
                serve_log_open(w->cfg->log_path);
            break;
        default:
            break;
        }
    }
}

void serve_worker(const serve_cfg *cfg, int id)
{
    static worker wk; /* big scratch: not on the stack */
    worker *w = &wk;
    w->cfg = cfg;
    w->id = id;
    w->lfd = cfg->lfd;
    w->now = serve_now_ms();
    /* The master blocked these before fork; the worker reads them from its own signalfd. If the
     * master dies without telling, the kernel sends TERM. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != cfg->master_pid)
        _exit(0); /* the master died before prctl */
    w->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->sfd < 0 || w->ep < 0) {
        serve_log("worker %d: signalfd/epoll: %s", id, strerror(errno));
        _exit(1);
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &w->sfd};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->sfd, &e) != 0) {
        serve_log("worker %d: epoll_ctl: %s", id, strerror(errno));
        _exit(1);
    }
    watch_listener(w, 1);
    int tick = cfg->idle_ms < cfg->read_ms ? cfg->idle_ms : cfg->read_ms;
    tick = tick / 4 < 10 ? 10 : tick / 4 > 250 ? 250 : tick / 4;
    double next_sweep = w->now + tick;
    struct epoll_event ev[64];
    for (;;) {
        int n = epoll_wait(w->ep, ev, 64, tick);
        w->now = serve_now_ms();
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &w->sfd)
                on_signals(w);
            else if (p == NULL) {
                if (w->lfd < 0)
                    continue;
                if (cfg->dgram)
                    dgram_echo(w);
                else
                    accept_some(w);
            } else {
                conn *c = p;
                /* Only a connection's own event closes it within a batch (draining and the
                 * sweep wait until after), so c is alive here. */
                if (ev[i].events & EPOLLOUT)
                    conn_pump(w, c);
                else
                    conn_read(w, c);
            }
        }
        if (n < 0 && errno != EINTR) {
            serve_log("worker %d: epoll_wait: %s", id, strerror(errno));
            _exit(1);
        }
        if (w->drain_req)
            start_drain(w);
        if (w->paused_until > 0 && w->now >= w->paused_until && !w->draining) {
            w->paused_until = 0;
            watch_listener(w, 1);
        }
        if (w->now >= next_sweep) {
            sweep(w);
            next_sweep = w->now + tick;
        }
        if (w->draining && (w->nconn == 0 || w->now >= w->drain_end))
            _exit(0);
    }
}
