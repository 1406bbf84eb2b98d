/*
 * test_nats.c - the nats: transport against real nats-server processes that each test starts
 * on free loopback ports (JetStream on, a store directory inside the test's own directory; the
 * servers are journalled, so they are killed and their files removed even when a test dies):
 * sizes against max_payload, timeouts, a buffer too small, queue groups across processes,
 * request/reply, JetStream durability across kill -9 of a consumer, a three-node cluster that
 * loses a server during a transfer, the poller over nats: and mq: at once, and relays from
 * mq: to nats: and back with priorities carried as headers; user/password, token and nkey
 * credentials, TLS and mutual TLS against servers configured for them (the CA, certificates and
 * nkeys made with the openssl tool), each right one working and each wrong or missing one
 * failing with its own error.
 *
 * libnats starts threads in the first process that uses it, and they do not survive fork():
 * children that use nats: are forked before the test process opens its first nats: channel,
 * or they are programs (the ipckit tool) started with exec.
 */
#include "cli_run.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- servers ---- */

typedef struct srv {
    pid_t pid;
    int port, cport; /* clients, cluster routes */
    char dir[300];
} srv;

/* A loopback port nobody listens on now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Starts nats-server with a configuration file: JetStream in s->dir, the given extra lines. */
static void srv_start(srv *s, const char *extra)
{
    char conf[400], log[400];
    if (s->port == 0) {
        s->port = free_port();
        ipkt_path(s->dir, sizeof s->dir, "nats");
        assert_int_equal(mkdir(s->dir, 0700), 0);
    }
    snprintf(conf, sizeof conf, "%s/server.conf", s->dir);
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "listen: 127.0.0.1:%d\njetstream { store_dir: \"%s/js\" }\n%s\n", s->port, s->dir,
            extra ? extra : "");
    fclose(f);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("nats-server", "nats-server", "-c", conf, (char *)NULL);
        _exit(127);
    }
    ipkt_journal_id("pid", s->pid);
    for (int i = 0; i < 1000 && !port_open(s->port); i++) {
        assert_int_equal(waitpid(s->pid, NULL, WNOHANG), 0); /* still running */
        ipkt_msleep(10);
    }
    assert_true(port_open(s->port));
}

static void srv_kill(srv *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = -1;
}

static const char *url(char *b, size_t n, const srv *s, const char *subject, const char *q)
{
    snprintf(b, n, "nats://127.0.0.1:%d/%s%s", s->port, subject, q ? q : "");
    return b;
}

/* ---- children report through a pipe, one line per message ---- */

static int g_pipe[2], g_go[2];
static char g_url[512];

static void report(const char *fmt, long v)
{
    char line[64];
    int k = snprintf(line, sizeof line, fmt, v);
    if (write(g_pipe[1], line, (size_t)k) != k)
        _exit(3);
}

/* Reads one line from fd into buf; 0 at the end. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t k = read(fd, buf + n, 1);
        if (k <= 0)
            break;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return n > 0;
}

static void wait_go(void)
{
    char c;
    if (read(g_go[0], &c, 1) != 1)
        _exit(4);
}

/* ---- plain subjects ---- */

static void t_sizes(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, "max_payload: 65536");
    char u[512];
    ipk_chan *l, *d;
    ipkt_ok(ipk_listen(&l, url(u, sizeof u, &s, "sizes", NULL), NULL));
    ipkt_ok(ipk_dial(&d, u, NULL));
    static char big[65537], got[65537];
    static const size_t lens[] = {0, 1, 100, 4096, 65535, 65536};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        ipkt_fill(big, lens[i], (uint32_t)i);
        ipkt_ok(ipk_send(d, big, lens[i], 5000));
        ipkt_expect(ipk_recv(l, got, sizeof got, 5000), (long)lens[i]);
        assert_true(ipkt_check(got, lens[i], (uint32_t)i));
    }
    ipkt_expect(ipk_send(d, big, 65537, 5000), IPK_EMSGSIZE);
    ipkt_errmsg_has("message of 65537 bytes exceeds the server's max_payload 65536");
    /* A priority travels as a header, which counts against max_payload too. */
    ipk_msginfo mi = IPK_MSGINFO_INIT;
    mi.prio = 7;
    ipkt_expect(ipk_sendx(d, big, 65530, &mi, 5000), IPK_EMSGSIZE);
    ipkt_errmsg_has("with its headers");
    ipkt_ok(ipk_sendx(d, "p", 1, &mi, 5000));
    ipk_msginfo ri;
    ipkt_expect(ipk_recvx(l, got, sizeof got, &ri, 5000), 1);
    assert_int_equal(ri.prio, 7);
    /* A buffer too small: the message is kept, its size told. */
    ipkt_ok(ipk_send(d, "0123456789", 10, 5000));
    ipkt_expect(ipk_recv(l, got, 4, 5000), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(l), 10);
    ipkt_errmsg_has("message of 10 bytes does not fit the buffer of 4");
    assert_int_equal(ipk_pending(l), 1);
    ipkt_expect(ipk_recv(l, got, 10, 0), 10);
    assert_memory_equal(got, "0123456789", 10);
    assert_int_equal(ipk_pending(l), 0);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

