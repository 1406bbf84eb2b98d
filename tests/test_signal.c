/*
 * test_signal.c - the signal: transport: the queue family's conformance suite (suite_queue.h:
 * payload sizes, real-time signals in order from one sender and from several, timeouts, EINTR,
 * a buffer too small, options), then what only signals have: standard signals coalesce but
 * arrive at least once, RLIMIT_SIGPENDING, other users' signals are dropped, "is the peer
 * alive" checks, the mask restored, raw sigvals, and the sender's pid after fork().
 */
#include "harness.h"
#include "suite_queue.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* What a receiver child needs: its options, a pipe to say it listens, one to hear "done". */
typedef struct rx {
    const char *query;
    int ready[2], done[2];
    int nobody;
    pid_t sender;
} rx;

static int rx_open(rx *r, ipk_chan **c)
{
    char url[100];
    close(r->ready[0]);
    close(r->done[1]);
    if (r->nobody)
        IPKT_CHECK(ipkt_become_nobody() == 0);
    snprintf(url, sizeof url, "signal:self%s", r->query);
    IPKT_CHECK(ipk_listen(c, url, NULL) == 0);
    IPKT_CHECK(write(r->ready[1], "r", 1) == 1);
    return 0;
}

/* Starts receiver fn and returns once it listens. */
static pid_t rx_start(rx *r, int (*fn)(void *))
{
    assert_int_equal(pipe(r->ready), 0);
    assert_int_equal(pipe(r->done), 0);
    r->sender = getpid();
    pid_t p = ipkt_spawn(fn, r);
    close(r->ready[1]);
    close(r->done[0]);
    char b;
    assert_int_equal(read(r->ready[0], &b, 1), 1);
    close(r->ready[0]);
    return p;
}

static ipk_chan *dial_pid(pid_t pid, const char *query)
{
    char url[100];
    snprintf(url, sizeof url, "signal:%d%s", (int)pid, query);
    ipk_chan *c = NULL;
    ipkt_ok(ipk_dial(&c, url, NULL));
    return c;
}

static int rx_burst(void *arg)
{
    rx *r = arg;
    ipk_chan *c;
    char b;
    if (rx_open(r, &c) != 0)
        return 1;
    IPKT_CHECK(read(r->done[0], &b, 1) == 1); /* the sender is done: everything is pending */
    int got = 0;
    long n;
    char buf[8];
    while ((n = ipk_recv(c, buf, sizeof buf, 0)) >= 0)
        got++;
    IPKT_CHECK(n == -EAGAIN);
    fprintf(stderr, "50 SIGUSR1 sent, %d received\n", got);
    IPKT_CHECK(got >= 1 && got <= 50);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* Standard signals coalesce: while one is pending, more of the same are dropped. */
static void t_standard_coalesce(void **state)
{
    (void)state;
    rx r = {.query = "?sig=USR1"};
    pid_t p = rx_start(&r, rx_burst);
    ipk_chan *c = dial_pid(p, "?sig=SIGUSR1");
    for (int i = 0; i < 50; i++)
        ipkt_ok(ipk_send(c, "burst", 5, -1));
    assert_int_equal(write(r.done[1], "d", 1), 1);
    ipkt_ok(ipk_close(c));
    assert_int_equal(ipkt_wait(p), 0);
}

static int rx_small_limit(void *arg)
{
    rx *r = arg;
    struct rlimit rl = {10, 10};
    IPKT_CHECK(setrlimit(RLIMIT_SIGPENDING, &rl) == 0);
    ipk_chan *c;
    char b, buf[8];
    if (rx_open(r, &c) != 0)
        return 1;
    IPKT_CHECK(read(r->done[0], &b, 1) == 1);
    /* Every message the sender was told went out is here, in order. */
    for (int i = 0; i < b; i++)
        IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 0) == 1 && buf[0] == i);
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 0) == -EAGAIN);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* The receiving user's RLIMIT_SIGPENDING bounds the queue: the sender hears -EAGAIN with the
 * limit (timeout 0) or IPK_ETIMEDOUT (a timeout), and nothing sent before is lost. The receiver
 * runs as nobody: the kernel counts pending signals per user, and root's count moves with every
 * other root process that has signals queued (other tests running in parallel). */
