/*
 * poll_vs_raw.c - the cost of waiting through an ipk_poller, measured beside the raw system
 * calls in the same run, on the same CPUs (issue 12, "Performance"):
 *
 *   a. wake: one unixgram channel of N (1, 100, 10000) is active. Round trip: B sends a
 *      datagram, A wakes in ipk_poller_wait (or epoll_wait on the same descriptors), takes it
 *      with ipk_recv and answers on a pipe. Hot: one process, a datagram already queued, so
 *      the wait never blocks: send, wait, receive (the poller's own work per wake, undiluted).
 *   b. shm: both ends asleep in a poller, each woken by the other's ipk_send, against the same
 *      ping-pong woken with a raw eventfd (blocking read), a raw pipe and epoll + eventfd; and
 *      with both ends awake (spinning in ipk_recv), the round trip with each end's channel
 *      registered in a poller against the same channels registered in none.
 *   c. sysv: the round trip with the receiver in a poller against a blocking msgrcv
 *      (ipk_recv), and the latency of single messages after gaps of 10 us to 20 ms, checked
 *      against the documented bound of the back-off timer.
 *
 * Every comparison is a ping-pong run in blocks: each block runs every variant in turn (the
 * order reversed every other block), so the variants see the same state of the machine; a
 * ratio is taken per block and the median and range of the blocks are printed.
 * Built by bench/CMakeLists.txt. Run: build/bench/poll_vs_raw [-c A] [-C B] [-r BLOCKS]
 * [-n ROUNDTRIPS] [-t abc] [-N 1,100,10000]; see docs/PERFORMANCE.md.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm_raw.h"

#include "ipckit.h"

extern int ipk__shm_force_fence; /* src/transport/shm/ring.h: the benchmark hook */

#define PB_MAXVAR   5
#define PB_MAXBLOCK 64
#define PB_MSG      64

static void ipk_check(long r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "%s: %s (%s)\n", what, ipk_strerror((int)r), ipk_errmsg());
        exit(2);
    }
}

static void sys_check(long r, const char *what)
{
    if (r < 0) {
        perror(what);
        exit(2);
    }
}

static void full_read(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        sys_check(k <= 0 ? -1 : k, "read");
        got += (size_t)k;
    }
}

static void full_write(int fd, const void *buf, size_t n)
{
    if (write(fd, buf, n) != (ssize_t)n) {
        perror("write");
        exit(2);
    }
}

/* ---- the block runner ---- */

/*
 * A ping-pong with variants. The runner forks: the child is A (answers), the parent is B
 * (times each round trip). Both run blocks x variants x (warm + k) steps in the same order, so
 * they stay in lockstep without talking about it.
 */
typedef struct pb_test pb_test;
struct pb_test {
    const char *title;
    int nvar;
    const char *vname[PB_MAXVAR];
    int cpu_a, cpu_b;
    void (*a_setup)(pb_test *t);
    void (*a_begin)(pb_test *t, int v); /* optional: before a variant's steps in a block */
    void (*a_step)(pb_test *t, int v);
    void (*b_setup)(pb_test *t);
    void (*b_begin)(pb_test *t, int v);
    void (*b_step)(pb_test *t, int v);
    void *st;
};

static int pb_blocks = 7, pb_k = 2000;

/* p50[v][b]: the median round trip of variant v in block b (ns). */
static void pb_run(pb_test *t, double p50[PB_MAXVAR][PB_MAXBLOCK])
{
    int warm = pb_k / 10 > 20 ? pb_k / 10 : 20;
    fflush(NULL);
    pid_t pid = fork();
    sys_check(pid, "fork");
    if (pid == 0) {
        bl_pin(t->cpu_a);
        t->a_setup(t);
        for (int b = 0; b < pb_blocks; b++)
            for (int j = 0; j < t->nvar; j++) {
                int v = b % 2 ? t->nvar - 1 - j : j;
                if (t->a_begin)
                    t->a_begin(t, v);
                for (int i = 0; i < warm + pb_k; i++)
                    t->a_step(t, v);
            }
        _exit(0);
    }
    bl_pin(t->cpu_b);
    t->b_setup(t);
    int64_t *s = malloc(sizeof *s * (size_t)pb_k);
    for (int b = 0; b < pb_blocks; b++)
        for (int j = 0; j < t->nvar; j++) {
            int v = b % 2 ? t->nvar - 1 - j : j;
            if (t->b_begin)
                t->b_begin(t, v);
            for (int i = 0; i < warm + pb_k; i++) {
                int64_t t0 = bl_now();
                t->b_step(t, v);
                if (i >= warm)
                    s[i - warm] = bl_now() - t0;
            }
            p50[v][b] = (double)bl_median(s, pb_k);
        }
    free(s);
    bl_wait(pid);
}

