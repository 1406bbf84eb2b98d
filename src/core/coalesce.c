/*
 * coalesce.c - the bound on send coalescing: the process's list of coalescing channels and the
 * flusher thread that writes a buffer older than its channel's bound.
 *
 * A stream socket (unix:, tcp:) with flush=US > 0 (the default) keeps the small frames ipk_send
 * accepts in c->out (stream.c) and writes them together: when the buffer is full, and before the
 * channel's owner receives, polls, flushes, shuts down or closes. Nothing in that path can tell
 * how long the owner will then do something else, so one thread per process writes any buffer
 * that has waited longer than its bound: `ipk_send(c, "hi", 2, -1); sleep(10);` delivers "hi"
 * within about the bound.
 *
 * Costs on the send path: an uncontended mutex per call, and on the call that makes a buffer
 * non-empty a clock read and one sequentially consistent store and load. The flusher is woken
 * (one futex wake) only from deep sleep, i.e. after IPK__CO_IDLE_NS without any buffered byte in
 * the process; while traffic flows it ticks once per bound and finds most buffers already written
 * by their owners.
 *
 * Locks: a channel's co.mu, then the list lock (never the other way round except by trylock:
 * the flusher holds the list lock and only trylocks a channel, whose owner, busy inside a call,
 * flushes it itself). The flusher writes with MSG_DONTWAIT, never blocks on a descriptor, and
 * keeps the list lock while it touches a channel, so ipk_close (which unlists first) never frees
 * a channel under it. Its writes bypass the fault-injection table (a test arms faults for the
 * calls of its own thread).
 *
 * fork(): the child drops its inherited copy of buffered bytes (the parent still owns them and
 * sends them), re-initialises the locks (another thread may have held them at fork), and starts
 * its own flusher when it first buffers. exit() and dlclose(): a destructor writes what is
 * buffered, waiting at most IPK__CO_EXIT_MS in total.
 */
#include "ipk.h"
#include "transport.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define IPK__CO_IDLE_NS  ((int64_t)20000000) /* no buffered byte for 20 ms: sleep until woken */
#define IPK__CO_BUSY_NS  ((int64_t)20000)    /* an owner holds the lock: look again after 20 us+ */
#define IPK__CO_SLACK_NS 5000UL              /* the flusher's timer slack */
#define IPK__CO_EXIT_MS  1000                /* what exit() may spend writing buffered bytes */

static pthread_mutex_t ipk__co_lock = PTHREAD_MUTEX_INITIALIZER; /* the list, the thread state */
static ipk_chan *ipk__co_list;
static pthread_t ipk__co_thread;
static _Atomic int ipk__co_started; /* read by senders without the lock */
static int ipk__co_stop;
static pthread_once_t ipk__co_once = PTHREAD_ONCE_INIT;
/* When the flusher will next look (INT64_MAX: asleep until woken), and the word it sleeps on. */
static _Atomic int64_t ipk__co_wake_at = INT64_MAX;
static _Atomic uint32_t ipk__co_seq;
static _Atomic uint32_t ipk__co_up; /* the thread has started (see ipk__co_start) */

