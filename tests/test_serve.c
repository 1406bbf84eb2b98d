/*
 * test_serve.c - the server component and ipckit serve end to end: the built binary, or a
 * process running C handlers through ipckit/serve.h, as a real master with real workers,
 * clients made with the library (ipk_dial/ipk_send/ipk_recv) or, for bytes that must not be
 * framed, written straight to the dialled socket. The server's log (--log) is how a test learns
 * the bound address, the worker pids and that a signal was taken; every wait is a poll for a
 * state with a generous deadline, never a measured duration.
 */
#include "harness.h"
#include "ipckit/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
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
    /* A server of C handlers (api_child) instead of the binary: */
    int (*run)(void *arg);
    const ipk_serve_handlers *h;
    const char *url;
    const char *set[8][2]; /* settings, NULL-terminated */
    int ign;               /* start the binary with INT and QUIT ignored, as a shell's & does */
    int activate;          /* a listening socket to pass as fd 3 (LISTEN_FDS), or -1 */
    const char *extra;     /* api_child: a second address to serve */
    const char *exe;       /* the binary to run (default BIN) */
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

/* The pid of the latest "worker N pid P" line for worker n, waiting up to WAIT_MS for the first
 * (the master logs "started" before its workers have said who they are). */
static pid_t worker_pid(server *s, int n)
{
    static char buf[1 << 16];
    char needle[64];
    snprintf(needle, sizeof needle, "]: worker %d pid ", n);
    for (int waited = 0;; waited += 20) {
        ipkt_slurp(s->log, buf, sizeof buf);
        pid_t pid = 0;
        for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++) {
            int v, used = 0;
            if (sscanf(p + strlen(needle), "%d%n", &v, &used) == 1 &&
                p[strlen(needle) + used] == '\n')
                pid = v;
        }
        if (pid > 0)
            return pid;
        if (waited >= WAIT_MS) {
            print_error("log %s names no pid for worker %d:\n%s\n", s->log, n, buf);
            fail();
        }
        ipkt_msleep(20);
    }
}

static int start_child(void *arg)
{
    server *s = arg;
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    if (s->ign) {
        signal(SIGINT, SIG_IGN);
        signal(SIGQUIT, SIG_IGN);
    }
    if (s->activate > 0) { /* socket activation, as systemd passes it */
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        dup2(s->activate, 3);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_PID", pid, 1);
    }
    execv(s->argv[0], (char *const *)s->argv); /* BIN, or a copy of it */
    return 127;
}

/* Starts "ipckit serve --log LOG OPTS... URL" (opts NULL-terminated) and waits for it to name
 * its address. */
