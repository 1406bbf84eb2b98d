/*
 * poller.c - one wait over channels of any scheme (ipk_poller_*; contract in ipckit.h).
 *
 * An epoll instance holds every descriptor the channels offer (poll_src in transport.h), an
 * eventfd that makes the instance readable when something is ready in user space or a
 * registration changed under a waiting thread, and a timerfd for the channels that nothing
 * signals (System V queues: the transport is asked on a back-off timer).
 *
 * Truth and hints. For most channels the descriptor's readiness is the truth, and a channel
 * that a receive left with a whole message buffered in user space is put on the pending list
 * (ipk__poll_pending) and reported from there. Channels with IPK__PS_CHECK (shm:, sysv:, the
 * file log) are asked by poll_check at every wait; their descriptor only says "look again".
 *
 * Sleeping without losing a wake-up (shm:): before blocking, the poller ARMs each such channel:
 * the transport declares the waiter asleep, so the peer's next publish signals the wake-up
 * descriptor, then re-checks (a message published just before the declaration is seen by that
 * check, one published after it signals). After the wait the poller DISARMs, so that a peer
 * publishing while this process is awake makes no system call.
 *
 * Registrations live in slots; epoll's data word holds (generation << 32 | slot), so an event
 * fetched for a registration that another thread removed meanwhile is recognised and dropped.
 * One mutex guards the registrations; it is not held across epoll_wait.
 */
#include "ipk.h"
#include "transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define IPK__TIMED_MIN_NS 50000LL   /* first look at a timed channel after activity: 50 us */
#define IPK__TIMED_MAX_NS 5000000LL /* and never more than 5 ms apart: the documented bound */
#define IPK__EV_BATCH     64        /* epoll events fetched per call */
#define IPK__SLOT_EVFD    0xffffffffu
#define IPK__SLOT_TIMER   0xfffffffeu

typedef struct ipk__preg {
    ipk_poller *p;
    ipk_chan *c;
    void *user;
    unsigned interest;
    ipk__pollsrc src;
    uint32_t slot;
    int armed;      /* poll_check(ARM) said nothing was ready: the peer will signal */
    int pending;    /* on the pending list */
    uint64_t round; /* the wait round that last reported it, and where: */
    int evi;
} ipk__preg;

/* A growable array of registrations. */
typedef struct ipk__pregv {
    ipk__preg **v;
    size_t n, cap;
} ipk__pregv;

struct ipk_poller {
    int epfd, evfd, tfd;
    pthread_mutex_t mu;
    ipk__preg **slots; /* NULL where free */
    uint32_t *gen;
    uint32_t nslots, cap_slots, free_hint;
    ipk__pregv check;   /* IPK__PS_CHECK registrations: asked at every wait */
    ipk__pregv pending; /* told that a message waits in user space */
    unsigned ntimed;    /* registrations with IPK__PS_TIMED */
    int64_t timed_ns;   /* the back-off period the timed channels are due */
    int64_t timer_ns;   /* the period the timerfd runs at now (0: stopped) */
    int waiting;        /* a thread is in ipk_poller_wait */
    int nested;         /* ipk_poller_fd() was asked for: keep the descriptor honest */
    int kicked;         /* the eventfd holds a count */
    uint64_t round;
};

static int ipk__pregv_add(ipk__pregv *a, ipk__preg *r)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        ipk__preg **v = realloc(a->v, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = r;
    return 0;
}

static void ipk__pregv_del(ipk__pregv *a, const ipk__preg *r)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i] == r) {
            a->v[i] = a->v[--a->n];
            return;
        }
}

/* Makes the poller's descriptor readable (and a waiting thread return to look). */
static void ipk__kick(ipk_poller *p)
{
    if (p->kicked)
        return;
    uint64_t one = 1;
    if (write(p->evfd, &one, sizeof one) == (ssize_t)sizeof one)
        p->kicked = 1;
}

static void ipk__unkick(ipk_poller *p)
{
    uint64_t v;
    if (p->kicked && read(p->evfd, &v, sizeof v) >= 0)
        p->kicked = 0;
}

static int ipk__ep_add(int epfd, int fd, uint32_t ev, uint64_t data)
{
    struct epoll_event e = {.events = ev, .data.u64 = data};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) == 0 ? 0 : -errno;
}