/* A listener on subject and a dialer to it. */
static void pair(const srv *s, const char *subject, ipk_chan **l, ipk_chan **d)
{
    char u[512];
    ipkt_ok(ipk_listen(l, url(u, sizeof u, s, subject, NULL), NULL));
    ipkt_ok(ipk_dial(d, u, NULL));
}

static void *late_send(void *arg)
{
    ipkt_msleep(100);
    return (void *)(long)ipk_send(arg, "late", 4, 5000);
}

/* A receive that waits: a message that comes while it waits (after the first millisecond, which
 * a receive spends looking at libnats's queue before it reads the clock) is taken. And a
 * receiver that falls behind: libnats drops what exceeds ?pending= + 65536 messages, and the
 * receives say how many (-ENOBUFS): every message sent is either received or counted as
 * dropped, none vanishes. (Whether any is dropped depends on how far libnats's reader got
 * before the receives began, so the test counts, and does not demand a drop.) */
static void t_wait_and_drops(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    char u[512], buf[64];
    ipk_chan *l, *d;
    pair(&s, "late", &l, &d);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, late_send, d), 0);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 30000), 4);
    assert_memory_equal(buf, "late", 4);
    void *sent;
    pthread_join(t, &sent);
    ipkt_ok((long)sent);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));

    enum { SENT = 200001 }; /* far past libnats's 1 + 65536 */
    ipkt_ok(ipk_listen(&l, url(u, sizeof u, &s, "slow", "?pending=1"), NULL));
    ipkt_ok(ipk_dial(&d, url(u, sizeof u, &s, "slow", "?oneway=1"), NULL));
    for (int i = 0; i < SENT - 1; i++)
        ipkt_ok(ipk_send(d, "x", 1, 0));
    ipkt_ok(ipk_send(d, "x", 1, 30000)); /* the server has every one */
    long got = 0, dropped = 0, reports = 0;
    while (got + dropped < SENT) {
        long n = ipk_recv(l, buf, sizeof buf, 30000);
        if (n == -ENOBUFS) {
            const char *m = strstr(ipk_errmsg(), ": ");
            assert_non_null(m);
            long k = atol(m + 2);
            assert_true(k > 0);
            ipkt_errmsg_has("messages were dropped");
            dropped += k;
            reports++;
            continue;
        }
        ipkt_expect(n, 1);
        got++;
    }
    assert_int_equal(got + dropped, SENT);
    assert_true((reports > 0) == (dropped > 0));
    assert_true(got >= 65537 || dropped == 0); /* libnats keeps its whole queue */
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), -EAGAIN);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