static void serve_start(server *s, const char *url, const char *const *opts)
{
    int n = 0;
    s->argv[n++] = s->exe ? s->exe : BIN;
    s->argv[n++] = "serve";
    s->argv[n++] = "--log";
    s->argv[n++] = ipkt_path(s->log, sizeof s->log, "serve.log");
    ipkt_journal("path", s->log);
    for (; opts && *opts && n < MAX_ARG - 2; opts++)
        s->argv[n++] = *opts;
    s->argv[n++] = url;
    s->argv[n] = NULL;
    s->url = url;
    s->pid = ipkt_spawn(s->run ? s->run : start_child, s);
    assert_true(s->pid > 0);
    wait_log(s, "started, master pid", 1);
    char buf[4096];
    ipkt_slurp(s->log, buf, sizeof buf);
    const char *p = strstr(buf, "listening on ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "listening on %299s", s->addr), 1);
}

/* Starts "ipckit serve -w 1" on a TCP port; returns its worker's pid. */
static pid_t serve_one_worker(server *s)
{
    const char *opts[] = {"--workers", "1", NULL};
    serve_start(s, "tcp://127.0.0.1:0", opts);
    wait_log(s, "]: worker 1 pid", 1);
    return worker_pid(s, 1);
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

/* Runs n client processes fn(client_arg) at once against s (n <= 16); each must exit 0. */
static void run_clients(const server *s, int n, int (*fn)(void *))
{
    client_arg a[16];
    pid_t pid[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        a[i] = (client_arg){s, i};
        pid[i] = ipkt_spawn(fn, &a[i]);
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
}

static void echo_concurrent(const char *url)
{
    server s = {0};
    const char *opts[] = {"--workers", "2", NULL};
    serve_start(&s, url, opts);
    wait_log(&s, "]: worker 2 pid", 1);
    run_clients(&s, 6, client_run);
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

/* A unixpacket client that sends many requests before it reads a reply: the worker queues
 * what the client's full receive queue refuses and reads on (up to its high-water mark), so
 * every reply arrives, in order, and the connection stays up. (The fuzzer's client was reset
 * after 278 of ~550 replies when the worker closed on the first refused packet.) */
static void test_packet_replies_queue(void **st)
{
    (void)st;
    char path[100], url[300];
    ipkt_path(path, sizeof path, "pk.sock");
    ipkt_journal("path", path);
    snprintf(url, sizeof url, "unixpacket:%s", path);
    const char *opts[] = {"--workers", "1", NULL};
    server s = {0};
    serve_start(&s, url, opts);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, sizeof path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    enum { N = 1500 };
    for (int i = 0; i < N; i++) {
        unsigned char b = (unsigned char)i;
        assert_int_equal(send(fd, &b, 1, MSG_NOSIGNAL), 1);
    }
    for (int i = 0; i < N; i++) {
        unsigned char b[4];
        assert_int_equal(recv(fd, b, sizeof b, 0), 1);
        assert_int_equal(b[0], (unsigned char)i);
    }
    assert_int_equal(send(fd, "x", 1, MSG_NOSIGNAL), 1);
    char b[4];
    assert_int_equal(recv(fd, b, sizeof b, 0), 1);
    assert_int_equal(b[0], 'x');
    close(fd);
    serve_quit(&s);
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
    pid_t old = serve_one_worker(&s);
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

/* A shell starts a background job with INT and QUIT ignored; QUIT must still be heard (the
 * master keeps them blocked, so they queue for its signalfd instead of being discarded). */
static void test_quit_when_ignored(void **st)
{
    (void)st;
    server s = {.ign = 1};
    const char *opts[] = {"--workers", "1", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    wait_log(&s, "]: worker 1 pid", 1);
    serve_quit(&s);
    wait_log(&s, "signal QUIT: graceful shutdown", 1);
}

/* With no URL, the sockets passed through LISTEN_FDS are served (systemd-socket-activate). */
static void test_socket_activation(void **st)
{
    (void)st;
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://127.0.0.1:0", NULL));
    int fd = dup(ipk_fd(l)); /* without close-on-exec: it goes to the server */
    assert_true(fd > 3);
    server s = {.activate = fd};
    int n = 0;
    s.argv[n++] = BIN;
    s.argv[n++] = "serve";
    s.argv[n++] = "--workers";
    s.argv[n++] = "2";
    s.argv[n++] = "--log";
    s.argv[n++] = ipkt_path(s.log, sizeof s.log, "serve.log");
    s.argv[n] = NULL;
    ipkt_journal("path", s.log);
    s.pid = ipkt_spawn(start_child, &s);
    close(fd);
    wait_log(&s, "listening on fd:3", 1);
    int on = 0; /* set by the server on the shared socket, for its accepted connections */
    socklen_t ol = sizeof on;
    assert_int_equal(getsockopt(ipk_fd(l), IPPROTO_TCP, TCP_NODELAY, &on, &ol), 0);
    assert_int_equal(on, 1);
    snprintf(s.addr, sizeof s.addr, "%s", ipk_addr(l));
    ipk_close(l); /* the server's copy keeps listening */
    for (int i = 0; i < 5; i++) {
        ipk_chan *c = dial(&s);
        round_trip(c, 100, (uint32_t)i);
        ipk_close(c);
    }
    serve_quit(&s);
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

/* ---- C handlers through ipckit/serve.h ---- */

static char jobs_path[256]; /* the job log of the queue handler */

/* Upper-cases the request; "who" is answered with the worker's pid; "slow..." takes 300 ms
 * (logged as it starts, so a test knows it is in flight). */
static int h_upper(ipk_conn *c, const void *msg, size_t len, void *arg)
{
    (void)arg;
    char out[1 << 16];
    if (len == 3 && memcmp(msg, "who", 3) == 0) {
        int n = snprintf(out, sizeof out, "%d", (int)getpid());
        return ipk_conn_send(c, out, (size_t)n);
    }
    if (len >= 4 && memcmp(msg, "slow", 4) == 0) {
        ipk_serve_log("handling %.*s", (int)len, (const char *)msg);
        ipkt_msleep(300);
    }
    if (len > sizeof out)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = ((const char *)msg)[i];
        out[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
    }
    return ipk_conn_send(c, out, len);
}

/* A job: "<pid> <job>\n" appended to the job log in one write; the job "pause" is recorded,
 * then the worker waits to be killed (it is between jobs: the job is done, the next not taken). */
static int h_job(ipk_conn *c, const void *msg, size_t len, void *arg)
{
    (void)arg;
    char line[128];
    int n = snprintf(line, sizeof line, "%d %.*s\n", (int)getpid(), (int)len, (const char *)msg);
    int fd = open(jobs_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        return -1;
    close(fd);
    if (len == 5 && memcmp(msg, "pause", 5) == 0)
        for (;;)
            pause();
    return ipk_conn_send(c, msg, len) == IPK_ENOTSUP ? 0 : -1; /* a queue cannot reply */
}

static int opened, closed_;
static int h_open(ipk_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    opened++;
    return 0;
}
static void h_close(ipk_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    closed_++;
    ipk_serve_log("closed after %d open", opened);
}

static int api_child(void *arg)
{
    server *s = arg;
    ipk_server *srv;
    if (ipk_server_new(&srv) != 0 || ipk_server_set(srv, "log", s->log) != 0)
        return 1;
    for (int i = 0; i < 8 && s->set[i][0]; i++)
        if (ipk_server_set(srv, s->set[i][0], s->set[i][1]) != 0)
            return 2;
    if (ipk_server_listen(srv, s->url, NULL) != 0 ||
        (s->extra && ipk_server_listen(srv, s->extra, NULL) != 0)) {
        fprintf(stderr, "listen: %s\n", ipk_server_errmsg(srv));
        return 3;
    }
    ipk_server_handlers(srv, s->h, NULL);
    int r = ipk_server_run(srv);
    ipk_server_free(srv);
    return r == 0 ? 0 : 4;
}

static void api_start(server *s, const char *url, const ipk_serve_handlers *h, const char *workers)
{
    s->run = api_child;
    s->h = h;
    s->set[0][0] = "workers";
    s->set[0][1] = workers;
    serve_start(s, url, NULL);
}

static const ipk_serve_handlers upper_handlers = {
    .on_msg = h_upper, .on_open = h_open, .on_close = h_close};

typedef struct load_arg {
    const server *s;
    int id, rounds;
} load_arg;

/* A client process: rounds of lower-case requests of varied sizes, each answered upper-cased. */
static int load_client(void *arg)
{
    load_arg *a = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, a->s->addr, NULL) == 0);
    static char out[5000], want[5000], in[5000];
    for (int i = 0; i < a->rounds; i++) {
        size_t n = 1 + (size_t)((i * 131 + a->id * 17) % (int)sizeof out);
        for (size_t k = 0; k < n; k++) {
            out[k] = (char)('a' + (k + (size_t)i) % 26);
            want[k] = (char)(out[k] - 'a' + 'A');
        }
        IPKT_CHECK(ipk_send(c, out, n, WAIT_MS) == 0);
        IPKT_CHECK(ipk_recv(c, in, sizeof in, WAIT_MS) == (long)n);
        IPKT_CHECK(memcmp(in, want, n) == 0);
    }
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

static void test_api_upper_load(void **st)
{
    (void)st;
    server s = {0};
    api_start(&s, "tcp://127.0.0.1:0", &upper_handlers, "2");
    enum { N = 6 };
    load_arg a[N];
    pid_t pid[N];
    for (int i = 0; i < N; i++) {
        a[i] = (load_arg){&s, i, 200};
        pid[i] = ipkt_spawn(load_client, &a[i]);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    /* Every connection was opened and closed through the handlers (6, over the workers). */
    wait_log(&s, "closed after", N);
    serve_quit(&s);
}

static int keepalive_client(void *arg);

/* The pid of the worker serving c. */
static pid_t who(ipk_chan *c)
{
    char b[32] = {0};
    ipkt_ok(ipk_send(c, "who", 3, WAIT_MS));
    long n = ipk_recv(c, b, sizeof b - 1, WAIT_MS);
    assert_true(n > 0);
    return (pid_t)atoi(b);
}

/* Upper-cases "abc" on c; 0, or the failing code. */
static long try_upper(ipk_chan *c)
{
    char b[8];
    long r = ipk_send(c, "abc", 3, WAIT_MS);
    if (r == 0)
        r = ipk_recv(c, b, sizeof b, WAIT_MS);
    return r == 3 && memcmp(b, "ABC", 3) == 0 ? 0 : r < 0 ? r : -1;
}

static void test_kill9_worker_under_load(void **st)
{
    (void)st;
    server s = {0};
    api_start(&s, "tcp://127.0.0.1:0", &upper_handlers, "2");
    wait_log(&s, "]: worker 2 pid", 1);
    /* Connections until both workers hold some (EPOLLEXCLUSIVE may favour one for a while). */
    enum { MAXC = 64 };
    ipk_chan *c[MAXC];
    pid_t on[MAXC];
    int n = 0, on_victim = 0;
    pid_t victim = worker_pid(&s, 1);
    for (; n < MAXC && (on_victim == 0 || on_victim == n || n < 8); n++) {
        c[n] = dial(&s);
        on[n] = who(c[n]);
        on_victim += on[n] == victim;
    }
    assert_true(on_victim > 0 && on_victim < n);
    /* Load from other processes throughout (they may lose their connection: not checked). */
    load_arg la[2] = {{&s, 1, 300}, {&s, 2, 300}};
    pid_t lp[2] = {ipkt_spawn(keepalive_client, &la[0]), ipkt_spawn(keepalive_client, &la[1])};
    assert_int_equal(kill(victim, SIGKILL), 0);
    wait_log(&s, "killed by signal 9", 1);
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < n; i++)
            if (on[i] != victim)
                ipkt_ok(try_upper(c[i])); /* the other worker's clients never notice */
    for (int i = 0; i < n; i++)
        if (on[i] == victim) {
            long r = try_upper(c[i]);
            assert_true(r < 0 && r != IPK_ETIMEDOUT); /* reset or closed, not silence */
        }
    pid_t fresh = wait_new_pid(&s, 1, victim);
    assert_true(fresh != victim);
    for (int i = 0; i < 2; i++) /* a client of the killed worker reconnected and went on */
        assert_int_equal(ipkt_wait(lp[i]), 0);
    for (int i = 0; i < n; i++)
        ipk_close(c[i]);
    /* The new worker serves. */
    for (int i = 0; i < 20; i++) {
        ipk_chan *k = dial(&s);
        ipkt_ok(try_upper(k));
        ipk_close(k);
    }
    serve_quit(&s);
}

typedef struct slow_arg {
    const server *s;
    int id;
} slow_arg;

/* One slow request, whose answer must arrive even though QUIT comes while it is in flight. */
static int slow_client(void *arg)
{
    slow_arg *a = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, a->s->addr, NULL) == 0);
    char req[32], in[32];
    int n = snprintf(req, sizeof req, "slow-%d", a->id);
    IPKT_CHECK(ipk_send(c, req, (size_t)n, WAIT_MS) == 0);
    IPKT_CHECK(ipk_recv(c, in, sizeof in, WAIT_MS) == n);
    IPKT_CHECK(memcmp(in, "SLOW-", 5) == 0);
    ipk_close(c);
    return 0;
}

static void test_quit_under_load(void **st)
{
    (void)st;
    server s = {0};
    api_start(&s, "tcp://127.0.0.1:0", &upper_handlers, "2");
    wait_log(&s, "]: worker 2 pid", 1);
    enum { N = 6 };
    slow_arg a[N];
    pid_t pid[N];
    for (int i = 0; i < N; i++) {
        a[i] = (slow_arg){&s, i};
        pid[i] = ipkt_spawn(slow_client, &a[i]);
    }
    wait_log(&s, "handling slow-", 1); /* requests are in flight (the rest queue behind) */
    assert_int_equal(kill(s.pid, SIGQUIT), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0); /* every one answered */
    assert_int_equal(ipkt_wait(s.pid), 0);
    wait_log(&s, "handling slow-", N);
    wait_log(&s, "exit 0", 1);
}

/* A persistent connection through reloads: a retiring worker closes it between requests
 * (test_hup_reload), and a request sent as that happens meets the close before any byte of an
 * answer; then the client reconnects and asks again. A refused connection, a timeout, or a
 * wrong or partial answer fails. */
static int keepalive_client(void *arg)
{
    load_arg *a = arg;
    ipk_chan *c = NULL;
    for (int i = 0, redials = 0; i < a->rounds; i++) {
        if (c == NULL)
            IPKT_CHECK(ipk_dial(&c, a->s->addr, NULL) == 0);
        long r = try_upper(c);
        if (r == IPK_EOF || r == -ECONNRESET || r == -EPIPE) {
            ipk_close(c);
            c = NULL;
            IPKT_CHECK(++redials < a->rounds);
            i--;
            continue;
        }
        IPKT_CHECK(r == 0);
    }
    ipk_close(c);
    return 0;
}

/* Connects, asks, checks, closes, over and over: any refusal or lost answer fails. */
static int hup_client(void *arg)
{
    load_arg *a = arg;
    for (int i = 0; i < a->rounds; i++) {
        ipk_chan *c = NULL;
        IPKT_CHECK(ipk_dial(&c, a->s->addr, NULL) == 0);
        IPKT_CHECK(try_upper(c) == 0);
        ipk_close(c);
    }
    return 0;
}

static void test_hup_under_load(void **st)
{
    (void)st;
    server s = {0};
    api_start(&s, "tcp://127.0.0.1:0", &upper_handlers, "2");
    wait_log(&s, "]: worker 2 pid", 1);
    enum { N = 4 };
    load_arg a[N];
    pid_t pid[N];
    for (int i = 0; i < N; i++) {
        a[i] = (load_arg){&s, i, 300};
        pid[i] = ipkt_spawn(i % 2 ? hup_client : keepalive_client, &a[i]);
    }
    for (int k = 1; k <= 3; k++) {
        assert_int_equal(kill(s.pid, SIGHUP), 0);
        wait_log(&s, "retired worker pid", 2 * k);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    serve_quit(&s);
}

/* How many lines of the job log end with " <job>". */
static int job_count(const char *log, const char *job)
{
    char needle[64];
    int k = snprintf(needle, sizeof needle, " %s\n", job);
    assert_true(k > 0 && (size_t)k < sizeof needle); /* a job is at most 31 bytes */
    return count_of(log, needle);
}

/* Waits until every job of jobs[0, n) is in the job log exactly once. */
static void wait_jobs_once(char jobs[][32], int n)
{
    static char buf[1 << 16];
    for (int waited = 0;; waited += 50) {
        ipkt_slurp(jobs_path, buf, sizeof buf);
        int done = 0;
        for (int i = 0; i < n; i++)
            done += job_count(buf, jobs[i]) == 1;
        if (done == n)
            return;
        if (waited >= WAIT_MS) {
            print_error("%d of %d jobs done once; the job log:\n%s\n", done, n, buf);
            fail();
        }
        ipkt_msleep(50);
    }
}

/*
 * A worker pool draining the queue url: 200 jobs from one producer, and the worker that takes
 * job 50 ("pause") is killed between jobs; every job must be done exactly once, none lost with
 * the killed worker, none done twice. Then the producer closes and another comes (a ring says
 * end of stream in between): its jobs are done too, by workers that did not exit meanwhile.
 */
static void pool_kill_between_jobs(const char *url, const char *workers)
{
    server s = {0};
    ipkt_path(jobs_path, sizeof jobs_path, "jobs");
    ipkt_journal("path", jobs_path);
    static const ipk_serve_handlers h = {.on_msg = h_job};
    api_start(&s, url, &h, workers);
    char last[32];
    snprintf(last, sizeof last, "]: worker %s pid", workers);
    wait_log(&s, last, 1);
    ipk_chan *p = NULL;
    ipkt_ok(ipk_dial(&p, url, NULL));
    enum { N = 200, M = 20 };
    static char job[N + M][32];
    static char buf[1 << 16];
    for (int i = 0; i < N; i++) {
        int n = i == 50 ? snprintf(job[i], sizeof job[i], "pause")
                        : snprintf(job[i], sizeof job[i], "j%d", i);
        ipkt_ok(ipk_send(p, job[i], (size_t)n, WAIT_MS));
        if (i != 50)
            continue;
        /* The worker that took "pause" has recorded it and waits: kill it between jobs. */
        for (int waited = 0; (ipkt_slurp(jobs_path, buf, sizeof buf), !strstr(buf, " pause\n"));
             waited += 20) {
            assert_true(waited < WAIT_MS);
            ipkt_msleep(20);
        }
        char *line = strstr(buf, " pause\n");
        while (line > buf && line[-1] != '\n')
            line--;
        pid_t victim = (pid_t)atoi(line);
        assert_true(victim > 0);
        assert_int_equal(kill(victim, SIGKILL), 0);
    }
    ipkt_ok(ipk_close(p));
    wait_jobs_once(job, N);
    wait_log(&s, "killed by signal 9", 1);
    /* A new producer after the last one closed. */
    ipkt_ok(ipk_dial(&p, url, NULL));
    for (int i = N; i < N + M; i++) {
        int n = snprintf(job[i], sizeof job[i], "k%d", i);
        ipkt_ok(ipk_send(p, job[i], (size_t)n, WAIT_MS));
    }
    ipkt_ok(ipk_close(p));
    wait_jobs_once(job, N + M);
    ipkt_slurp(s.log, buf, sizeof buf);
    assert_int_equal(count_of(buf, "exited with status"), 0); /* the killed one only went */
    assert_int_equal(count_of(buf, "respawn worker"), 1);
    serve_quit(&s);
}

static void test_mq_pool_kill_between_jobs(void **st)
{
    (void)st;
    char q[64], url[80];
    ipkt_name(q, sizeof q, "/");
    ipkt_journal("mq", q);
    snprintf(url, sizeof url, "mq:%s", q);
    pool_kill_between_jobs(url, "2");
}

static void test_sysv_pool_kill_between_jobs(void **st)
{
    (void)st;
    char key[256], url[300];
    ipkt_path(key, sizeof key, "sysv.key");
    ipkt_journal("path", key);
    int fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(url, sizeof url, "sysv:%s?proj=3", key);
    pool_kill_between_jobs(url, "2");
}

/* Several consumers on one ring (multi=1), each waiting in its poller. */
static void test_shm_pool_kill_between_jobs(void **st)
{
    (void)st;
    char q[64], url[80];
    ipkt_name(q, sizeof q, "/");
    ipkt_journal("shm", q);
    snprintf(url, sizeof url, "shm:%s?multi=1", q);
    pool_kill_between_jobs(url, "3");
}

/* How many times the process was woken (voluntary context switches), from /proc. */
static long wakeups(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    ipkt_slurp(path, buf, sizeof buf);
    const char *p = strstr(buf, "voluntary_ctxt_switches:");
    assert_non_null(p);
    return atol(p + strlen("voluntary_ctxt_switches:"));
}

/*
 * A worker serving a TCP listener beside a ring sleeps in its poller: idle, it wakes for its
 * sweep (every 250 ms by default), a few times a second, where trying the ring on a 5 ms tick
 * woke it some 200 times. Counted in wake-ups, which a slow machine makes fewer, not more.
 * Then the ring's jobs are done, and a connection answered.
 */
static void test_pool_beside_sockets_sleeps(void **st)
{
    (void)st;
    char q[64], url[80];
    ipkt_name(q, sizeof q, "/");
    ipkt_journal("shm", q);
    snprintf(url, sizeof url, "shm:%s?multi=1", q);
    ipkt_path(jobs_path, sizeof jobs_path, "jobs");
    ipkt_journal("path", jobs_path);
    server s = {0};
    s.run = api_child;
    static const ipk_serve_handlers h = {.on_msg = h_job};
    s.h = &h;
    s.set[0][0] = "workers";
    s.set[0][1] = "1";
    s.extra = url; /* the ring, beside the listener */
    serve_start(&s, "tcp://127.0.0.1:0", NULL);
    pid_t w = worker_pid(&s, 1);
    ipkt_msleep(200); /* settled */
    long before = wakeups(w);
    ipkt_msleep(2000);
    long woke = wakeups(w) - before;
    if (woke >= 100)
        print_error("an idle worker woke %ld times in 2 s\n", woke);
    assert_true(woke < 100);
    /* It serves both. */
    ipk_chan *p = NULL;
    ipkt_ok(ipk_dial(&p, url, NULL));
    static char job[10][32];
    for (int i = 0; i < 10; i++) {
        int n = snprintf(job[i], sizeof job[i], "r%d", i);
        ipkt_ok(ipk_send(p, job[i], (size_t)n, WAIT_MS));
    }
    wait_jobs_once(job, 10);
    ipkt_ok(ipk_close(p));
    ipk_chan *c = dial(&s);
    char b[8];
    ipkt_ok(ipk_send(c, "abc", 3, WAIT_MS));
    ipkt_expect(ipk_recv(c, b, sizeof b, WAIT_MS), 3); /* h_job replies, then closes */
    ipkt_expect(ipk_recv(c, b, sizeof b, WAIT_MS), IPK_EOF);
    ipk_close(c);
    serve_quit(&s);
}

/* ---- peer allow-lists ---- */

typedef struct peer_arg {
    const server *s;
    int nobody;  /* connect as the user nobody */
    int allowed; /* expect an answer (else the connection closed before any) */
} peer_arg;

static int peer_client(void *arg)
{
    peer_arg *a = arg;
    if (a->nobody)
        IPKT_CHECK(ipkt_become_nobody() == 0);
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, a->s->addr, NULL) == 0);
    char b[8];
    long r = ipk_send(c, "abc", 3, WAIT_MS);
    if (r == 0)
        r = ipk_recv(c, b, sizeof b, WAIT_MS);
    if (a->allowed)
        IPKT_CHECK(r == 3 && memcmp(b, "abc", 3) == 0);
    else
        IPKT_CHECK(r == IPK_EOF || r == -ECONNRESET || r == -EPIPE);
    ipk_close(c);
    return 0;
}

/* allow_uid= and allow_gid= on a unix listener: a peer on neither list is closed at accept and
 * counted; one on either is served. As root the refused peer is a child that became nobody;
 * otherwise the lists leave this user out. */
static void test_allow_uid_gid(void **st)
{
    (void)st;
    int root = geteuid() == 0;
    char sock[256], url[512];
    ipkt_path(sock, sizeof sock, "allow.sock");
    ipkt_journal("path", sock);
    if (root)
        snprintf(url, sizeof url, "unix:%s?perm=0666&allow_uid=root,1", sock);
    else
        snprintf(url, sizeof url, "unix:%s?allow_uid=%u", sock, (unsigned)getuid() + 1);
    server s = {0};
    const char *opts[] = {"--workers", "1", NULL};
    serve_start(&s, url, opts);
    peer_arg a = {&s, root, 0};
    assert_int_equal(ipkt_wait(ipkt_spawn(peer_client, &a)), 0);
    wait_log(&s, "not allowed: closed", 1);
    if (root) { /* root is on the list */
        peer_arg b = {&s, 0, 1};
        assert_int_equal(ipkt_wait(ipkt_spawn(peer_client, &b)), 0);
    }
    serve_quit(&s);
    wait_log(&s, "1 peers refused", 1);
    /* By group: nobody's group lets nobody in (as root), or this user's group (otherwise). */
    server g = {0};
    if (root)
        snprintf(url, sizeof url, "unix:%s?perm=0666&allow_uid=0&allow_gid=nogroup", sock);
    else
        snprintf(url, sizeof url, "unix:%s?allow_uid=%u&allow_gid=%u", sock, (unsigned)getuid() + 1,
                 (unsigned)getgid());
    serve_start(&g, url, opts);
    peer_arg c = {&g, root, 1};
    assert_int_equal(ipkt_wait(ipkt_spawn(peer_client, &c)), 0);
    serve_quit(&g);
    wait_log(&g, "0 peers refused", 1);
    /* Not for other schemes; an unknown user is an error before anything is made. */
    server bad = {0};
    bad.argv[0] = BIN;
    bad.argv[1] = "serve";
    bad.argv[2] = "tcp://127.0.0.1:0?allow_uid=0";
    bad.argv[3] = NULL;
    assert_int_equal(ipkt_wait(ipkt_spawn(start_child, &bad)), 2);
    snprintf(url, sizeof url, "unix:%s?allow_uid=no-such-user-here", sock);
    bad.argv[2] = url;
    assert_int_equal(ipkt_wait(ipkt_spawn(start_child, &bad)), 2);
    struct stat sb;
    assert_int_equal(stat(sock, &sb), -1);
}

/* ---- --exec ---- */

static ipk_chan *dial_lines(const server *s)
{
    char url[320];
    snprintf(url, sizeof url, "%s?framing=line", s->addr);
    ipk_chan *c = NULL;
    ipkt_ok(ipk_dial(&c, url, NULL));
    return c;
}

static void line_round_trip(ipk_chan *c, const char *req, const char *want)
{
    char b[256];
    ipkt_ok(ipk_send(c, req, strlen(req), WAIT_MS));
    long n = ipk_recv(c, b, sizeof b, WAIT_MS);
    ipkt_expect(n, (long)strlen(want));
    assert_memory_equal(b, want, strlen(want));
}

static void test_exec_line_handlers(void **st)
{
    (void)st;
    /* A shell handler, and the Python example (examples/upper.py). */
    const char *cmds[] = {"while IFS= read -r l; do printf '%s!\\n' \"$l\"; done",
                          "python3 " IPKT_SRC_DIR "/examples/upper.py"};
    const char *want[2][2] = {{"hello!", "two words!"}, {"HELLO", "TWO WORDS"}};
    for (int k = 0; k < 2; k++) {
        server s = {0};
        const char *opts[] = {"--workers", "2", "--exec", cmds[k], NULL};
        serve_start(&s, "tcp://127.0.0.1:0?framing=line", opts);
        wait_log(&s, "handler pid", 2);
        for (int i = 0; i < 10; i++) {
            ipk_chan *c = dial_lines(&s);
            line_round_trip(c, "hello", want[k][0]);
            line_round_trip(c, "two words", want[k][1]);
            ipk_close(c);
        }
        serve_quit(&s);
    }
}

static void test_exec_crash_and_hang(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers",
                          "1",
                          "--exec-timeout",
                          "500",
                          "--exec",
                          "while IFS= read -r l; do [ \"$l\" = crash ] && exit 3; "
                          "[ \"$l\" = hang ] && sleep 60; printf '%s!\\n' \"$l\"; done",
                          NULL};
    serve_start(&s, "tcp://127.0.0.1:0?framing=line", opts);
    ipk_chan *c = dial_lines(&s);
    line_round_trip(c, "a", "a!");
    /* The handler dies: this client's connection is closed (an error, not silence)... */
    ipkt_ok(ipk_send(c, "crash", 5, WAIT_MS));
    char b[64];
    ipkt_expect(ipk_recv(c, b, sizeof b, WAIT_MS), IPK_EOF);
    ipk_close(c);
    wait_log(&s, "exited (status", 1);
    /* ...and the next request gets a new handler. */
    c = dial_lines(&s);
    line_round_trip(c, "b", "b!");
    /* A handler that hangs past --exec-timeout: the same. */
    ipkt_ok(ipk_send(c, "hang", 4, WAIT_MS));
    ipkt_expect(ipk_recv(c, b, sizeof b, WAIT_MS), IPK_EOF);
    ipk_close(c);
    wait_log(&s, "did not answer in time", 1);
    c = dial_lines(&s);
    line_round_trip(c, "c", "c!");
    ipk_close(c);
    serve_quit(&s);
}

/* ---- binary upgrade (USR2) ---- */

/* The address of the n-th "listening on" line (0-based) of the log. */
static void log_addr(server *s, int n, char *out, size_t cap)
{
    static char buf[1 << 16];
    ipkt_slurp(s->log, buf, sizeof buf);
    const char *p = buf;
    for (int i = 0; i <= n; i++, p++) {
        p = strstr(p, "listening on ");
        assert_non_null(p);
    }
    char fmt[32];
    snprintf(fmt, sizeof fmt, "listening on %%%zus", cap - 1);
    assert_int_equal(sscanf(p - 1, fmt, out), 1);
}

/* The pid in a pid file (0 while it is being written or absent). */
static pid_t pid_in(const char *path)
{
    char b[64] = "";
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    return n > 0 ? (pid_t)atoi(b) : 0;
}

/* Copies the ipckit binary to path (mode 0755), by way of a temporary name and a rename, as a
 * package manager installs a new version over a running one. */
static void install_bin(const char *src, const char *path)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int in = open(src, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    assert_true(in >= 0 && out >= 0);
    static char b[1 << 16];
    for (ssize_t n; (n = read(in, b, sizeof b)) > 0;)
        assert_int_equal(write(out, b, (size_t)n), n);
    close(in);
    assert_int_equal(close(out), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* Installs a shell script at path (by rename), in place of the binary. */
static void install_script(const char *path, const char *text)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(tmp, 0755), 0);
    assert_int_equal(rename(tmp, path), 0);
}

typedef struct upgrade_arg {
    const char *addr[2]; /* tcp and unix */
    int id;
    _Atomic long *served; /* shared: connections answered, per client */
    _Atomic int *stop;
} upgrade_arg;

/* A stream of connections, alternately over tcp and unix, one echoed request of a varied size
 * on each: a refused connection, a lost, short or wrong answer, or a timeout fails. */
static int upgrade_client(void *arg)
{
    upgrade_arg *a = arg;
    static unsigned char out[20000], in[20000];
    for (int i = 0; !*a->stop; i++) {
        ipk_chan *c = NULL;
        const char *addr = a->addr[(i + a->id) % 2];
        int r = ipk_dial(&c, addr, NULL);
        if (r != 0) {
            fprintf(stderr, "client %d: connection %d to %s: %s\n", a->id, i, addr,
                    ipk_strerror(r));
            return 1;
        }
        size_t n = 1 + (size_t)((i * 977 + a->id * 31) % (int)sizeof out);
        uint32_t seed = (uint32_t)(a->id * 100000 + i);
        ipkt_fill(out, n, seed);
        long got = ipk_send(c, out, n, WAIT_MS);
        if (got == 0)
            got = ipk_recv(c, in, sizeof in, WAIT_MS);
        if (got != (long)n || !ipkt_check(in, n, seed)) {
            fprintf(stderr, "client %d: request %d on %s: %s\n", a->id, i, addr,
                    got < 0 ? ipk_strerror((int)got) : "wrong answer");
            return 1;
        }
        ipk_close(c);
        a->served[a->id]++;
    }
    return 0;
}

/* Waits until every client answered more than since[i] connections (and records the counts). */
static void wait_served_more(_Atomic long *served, long *since, int n)
{
    for (int i = 0; i < n; i++) {
        for (int waited = 0; served[i] <= since[i] + 20; waited += 20) {
            assert_true(waited < WAIT_MS);
            ipkt_msleep(20);
        }
        since[i] = served[i];
    }
}

/* Starts "ipckit serve" from a copy of the binary (so that /proc/self/exe names the copy) over a
 * unix and a tcp address, with a pid file; addr[0] is the unix one, addr[1] the tcp one. */
static char up_status[300]; /* the status address of the upgraded server */

/* Whether the status address answers with the snapshot of the master pid. */
static int status_of(const char *status_url, pid_t master)
{
    char cmd[512], json[8192], want[64];
    snprintf(cmd, sizeof cmd, "%s info --status '%s'", BIN, status_url);
    snprintf(want, sizeof want, "{\"master\":%d,", (int)master);
    return ipkt_run_line(cmd, json, sizeof json) == 0 && strncmp(json, want, strlen(want)) == 0;
}

static void upgrade_start(server *s, const char *workers, char *bin, char *pidf, char *uurl,
                          char (*addr)[300])
{
    ipkt_path(bin, 256, "ipckit");
    ipkt_journal("path", bin);
    install_bin(BIN, bin);
    ipkt_path(pidf, 256, "serve.pid");
    ipkt_journal("path", pidf);
    const char *opts[] = {"--workers",         workers,
                          "--pid-file",        pidf,
                          "--status",          unix_url(up_status, sizeof up_status),
                          unix_url(uurl, 300), NULL};
    s->exe = bin;
    serve_start(s, "tcp://127.0.0.1:0", opts);
    log_addr(s, 0, addr[0], sizeof addr[0]);
    log_addr(s, 1, addr[1], sizeof addr[1]);
    assert_non_null(strstr(addr[0], "unix:"));
    assert_non_null(strstr(addr[1], "tcp://127.0.0.1:"));
}

/* USR2 while clients keep connecting over tcp and unix: a new master (the binary reinstalled
 * at the same path) takes the sockets over without a refusal or a lost answer, the old one
 * exits, the unix socket file stays, and the new master removes it and the pid file at its own
 * exit. */
static void test_usr2_upgrade(void **st)
{
    (void)st;
    server s = {0};
    char bin[256], pidf[256], uurl[300], addr[2][300];
    upgrade_start(&s, "2", bin, pidf, uurl, addr);
    wait_log(&s, "]: worker 2 pid", 1);
    enum { N = 2 };
    _Atomic long *served =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(served != MAP_FAILED);
    _Atomic int *stop = (_Atomic int *)(served + N);
    upgrade_arg a[N];
    pid_t pid[N];
    for (int i = 0; i < N; i++) {
        a[i] = (upgrade_arg){{addr[0], addr[1]}, i, served, stop};
        pid[i] = ipkt_spawn(upgrade_client, &a[i]);
    }
    long since[N] = {0};
    wait_served_more(served, since, N);
    install_bin(BIN, bin); /* a "new version" at the same path */
    pid_t old = s.pid;
    assert_int_equal(pid_in(pidf), old);
    assert_int_equal(kill(old, SIGUSR2), 0);
    /* The pid file names the successor, the old master retires and exits 0. */
    pid_t fresh;
    for (int waited = 0; (fresh = pid_in(pidf)) == old || fresh == 0; waited += 20) {
        assert_true(waited < WAIT_MS);
        ipkt_msleep(20);
    }
    ipkt_journal_id("pid", fresh);
    char needle[96];
    snprintf(needle, sizeof needle, "upgrade: new master pid %d serves: retiring", (int)fresh);
    wait_log(&s, needle, 1);
    assert_int_equal(ipkt_wait(old), 0);
    snprintf(needle, sizeof needle, "serve[%d]: started, master pid %d", (int)fresh, (int)fresh);
    wait_log(&s, needle, 1);
    assert_int_equal(kill(fresh, 0), 0);
    struct stat sb;
    assert_int_equal(stat(uurl + 5, &sb), 0); /* the socket file was not removed or rebound */
    assert_true(S_ISSOCK(sb.st_mode));
    assert_true(status_of(up_status, fresh)); /* the status socket was passed on too */
    /* Only the new generation is left: the clients go on with it. */
    wait_served_more(served, since, N);
    *stop = 1;
    for (int i = 0; i < N; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    munmap(served, 4096);
    /* The new master stops as any: QUIT, and it removes what it took over. */
    assert_int_equal(kill(fresh, SIGQUIT), 0);
    snprintf(needle, sizeof needle, "serve[%d]: exit 0", (int)fresh);
    wait_log(&s, needle, 1);
    for (int waited = 0;
         access(uurl + 5, F_OK) == 0 || access(pidf, F_OK) == 0 || access(up_status + 5, F_OK) == 0;
         waited += 20) {
        assert_true(waited < WAIT_MS);
        ipkt_msleep(20);
    }
}

/* USR2 when the program at the path cannot start: the old master logs why and serves on. */
static void test_usr2_failed_upgrade(void **st)
{
    (void)st;
    server s = {0};
    char bin[256], pidf[256], uurl[300], addr[2][300];
    upgrade_start(&s, "1", bin, pidf, uurl, addr);
    /* A broken "new version": it exits at once. */
    install_script(bin, "#!/bin/sh\nexit 3\n");
    assert_int_equal(kill(s.pid, SIGUSR2), 0);
    wait_log(&s, "upgrade failed: new master pid", 1);
    wait_log(&s, "exited before it served; this master serves on", 1);
    assert_int_equal(pid_in(pidf), s.pid);
    assert_true(status_of(up_status, s.pid)); /* the old master still answers its status */
    for (int i = 0; i < 2; i++) {
        ipk_chan *c = NULL;
        ipkt_ok(ipk_dial(&c, addr[i], NULL));
        round_trip(c, 3000, (uint32_t)i);
        ipk_close(c);
    }
    /* One that never reports: a second USR2 meanwhile is refused, and a shutdown of the old
     * master abandons the upgrade (the new program gets TERM). */
    install_script(bin, "#!/bin/sh\nexec sleep 600\n");
    assert_int_equal(kill(s.pid, SIGUSR2), 0);
    wait_log(&s, "upgrade: new master pid", 2);
    assert_int_equal(kill(s.pid, SIGUSR2), 0);
    wait_log(&s, "upgrade: already under way", 1);
    serve_quit(&s);
    wait_log(&s, "upgrade abandoned: new master pid", 1);
    assert_int_equal(access(uurl + 5, F_OK), -1); /* still its own: removed at exit */
}

/* ---- live counters (the status address) and robustness ---- */

/* The status snapshot of a server started with --status (or the status setting), read with
 * `ipckit info --status`: one line of JSON. */
static void status_read(const char *status_url, char *json, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s info --status '%s'", BIN, status_url);
    assert_int_equal(ipkt_run_line(cmd, json, cap), 0);
    assert_non_null(strstr(json, "\"total\":{"));
}

/* One counter of the snapshot: of worker n (1-based), or of the total (n = 0). */
static long jget(const char *json, int n, const char *key)
{
    char head[64], k[64];
    if (n == 0)
        snprintf(head, sizeof head, "\"total\":{");
    else
        snprintf(head, sizeof head, "{\"worker\":%d,", n);
    const char *p = strstr(json, head);
    assert_non_null(p);
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *end = strchr(p, '}'), *v = strstr(p, k);
    assert_true(v != NULL && v < end);
    return atol(v + strlen(k));
}

/* Polls the snapshot until the total of key reaches want (a count the workers update after the
 * client has its answer: closes, timeouts); fails after WAIT_MS. Returns the last snapshot. */
static void status_wait(const char *status_url, const char *key, long want, char *json, size_t cap)
{
    for (int waited = 0;; waited += 50) {
        status_read(status_url, json, cap);
        if (jget(json, 0, key) == want)
            return;
        if (waited >= WAIT_MS) {
            print_error("status %s: %s is %ld, expected %ld: %s\n", status_url, key,
                        jget(json, 0, key), want, json);
            fail();
        }
        ipkt_msleep(50);
    }
}

/* Each counter's total is the sum over the workers. */
static void assert_sums(const char *json, int workers)
{
    const char *keys[] = {"conns",    "conns_total", "msgs_in", "msgs_out", "errors",
                          "timeouts", "emfile",      "refused", "respawns"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        long sum = 0;
        for (int w = 1; w <= workers; w++)
            sum += jget(json, w, keys[k]);
        assert_int_equal(sum, jget(json, 0, keys[k]));
    }
}

typedef struct count_arg {
    const server *s;
    int rounds;
} count_arg;

static int count_client(void *arg)
{
    count_arg *a = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, a->s->addr, NULL) == 0);
    char in[64];
    for (int i = 0; i < a->rounds; i++) {
        IPKT_CHECK(ipk_send(c, "0123456789", 10, WAIT_MS) == 0);
        IPKT_CHECK(ipk_recv(c, in, sizeof in, WAIT_MS) == 10);
    }
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

static void test_status_counters(void **st)
{
    (void)st;
    server s = {0};
    char status[300], json[8192];
    unix_url(status, sizeof status);
    const char *opts[] = {"--workers", "2", "--max-frame", "1000", "--status", status, NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    wait_log(&s, "status on unix:", 1);
    wait_log(&s, "]: worker 2 pid", 1);
    status_read(status, json, sizeof json);
    assert_int_equal(jget(json, 0, "msgs_in"), 0);
    assert_int_equal(jget(json, 1, "pid"), worker_pid(&s, 1));

    /* N clients, R requests each, at once: every request counted in and out, once. */
    enum { N = 5, R = 120 };
    count_arg a = {&s, R};
    pid_t pid[N];
    for (int i = 0; i < N; i++)
        pid[i] = ipkt_spawn(count_client, &a);
    for (int i = 0; i < N; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    status_wait(status, "conns", 0, json, sizeof json); /* the workers saw them close */
    assert_int_equal(jget(json, 0, "msgs_in"), N * R);
    assert_int_equal(jget(json, 0, "msgs_out"), N * R);
    assert_int_equal(jget(json, 0, "conns_total"), N);
    assert_int_equal(jget(json, 0, "errors"), 0);
    assert_sums(json, 2);

    /* A frame over the maximum and a frame cut by the client's end: each an error, neither a
     * message; the connection goes. */
    ipk_chan *big = dial(&s), *cut = dial(&s);
    unsigned char hdr[4 + 50];
    put_be32(hdr, 1001);
    write_all(ipk_fd(big), hdr, 4);
    wait_closed(ipk_fd(big));
    put_be32(hdr, 100);
    memset(hdr + 4, 'x', 50);
    write_all(ipk_fd(cut), hdr, sizeof hdr);
    shutdown(ipk_fd(cut), SHUT_WR);
    wait_closed(ipk_fd(cut));
    ipk_close(big);
    ipk_close(cut);
    status_wait(status, "errors", 2, json, sizeof json);
    assert_int_equal(jget(json, 0, "msgs_in"), N * R);
    assert_int_equal(jget(json, 0, "conns_total"), N + 2);
    assert_sums(json, 2);
    serve_quit(&s);
    wait_log(&s, "messages in, ", 2);               /* the counters again in the log at exit */
    assert_int_equal(access(status + 5, F_OK), -1); /* the status socket is removed */
}

/* Clients that connect and say nothing, and clients that send half a frame and stall, do not
 * starve the others, and read_timeout closes both kinds. */
static void test_slowloris(void **st)
{
    (void)st;
    server s = {0};
    char status[300], json[8192];
    unix_url(status, sizeof status);
    const char *opts[] = {"--workers", "1", "--read-timeout", "500", "--status", status, NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    enum { K = 20 };
    ipk_chan *mute[K], *half[K];
    unsigned char part[4 + 10];
    put_be32(part, 100);
    memset(part + 4, 'y', 10);
    for (int i = 0; i < K; i++) {
        mute[i] = dial(&s);
        half[i] = dial(&s);
        write_all(ipk_fd(half[i]), part, i % 2 ? sizeof part : 2); /* in the body, in the header */
    }
    /* The one worker serves others meanwhile. */
    ipk_chan *ok = dial(&s);
    for (int i = 0; i < 100; i++)
        round_trip(ok, 64, (uint32_t)i);
    for (int i = 0; i < K; i++) {
        wait_closed(ipk_fd(mute[i]));
        wait_closed(ipk_fd(half[i]));
        ipk_close(mute[i]);
        ipk_close(half[i]);
    }
    status_wait(status, "timeouts", 2 * K, json, sizeof json);
    assert_int_equal(jget(json, 0, "msgs_in"), 100);
    ipk_close(ok);
    serve_quit(&s);
}

/* A connection flood past the worker's descriptor limit: the connection it serves goes on, the
 * waiting ones are closed (the reserve descriptor) instead of the listener waking the worker
 * again and again, and once descriptors are free it accepts again. */
static void test_emfile_flood(void **st)
{
    (void)st;
    server s = {0};
    char status[300], json[8192];
    unix_url(status, sizeof status);
    const char *opts[] = {"--workers", "1", "--status", status, NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    wait_log(&s, "]: worker 1 pid", 1);
    ipk_chan *keep = dial(&s);
    round_trip(keep, 64, 1);
    struct rlimit rl = {24, 24};
    assert_int_equal(prlimit(worker_pid(&s, 1), RLIMIT_NOFILE, &rl, NULL), 0);
    enum { N = 60 };
    ipk_chan *c[N];
    for (int i = 0; i < N; i++) {
        c[i] = dial(&s);
        round_trip(keep, 64, (uint32_t)i + 2); /* served all along */
    }
    /* Each failed accept consumed one waiting connection: a worker spinning on the readable
     * listener would count thousands here while the flood waits. */
    for (int i = 0; i < 200; i++)
        round_trip(keep, 64, (uint32_t)i + 100);
    status_read(status, json, sizeof json);
    long emfile = jget(json, 0, "emfile");
    assert_true(emfile > 0);
    assert_true(emfile <= N);
    for (int i = 0; i < N; i++)
        ipk_close(c[i]);
    wait_served(&s); /* descriptors back: accepting again */
    round_trip(keep, 64, 999);
    ipk_close(keep);
    serve_quit(&s);
}

/* A handler that fails, replies too large or crashes its worker: the client concerned loses
 * its connection, the master respawns the worker, clients of the other worker see nothing, and
 * the counters say what happened. */
static int h_garbage(ipk_conn *c, const void *msg, size_t len, void *arg)
{
    (void)arg;
    static char big[2000];
    if (len == 3 && memcmp(msg, "err", 3) == 0)
        return -1;
    if (len == 3 && memcmp(msg, "big", 3) == 0)
        return ipk_conn_send(c, big, sizeof big); /* over max_frame: IPK_EMSGSIZE */
    if (len == 5 && memcmp(msg, "crash", 5) == 0)
        abort();
    return h_upper(c, msg, len, arg);
}

/* A closed connection: the reply does not come. */
static void expect_dropped(ipk_chan *c, const char *req)
{
    char b[64];
    ipkt_ok(ipk_send(c, req, strlen(req), WAIT_MS));
    long r = ipk_recv(c, b, sizeof b, WAIT_MS);
    assert_true(r == IPK_EOF || r == IPK_ECLOSED || r == -ECONNRESET);
}

static void test_garbage_handler(void **st)
{
    (void)st;
    server s = {0};
    char status[300], json[8192];
    unix_url(status, sizeof status);
    static const ipk_serve_handlers h = {.on_msg = h_garbage};
    s.set[1][0] = "max_frame";
    s.set[1][1] = "1000";
    s.set[2][0] = "status";
    s.set[2][1] = status;
    api_start(&s, "tcp://127.0.0.1:0", &h, "2");
    wait_log(&s, "]: worker 2 pid", 1);
    pid_t w1 = worker_pid(&s, 1);
    /* A connection on each worker (the balance puts the second elsewhere soon). */
    enum { MAXC = 32 };
    ipk_chan *c[MAXC], *on1 = NULL, *on2 = NULL;
    int n = 0;
    while ((on1 == NULL || on2 == NULL) && n < MAXC) {
        c[n] = dial(&s);
        pid_t p = who(c[n]);
        if (p == w1 && on1 == NULL)
            on1 = c[n];
        else if (p != w1 && on2 == NULL)
            on2 = c[n];
        n++;
    }
    assert_true(on1 && on2);
    ipk_chan *e = dial(&s), *b = dial(&s);
    expect_dropped(e, "err");
    expect_dropped(b, "big");
    assert_int_equal(try_upper(on2), 0);
    expect_dropped(on1, "crash");
    assert_int_equal(try_upper(on2), 0); /* the other worker's client saw nothing */
    wait_new_pid(&s, 1, w1);
    status_wait(status, "respawns", 1, json, sizeof json);
    assert_int_equal(jget(json, 1, "respawns"), 1);
    assert_int_equal(jget(json, 0, "errors"), 2);
    assert_sums(json, 2);
    wait_served(&s); /* the new worker 1 serves too */
    ipk_close(e);
    ipk_close(b);
    for (int i = 0; i < n; i++)
        ipk_close(c[i]);
    serve_quit(&s);
}

/* A reply sent from on_open (a greeting) reaches the client before it says anything. */
static int h_greet(ipk_conn *c, void *arg)
{
    (void)arg;
    return ipk_conn_send(c, "hello", 5);
}

static void test_on_open_greeting(void **st)
{
    (void)st;
    server s = {0};
    static const ipk_serve_handlers h = {.on_open = h_greet}; /* on_msg NULL: echo */
    api_start(&s, "tcp://127.0.0.1:0", &h, "1");
    ipk_chan *c = dial(&s);
    char b[16];
    ipkt_expect(ipk_recv(c, b, sizeof b, WAIT_MS), 5);
    assert_memory_equal(b, "hello", 5);
    round_trip(c, 100, 3);
    ipk_close(c);
    serve_quit(&s);
}

/* ---- per-request path (issue 13's performance work): what it must keep ---- */

/* Reply buffers go back to a per-worker stock once written and serve the next replies: on
 * several connections at once, pipelined requests of sizes on both sides of the stock's 4 KiB
 * buffers come back whole and in order, none carrying bytes of another connection's reply. */
static int pipeline_client(void *arg)
{
    client_arg *a = arg;
    ipk_chan *c = NULL;
    if (ipk_dial(&c, a->s->addr, NULL) != 0)
        return 1;
    enum { R = 60 };
    static unsigned char out[9000], in[9000];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < R; i++) { /* all sent before any is read */
            size_t n = (size_t)((i * 1543 + a->id * 97 + round * 31) % 9000);
            ipkt_fill(out, n, (uint32_t)(a->id * 100000 + round * 1000 + i));
            if (ipk_send(c, out, n, WAIT_MS) != 0)
                return 2;
        }
        for (int i = 0; i < R; i++) {
            size_t n = (size_t)((i * 1543 + a->id * 97 + round * 31) % 9000);
            if (ipk_recv(c, in, sizeof in, WAIT_MS) != (long)n ||
                !ipkt_check(in, n, (uint32_t)(a->id * 100000 + round * 1000 + i)))
                return 3;
        }
    }
    return ipk_close(c) == 0 ? 0 : 4;
}

static void test_reply_buffers_reused(void **st)
{
    (void)st;
    server s = {0};
    const char *opts[] = {"--workers", "1", NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    run_clients(&s, 8, pipeline_client);
    serve_quit(&s);
}

/* The listening TCP socket of a server in this process (port from its address). */
static int tcp_listener_fd(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    int port = atoi(colon + 1);
    for (int fd = 3; fd < 1024; fd++) {
        int on = 0, proto = 0;
        socklen_t l1 = sizeof on, l2 = sizeof proto;
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l1) == 0 && on &&
            getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l2) == 0 && proto == IPPROTO_TCP &&
            getsockname(fd, (struct sockaddr *)&a, &al) == 0 && ntohs(a.sin_port) == port)
            return fd;
    }
    fail_msg("no listening socket for %s", addr);
    return -1;
}

/* TCP_NODELAY of a connection to the listening socket lfd (port in addr), accepted as a
 * worker's accept4() accepts it. */
static int nodelay_at(int lfd, const char *addr)
{
    ipk_chan *c = NULL;
    char dial_url[300];
    snprintf(dial_url, sizeof dial_url, "tcp://127.0.0.1:%s", strrchr(addr, ':') + 1);
    ipkt_ok(ipk_dial(&c, dial_url, NULL));
    int fd = -1;
    for (int waited = 0; fd < 0 && waited < WAIT_MS; waited += 10) {
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC); /* the listener is non-blocking */
        if (fd < 0)
            ipkt_msleep(10);
    }
    assert_true(fd >= 0);
    int on = -1;
    socklen_t l = sizeof on;
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &l), 0);
    close(fd);
    ipk_close(c);
    return on;
}

