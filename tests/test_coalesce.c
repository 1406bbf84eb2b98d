/*
 * test_coalesce.c - send coalescing on stream sockets (unix:, tcp:): ipk_send buffers small
 * frames and they are written when the buffer fills, before the owner receives, polls, flushes,
 * shuts down or closes, at exit(), or by the flusher thread within flush=US. Every test runs over
 * both schemes, between real processes; none times anything: "delivered within the bound" is
 * checked as "received before the test's generous timeout" while the sender sleeps.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 20000 /* far beyond any bound: only a lost message reaches it */

static const char *const schemes[] = {"unix", "tcp"};

static ipk_chan *listen_on(const char *scheme, const char *query)
{
    char url[300], p[200];
    if (strcmp(scheme, "unix") == 0)
        snprintf(url, sizeof url, "unix:%s%s", ipkt_path(p, sizeof p, "co"), query);
    else
        snprintf(url, sizeof url, "tcp://127.0.0.1:0%s", query);
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    return l;
}

/* The dialer's address: the listener's, with the dialer's own options. */
static const char *dial_url(char *buf, size_t cap, ipk_chan *l, const char *query)
{
    snprintf(buf, cap, "%s%s", ipk_addr(l), query);
    return buf;
}

typedef struct job {
    char url[400];
    int n;
} job;

/* A listener on scheme (with query, also the dialer's), a child running fn(j) that dials it,
 * and the accepted connection. */
typedef struct pair {
    ipk_chan *l, *p;
    pid_t pid;
} pair;

static pair pair_start(const char *scheme, const char *query, int (*fn)(void *), job *j)
{
    pair x = {listen_on(scheme, query), NULL, 0};
    dial_url(j->url, sizeof j->url, x.l, "");
    x.pid = ipkt_spawn(fn, j);
    ipkt_ok(ipk_accept(x.l, &x.p, WAIT_MS));
    return x;
}

/* The stream ends there, the child succeeded, both channels close cleanly. */
static void pair_end(pair *x)
{
    char buf[8];
    ipkt_expect(ipk_recv(x->p, buf, sizeof buf, WAIT_MS), IPK_EOF);
    assert_int_equal(ipkt_wait(x->pid), 0);
    ipkt_ok(ipk_close(x->p));
    ipkt_ok(ipk_close(x->l));
}

/* Sends "hi", then sleeps until killed: only the flusher can deliver it. */
static int hi_then_sleep(void *arg)
{
    job *j = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, j->url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "hi", 2, -1) == 0);
    for (;;)
        pause();
}

static void t_send_then_sleep(void **s)
{
    (void)s;
    for (size_t i = 0; i < 2; i++) {
        job j = {.n = 0};
        pair x = pair_start(schemes[i], "", hi_then_sleep, &j);
        char buf[16];
        ipkt_expect(ipk_recv(x.p, buf, sizeof buf, WAIT_MS), 2);
        assert_memory_equal(buf, "hi", 2);
        kill(x.pid, SIGKILL);
        ipkt_wait(x.pid);
        ipkt_ok(ipk_close(x.p));
        ipkt_ok(ipk_close(x.l));
    }
}

/* n messages of varying small sizes, each saying its number, then exit() from the child. */
static void make_msg(unsigned char *m, size_t *len, int k)
{
    *len = 4 + (size_t)(k * 7 % 200);
    memcpy(m, &k, 4);
    for (size_t b = 4; b < *len; b++)
        m[b] = (unsigned char)(k + b);
}

static int check_msg(const unsigned char *m, long len, int k)
{
    unsigned char want[256];
    size_t wl;
    make_msg(want, &wl, k);
    return len == (long)wl && memcmp(m, want, wl) == 0;
}

static int many_then_exit(void *arg)
{
    job *j = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, j->url, NULL) == 0);
    for (int k = 0; k < j->n; k++) {
        unsigned char m[256];
        size_t len;
        make_msg(m, &len, k);
        IPKT_CHECK(ipk_send(c, m, len, -1) == 0);
    }
    exit(0); /* no close: what is buffered goes out at exit */
}

static void t_many_then_exit(void **s)
{
    (void)s;
    for (size_t i = 0; i < 2; i++) {
        job j = {.n = 20011};
        pair x = pair_start(schemes[i], "", many_then_exit, &j);
        unsigned char buf[256];
        for (int k = 0; k < j.n; k++) {
            long r = ipk_recv(x.p, buf, sizeof buf, WAIT_MS);
            if (!check_msg(buf, r, k))
                print_error("message %d: %ld bytes [%s]\n", k, r, ipk_errmsg());
            assert_true(check_msg(buf, r, k));
        }
        pair_end(&x);
    }
}

