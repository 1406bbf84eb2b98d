/*
 * suite_queue.c - the cases of the queue-family conformance suite (see suite_queue.h). Each
 * case gets its transport's qs_kind as cmocka's initial state.
 */
#include "suite_queue.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QS_COUNT  10000 /* messages of the one-producer order case */
#define QS_EACH_N 2000  /* messages per producer when several run at once */
#define QS_NPROD  3     /* producers of the several-producer cases; the test process is one more */
#define QS_MSGMAX 256   /* the largest payload of the order cases (typical is below it) */
#define QS_STORM  150   /* ms of signals per round of a storm */
#define QS_WAIT   100   /* ms of a timed wait that a storm must not cut short */

/* One object under test: the listener's side, and what children need to reach it. */
typedef struct qs_run {
    const qs_kind *k;
    char base[300]; /* the address fresh() made, without a query */
    char dial[400]; /* what dialers open (plus their own query) */
    int go[2];      /* the test process lets a child go on */
    int removal;    /* qs_waiter waits for the end of its object, not for a message */
} qs_run;

/* A child's part: which producer it is, how many messages, what it does at the end. */
typedef struct qs_job {
    qs_run *r;
    const char *query; /* the dialer's options */
    uint32_t id, n;
    int markers; /* producer: empty messages to send after the data; consumer: to stop at */
    int die;     /* producer: SIGKILL itself instead of closing */
    int fd;      /* consumer: where the per-producer counts go */
} qs_job;

/* The case's kind, with the defaults of suite_queue.h filled in. */
static const qs_kind *qs_kind_of(void **state)
{
    qs_kind *k = *state;
    if (k->typical == 0)
        k->typical = 64;
    if (k->drained == 0)
        k->drained = -EAGAIN;
    return k;
}

/* a + query, joined with '?' or '&'. */
static const char *qs_join(char *buf, size_t cap, const char *a, const char *query)
{
    const char *sep = query == NULL || query[0] == '\0' ? "" : strchr(a, '?') ? "&" : "?";
    snprintf(buf, cap, "%s%s%s", a, sep, sep[0] ? query : "");
    return buf;
}

/* Listens on a fresh object with query; fills r. small: the object is meant to fill. */
static ipk_chan *qs_listen(qs_run *r, const qs_kind *k, const char *query, int small)
{
    char url[500];
    r->k = k;
    r->removal = 0;
    k->fresh(r->base, sizeof r->base);
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, qs_join(url, sizeof url, r->base, query), NULL));
    if (k->created)
        k->created(l, small);
    snprintf(r->dial, sizeof r->dial, "%s", k->by_addr ? ipk_addr(l) : r->base);
    assert_int_equal(pipe(r->go), 0);
    return l;
}

static int qs_open(qs_run *r, const char *query, ipk_chan **c)
{
    char url[500];
    return ipk_dial(c, qs_join(url, sizeof url, r->dial, query), NULL);
}

/* The test process's own dialer (a sender, for the cases that need one beside the listener). */
static ipk_chan *qs_dial(qs_run *r, const char *query)
{
    ipk_chan *c = NULL;
    ipkt_ok(qs_open(r, query, &c));
    return c;
}

static void qs_done(qs_run *r, ipk_chan *l)
{
    ipkt_ok(ipk_close(l));
    close(r->go[0]);
    close(r->go[1]);
}

static void qs_post(qs_run *r, char what)
{
    assert_int_equal(write(r->go[1], &what, 1), 1);
}

static char qs_await(qs_run *r)
{
    char ch;
    return read(r->go[0], &ch, 1) == 1 ? ch : 0;
}

/* Message seq of producer prod: {prod, seq (24 bits)}, then a pattern; 4..typical bytes. */
static size_t qs_msg(unsigned char *m, size_t typical, uint32_t prod, uint32_t seq)
{
    size_t len = 4 + seq % (typical - 3);
    m[0] = (unsigned char)prod;
    m[1] = (unsigned char)seq, m[2] = (unsigned char)(seq >> 8), m[3] = (unsigned char)(seq >> 16);
    ipkt_fill(m + 4, len - 4, seq * 8 + prod);
    return len;
}

/* The producer and sequence number of a message that qs_msg made; -1 when it is not one. */
static int qs_seq(const unsigned char *m, long n, size_t typical, uint32_t *prod, uint32_t *seq)
{
    unsigned char want[QS_MSGMAX];
    if (n < 4)
        return -1;
    *prod = m[0];
    *seq = m[1] | (uint32_t)m[2] << 8 | (uint32_t)m[3] << 16;
    size_t wn = qs_msg(want, typical, *prod, *seq);
    return (size_t)n == wn && memcmp(m, want, wn) == 0 ? 0 : -1;
}

