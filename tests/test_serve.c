/*
 * test_serve.c - ipckit serve end to end: the built binary as a real master with real workers,
 * clients made with the library (ipk_dial/ipk_send/ipk_recv) or, for bytes that must not be
 * framed, written straight to the dialled socket. The server's log (--log) is how a test learns
 * the bound address, the worker pids and that a signal was taken; every wait is a poll for a
 * state with a generous deadline, never a measured duration.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIN     IPKT_BIN_DIR "/ipckit"
#define WAIT_MS 15000 /* for a state to appear; generous for ASan and valgrind */
#define MAX_ARG 24

typedef struct server {
    pid_t pid;
    char log[256];
    char addr[300];
    const char *argv[MAX_ARG];
} server;

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Waits until the log holds needle at least n times; fails the test otherwise. */
static void wait_log(server *s, const char *needle, int n)
{
    static char buf[1 << 16];
    for (int waited = 0;; waited += 20) {
        ipkt_slurp(s->log, buf, sizeof buf);
        if (count_of(buf, needle) >= n)
            return;
        if (waited >= WAIT_MS) {
            print_error("log %s has %d of %d '%s':\n%s\n", s->log, count_of(buf, needle), n, needle,
                        buf);
            fail();
        }
        ipkt_msleep(20);
    }
}

/* The pid of the latest "worker N pid P" line for worker n. */
static pid_t worker_pid(server *s, int n)
{
    static char buf[1 << 16];
    char needle[64];
    snprintf(needle, sizeof needle, "]: worker %d pid ", n);
    ipkt_slurp(s->log, buf, sizeof buf);
    pid_t pid = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++) {
        int v, used = 0;
        if (sscanf(p + strlen(needle), "%d%n", &v, &used) == 1 && p[strlen(needle) + used] == '\n')
            pid = v;
    }
    assert_true(pid > 0);
    return pid;
}

static int start_child(void *arg)
{
    server *s = arg;
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    execv(BIN, (char *const *)s->argv);
    return 127;
}

/* Starts "ipckit serve --log LOG OPTS... URL" (opts NULL-terminated) and waits for it to name
 * its address. */
static void serve_start(server *s, const char *url, const char *const *opts)
{
    int n = 0;
    s->argv[n++] = BIN;
    s->argv[n++] = "serve";
    s->argv[n++] = "--log";
    s->argv[n++] = ipkt_path(s->log, sizeof s->log, "serve.log");
    ipkt_journal("path", s->log);
    for (; opts && *opts && n < MAX_ARG - 2; opts++)
        s->argv[n++] = *opts;
    s->argv[n++] = url;
    s->argv[n] = NULL;
    s->pid = ipkt_spawn(start_child, s);
    assert_true(s->pid > 0);
    wait_log(s, "started, master pid", 1);
    char buf[4096];
    ipkt_slurp(s->log, buf, sizeof buf);
    const char *p = strstr(buf, "listening on ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "listening on %299s", s->addr), 1);
}

/* Sends QUIT and expects the master to exit 0. */
static void serve_quit(server *s)
{
    assert_int_equal(kill(s->pid, SIGQUIT), 0);
    assert_int_equal(ipkt_wait(s->pid), 0);
    wait_log(s, "exit 0", 1);
}

static ipk_chan *dial(const server *s)
{
    ipk_chan *c = NULL;
    ipkt_ok(ipk_dial(&c, s->addr, NULL));
    return c;
}

static void round_trip(ipk_chan *c, size_t n, uint32_t seed)
{
    static unsigned char out[1 << 17], in[1 << 17];
    assert_true(n <= sizeof out);
    ipkt_fill(out, n, seed);
    ipkt_ok(ipk_send(c, out, n, WAIT_MS));
    ipkt_expect(ipk_recv(c, in, sizeof in, WAIT_MS), (long)n);
    assert_true(ipkt_check(in, n, seed));
}

/* Waits until worker n has a pid other than old (a respawn or a reload). */
static pid_t wait_new_pid(server *s, int n, pid_t old)
{
    for (int waited = 0;; waited += 20) {
        pid_t pid = worker_pid(s, n);
        if (pid != old)
            return pid;
        assert_true(waited < WAIT_MS);
        ipkt_msleep(20);
    }
}

/* Reads exactly n bytes from fd (which may be nonblocking) within WAIT_MS. */
static void read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    for (int waited = 0; got < n;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        waited += 100;
        assert_true(waited < WAIT_MS);
        if (r <= 0)
            continue;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        assert_true(k > 0);
        got += (size_t)k;
    }
}