/* Sends "a", forks (the child exits at once, or sends "c" and exits), sends "b", closes. */
static int fork_sender(void *arg)
{
    job *j = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, j->url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "a", 1, -1) == 0);
    fflush(NULL);
    pid_t k = fork();
    IPKT_CHECK(k >= 0);
    if (k == 0) {
        if (j->n && ipk_send(c, "c", 1, -1) != 0)
            _exit(3);
        exit(0); /* exit(): the child's buffer is written, and holds none of "a" */
    }
    int st;
    IPKT_CHECK(waitpid(k, &st, 0) == k && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    IPKT_CHECK(ipk_send(c, "b", 1, -1) == 0);
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

static void t_fork(void **s)
{
    (void)s;
    for (size_t i = 0; i < 2; i++)
        for (int child_sends = 0; child_sends < 2; child_sends++) {
            job j = {.n = child_sends};
            pair x = pair_start(schemes[i], "", fork_sender, &j);
            char got[8] = "";
            size_t n = 0;
            char buf[8];
            while (n < sizeof got - 1 && ipk_recv(x.p, buf, sizeof buf, WAIT_MS) == 1)
                got[n++] = buf[0];
            /* "a" once and before "b"; the child's "c" once, anywhere (two processes). */
            const char *a = strchr(got, 'a'), *b = strchr(got, 'b');
            if (n != 2u + (unsigned)child_sends || !a || !b || a > b)
                print_error("%s, child %s: received \"%s\"\n", schemes[i],
                            child_sends ? "sends" : "exits", got);
            assert_int_equal(n, 2 + child_sends);
            assert_non_null(a);
            assert_non_null(b);
            assert_true(a < b);
            assert_true(!child_sends || strchr(got, 'c') != NULL);
            pair_end(&x);
        }
}

/* The peer goes away; the flusher's write fails; the next send says so. */
static void t_flusher_error(void **s)
{
    (void)s;
    for (size_t i = 0; i < 2; i++) {
        ipk_chan *l = listen_on(schemes[i], ""), *p = NULL, *c = NULL;
        char url[400];
        ipkt_ok(ipk_dial(&c, dial_url(url, sizeof url, l, ""), NULL));
        ipkt_ok(ipk_accept(l, &p, WAIT_MS));
        ipkt_ok(ipk_close(p));
        ipkt_ok(ipk_close(l));
        /* Each send is accepted into the buffer until the flusher has met the closed peer
         * (tcp: the first write draws a reset, a later one fails). */
        int r = 0;
        for (int k = 0; k < WAIT_MS && r == 0; k++) {
            ipkt_msleep(1);
            r = ipk_send(c, "x", 1, -1);
        }
        if (r != -EPIPE && r != -ECONNRESET)
            print_error("%s: send = %d (%s) [%s]\n", schemes[i], r, ipk_strerror(r), ipk_errmsg());
        assert_true(r == -EPIPE || r == -ECONNRESET);
        ipkt_errmsg_has("did not reach the peer");
        /* Sticky: the stream lost bytes, nothing more may follow them. */
        ipkt_expect(ipk_send(c, "y", 1, -1), r);
        ipkt_expect(ipk_flush(c, 0), r);
        ipkt_expect(ipk_close(c), r);
    }
}

/* flush=0: every send is written before it returns (a unix socket queues it at once). */
static void t_write_through(void **s)
{
    (void)s;
    ipk_chan *l = listen_on("unix", "?flush=0"), *p = NULL, *c = NULL;
    char url[400], buf[16];
    ipkt_ok(ipk_dial(&c, dial_url(url, sizeof url, l, "?flush=0"), NULL));
    ipkt_ok(ipk_accept(l, &p, WAIT_MS));
    for (int k = 0; k < 100; k++) {
        ipkt_ok(ipk_send(c, &k, sizeof k, -1));
        int got = -1;
        ipkt_expect(ipk_recv(p, &got, sizeof got, 0), sizeof got);
        assert_int_equal(got, k);
        ipkt_ok(ipk_send(p, &k, sizeof k, -1)); /* the accepted end inherits flush=0 */
        ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), sizeof k);
    }
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(p));
    ipkt_ok(ipk_close(l));
}