/* TCP_NODELAY of a connection accepted from the server's listener for url. */
static int accepted_nodelay(const char *url)
{
    ipk_server *srv = NULL;
    ipkt_ok(ipk_server_new(&srv));
    assert_int_equal(ipk_server_listen(srv, url, NULL), 0);
    const char *addr = ipk_server_addr(srv, 0);
    assert_non_null(addr);
    int on = nodelay_at(tcp_listener_fd(addr), addr);
    ipk_server_free(srv);
    return on;
}

/* The same for a TCP socket adopted with ipk_server_listen_fd() (socket activation), with
 * nodelay=val in its options (NULL: none); or the error of the adoption. */
static int adopted_nodelay(const char *val)
{
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://127.0.0.1:0", NULL));
    char addr[200];
    snprintf(addr, sizeof addr, "%s", ipk_addr(l));
    int fd = dup(ipk_fd(l));
    assert_true(fd >= 0);
    ipk_close(l);
    ipk_server *srv = NULL;
    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_server_new(&srv));
    assert_non_null(o);
    if (val)
        ipkt_ok(ipk_opts_set(o, "nodelay", val));
    int r = ipk_server_listen_fd(srv, fd, o);
    if (r == 0)
        r = nodelay_at(fd, addr);
    else
        close(fd); /* not adopted: still ours */
    ipk_opts_free(o);
    ipk_server_free(srv);
    return r;
}

