/*
 * nats_vs_raw.c - ipckit's nats: beside plain libnats code doing the same thing, in one run,
 * against one nats-server this program starts on a free loopback port (issue 14, "Performance"):
 *
 *   T0  one-way throughput, sends not waited for: ipk_send(d, m, len, 0) into a listener's
 *       ipk_recv, beside natsConnection_Publish into natsSubscription_NextMsg (a synchronous
 *       subscription: the message is taken in the application's thread, as ipk_recv does).
 *       An ipckit dialer's message carries its reply inbox (the listener may answer), so two
 *       pairs are compared: the default dialer beside libnats's PublishRequest with an inbox
 *       (the same message on the wire), and a dialer with ?oneway=1 (no inbox) beside
 *       natsConnection_Publish.
 *   T1  one-way throughput, each send confirmed by the server: ipk_send(d, m, len, 5000) (it
 *       returns once the server answered a PING), beside natsConnection_Publish (or
 *       PublishRequest) followed by natsConnection_FlushTimeout - the same guarantee by hand.
 *   R   request/reply round trip, answered by a listener's ipk_recv then ipk_send, or by
 *       NextMsg, natsConnection_Publish to the reply subject and natsConnection_FlushTimeout
 *       (the answer confirmed as ipckit's listener confirms its send). Two pairs: ipk_send
 *       with a timeout (confirmed) then ipk_recv, beside PublishRequest, FlushTimeout and
 *       NextMsg on the requester's inbox; and ipk_send with timeout 0 on a dialer with ?asap=1
 *       then ipk_recv, beside natsConnection_Request (which does not wait for a confirmation
 *       either, and writes the request at once as ?asap=1 does).

 * The receiving or answering side is a second process (this program exec'd again with
 * --peer, so that libnats's threads start fresh in it). Both processes are pinned to one CPU
 * (-c), the server to another (-C). Every comparison runs in blocks. A block opens every
 * variant's two ends (a peer process each, a connection each in this process), then the
 * variants take turns, a chunk of messages each (-k chunks per block, the order reversed every
 * other turn; one chunk more, untimed, first), so that what else the machine does meanwhile falls
 on all of them alike; a
 * variant's figure for the block is its messages over the time of its chunks (a chunk ends
 * when its peer has the chunk's last message), or the median of its round trips. A ratio is
 * taken per block, and the median and range of the blocks are printed; beside them, with no
 * target, the CPU time both client processes spent per message (the schedstat run time of all
 * their threads, read around each chunk). Both sides get the same
 * libnats defaults but for the pending limits, which the plain subscriptions are given as
 * ipckit gives its own (raw_limits); neither sets natsOptions_SetSendAsap but the ?asap=1
 * dialer, compared with natsConnection_Request, which writes each request at once as well.
 * Built by bench/CMakeLists.txt when libnats is found. Run (under the machine's lock):
 *   flock /work/bench.lock build/bench/nats_vs_raw [-c CPU] [-C CPU] [-r BLOCKS] [-k CHUNKS]
 *                                                  [-s SIZE] [-t 01R] [-v 0123]
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm_raw.h" /* bl_now, bl_pin, bl_median_d: the yardsticks' helpers */

#include "ipckit.h"

#define NB_MAXBLOCK 64

enum { T0, T1, RR, NTEST };
static const char *const test_name[NTEST] = {
    "T0 throughput, sends not waited for (msg/s)",
    "T1 throughput, each send confirmed by the server (msg/s)",
    "R  request/reply round trip (the median of each block)",
};
static const char *const test_ratio[NTEST] = {
    "msg/s over msg/s, target >= 0.95",
    "msg/s over msg/s, target >= 0.95",
    "round trip over round trip, target <= 1.05",
};
static const int test_n[NTEST] = {500000, 5000, 5000};

static void die(const char *what, const char *why)
{
    fprintf(stderr, "nats_vs_raw: %s: %s\n", what, why);
    exit(2);
}

static void ipk_check(long r, const char *what)
{
    if (r < 0)
        die(what, ipk_errmsg());
}

static void nats_check(natsStatus s, const char *what)
{
    if (s != NATS_OK)
        die(what, natsStatus_GetText(s));
}

/* The pending limits ipckit gives its synchronous subscriptions (?pending= 65536 plus libnats's
 * own 65536 messages, 1 KiB each), given to the plain subscriptions too: like with like. */