static void t_bad_option(void **s)
{
    (void)s;
    ipk_chan *c = NULL;
    char url[300], p[200];
    snprintf(url, sizeof url, "unix:%s?flush=soon", ipkt_path(p, sizeof p, "bad"));
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("flush");
    ipkt_expect(ipk_dial(&c, "tcp://127.0.0.1:1?flush=2000000", NULL), IPK_EOPTION);
    ipkt_errmsg_has("flush");
    snprintf(url, sizeof url, "fifo:%s?flush=100", ipkt_path(p, sizeof p, "bad"));
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION); /* pipes write through */
    ipkt_errmsg_has("unknown option 'flush'");
}

/* Small, large and batched messages interleave; the receiver sees them in order, whole. */
static size_t order_len(int k)
{
    static const size_t sizes[] = {0, 1, 100, 8192, 8193, 70000, 5, 300000, 64 << 10, 3};
    return sizes[k % 10];
}

static int order_sender(void *arg)
{
    job *j = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, j->url, NULL) == 0);
    static unsigned char m[4][300000];
    for (int k = 0; k < j->n;) {
        if (k % 3 == 0) {
            ipk_iov v[4];
            for (int b = 0; b < 4; b++) {
                ipkt_fill(m[b], order_len(k + b), (uint32_t)(k + b));
                v[b] = (ipk_iov){m[b], order_len(k + b)};
            }
            IPKT_CHECK(ipk_sendv(c, v, 4, -1) == 4);
            k += 4;
        } else {
            ipkt_fill(m[0], order_len(k), (uint32_t)k);
            IPKT_CHECK(ipk_send(c, m[0], order_len(k), -1) == 0);
            k++;
        }
    }
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

/* Receives message k of a sender that fills with ipkt_fill(.., k): want bytes, its content. */
static void expect_msg(ipk_chan *p, const char *scheme, int k, size_t want, unsigned char *buf,
                       size_t cap)
{
    long r = ipk_recv(p, buf, cap, WAIT_MS);
    if (r != (long)want)
        print_error("%s: message %d: %ld bytes, expected %zu [%s]\n", scheme, k, r, want,
                    ipk_errmsg());
    assert_int_equal(r, want);
    assert_true(ipkt_check(buf, (size_t)r, (uint32_t)k));
}

static void t_order(void **s)
{
    (void)s;
    static unsigned char buf[300000];
    for (size_t i = 0; i < 2; i++) {
        job j = {.n = 400};
        pair x = pair_start(schemes[i], "", order_sender, &j);
        for (int k = 0; k < j.n; k++) {
            expect_msg(x.p, schemes[i], k, order_len(k), buf, sizeof buf);
        }
        pair_end(&x);
    }
}

/* Batches of small frames larger than the 64 KiB buffer: each batch is cut where the buffer is
 * full, and no frame is lost, doubled or split wrongly at the cut. */
#define BATCH_N 700
static size_t batch_len(int k)
{
    return (size_t)(k * 37) % 1500;
}

static int batch_sender(void *arg)
{
    job *j = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, j->url, NULL) == 0);
    static unsigned char m[BATCH_N][1500];
    ipk_iov v[BATCH_N];
    for (int k = 0; k < j->n; k += BATCH_N) {
        for (int b = 0; b < BATCH_N; b++) {
            ipkt_fill(m[b], batch_len(k + b), (uint32_t)(k + b));
            v[b] = (ipk_iov){m[b], batch_len(k + b)};
        }
        IPKT_CHECK(ipk_sendv(c, v, BATCH_N, -1) == BATCH_N);
    }
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

static void t_big_batch(void **s)
{
    (void)s;
    static unsigned char buf[1500];
    for (size_t i = 0; i < 2; i++) {
        job j = {.n = 3 * BATCH_N};
        pair x = pair_start(schemes[i], "", batch_sender, &j);
        for (int k = 0; k < j.n; k++) {
            if (k == 2) { /* a frame already received whole, and a buffer one byte short */
                ipkt_expect(ipk_recv(x.p, buf, batch_len(k) - 1, WAIT_MS), IPK_EMSGSIZE);
                ipkt_errmsg_has("does not fit");
            }
            expect_msg(x.p, schemes[i], k, batch_len(k), buf, sizeof buf);
        }
        pair_end(&x);
    }
}

/* Echoes every message back until the end of the stream. */
static int echo(void *arg)
{
    job *j = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, j->url, NULL) == 0);
    char buf[64];
    long r;
    while ((r = ipk_recv(c, buf, sizeof buf, -1)) >= 0)
        IPKT_CHECK(ipk_send(c, buf, (size_t)r, -1) == 0);
    IPKT_CHECK(r == IPK_EOF);
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

