/*
 * sock_suite.h - the conformance tests every datagram/packet transport passes (unixgram and
 * unixpacket in test_unix.c, udp in test_udp.c): message sizes up to the largest the transport
 * carries, 100,000 messages in order between two processes, a peer that goes away, timeouts,
 * a buffer too small, a message above max, replies to the last sender, unknown options.
 *
 * The parent listens; a forked child dials. Children cannot use cmocka's asserts (a failure
 * would unwind into the parent's copy of the runner), so they check with IPKT_CHECK() and exit 1.
 */
#ifndef IPKT_SOCK_SUITE_H
#define IPKT_SOCK_SUITE_H

#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define DG_FN static __attribute__((unused))

typedef struct dg_kind {
    const char *listen; /* listener address (port 0 / unique path) */
    int connected;      /* the listener accepts connections (unixpacket) */
    int lossy;          /* udp: the receiver acknowledges, and its SO_RCVBUF is raised */
    char dial[300];     /* what the child dials: ipk_addr() of the listener */
    int sync[2];        /* pipe: the parent lets the child go on */
    size_t largest;     /* largest message the transport carries */
    int lfd;            /* the listener's descriptor, which a child closes to let it die */
} dg_kind;

/* ---- helpers ---- */

DG_FN void sync_post(dg_kind *k)
{
    assert_int_equal(write(k->sync[1], "g", 1), 1);
}

DG_FN int sync_wait(dg_kind *k)
{
    char ch;
    return read(k->sync[0], &ch, 1) == 1 ? 0 : -1;
}

DG_FN void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The largest message c can send: 65507/65527 for UDP; SO_SNDBUF - 32 for unix (af_unix.c
 * refuses len > sk_sndbuf - 32). */
DG_FN size_t dg_largest(const char *scheme, ipk_chan *c, int v6)
{
    if (strcmp(scheme, "udp") == 0)
        return v6 ? 65527 : 65507;
    int sb = 0;
    socklen_t l = sizeof sb;
    if (getsockopt(ipk_fd(c), SOL_SOCKET, SO_SNDBUF, &sb, &l) != 0)
        return 0;
    return (size_t)sb - 32;
}

/* Listens at k->listen and fills k->dial, k->sync and k->largest. */
DG_FN ipk_chan *dg_listen(dg_kind *k, const char *query)
{
    char url[400];
    snprintf(url, sizeof url, "%s%s", k->listen, query ? query : "");
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    snprintf(k->dial, sizeof k->dial, "%s", ipk_addr(l));
    assert_int_equal(pipe(k->sync), 0);
    k->largest = dg_largest(ipk_scheme(l), l, strchr(k->dial, '[') != NULL);
    assert_true(k->largest > 4097);
    if (k->lossy) {
        int sz = 4 << 20;
        setsockopt(ipk_fd(l), SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    return l;
}

/* The channel the parent talks on: the accepted connection, or the listener itself. */
DG_FN ipk_chan *dg_peer(dg_kind *k, ipk_chan *l)
{
    if (!k->connected)
        return l;
    ipk_chan *p = NULL;
    ipkt_ok(ipk_accept(l, &p, -1));
    return p;
}

DG_FN void dg_done(dg_kind *k, ipk_chan *l, ipk_chan *p, pid_t pid)
{
    assert_int_equal(ipkt_wait(pid), 0);
    if (p != l)
        ipkt_ok(ipk_close(p));
    ipkt_ok(ipk_close(l));
    close(k->sync[0]);
    close(k->sync[1]);
}

/* ---- sizes: 0, 1, 4095, 4096, 4097, the largest; largest + 1 is IPK_EMSGSIZE ---- */

DG_FN int dg_sizes_child(void *arg)
{
    dg_kind *k = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, k->dial, NULL) == 0);
    size_t sizes[] = {0, 1, 4095, 4096, 4097, k->largest};
    char *m = malloc(k->largest + 1);
    IPKT_CHECK(m != NULL);
    char ack[8];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ipkt_fill(m, sizes[i], (uint32_t)i);
        IPKT_CHECK(ipk_send(c, m, sizes[i], -1) == 0);
        IPKT_CHECK(ipk_recv(c, ack, sizeof ack, -1) == 1); /* flow control: UDP drops on overflow */
    }
    IPKT_CHECK(ipk_send(c, m, k->largest + 1, -1) == IPK_EMSGSIZE);
    char want[64];
    snprintf(want, sizeof want, "%zu bytes exceeds", k->largest + 1);
    IPKT_CHECK(strstr(ipk_errmsg(), want) != NULL);
    snprintf(want, sizeof want, "of %zu bytes", k->largest);
    IPKT_CHECK(strstr(ipk_errmsg(), want) != NULL);
    free(m);
    return ipk_close(c) == 0 ? 0 : 1;
}