static void t_timeouts_and_errors(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    char u[512], got[64];
    ipk_chan *l, *d;
    ipkt_ok(ipk_listen(&l, url(u, sizeof u, &s, "t", NULL), NULL));
    ipkt_expect(ipk_recv(l, got, sizeof got, 0), -EAGAIN);
    ipkt_errmsg_has("no message");
    ipkt_expect(ipk_recv(l, got, sizeof got, 200), IPK_ETIMEDOUT);
    /* A listener answers; nobody asked. */
    ipkt_expect(ipk_send(l, "x", 1, 1000), -EDESTADDRREQ);
    ipkt_errmsg_has("none asked for an answer");
    /* Addresses and options. */
    ipkt_expect(ipk_dial(&d, url(u, sizeof u, &s, "a.*", NULL), NULL), IPK_EADDR);
    ipkt_errmsg_has("cannot hold '*' or '>'");
    ipkt_expect(ipk_dial(&d, "nats://127.0.0.1/a..b", NULL), IPK_EADDR);
    ipkt_errmsg_has("empty token");
    ipkt_expect(ipk_dial(&d, "nats:127.0.0.1:4222/a", NULL), IPK_EADDR);
    ipkt_expect(ipk_dial(&d, "nats://127.0.0.1:99999/a", NULL), IPK_EADDR);
    ipkt_errmsg_has("port 99999 out of range");
    ipkt_expect(ipk_dial(&d, url(u, sizeof u, &s, "a", "?durable=x"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("need stream=");
    ipkt_expect(ipk_dial(&d, url(u, sizeof u, &s, "a", "?stream=a.b"), NULL), IPK_EOPTION);
    ipkt_expect(ipk_dial(&d, url(u, sizeof u, &s, "a", "?password=x"), NULL), IPK_EOPTION);
    /* Nobody at the port: refused, and the message names it. */
    int dead = free_port();
    snprintf(u, sizeof u, "nats://127.0.0.1:%d/a", dead);
    ipkt_expect(ipk_dial(&d, u, NULL), -ECONNREFUSED);
    char want[64];
    snprintf(want, sizeof want, "no NATS server answered at 127.0.0.1:%d", dead);
    ipkt_errmsg_has(want);
    /* The server goes away: a send cannot be confirmed and says so; never a silent success. */
    ipkt_ok(ipk_dial(&d, url(u, sizeof u, &s, "t", NULL), NULL));
    ipkt_ok(ipk_send(d, "before", 6, 5000));
    ipkt_expect(ipk_recv(l, got, sizeof got, 5000), 6);
    srv_kill(&s);
    int r = 0;
    for (int i = 0; i < 50 && r == 0; i++)
        r = ipk_send(d, "lost", 4, 200);
    assert_true(r == IPK_ETIMEDOUT || r == -EAGAIN);
    ipkt_errmsg_has("did not confirm");
    ipkt_expect(ipk_send(d, "now", 3, 0), -EAGAIN);
    ipkt_errmsg_has("the server is away");
    /* It comes back on the same port: both clients reconnect and go on. Until the listener
     * has subscribed again, what is published goes nowhere (core NATS keeps nothing), so
     * the dialer says it again until it gets through. */
    srv_start(&s, NULL);
    long n = -1;
    for (int i = 0; i < 200 && n != 5; i++) {
        ipkt_ok(ipk_send(d, "again", 5, 20000));
        do /* "lost" may arrive after all: it waited in the reconnect buffer */
            n = ipk_recv(l, got, sizeof got, 100);
        while (n == 4 || n == 6);
    }
    ipkt_expect(n, 5);
    assert_memory_equal(got, "again", 5);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

/* Listens at g_url and reports every message it receives until idle_ms pass without one. */
static int listen_report(int say_ready, int idle_ms)
{
    ipk_chan *l;
    IPKT_CHECK(ipk_listen(&l, g_url, NULL) == 0);
    if (say_ready)
        report("ready %ld\n", 0);
    char buf[64];
    long n;
    while ((n = ipk_recv(l, buf, sizeof buf - 1, idle_ms)) > 0) {
        buf[n] = '\0';
        report("got %ld\n", atol(buf));
    }
    IPKT_CHECK(n == IPK_ETIMEDOUT);
    return ipk_close(l) == 0 ? 0 : 1;
}

static int queue_member(void *arg)
{
    (void)arg;
    return listen_report(1, 3000);
}

/* Two processes in one queue group: each message goes to exactly one of them. */
static void t_queue_group(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    url(g_url, sizeof g_url, &s, "work", "?queue=workers");
    assert_int_equal(pipe2(g_pipe, O_CLOEXEC), 0);
    pid_t a = ipkt_spawn(queue_member, NULL), b = ipkt_spawn(queue_member, NULL);
    close(g_pipe[1]);
    FILE *in = fdopen(g_pipe[0], "r");
    char line[64];
    for (int i = 0; i < 2; i++)
        assert_non_null(fgets(line, sizeof line, in));
    ipk_chan *d;
    char u[512];
    ipkt_ok(ipk_dial(&d, url(u, sizeof u, &s, "work", NULL), NULL));
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        char m[16];
        int k = snprintf(m, sizeof m, "%d", i);
        ipkt_ok(ipk_send(d, m, (size_t)k, 5000));
    }
    ipkt_ok(ipk_close(d));
    assert_int_equal(ipkt_wait(a), 0);
    assert_int_equal(ipkt_wait(b), 0);
    int seen[N] = {0}, total = 0;
    while (fgets(line, sizeof line, in) != NULL) {
        long v;
        if (sscanf(line, "got %ld", &v) == 1 && v >= 0 && v < N) {
            seen[v]++;
            total++;
        }
    }
    fclose(in);
    assert_int_equal(total, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
}

/* Request/reply: each dialer gets the answers to its own questions. */
static void t_request_reply(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    char u[512], buf[64];
    ipk_chan *l, *d1, *d2;
    ipkt_ok(ipk_listen(&l, url(u, sizeof u, &s, "svc.echo", NULL), NULL));
    ipkt_ok(ipk_dial(&d1, u, NULL));
    ipkt_ok(ipk_dial(&d2, u, NULL));
    ipkt_ok(ipk_send(d1, "one", 3, 5000));
    ipkt_ok(ipk_send(d2, "two", 3, 5000));
    for (int i = 0; i < 2; i++) {
        long n = ipk_recv(l, buf, sizeof buf, 5000);
        assert_int_equal(n, 3);
        buf[0] = (char)(buf[0] - 'a' + 'A');
        ipkt_ok(ipk_send(l, buf, 3, 5000)); /* to whoever asked */
    }
    ipkt_expect(ipk_recv(d1, buf, sizeof buf, 5000), 3);
    assert_memory_equal(buf, "One", 3);
    ipkt_expect(ipk_recv(d2, buf, sizeof buf, 5000), 3);
    assert_memory_equal(buf, "Two", 3);
    ipkt_expect(ipk_recv(d1, buf, sizeof buf, 0), -EAGAIN);
    /* sendv: several messages, one confirmation. */
    ipk_iov v[3] = {{"a", 1}, {"bb", 2}, {"ccc", 3}};
    ipkt_expect(ipk_sendv(d1, v, 3, 5000), 3);
    for (int i = 0; i < 3; i++)
        ipkt_expect(ipk_recv(l, buf, sizeof buf, 5000), i + 1);
    /* A oneway=1 dialer's message carries no inbox: it cannot be answered, nor can the dialer
     * receive; a listener cannot be oneway. */
    ipk_chan *o;
    char ou[600];
    snprintf(ou, sizeof ou, "%s?oneway=1", u);
    ipkt_expect(ipk_listen(&o, ou, NULL), IPK_EOPTION);
    ipkt_errmsg_has("oneway= is a dialer's");
    ipkt_ok(ipk_dial(&o, ou, NULL));
    ipkt_ok(ipk_send(o, "fire", 4, 5000));
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 5000), 4);
    ipkt_expect(ipk_send(l, "back", 4, 5000), -EDESTADDRREQ);
    ipkt_expect(ipk_recv(o, buf, sizeof buf, 0), IPK_ENOTSUP);
    ipkt_errmsg_has("publishes only");
    ipkt_ok(ipk_close(o));
    /* asap=1: a send with timeout 0 is written at once; the conversation is the same. */
    snprintf(ou, sizeof ou, "%s?asap=1", u);
    ipkt_ok(ipk_dial(&o, ou, NULL));
    ipkt_ok(ipk_send(o, "q", 1, 0));
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 5000), 1);
    ipkt_ok(ipk_send(l, "a", 1, 5000));
    ipkt_expect(ipk_recv(o, buf, sizeof buf, 5000), 1);
    assert_int_equal(buf[0], 'a');
    ipkt_ok(ipk_close(o));
    ipkt_expect(ipk_dial(&o, "nats://127.0.0.1:1/x?asap=maybe", NULL), IPK_EOPTION);
    ipkt_ok(ipk_close(d1));
    ipkt_ok(ipk_close(d2));
    ipkt_ok(ipk_close(l));
}