/* Receives message seq of producer prod on c; fails the test otherwise. */
static void qs_expect_msg(ipk_chan *c, const qs_kind *k, uint32_t prod, uint32_t seq, int timeout)
{
    unsigned char m[QS_MSGMAX];
    uint32_t p = 0, s = 0;
    ipk_msginfo mi;
    long n = ipk_recvx(c, m, sizeof m, &mi, timeout);
    if (n < 0)
        ipkt_expect(n, 0);
    if (qs_seq(m, n, k->typical, &p, &s) != 0 || p != prod || s != seq)
        fail_msg("expected message %u of producer %u, got %ld bytes (%u of %u)", seq, prod, n, s,
                 p);
}

/* ---- children ---- */

static int qs_producer(void *arg)
{
    qs_job *j = arg;
    ipk_chan *c;
    IPKT_CHECK(qs_open(j->r, j->query, &c) == 0);
    unsigned char m[QS_MSGMAX];
    for (uint32_t s = 0; s < j->n; s++)
        IPKT_CHECK(ipk_send(c, m, qs_msg(m, j->r->k->typical, j->id, s), 30000) == 0);
    for (int i = 0; i < j->markers; i++)
        IPKT_CHECK(ipk_send(c, "", 0, 30000) == 0);
    if (j->die)
        raise(SIGKILL);
    return ipk_close(c) == 0 ? 0 : 1;
}

static pid_t qs_produce(qs_job *j, qs_run *r, const char *query, uint32_t id, uint32_t n)
{
    *j = (qs_job){.r = r, .query = query, .id = id, .n = n};
    return ipkt_spawn(qs_producer, j);
}

/* Receives until j->markers empty messages came; reports how many of each producer it got. */
static int qs_consumer(void *arg)
{
    qs_job *j = arg;
    ipk_chan *c;
    IPKT_CHECK(qs_open(j->r, j->query, &c) == 0);
    uint32_t count[QS_NPROD + 1] = {0};
    int64_t last[QS_NPROD + 1] = {-1, -1, -1, -1};
    unsigned char m[QS_MSGMAX];
    for (int markers = 0; markers < j->markers;) {
        long n = ipk_recv(c, m, sizeof m, 30000);
        IPKT_CHECK(n >= 0);
        if (n == 0) {
            markers++;
            continue;
        }
        uint32_t p, s;
        IPKT_CHECK(qs_seq(m, n, j->r->k->typical, &p, &s) == 0 && p <= QS_NPROD);
        IPKT_CHECK((int64_t)s > last[p]); /* each producer's order is kept */
        last[p] = s;
        count[p]++;
    }
    IPKT_CHECK(write(j->fd, count, sizeof count) == (ssize_t)sizeof count);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* ---- sizes: 0, 1, typical, the largest; one more is IPK_EMSGSIZE ---- */

#define QS_NSIZES 5

static void qs_sizes_of(size_t *sz, size_t largest)
{
    size_t mid = largest / 2 < 1000 ? largest / 2 : 1000;
    size_t s[QS_NSIZES] = {0, 1, mid, largest - 1, largest};
    memcpy(sz, s, sizeof s);
}

static int qs_sizes_child(void *arg)
{
    qs_run *r = arg;
    ipk_chan *c;
    IPKT_CHECK(qs_open(r, r->k->sized_dial, &c) == 0);
    size_t largest = r->k->largest(), sz[QS_NSIZES];
    qs_sizes_of(sz, largest);
    char *m = malloc(largest + 1), want[200];
    IPKT_CHECK(m != NULL);
    for (int i = 0; i < QS_NSIZES; i++) {
        ipkt_fill(m, sz[i], (uint32_t)i);
        IPKT_CHECK(ipk_send(c, m, sz[i], 30000) == 0);
    }
    IPKT_CHECK(ipk_send(c, m, largest + 1, 0) == IPK_EMSGSIZE);
    snprintf(want, sizeof want, r->k->over_fmt, largest + 1, largest);
    IPKT_CHECK(strstr(ipk_errmsg(), want) != NULL);
    free(m);
    return ipk_close(c) == 0 ? 0 : 1;
}

void qs_sizes(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    ipk_chan *l = qs_listen(&r, k, k->sized, 0);
    pid_t pid = ipkt_spawn(qs_sizes_child, &r);
    size_t largest = k->largest(), sz[QS_NSIZES];
    qs_sizes_of(sz, largest);
    char *b = malloc(largest + 1);
    assert_non_null(b);
    for (int i = 0; i < QS_NSIZES; i++) {
        /* The empty one into no room at all, the largest into exactly its size. */
        size_t cap = i == 0 ? 0 : i == QS_NSIZES - 1 ? largest : largest + 1;
        ipkt_expect(ipk_recv(l, b, cap, 30000), (long)sz[i]);
        assert_true(ipkt_check(b, sz[i], (uint32_t)i));
    }
    assert_int_equal(ipkt_wait(pid), 0);
    free(b);
    qs_done(&r, l);
}

/* The test process as one more producer (number QS_NPROD), attached from before the others
 * start until after they are done; it sends its one message at once. */
static ipk_chan *qs_hold(qs_run *r)
{
    unsigned char m[QS_MSGMAX];
    ipk_chan *h = qs_dial(r, "");
    ipkt_ok(ipk_send(h, m, qs_msg(m, r->k->typical, QS_NPROD, 0), 0));
    return h;
}

/* ---- order: one producer, then several at once ---- */

void qs_order(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    qs_job j;
    ipk_chan *l = qs_listen(&r, k, "", 0);
    pid_t pid = qs_produce(&j, &r, "", 0, QS_COUNT);
    for (uint32_t s = 0; s < QS_COUNT; s++) {
        unsigned char m[QS_MSGMAX];
        ipk_msginfo mi;
        uint32_t p = 0, got = 0;
        long n = ipk_recvx(l, m, sizeof m, &mi, 30000);
        if (qs_seq(m, n, k->typical, &p, &got) != 0 || got != s)
            fail_msg("message %u: %ld bytes (%s), seq %u", s, n, n < 0 ? ipk_errmsg() : "", got);
        if (k->info_ok && !k->info_ok(&mi, pid))
            fail_msg("message %u: msginfo pid %d uid %d signo %d prio %u type %ld", s, (int)mi.pid,
                     (int)mi.uid, mi.signo, mi.prio, mi.type);
    }
    assert_int_equal(ipkt_wait(pid), 0);
    /* Nothing extra: the producer is gone and every message was received. */
    char b[8];
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), k->drained);
    qs_done(&r, l);
}