static void t_full_queue(void **state)
{
    (void)state;
    rx r = {.query = "?allow_uid=0", .nobody = 1};
    pid_t p = rx_start(&r, rx_small_limit);
    ipk_chan *c = dial_pid(p, "");
    char i = 0;
    int rc;
    while ((rc = ipk_send(c, &i, 1, 0)) == 0 && i < 100)
        i++;
    ipkt_expect(rc, -EAGAIN);
    ipkt_errmsg_has("signal queue is full (RLIMIT_SIGPENDING 10 ");
    ipkt_expect(ipk_send(c, &i, 1, 20), IPK_ETIMEDOUT);
    ipkt_errmsg_has("RLIMIT_SIGPENDING");
    assert_int_equal(write(r.done[1], &i, 1), 1);
    ipkt_ok(ipk_close(c));
    assert_int_equal(ipkt_wait(p), 0);
}

static int tx_as_nobody(void *arg)
{
    IPKT_CHECK(ipkt_become_nobody() == 0);
    ipk_chan *c;
    char url[100];
    snprintf(url, sizeof url, "signal:%d", *(pid_t *)arg);
    IPKT_CHECK(ipk_dial(&c, url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "nobody", 6, -1) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

static int rx_filtered(void *arg)
{
    rx *r = arg;
    ipk_chan *c;
    if (rx_open(r, &c) != 0)
        return 1;
    char buf[8];
    ipk_msginfo mi;
    long n = ipk_recvx(c, buf, sizeof buf, &mi, 30000);
    IPKT_CHECK(n == 6 &&
               memcmp(buf, "nobody", 6) == 0); /* root's signal, sent first, was dropped */
    IPKT_CHECK(mi.uid == getuid() && mi.uid != 0);
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 0) == -EAGAIN);
    return ipk_close(c) == 0 ? 0 : 1;
}

static int rx_allowed(void *arg)
{
    rx *r = arg;
    ipk_chan *c;
    if (rx_open(r, &c) != 0)
        return 1;
    char buf[8];
    ipk_msginfo mi;
    IPKT_CHECK(ipk_recvx(c, buf, sizeof buf, &mi, 30000) == 4 && memcmp(buf, "root", 4) == 0);
    IPKT_CHECK(mi.uid == 0 && mi.pid == r->sender);
    return ipk_close(c) == 0 ? 0 : 1;
}

static void t_other_user(void **state)
{
    (void)state;
    rx r = {.query = "", .nobody = 1};
    pid_t p = rx_start(&r, rx_filtered);
    ipk_chan *c = dial_pid(p, "");
    ipkt_ok(ipk_send(c, "root", 4, -1)); /* root may signal anyone; the receiver drops it */
    ipkt_ok(ipk_close(c));
    assert_int_equal(ipkt_wait(ipkt_spawn(tx_as_nobody, &p)), 0);
    assert_int_equal(ipkt_wait(p), 0);
    /* ?allow_uid=0 lets root's signals in. */
    rx a = {.query = "?allow_uid=0", .nobody = 1};
    p = rx_start(&a, rx_allowed);
    c = dial_pid(p, "");
    ipkt_ok(ipk_send(c, "root", 4, -1));
    ipkt_ok(ipk_close(c));
    assert_int_equal(ipkt_wait(p), 0);
}

static int quit(void *arg)
{
    (void)arg;
    return 0;
}

static int idle(void *arg)
{
    (void)arg;
    pause();
    return 0;
}