DG_FN void dg_sizes(dg_kind *k)
{
    ipk_chan *l = dg_listen(k, NULL);
    pid_t pid = ipkt_spawn(dg_sizes_child, k);
    ipk_chan *p = dg_peer(k, l);
    size_t sizes[] = {0, 1, 4095, 4096, 4097, k->largest};
    char *b = malloc(k->largest + 1);
    assert_non_null(b);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        /* The last one is received into a buffer of exactly its size. */
        size_t cap = i + 1 == sizeof sizes / sizeof sizes[0] ? k->largest : k->largest + 1;
        ipkt_expect(ipk_recv(p, b, cap, -1), (long)sizes[i]);
        assert_true(ipkt_check(b, sizes[i], (uint32_t)i));
        ipkt_ok(ipk_send(p, "a", 1, -1));
    }
    free(b);
    dg_done(k, l, p, pid);
}

/* ---- 100,000 messages in order, no loss ---- */

#define DG_COUNT  100000
#define DG_WINDOW 64

DG_FN int dg_order_child(void *arg)
{
    dg_kind *k = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, k->dial, NULL) == 0);
    static unsigned char m[DG_WINDOW][64];
    ipk_iov v[DG_WINDOW];
    for (uint32_t i = 0; i < DG_COUNT;) {
        size_t n = 0;
        for (; n < DG_WINDOW && i + n < DG_COUNT; n++) {
            uint32_t seq = i + (uint32_t)n;
            memcpy(m[n], &seq, 4);
            memset(m[n] + 4, (int)(seq & 0xff), seq % 50);
            v[n] = (ipk_iov){m[n], 4 + seq % 50};
        }
        size_t sent = 0;
        while (sent < n) {
            long r = ipk_sendv(c, v + sent, n - sent, -1);
            IPKT_CHECK(r >= 1);
            sent += (size_t)r;
        }
        i += (uint32_t)n;
        if (k->lossy) { /* wait until the receiver has taken the window */
            char ack[8];
            IPKT_CHECK(ipk_recv(c, ack, sizeof ack, -1) == 1);
        }
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

DG_FN void dg_order(dg_kind *k)
{
    ipk_chan *l = dg_listen(k, NULL);
    pid_t pid = ipkt_spawn(dg_order_child, k);
    ipk_chan *p = dg_peer(k, l);
    unsigned char b[256], want[64];
    for (uint32_t i = 0; i < DG_COUNT; i++) {
        long n = ipk_recv(p, b, sizeof b, -1);
        if (n != (long)(4 + i % 50))
            fail_msg("message %u: length %ld (%s), expected %u", i, n, ipk_errmsg(), 4 + i % 50);
        uint32_t seq;
        memcpy(&seq, b, 4);
        memset(want, (int)(i & 0xff), i % 50);
        if (seq != i || memcmp(b + 4, want, i % 50) != 0)
            fail_msg("message %u arrived as %u (or corrupted)", i, seq);
        if (k->lossy && ((i + 1) % DG_WINDOW == 0 || i + 1 == DG_COUNT))
            ipkt_ok(ipk_send(p, "a", 1, -1));
    }
    dg_done(k, l, p, pid);
}

/* ---- timeouts 0, positive, -1 ---- */

DG_FN int dg_late_child(void *arg)
{
    dg_kind *k = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, k->dial, NULL) == 0);
    IPKT_CHECK(sync_wait(k) == 0);
    sleep_ms(50);
    IPKT_CHECK(ipk_send(c, "late", 4, -1) == 0);
    IPKT_CHECK(sync_wait(k) == 0); /* stay until the parent has it (a closed packet peer is EOF) */
    return ipk_close(c) == 0 ? 0 : 1;
}

DG_FN void dg_timeouts(dg_kind *k)
{
    ipk_chan *l = dg_listen(k, NULL);
    pid_t pid = ipkt_spawn(dg_late_child, k);
    ipk_chan *p = dg_peer(k, l);
    char b[16];
    ipkt_expect(ipk_recv(p, b, sizeof b, 0), -EAGAIN);
    ipkt_errmsg_has("no message is waiting");
    ipkt_expect(ipk_recv(p, b, sizeof b, 30), IPK_ETIMEDOUT);
    ipkt_errmsg_has("before the deadline");
    sync_post(k);
    ipkt_expect(ipk_recv(p, b, sizeof b, -1), 4);
    assert_memory_equal(b, "late", 4);
    sync_post(k);
    dg_done(k, l, p, pid);
}