void qs_producers(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    qs_job j[QS_NPROD];
    pid_t pid[QS_NPROD];
    ipk_chan *l = qs_listen(&r, k, k->multi, 0), *hold = qs_hold(&r);
    for (uint32_t i = 0; i < QS_NPROD; i++)
        pid[i] = qs_produce(&j[i], &r, "", i, QS_EACH_N);
    uint32_t next[QS_NPROD + 1] = {0};
    for (uint32_t i = 0; i < QS_NPROD * QS_EACH_N + 1; i++) {
        unsigned char m[QS_MSGMAX];
        uint32_t p = 0, s = 0;
        long n = ipk_recv(l, m, sizeof m, 30000);
        if (qs_seq(m, n, k->typical, &p, &s) != 0 || p > QS_NPROD || s != next[p])
            fail_msg("message %u: %ld bytes (%s): %u of producer %u", i, n,
                     n < 0 ? ipk_errmsg() : "", s, p);
        next[p]++;
    }
    for (int i = 0; i < QS_NPROD; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    ipkt_ok(ipk_close(hold));
    char b[8];
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), k->drained);
    qs_done(&r, l);
}

/* ---- a consumer that comes after the producer has gone ---- */

static int qs_late_reader(void *arg)
{
    qs_run *r = arg;
    ipk_chan *c;
    unsigned char m[QS_MSGMAX];
    uint32_t p, s;
    IPKT_CHECK(qs_open(r, "", &c) == 0);
    for (uint32_t i = 0; i < 3; i++) {
        long n = ipk_recv(c, m, sizeof m, 0); /* they are there already */
        IPKT_CHECK(qs_seq(m, n, r->k->typical, &p, &s) == 0 && p == 0 && s == i);
    }
    IPKT_CHECK(ipk_recv(c, m, sizeof m, 0) == r->k->drained);
    return ipk_close(c) == 0 ? 0 : 1;
}