static void ipk__co_futex_wake(void)
{
    atomic_fetch_add(&ipk__co_seq, 1);
    syscall(SYS_futex, &ipk__co_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Sleeps on ipk__co_seq while it still reads seq, until the absolute monotonic time `until`. */
static void ipk__co_futex_wait(uint32_t seq, int64_t until)
{
    struct timespec ts, *tp = NULL;
    if (until != INT64_MAX) {
        ts.tv_sec = (time_t)(until / 1000000000);
        ts.tv_nsec = (long)(until % 1000000000);
        tp = &ts;
    }
    syscall(SYS_futex, &ipk__co_seq, FUTEX_WAIT_BITSET_PRIVATE, seq, tp, NULL,
            FUTEX_BITSET_MATCH_ANY);
}

/*
 * One non-blocking write of what c->out holds (c->co.mu held). Empties it when all went;
 * otherwise (EAGAIN: the peer is slow) leaves the rest for a later look. A hard error is kept
 * in c->co.err: those bytes, which ipk_send had accepted, are lost, and the stream with them.
 */
static void ipk__co_write(ipk_chan *c)
{
    ipk__wbuf *o = &c->out;
    while (o->len > o->off) {
        ssize_t w = send(c->wfd, o->buf + o->off, o->len - o->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            o->off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            atomic_store(&c->co.since, ipk__now()); /* due again one bound from now */
            return;
        }
        atomic_store(&c->co.err, w < 0 ? -errno : -EPIPE);
        o->len = o->off = 0;
        atomic_store(&c->co.since, 0);
        return;
    }
    o->len = o->off = 0;
    atomic_store(&c->co.since, 0);
}

static void *ipk__co_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_TIMERSLACK, IPK__CO_SLACK_NS, 0, 0, 0);
    atomic_store(&ipk__co_up, 1);
    syscall(SYS_futex, &ipk__co_up, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    int64_t quiet = ipk__now(); /* since when nothing has been buffered */
    pthread_mutex_lock(&ipk__co_lock);
    while (!ipk__co_stop) {
        uint32_t seq = atomic_load(&ipk__co_seq);
        int64_t now = ipk__now(), next = INT64_MAX, tick = INT64_MAX;
        for (ipk_chan *c = ipk__co_list; c != NULL; c = c->co.next) {
            if (c->co.bound < tick)
                tick = c->co.bound;
            int64_t since = atomic_load(&c->co.since);
            if (since == 0)
                continue;
            int64_t due = since + c->co.bound;
            if (due <= now) {
                if (pthread_mutex_trylock(&c->co.mu) == 0) {
                    ipk__co_write(c);
                    pthread_mutex_unlock(&c->co.mu);
                    since = atomic_load(&c->co.since);
                    due = since + c->co.bound;
                } else { /* its owner is inside a call on it: look again a little later */
                    due = now +
                          (c->co.bound / 4 > IPK__CO_BUSY_NS ? c->co.bound / 4 : IPK__CO_BUSY_NS);
                }
            }
            if (since != 0 && due < next)
                next = due;
        }
        if (next != INT64_MAX)
            quiet = now;
        else if (now - quiet < IPK__CO_IDLE_NS && tick != INT64_MAX)
            next = now + tick; /* traffic may resume: tick rather than be woken per burst */
        /* Deep sleep: declare it, then look once more (a sender either sees INT64_MAX and
         * wakes us, or made its buffer non-empty before this look, which finds it). */
        atomic_store(&ipk__co_wake_at, next);
        if (next == INT64_MAX) {
            int any = 0;
            for (ipk_chan *c = ipk__co_list; c != NULL && !any; c = c->co.next)
                any = atomic_load(&c->co.since) != 0;
            if (any)
                continue;
        }
        pthread_mutex_unlock(&ipk__co_lock);
        ipk__co_futex_wait(seq, next);
        pthread_mutex_lock(&ipk__co_lock);
    }
    pthread_mutex_unlock(&ipk__co_lock);
    return NULL;
}

/* ---- fork and exit ---- */

static void ipk__co_prefork(void)
{
    pthread_mutex_lock(&ipk__co_lock);
}

static void ipk__co_postfork_parent(void)
{
    pthread_mutex_unlock(&ipk__co_lock);
}

/* The child has no flusher, and its buffers hold bytes its parent will send: dropped. */
static void ipk__co_postfork_child(void)
{
    pthread_mutex_unlock(&ipk__co_lock); /* this thread took it in the prefork handler */
    ipk__co_started = 0;
    ipk__co_stop = 0;
    atomic_store(&ipk__co_wake_at, INT64_MAX);
    for (ipk_chan *c = ipk__co_list; c != NULL; c = c->co.next) {
        pthread_mutex_init(&c->co.mu, NULL);
        c->out.len = c->out.off = 0;
        atomic_store(&c->co.since, 0);
    }
}

static void ipk__co_init(void)
{
    pthread_atfork(ipk__co_prefork, ipk__co_postfork_parent, ipk__co_postfork_child);
}

/* At exit (and dlclose): what is buffered is written, within IPK__CO_EXIT_MS for all channels.
 * A channel whose owner is inside a call at that moment (another thread) is left to it. */
__attribute__((destructor)) static void ipk__co_fini(void)
{
    pthread_mutex_lock(&ipk__co_lock);
    int64_t dl = ipk__deadline(IPK__CO_EXIT_MS);
    for (ipk_chan *c = ipk__co_list; c != NULL; c = c->co.next) {
        if (atomic_load(&c->co.since) == 0 || pthread_mutex_trylock(&c->co.mu) != 0)
            continue;
        ipk__wbuf *o = &c->out;
        while (o->len > o->off && atomic_load(&c->co.err) == 0) {
            ipk__co_write(c);
            if (o->len > o->off && ipk__wait_fd(c->wfd, POLLOUT, dl) <= 0)
                break;
        }
        pthread_mutex_unlock(&c->co.mu);
    }
    int join = ipk__co_started;
    ipk__co_stop = 1;
    pthread_mutex_unlock(&ipk__co_lock);
    if (join) {
        ipk__co_futex_wake();
        pthread_join(ipk__co_thread, NULL);
    }
}

/* ---- the channel's side ---- */

void ipk__co_open(ipk_chan *c, int64_t bound_ns)
{
    pthread_once(&ipk__co_once, ipk__co_init);
    pthread_mutex_init(&c->co.mu, NULL);
    c->co.bound = bound_ns;
    c->co.on = 1;
    pthread_mutex_lock(&ipk__co_lock);
    c->co.next = ipk__co_list;
    c->co.prev = &ipk__co_list;
    if (ipk__co_list != NULL)
        ipk__co_list->co.prev = &c->co.next;
    ipk__co_list = c;
    c->co.listed = 1;
    pthread_mutex_unlock(&ipk__co_lock);
}

void ipk__co_close(ipk_chan *c)
{
    if (!c->co.listed)
        return;
    pthread_mutex_lock(&ipk__co_lock);
    *c->co.prev = c->co.next;
    if (c->co.next != NULL)
        c->co.next->co.prev = c->co.prev;
    c->co.listed = 0;
    pthread_mutex_unlock(&ipk__co_lock);
    pthread_mutex_destroy(&c->co.mu);
}

/* c->out went from empty to non-empty (c->co.mu held). Returns 0, or an error when the flusher
 * could not be started (the caller then writes through). */
int ipk__co_armed(ipk_chan *c)
{
    int64_t now = ipk__now(), due = now + c->co.bound;
    atomic_store(&c->co.since, now);
    int64_t w = atomic_load(&ipk__co_wake_at);
    if (due >= w)
        return 0; /* the flusher looks before then anyway */
    if (w == INT64_MAX && !ipk__co_started) {
        pthread_mutex_lock(&ipk__co_lock);
        int r = 0;
        if (!ipk__co_started && !ipk__co_stop) {
            pthread_attr_t a;
            pthread_attr_init(&a);
            pthread_attr_setstacksize(&a, (size_t)64 << 10);
            /* The thread must not take signals meant for the program's own threads. */
            sigset_t all, old;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &old);
            atomic_store(&ipk__co_up, 0);
            r = -pthread_create(&ipk__co_thread, &a, ipk__co_main, NULL);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            pthread_attr_destroy(&a);
            ipk__co_started = r == 0;
            /* Returns once the thread runs its own code: a fork() right after this send then
             * never copies a thread half-way through its start (which holds the allocator's
             * locks in some malloc implementations, AddressSanitizer's among them). */
            while (r == 0 && atomic_load(&ipk__co_up) == 0)
                syscall(SYS_futex, &ipk__co_up, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        }
        pthread_mutex_unlock(&ipk__co_lock);
        if (r != 0) {
            atomic_store(&c->co.since, 0);
            return ipk__errsys(r, "%s: cannot start the thread that bounds send coalescing",
                               c->name);
        }
    }
    if (atomic_compare_exchange_strong(&ipk__co_wake_at, &w, due))
        ipk__co_futex_wake();
    return 0;
}

/* Writes what c buffered, without blocking, unless its owner is inside a call (then it will). */
void ipk__co_nudge(ipk_chan *c)
{
    if (!c->co.on || atomic_load_explicit(&c->co.since, memory_order_relaxed) == 0 ||
        pthread_mutex_trylock(&c->co.mu) != 0)
        return;
    ipk__co_push(c);
    pthread_mutex_unlock(&c->co.mu);
}

/* A write error met on c's buffered bytes (by the flusher, or by a receive's push), for every
 * later write-side call: those bytes had been accepted and did not reach the peer, so nothing
 * more may follow them on the stream. Receiving goes on: what the peer sent can still be read. */
int ipk__co_error(ipk_chan *c)
{
    int e = atomic_load_explicit(&c->co.err, memory_order_relaxed);
    if (e == 0)
        return 0;
    return ipk__errsys(e,
                       "%s: writing messages that an earlier send had accepted failed; they did "
                       "not reach the peer, and nothing more is sent on this channel",
                       c->name);
}