/* The workers accept with accept4(), not ipk_accept(): the listener carries what the library's
 * accept sets on a TCP connection, TCP_NODELAY unless nodelay=0, for a socket the server made
 * and one it adopted (LISTEN_FDS) alike. nodelay= is checked on an adopted socket. */
static void test_tcp_nodelay(void **st)
{
    (void)st;
    assert_int_equal(accepted_nodelay("tcp://127.0.0.1:0"), 1);
    assert_int_equal(accepted_nodelay("tcp://127.0.0.1:0?nodelay=0"), 0);
    assert_int_equal(accepted_nodelay("tcp://127.0.0.1:0?nodelay=1"), 1);
    assert_int_equal(adopted_nodelay(NULL), 1);
    assert_int_equal(adopted_nodelay("0"), 0);
    assert_int_equal(adopted_nodelay("yes"), 1);
    assert_int_equal(adopted_nodelay("maybe"), IPK_EOPTION);
    /* Not a tcp socket: the option is refused, not ignored. */
    ipk_chan *u = NULL;
    char path[200], url[220];
    snprintf(url, sizeof url, "unix:%s", ipkt_path(path, sizeof path, "nodelay.sock"));
    ipkt_ok(ipk_listen(&u, url, NULL));
    ipk_server *srv = NULL;
    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_server_new(&srv));
    ipkt_ok(ipk_opts_set(o, "nodelay", "1"));
    int fd = dup(ipk_fd(u));
    assert_int_equal(ipk_server_listen_fd(srv, fd, o), IPK_EOPTION);
    assert_non_null(strstr(ipk_server_errmsg(srv), "nodelay=1"));
    close(fd);
    ipk_opts_free(o);
    ipk_server_free(srv);
    ipk_close(u);
}