int ipk_poller_new(ipk_poller **out)
{
    ipk__err_clear();
    if (out == NULL)
        return ipk__err(-EINVAL, "ipk_poller_new: NULL result pointer");
    *out = NULL;
    ipk_poller *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    int r;
    p->evfd = p->tfd = -1;
    pthread_mutex_init(&p->mu, NULL);
    p->timed_ns = IPK__TIMED_MIN_NS;
    if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        r = ipk__errsys(-errno, "poller: epoll_create1");
        goto fail;
    }
    if ((p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        r = ipk__errsys(-errno, "poller: eventfd");
        goto fail;
    }
    if ((p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0) {
        r = ipk__errsys(-errno, "poller: timerfd_create");
        goto fail;
    }
    if ((r = ipk__ep_add(p->epfd, p->evfd, EPOLLIN, IPK__SLOT_EVFD)) != 0 ||
        (r = ipk__ep_add(p->epfd, p->tfd, EPOLLIN, IPK__SLOT_TIMER)) != 0) {
        ipk__errsys(r, "poller: epoll_ctl");
        goto fail;
    }
    *out = p;
    return 0;
fail:
    ipk__close_fd(p->epfd);
    ipk__close_fd(p->evfd);
    ipk__close_fd(p->tfd);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return r;
}

/* What to watch for c: the transport's answer, or its descriptors. */
static int ipk__src(ipk_chan *c, unsigned interest, ipk__pollsrc *src)
{
    for (int i = 0; i < IPK__PS_FDS; i++) {
        src->fd[i] = -1;
        src->ev[i] = 0;
    }
    src->flags = 0;
    if (c->tr->poll_src)
        return c->tr->poll_src(c, interest, src);
    int n = 0;
    if (interest & IPK_POLLIN) {
        if (c->rfd < 0)
            return ipk__err(IPK_ENOTSUP, "%s: this end of the channel does not receive", c->name);
        src->fd[n] = c->rfd;
        src->ev[n++] = EPOLLIN;
    }
    if (interest & IPK_POLLOUT) {
        if (c->wfd < 0 || ((c->tr->flags & IPK__TF_ACCEPT) && c->role == IPK__LISTENER))
            return ipk__err(IPK_ENOTSUP, "%s: this end of the channel does not send", c->name);
        if (n == 1 && c->wfd == src->fd[0])
            src->ev[0] |= EPOLLOUT;
        else {
            src->fd[n] = c->wfd;
            src->ev[n++] = EPOLLOUT;
        }
    }
    return 0;
}

static uint64_t ipk__data(const ipk_poller *p, const ipk__preg *r)
{
    return (uint64_t)p->gen[r->slot] << 32 | r->slot;
}

/* Puts r's descriptors in the epoll set. */
static int ipk__watch(ipk_poller *p, ipk__preg *r)
{
    for (int i = 0; i < IPK__PS_FDS; i++) {
        if (r->src.fd[i] < 0)
            continue;
        int e = ipk__ep_add(p->epfd, r->src.fd[i], r->src.ev[i], ipk__data(p, r));
        if (e != 0) {
            for (int j = 0; j < i; j++)
                if (r->src.fd[j] >= 0)
                    epoll_ctl(p->epfd, EPOLL_CTL_DEL, r->src.fd[j], NULL);
            return ipk__errsys(e, "%s: poller: epoll_ctl add of descriptor %d", r->c->name,
                               r->src.fd[i]);
        }
    }
    return 0;
}

static void ipk__unwatch(ipk_poller *p, ipk__preg *r)
{
    for (int i = 0; i < IPK__PS_FDS; i++)
        if (r->src.fd[i] >= 0)
            epoll_ctl(p->epfd, EPOLL_CTL_DEL, r->src.fd[i], NULL);
}

static int ipk__slot_take(ipk_poller *p, ipk__preg *r)
{
    for (uint32_t i = p->free_hint; i < p->nslots; i++)
        if (p->slots[i] == NULL) {
            p->slots[i] = r;
            r->slot = i;
            p->free_hint = i + 1;
            return 0;
        }
    if (p->nslots == p->cap_slots) {
        uint32_t cap = p->cap_slots ? p->cap_slots * 2 : 16;
        if (cap >= IPK__SLOT_TIMER)
            return -ENOSPC;
        ipk__preg **s = realloc(p->slots, cap * sizeof *s);
        if (s == NULL)
            return -ENOMEM;
        p->slots = s;
        uint32_t *g = realloc(p->gen, cap * sizeof *g);
        if (g == NULL)
            return -ENOMEM;
        p->gen = g;
        memset(p->gen + p->cap_slots, 0, (cap - p->cap_slots) * sizeof *g);
        p->cap_slots = cap;
    }
    r->slot = p->nslots++;
    p->slots[r->slot] = r;
    p->free_hint = p->nslots;
    return 0;
}

static void ipk__slot_drop(ipk_poller *p, ipk__preg *r)
{
    p->slots[r->slot] = NULL;
    p->gen[r->slot]++;
    if (r->slot < p->free_hint)
        p->free_hint = r->slot;
}

/* Registers r's source: the epoll set and the lists. */
static int ipk__enlist(ipk_poller *p, ipk__preg *r)
{
    int e = ipk__watch(p, r);
    if (e != 0)
        return e;
    if ((r->src.flags & IPK__PS_CHECK) && (e = ipk__pregv_add(&p->check, r)) != 0) {
        ipk__unwatch(p, r);
        return e;
    }
    if (r->src.flags & IPK__PS_TIMED)
        p->ntimed++;
    return 0;
}

static void ipk__delist(ipk_poller *p, ipk__preg *r)
{
    if (r->armed && r->c->tr->poll_check)
        r->c->tr->poll_check(r->c, r->interest, IPK__PC_DISARM);
    r->armed = 0;
    ipk__unwatch(p, r);
    if (r->src.flags & IPK__PS_CHECK)
        ipk__pregv_del(&p->check, r);
    if (r->src.flags & IPK__PS_TIMED)
        p->ntimed--;
    if (r->pending) {
        ipk__pregv_del(&p->pending, r);
        r->pending = 0;
    }
}

static int ipk__interest_ok(ipk_chan *c, unsigned events)
{
    if (events == 0 || (events & ~(IPK_POLLIN | IPK_POLLOUT)) != 0)
        return ipk__err(-EINVAL, "%s: poller: interest 0x%x; use IPK_POLLIN and/or IPK_POLLOUT",
                        c->name, events);
    return 0;
}

int ipk_poller_add(ipk_poller *p, ipk_chan *c, unsigned events, void *user)
{
    ipk__err_clear();
    if (p == NULL || c == NULL)
        return ipk__err(-EINVAL, "ipk_poller_add: NULL argument");
    int e = ipk__interest_ok(c, events);
    if (e != 0)
        return e;
    if (c->preg != NULL)
        return ipk__err(-EEXIST, "%s: the channel is already in a poller", c->name);
    ipk__preg *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->p = p;
    r->c = c;
    r->user = user;
    r->interest = events;
    if ((e = ipk__src(c, events, &r->src)) != 0) {
        free(r);
        return e;
    }
    pthread_mutex_lock(&p->mu);
    if ((e = ipk__slot_take(p, r)) != 0 || (e = ipk__enlist(p, r)) != 0) {
        if (e == -ENOMEM || e == -ENOSPC)
            ipk__err(e, "%s: poller: no room for another channel", c->name);
        if (p->slots && r->slot < p->nslots && p->slots[r->slot] == r)
            ipk__slot_drop(p, r);
        pthread_mutex_unlock(&p->mu);
        if (c->tr->poll_end)
            c->tr->poll_end(c);
        free(r);
        return e;
    }
    c->preg = r;
    /* A thread asleep in a wait, or a foreign loop asleep on the descriptor, must come back to
     * ask (and arm) a channel it does not know. */
    if ((p->waiting || p->nested) && (r->src.flags & IPK__PS_CHECK))
        ipk__kick(p);
    pthread_mutex_unlock(&p->mu);
    /* Already buffered in user space counts as ready. */
    if ((events & IPK_POLLIN) && ipk_pending(c))
        ipk__poll_pending(c);
    return 0;
}

int ipk_poller_mod(ipk_poller *p, ipk_chan *c, unsigned events, void *user)
{
    ipk__err_clear();
    if (p == NULL || c == NULL)
        return ipk__err(-EINVAL, "ipk_poller_mod: NULL argument");
    int e = ipk__interest_ok(c, events);
    if (e != 0)
        return e;
    ipk__preg *r = c->preg;
    if (r == NULL || r->p != p)
        return ipk__err(-ENOENT, "%s: the channel is not in this poller", c->name);
    ipk__pollsrc src;
    if ((e = ipk__src(c, events, &src)) != 0)
        return e;
    pthread_mutex_lock(&p->mu);
    ipk__delist(p, r);
    ipk__pollsrc old = r->src;
    unsigned old_interest = r->interest;
    r->src = src;
    r->interest = events;
    if ((e = ipk__enlist(p, r)) != 0) { /* put back what was there */
        r->src = old;
        r->interest = old_interest;
        if (ipk__enlist(p, r) != 0)
            ipk__err(e, "%s: poller: the channel could not be put back after a failed change",
                     c->name);
    } else {
        r->user = user;
        if (p->waiting)
            ipk__kick(p);
    }
    pthread_mutex_unlock(&p->mu);
    if (e == 0 && (events & IPK_POLLIN) && ipk_pending(c))
        ipk__poll_pending(c);
    return e;
}

/* Takes r out of its poller; the caller holds p->mu. */
static void ipk__remove(ipk_poller *p, ipk__preg *r)
{
    ipk__delist(p, r);
    ipk__slot_drop(p, r);
    r->c->preg = NULL;
    if (r->c->tr->poll_end)
        r->c->tr->poll_end(r->c);
    free(r);
}

int ipk_poller_del(ipk_poller *p, ipk_chan *c)
{
    ipk__err_clear();
    if (p == NULL || c == NULL)
        return ipk__err(-EINVAL, "ipk_poller_del: NULL argument");
    pthread_mutex_lock(&p->mu);
    ipk__preg *r = c->preg;
    int e = 0;
    if (r == NULL || r->p != p)
        e = ipk__err(-ENOENT, "%s: the channel is not in this poller", c->name);
    else
        ipk__remove(p, r);
    pthread_mutex_unlock(&p->mu);
    return e;
}

void ipk__poll_forget(ipk_chan *c)
{
    if (c->preg != NULL)
        ipk_poller_del(c->preg->p, c);
}

void ipk__poll_pending(ipk_chan *c)
{
    ipk__preg *r = c->preg;
    if (r == NULL || !(r->interest & IPK_POLLIN))
        return;
    ipk_poller *p = r->p;
    pthread_mutex_lock(&p->mu);
    if (!r->pending && ipk__pregv_add(&p->pending, r) == 0)
        r->pending = 1;
    if (p->waiting || p->nested)
        ipk__kick(p);
    pthread_mutex_unlock(&p->mu);
}

int ipk_poller_fd(ipk_poller *p)
{
    if (p == NULL)
        return ipk__err(-EINVAL, "ipk_poller_fd: NULL poller");
    pthread_mutex_lock(&p->mu);
    p->nested = 1;
    /* What is ready now must make the descriptor readable from the start. */
    if (p->pending.n > 0 || p->check.n > 0)
        ipk__kick(p);
    pthread_mutex_unlock(&p->mu);
    return p->epfd;
}

/* Adds bits for r to the events of this round (one entry per channel). */
static void ipk__report(ipk_poller *p, ipk__preg *r, unsigned bits, ipk_pollev *ev, int max, int *n)
{
    if (bits == 0)
        return;
    if (r->round == p->round) {
        ev[r->evi].events |= bits;
        return;
    }
    if (*n >= max)
        return;
    r->round = p->round;
    r->evi = *n;
    ev[*n].chan = r->c;
    ev[*n].user = r->user;
    ev[*n].events = bits;
    (*n)++;
}

/* Asks a checked channel (op PEEK or DISARM) and reports what is ready. */
static void ipk__ask(ipk_poller *p, ipk__preg *r, int op, ipk_pollev *ev, int max, int *n)
{
    int b = r->c->tr->poll_check(r->c, r->interest, op);
    ipk__report(p, r, b < 0 ? r->interest | IPK_POLLHUP : (unsigned)b & r->interest, ev, max, n);
}

/* What user space knows without a system call of the poller's own: the pending list, and every
 * checked channel (disarmed first if a previous wait left it armed). */
static void ipk__look(ipk_poller *p, ipk_pollev *ev, int max, int *n)
{
    for (size_t i = 0; i < p->pending.n;) {
        ipk__preg *r = p->pending.v[i];
        if (ipk_pending(r->c)) {
            ipk__report(p, r, IPK_POLLIN, ev, max, n);
            i++;
        } else {
            r->pending = 0;
            p->pending.v[i] = p->pending.v[--p->pending.n];
        }
    }
    for (size_t i = 0; i < p->check.n; i++) {
        ipk__preg *r = p->check.v[i];
        int op = r->armed ? IPK__PC_DISARM : IPK__PC_PEEK;
        r->armed = 0;
        ipk__ask(p, r, op, ev, max, n);
    }
}

/* Arms every checked channel that has a wake-up line. Returns 1 when one turned out ready
 * (then everything is disarmed again and the caller looks once more). */
static int ipk__arm(ipk_poller *p)
{
    for (size_t i = 0; i < p->check.n; i++) {
        ipk__preg *r = p->check.v[i];
        if (r->armed || (r->src.flags & IPK__PS_TIMED))
            continue;
        int b = r->c->tr->poll_check(r->c, r->interest, IPK__PC_ARM);
        if (b != 0) {
            for (size_t j = 0; j < p->check.n; j++)
                if (p->check.v[j]->armed) {
                    p->check.v[j]->armed = 0;
                    p->check.v[j]->c->tr->poll_check(p->check.v[j]->c, p->check.v[j]->interest,
                                                     IPK__PC_DISARM);
                }
            return 1;
        }
        r->armed = 1;
    }
    return 0;
}

static void ipk__disarm(ipk_poller *p, ipk_pollev *ev, int max, int *n)
{
    for (size_t i = 0; i < p->check.n; i++) {
        ipk__preg *r = p->check.v[i];
        if (r->armed) {
            r->armed = 0;
            ipk__ask(p, r, IPK__PC_DISARM, ev, max, n);
        }
    }
}

#define IPK__F_TIMER 0x1 /* the timer fired: look at the timed channels */
#define IPK__F_HINT  0x2 /* a checked channel's descriptor or the eventfd: look at everything */

/* Maps fetched epoll events onto channels; returns IPK__F_* for what else must be looked at. */
static int ipk__fetched(ipk_poller *p, const struct epoll_event *e, int k, ipk_pollev *ev, int max,
                        int *n)
{
    int f = 0;
    for (int i = 0; i < k; i++) {
        uint32_t slot = (uint32_t)e[i].data.u64, gen = (uint32_t)(e[i].data.u64 >> 32);
        if (slot == IPK__SLOT_EVFD) {
            ipk__unkick(p);
            f |= IPK__F_HINT;
            continue;
        }
        if (slot == IPK__SLOT_TIMER) {
            uint64_t v;
            if (read(p->tfd, &v, sizeof v) > 0)
                f |= IPK__F_TIMER;
            continue;
        }
        if (slot >= p->nslots || p->gen[slot] != gen || p->slots[slot] == NULL)
            continue; /* removed by another thread meanwhile */
        ipk__preg *r = p->slots[slot];
        if (r->src.flags & IPK__PS_CHECK) {
            f |= IPK__F_HINT; /* only a hint: the transport is asked */
            continue;
        }
        unsigned bits = 0;
        if (e[i].events & EPOLLIN)
            bits |= IPK_POLLIN;
        if (e[i].events & EPOLLOUT)
            bits |= IPK_POLLOUT;
        if (e[i].events & (EPOLLHUP | EPOLLERR)) /* the next call on the channel says which */
            bits |= IPK_POLLHUP | r->interest;
        ipk__report(p, r, bits & (r->interest | IPK_POLLHUP), ev, max, n);
    }
    return f;
}

/* The timed channels only (the timer fired and nothing else happened). */
static void ipk__look_timed(ipk_poller *p, ipk_pollev *ev, int max, int *n)
{
    for (size_t i = 0; i < p->check.n; i++)
        if (p->check.v[i]->src.flags & IPK__PS_TIMED)
            ipk__ask(p, p->check.v[i], IPK__PC_PEEK, ev, max, n);
}

/* Runs the back-off timer at p->timed_ns (periodic), or stops it. */
static void ipk__timer_set(ipk_poller *p, int64_t ns)
{
    if (ns == p->timer_ns)
        return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = its.it_interval.tv_sec = ns / 1000000000;
    its.it_value.tv_nsec = its.it_interval.tv_nsec = ns % 1000000000;
    if (timerfd_settime(p->tfd, 0, &its, NULL) == 0)
        p->timer_ns = ns;
}

int ipk_poller_wait(ipk_poller *p, ipk_pollev *ev, int max, int timeout_ms)
{
    ipk__err_clear();
    if (p == NULL || ev == NULL || max <= 0)
        return ipk__err(-EINVAL, "ipk_poller_wait: NULL poller, NULL events or max <= 0");
    int64_t dl = ipk__deadline(timeout_ms);
    struct epoll_event fetched[IPK__EV_BATCH];
    int kmax = max < IPK__EV_BATCH ? max : IPK__EV_BATCH;
    pthread_mutex_lock(&p->mu);
    if (p->waiting) {
        pthread_mutex_unlock(&p->mu);
        return ipk__err(-EBUSY, "ipk_poller_wait: another thread is waiting on this poller");
    }
    p->waiting = 1;
    p->round++;
    int n = 0;
    for (;;) {
        ipk__look(p, ev, max, &n);
        if (n > 0 || dl == IPK__DL_NOW) {
            /* Descriptors too, without blocking: a channel always ready in user space must not
             * starve the others. */
            int k = epoll_wait(p->epfd, fetched, kmax, 0);
            int f = k > 0 ? ipk__fetched(p, fetched, k, ev, max, &n) : 0;
            if (n > 0)
                break;
            /* A tick that found nothing (a foreign loop woke us for it): look less often. */
            if ((f & IPK__F_TIMER) && p->timed_ns < IPK__TIMED_MAX_NS)
                p->timed_ns =
                    p->timed_ns * 2 < IPK__TIMED_MAX_NS ? p->timed_ns * 2 : IPK__TIMED_MAX_NS;
        }
        if (dl == IPK__DL_NOW || (dl != IPK__DL_FOREVER && ipk__now() >= dl)) {
            n = ipk__expired(dl);
            break;
        }
        if (ipk__arm(p))
            continue;
        /* What the channels coalesced goes out before the wait: the answer waited for may
         * depend on it (coalesce.c). */
        for (uint32_t i = 0; i < p->nslots; i++)
            if (p->slots[i] != NULL)
                ipk__co_nudge(p->slots[i]->c);
        /* Asleep until a descriptor, a wake-up line or the timer says something. A timer tick
         * with nothing on the timed channels goes back to sleep still armed: the wake-up lines
         * of the others stay declared, at no cost to their publishers. */
        int f = 0;
        for (;;) {
            ipk__timer_set(p, p->ntimed ? p->timed_ns : 0);
            pthread_mutex_unlock(&p->mu);
            int k = epoll_wait(p->epfd, fetched, kmax, ipk__remaining_ms(dl));
            int e = k < 0 ? errno : 0;
            pthread_mutex_lock(&p->mu);
            if (k < 0 && e != EINTR) {
                n = ipk__errsys(-e, "poller: epoll_wait");
                break;
            }
            f = k > 0 ? ipk__fetched(p, fetched, k, ev, max, &n) : 0;
            if (n > 0 || (f & IPK__F_HINT))
                break;
            if (f & IPK__F_TIMER) {
                ipk__look_timed(p, ev, max, &n);
                if (n > 0)
                    break;
                if (p->timed_ns < IPK__TIMED_MAX_NS) /* nothing came: look less often */
                    p->timed_ns =
                        p->timed_ns * 2 < IPK__TIMED_MAX_NS ? p->timed_ns * 2 : IPK__TIMED_MAX_NS;
            }
            if (dl != IPK__DL_FOREVER && ipk__now() >= dl)
                break;
        }
        ipk__disarm(p, ev, max, &n);
        if (n != 0)
            break;
    }
    if (n > 0)
        p->timed_ns = IPK__TIMED_MIN_NS;
    if (p->nested) {
        if (n > 0) /* level-triggered through the descriptor: come back for what is left */
            ipk__kick(p);
        else if (ipk__arm(p)) /* the descriptor must say when to come back */
            ipk__kick(p);
        else /* ... and for channels nothing signals, the timer's tick */
            ipk__timer_set(p, p->ntimed ? p->timed_ns : 0);
    } else if (p->timer_ns) {
        ipk__timer_set(p, 0); /* nobody waits: no ticks */
    }
    p->waiting = 0;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void ipk_poller_free(ipk_poller *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < p->nslots; i++)
        if (p->slots[i] != NULL)
            ipk__remove(p, p->slots[i]);
    pthread_mutex_unlock(&p->mu);
    ipk__close_fd(p->epfd);
    ipk__close_fd(p->evfd);
    ipk__close_fd(p->tfd);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p->gen);
    free(p->check.v);
    free(p->pending.v);
    free(p);
}