/* The poller waits on a nats: listener and an mq: queue at once. */
static void t_poller(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    char u[512], q[300], name[64], buf[64];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("mq", name);
    snprintf(q, sizeof q, "mq:%s", name);
    ipk_chan *l, *d, *mq, *mqd;
    ipkt_ok(ipk_listen(&l, url(u, sizeof u, &s, "p", NULL), NULL));
    ipkt_ok(ipk_dial(&d, u, NULL));
    ipkt_ok(ipk_listen(&mq, q, NULL));
    ipkt_ok(ipk_dial(&mqd, q, NULL));
    ipk_poller *p;
    ipk_pollev ev[4];
    ipkt_ok(ipk_poller_new(&p));
    ipkt_ok(ipk_poller_add(p, l, IPK_POLLIN, (void *)"nats"));
    ipkt_ok(ipk_poller_add(p, mq, IPK_POLLIN, (void *)"mq"));
    ipkt_expect(ipk_poller_wait(p, ev, 4, 0), -EAGAIN);
    ipkt_ok(ipk_send(d, "n", 1, 5000));
    ipkt_expect(ipk_poller_wait(p, ev, 4, 5000), 1);
    assert_ptr_equal(ev[0].chan, l);
    assert_int_equal(ev[0].events, IPK_POLLIN);
    /* Level-triggered: reported until received. */
    ipkt_expect(ipk_poller_wait(p, ev, 4, 0), 1);
    struct pollfd pf = {.fd = ipk_fd(l), .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 0), 1);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 1);
    assert_int_equal(poll(&pf, 1, 0), 0);
    ipkt_expect(ipk_poller_wait(p, ev, 4, 0), -EAGAIN);
    ipkt_ok(ipk_send(mqd, "m", 1, 0));
    ipkt_ok(ipk_send(d, "n2", 2, 5000));
    int seen = 0;
    for (int round = 0; round < 10 && seen != 3; round++) {
        int k = ipk_poller_wait(p, ev, 4, 5000);
        assert_true(k >= 1);
        for (int i = 0; i < k; i++) {
            seen |= ev[i].chan == l ? 1 : 2;
            assert_true(ipk_recv(ev[i].chan, buf, sizeof buf, 0) > 0);
        }
    }
    assert_int_equal(seen, 3);
    ipk_poller_free(p);
    ipkt_ok(ipk_close(mqd));
    ipkt_ok(ipk_close(mq));
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

/* Receives take from libnats's queue directly until a descriptor is given out; from then on a
 * pump thread carries the messages into a ring behind the descriptor. Across the switch nothing
 * is lost and the order holds: messages waiting when it happens, one put back as too big for
 * its buffer, and those sent after; on a listener (ipk_fd) and on a dialer's reply inbox (a
 * poller). */
static void t_poll_switch(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    char buf[64], want[16];
    ipk_chan *l, *d;
    pair(&s, "sw", &l, &d);
    for (int i = 0; i < 6; i++) {
        int k = snprintf(want, sizeof want, "m%d-abcdef", i);
        ipkt_ok(ipk_send(d, want, (size_t)k, 5000));
    }
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 5000), 9);
    assert_memory_equal(buf, "m0-abcdef", 9);
    ipkt_expect(ipk_recv(l, buf, 4, 5000), IPK_EMSGSIZE); /* m1 is put back */
    assert_int_equal(ipk_pending(l), 1);
    int fd = ipk_fd(l);
    assert_true(fd >= 0);
    for (int i = 6; i < 10; i++) {
        int k = snprintf(want, sizeof want, "m%d-abcdef", i);
        ipkt_ok(ipk_send(d, want, (size_t)k, 5000));
    }
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    for (int i = 1; i < 10; i++) {
        assert_int_equal(poll(&pf, 1, 5000), 1);
        int k = snprintf(want, sizeof want, "m%d-abcdef", i);
        ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), k);
        assert_memory_equal(buf, want, (size_t)k);
    }
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), -EAGAIN);
    assert_int_equal(poll(&pf, 1, 0), 0);
    assert_int_equal(ipk_pending(l), 0);

    /* The dialer's inbox: answers taken directly, then through a poller. */
    for (int i = 0; i < 3; i++) {
        int k = snprintf(want, sizeof want, "a%d", i);
        ipkt_ok(ipk_send(d, "q-abcdefg", 9, 5000));
        ipkt_expect(ipk_recv(l, buf, sizeof buf, 5000), 9);
        ipkt_ok(ipk_send(l, want, (size_t)k, 5000));
    }
    ipkt_expect(ipk_recv(d, buf, sizeof buf, 5000), 2);
    assert_memory_equal(buf, "a0", 2);
    ipk_poller *p;
    ipk_pollev ev[2];
    ipkt_ok(ipk_poller_new(&p));
    ipkt_ok(ipk_poller_add(p, d, IPK_POLLIN, NULL));
    for (int i = 1; i < 3; i++) {
        ipkt_expect(ipk_poller_wait(p, ev, 2, 5000), 1);
        assert_ptr_equal(ev[0].chan, d);
        int k = snprintf(want, sizeof want, "a%d", i);
        ipkt_expect(ipk_recv(d, buf, sizeof buf, 0), k);
        assert_memory_equal(buf, want, (size_t)k);
    }
    ipkt_expect(ipk_poller_wait(p, ev, 2, 0), -EAGAIN);
    ipk_poller_free(p);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