/* "Max open files" of a process: its soft and hard limits (-1: unlimited). */
static void nofile_of(pid_t pid, long *soft, long *hard)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    ipkt_slurp(path, buf, sizeof buf);
    const char *p = strstr(buf, "Max open files");
    assert_non_null(p);
    char a[32], b[32];
    assert_int_equal(sscanf(p + strlen("Max open files"), "%31s %31s", a, b), 2);
    *soft = strcmp(a, "unlimited") == 0 ? -1 : atol(a);
    *hard = strcmp(b, "unlimited") == 0 ? -1 : atol(b);
}

/* A worker raises its soft descriptor limit to the hard one, so the default max_conn (no cap)
 * reaches what the hard limit allows; the master keeps the limit it was given. The master's
 * soft limit is lowered from outside, and the workers of a reload start from it. */
static void test_worker_nofile_raised(void **st)
{
    (void)st;
    server s = {0};
    pid_t old = serve_one_worker(&s);
    long soft, hard;
    nofile_of(s.pid, &soft, &hard);
    assert_true(hard == -1 || hard > 100);
    struct rlimit rl = {100, hard == -1 ? RLIM_INFINITY : (rlim_t)hard};
    assert_int_equal(prlimit(s.pid, RLIMIT_NOFILE, &rl, NULL), 0);
    assert_int_equal(kill(s.pid, SIGHUP), 0);
    pid_t w = wait_new_pid(&s, 1, old);
    wait_log(&s, "retired worker pid", 1);
    /* Served by the new worker (the old one is gone): it has been through its start. */
    ipk_chan *c = dial(&s);
    round_trip(c, 100, 7);
    ipk_close(c);
    long wsoft, whard;
    nofile_of(w, &wsoft, &whard);
    assert_int_equal(whard, hard);
    if (hard != -1)
        assert_int_equal(wsoft, hard);
    else /* unlimited hard: raised to the kernel's nr_open */
        assert_true(wsoft > 100);
    nofile_of(s.pid, &soft, &hard);
    assert_int_equal(soft, 100);
    serve_quit(&s);
}

