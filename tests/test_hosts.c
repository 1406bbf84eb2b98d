/*
 * test_hosts.c - two hosts emulated on one machine: two network namespaces made for the test
 * (`ip netns add`, unique names) joined by a veth pair with addresses 10.77.X.1/24 and
 * 10.77.X.2/24 that exist only inside them, and an IPC namespace per host, held by a process that
 * sleeps in it; every process of a host joins both namespaces with setns() before it runs or
 * execs. Plain tcp: and udp: between the hosts; the same POSIX queue name and System V key on
 * both without meeting; the guide's queue carried from host A to host B over NATS (a nats-server
 * on each host, clustered across the veth) by two relays, from a producer to a consumer written
 * here (100 messages in order) and from the guide's producer to the guide's consumer (examples/);
 * a JetStream stream on three servers across the hosts, whose durable consumer on B loses its
 * server (kill -9) during a transfer from A and goes on through another, losing nothing.
 *
 * Needs root (CI runs as root): without it the test fails and says so. The namespaces are
 * journalled: the runner kills every process in them and deletes them after each test, even
 * when the test died half-way (harness.c, kind "netns"). Traffic goes only to the addresses
 * above, inside the namespaces.
 */
#include "cli_run.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct host {
    char ns[64];   /* network namespace name, /run/netns/<ns> */
    char addr[32]; /* its end of the veth */
    pid_t holder;  /* sleeps in the host's IPC (and network) namespace */
} host;

static host g_a, g_b;

static void sh(const char *fmt, ...)
{
    char cmd[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("`%s` failed (status %d)", cmd, rc);
}

/* Joins the host's network and IPC namespaces (those of its holder). In a child. */
static int enter(const host *h)
{
    static const char *const kind[] = {"net", "ipc"};
    static const int flag[] = {CLONE_NEWNET, CLONE_NEWIPC};
    for (int i = 0; i < 2; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/%d/ns/%s", (int)h->holder, kind[i]);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, flag[i]) != 0) {
            perror(p);
            return -1;
        }
        close(fd);
    }
    return 0;
}

/* Runs fn(arg) in a child inside host h; journalled. */
static pid_t host_spawn(const host *h, int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(enter(h) == 0 && fn(arg) == 0 ? 0 : 1);
    ipkt_journal_id("pid", pid);
    return pid;
}

/* Runs a program inside host h, its output appended to the file log; journalled. */
static pid_t host_exec(const host *h, const char *log, const char *const *argv)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || enter(h) != 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    ipkt_journal_id("pid", pid);
    return pid;
}

/* Makes one host: its network namespace (journalled first, so the runner removes it whatever
 * happens next) and a holder process that unshares a fresh IPC namespace inside it. */