static void pb_fmt(char *buf, size_t cap, double ns)
{
    if (ns < 10000)
        snprintf(buf, cap, "%.0f ns", ns);
    else
        snprintf(buf, cap, "%.1f us", ns / 1000);
}

/* Prints each variant's median of block medians (with its range), then the ratio of variant
 * `of` to each other variant per block (median and range). Returns those medians in ratio[]
 * (ratio[of] = 1). */
static void pb_print(const pb_test *t, double p50[PB_MAXVAR][PB_MAXBLOCK], int of,
                     double ratio[PB_MAXVAR])
{
    printf("%s (CPUs %d and %d, %d blocks x %d round trips)\n", t->title, t->cpu_a, t->cpu_b,
           pb_blocks, pb_k);
    printf("  (ratio: %s / the row, per block: median [range])\n", t->vname[of]);
    for (int v = 0; v < t->nvar; v++) {
        double sorted[PB_MAXBLOCK], r[PB_MAXBLOCK];
        for (int b = 0; b < pb_blocks; b++) {
            sorted[b] = p50[v][b];
            r[b] = p50[of][b] / p50[v][b];
        }
        double med = bl_median_d(sorted, pb_blocks);
        ratio[v] = bl_median_d(r, pb_blocks);
        char a[32], lo[32], hi[32];
        pb_fmt(a, sizeof a, med);
        pb_fmt(lo, sizeof lo, sorted[0]);
        pb_fmt(hi, sizeof hi, sorted[pb_blocks - 1]);
        printf("  %-44s p50 %9s  [%s .. %s]", t->vname[v], a, lo, hi);
        if (v != of)
            printf("  ratio %.3f [%.3f .. %.3f]", ratio[v], r[0], r[pb_blocks - 1]);
        printf("\n");
    }
}

static void verdict(const char *what, double ratio, double target)
{
    printf("  => %s: %.3f (target <= %.2f) %s\n", what, ratio, target,
           ratio <= target ? "met" : "MISSED");
}

/* ---- a. the poller over N channels, one active ---- */

typedef struct pa_st {
    int n, active;
    ipk_chan **ls;
    char url[128];
    int reply[2];
    ipk_poller *p;
    int epfd;
    ipk_chan *d;
} pa_st;

static void pa_listen(pa_st *s, int n)
{
    s->n = n;
    s->active = n / 2;
    s->ls = calloc((size_t)n, sizeof *s->ls);
    for (int i = 0; i < n; i++) {
        char u[128];
        snprintf(u, sizeof u, "unixgram:@ipk-pb-%d-%d", (int)getpid(), i);
        ipk_check(ipk_listen(&s->ls[i], u, NULL), u);
        if (i == s->active)
            snprintf(s->url, sizeof s->url, "%s", u);
    }
}

static void pa_unlisten(pa_st *s)
{
    for (int i = 0; i < s->n; i++)
        ipk_close(s->ls[i]);
    free(s->ls);
}

/* The poller and an epoll set over the same descriptors. */
static void pa_watch(pa_st *s)
{
    ipk_check(ipk_poller_new(&s->p), "ipk_poller_new");
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    sys_check(s->epfd, "epoll_create1");
    for (int i = 0; i < s->n; i++) {
        ipk_check(ipk_poller_add(s->p, s->ls[i], IPK_POLLIN, NULL), "ipk_poller_add");
        int fd = ipk_fd(s->ls[i]);
        ipk_check(fd, "ipk_fd");
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        sys_check(epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e), "epoll_ctl");
    }
}

/* Waits (v 0: the poller, 1: epoll) and returns the ready listener. */
static ipk_chan *pa_wait(pa_st *s, int v)
{
    if (v == 0) {
        ipk_pollev ev[8];
        ipk_check(ipk_poller_wait(s->p, ev, 8, -1), "ipk_poller_wait");
        return ev[0].chan;
    }
    struct epoll_event e[8];
    int k;
    while ((k = epoll_wait(s->epfd, e, 8, -1)) < 0 && errno == EINTR)
        ;
    sys_check(k, "epoll_wait");
    return s->ls[e[0].data.u32];
}

static void pa_a_setup(pb_test *t)
{
    pa_watch(t->st);
}

static void pa_a_step(pb_test *t, int v)
{
    pa_st *s = t->st;
    char m[PB_MSG];
    long k = ipk_recv(pa_wait(s, v), m, sizeof m, -1);
    ipk_check(k, "recv");
    full_write(s->reply[1], m, (size_t)k);
}

static void pa_b_setup(pb_test *t)
{
    pa_st *s = t->st;
    ipk_check(ipk_dial(&s->d, s->url, NULL), s->url);
}