void qs_late_consumer(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    qs_job j;
    ipk_chan *l = qs_listen(&r, k, "", 0);
    assert_int_equal(ipkt_wait(qs_produce(&j, &r, "", 0, 3)), 0);
    if (k->consumers == QS_SINK) {
        for (uint32_t s = 0; s < 3; s++)
            qs_expect_msg(l, k, 0, s, 0);
        char b[8];
        ipkt_expect(ipk_recv(l, b, sizeof b, 0), k->drained);
    } else {
        assert_int_equal(ipkt_wait(ipkt_spawn(qs_late_reader, &r)), 0);
    }
    qs_done(&r, l);
}

/* ---- a producer killed (SIGKILL) after its sends ---- */

void qs_killed_producer(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    qs_job j;
    char b[8];
    ipk_chan *l = qs_listen(&r, k, "", 0);
    j = (qs_job){.r = &r, .query = "", .id = 0, .n = 10, .die = 1};
    assert_int_equal(ipkt_wait(ipkt_spawn(qs_producer, &j)), 128 + SIGKILL);
    /* Everything it sent arrives, nothing else; and the next producer is served. */
    for (uint32_t s = 0; s < 10; s++)
        qs_expect_msg(l, k, 0, s, 1000);
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), -EAGAIN);
    pid_t pid = qs_produce(&j, &r, "", 1, 5);
    for (uint32_t s = 0; s < 5; s++)
        qs_expect_msg(l, k, 1, s, 10000);
    assert_int_equal(ipkt_wait(pid), 0);
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), k->drained);
    qs_done(&r, l);
}

/* ---- an empty channel: timeouts 0, positive, and waits that a late sender ends ---- */

static int qs_late_sender(void *arg)
{
    qs_run *r = arg;
    ipk_chan *c;
    IPKT_CHECK(qs_open(r, "", &c) == 0);
    IPKT_CHECK(qs_await(r) == 'g');
    ipkt_msleep(50);
    IPKT_CHECK(ipk_send(c, "late", 4, -1) == 0);
    ipkt_msleep(50);
    IPKT_CHECK(ipk_send(c, "later", 5, -1) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

void qs_timeouts_empty(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    char b[16];
    ipk_chan *l = qs_listen(&r, k, "", 0);
    pid_t pid = ipkt_spawn(qs_late_sender, &r);
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), -EAGAIN);
    if (k->empty_says)
        ipkt_errmsg_has(k->empty_says);
    ipkt_expect(ipk_recv(l, b, sizeof b, 30), IPK_ETIMEDOUT);
    if (k->empty_says)
        ipkt_errmsg_has(k->empty_says);
    qs_post(&r, 'g');
    /* A deadline (a back-off, a poll, a futex wait) and forever both get their message. */
    ipkt_expect(ipk_recv(l, b, sizeof b, 10000), 4);
    assert_memory_equal(b, "late", 4);
    ipkt_expect(ipk_recv(l, b, sizeof b, -1), 5);
    assert_memory_equal(b, "later", 5);
    assert_int_equal(ipkt_wait(pid), 0);
    qs_done(&r, l);
}

/* ---- a full queue: timeouts 0, positive, and waits that a late consumer ends ---- */

/* Fills l with messages of k->fill_len bytes (message i is ipkt_fill(seed i)); returns how many
 * fit. The send that found it full said k->full_says. */
static uint32_t qs_fill(const qs_kind *k, ipk_chan *l)
{
    char m[8192];
    assert_true(k->small != NULL && k->fill_len <= sizeof m);
    uint32_t n = 0;
    int rc;
    for (;;) {
        ipkt_fill(m, k->fill_len, n);
        if ((rc = ipk_send(l, m, k->fill_len, 0)) != 0)
            break;
        assert_true(++n < 1000);
    }
    ipkt_expect(rc, -EAGAIN);
    if (k->full_says)
        ipkt_errmsg_has(k->full_says);
    assert_true(n >= 1);
    return n;
}

static int qs_is_fill(const char *m, long n, const qs_kind *k, uint32_t i)
{
    return n == (long)k->fill_len && ipkt_check(m, k->fill_len, i);
}

/* Sends fill message i with timeout. */
static int qs_send_fill(const qs_kind *k, ipk_chan *c, uint32_t i, int timeout)
{
    char m[8192];
    ipkt_fill(m, k->fill_len, i);
    return ipk_send(c, m, k->fill_len, timeout);
}

/* Receives fill messages from..to-1, then finds the queue empty. */
static void qs_drain_fill(const qs_kind *k, ipk_chan *l, uint32_t from, uint32_t to)
{
    char m[8192];
    for (uint32_t i = from; i < to; i++) {
        long n = ipk_recv(l, m, sizeof m, 0);
        if (!qs_is_fill(m, n, k, i))
            fail_msg("fill message %u: %ld bytes (%s)", i, n, n < 0 ? ipk_errmsg() : "wrong");
    }
    ipkt_expect(ipk_recv(l, m, sizeof m, 0), -EAGAIN);
}