/* The status snapshot goes out in one non-blocking write: a client that does not read stalls
 * nothing, and the next client gets the whole snapshot, every worker of many. */
static void test_status_snapshot_whole(void **st)
{
    (void)st;
    enum { W = 48 };
    server s = {0};
    char status[300], nw[8];
    static char json[1 << 16];
    unix_url(status, sizeof status);
    snprintf(nw, sizeof nw, "%d", W);
    const char *opts[] = {"--workers", nw, "--status", status, NULL};
    serve_start(&s, "tcp://127.0.0.1:0", opts);
    wait_log(&s, "status on unix:", 1);
    char wline[64];
    snprintf(wline, sizeof wline, "]: worker %d pid", W);
    wait_log(&s, wline, 1);
    /* A client that connects and never reads. */
    ipk_chan *stall = NULL;
    ipkt_ok(ipk_dial(&stall, status, NULL));
    for (int i = 0; i < 3; i++) {
        status_read(status, json, sizeof json);
        assert_true(strlen(json) > 4096);
        for (int k = 1; k <= W; k++)
            assert_true(jget(json, k, "pid") > 0);
        size_t n = strlen(json);
        while (n > 0 && json[n - 1] == '\n')
            n--;
        assert_true(n >= 2 && json[n - 2] == '}' && json[n - 1] == '}');
    }
    ipk_chan *c = dial(&s);
    round_trip(c, 100, 9);
    ipk_close(c);
    ipk_close(stall);
    serve_quit(&s);
}