/* Expects the server to close the connection: end of file (or a reset) within WAIT_MS. */
static void wait_closed(int fd)
{
    char b[256];
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, b, sizeof b);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return;
        assert_true(k < 0 && (errno == EAGAIN || errno == EINTR)); /* no data was expected */
    }
    print_error("connection still open after %d ms\n", WAIT_MS);
    fail();
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static const char *unix_url(char *buf, size_t cap)
{
    char p[200];
    ipkt_path(p, sizeof p, "sock");
    ipkt_journal("path", p);
    snprintf(buf, cap, "unix:%s", p);
    return buf;
}

/* Dials until a new connection is served (a limit that needs a moment to free up). */
static void wait_served(const server *s)
{
    for (int waited = 0;; waited += 50) {
        ipk_chan *c = dial(s);
        unsigned char m[4] = "ping", r[4];
        long got = ipk_send(c, m, 4, WAIT_MS) == 0 ? ipk_recv(c, r, 4, 200) : -1;
        ipk_close(c);
        if (got == 4)
            return;
        assert_true(waited < WAIT_MS);
        ipkt_msleep(50);
    }
}

/* ---- echo ---- */

typedef struct client_arg {
    const server *s;
    int id;
} client_arg;

static int client_run(void *arg)
{
    client_arg *a = arg;
    ipk_chan *c = NULL;
    if (ipk_dial(&c, a->s->addr, NULL) != 0)
        return 1;
    static unsigned char out[70000], in[70000];
    for (int i = 0; i < 40; i++) {
        size_t n = (size_t)((i * 7919 + a->id * 131) % (int)sizeof out);
        uint32_t seed = (uint32_t)(a->id * 1000 + i);
        ipkt_fill(out, n, seed);
        if (ipk_send(c, out, n, WAIT_MS) != 0 || ipk_recv(c, in, sizeof in, WAIT_MS) != (long)n ||
            !ipkt_check(in, n, seed))
            return 1;
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

static void echo_concurrent(const char *url)
{
    server s = {0};
    const char *opts[] = {"--workers", "2", NULL};
    serve_start(&s, url, opts);
    wait_log(&s, "]: worker 2 pid", 1);
    enum { NCLIENT = 6 };
    client_arg a[NCLIENT];
    pid_t pid[NCLIENT];
    for (int i = 0; i < NCLIENT; i++) {
        a[i] = (client_arg){&s, i};
        pid[i] = ipkt_spawn(client_run, &a[i]);
    }
    for (int i = 0; i < NCLIENT; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    serve_quit(&s);
}

static void test_echo_tcp_concurrent(void **st)
{
    (void)st;
    echo_concurrent("tcp://127.0.0.1:0");
}

static void test_echo_unix_concurrent(void **st)
{
    (void)st;
    char url[300];
    echo_concurrent(unix_url(url, sizeof url));
}

static void test_raw_echo(void **st)
{
    (void)st;
    char url[300];
    const char *opts[] = {"--proto", "raw", "--workers", "1", NULL};
    const char *urls[] = {unix_url(url, sizeof url), "tcp://127.0.0.1:0"};
    for (int u = 0; u < 2; u++) {
        server s = {0};
        serve_start(&s, urls[u], opts);
        ipk_chan *c = dial(&s);
        int fd = ipk_fd(c);
        /* Bytes come back as they are, in pieces that need not match what was sent. */
        write_all(fd, "hello, ", 7);
        write_all(fd, "world", 5);
        char b[13] = {0};
        read_full(fd, b, 12);
        assert_string_equal(b, "hello, world");
        ipk_close(c);
        serve_quit(&s);
    }
}

static void test_raw_udp(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "2", NULL};
    serve_start(&s, "udp://127.0.0.1:0", opts);
    wait_log(&s, "datagrams", 1);
    ipk_chan *c = dial(&s);
    for (int i = 0; i < 5; i++)
        round_trip(c, 100 + (size_t)i, (uint32_t)i);
    ipk_close(c);
    serve_quit(&s);
}

/* ---- signals ---- */

static void test_quit_mid_frame(void **st)
{
    (void)st;
    server s = {0};
    char url[300];
    const char *opts[] = {"--workers", "1", NULL};
    serve_start(&s, unix_url(url, sizeof url), opts);
    ipk_chan *c = dial(&s), *idle = dial(&s);
    round_trip(idle, 10, 1); /* accepted and at a frame boundary */
    int fd = ipk_fd(c);
    unsigned char frame[4 + 10];
    put_be32(frame, 10);
    memcpy(frame + 4, "0123456789", 10);
    write_all(fd, frame, 8);
    wait_log(&s, "worker 1 pid", 1);
    assert_int_equal(kill(s.pid, SIGQUIT), 0);
    wait_log(&s, "worker 1: draining, 1 connection in flight", 1);
    wait_closed(ipk_fd(idle)); /* the idle one goes at once */
    write_all(fd, frame + 8, sizeof frame - 8);
    unsigned char back[sizeof frame];
    read_full(fd, back, sizeof back);
    assert_memory_equal(back, frame, sizeof frame);
    wait_closed(fd); /* then the in-flight one */
    assert_int_equal(ipkt_wait(s.pid), 0);
    wait_log(&s, "exit 0", 1);
    ipk_close(c);
    ipk_close(idle);
}

static void test_term_fast(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "2", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    ipk_chan *c = dial(&s);
    round_trip(c, 50, 2);
    unsigned char half[6] = {0, 0, 0, 100, 'a', 'b'};
    write_all(ipk_fd(c), half, sizeof half); /* a frame that will never be finished */
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    assert_int_equal(ipkt_wait(s.pid), 0);
    wait_log(&s, "signal TERM: fast shutdown", 1);
    wait_log(&s, "exit 0", 1);
    wait_closed(ipk_fd(c));
    ipk_close(c);
}

static void test_hup_reload(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "2", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    wait_log(&s, "]: worker 2 pid", 1);
    pid_t old1 = worker_pid(&s, 1), old2 = worker_pid(&s, 2);
    ipk_chan *before = dial(&s);
    round_trip(before, 1000, 3);
    assert_int_equal(kill(s.pid, SIGHUP), 0);
    /* Clients keep being served while the generations change. */
    for (int i = 0; i < 20; i++) {
        ipk_chan *c = dial(&s);
        round_trip(c, 100, (uint32_t)i);
        ipk_close(c);
    }
    pid_t new1 = wait_new_pid(&s, 1, old1), new2 = wait_new_pid(&s, 2, old2);
    wait_log(&s, "retired worker pid", 2);
    assert_true(new1 != old1 && new1 != old2 && new2 != old1 && new2 != old2);
    /* The old workers closed their idle connection when they retired. */
    wait_closed(ipk_fd(before));
    ipk_close(before);
    ipk_chan *after = dial(&s);
    round_trip(after, 60000, 4);
    ipk_close(after);
    serve_quit(&s);
}

static void test_respawn(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "1", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    wait_log(&s, "]: worker 1 pid", 1);
    pid_t old = worker_pid(&s, 1);
    assert_int_equal(kill(old, SIGKILL), 0);
    wait_log(&s, "killed by signal 9", 1);
    wait_log(&s, "respawn worker 1", 1);
    old = wait_new_pid(&s, 1, old);
    ipk_chan *c = dial(&s);
    round_trip(c, 500, 5);
    ipk_close(c);
    /* A worker that keeps dying young waits longer each time. */
    assert_int_equal(kill(old, SIGKILL), 0);
    wait_log(&s, "respawn worker 1 in 200 ms", 1);
    old = wait_new_pid(&s, 1, old);
    assert_int_equal(kill(old, SIGKILL), 0);
    wait_log(&s, "respawn worker 1 in 400 ms", 1);
    wait_new_pid(&s, 1, old);
    c = dial(&s);
    round_trip(c, 500, 6);
    ipk_close(c);
    serve_quit(&s);
}

static void test_usr1_pid_file(void **st)
{
    (void)st;
    server s = {0};
    char pidf[256], moved[300], buf[4096];
    ipkt_path(pidf, sizeof pidf, "serve.pid");
    ipkt_journal("path", pidf);
    const char *opts[] = {"--workers", "1", "--pid-file", pidf, NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    ipkt_slurp(pidf, buf, sizeof buf);
    assert_int_equal(atoi(buf), s.pid);
    /* Log rotation: the old file moved away, USR1, and the events go to a new one. */
    snprintf(moved, sizeof moved, "%s.1", s.log);
    ipkt_journal("path", moved);
    assert_int_equal(rename(s.log, moved), 0);
    assert_int_equal(kill(s.pid, SIGUSR1), 0);
    wait_log(&s, "signal USR1: log reopened", 1);
    serve_quit(&s);
    ipkt_slurp(moved, buf, sizeof buf);
    assert_non_null(strstr(buf, "started, master pid"));
    assert_null(strstr(buf, "exit 0"));
    assert_int_equal(access(pidf, F_OK), -1); /* removed at exit */
}

/* ---- limits ---- */

static void test_max_frame(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "1", "--max-frame", "1000", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    ipk_chan *ok = dial(&s), *big = dial(&s);
    round_trip(ok, 1000, 6); /* the limit itself passes */
    unsigned char hdr[4];
    put_be32(hdr, 0x7fffffffu); /* would be 2 GiB: the connection goes, nothing is allocated */
    write_all(ipk_fd(big), hdr, 4);
    wait_closed(ipk_fd(big));
    round_trip(ok, 10, 7);
    ipk_close(ok);
    ipk_close(big);
    serve_quit(&s);
}

static void test_idle_and_read_timeout(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "1", "--idle-timeout", "300", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    ipk_chan *c = dial(&s);
    round_trip(c, 10, 8);
    wait_closed(ipk_fd(c)); /* nothing more said: closed */
    ipk_close(c);
    serve_quit(&s);

    /* A trickler moves a byte often enough never to be idle, but its frame is too slow. */
    server t = {0};
    const char *opts2[] = {"--workers", "1", "--read-timeout", "400", NULL};
    serve_start(&t, "tcp://127.0.0.1:0", opts2);
    c = dial(&t);
    int fd = ipk_fd(c);
    unsigned char hdr[4];
    put_be32(hdr, 1000);
    write_all(fd, hdr, 4);
    int closed = 0;
    for (int i = 0; i < 1000 && !closed; i++) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
            closed = 1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0)
            closed = 1;
    }
    assert_true(closed);
    wait_closed(fd);
    ipk_close(c);
    serve_quit(&t);
}

static void test_max_conn(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "1", "--max-conn", "2", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    ipk_chan *a = dial(&s), *b = dial(&s);
    round_trip(a, 10, 9);
    round_trip(b, 10, 10);
    ipk_chan *extra = dial(&s); /* the kernel completes the handshake; the worker closes it */
    wait_closed(ipk_fd(extra));
    ipk_close(extra);
    round_trip(a, 10, 11);
    ipk_close(b);    /* a place frees up */
    wait_served(&s); /* once the worker has seen b go */
    ipk_close(a);
    serve_quit(&s);
}

static void test_fd_exhaustion(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "1", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    wait_log(&s, "]: worker 1 pid", 1);
    /* Set from outside (a checker may emulate setrlimit in the child before exec). */
    struct rlimit rl = {32, 32};
    assert_int_equal(prlimit(worker_pid(&s, 1), RLIMIT_NOFILE, &rl, NULL), 0);
    enum { N = 48 };
    ipk_chan *c[N];
    int served = 0;
    for (int i = 0; i < N; i++) {
        c[i] = dial(&s);
        unsigned char m[4] = "ping", r[4];
        if (ipk_send(c[i], m, 4, WAIT_MS) == 0 && ipk_recv(c[i], r, 4, WAIT_MS) == 4)
            served++;
    }
    /* Some were served, the rest closed at once rather than left hanging. */
    assert_true(served > 0 && served < N);
    for (int i = 0; i < N; i++)
        ipk_close(c[i]);
    /* Descriptors back: the worker serves again (it neither died nor wedged). */
    wait_served(&s);
    serve_quit(&s);
}

static void test_usage(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--proto", "nope", NULL};
    s.argv[0] = BIN;
    int n = 1;
    s.argv[n++] = "serve";
    for (const char *const *o = opts; *o; o++)
        s.argv[n++] = *o;
    s.argv[n++] = "tcp://127.0.0.1:0";
    s.argv[n] = NULL;
    pid_t pid = ipkt_spawn(start_child, &s);
    assert_int_equal(ipkt_wait(pid), 2);
    s.argv[2] = "signal:self"; /* not servable: no connections, datagrams or queue */
    s.argv[3] = NULL;
    pid = ipkt_spawn(start_child, &s);
    assert_int_equal(ipkt_wait(pid), 2);
}

IPKT_MAIN(cmocka_unit_test(test_echo_tcp_concurrent), cmocka_unit_test(test_echo_unix_concurrent),
          cmocka_unit_test(test_raw_echo), cmocka_unit_test(test_raw_udp),
          cmocka_unit_test(test_quit_mid_frame), cmocka_unit_test(test_term_fast),
          cmocka_unit_test(test_hup_reload), cmocka_unit_test(test_respawn),
          cmocka_unit_test(test_usr1_pid_file), cmocka_unit_test(test_max_frame),
          cmocka_unit_test(test_idle_and_read_timeout), cmocka_unit_test(test_max_conn),
          cmocka_unit_test(test_fd_exhaustion), cmocka_unit_test(test_usage))