static int qs_late_taker(void *arg)
{
    qs_run *r = arg;
    ipk_chan *c;
    char m[8192];
    IPKT_CHECK(qs_open(r, "", &c) == 0);
    for (uint32_t i = 0; i < 2; i++) {
        ipkt_msleep(i == 0 ? 100 : 50); /* let the test process wait on the full queue */
        long n = ipk_recv(c, m, sizeof m, 10000);
        IPKT_CHECK(qs_is_fill(m, n, r->k, i));
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

void qs_timeouts_full(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    ipk_chan *l = qs_listen(&r, k, k->small, 1);
    uint32_t n = qs_fill(k, l);
    ipkt_expect(qs_send_fill(k, l, n, 30), IPK_ETIMEDOUT);
    if (k->full_says)
        ipkt_errmsg_has(k->full_says);
    pid_t pid = ipkt_spawn(qs_late_taker, &r);
    ipkt_ok(qs_send_fill(k, l, n, 10000)); /* once the consumer made room */
    ipkt_ok(qs_send_fill(k, l, n + 1, -1));
    assert_int_equal(ipkt_wait(pid), 0);
    /* Nothing queued was lost or disturbed by the refused sends. */
    qs_drain_fill(k, l, 2, n + 2);
    qs_done(&r, l);
}

/* ---- a storm of signals (a handler without SA_RESTART) during waits ---- */

static volatile sig_atomic_t qs_interrupts;

static void qs_on_usr1(int sig)
{
    (void)sig;
    qs_interrupts++;
}

/* Storms this process's parent with SIGUSR1 for QS_STORM ms whenever told to, then does what
 * the command says: 's' nothing, 'S' sends "calm", 'R' receives the next fill message, 'q'
 * ends. */
static int qs_stormer(void *arg)
{
    qs_run *r = arg;
    ipk_chan *c = NULL;
    if (r->dial[0])
        IPKT_CHECK(qs_open(r, "", &c) == 0);
    int gap = ipkt_slow() ? 20 : 5;
    char cmd, m[8192];
    uint32_t taken = 0;
    while ((cmd = qs_await(r)) != 'q') {
        IPKT_CHECK(cmd != 0);
        for (int t = 0; t < QS_STORM; t += gap) {
            kill(getppid(), SIGUSR1);
            ipkt_msleep(gap);
        }
        if (cmd == 'S')
            IPKT_CHECK(ipk_send(c, "calm", 4, -1) == 0);
        if (cmd == 'R')
            IPKT_CHECK(qs_is_fill(m, ipk_recv(c, m, sizeof m, 10000), r->k, taken++));
    }
    return c == NULL || ipk_close(c) == 0 ? 0 : 1;
}

static pid_t qs_storm_start(qs_run *r)
{
    struct sigaction sa = {.sa_handler = qs_on_usr1}; /* no SA_RESTART: calls see EINTR */
    assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
    qs_interrupts = 0;
    return ipkt_spawn(qs_stormer, r);
}

static long qs_ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* One timed wait under the storm: recv (buf != NULL) or a send of fill message `i`. It must end
 * with IPK_ETIMEDOUT, and not before its deadline. */
static void qs_storm_timed(qs_run *r, ipk_chan *l, char *buf, size_t cap, uint32_t i, int ms)
{
    struct timespec t0;
    qs_post(r, 's');
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long got = buf ? ipk_recv(l, buf, cap, ms) : qs_send_fill(r->k, l, i, ms);
    long took = qs_ms_since(&t0);
    ipkt_expect(got, IPK_ETIMEDOUT);
    if (took < ms)
        fail_msg("a wait of %d ms under signals ended after %ld ms", ms, took);
}

static void qs_storm_end(qs_run *r, pid_t pid)
{
    qs_post(r, 'q');
    assert_int_equal(ipkt_wait(pid), 0);
    assert_true(qs_interrupts > 0); /* the waits above were interrupted */
}

void qs_storm_recv_at(const char *url, int timeout_ms)
{
    qs_run r = {.dial = ""};
    ipk_chan *l = NULL;
    char b[64];
    ipkt_ok(ipk_listen(&l, url, NULL));
    assert_int_equal(pipe(r.go), 0);
    pid_t pid = qs_storm_start(&r);
    qs_storm_timed(&r, l, b, sizeof b, 0, timeout_ms);
    qs_storm_end(&r, pid);
    qs_done(&r, l);
}

void qs_storm_recv(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    char b[16];
    ipk_chan *l = qs_listen(&r, k, "", 0);
    pid_t pid = qs_storm_start(&r);
    /* Through the storm until "calm" comes: with a deadline, then forever. */
    qs_post(&r, 'S');
    ipkt_expect(ipk_recv(l, b, sizeof b, 20000), 4);
    assert_memory_equal(b, "calm", 4);
    qs_storm_timed(&r, l, b, sizeof b, 0, QS_WAIT);
    qs_post(&r, 'S');
    ipkt_expect(ipk_recv(l, b, sizeof b, -1), 4);
    assert_memory_equal(b, "calm", 4);
    qs_storm_end(&r, pid);
    qs_done(&r, l);
}

void qs_storm_send(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    ipk_chan *l = qs_listen(&r, k, k->small, 1);
    uint32_t n = qs_fill(k, l);
    pid_t pid = qs_storm_start(&r);
    /* Through the storm until the child takes one: with a deadline, then forever. */
    qs_post(&r, 'R');
    ipkt_ok(qs_send_fill(k, l, n, 20000));
    qs_storm_timed(&r, l, NULL, 0, n + 1, QS_WAIT);
    qs_post(&r, 'R');
    ipkt_ok(qs_send_fill(k, l, n + 1, -1));
    qs_storm_end(&r, pid);
    qs_drain_fill(k, l, 2, n + 2);
    qs_done(&r, l);
}

/* ---- a buffer too small: IPK_EMSGSIZE with the size, and the message stays ---- */

void qs_small_buffer(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    ipk_chan *l = qs_listen(&r, k, "", 0), *d = qs_dial(&r, "");
    size_t len = k->typical < 60 ? k->typical : 60, cap = len / 2;
    char m[64], b[64], want[200];
    ipkt_fill(m, len, 7);
    ipkt_ok(ipk_send(d, m, len, 0));
    ipkt_ok(ipk_send(d, "ok", 2, 0));
    ipkt_expect(ipk_recv(l, b, cap, 1000), IPK_EMSGSIZE);
    if (k->needed_bound)
        snprintf(want, sizeof want, k->small_fmt, cap);
    else
        snprintf(want, sizeof want, k->small_fmt, len, cap);
    ipkt_errmsg_has(want);
    size_t need = ipk_needed(l);
    if (k->needed_bound)
        assert_true(need >= len);
    else
        assert_int_equal(need, len);
    if (k->pending_held)
        assert_int_equal(ipk_pending(l), 1);
    ipkt_expect(ipk_recv(l, b, len - 1, 0), IPK_EMSGSIZE);
    char *got = malloc(need);
    assert_non_null(got);
    ipkt_expect(ipk_recv(l, got, need, 0), (long)len);
    assert_true(ipkt_check(got, len, 7));
    free(got);
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), 2); /* and the next one comes after it */
    assert_memory_equal(b, "ok", 2);
    assert_int_equal(ipk_pending(l), 0);
    ipkt_ok(ipk_close(d));
    qs_done(&r, l);
}