static void pa_b_step(pb_test *t, int v)
{
    (void)v;
    pa_st *s = t->st;
    char m[PB_MSG] = {0};
    ipk_check(ipk_send(s->d, m, sizeof m, -1), "send");
    full_read(s->reply[0], m, sizeof m);
}

/* One process, nothing blocks: ns per send + wait + receive, per block. */
static void pa_hot(pa_st *s, int cpu, double out[2][PB_MAXBLOCK])
{
    bl_pin(cpu);
    pa_watch(s);
    ipk_chan *d;
    ipk_check(ipk_dial(&d, s->url, NULL), s->url);
    int n = pb_k * 10;
    char m[PB_MSG] = {0};
    for (int b = 0; b < pb_blocks; b++)
        for (int j = 0; j < 2; j++) {
            int v = b % 2 ? 1 - j : j;
            int64_t t0 = 0;
            for (int i = -n / 10; i < n; i++) {
                if (i == 0)
                    t0 = bl_now();
                ipk_check(ipk_send(d, m, sizeof m, -1), "send");
                ipk_check(ipk_recv(pa_wait(s, v), m, sizeof m, -1), "recv");
            }
            out[v][b] = (double)(bl_now() - t0) / n;
        }
    ipk_close(d);
    ipk_poller_free(s->p);
    close(s->epfd);
}

static void part_a(int cpu_a, int cpu_b, const int *ns, int nn)
{
    printf("== a. ipk_poller_wait vs epoll_wait on the same descriptors: N unixgram channels, "
           "one active; A receives with ipk_recv after either wait and answers on a pipe\n");
    for (int i = 0; i < nn; i++) {
        pa_st s = {0};
        pa_listen(&s, ns[i]);
        sys_check(pipe2(s.reply, O_CLOEXEC), "pipe2");
        char title[128];
        double p50[PB_MAXVAR][PB_MAXBLOCK];
        for (int same = 1; same >= 0; same--) {
            snprintf(title, sizeof title, "a. %d channel%s, round trip, %s", ns[i],
                     ns[i] > 1 ? "s" : "", same ? "one CPU" : "two CPUs");
            pb_test t = {.title = title,
                         .nvar = 2,
                         .vname = {"ipk_poller_wait", "raw epoll_wait"},
                         .cpu_a = cpu_a,
                         .cpu_b = same ? cpu_a : cpu_b,
                         .a_setup = pa_a_setup,
                         .a_step = pa_a_step,
                         .b_setup = pa_b_setup,
                         .b_step = pa_b_step,
                         .st = &s};
            pb_run(&t, p50);
            double ratio[PB_MAXVAR];
            pb_print(&t, p50, 0, ratio);
            verdict("poller / epoll round trip", ratio[1], 1.1);
        }
        /* The hot loop runs in a child so that its poller and dialer leave nothing behind. */
        double *hot = bl_shared(sizeof(double) * 2 * PB_MAXBLOCK);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            double out[2][PB_MAXBLOCK];
            pa_hot(&s, cpu_a, out);
            memcpy(hot, out, sizeof out);
            _exit(0);
        }
        bl_wait(pid);
        double r[PB_MAXBLOCK], d[PB_MAXBLOCK], pw[PB_MAXBLOCK], ew[PB_MAXBLOCK];
        for (int b = 0; b < pb_blocks; b++) {
            pw[b] = hot[b];
            ew[b] = hot[PB_MAXBLOCK + b];
            r[b] = pw[b] / ew[b];
            d[b] = pw[b] - ew[b];
        }
        double mr = bl_median_d(r, pb_blocks), md = bl_median_d(d, pb_blocks);
        printf("a. %d channel%s, hot (one process on CPU %d, send + wait + ipk_recv, never "
               "blocking, %d blocks x %d)\n",
               ns[i], ns[i] > 1 ? "s" : "", cpu_a, pb_blocks, pb_k * 10);
        printf("  ipk_poller_wait %.0f ns, raw epoll_wait %.0f ns per message: ratio %.3f "
               "[%.3f .. %.3f], the poller's own cost %.0f ns [%.0f .. %.0f]\n",
               bl_median_d(pw, pb_blocks), bl_median_d(ew, pb_blocks), mr, r[0], r[pb_blocks - 1],
               md, d[0], d[pb_blocks - 1]);
        munmap(hot, sizeof(double) * 2 * PB_MAXBLOCK);
        close(s.reply[0]);
        close(s.reply[1]);
        pa_unlisten(&s);
    }
}

/* ---- b. shm: ---- */