static int dial_parent_as_nobody(void *arg)
{
    pid_t parent = *(pid_t *)arg;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    ipk_chan *c = NULL;
    char url[100];
    snprintf(url, sizeof url, "signal:%d", (int)parent);
    IPKT_CHECK(ipk_dial(&c, url, NULL) == -EPERM);
    IPKT_CHECK(strstr(ipk_errmsg(), "process owned by another user") != NULL);
    return 0;
}

static void t_peer_checks(void **state)
{
    (void)state;
    ipk_chan *c = NULL;
    char url[100];
    pid_t p = ipkt_spawn(quit, NULL);
    assert_int_equal(ipkt_wait(p), 0);
    snprintf(url, sizeof url, "signal:%d", (int)p);
    ipkt_expect(ipk_dial(&c, url, NULL), -ESRCH);
    ipkt_errmsg_has("no such process");
    pid_t me = getpid();
    assert_int_equal(ipkt_wait(ipkt_spawn(dial_parent_as_nobody, &me)), 0);
    /* A process that neither blocks nor catches the signal would die of it: refused. */
    p = ipkt_spawn(idle, NULL);
    snprintf(url, sizeof url, "signal:%d?sig=RTMIN+3", (int)p);
    ipkt_expect(ipk_dial(&c, url, NULL), -ECONNREFUSED);
    ipkt_errmsg_has("neither blocks nor catches SIGRTMIN+3");
    kill(p, SIGKILL);
    assert_int_equal(ipkt_wait(p), 128 + SIGKILL);
    ipkt_expect(ipk_dial(&c, "signal:self?sig=33", NULL), IPK_EOPTION);
    ipkt_errmsg_has("reserved by the C library");
    ipkt_expect(ipk_dial(&c, "signal:self?sig=KILL", NULL), IPK_EOPTION);
    ipkt_expect(ipk_dial(&c, "signal:self?allow_uid=bob", NULL), IPK_EOPTION);
    ipkt_errmsg_has("allow_uid=bob");
    ipkt_expect(ipk_dial(&c, "signal:self?prio=1", NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'prio'");
    ipkt_expect(ipk_listen(&c, "signal:1", NULL), IPK_ENOTSUP);
    ipkt_errmsg_has("listen on signal:self");
    assert_null(c);
}

static int blocked(int sig)
{
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig);
}

/* Within one process: the mask, which end may do what, raw words and foreign values. */
static void t_mask_roles_raw(void **state)
{
    (void)state;
    ipk_chan *l, *d;
    char buf[8];
    assert_false(blocked(SIGRTMIN + 1));
    ipkt_ok(ipk_listen(&l, "signal:self", NULL));
    assert_true(blocked(SIGRTMIN + 1));
    ipkt_ok(ipk_dial(&d, "signal:self", NULL));
    char want[40];
    snprintf(want, sizeof want, "signal:%d?sig=RTMIN+1", (int)getpid());
    assert_string_equal(ipk_addr(l), want);
    ipkt_expect(ipk_send(l, "x", 1, 0), IPK_ENOTSUP);
    ipkt_expect(ipk_recv(d, buf, sizeof buf, 0), IPK_ENOTSUP);
    ipkt_expect(ipk_fd(d), IPK_ENOTSUP);
    ipkt_ok(ipk_close(d));
    /* A plain sigqueue value is not an ipckit payload; ?raw=1 takes the whole word. */
    union sigval v = {.sival_ptr = (void *)(uintptr_t)0x1122334455667788ull};
    assert_int_equal(sigqueue(getpid(), SIGRTMIN + 1, v), 0);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 1000), IPK_EPROTO);
    ipkt_errmsg_has("not an ipckit payload");
    ipkt_ok(ipk_close(l));
    assert_false(blocked(SIGRTMIN + 1));
    ipkt_ok(ipk_listen(&l, "signal:self?raw=1&sig=RTMIN+2", NULL));
    ipkt_ok(ipk_dial(&d, "signal:self?raw=1&sig=RTMIN+2", NULL));
    assert_int_equal(sigqueue(getpid(), SIGRTMIN + 2, v), 0);
    ipkt_ok(ipk_send(d, "12345678", 8, 0));
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 1000), 8);
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--)
        w = w << 8 | (unsigned char)buf[i];
    assert_true(w == 0x1122334455667788ull);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 1000), 8);
    assert_memory_equal(buf, "12345678", 8);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