static void t_info(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, "max_payload: 100000");
    char u[512];
    url(u, sizeof u, &s, "i", NULL);
    static const char *const want[] = {"max_payload    100000", "version", "jetstream      true",
                                       "queue group", NULL};
    ipkt_info_has(u, want);
}

/* ---- JetStream ---- */

static int consumer_a(void *arg)
{
    (void)arg;
    ipk_chan *l;
    IPKT_CHECK(ipk_listen(&l, g_url, NULL) == 0);
    report("ready %ld\n", 0);
    char buf[64];
    for (int i = 0; i < 10; i++) {
        long n = ipk_recv(l, buf, sizeof buf - 1, 20000);
        IPKT_CHECK(n > 0);
        buf[n] = '\0';
        report("got %ld\n", atol(buf));
    }
    report("paused %ld\n", 0);
    for (;;) /* holding what was pushed to it, unacknowledged, until killed */
        pause();
}

static int consumer_b(void *arg)
{
    (void)arg;
    wait_go();
    return listen_report(0, 5000);
}

/* A durable consumer killed with kill -9 loses nothing: its successor gets every message it
 * had not received, those pushed to it and not acknowledged included. */
static void t_durable_kill9(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    url(g_url, sizeof g_url, &s, "orders",
        "?stream=ORDERS&durable=billing&ackwait=1000&pending=20");
    assert_int_equal(pipe2(g_pipe, O_CLOEXEC), 0);
    assert_int_equal(pipe2(g_go, O_CLOEXEC), 0);
    pid_t b = ipkt_spawn(consumer_b, NULL);
    pid_t a = ipkt_spawn(consumer_a, NULL);
    close(g_pipe[1]);
    char line[64];
    assert_true(read_line(g_pipe[0], line, sizeof line));
    assert_string_equal(line, "ready 0");
    ipk_chan *d;
    char u[512];
    ipkt_ok(ipk_dial(&d, url(u, sizeof u, &s, "orders", "?stream=ORDERS"), NULL));
    ipkt_expect(ipk_send(d, "x", 1, 0), -EAGAIN); /* a stream's send waits for the ack */
    ipkt_expect(ipk_recv(d, line, sizeof line, 0), IPK_ENOTSUP);
    enum { N = 100 };
    for (int i = 0; i < N; i++) {
        char m[16];
        int k = snprintf(m, sizeof m, "%d", i);
        ipkt_ok(ipk_send(d, m, (size_t)k, 10000));
    }
    int seen_a[N] = {0}, seen_b[N] = {0}, got_a = 0;
    while (read_line(g_pipe[0], line, sizeof line) && strcmp(line, "paused 0") != 0) {
        long v;
        assert_int_equal(sscanf(line, "got %ld", &v), 1);
        seen_a[v]++;
        got_a++;
    }
    assert_int_equal(got_a, 10);
    kill(a, SIGKILL);
    assert_int_equal(ipkt_wait(a), 128 + SIGKILL);
    assert_int_equal(write(g_go[1], "g", 1), 1);
    while (read_line(g_pipe[0], line, sizeof line)) {
        long v;
        assert_int_equal(sscanf(line, "got %ld", &v), 1);
        seen_b[v]++;
    }
    assert_int_equal(ipkt_wait(b), 0);
    for (int i = 0; i < N; i++) {
        if (!seen_a[i] && !seen_b[i])
            fail_msg("message %d lost", i);
        if (!seen_a[i])
            assert_int_equal(seen_b[i], 1);
    }
    ipkt_ok(ipk_close(d));
}

/* ---- a cluster of three ---- */

static void cluster_conf(char *b, size_t n, srv *all, int i)
{
    int k =
        snprintf(b, n, "server_name: n%d\ncluster { name: ipkt, listen: 127.0.0.1:%d, routes: [", i,
                 all[i].cport);
    for (int j = 0; j < 3; j++)
        if (j != i)
            k += snprintf(b + k, n - (size_t)k, "%snats-route://127.0.0.1:%d",
                          k > 0 && b[k - 1] != '[' ? ", " : " ", all[j].cport);
    snprintf(b + k, n - (size_t)k, " ] }");
}