IPKT_MAIN(cmocka_unit_test(test_echo_tcp_concurrent), cmocka_unit_test(test_echo_unix_concurrent),
          cmocka_unit_test(test_raw_echo), cmocka_unit_test(test_raw_udp),
          cmocka_unit_test(test_packet_replies_queue), cmocka_unit_test(test_quit_mid_frame),
          cmocka_unit_test(test_term_fast), cmocka_unit_test(test_hup_reload),
          cmocka_unit_test(test_respawn), cmocka_unit_test(test_usr1_pid_file),
          cmocka_unit_test(test_max_frame), cmocka_unit_test(test_idle_and_read_timeout),
          cmocka_unit_test(test_max_conn), cmocka_unit_test(test_fd_exhaustion),
          cmocka_unit_test(test_usage), cmocka_unit_test(test_quit_when_ignored),
          cmocka_unit_test(test_socket_activation), cmocka_unit_test(test_api_upper_load),
          cmocka_unit_test(test_kill9_worker_under_load), cmocka_unit_test(test_quit_under_load),
          cmocka_unit_test(test_hup_under_load), cmocka_unit_test(test_mq_pool_kill_between_jobs),
          cmocka_unit_test(test_shm_pool_kill_between_jobs),
          cmocka_unit_test(test_sysv_pool_kill_between_jobs),
          cmocka_unit_test(test_pool_beside_sockets_sleeps), cmocka_unit_test(test_allow_uid_gid),
          cmocka_unit_test(test_exec_line_handlers), cmocka_unit_test(test_exec_crash_and_hang),
          cmocka_unit_test(test_usr2_upgrade), cmocka_unit_test(test_usr2_failed_upgrade),
          cmocka_unit_test(test_status_counters), cmocka_unit_test(test_slowloris),
          cmocka_unit_test(test_emfile_flood), cmocka_unit_test(test_garbage_handler),
          cmocka_unit_test(test_on_open_greeting), cmocka_unit_test(test_reply_buffers_reused),
          cmocka_unit_test(test_tcp_nodelay), cmocka_unit_test(test_worker_nofile_raised),
          cmocka_unit_test(test_status_snapshot_whole))