static void host_make(host *h, const char *tag)
{
    char n[48];
    snprintf(h->ns, sizeof h->ns, "%s%s", ipkt_name(n, sizeof n, ""), tag);
    ipkt_journal("netns", h->ns);
    sh("ip netns add %s", h->ns);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    h->holder = fork();
    assert_true(h->holder >= 0);
    if (h->holder == 0) {
        char path[128];
        snprintf(path, sizeof path, "/run/netns/%s", h->ns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0 || unshare(CLONE_NEWIPC) != 0)
            _exit(1);
        if (write(p[1], "u", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    ipkt_journal_id("pid", h->holder);
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
}

/* Two hosts A and B joined by a veth pair in 10.77.X.0/24. */
static void hosts_up(void)
{
    if (geteuid() != 0)
        fail_msg("test_hosts needs root: it creates network and IPC namespaces (ip netns, "
                 "setns, unshare); run it as root, as CI does");
    memset(&g_a, 0, sizeof g_a);
    memset(&g_b, 0, sizeof g_b);
    host_make(&g_a, "a");
    host_make(&g_b, "b");
    int x = (int)(getpid() % 250) + 1;
    snprintf(g_a.addr, sizeof g_a.addr, "10.77.%d.1", x);
    snprintf(g_b.addr, sizeof g_b.addr, "10.77.%d.2", x);
    /* Made inside A with its peer moved straight into B: no interface in the root namespace. */
    sh("ip -n %s link add veth0 type veth peer name veth1 netns %s", g_a.ns, g_b.ns);
    sh("ip -n %s addr add %s/24 dev veth0", g_a.ns, g_a.addr);
    sh("ip -n %s addr add %s/24 dev veth1", g_b.ns, g_b.addr);
    sh("ip -n %s link set lo up && ip -n %s link set veth0 up", g_a.ns, g_a.ns);
    sh("ip -n %s link set lo up && ip -n %s link set veth1 up", g_b.ns, g_b.ns);
}

/* ---- children talk through pipes: one byte says "ready" ---- */

static int g_p1[2] = {-1, -1}, g_p2[2] = {-1, -1};

static int signal_fd(int fd)
{
    return write(fd, "!", 1) == 1 ? 0 : -1;
}

static int wait_fd(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    if (poll(&p, 1, ms) != 1)
        return -1;
    return read(fd, &c, 1) == 1 ? 0 : -1;
}

/* A fresh pair of pipes for this test; the previous test's ends, where still open, are closed. */
static void pipes(void)
{
    for (int i = 0; i < 2; i++) {
        if (g_p1[i] >= 0)
            close(g_p1[i]);
        if (g_p2[i] >= 0)
            close(g_p2[i]);
    }
    assert_int_equal(pipe(g_p1), 0);
    assert_int_equal(pipe(g_p2), 0);
}

/* ---- plain tcp: and udp: between the hosts ---- */

#define N_SOCK 50

static char g_url[256];

static int sock_listener(void *arg)
{
    int stream = *(int *)arg;
    ipk_chan *l, *c;
    char b[64], want[64];
    IPKT_CHECK(ipk_listen(&l, g_url, NULL) == 0);
    IPKT_CHECK(signal_fd(g_p1[1]) == 0);
    c = l;
    if (stream)
        IPKT_CHECK(ipk_accept(l, &c, 10000) == 0);
    for (int i = 0; i < N_SOCK; i++) {
        long n = ipk_recv(c, b, sizeof b, 10000);
        int k = snprintf(want, sizeof want, "msg %d", i);
        IPKT_CHECK(n == k);
        IPKT_CHECK(memcmp(b, want, (size_t)k) == 0);
    }
    if (stream)
        IPKT_CHECK(ipk_close(c) == 0);
    IPKT_CHECK(ipk_close(l) == 0);
    return 0;
}

static int sock_dialer(void *arg)
{
    (void)arg;
    ipk_chan *d;
    char b[64];
    IPKT_CHECK(wait_fd(g_p1[0], 10000) == 0);
    IPKT_CHECK(ipk_dial(&d, g_url, NULL) == 0);
    for (int i = 0; i < N_SOCK; i++) {
        int k = snprintf(b, sizeof b, "msg %d", i);
        IPKT_CHECK(ipk_send(d, b, (size_t)k, 5000) == 0);
        if (!strncmp(g_url, "udp", 3))
            ipkt_msleep(1); /* a datagram socket has no flow control */
    }
    IPKT_CHECK(ipk_close(d) == 0);
    return 0;
}

static int not_here(void *arg)
{
    (void)arg;
    ipk_chan *l;
    IPKT_CHECK(ipk_listen(&l, g_url, NULL) == -EADDRNOTAVAIL);
    return 0;
}

static void t_tcp_udp(void **state)
{
    (void)state;
    hosts_up();
    static const char *const scheme[] = {"tcp", "udp"};
    for (int s = 0; s < 2; s++) {
        int stream = s == 0;
        pipes();
        snprintf(g_url, sizeof g_url, "%s://%s:%d", scheme[s], g_b.addr, 7000 + s);
        pid_t l = host_spawn(&g_b, sock_listener, &stream);
        pid_t d = host_spawn(&g_a, sock_dialer, NULL);
        assert_int_equal(ipkt_wait(d), 0);
        assert_int_equal(ipkt_wait(l), 0);
    }
    /* B's address is B's: a listener on it inside A is refused. */
    snprintf(g_url, sizeof g_url, "tcp://%s:7000", g_b.addr);
    assert_int_equal(ipkt_wait(host_spawn(&g_a, not_here, NULL)), 0);
}

/* ---- one name, two hosts: POSIX queue /jobs and one System V key on A and on B ---- */

static char g_key[300];

/* Listens on /jobs and on the key, sends "from<h>", and checks that a receive then gets only
 * that. first: A (goes first, then waits for B before receiving), else B. */
static int same_names(void *arg)
{
    int first = *(int *)arg;
    const char *mine = first ? "fromA" : "fromB";
    char sysv[400], b[64];
    snprintf(sysv, sizeof sysv, "sysv:%s?proj=7", g_key);
    const char *const urls[] = {"mq:/jobs", sysv};
    ipk_chan *c[2];
    if (!first)
        IPKT_CHECK(wait_fd(g_p1[0], 10000) == 0);
    for (int i = 0; i < 2; i++) {
        /* A listener creates the object: on B it must not find A's. */
        IPKT_CHECK(ipk_listen(&c[i], urls[i], NULL) == 0);
        if (!first)
            IPKT_CHECK(ipk_recv(c[i], b, sizeof b, 0) == -EAGAIN); /* A's message is not here */
        IPKT_CHECK(ipk_send(c[i], mine, 5, 0) == 0);
    }
    if (first) {
        IPKT_CHECK(signal_fd(g_p1[1]) == 0);
        IPKT_CHECK(wait_fd(g_p2[0], 10000) == 0);
    }
    for (int i = 0; i < 2; i++) {
        IPKT_CHECK(ipk_recv(c[i], b, sizeof b, 0) == 5);
        IPKT_CHECK(memcmp(b, mine, 5) == 0);
        IPKT_CHECK(ipk_recv(c[i], b, sizeof b, 0) == -EAGAIN); /* nor B's here */
    }
    if (!first)
        IPKT_CHECK(signal_fd(g_p2[1]) == 0);
    for (int i = 0; i < 2; i++)
        IPKT_CHECK(ipk_close(c[i]) == 0);
    return 0;
}

static void t_same_names(void **state)
{
    (void)state;
    hosts_up();
    pipes();
    /* One file, one path, so one ftok() key on both hosts (they share the file system). */
    ipkt_path(g_key, sizeof g_key, "key");
    FILE *f = fopen(g_key, "w");
    assert_non_null(f);
    fclose(f);
    ipkt_journal("path", g_key);
    int one = 1, zero = 0;
    pid_t a = host_spawn(&g_a, same_names, &one);
    pid_t b = host_spawn(&g_b, same_names, &zero);
    assert_int_equal(ipkt_wait(b), 0);
    assert_int_equal(ipkt_wait(a), 0);
}

/* ---- the guide's queue from host A to host B over NATS ---- */

#define N_JOBS 100

/* A server's client address, "ADDR:PORT", for port_up. */
typedef struct hostport {
    const char *addr;
    int port;
} hostport;

static int port_up(void *arg)
{
    const hostport *hp = arg;
    const char *addr = hp->addr;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)hp->port)};
    IPKT_CHECK(inet_pton(AF_INET, addr, &a.sin_addr) == 1);
    for (int i = 0; i < 1000; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return 0;
        ipkt_msleep(10);
    }
    fprintf(stderr, "no nats-server at %s:%d\n", addr, hp->port);
    return 1;
}