/* A poller: writable is the socket's word, buffered bytes or not; and a wait for the answer
 * writes the question first (here the flusher is slowed to 1 s, so the poller is what sends). */
static void t_poller(void **s)
{
    (void)s;
    for (size_t i = 0; i < 2; i++) {
        job j = {.n = 0};
        pair x = pair_start(schemes[i], "?flush=1000000", echo, &j);
        ipk_chan *p = x.p;
        ipk_poller *po = NULL;
        ipkt_ok(ipk_poller_new(&po));
        ipkt_ok(ipk_poller_add(po, p, IPK_POLLOUT, NULL));
        ipk_pollev ev[2];
        ipkt_expect(ipk_poller_wait(po, ev, 2, WAIT_MS), 1);
        assert_true(ev[0].events & IPK_POLLOUT);
        ipkt_ok(ipk_poller_mod(po, p, IPK_POLLIN, NULL));
        for (int k = 0; k < 50; k++) {
            ipkt_ok(ipk_send(p, &k, sizeof k, -1));
            ipkt_expect(ipk_poller_wait(po, ev, 2, WAIT_MS), 1);
            assert_true(ev[0].events & IPK_POLLIN);
            int got = -1;
            ipkt_expect(ipk_recv(p, &got, sizeof got, 0), sizeof got);
            assert_int_equal(got, k);
        }
        ipk_poller_free(po);
        ipkt_ok(ipk_shutdown(p, WAIT_MS));
        pair_end(&x);
    }
}

/* Threads, each with its channel, send bursts with pauses between them while the flusher runs;
 * a child receives and checks every stream. For ASan, valgrind and helgrind. */
#define NTHREADS   4
#define PER_THREAD 3000

typedef struct tjob {
    ipk_chan *c;
    int ok;
} tjob;

static void *burst_thread(void *arg)
{
    tjob *t = arg;
    for (int k = 0; k < PER_THREAD; k++) {
        unsigned char m[256];
        size_t len;
        make_msg(m, &len, k);
        if (ipk_send(t->c, m, len, -1) != 0)
            return NULL;
        if (k % 97 == 0)
            usleep(300); /* longer than the bound: the flusher writes this burst */
    }
    t->ok = ipk_close(t->c) == 0;
    return NULL;
}

static int receive_all(void *arg)
{
    ipk_chan *l = arg, *p[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        IPKT_CHECK(ipk_accept(l, &p[t], WAIT_MS) == 0);
    for (int t = 0; t < NTHREADS; t++) {
        unsigned char buf[256];
        for (int k = 0; k < PER_THREAD; k++)
            IPKT_CHECK(check_msg(buf, ipk_recv(p[t], buf, sizeof buf, WAIT_MS), k));
        IPKT_CHECK(ipk_recv(p[t], buf, sizeof buf, WAIT_MS) == IPK_EOF);
        IPKT_CHECK(ipk_close(p[t]) == 0);
    }
    return 0;
}

static void t_threads(void **s)
{
    (void)s;
    for (size_t i = 0; i < 2; i++) {
        ipk_chan *l = listen_on(schemes[i], "");
        pid_t pid = ipkt_spawn(receive_all, l);
        pthread_t th[NTHREADS];
        tjob t[NTHREADS];
        char url[400];
        for (int k = 0; k < NTHREADS; k++) {
            t[k].ok = 0;
            ipkt_ok(ipk_dial(&t[k].c, dial_url(url, sizeof url, l, ""), NULL));
        }
        for (int k = 0; k < NTHREADS; k++)
            assert_int_equal(pthread_create(&th[k], NULL, burst_thread, &t[k]), 0);
        for (int k = 0; k < NTHREADS; k++) {
            pthread_join(th[k], NULL);
            assert_true(t[k].ok);
        }
        assert_int_equal(ipkt_wait(pid), 0);
        ipkt_ok(ipk_close(l));
    }
}

IPKT_MAIN(cmocka_unit_test(t_send_then_sleep), cmocka_unit_test(t_many_then_exit),
          cmocka_unit_test(t_fork), cmocka_unit_test(t_flusher_error),
          cmocka_unit_test(t_write_through), cmocka_unit_test(t_bad_option),
          cmocka_unit_test(t_order), cmocka_unit_test(t_big_batch), cmocka_unit_test(t_poller),
          cmocka_unit_test(t_threads))