typedef struct pbs_st {
    char req[128], resp[128];
    int duplex;
    size_t size;
    ipk_chan *rq, *rs; /* B: sends on rq, receives on rs (the same channel with duplex=1) */
    ipk_chan *a, *b;   /* A: receives on a, answers on b */
    ipk_poller *p;     /* this process's poller over its receiving channel */
    int registered;
    /* the raw yardsticks */
    unsigned char *page; /* two message slots, A's and B's */
    int efd[2];          /* eventfds: [0] wakes A, [1] wakes B */
    int pab[2], pba[2];  /* pipes A<-B and B<-A */
    int epfd;            /* this process's epoll over the eventfd that wakes it */
    int dg[2];           /* the poller's own wake-up mechanism, raw: unixgram [0] wakes A */
    int epdg;            /* this process's epoll over the datagram socket that wakes it */
} pbs_st;

enum { PBS_POLLER, PBS_EVENTFD, PBS_PIPE, PBS_EPOLL, PBS_DGRAM };

static void pbs_open(pbs_st *s, int duplex, size_t size)
{
    memset(s, 0, sizeof *s);
    s->duplex = duplex;
    s->size = size;
    snprintf(s->req, sizeof s->req, "shm:/ipk-pb-%d-req?size=64k%s", (int)getpid(),
             duplex ? "&duplex=1" : "");
    snprintf(s->resp, sizeof s->resp, "shm:/ipk-pb-%d-resp?size=64k", (int)getpid());
    ipk_check(ipk_listen(&s->rq, s->req, NULL), s->req);
    if (duplex)
        s->rs = s->rq;
    else
        ipk_check(ipk_listen(&s->rs, s->resp, NULL), s->resp);
    s->page = bl_shared(4096);
    for (int i = 0; i < 2; i++) {
        s->efd[i] = eventfd(0, EFD_CLOEXEC);
        sys_check(s->efd[i], "eventfd");
    }
    sys_check(pipe2(s->pab, O_CLOEXEC), "pipe2");
    sys_check(pipe2(s->pba, O_CLOEXEC), "pipe2");
    sys_check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s->dg), "socketpair");
}

static void pbs_close(pbs_st *s)
{
    ipk_close(s->rq);
    if (s->rs != s->rq)
        ipk_close(s->rs);
    for (int i = 0; i < 2; i++) {
        close(s->efd[i]);
        close(s->pab[i]);
        close(s->pba[i]);
        close(s->dg[i]);
    }
    munmap(s->page, 4096);
}

static int pbs_epoll1(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    sys_check(ep, "epoll_create1");
    struct epoll_event e = {.events = EPOLLIN};
    sys_check(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), "epoll_ctl");
    return ep;
}

static void pbs_epoll(pbs_st *s, int efd, int dg)
{
    s->epfd = pbs_epoll1(efd);
    s->epdg = pbs_epoll1(dg);
}

static void pbs_a_setup(pb_test *t)
{
    pbs_st *s = t->st;
    ipk_check(ipk_dial(&s->a, s->req, NULL), s->req);
    if (s->duplex)
        s->b = s->a;
    else
        ipk_check(ipk_dial(&s->b, s->resp, NULL), s->resp);
    ipk_check(ipk_poller_new(&s->p), "ipk_poller_new");
    pbs_epoll(s, s->efd[0], s->dg[0]);
}

static void pbs_b_setup(pb_test *t)
{
    pbs_st *s = t->st;
    ipk_check(ipk_poller_new(&s->p), "ipk_poller_new");
    pbs_epoll(s, s->efd[1], s->dg[1]);
}

/* Registration of this process's receiving channel, as variant v wants it (b: awake). */
static void pbs_register(pbs_st *s, ipk_chan *c, int want)
{
    if (want && !s->registered)
        ipk_check(ipk_poller_add(s->p, c, IPK_POLLIN, NULL), "ipk_poller_add");
    else if (!want && s->registered)
        ipk_check(ipk_poller_del(s->p, c), "ipk_poller_del");
    s->registered = want;
}

static void pbs_asleep_begin_a(pb_test *t, int v)
{
    pbs_st *s = t->st;
    pbs_register(s, s->a, v == PBS_POLLER);
}

static void pbs_asleep_begin_b(pb_test *t, int v)
{
    pbs_st *s = t->st;
    pbs_register(s, s->rs, v == PBS_POLLER);
}

static void pbs_poll_recv(pbs_st *s, ipk_chan *c, void *m)
{
    ipk_pollev ev[4];
    ipk_check(ipk_poller_wait(s->p, ev, 4, -1), "ipk_poller_wait");
    ipk_check(ipk_recv(c, m, PB_MSG, 0), "recv after the poller");
}

/* The raw wake-ups: the message in a shared slot, then the eventfd / the message in a pipe. */
static void pbs_raw_send(pbs_st *s, int v, int to_a, const void *m)
{
    uint64_t one = 1;
    if (v == PBS_PIPE) {
        full_write(to_a ? s->pab[1] : s->pba[1], m, s->size);
        return;
    }
    memcpy(s->page + (to_a ? 0 : 2048), m, s->size);
    if (v == PBS_DGRAM) /* the socketpair: B's end [1] sends to A's end [0] and back */
        sys_check(send(s->dg[to_a ? 1 : 0], "", 1, MSG_DONTWAIT), "send");
    else
        full_write(s->efd[to_a ? 0 : 1], &one, sizeof one);
}