/* Waits until the nats-server of host h answers at port. */
static void server_up(const host *h, int port)
{
    hostport hp = {h->addr, port};
    assert_int_equal(ipkt_wait(host_spawn(h, port_up, &hp)), 0);
}

/* A nats-server on host h listening on its address, routed to the other host's. */
static void nats_on(const host *h, const host *other, const char *name)
{
    char conf[300], log[310];
    ipkt_path(conf, sizeof conf, name);
    snprintf(log, sizeof log, "%s.log", conf);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "server_name: %s\nlisten: %s:4222\n"
            "cluster {\n  name: ipkt\n  listen: %s:6222\n  routes: [ nats-route://%s:6222 ]\n}\n",
            name, h->addr, h->addr, other->addr);
    fclose(f);
    host_exec(h, log, (const char *const[]){"nats-server", "-c", conf, NULL});
    server_up(h, 4222);
}

/* Host B: the consumer owns B's /jobs and reads it; probes (sent until the route and the
 * subscriptions are in place) are told to the producer and skipped; then every job in order. */
static int consumer(void *arg)
{
    (void)arg;
    ipk_chan *c;
    char b[64], want[64];
    IPKT_CHECK(ipk_listen(&c, "mq:/jobs", NULL) == 0);
    IPKT_CHECK(signal_fd(g_p1[1]) == 0);
    int told = 0, next = 0;
    while (next < N_JOBS) {
        long n = ipk_recv(c, b, sizeof b, 20000);
        IPKT_CHECK(n > 0);
        if (n == 5 && memcmp(b, "probe", 5) == 0) {
            IPKT_CHECK(next == 0); /* no probe after the first job: one publisher, in order */
            if (!told++)
                IPKT_CHECK(signal_fd(g_p2[1]) == 0);
            continue;
        }
        int k = snprintf(want, sizeof want, "job %d", next++);
        if (n != k || memcmp(b, want, (size_t)k) != 0) {
            fprintf(stderr, "consumer: got \"%.*s\", expected \"%s\"\n", (int)n, b, want);
            return 1;
        }
    }
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

/* This host's mq:/jobs once the relay there has made it (10 s at most), or NULL. */
static ipk_chan *dial_jobs(void)
{
    ipk_chan *c = NULL;
    for (int i = 0; i < 500; i++) {
        if (ipk_dial(&c, "mq:/jobs", NULL) == 0)
            return c;
        ipkt_msleep(20);
    }
    return NULL;
}

/* Host A: the producer writes A's /jobs (made by the relay there). */
static int producer(void *arg)
{
    (void)arg;
    ipk_chan *c = dial_jobs();
    char b[64];
    IPKT_CHECK(c != NULL);
    int seen = -1;
    for (int i = 0; i < 200 && seen != 0; i++) {
        IPKT_CHECK(ipk_send(c, "probe", 5, 5000) == 0);
        seen = wait_fd(g_p2[0], 100);
    }
    IPKT_CHECK(seen == 0);
    for (int i = 0; i < N_JOBS; i++) {
        int k = snprintf(b, sizeof b, "job %d", i);
        IPKT_CHECK(ipk_send(c, b, (size_t)k, 5000) == 0);
    }
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

static void t_relay_over_nats(void **state)
{
    (void)state;
    hosts_up();
    pipes();
    nats_on(&g_a, &g_b, "nats-a");
    nats_on(&g_b, &g_a, "nats-b");
    pid_t cons = host_spawn(&g_b, consumer, NULL);
    assert_int_equal(wait_fd(g_p1[0], 10000), 0); /* B's /jobs exists */
    char ua[128], ub[128], la[300], lb[300];
    snprintf(ua, sizeof ua, "nats://%s:4222/jobs", g_a.addr);
    snprintf(ub, sizeof ub, "nats://%s:4222/jobs", g_b.addr);
    ipkt_path(la, sizeof la, "relay-a.log");
    ipkt_path(lb, sizeof lb, "relay-b.log");
    /* B: subscribes to the subject, writes B's queue (the consumer owns it). */
    pid_t rb = host_exec(&g_b, lb,
                         (const char *const[]){BIN, "relay", "-2", "dial", ub, "mq:/jobs", NULL});
    /* A: owns A's queue, publishes what comes into it. */
    pid_t ra = host_exec(&g_a, la, (const char *const[]){BIN, "relay", "mq:/jobs", ua, NULL});
    (void)ra;
    pid_t prod = host_spawn(&g_a, producer, NULL);
    int pr = ipkt_wait(prod), cr = ipkt_wait(cons);
    if (pr != 0 || cr != 0) {
        char b[4096];
        ipkt_slurp(la, b, sizeof b);
        print_error("relay on A:\n%s\n", b);
        ipkt_slurp(lb, b, sizeof b);
        print_error("relay on B:\n%s\n", b);
    }
    assert_int_equal(pr, 0);
    assert_int_equal(cr, 0);
    kill(rb, SIGTERM);
}

/* ---- the guide's own programs (examples/producer, examples/consumer) on the two hosts ---- */

#define EXAMPLES IPKT_BIN_DIR "/examples"

/* Host A: publishes probes on the subject until the consumer side has seen one, then "end". */
static int prober(void *arg)
{
    ipk_chan *d;
    IPKT_CHECK(ipk_dial(&d, arg, NULL) == 0);
    int seen = -1;
    for (int i = 0; i < 200 && seen != 0; i++) {
        IPKT_CHECK(ipk_send(d, "probe", 5, 5000) == 0);
        seen = wait_fd(g_p2[0], 100);
    }
    IPKT_CHECK(seen == 0);
    IPKT_CHECK(ipk_send(d, "end", 3, 5000) == 0);
    IPKT_CHECK(ipk_close(d) == 0);
    return 0;
}

/* Host B: takes the probes out of B's /jobs, up to "end" (one publisher: it comes last). */
static int drainer(void *arg)
{
    (void)arg;
    ipk_chan *c = dial_jobs();
    char b[64];
    IPKT_CHECK(c != NULL);
    IPKT_CHECK(ipk_recv(c, b, sizeof b, 20000) == 5);
    IPKT_CHECK(signal_fd(g_p2[1]) == 0);
    long n;
    while ((n = ipk_recv(c, b, sizeof b, 20000)) == 5)
        ;
    IPKT_CHECK(n == 3 && memcmp(b, "end", 3) == 0);
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

static void t_guide_programs(void **state)
{
    (void)state;
    hosts_up();
    pipes();
    nats_on(&g_a, &g_b, "nats-a");
    nats_on(&g_b, &g_a, "nats-b");
    char ua[128], ub[128], lp[300], lr[300], lc[300], b[4096];
    snprintf(ua, sizeof ua, "nats://%s:4222/jobs", g_a.addr);
    snprintf(ub, sizeof ub, "nats://%s:4222/jobs", g_b.addr);
    ipkt_path(lp, sizeof lp, "producer.log");
    ipkt_path(lr, sizeof lr, "relay.log");
    ipkt_path(lc, sizeof lc, "consumer.log");
    /* B: the relay subscribes and owns B's /jobs; probes until it is reachable from A. */
    host_exec(&g_b, lr, (const char *const[]){BIN, "relay", "-2", "listen", ub, "mq:/jobs", NULL});
    pid_t dr = host_spawn(&g_b, drainer, NULL);
    assert_int_equal(ipkt_wait(host_spawn(&g_a, prober, ua)), 0);
    assert_int_equal(ipkt_wait(dr), 0);
    /* A: the guide's producer writes A's /jobs and leaves it; a relay carries its one message. */
    assert_int_equal(
        ipkt_wait(host_exec(&g_a, lp,
                            (const char *const[]){EXAMPLES "/producer", "mq:/jobs?keep=1", NULL})),
        0);
    assert_int_equal(ipkt_wait(host_exec(&g_a, lr,
                                         (const char *const[]){BIN, "relay", "-1", "dial", "-n",
                                                               "1", "mq:/jobs", ua, NULL})),
                     0);
    /* B: the guide's consumer reads B's /jobs. */
    int rc = ipkt_wait(
        host_exec(&g_b, lc, (const char *const[]){EXAMPLES "/consumer", "mq:/jobs", NULL}));
    ipkt_slurp(lc, b, sizeof b);
    if (rc != 0) {
        print_error("consumer:\n%s\n", b);
        ipkt_slurp(lr, b, sizeof b);
        print_error("relays:\n%s\n", b);
    }
    assert_int_equal(rc, 0);
    has(b, "Now is the winter of our discontent\nMade glorious summer by this sun of York\n");
}

/* ---- JetStream across the hosts: the consumer's server dies during the transfer ---- */

#define N_LEDGER 300

typedef struct jsnode {
    const host *h;
    int port, cport; /* clients, routes */
    pid_t pid;
} jsnode;

/* Three JetStream servers clustered across the veth: one on A, two on B (ports 4222 and 4223;
 * routes 6222 and 6223), so that the cluster keeps a majority when one of B's dies. */
static void js_cluster(jsnode *nd)
{
    char log[3][310];
    for (int i = 0; i < 3; i++) {
        char conf[300], dir[300];
        ipkt_path(conf, sizeof conf, "js.conf");
        ipkt_path(dir, sizeof dir, "js.store");
        snprintf(log[i], sizeof log[i], "%s.log", conf);
        FILE *f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f,
                "server_name: js%d\nlisten: %s:%d\njetstream { store_dir: \"%s\" }\n"
                "cluster {\n  name: ipkt\n  listen: %s:%d\n  routes: [",
                i, nd[i].h->addr, nd[i].port, dir, nd[i].h->addr, nd[i].cport);
        for (int j = 0, k = 0; j < 3; j++)
            if (j != i)
                fprintf(f, "%s nats-route://%s:%d", k++ ? "," : "", nd[j].h->addr, nd[j].cport);
        fprintf(f, " ]\n}\n");
        fclose(f);
        nd[i].pid =
            host_exec(nd[i].h, log[i], (const char *const[]){"nats-server", "-c", conf, NULL});
    }
    for (int i = 0; i < 3; i++) {
        hostport hp = {nd[i].h->addr, nd[i].port};
        if (ipkt_wait(host_spawn(nd[i].h, port_up, &hp)) != 0) {
            char b[4096];
            ipkt_slurp(log[i], b, sizeof b);
            fail_msg("nats-server js%d did not start:\n%s", i, b);
        }
    }
}

/* Opens url as a listener or dialer, again while the cluster elects its JetStream leaders. */
static int js_open(ipk_chan **c, const char *url, int listen)
{
    int r = -1;
    for (int i = 0; i < 300 && r != 0; i++)
        if ((r = listen ? ipk_listen(c, url, NULL) : ipk_dial(c, url, NULL)) != 0)
            ipkt_msleep(100);
    return r;
}

static char g_cons_url[256], g_prod_url[256];

/* Host B: a durable consumer connected to B's first server only (libnats learns the others
 * from it); reports every message it receives ("N\n"), until it has seen each one. */
static int ledger_consumer(void *arg)
{
    (void)arg;
    ipk_chan *l;
    char b[64];
    static int seen[N_LEDGER];
    IPKT_CHECK(js_open(&l, g_cons_url, 1) == 0);
    IPKT_CHECK(signal_fd(g_p1[1]) == 0);
    for (int have = 0; have < N_LEDGER;) {
        long n = ipk_recv(l, b, sizeof b - 1, 60000);
        IPKT_CHECK(n > 0);
        b[n] = '\0';
        int v = atoi(b);
        IPKT_CHECK(v >= 0 && v < N_LEDGER);
        have += !seen[v]++;
        char line[32];
        int k = snprintf(line, sizeof line, "%d\n", v);
        IPKT_CHECK(write(g_p2[1], line, (size_t)k) == k);
    }
    IPKT_CHECK(ipk_close(l) == 0);
    return 0;
}

/* Host A: the first half of the messages, a pause until told (the kill), the second half;
 * every send acknowledged by the stream. */
static int ledger_producer(void *arg)
{
    int go = *(int *)arg;
    ipk_chan *d;
    char b[32];
    IPKT_CHECK(js_open(&d, g_prod_url, 0) == 0);
    for (int i = 0; i < N_LEDGER; i++) {
        if (i == N_LEDGER / 2)
            IPKT_CHECK(wait_fd(go, 120000) == 0);
        int k = snprintf(b, sizeof b, "%d", i);
        IPKT_CHECK(ipk_send(d, b, (size_t)k, 60000) == 0);
    }
    IPKT_CHECK(ipk_close(d) == 0);
    return 0;
}

static void t_jetstream_failover(void **state)
{
    (void)state;
    hosts_up();
    pipes();
    int go[2];
    assert_int_equal(pipe(go), 0);
    jsnode nd[3] = {{&g_a, 4222, 6222, 0}, {&g_b, 4222, 6222, 0}, {&g_b, 4223, 6223, 0}};
    js_cluster(nd);
    snprintf(g_prod_url, sizeof g_prod_url,
             "nats://%s:4222/ledger?stream=LEDGER&replicas=3&reconnect_wait=50", g_a.addr);
    snprintf(g_cons_url, sizeof g_cons_url,
             "nats://%s:4222/ledger?stream=LEDGER&replicas=3&durable=audit&ackwait=2000&"
             "reconnect_wait=50",
             g_b.addr);
    pid_t cons = host_spawn(&g_b, ledger_consumer, NULL);
    assert_int_equal(wait_fd(g_p1[0], 60000), 0); /* subscribed */
    close(g_p2[1]);
    g_p2[1] = -1;
    pid_t prod = host_spawn(&g_a, ledger_producer, &go[0]);
    close(go[0]);
    FILE *in = fdopen(g_p2[0], "r");
    assert_non_null(in);
    g_p2[0] = -1; /* fclose(in) closes it */
    char line[32];
    int seen[N_LEDGER] = {0}, before = 0, after = 0;
    while (before < 50 && fgets(line, sizeof line, in) != NULL)
        before += !seen[atoi(line)]++;
    assert_int_equal(before, 50);
    /* The consumer's server dies with messages still to come; then the rest is sent. */
    kill(nd[1].pid, SIGKILL);
    assert_int_equal(ipkt_wait(nd[1].pid), 128 + SIGKILL);
    assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
    /* Until every message was seen (the servers hold the pipe too: no end of file). */
    while (before + after < N_LEDGER && fgets(line, sizeof line, in) != NULL) {
        int v = atoi(line);
        assert_true(v >= 0 && v < N_LEDGER);
        after += !seen[v]++;
    }
    fclose(in);
    assert_int_equal(ipkt_wait(prod), 0); /* every message acknowledged by the stream */
    assert_int_equal(ipkt_wait(cons), 0); /* and every one received */
    assert_int_equal(before + after, N_LEDGER);
    assert_true(after >= N_LEDGER / 2); /* the second half came through another server */
    for (int i = 0; i < N_LEDGER; i++)
        assert_true(seen[i] >= 1);
}

IPKT_MAIN(cmocka_unit_test(t_tcp_udp), cmocka_unit_test(t_same_names),
          cmocka_unit_test(t_relay_over_nats), cmocka_unit_test(t_guide_programs),
          cmocka_unit_test(t_jetstream_failover))