/* ---- ipk_fd(): readable when a message waits, or IPK_ENOTSUP ---- */

void qs_poll(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    char b[8];
    ipk_chan *l = qs_listen(&r, k, "", 0), *d = qs_dial(&r, "");
    if (k->nofd_says) {
        ipkt_expect(ipk_fd(l), IPK_ENOTSUP);
        ipkt_errmsg_has(k->nofd_says);
        ipkt_expect(ipk_fd(d), IPK_ENOTSUP);
    } else {
        ipkt_expect(ipk_recv(l, b, sizeof b, 0), -EAGAIN);
        struct pollfd pf = {.fd = ipk_fd(l), .events = POLLIN};
        assert_true(pf.fd >= 0);
        assert_int_equal(poll(&pf, 1, 0), 0);
        ipkt_ok(ipk_send(d, "p", 1, 0));
        assert_int_equal(poll(&pf, 1, 5000), 1);
        assert_true(pf.revents & POLLIN);
    }
    ipkt_ok(ipk_send(d, "q", 1, 0));
    ipkt_expect(ipk_recv(l, b, sizeof b, 1000), 1);
    ipkt_ok(ipk_close(d));
    qs_done(&r, l);
}

/* ---- options ---- */

void qs_options(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    qs_run r;
    char base[300], url[400];
    ipk_chan *c = (ipk_chan *)0x1;
    k->fresh(base, sizeof base);
    ipkt_expect(ipk_listen(&c, qs_join(url, sizeof url, base, "bogus=1"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'bogus'");
    assert_null(c);
    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_opts_set(o, "max", "banana"));
    c = (ipk_chan *)0x1;
    ipkt_expect(ipk_listen(&c, base, o), IPK_EOPTION);
    ipkt_errmsg_has("max=banana");
    assert_null(c);
    ipk_opts_free(o);
    /* A dialer of a live object too. */
    ipk_chan *l = qs_listen(&r, k, "", 0);
    c = (ipk_chan *)0x1;
    ipkt_expect(qs_open(&r, "bogus=1", &c), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'bogus'");
    assert_null(c);
    qs_done(&r, l);
}

/* ---- several consumers ---- */

void qs_consumers(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    assert_true(k->consumers != QS_SINK);
    qs_run r;
    qs_job pj[2], cj[2];
    int pfd[2][2];
    pid_t pp[2], cp[2];
    ipk_chan *l = qs_listen(&r, k, k->multi, 0), *hold = qs_hold(&r);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(pfd[i]), 0);
        cj[i] = (qs_job){.r = &r, .query = "", .fd = pfd[i][1]};
        cj[i].markers = k->consumers == QS_EACH ? 2 : 1; /* EACH: one from every producer */
        cp[i] = ipkt_spawn(qs_consumer, &cj[i]);
    }
    for (uint32_t i = 0; i < 2; i++) {
        pj[i] = (qs_job){.r = &r, .query = "", .id = i, .n = QS_EACH_N, .markers = 1};
        pp[i] = ipkt_spawn(qs_producer, &pj[i]);
    }
    uint32_t total[QS_NPROD + 1] = {0}, want[QS_NPROD + 1] = {QS_EACH_N, QS_EACH_N};
    want[QS_NPROD] = 1; /* the test process's one message */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ipkt_wait(pp[i]), 0);
        assert_int_equal(ipkt_wait(cp[i]), 0);
    }
    ipkt_ok(ipk_close(hold));
    for (int i = 0; i < 2; i++) {
        uint32_t count[QS_NPROD + 1];
        assert_int_equal(read(pfd[i][0], count, sizeof count), (ssize_t)sizeof count);
        for (int p = 0; p <= QS_NPROD; p++) {
            if (k->consumers == QS_EACH)
                assert_int_equal(count[p], want[p]); /* every reader, every record */
            total[p] += count[p];
        }
        close(pfd[i][0]);
        close(pfd[i][1]);
    }
    if (k->consumers == QS_SHARE) /* each message to exactly one consumer */
        for (int p = 0; p <= QS_NPROD; p++)
            assert_int_equal(total[p], want[p]);
    qs_done(&r, l);
}