static void t_cluster_failover(void **state)
{
    (void)state;
    srv s[3] = {{0}};
    char conf[3][512], u[256], cu[512], buf[64];
    for (int i = 0; i < 3; i++) {
        s[i].port = free_port();
        s[i].cport = free_port();
        ipkt_path(s[i].dir, sizeof s[i].dir, "nats");
        assert_int_equal(mkdir(s[i].dir, 0700), 0);
    }
    for (int i = 0; i < 3; i++) {
        cluster_conf(conf[i], sizeof conf[i], s, i);
        srv_start(&s[i], conf[i]);
    }
    snprintf(u, sizeof u, "nats://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/ledger", s[0].port,
             s[1].port, s[2].port);
    snprintf(cu, sizeof cu, "%s?stream=LEDGER&replicas=3&reconnect_wait=50", u);
    /* The cluster elects its JetStream leader first: until then the stream cannot be made. */
    ipk_chan *d = NULL;
    int r = -1;
    for (int i = 0; i < 300 && r != 0; i++)
        if ((r = ipk_dial(&d, cu, NULL)) != 0)
            ipkt_msleep(100);
    ipkt_ok(r);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        if (i == N / 2)
            srv_kill(&s[0]); /* one of three, in the middle of the transfer */
        int k = snprintf(buf, sizeof buf, "%d", i);
        ipkt_ok(ipk_send(d, buf, (size_t)k, 60000)); /* acknowledged by the stream */
    }
    ipkt_ok(ipk_close(d));
    ipk_chan *l;
    snprintf(cu, sizeof cu, "%s?stream=LEDGER&durable=audit", u);
    r = -1;
    for (int i = 0; i < 300 && r != 0; i++)
        if ((r = ipk_listen(&l, cu, NULL)) != 0)
            ipkt_msleep(100);
    ipkt_ok(r);
    int seen[N] = {0}, total = 0;
    long n;
    while (total < N && (n = ipk_recv(l, buf, sizeof buf - 1, 20000)) > 0) {
        buf[n] = '\0';
        long v = atol(buf);
        assert_true(v >= 0 && v < N);
        total += !seen[v]++;
    }
    assert_int_equal(total, N); /* every acknowledged message, none lost */
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1); /* and each stored once: retries were deduplicated */
    ipkt_ok(ipk_close(l));
}

/* ---- bridges from the tool ---- */

static void t_relay(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, NULL);
    char in[300], out[300], name[64], u[512], buf[64];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("mq", name);
    snprintf(in, sizeof in, "mq:%s", name);
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("mq", name);
    snprintf(out, sizeof out, "mq:%s", name);
    url(u, sizeof u, &s, "bridge", NULL);
    ipk_chan *src, *dst;
    ipkt_ok(ipk_listen(&src, in, NULL));
    ipkt_ok(ipk_listen(&dst, out, NULL));
    /* nats -> mq: the relay listens on the subject. Probes go until one comes out, so the
     * relay has subscribed before the messages that count are sent. */
    bg back, fwd;
    BG(&back, NULL, "relay", "-2", "dial", u, out);
    ipk_chan *probe;
    ipkt_ok(ipk_dial(&probe, u, NULL));
    long n = -1;
    for (int i = 0; i < 100 && n < 0; i++) {
        ipkt_ok(ipk_send(probe, "probe", 5, 5000));
        n = ipk_recv(dst, buf, sizeof buf, 100);
    }
    ipkt_expect(n, 5);
    while (ipk_recv(dst, buf, sizeof buf, 300) > 0) /* later probes */
        ;
    ipkt_ok(ipk_close(probe));
    /* mq -> nats: the relay dials both. */
    BG(&fwd, NULL, "relay", "-1", "dial", "-2", "dial", "-n", "5", in, u);
    static const unsigned prio[] = {1, 9, 3, 0, 5};
    for (int i = 0; i < 5; i++) {
        ipk_msginfo mi = IPK_MSGINFO_INIT;
        mi.prio = prio[i];
        int k = snprintf(buf, sizeof buf, "m%d", i);
        ipkt_ok(ipk_sendx(src, buf, (size_t)k, &mi, 0));
    }
    run r;
    assert_int_equal(bg_finish(&fwd, &r), 0);
    for (int i = 0; i < 1000 && ipk_undelivered(dst) < 5; i++)
        ipkt_msleep(10);
    kill(back.pid, SIGTERM);
    bg_finish(&back, &r);
    /* The five came through NATS with their priorities: the queue at the end orders them. */
    static const char *const want[] = {"m1", "m4", "m2", "m0", "m3"};
    static const unsigned wprio[] = {9, 5, 3, 1, 0};
    for (int i = 0; i < 5; i++) {
        ipk_msginfo mi;
        n = ipk_recvx(dst, buf, sizeof buf, &mi, 1000);
        ipkt_expect(n, 2);
        assert_memory_equal(buf, want[i], 2);
        assert_int_equal(mi.prio, wprio[i]);
    }
    ipkt_ok(ipk_close(src));
    ipkt_ok(ipk_close(dst));
}

/* ---- credentials and TLS ---- */