static void t_info(void **state)
{
    (void)state;
    ipkt_info_has("signal:self", (const char *const[]){"RLIMIT_SIGPENDING", "SIGRTMIN..SIGRTMAX",
                                                       "coalesce", NULL});
}

/* Each message carries its sender's pid as payload: msginfo must say the same. */
static int rx_pids(void *arg)
{
    rx *r = arg;
    ipk_chan *c;
    if (rx_open(r, &c) != 0)
        return 1;
    pid_t seen[2];
    for (int i = 0; i < 2; i++) {
        unsigned char buf[8];
        ipk_msginfo mi;
        IPKT_CHECK(ipk_recvx(c, buf, sizeof buf, &mi, 30000) == 4);
        pid_t said = (pid_t)(buf[0] | buf[1] << 8 | buf[2] << 16 | (unsigned)buf[3] << 24);
        IPKT_CHECK(mi.pid == said && mi.uid == getuid());
        seen[i] = said;
    }
    IPKT_CHECK(seen[0] == r->sender && seen[1] != seen[0]);
    return ipk_close(c) == 0 ? 0 : 1;
}

static int send_own_pid(ipk_chan *c)
{
    pid_t me = getpid();
    unsigned char m[4] = {(unsigned char)me, (unsigned char)(me >> 8), (unsigned char)(me >> 16),
                          (unsigned char)(me >> 24)};
    return ipk_send(c, m, sizeof m, -1);
}

static int tx_forked(void *arg)
{
    return send_own_pid(arg) == 0 ? 0 : 1;
}

/* The sender's pid is read once, not per message; a child of fork() that sends on its parent's
 * channel still says it is the child. */
static void t_sender_after_fork(void **state)
{
    (void)state;
    rx r = {.query = ""};
    pid_t p = rx_start(&r, rx_pids);
    ipk_chan *c = dial_pid(p, "");
    ipkt_ok(send_own_pid(c));
    assert_int_equal(ipkt_wait(ipkt_spawn(tx_forked, c)), 0);
    ipkt_ok(ipk_close(c));
    assert_int_equal(ipkt_wait(p), 0);
}

/* ---- the suite ---- */

static void sig_fresh(char *url, size_t cap)
{
    snprintf(url, cap, "signal:self"); /* nothing to remove */
}

static size_t sig_largest(void)
{
    return 7;
}

static int sig_info_ok(const ipk_msginfo *mi, pid_t sender)
{
    return mi->pid == sender && mi->uid == getuid() && mi->signo == SIGRTMIN + 1;
}

static qs_kind sig = {
    .scheme = "signal",
    .fresh = sig_fresh,
    .by_addr = 1,
    .consumers = QS_SINK,
    .typical = 7,
    .largest = sig_largest,
    .over_fmt = "message of %zu bytes; a signal carries at most %zu",
    .small_fmt = "message of %zu bytes does not fit the buffer of %zu; it is kept",
    .pending_held = 1,
    .empty_says = "no signal",
    .info_ok = sig_info_ok,
};

IPKT_MAIN(QS_MESSAGES("signal", &sig), cmocka_unit_test(t_standard_coalesce),
          cmocka_unit_test(t_full_queue), cmocka_unit_test(t_other_user),
          cmocka_unit_test(t_peer_checks), cmocka_unit_test(t_mask_roles_raw),
          cmocka_unit_test(t_sender_after_fork), cmocka_unit_test(t_info))