static void raw_limits(natsSubscription *sub)
{
    nats_check(natsSubscription_SetPendingLimits(sub, 131072, 131072 * 1024), "pending limits");
}

static void put(int fd, char c)
{
    if (write(fd, &c, 1) != 1)
        die("pipe", strerror(errno));
}

static char get(int fd)
{
    char c;
    if (read(fd, &c, 1) != 1)
        die("pipe", "the peer died");
    return c;
}

/* ---- the peer: receives (T0, T1) or answers (RR) n messages, and says 'c' on its pipe after
 * each chunk of them ---- */

static int peer(int test, int raw, const char *base, int n, int chunk, int fd)
{
    char url[256], buf[65536];
    snprintf(url, sizeof url, "%s", base);
    if (!raw) {
        ipk_chan *l;
        ipk_check(ipk_listen(&l, url, NULL), "listen");
        put(fd, 'r');
        for (int i = 0; i < n; i++) {
            long k = ipk_recv(l, buf, sizeof buf, 30000);
            ipk_check(k, "recv");
            if (test == RR)
                ipk_check(ipk_send(l, buf, (size_t)k, 5000), "answer");
            if ((i + 1) % chunk == 0)
                put(fd, 'c');
        }
        ipk_check(ipk_close(l), "close");
        return 0;
    }
    /* nats://127.0.0.1:PORT/SUBJECT */
    const char *subj = strrchr(base, '/') + 1;
    char srv[128];
    snprintf(srv, sizeof srv, "nats://%.*s", (int)(subj - 1 - (base + 7)), base + 7);
    natsConnection *nc;
    natsSubscription *sub;
    nats_check(natsConnection_ConnectTo(&nc, srv), "connect");
    nats_check(natsConnection_SubscribeSync(&sub, nc, subj), "subscribe");
    raw_limits(sub);
    nats_check(natsConnection_Flush(nc), "flush");
    put(fd, 'r');
    for (int i = 0; i < n; i++) {
        natsMsg *m;
        nats_check(natsSubscription_NextMsg(&m, sub, 30000), "next msg");
        if (test == RR) {
            /* The answer confirmed, as ipckit's listener confirms its send. Without the flush
             * libnats leaves the answer to its flusher thread, which waits about a
             * millisecond before writing: a round trip of ~1 ms instead of ~0.1 ms. */
            nats_check(natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                                              natsMsg_GetDataLength(m)),
                       "answer");
            nats_check(natsConnection_FlushTimeout(nc, 5000), "flush");
        }
        natsMsg_Destroy(m);
        if ((i + 1) % chunk == 0)
            put(fd, 'c');
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    return 0;
}

/* ---- the driver ---- */

static char g_self[4096];
static int g_size = 64;