/* ---- a consumer killed while it waits ---- */

/* Dials, says so, and waits in a receive: for "after" (the first waiter is killed in there; the
 * second gets it), or with r->removal for the end of its object. */
static int qs_waiter(void *arg)
{
    qs_run *r = arg;
    ipk_chan *c;
    char b[16];
    IPKT_CHECK(qs_open(r, "", &c) == 0);
    IPKT_CHECK(write(r->go[1], "r", 1) == 1);
    long n = ipk_recv(c, b, sizeof b, r->removal ? -1 : 10000);
    if (r->removal) {
        IPKT_CHECK(n == IPK_EOF);
        IPKT_CHECK(strstr(ipk_errmsg(), r->k->removed_says) != NULL);
    } else {
        IPKT_CHECK(n == 5 && memcmp(b, "after", 5) == 0);
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

void qs_killed_consumer(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    assert_true(k->consumers != QS_SINK);
    qs_run r;
    ipk_chan *l = qs_listen(&r, k, "", 0);
    pid_t pid = ipkt_spawn(qs_waiter, &r);
    assert_int_equal(qs_await(&r), 'r');
    ipkt_msleep(50); /* most likely asleep in its receive by now; either way it is killed */
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(ipkt_wait(pid), 128 + SIGKILL);
    /* The queue still works, and what is sent now is not lost to the dead consumer. */
    pid = ipkt_spawn(qs_waiter, &r);
    assert_int_equal(qs_await(&r), 'r');
    ipkt_ok(ipk_send(l, "after", 5, 1000));
    assert_int_equal(ipkt_wait(pid), 0);
    qs_done(&r, l);
}

/* ---- what an owner's close removes (ipckit(3), ipk_close): the object when nothing waits in
 * it; with messages waiting it stays, and they are there for a later receiver; keep=0 removes
 * it even then, keep=1 never; a dialer never removes. ---- */

void qs_owner_removes(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    assert_non_null(k->missing_says);
    qs_run r;
    char url[400], b[8];
    ipk_chan *c = (ipk_chan *)0x1;
    k->fresh(r.base, sizeof r.base);
    ipkt_expect(ipk_dial(&c, r.base, NULL), -ENOENT);
    ipkt_errmsg_has(k->missing_says);
    assert_null(c);
    /* Empty at the owner's close: removed. */
    ipk_chan *l = qs_listen(&r, k, "", 0);
    ipkt_ok(ipk_close(qs_dial(&r, "")));
    assert_int_equal(ipk_undelivered(l), 0);
    qs_done(&r, l);
    ipkt_expect(ipk_dial(&c, r.dial, NULL), -ENOENT);
    /* A message waits: the object stays with it, for a receiver that comes later. */
    l = qs_listen(&r, k, "", 0);
    ipkt_ok(ipk_send(l, "x", 1, 0));
    assert_true(ipk_undelivered(l) > 0);
    qs_done(&r, l);
    ipkt_ok(ipk_dial(&c, r.dial, NULL));
    ipkt_expect(ipk_recv(c, b, sizeof b, 0), 1);
    assert_memory_equal(b, "x", 1);
    ipkt_ok(ipk_close(c));
    /* keep=0: removed even with a message in it. */
    l = qs_listen(&r, k, "keep=0", 0);
    ipkt_ok(ipk_send(l, "x", 1, 0));
    qs_done(&r, l);
    ipkt_expect(ipk_dial(&c, r.dial, NULL), -ENOENT);
    /* keep=1: what was queued is still there for a later dialer. */
    ipkt_ok(ipk_listen(&l, qs_join(url, sizeof url, r.base, "keep=1"), NULL));
    if (k->created)
        k->created(l, 0);
    ipkt_ok(ipk_send(l, "kept", 4, 0));
    ipkt_ok(ipk_close(l));
    ipkt_ok(ipk_dial(&c, r.dial, NULL));
    ipkt_expect(ipk_recv(c, b, sizeof b, 0), 4);
    assert_memory_equal(b, "kept", 4);
    ipkt_ok(ipk_close(c));
}

/* ---- permissions: 0600 by default, keeps "nobody" out; perm=0666 lets it in ---- */

static int qs_nobody(void *arg)
{
    qs_run *r = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    int rc = qs_open(r, "", &c);
    if (qs_await(r) == 'd') { /* denied */
        IPKT_CHECK(rc == -EACCES);
        IPKT_CHECK(strstr(ipk_errmsg(), r->k->eacces_says) != NULL);
        IPKT_CHECK(c == NULL);
        return 0;
    }
    IPKT_CHECK(rc == 0);
    IPKT_CHECK(ipk_send(c, "hi", 2, 1000) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

void qs_permissions(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    assert_non_null(k->eacces_says);
    qs_run r;
    char b[8];
    ipk_chan *l = qs_listen(&r, k, "", 0);
    if (k->mode_of)
        assert_int_equal(k->mode_of(l), 0600);
    qs_post(&r, 'd');
    assert_int_equal(ipkt_wait(ipkt_spawn(qs_nobody, &r)), 0);
    qs_done(&r, l);
    l = qs_listen(&r, k, "perm=0666", 0);
    if (k->mode_of)
        assert_int_equal(k->mode_of(l), 0666);
    qs_post(&r, 'a');
    assert_int_equal(ipkt_wait(ipkt_spawn(qs_nobody, &r)), 0);
    ipkt_expect(ipk_recv(l, b, sizeof b, 1000), 2);
    assert_memory_equal(b, "hi", 2);
    qs_done(&r, l);
}

/* ---- a receiver sees its object removed ---- */

void qs_removed(void **state)
{
    const qs_kind *k = qs_kind_of(state);
    assert_non_null(k->removed_says);
    qs_run r;
    ipk_chan *l = qs_listen(&r, k, k->keep0, 0);
    r.removal = 1;
    pid_t pid = ipkt_spawn(qs_waiter, &r);
    assert_int_equal(qs_await(&r), 'r');
    ipkt_msleep(20); /* most likely waiting by now; either way it must see the end */
    qs_done(&r, l);
    assert_int_equal(ipkt_wait(pid), 0);
}