/* ---- a storm of signals (handler without SA_RESTART) never surfaces as EINTR ---- */

static void dg_on_signal(int sig)
{
    (void)sig;
}

DG_FN int dg_storm_child(void *arg)
{
    dg_kind *k = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, k->dial, NULL) == 0);
    for (int round = 0; round < 2; round++) {
        IPKT_CHECK(sync_wait(k) == 0);
        for (int i = 0; i < 300; i++) {
            kill(getppid(), SIGUSR1);
            if (i % 50 == 0)
                sleep_ms(1);
        }
    }
    IPKT_CHECK(ipk_send(c, "calm", 4, -1) == 0);
    IPKT_CHECK(sync_wait(k) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

DG_FN void dg_signals(dg_kind *k)
{
    struct sigaction sa = {.sa_handler = dg_on_signal}; /* no SA_RESTART: calls see EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    ipk_chan *l = dg_listen(k, NULL);
    pid_t pid = ipkt_spawn(dg_storm_child, k);
    ipk_chan *p = dg_peer(k, l);
    char b[8];
    sync_post(k);
    ipkt_expect(ipk_recv(p, b, sizeof b, 100), IPK_ETIMEDOUT); /* signals arrive meanwhile */
    sync_post(k);
    ipkt_expect(ipk_recv(p, b, sizeof b, -1), 4);
    sync_post(k);
    dg_done(k, l, p, pid);
}

/* ---- a buffer too small; a message above max ---- */

DG_FN int dg_big_child(void *arg)
{
    dg_kind *k = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, k->dial, NULL) == 0);
    char m[100];
    ipkt_fill(m, sizeof m, 7);
    IPKT_CHECK(ipk_send(c, m, 100, -1) == 0); /* above the receiver's max=60, twice */
    IPKT_CHECK(ipk_send(c, m, 100, -1) == 0);
    IPKT_CHECK(ipk_send(c, m, 60, -1) == 0); /* for a buffer too small */
    IPKT_CHECK(sync_wait(k) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

DG_FN void dg_small_buffer(dg_kind *k)
{
    ipk_chan *l = dg_listen(k, "?max=60");
    pid_t pid = ipkt_spawn(dg_big_child, k);
    ipk_chan *p = dg_peer(k, l);
    char b[128];
    /* Above max: never delivered, whether it was sized first (small buffer) or not. */
    ipkt_expect(ipk_recv(p, b, 10, -1), IPK_EMSGSIZE);
    ipkt_errmsg_has("100 bytes exceeds max=60; it was discarded");
    assert_int_equal(ipk_needed(p), 0);
    ipkt_expect(ipk_recv(p, b, sizeof b, -1), IPK_EMSGSIZE);
    ipkt_errmsg_has("100 bytes exceeds max=60; it was discarded");
    /* Too big for the buffer: its size, and it stays queued until a buffer fits. */
    ipkt_expect(ipk_recv(p, b, 10, -1), IPK_EMSGSIZE);
    ipkt_errmsg_has("message of 60 bytes does not fit a 10-byte buffer; it is still queued");
    assert_int_equal(ipk_needed(p), 60);
    ipkt_expect(ipk_recv(p, b, 59, 0), IPK_EMSGSIZE);
    ipkt_expect(ipk_recv(p, b, 60, 0), 60);
    assert_true(ipkt_check(b, 60, 7));
    ipkt_expect(ipk_recv(p, b, sizeof b, 0), -EAGAIN);
    sync_post(k);
    dg_done(k, l, p, pid);
}

/* ---- replies go to the last sender ---- */

DG_FN int dg_reply_child(void *arg)
{
    dg_kind *k = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, k->dial, NULL) == 0);
    pid_t me = getpid(), got = 0;
    for (int i = 0; i < 50; i++) {
        IPKT_CHECK(ipk_send(c, &me, sizeof me, -1) == 0);
        IPKT_CHECK(ipk_recv(c, &got, sizeof got, -1) == (long)sizeof got);
        IPKT_CHECK(got == me);
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

DG_FN void dg_reply(dg_kind *k)
{
    ipk_chan *l = dg_listen(k, NULL);
    ipkt_expect(ipk_send(l, "x", 1, -1), -EDESTADDRREQ);
    ipkt_errmsg_has("replies to the sender of the last datagram");
    pid_t a = ipkt_spawn(dg_reply_child, k), z = ipkt_spawn(dg_reply_child, k);
    for (int i = 0; i < 100; i++) {
        pid_t who;
        ipkt_expect(ipk_recv(l, &who, sizeof who, -1), sizeof who);
        assert_true(who == a || who == z);
        ipkt_ok(ipk_send(l, &who, sizeof who, -1));
    }
    assert_int_equal(ipkt_wait(a), 0);
    dg_done(k, l, l, z);
}

/* ---- the listener goes away: a later call says -ECONNREFUSED ---- */

DG_FN int dg_gone_child(void *arg)
{
    dg_kind *k = arg;
    ipk_chan *c = NULL;
    close(k->lfd); /* the copy fork gave us would keep the listener alive */
    IPKT_CHECK(ipk_dial(&c, k->dial, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "hi", 2, -1) == 0);
    IPKT_CHECK(sync_wait(k) == 0);
    /* unixgram refuses this send at once; UDP sends it, and the ICMP port unreachable it
     * provokes is reported on the next call. */
    int r = ipk_send(c, "again", 5, -1);
    if (r == 0) {
        char b[8];
        r = (int)ipk_recv(c, b, sizeof b, 5000);
    }
    IPKT_CHECK(r == -ECONNREFUSED);
    /* Whichever call met it (the send's one-call path, or the receive) says what it was. */
    IPKT_CHECK(strstr(ipk_errmsg(), "refused") != NULL);
    return ipk_close(c) == 0 ? 0 : 1;
}

DG_FN void dg_gone(dg_kind *k)
{
    ipk_chan *l = dg_listen(k, NULL);
    k->lfd = ipk_fd(l);
    pid_t pid = ipkt_spawn(dg_gone_child, k);
    char b[8];
    ipkt_expect(ipk_recv(l, b, sizeof b, -1), 2);
    ipkt_ok(ipk_close(l));
    sync_post(k);
    assert_int_equal(ipkt_wait(pid), 0);
    close(k->sync[0]);
    close(k->sync[1]);
}

/* ---- options ---- */

DG_FN void dg_options(dg_kind *k, const char *foreign)
{
    char url[400];
    ipk_chan *c = (ipk_chan *)0x1;
    snprintf(url, sizeof url, "%s?%s=1", k->listen, foreign);
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    assert_null(c);
    char want[64];
    snprintf(want, sizeof want, "unknown option '%s'", foreign);
    ipkt_errmsg_has(want);
    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_opts_set(o, "max", "banana"));
    ipkt_expect(ipk_listen(&c, k->listen, o), IPK_EOPTION);
    ipkt_errmsg_has("max=banana");
    ipk_opts_free(o);
}