static void pbs_raw_recv(pbs_st *s, int v, int at_a, void *m)
{
    uint64_t val;
    if (v == PBS_PIPE) {
        full_read(at_a ? s->pab[0] : s->pba[0], m, s->size);
        return;
    }
    if (v == PBS_EPOLL || v == PBS_DGRAM) {
        struct epoll_event e;
        while (epoll_wait(v == PBS_EPOLL ? s->epfd : s->epdg, &e, 1, -1) != 1)
            ;
    }
    if (v == PBS_DGRAM) {
        char b;
        sys_check(recv(s->dg[at_a ? 0 : 1], &b, 1, MSG_DONTWAIT), "recv");
        memcpy(m, s->page + (at_a ? 0 : 2048), s->size);
        return;
    }
    full_read(s->efd[at_a ? 0 : 1], &val, sizeof val);
    memcpy(m, s->page + (at_a ? 0 : 2048), s->size);
}

static void pbs_asleep_a_step(pb_test *t, int v)
{
    pbs_st *s = t->st;
    unsigned char m[PB_MSG];
    if (v == PBS_POLLER) {
        pbs_poll_recv(s, s->a, m);
        ipk_check(ipk_send(s->b, m, s->size, -1), "send");
    } else {
        pbs_raw_recv(s, v, 1, m);
        pbs_raw_send(s, v, 0, m);
    }
}

static void pbs_asleep_b_step(pb_test *t, int v)
{
    pbs_st *s = t->st;
    unsigned char m[PB_MSG] = {0};
    if (v == PBS_POLLER) {
        ipk_check(ipk_send(s->rq, m, s->size, -1), "send");
        pbs_poll_recv(s, s->rs, m);
    } else {
        pbs_raw_send(s, v, 1, m);
        pbs_raw_recv(s, v, 0, m);
    }
}

/* Awake: variant 0 in no poller, 1 registered in one (never waited on). */
static void pbs_awake_begin_a(pb_test *t, int v)
{
    pbs_st *s = t->st;
    pbs_register(s, s->a, v == 1);
}

static void pbs_awake_begin_b(pb_test *t, int v)
{
    pbs_st *s = t->st;
    pbs_register(s, s->rs, v == 1);
}

static void pbs_awake_a_step(pb_test *t, int v)
{
    (void)v;
    pbs_st *s = t->st;
    unsigned char m[PB_MSG];
    long k = ipk_recv(s->a, m, sizeof m, -1);
    ipk_check(k, "recv");
    ipk_check(ipk_send(s->b, m, (size_t)k, -1), "send");
}

static void pbs_awake_b_step(pb_test *t, int v)
{
    (void)v;
    pbs_st *s = t->st;
    unsigned char m[PB_MSG] = {0};
    ipk_check(ipk_send(s->rq, m, s->size, -1), "send");
    ipk_check(ipk_recv(s->rs, m, sizeof m, -1), "recv");
}