/* Starts the peer for (test, raw) on subject subj; returns its pid, *rd its pipe. */
static pid_t peer_start(int test, int raw, const char *url, int n, int chunk, int *rd)
{
    int p[2];
    if (pipe(p) != 0)
        die("pipe", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        char t[16], r[16], k[16], c[16], fd[16];
        snprintf(t, sizeof t, "%d", test);
        snprintf(r, sizeof r, "%d", raw);
        snprintf(k, sizeof k, "%d", n);
        snprintf(c, sizeof c, "%d", chunk);
        snprintf(fd, sizeof fd, "%d", p[1]);
        execl(g_self, g_self, "--peer", t, r, url, k, c, fd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    *rd = p[0];
    if (get(p[0]) != 'r')
        die("peer", "not ready");
    return pid;
}

static void peer_end(pid_t pid, int rd)
{
    int st;
    close(rd);
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("peer", "failed");
}

/* CPU time (ns) a process has run, all its threads: the sum of their schedstat run times. */
static int64_t proc_cpu(pid_t pid)
{
    char dir[64], path[sizeof dir + 256 + 16];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (d == NULL)
        die(dir, strerror(errno));
    int64_t sum = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s/schedstat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        long long v;
        if (f != NULL && fscanf(f, "%lld", &v) == 1)
            sum += v;
        if (f != NULL)
            fclose(f);
    }
    closedir(d);
    return sum;
}

/* One variant of a test in a block: its peer and its dialing end, open for the whole block.
 * x: 0 ipckit, 1 plain libnats, 2 ipckit's other way, 3 libnats's other way (see main). */
typedef struct side {
    int test, x;
    pid_t pid;
    int rd;
    ipk_chan *d;
    natsConnection *nc;
    natsSubscription *isub;
    char inbox[64];
    char subj[64];
    int64_t ns;  /* time spent in this block's chunks */
    int64_t cpu; /* CPU time of both client processes meanwhile (while a chunk runs, the other
                    variants' connections and peers are idle) */
    int done;    /* messages sent (T0, T1) or round trips made (RR) */
} side;

static void side_open(side *s, int test, int x, const char *url, int n, int chunk)
{
    memset(s, 0, sizeof *s);
    s->test = test;
    s->x = x;
    s->pid = peer_start(test, x % 2, url, n, chunk, &s->rd);
    if (x % 2 == 0) {
        /* x 2: a dialer with ?oneway=1 (plain publishes; T0, T1), or ?asap=1 (RR) */
        char du[160];
        snprintf(du, sizeof du, "%s%s", url, x == 0 ? "" : test != RR ? "?oneway=1" : "?asap=1");
        ipk_check(ipk_dial(&s->d, du, NULL), "dial");
        return;
    }
    const char *subj = strrchr(url, '/') + 1;
    snprintf(s->subj, sizeof s->subj, "%s", subj);
    char srv[128];
    snprintf(srv, sizeof srv, "nats://%.*s", (int)(subj - 1 - (url + 7)), url + 7);
    nats_check(natsConnection_ConnectTo(&s->nc, srv), "connect");
    if (x == 3) { /* each message carries a reply inbox, as an ipckit dialer's does */
        natsInbox *ib;
        nats_check(natsInbox_Create(&ib), "inbox");
        snprintf(s->inbox, sizeof s->inbox, "%s", ib);
        natsInbox_Destroy(ib);
        nats_check(natsConnection_SubscribeSync(&s->isub, s->nc, s->inbox), "subscribe inbox");
        raw_limits(s->isub);
        nats_check(natsConnection_Flush(s->nc), "flush");
    }
}

/* k more messages (T0, T1: until the peer has them) or round trips (RR: each one's time in
 * lat, from lat[s->done] on). */
static void side_run(side *s, int k, double *lat)
{
    char msg[65536], buf[65536];
    memset(msg, 'x', (size_t)g_size);
    int test = s->test, len = g_size;
    int64_t c0 = proc_cpu(getpid()) + proc_cpu(s->pid);
    int64_t t0 = bl_now();
    for (int i = 0; i < k; i++) {
        int64_t t = test == RR ? bl_now() : 0;
        if (s->d != NULL) {
            ipk_check(ipk_send(s->d, msg, (size_t)len,
                               test == T0 || (test == RR && s->x == 2) ? 0 : 5000),
                      "send");
            if (test == RR)
                ipk_check(ipk_recv(s->d, buf, sizeof buf, 5000), "recv");
        } else if (test == RR) {
            natsMsg *m;
            if (s->x == 3) {
                nats_check(natsConnection_PublishRequest(s->nc, s->subj, s->inbox, msg, len),
                           "request");
                nats_check(natsConnection_FlushTimeout(s->nc, 5000), "flush");
                nats_check(natsSubscription_NextMsg(&m, s->isub, 5000), "answer");
            } else {
                nats_check(natsConnection_Request(&m, s->nc, s->subj, msg, len, 5000), "request");
            }
            natsMsg_Destroy(m);
        } else {
            nats_check(s->x == 3 ? natsConnection_PublishRequest(s->nc, s->subj, s->inbox, msg, len)
                                 : natsConnection_Publish(s->nc, s->subj, msg, len),
                       "publish");
            if (test == T1)
                nats_check(natsConnection_FlushTimeout(s->nc, 5000), "flush");
        }
        if (test == RR)
            lat[s->done + i] = (double)(bl_now() - t);
    }
    if (get(s->rd) != 'c') /* the peer has the chunk's every message */
        die("peer", "out of step");
    s->ns += bl_now() - t0;
    s->cpu += proc_cpu(getpid()) + proc_cpu(s->pid) - c0;
    s->done += k;
}

static void side_close(side *s)
{
    if (s->d != NULL)
        ipk_check(ipk_close(s->d), "close");
    natsSubscription_Destroy(s->isub);
    natsConnection_Destroy(s->nc);
    peer_end(s->pid, s->rd);
}

/* ---- the server ---- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &n) != 0)
        die("socket", strerror(errno));
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

static pid_t g_server;

static void server_stop(void)
{
    if (g_server > 0) {
        kill(g_server, SIGTERM);
        waitpid(g_server, NULL, 0);
        g_server = 0;
    }
}

static int server_start(int cpu)
{
    int port = free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    fflush(NULL);
    g_server = fork();
    if (g_server < 0)
        die("fork", strerror(errno));
    if (g_server == 0) {
        bl_pin(cpu);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p, (char *)NULL);
        _exit(127);
    }
    atexit(server_stop);
    for (int i = 0; i < 1000 && !port_open(port); i++) {
        if (waitpid(g_server, NULL, WNOHANG) != 0)
            die("nats-server", "exited (is it installed?)");
        usleep(10000);
    }
    if (!port_open(port))
        die("nats-server", "does not answer");
    return port;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-c CPU] [-C CPU] [-r BLOCKS] [-k CHUNKS] [-s SIZE] [-t 01R] [-v 0123]\n"
            "  -c  CPU of the two client processes (default: the first allowed)\n"
            "  -C  CPU of nats-server (default: the second allowed)\n"
            "  -r  blocks per comparison (default 7; each runs ipckit and libnats)\n"
            "  -k  chunks per block: the variants' turns (default 20, at most 100)\n"
            "  -s  message size in bytes (default 64)\n"
            "  -t  tests: 0 (T0), 1 (T1), R (request/reply) (default 01R)\n"
            "  -v  variants (default 0123; fewer for a profile): 0 ipckit, 1 libnats, 2 ipckit\n"
            "      oneway=1 (R: asap=1, timeout 0), 3 libnats with an inbox (R: by hand)\n",
            prog);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "--peer") == 0)
        return peer(atoi(argv[2]), atoi(argv[3]), argv[4], atoi(argv[5]), atoi(argv[6]),
                    atoi(argv[7]));
    int ca = -1, cb = -1, blocks = 7, chunks = 20;
    const char *tests = "01R", *variants = "0123";
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
    while ((opt = getopt(argc, argv, "c:C:k:r:s:t:v:")) != -1) {
        switch (opt) {
        case 'c':
            ca = atoi(optarg);
            break;
        case 'C':
            cb = atoi(optarg);
            break;
        case 'k':
            chunks = atoi(optarg);
            break;
        case 'r':
            blocks = atoi(optarg);
            break;
        case 's':
            g_size = atoi(optarg);
            break;
        case 't':
            tests = optarg;
            break;
        case 'v':
            variants = optarg;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (cb < 0 || blocks < 1 || blocks > NB_MAXBLOCK || g_size < 1 || g_size > 65536 ||
        chunks < 1 || chunks > 100)
        usage(argv[0]);
    ssize_t k = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (k <= 0)
        die("readlink /proc/self/exe", strerror(errno));
    g_self[k] = '\0';
    setvbuf(stdout, NULL, _IOLBF, 0);
    int port = server_start(cb);
    bl_pin(ca);
    printf("nats: through ipckit beside plain libnats %s, nats-server on CPU %d, clients on CPU "
           "%d, %d-byte messages, %d blocks of %d chunks\n",
           nats_GetVersion(), cb, ca, g_size, blocks, chunks);
    static double lat[4][100000];
    for (int t = 0; t < NTEST; t++) {
        if (!strchr(tests, "01R"[t]))
            continue;
        /* Variants: 0 ipckit, 1 plain libnats, 2 ipckit's other way, 3 libnats's other way.
         * T0, T1: 2 is a dialer with ?oneway=1 (plain publishes), 3 sends what an ipckit dialer
         * sends by default (its reply inbox in every message). R: 0 confirms the request (a
         * send with a timeout), 3 the same by hand (PublishRequest, FlushTimeout, NextMsg on
         * its inbox); 2 sends with timeout 0 and ?asap=1, 1 is natsConnection_Request.
         * Ratios side by side: 0/3 and 2/1. */
        static const char *const vname[2][4] = {
            {"ipckit", "libnats", "ipckit oneway=1", "libnats+inbox"},
            {"ipckit", "libnats Request", "ipckit asap send 0", "libnats req+flush"}};
        static const int of[2][2] = {{0, 3}, {2, 1}};
        int nv = 4, nr = 2, vn = t == RR;
        double v[4][NB_MAXBLOCK], r[2][NB_MAXBLOCK], w[4][NB_MAXBLOCK], cr[2][NB_MAXBLOCK];
        int n = test_n[t];
        char url[128];
        int chunk = n / chunks;
        n = chunk * chunks;
        for (int b = 0; b < blocks; b++) {
            side sd[4];
            for (int x = 0; x < nv; x++) {
                snprintf(url, sizeof url, "nats://127.0.0.1:%d/bench.%d.%d.%d", port, t, b, x);
                if (!strchr(variants, '0' + x))
                    continue;
                /* One chunk more, untimed, first: the connection's and the peer's start. */
                side_open(&sd[x], t, x, url, n + chunk, chunk);
                side_run(&sd[x], chunk, lat[x]);
                sd[x].ns = 0;
                sd[x].cpu = 0;
                sd[x].done = 0;
            }
            /* The variants take turns, a chunk each, the order reversed every other turn:
             * what the machine does meanwhile falls on all of them alike. */
            for (int c = 0; c < chunks; c++)
                for (int j = 0; j < nv; j++) {
                    int x = (b * chunks + c) % 2 ? nv - 1 - j : j;
                    if (strchr(variants, '0' + x))
                        side_run(&sd[x], chunk, lat[x]);
                }
            for (int x = 0; x < nv; x++) {
                if (!strchr(variants, '0' + x))
                    continue;
                side_close(&sd[x]);
                v[x][b] = t == RR ? bl_median_d(lat[x], n) : n / ((double)sd[x].ns / 1e9);
                w[x][b] = (double)sd[x].cpu / n;
            }
            for (int q = 0; q < nr; q++)
                r[q][b] = strchr(variants, '0' + of[q][0]) && strchr(variants, '0' + of[q][1])
                              ? v[of[q][0]][b] / v[of[q][1]][b]
                              : 0;
            for (int q = 0; q < nr; q++)
                cr[q][b] = r[q][b] != 0 ? w[of[q][0]][b] / w[of[q][1]][b] : 0;
        }
        printf("%s, %d messages per block and variant\n", test_name[t], n);
        for (int x = 0; x < nv; x++) {
            if (!strchr(variants, '0' + x))
                continue;
            double sv[NB_MAXBLOCK];
            memcpy(sv, v[x], sizeof sv);
            double m = bl_median_d(sv, blocks);
            if (t == RR)
                printf("  %-16s p50 %8.1f us  [%.1f .. %.1f]\n", vname[vn][x], m / 1000,
                       sv[0] / 1000, sv[blocks - 1] / 1000);
            else
                printf("  %-16s %10.0f msg/s  [%.0f .. %.0f]\n", vname[vn][x], m, sv[0],
                       sv[blocks - 1]);
        }
        for (int q = 0; q < nr; q++) {
            const int *o = of[q];
            if (!strchr(variants, '0' + o[0]) || !strchr(variants, '0' + o[1]))
                continue;
            double rm = bl_median_d(r[q], blocks);
            int met = t == RR ? rm <= 1.05 : rm >= 0.95;
            printf("  ratio %s / %s (%s): %.3f [%.3f .. %.3f] %s\n", vname[vn][o[0]],
                   vname[vn][o[1]], test_ratio[t], rm, r[q][0], r[q][blocks - 1],
                   met ? "met" : "MISSED");
        }
        /* Not a target: the work per message, which the scheduler's whims on a shared machine
         * change less than the time. */
        printf("  CPU per message, both client processes (sender and peer, all threads):");
        for (int x = 0; x < nv; x++) {
            if (!strchr(variants, '0' + x))
                continue;
            double sv[NB_MAXBLOCK];
            memcpy(sv, w[x], sizeof sv);
            printf("%s %s %.0f ns", x ? ";" : "", vname[vn][x], bl_median_d(sv, blocks));
        }
        printf("\n");
        for (int q = 0; q < nr; q++) {
            const int *o = of[q];
            if (!strchr(variants, '0' + o[0]) || !strchr(variants, '0' + o[1]))
                continue;
            double rm = bl_median_d(cr[q], blocks);
            printf("  CPU ratio %s / %s (ns over ns, no target): %.3f [%.3f .. %.3f]\n",
                   vname[vn][o[0]], vname[vn][o[1]], rm, cr[q][0], cr[q][blocks - 1]);
        }
    }
    server_stop();
    return 0;
}