/* Listen (listen = 1) or dial at url fails with exactly `code`, the message saying `says`, and
 * no channel comes back. */
DG_FN void open_fails(int listen, const char *url, int code, const char *says)
{
    ipk_chan *c = (ipk_chan *)0x1;
    ipkt_expect(listen ? ipk_listen(&c, url, NULL) : ipk_dial(&c, url, NULL), code);
    ipkt_errmsg_has(says);
    assert_null(c);
}

#define DG_SUITE(tag, init)                                                                        \
    static void tag##_sizes(void **s)                                                              \
    {                                                                                              \
        dg_kind k = init;                                                                          \
        (void)s;                                                                                   \
        dg_sizes(&k);                                                                              \
    }                                                                                              \
    static void tag##_order(void **s)                                                              \
    {                                                                                              \
        dg_kind k = init;                                                                          \
        (void)s;                                                                                   \
        dg_order(&k);                                                                              \
    }                                                                                              \
    static void tag##_timeouts(void **s)                                                           \
    {                                                                                              \
        dg_kind k = init;                                                                          \
        (void)s;                                                                                   \
        dg_timeouts(&k);                                                                           \
    }                                                                                              \
    static void tag##_signals(void **s)                                                            \
    {                                                                                              \
        dg_kind k = init;                                                                          \
        (void)s;                                                                                   \
        dg_signals(&k);                                                                            \
    }                                                                                              \
    static void tag##_small_buffer(void **s)                                                       \
    {                                                                                              \
        dg_kind k = init;                                                                          \
        (void)s;                                                                                   \
        dg_small_buffer(&k);                                                                       \
    }

#define DG_TESTS(tag)                                                                              \
    cmocka_unit_test(tag##_sizes), cmocka_unit_test(tag##_order),                                  \
        cmocka_unit_test(tag##_timeouts), cmocka_unit_test(tag##_small_buffer),                    \
        cmocka_unit_test(tag##_signals)

#endif