static void part_b(int cpu_a, int cpu_b)
{
    printf("== b. shm: woken through the poller, and awake with a poller registered\n");
    double p50[PB_MAXVAR][PB_MAXBLOCK];
    pbs_st s;
    char title[160];
    for (int same = 0; same <= 1; same++) {
        pbs_open(&s, 0, PB_MSG);
        snprintf(title, sizeof title,
                 "b. asleep: 64 B round trip, both ends asleep and woken each time, %s",
                 same ? "one CPU" : "two CPUs");
        pb_test t = {.title = title,
                     .nvar = 5,
                     .vname = {"ipckit shm: two rings, ipk_poller_wait",
                               "raw eventfd (blocking read) + shared slot",
                               "raw pipe (64 B written and read)",
                               "raw epoll_wait + eventfd + shared slot",
                               "raw epoll_wait + 1-byte unixgram + slot"},
                     .cpu_a = cpu_a,
                     .cpu_b = same ? cpu_a : cpu_b,
                     .a_setup = pbs_a_setup,
                     .a_begin = pbs_asleep_begin_a,
                     .a_step = pbs_asleep_a_step,
                     .b_setup = pbs_b_setup,
                     .b_begin = pbs_asleep_begin_b,
                     .b_step = pbs_asleep_b_step,
                     .st = &s};
        pb_run(&t, p50);
        double ratio[PB_MAXVAR];
        pb_print(&t, p50, PBS_POLLER, ratio);
        double best = ratio[PBS_EVENTFD] > ratio[PBS_PIPE] ? ratio[PBS_EVENTFD] : ratio[PBS_PIPE];
        if (!same)
            verdict("poller-woken shm vs the faster raw wake (eventfd or pipe)", best, 1.2);
        pbs_close(&s);
    }
    /* Awake: spinning receivers need two CPUs. */
    static const struct {
        int duplex;
        size_t size;
        const char *what;
    } aw[] = {{0, PB_MSG, "two one-way rings, 64 B"}, {1, 8, "one duplex=1 segment, 8 B"}};
    for (size_t i = 0; i < sizeof aw / sizeof aw[0]; i++) {
        pbs_open(&s, aw[i].duplex, aw[i].size);
        snprintf(title, sizeof title, "b. awake: %s, round trip, receivers spinning in ipk_recv",
                 aw[i].what);
        pb_test t = {.title = title,
                     .nvar = 2,
                     .vname = {"in no poller", "registered in a poller"},
                     .cpu_a = cpu_a,
                     .cpu_b = cpu_b,
                     .a_setup = pbs_a_setup,
                     .a_begin = pbs_awake_begin_a,
                     .a_step = pbs_awake_a_step,
                     .b_setup = pbs_b_setup,
                     .b_begin = pbs_awake_begin_b,
                     .b_step = pbs_awake_b_step,
                     .st = &s};
        pb_run(&t, p50);
        double ratio[PB_MAXVAR];
        pb_print(&t, p50, 1, ratio);
        verdict("registered / not", ratio[0], 1.05);
        pbs_close(&s);
    }
}

/* ---- c. sysv: ---- */

typedef struct pc_st {
    char req[64], resp[64];
    ipk_chan *lq, *lr; /* B: the listeners (creators); sends on lq, receives on lr */
    ipk_chan *a, *b;   /* A: receives on a, answers on b */
    ipk_poller *p;
    /* gaps */
    int64_t *gap, *lat; /* per sample: send time - A's wait start, A's receive - send time */
    int nsamples;
} pc_st;

enum { PC_BLOCKING, PC_POLLER };

static void pc_a_setup(pb_test *t)
{
    pc_st *s = t->st;
    ipk_check(ipk_dial(&s->a, s->req, NULL), s->req);
    ipk_check(ipk_dial(&s->b, s->resp, NULL), s->resp);
    ipk_check(ipk_poller_new(&s->p), "ipk_poller_new");
    ipk_check(ipk_poller_add(s->p, s->a, IPK_POLLIN, NULL), "ipk_poller_add");
}

static long pc_recv(pc_st *s, int v, void *m, size_t cap)
{
    if (v == PC_POLLER) {
        ipk_pollev ev[2];
        ipk_check(ipk_poller_wait(s->p, ev, 2, -1), "ipk_poller_wait");
        return ipk_recv(s->a, m, cap, 0);
    }
    return ipk_recv(s->a, m, cap, -1);
}

static void pc_a_step(pb_test *t, int v)
{
    pc_st *s = t->st;
    char m[PB_MSG];
    long k = pc_recv(s, v, m, sizeof m);
    ipk_check(k, "recv");
    ipk_check(ipk_send(s->b, m, (size_t)k, -1), "send");
}

static void pc_b_setup(pb_test *t)
{
    (void)t;
}