/* Sends one message from a dialer to a listener, both opened with the query q: the
 * credentials work both ways. */
static void roundtrip(const srv *s, const char *q)
{
    char u[1024], got[16];
    ipk_chan *l, *d;
    ipkt_ok(ipk_listen(&l, url(u, sizeof u, s, "sec", q), NULL));
    ipkt_ok(ipk_dial(&d, u, NULL));
    ipkt_ok(ipk_send(d, "secret", 6, 5000));
    ipkt_expect(ipk_recv(l, got, sizeof got, 5000), 6);
    assert_memory_equal(got, "secret", 6);
    assert_null(strstr(ipk_addr(d), "password")); /* the name never shows the credentials */
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

/* A dial with query q is refused with code want, and the message says why. */
static void refused(const srv *s, const char *q, int want, const char *why)
{
    char u[1024];
    ipk_chan *d = NULL;
    ipkt_expect(ipk_dial(&d, url(u, sizeof u, s, "sec", q), NULL), want);
    ipkt_errmsg_has(why);
}

static void t_user_password(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, "authorization { user: alice, password: s3cret }");
    roundtrip(&s, "?user=alice&password=s3cret");
    refused(&s, "?user=alice&password=wrong", -EACCES, "Authorization Violation");
    refused(&s, "?user=bob&password=s3cret", -EACCES, "Authorization Violation");
    refused(&s, NULL, -EACCES, "Authorization Violation");
    refused(&s, "?password=s3cret", IPK_EOPTION, "password= without user=");
}

static void t_token(void **state)
{
    (void)state;
    srv s = {0};
    srv_start(&s, "authorization { token: \"t0k-e.n\" }");
    roundtrip(&s, "?token=t0k-e.n");
    refused(&s, "?token=other", -EACCES, "Authorization Violation");
    refused(&s, NULL, -EACCES, "Authorization Violation");
}

/* ---- nkeys, made with openssl (Debian has no `nk`): an Ed25519 key's raw seed and public key,
 * encoded as NATS does (a prefix byte, base32 without padding, a CRC-16/XMODEM). ---- */

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
    }
    return c;
}

static void nkey_encode(const unsigned char *pre, size_t np, const unsigned char *key, char *out)
{
    unsigned char raw[40];
    size_t n = np;
    memcpy(raw, pre, np);
    memcpy(raw + n, key, 32);
    n += 32;
    uint16_t c = crc16(raw, n);
    raw[n++] = (unsigned char)(c & 0xff);
    raw[n++] = (unsigned char)(c >> 8);
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | raw[i];
        for (bits += 8; bits >= 5; bits -= 5)
            *out++ = b32[(acc >> (bits - 5)) & 31];
    }
    if (bits > 0)
        *out++ = b32[(acc << (5 - bits)) & 31];
    *out = '\0';
}

/* The last 32 bytes of a DER file: the raw key of an Ed25519 PKCS#8 or SubjectPublicKeyInfo. */
static void der_tail(const char *path, unsigned char *key)
{
    unsigned char b[128];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    assert_true(n >= 32);
    memcpy(key, b + n - 32, 32);
}

/* Writes a user's nkey file (its public key "U..." and seed "SU...", as `nk -gen user -pubout`
 * does) at path; pub receives the public key. */
static void nkey_make(const char *path, char *pub)
{
    char der[400], cmd[1200], seed[80];
    unsigned char k[32];
    snprintf(der, sizeof der, "%s.der", path);
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm ed25519 -outform DER -out %s.der && "
             "openssl pkey -inform DER -in %s.der -pubout -outform DER -out %s.pub.der",
             path, path, path);
    assert_int_equal(system(cmd), 0);
    der_tail(der, k);
    static const unsigned char spre[2] = {18 << 3 | (20 << 3) >> 5, ((20 << 3) & 31) << 3};
    nkey_encode(spre, 2, k, seed);
    snprintf(der, sizeof der, "%s.pub.der", path);
    der_tail(der, k);
    static const unsigned char upre[1] = {20 << 3};
    nkey_encode(upre, 1, k, pub);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n%s\n", seed, pub);
    fclose(f);
}

static void t_nkey(void **state)
{
    (void)state;
    char good[300], other[300], nopub[300], pub[80], pub2[80], conf[200], q[400];
    ipkt_path(good, sizeof good, "user.nk");
    ipkt_path(other, sizeof other, "other.nk");
    nkey_make(good, pub);
    nkey_make(other, pub2);
    assert_int_equal(pub[0], 'U');
    snprintf(conf, sizeof conf, "authorization { users = [ { nkey: %s } ] }", pub);
    srv s = {0};
    srv_start(&s, conf);
    snprintf(q, sizeof q, "?nkey=%s", good);
    roundtrip(&s, q);
    /* Another key pair, well formed, is not the server's user. */
    snprintf(q, sizeof q, "?nkey=%s", other);
    refused(&s, q, -EACCES, "Authorization Violation");
    refused(&s, NULL, -EACCES, "Authorization Violation");
    snprintf(q, sizeof q, "?nkey=%s.absent", good);
    refused(&s, q, IPK_EOPTION, "No such file or directory");
    /* A seed alone: the public key the server knows the user by is missing. */
    ipkt_path(nopub, sizeof nopub, "seed.nk");
    FILE *f = fopen(nopub, "w");
    assert_non_null(f);
    fprintf(f, "SUAAAAAAAA\n");
    fclose(f);
    snprintf(q, sizeof q, "?nkey=%s", nopub);
    refused(&s, q, IPK_EOPTION, "no public key (a line U...)");
}

static void t_creds_file(void **state)
{
    (void)state;
    srv s = {0};
    char q[400], path[300];
    srv_start(&s, NULL);
    ipkt_path(path, sizeof path, "absent.creds");
    snprintf(q, sizeof q, "?creds=%s", path);
    refused(&s, q, IPK_EOPTION, "absent.creds");
    ipkt_errmsg_has("No such file or directory");
}

/* ---- TLS: a CA, a server certificate for 127.0.0.1 and a client certificate, made with the
 * openssl tool in the test's own directory. ---- */

typedef struct pki {
    char dir[300], ca[340], srv_cert[340], srv_key[340], cli_cert[340], cli_key[340];
} pki;

static void pki_make(pki *p)
{
    char cmd[3000];
    ipkt_path(p->dir, sizeof p->dir, "pki");
    assert_int_equal(mkdir(p->dir, 0700), 0);
    snprintf(p->ca, sizeof p->ca, "%s/ca.pem", p->dir);
    snprintf(p->srv_cert, sizeof p->srv_cert, "%s/server.pem", p->dir);
    snprintf(p->srv_key, sizeof p->srv_key, "%s/server.key", p->dir);
    snprintf(p->cli_cert, sizeof p->cli_cert, "%s/client.pem", p->dir);
    snprintf(p->cli_key, sizeof p->cli_key, "%s/client.key", p->dir);
    snprintf(cmd, sizeof cmd,
             "cd %s && exec >openssl.log 2>&1 && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=ipkt-ca && "
             "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' >server.ext && "
             "printf 'extendedKeyUsage=clientAuth\\n' >client.ext && "
             "for who in server client; do "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout $who.key -out $who.csr -subj /CN=ipkt-$who && "
             "openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-days 2 -extfile $who.ext -out $who.pem || exit 1; done",
             p->dir);
    assert_int_equal(system(cmd), 0);
}

static void t_tls(void **state)
{
    (void)state;
    pki p;
    pki_make(&p);
    char conf[1200], q[1200];
    srv s = {0};
    snprintf(conf, sizeof conf, "tls { cert_file: \"%s\", key_file: \"%s\", timeout: 30 }",
             p.srv_cert, p.srv_key);
    srv_start(&s, conf);
    snprintf(q, sizeof q, "?ca=%s", p.ca);
    roundtrip(&s, q);
    /* Without the CA the server's certificate cannot be trusted. */
    refused(&s, "?tls=1", -EPROTO, "unable to get local issuer certificate");
    /* A client that did not ask for TLS follows a server that requires it (libnats does), and
     * fails the same way without the CA. */
    refused(&s, NULL, -EPROTO, "?ca=FILE names the CA");
    snprintf(q, sizeof q, "?ca=%s/absent.pem", p.dir);
    refused(&s, q, IPK_EOPTION, "ca: ");
    ipkt_errmsg_has("absent.pem");
    snprintf(q, sizeof q, "?ca=%s&cert=%s", p.ca, p.cli_cert);
    refused(&s, q, IPK_EOPTION, "cert= and key= go together");
    snprintf(q, sizeof q, "?ca=%s&cert=%s&key=%s/absent.key", p.ca, p.cli_cert, p.dir);
    refused(&s, q, IPK_EOPTION, "cert: ");
    ipkt_errmsg_has("absent.key");
}

static void t_mutual_tls(void **state)
{
    (void)state;
    pki p;
    pki_make(&p);
    char conf[1500], q[1200];
    srv s = {0};
    snprintf(conf, sizeof conf,
             "tls { cert_file: \"%s\", key_file: \"%s\", ca_file: \"%s\", verify: true, "
             "timeout: 30 }",
             p.srv_cert, p.srv_key, p.ca);
    srv_start(&s, conf);
    snprintf(q, sizeof q, "?ca=%s&cert=%s&key=%s", p.ca, p.cli_cert, p.cli_key);
    roundtrip(&s, q);
    /* No client certificate: the server closes the connection after the handshake, which
     * libnats reports as a protocol error; the message says what is missing. */
    snprintf(q, sizeof q, "?ca=%s", p.ca);
    refused(&s, q, -EPROTO, "wants ?cert=FILE&key=FILE");
}

IPKT_MAIN(cmocka_unit_test(t_sizes), cmocka_unit_test(t_wait_and_drops),
          cmocka_unit_test(t_timeouts_and_errors), cmocka_unit_test(t_queue_group),
          cmocka_unit_test(t_request_reply), cmocka_unit_test(t_poller),
          cmocka_unit_test(t_poll_switch), cmocka_unit_test(t_info),
          cmocka_unit_test(t_durable_kill9), cmocka_unit_test(t_cluster_failover),
          cmocka_unit_test(t_relay), cmocka_unit_test(t_user_password), cmocka_unit_test(t_token),
          cmocka_unit_test(t_nkey), cmocka_unit_test(t_creds_file), cmocka_unit_test(t_tls),
          cmocka_unit_test(t_mutual_tls))