static void pc_b_step(pb_test *t, int v)
{
    (void)v;
    pc_st *s = t->st;
    char m[PB_MSG] = {0};
    ipk_check(ipk_send(s->lq, m, sizeof m, -1), "send");
    ipk_check(ipk_recv(s->lr, m, sizeof m, -1), "recv");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorted copy's nearest-rank percentile. */
static int64_t pctl(int64_t *v, int n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    int i = (int)(q * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* The documented bound on the poller's lateness for a message sent g ns after the wait began:
 * the timer looks 50 us after the start, then doubles its period up to 5 ms. */
static int64_t pc_bound(int64_t g)
{
    int64_t b = (g > 0 ? g : 0) + 50000;
    return b < 5000000 ? b : 5000000;
}

static void pc_gaps(pc_st *s, int cpu_a, int cpu_b)
{
    int n = s->nsamples;
    fflush(NULL);
    pid_t pid = fork();
    sys_check(pid, "fork");
    if (pid == 0) {
        bl_pin(cpu_a);
        pb_test t = {.st = s};
        pc_a_setup(&t);
        for (int i = 0; i < n; i++) {
            int64_t m[2];
            int64_t tw = bl_now();
            ipk_check(pc_recv(s, i % 2 ? PC_POLLER : PC_BLOCKING, m, sizeof m), "recv");
            int64_t tr = bl_now();
            s->gap[i] = m[0] - tw;
            s->lat[i] = tr - m[0];
            ipk_check(ipk_send(s->b, m, sizeof m, -1), "ack");
        }
        _exit(0);
    }
    bl_pin(cpu_b);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < n; i++) {
        /* Gaps log-uniform between 10 us and 20 ms, the same sequence for both variants (each
         * gap is used twice in a row, once per variant). */
        if (i % 2 == 0)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0;
        int64_t gap = (int64_t)(10000.0 * exp(u * log(2000.0)));
        struct timespec ts = {.tv_sec = gap / 1000000000, .tv_nsec = gap % 1000000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        int64_t m[2] = {bl_now(), i};
        ipk_check(ipk_send(s->lq, m, sizeof m, -1), "send");
        ipk_check(ipk_recv(s->lr, m, sizeof m, -1), "ack");
    }
    bl_wait(pid);
}

static void pc_gap_report(pc_st *s)
{
    int n = s->nsamples / 2;
    int64_t *bl = malloc(sizeof *bl * (size_t)n), *pl = malloc(sizeof *pl * (size_t)n);
    for (int i = 0; i < n; i++) {
        bl[i] = s->lat[2 * i];
        pl[i] = s->lat[2 * i + 1];
    }
    int64_t b50 = pctl(bl, n, 0.5), b99 = pctl(bl, n, 0.99);
    printf("c. sysv: single messages after a gap (10 us .. 20 ms, log-uniform, the same gaps for "
           "both), %d each; latency = receive returned - sent\n",
           n);
    printf("  blocking msgrcv (ipk_recv)  p50 %7.1f us  p90 %7.1f  p99 %7.1f  max %7.1f\n",
           b50 / 1e3, pctl(bl, n, 0.9) / 1e3, b99 / 1e3, pctl(bl, n, 1) / 1e3);
    printf("  through ipk_poller_wait     p50 %7.1f us  p90 %7.1f  p99 %7.1f  max %7.1f\n",
           pctl(pl, n, 0.5) / 1e3, pctl(pl, n, 0.9) / 1e3, pctl(pl, n, 0.99) / 1e3,
           pctl(pl, n, 1) / 1e3);
    /* By how long the waiter had been waiting when the message was sent. */
    static const struct {
        int64_t lo, hi;
        const char *what;
    } bk[] = {{INT64_MIN, 50000, "sent < 50 us into the wait (right after activity)"},
              {50000, 1000000, "sent 50 us .. 1 ms into the wait"},
              {1000000, 5000000, "sent 1 .. 5 ms into the wait"},
              {5000000, INT64_MAX, "sent >= 5 ms into the wait (after quiet)"}};
    int over = 0;
    int64_t worst = INT64_MIN;
    for (size_t k = 0; k < sizeof bk / sizeof bk[0]; k++) {
        int m = 0;
        int64_t bound = 0;
        for (int i = 0; i < n; i++) {
            int64_t g = s->gap[2 * i + 1];
            if (g < bk[k].lo || g >= bk[k].hi)
                continue;
            /* Added latency: beyond what the blocking receive took at the median. */
            pl[m++] = s->lat[2 * i + 1] - b50;
            if (pc_bound(g) > bound)
                bound = pc_bound(g);
        }
        if (m == 0)
            continue;
        int64_t mx = pctl(pl, m, 1);
        printf("  %-50s n %3d  added p50 %7.1f us  max %7.1f us  (bound here <= %.0f us)\n",
               bk[k].what, m, pctl(pl, m, 0.5) / 1e3, mx / 1e3, bound / 1e3);
    }
    /* The bound is the timer's; on a loaded machine the waiter can also be late to run after
     * the tick. The blocking receive in the same run shows how late: its worst latency above
     * its median is the slack allowed. */
    int64_t slack = pctl(bl, n, 1) - b50;
    int beyond = 0;
    for (int i = 0; i < n; i++) {
        int64_t g = s->gap[2 * i + 1], add = s->lat[2 * i + 1] - b50 - pc_bound(g);
        if (add > worst)
            worst = add;
        beyond += add > 0;
        over += add > slack;
    }
    printf("  bound min(time waited + 50 us, 5 ms): %d of %d samples above it, %d by more than "
           "the blocking receive's worst delay (max - p50 = %.1f us); largest excess %.1f us "
           "=> %s\n",
           beyond, n, over, slack / 1e3, worst / 1e3, over == 0 ? "within the bound" : "EXCEEDED");
    free(bl);
    free(pl);
}

static void part_c(int cpu_a, int cpu_b, int gaps)
{
    printf("== c. sysv: the poller's back-off timer against a blocking msgrcv\n");
    pc_st s = {0};
    unsigned key = 0x1b000000u | ((unsigned)getpid() & 0xfffffu) << 4;
    snprintf(s.req, sizeof s.req, "sysv:%#x", key + 1);
    snprintf(s.resp, sizeof s.resp, "sysv:%#x", key + 2);
    ipk_check(ipk_listen(&s.lq, s.req, NULL), s.req);
    ipk_check(ipk_listen(&s.lr, s.resp, NULL), s.resp);
    for (int same = 1; same >= 0; same--) {
        char title[128];
        snprintf(title, sizeof title, "c. sysv: 64 B round trip, A receiving through %s",
                 same ? "either, one CPU" : "either, two CPUs");
        pb_test t = {.title = title,
                     .nvar = 2,
                     .vname = {"blocking msgrcv (ipk_recv, forever)", "ipk_poller_wait"},
                     .cpu_a = cpu_a,
                     .cpu_b = same ? cpu_a : cpu_b,
                     .a_setup = pc_a_setup,
                     .a_step = pc_a_step,
                     .b_setup = pc_b_setup,
                     .b_step = pc_b_step,
                     .st = &s};
        double p50[PB_MAXVAR][PB_MAXBLOCK], d[PB_MAXBLOCK];
        pb_run(&t, p50);
        double ratio[PB_MAXVAR];
        pb_print(&t, p50, PC_POLLER, ratio);
        for (int b = 0; b < pb_blocks; b++)
            d[b] = p50[PC_POLLER][b] - p50[PC_BLOCKING][b];
        double md = bl_median_d(d, pb_blocks);
        printf("  => added per round trip (the receiver's wait): %.1f us [%.1f .. %.1f] (the "
               "bound right after activity: 50 us)\n",
               md / 1e3, d[0] / 1e3, d[pb_blocks - 1] / 1e3);
    }
    s.nsamples = 2 * gaps;
    s.gap = bl_shared(sizeof(int64_t) * (size_t)s.nsamples);
    s.lat = bl_shared(sizeof(int64_t) * (size_t)s.nsamples);
    pc_gaps(&s, cpu_a, cpu_b);
    pc_gap_report(&s);
    munmap(s.gap, sizeof(int64_t) * (size_t)s.nsamples);
    munmap(s.lat, sizeof(int64_t) * (size_t)s.nsamples);
    ipk_close(s.lq);
    ipk_close(s.lr);
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-c CPU_A] [-C CPU_B] [-r BLOCKS] [-n ROUNDTRIPS] [-t abc] "
            "[-N 1,100,10000] [-g GAPS] [-F]\n"
            "  -r  blocks per comparison (default 7; each runs every variant)\n"
            "  -n  round trips per block and variant (default 2000)\n"
            "  -t  parts: a (poller over N channels), b (shm:), c (sysv:) (default abc)\n"
            "  -N  channel counts for part a (default 1,100,10000)\n"
            "  -g  sysv gap samples per variant (default 200)\n"
            "  -F  shm: publishers fence instead of the waiters' membarrier (ring.c's hook)\n",
            prog);
    exit(2);
}

int main(int argc, char **argv)
{
    int ca = -1, cb = -1, gaps = 200, ns[8] = {1, 100, 10000}, nn = 3;
    const char *parts = "abc";
    cpu_set_t cs;
    sched_getaffinity(0, sizeof cs, &cs);
    for (int c = 0; c < CPU_SETSIZE && cb < 0; c++)
        if (CPU_ISSET(c, &cs)) {
            if (ca < 0)
                ca = c;
            else
                cb = c;
        }
    int opt;
    while ((opt = getopt(argc, argv, "c:C:r:n:t:N:g:F")) != -1) {
        switch (opt) {
        case 'F':
            ipk__shm_force_fence = 1;
            break;
        case 'c':
            ca = atoi(optarg);
            break;
        case 'C':
            cb = atoi(optarg);
            break;
        case 'r':
            pb_blocks = atoi(optarg);
            break;
        case 'n':
            pb_k = atoi(optarg);
            break;
        case 't':
            parts = optarg;
            break;
        case 'g':
            gaps = atoi(optarg);
            break;
        case 'N':
            nn = 0;
            for (char *p = optarg; *p && nn < 8; p++) {
                ns[nn++] = (int)strtol(p, &p, 10);
                if (*p != ',')
                    break;
            }
            break;
        default:
            usage(argv[0]);
        }
    }
    if (cb < 0) {
        fprintf(stderr, "needs two CPUs (found one)\n");
        return 2;
    }
    if (pb_blocks < 1 || pb_blocks > PB_MAXBLOCK || pb_k < 10 || gaps < 1)
        usage(argv[0]);
    /* 10,000 channels are 10,000 descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strchr(parts, 'a'))
        part_a(ca, cb, ns, nn);
    if (strchr(parts, 'b'))
        part_b(ca, cb);
    if (strchr(parts, 'c'))
        part_c(ca, cb, gaps);
    return 0;
}
