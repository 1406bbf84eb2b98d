/*
 * serve_bench.c - ipckit serve measured as users run it, beside two yardsticks in the same run
 * (issue 13's performance table):
 *
 *   raw     a single-process epoll echo written here with plain system calls (no ipckit): it
 *           reads what arrives and writes it back, which for length-framed requests is a
 *           framed echo; it keeps no state per connection but the kernel's
 *   serve   ipckit serve -w 2 (framed echo, the built-in handler): issue 13's comparison is this,
 *           two worker processes, against the one raw process, both on the same CPU(s)
 *   serve1  ipckit serve -w 1: one worker process against the one raw process, the like-for-like
 *           figure for the server's own cost per request
 *   serveB  (with -B OTHER) ipckit serve -w 2 from another build, in the same rounds: before and
 *           after a change, interleaved
 *   socat   socat TCP-LISTEN:PORT,fork PIPE: a process per connection echoing bytes
 *   exec    ipckit serve -w 2 --exec cat (every request through a coprocess and back), at 16
 *           and 256 connections, against socatx in the same round (their order reversed every
 *           other round)
 *   socatx  socat TCP-LISTEN:PORT,fork EXEC:cat: the same handler behind socat
 *
 * The client is one closed-loop process here: C connections to 127.0.0.1, each sending a 64-byte
 * request (4-byte big-endian length + 64 bytes) as soon as the reply to its last one came back;
 * it counts replies for a fixed time and keeps every round trip's latency. Servers run on the
 * CPUs named by -S, the client on -C (taskset semantics, set with sched_setaffinity); each
 * round runs every server once, in reverse order every other round (raw serve serve1 socat,
 * socat serve1 serve raw, ...), and the report gives each figure's median and spread
 * (min..max) over the rounds and each ratio against raw computed round by round (req/s, p99,
 * CPU per request), then its median.
 *
 * Also: how the connections spread over the workers (1,000 opened in turn, each answering one
 * request before the next opens; read from the server's status address), and memory per idle
 * connection (the servers' summed Pss from /proc/PID/smaps_rollup before and after N
 * connections each echoed one 64-byte or one 40 KB request; kernel socket memory is not in it,
 * for either server).
 *
 * Like with like: every server gets the same client, the same requests and the same CPUs
 * (-S, inherited by a server's workers and children). The raw echo does not parse the frames:
 * it writes back the bytes it read, which for this client (one whole request in flight per
 * connection) are the same bytes serve writes; serve's parse of a 4-byte header is nanoseconds
 * beside the microseconds of the two system calls both make per request.
 *
 * Usage: serve_bench [-b IPCKIT] [-B OTHER_IPCKIT] [-d SECONDS] [-r ROUNDS] [-S CPUS] [-C CPU]
 *        [-n IDLE_CONNS] [-m WHAT] where WHAT is a comma list of rate,exec,spread,mem (default
 *        all); or serve_bench -p PORT [-d SECONDS] [-C CPU]: only the client, against a server
 *        already listening on 127.0.0.1:PORT (to profile that server).
 * Run it under the machine's benchmark lock: flock /work/bench.lock build/bench/serve_bench
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ      64
#define FRAME    (4 + REQ)
#define MAXLAT   (1u << 24)
#define BIGREQ   (40 * 1024)
#define MAXROUND 15

static const char *ipckit_bin = "ipckit", *other_bin;
static double seconds = 3.0;
static int rounds = 3;
static char server_cpus[64] = "1", client_cpu[16] = "0";
static int idle_conns = 10000;
static char tmpdir[256];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "serve_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A CPU list as taskset takes it ("0", "1-3", "0,2"). */
static void pin(const char *list)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (const char *p = list; *p;) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (*end == '-')
            b = strtol(end + 1, &end, 10);
        for (long i = a; i <= b; i++)
            CPU_SET((int)i, &set);
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p)
            break;
    }
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

static void raise_nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* ---- the raw yardstick: one process, epoll, echo what arrives ---- */

static void raw_server(int lfd)
{
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    static char buf[1 << 16];
    struct epoll_event ev[256];
    for (;;) {
        int n = epoll_wait(ep, ev, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t k = read(fd, buf, sizeof buf);
            if (k <= 0) {
                if (k == 0 || errno != EAGAIN)
                    close(fd);
                continue;
            }
            /* A closed-loop client never fills the socket buffer: a short write is finished
             * blocking rather than buffered. */
            for (ssize_t off = 0; off < k;) {
                ssize_t w = write(fd, buf + off, (size_t)(k - off));
                if (w < 0 && errno == EAGAIN) {
                    struct timespec t = {0, 100000};
                    nanosleep(&t, NULL);
                    continue;
                }
                if (w <= 0) {
                    close(fd);
                    break;
                }
                off += w;
            }
        }
    }
}

/* ---- servers ---- */

enum kind { RAW, SERVE, SERVE1, SERVEB, SOCAT, EXEC, SOCATX, EXTERN, NKIND };
static const char *kname[NKIND] = {"raw epoll echo",      "ipckit serve -w 2",
                                   "ipckit serve -w 1",   "-B serve -w 2",
                                   "socat fork",          "ipckit serve -w 2 --exec cat",
                                   "socat fork EXEC:cat", "the server"};

typedef struct srv {
    enum kind kind;
    pid_t pid;
    int port;
    char status[300]; /* serve, exec: the status address */
} srv;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) != 0)
        die("free port");
    close(fd);
    return ntohs(a.sin_port);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_full(int fd, const void *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, (const char *)p + off, n - off);
        if (w <= 0)
            die("write");
        off += (size_t)w;
    }
}

static void read_full(int fd, void *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t r = read(fd, (char *)p + off, n - off);
        if (r <= 0) {
            errno = r == 0 ? ECONNRESET : errno;
            die("read");
        }
        off += (size_t)r;
    }
}

/* One framed request of len bytes and its reply, on a blocking socket. */
static void echo_once(int fd, size_t len)
{
    static unsigned char b[4 + BIGREQ];
    b[0] = (unsigned char)(len >> 24);
    b[1] = (unsigned char)(len >> 16);
    b[2] = (unsigned char)(len >> 8);
    b[3] = (unsigned char)len;
    memset(b + 4, 'a', len);
    write_full(fd, b, 4 + len);
    read_full(fd, b, 4 + len);
}

static void srv_start(srv *s, enum kind kind)
{
    s->kind = kind;
    s->port = free_port();
    snprintf(s->status, sizeof s->status, "unix:%s/status.%d", tmpdir, s->port);
    int lfd = -1;
    if (kind == RAW) {
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)s->port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0)
            die("raw listen");
        fcntl(lfd, F_SETFL, O_NONBLOCK);
    }
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0)
        die("fork");
    if (s->pid == 0) {
        pin(server_cpus);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (kind == RAW)
            raw_server(lfd);
        char url[64], listen_addr[96];
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", s->port);
        snprintf(listen_addr, sizeof listen_addr,
                 "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay", s->port);
        /* The idle timeout out of the way: the memory run holds 10,000 connections idle for
         * longer than the default 60 s while it opens them. */
        if (kind == SERVE || kind == SERVE1 || kind == SERVEB) {
            const char *bin = kind == SERVEB ? other_bin : ipckit_bin;
            execlp(bin, bin, "serve", "-w", kind == SERVE1 ? "1" : "2", "--idle-timeout",
                   "86400000", "--status", s->status, url, (char *)NULL);
        } else if (kind == EXEC)
            execlp(ipckit_bin, ipckit_bin, "serve", "-w", "2", "--idle-timeout", "86400000",
                   "--exec", "cat", "--status", s->status, url, (char *)NULL);
        else
            execlp("socat", "socat", listen_addr, kind == SOCAT ? "PIPE" : "EXEC:cat",
                   (char *)NULL);
        _exit(127);
    }
    if (lfd >= 0)
        close(lfd);
    for (int i = 0; i < 500; i++) { /* until it answers */
        int fd = dial(s->port);
        if (fd >= 0) {
            echo_once(fd, REQ);
            close(fd);
            return;
        }
        usleep(10000);
    }
    fprintf(stderr, "serve_bench: %s did not start\n", kname[kind]);
    exit(1);
}

static void srv_stop(srv *s)
{
    kill(s->pid, s->kind == RAW || s->kind == SOCAT || s->kind == SOCATX ? SIGKILL : SIGTERM);
    waitpid(s->pid, NULL, 0); /* socat's children end with their connections, closed before */
}

/* ---- a server's processes: its pid and its children (workers, socat's per-connection
 * processes, --exec coprocesses are grandchildren and not counted for either server) ---- */

/* Calls fn for pid and each of its children; returns the sum of what fn returns. */
static double tree_sum(pid_t pid, double (*fn)(pid_t))
{
    double sum = fn(pid);
    if (pid <= 0)
        return sum;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return sum;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    for (char *p = buf, *e; *p; p = e) {
        long c = strtol(p, &e, 10);
        if (e == p)
            break;
        sum += fn((pid_t)c);
    }
    return sum;
}

/* CPU time a process has run, in seconds (schedstat: nanoseconds on a CPU). */
static double cpu_s(pid_t pid)
{
    if (pid <= 0) /* -p: a server this program did not start */
        return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "re");
    unsigned long long ns = 0;
    if (f) {
        if (fscanf(f, "%llu", &ns) != 1)
            ns = 0;
        fclose(f);
    }
    return (double)ns / 1e9;
}

/* ---- the closed-loop client ---- */

static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct conn {
    int fd;
    size_t got;
    double t0;
} conn;

static uint32_t *lat; /* round trips, in 100 ns units */
static size_t nlat;

/* Runs C connections for `seconds` after a warm-up; req/s, p99 (microseconds) and the server's
 * CPU time per request (microseconds; socat's per-connection processes included). The machine
 * is shared: req/s depends on what else runs, CPU per request much less. */
static void closed_loop(const srv *s, int nconn, double *rate, double *p99, double *cpu)
{
    conn *c = calloc((size_t)nconn, sizeof *c);
    int ep = epoll_create1(0);
    unsigned char req[FRAME] = {0, 0, 0, REQ}, buf[4096];
    memset(req + 4, 'x', REQ);
    for (int i = 0; i < nconn; i++) {
        c[i].fd = dial(s->port);
        if (c[i].fd < 0)
            die("dial");
        fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &e);
    }
    double start = now_s(), warm = start + 0.5, end = warm + seconds;
    for (int i = 0; i < nconn; i++) {
        c[i].t0 = now_s();
        write_full(c[i].fd, req, FRAME);
    }
    long done = 0;
    nlat = 0;
    double cpu0 = -1;
    struct epoll_event ev[512];
    for (double t = now_s(); t < end; t = now_s()) {
        int n = epoll_wait(ep, ev, 512, 100);
        double tn = now_s();
        if (cpu0 < 0 && tn >= warm)
            cpu0 = tree_sum(s->pid, cpu_s);
        for (int i = 0; i < n; i++) {
            conn *k = &c[ev[i].data.u32];
            ssize_t r = read(k->fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "serve_bench: %s closed a connection\n", kname[s->kind]);
                exit(1);
            }
            k->got += (size_t)r;
            while (k->got >= FRAME) {
                k->got -= FRAME;
                if (tn >= warm) {
                    done++;
                    if (nlat < MAXLAT)
                        lat[nlat++] = (uint32_t)((tn - k->t0) * 1e7);
                }
                if (k->got == 0) {
                    k->t0 = tn;
                    write_full(k->fd, req, FRAME);
                }
            }
        }
    }
    *cpu = (tree_sum(s->pid, cpu_s) - cpu0) * 1e6 / (double)(done ? done : 1);
    *rate = (double)done / (now_s() - warm);
    qsort(lat, nlat, sizeof *lat, cmp);
    *p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] / 10.0 : 0;
    for (int i = 0; i < nconn; i++)
        close(c[i].fd);
    close(ep);
    free(c);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct stat3 {
    double med, lo, hi;
} stat3;

static stat3 summary(const double *v, int n)
{
    double s[MAXROUND];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmpd);
    return (stat3){n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2, s[0], s[n - 1]};
}

/* ---- the status address: conns per worker ---- */

static int status_conns(const srv *s, long *w1, long *w2)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", s->status + 5);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("status connect");
    char b[8192];
    size_t n = 0;
    for (ssize_t r; n < sizeof b - 1 && (r = read(fd, b + n, sizeof b - 1 - n)) > 0;)
        n += (size_t)r;
    b[n] = '\0';
    close(fd);
    const char *p1 = strstr(b, "{\"worker\":1,"), *p2 = strstr(b, "{\"worker\":2,");
    const char *c1 = p1 ? strstr(p1, "\"conns\":") : NULL,
               *c2 = p2 ? strstr(p2, "\"conns\":") : NULL;
    if (!c1 || !c2)
        return -1;
    *w1 = atol(c1 + 8);
    *w2 = atol(c2 + 8);
    return 0;
}

/* ---- memory: Pss of a process tree's members ---- */

static double pss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "re");
    long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Pss: %ld kB", &v) == 1)
            break;
    if (f)
        fclose(f);
    return (double)v;
}

/* Opens n connections, each echoing one request of len bytes (at most 256 at a time), and
 * returns the memory they hold idle, in bytes per connection. */
static double idle_memory(const srv *s, int n, size_t len)
{
    int *fd = malloc((size_t)n * sizeof *fd);
    double before = tree_sum(s->pid, pss_kib);
    for (int i = 0; i < n; i++) {
        fd[i] = dial(s->port);
        if (fd[i] < 0)
            die("dial (idle)");
        echo_once(fd[i], len);
    }
    usleep(300000); /* let the workers finish with their buffers */
    double after = tree_sum(s->pid, pss_kib);
    long w1 = 0, w2 = 0;
    if (s->kind == SERVE && (status_conns(s, &w1, &w2) != 0 || w1 + w2 != n))
        printf("  !!! the server holds %ld connections, not %d: the figure is wrong\n", w1 + w2, n);
    for (int i = 0; i < n; i++)
        close(fd[i]);
    free(fd);
    return (after - before) * 1024.0 / n;
}

static int want(const char *what, const char *m)
{
    return strstr(what, m) != NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: serve_bench [-b IPCKIT] [-B OTHER_IPCKIT] [-d S] [-r N] [-S CPUS] [-C CPU] "
            "[-n CONNS] [-m rate,exec,spread,mem]\n"
            "       serve_bench -p PORT [-d S] [-C CPU]   (only the client, against a server "
            "on 127.0.0.1:PORT)\n"
            "  -b  the ipckit to measure (default: ipckit on PATH)\n"
            "  -B  another ipckit build, measured in the same rounds (rows \"-B serve -w 2\")\n"
            "  -d  seconds measured per figure (after 0.5 s of warm-up; default 3)\n"
            "  -r  rounds (default 3, at most %d); servers alternate within each round\n"
            "  -S  the servers' CPUs (default 1); -C the client's CPU (default 0)\n"
            "  -n  idle connections for the memory figure (default 10000)\n"
            "  -m  what to measure (default all)\n",
            MAXROUND);
}

/* -p: the closed loop alone against a server someone else started (e.g. under perf). */
static int client_only(int port)
{
    srv s = {.kind = EXTERN, .pid = 0, .port = port};
    int nc[2] = {16, 256};
    for (int c = 0; c < 2; c++) {
        double rate, p99, cpu;
        closed_loop(&s, nc[c], &rate, &p99, &cpu);
        printf("127.0.0.1:%d, %d connections: %.0f req/s, p99 %.0f us\n", port, nc[c], rate, p99);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *what = "rate,exec,spread,mem";
    int opt, port = 0;
    while ((opt = getopt(argc, argv, "b:B:d:r:S:C:n:m:p:h")) != -1) {
        switch (opt) {
        case 'b':
            ipckit_bin = optarg;
            break;
        case 'B':
            other_bin = optarg;
            break;
        case 'd':
            seconds = atof(optarg);
            break;
        case 'r':
            rounds = atoi(optarg) > MAXROUND ? MAXROUND : atoi(optarg);
            break;
        case 'S':
            snprintf(server_cpus, sizeof server_cpus, "%s", optarg);
            break;
        case 'C':
            snprintf(client_cpu, sizeof client_cpu, "%s", optarg);
            break;
        case 'n':
            idle_conns = atoi(optarg);
            break;
        case 'm':
            what = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (rounds < 1)
        rounds = 1;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    lat = malloc(MAXLAT * sizeof *lat);
    pin(client_cpu);
    if (port > 0)
        return client_only(port);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/serve_bench.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    int have_socat = system("command -v socat >/dev/null 2>&1") == 0;
    if (!have_socat)
        printf("!!! socat not found: its columns are SKIPPED (apt-get install socat) !!!\n");
    printf("servers on CPU %s, client on CPU %s, %d rounds of %.1f s, 64-byte framed echo\n",
           server_cpus, client_cpu, rounds, seconds);
    if (other_bin)
        printf("-B serve -w 2 is %s, measured in the same rounds as %s\n", other_bin, ipckit_bin);

    if (want(what, "rate")) {
        enum { NK = 5 };
        int nc[2] = {16, 256};
        enum kind ks[NK];
        int nk = 0;
        ks[nk++] = RAW;
        ks[nk++] = SERVE;
        if (other_bin)
            ks[nk++] = SERVEB;
        ks[nk++] = SERVE1;
        if (have_socat)
            ks[nk++] = SOCAT;
        static double rate[2][NK][MAXROUND], p99[2][NK][MAXROUND], ratio[2][NK][MAXROUND],
            pratio[2][NK][MAXROUND], cpu[2][NK][MAXROUND], cratio[2][NK][MAXROUND];
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < nk; i++) {
                /* Every other round in the reverse order: no server always runs first. */
                int k = r % 2 ? nk - 1 - i : i;
                srv s;
                srv_start(&s, ks[k]);
                for (int c = 0; c < 2; c++)
                    closed_loop(&s, nc[c], &rate[c][k][r], &p99[c][k][r], &cpu[c][k][r]);
                srv_stop(&s);
            }
        for (int r = 0; r < rounds; r++)
            for (int c = 0; c < 2; c++)
                for (int k = 0; k < nk; k++) {
                    ratio[c][k][r] = rate[c][k][r] / rate[c][0][r];
                    pratio[c][k][r] = p99[c][k][r] / p99[c][0][r];
                    cratio[c][k][r] = cpu[c][k][r] / cpu[c][0][r];
                }
        printf("\nratios: each round's figure over the raw echo's in the same round, then the "
               "median (min..max) over the rounds\n");
        printf("%-20s %-5s %-23s %-19s %-22s %-19s %-16s %s\n", "server", "conns",
               "req/s med (min..max)", "x raw (range)", "p99 us med (min..max)", "x raw (range)",
               "CPU us/req", "x raw (range)");
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < nk; k++) {
                stat3 a = summary(rate[c][k], rounds), b = summary(ratio[c][k], rounds),
                      p = summary(p99[c][k], rounds), q = summary(pratio[c][k], rounds),
                      u = summary(cpu[c][k], rounds), v = summary(cratio[c][k], rounds);
                printf("%-20.20s %-5d %6.0f (%.0f..%.0f)  %5.2fx (%.2f..%.2f)  %6.0f (%.0f..%.0f)  "
                       "%5.2fx (%.2f..%.2f)  %5.1f (%.1f..%.1f)  %.2fx (%.2f..%.2f)\n",
                       kname[ks[k]], nc[c], a.med, a.lo, a.hi, b.med, b.lo, b.hi, p.med, p.lo, p.hi,
                       q.med, q.lo, q.hi, u.med, u.lo, u.hi, v.med, v.lo, v.hi);
            }
    }

    if (want(what, "exec") && have_socat) {
        int nc[2] = {16, 256};
        printf("\n");
        for (int c = 0; c < 2; c++) {
            double rate[2][MAXROUND], p99[MAXROUND], ratio[MAXROUND], cpu[MAXROUND];
            for (int r = 0; r < rounds; r++) {
                for (int k = 0; k < 2; k++) {
                    srv s;
                    srv_start(&s, (k ^ (r & 1)) ? SOCATX : EXEC); /* reversed every other round */
                    closed_loop(&s, nc[c], &rate[k ^ (r & 1)][r], &p99[r], &cpu[r]);
                    srv_stop(&s);
                }
                ratio[r] = rate[0][r] / rate[1][r];
            }
            stat3 a = summary(rate[0], rounds), b = summary(rate[1], rounds),
                  q = summary(ratio, rounds);
            printf("%d connections: %s %.0f req/s (%.0f..%.0f), %s %.0f req/s (%.0f..%.0f): "
                   "--exec / socat EXEC = %.2fx (%.2f..%.2f)\n",
                   nc[c], kname[EXEC], a.med, a.lo, a.hi, kname[SOCATX], b.med, b.lo, b.hi, q.med,
                   q.lo, q.hi);
        }
    }

    if (want(what, "spread")) {
        srv s;
        srv_start(&s, SERVE);
        enum { N = 1000 };
        int *fd = malloc(N * sizeof *fd);
        for (int i = 0; i < N; i++) {
            fd[i] = dial(s.port);
            echo_once(fd[i], REQ);
        }
        long w1 = 0, w2 = 0;
        usleep(200000);
        if (status_conns(&s, &w1, &w2) == 0)
            printf("\n1000 connections opened in turn: worker 1 %ld, worker 2 %ld (%.2f : 1)\n", w1,
                   w2, w1 > w2 ? (double)w1 / (w2 ? w2 : 1) : (double)w2 / (w1 ? w1 : 1));
        for (int i = 0; i < N; i++)
            close(fd[i]);
        free(fd);
        srv_stop(&s);
    }

    if (want(what, "mem")) {
        printf("\nmemory per idle connection (servers' Pss, user space), %d connections:\n",
               idle_conns);
        size_t sizes[2] = {REQ, BIGREQ};
        enum kind ks[2] = {RAW, SERVE};
        for (int z = 0; z < 2; z++)
            for (int k = 0; k < 2; k++) {
                srv s;
                srv_start(&s, ks[k]);
                double t0 = now_s(), b = idle_memory(&s, idle_conns, sizes[z]);
                printf("  %-20s after one %5zu-byte echo: %8.3f KiB (%.0f s)\n", kname[ks[k]],
                       sizes[z], b / 1024, now_s() - t0);
                srv_stop(&s);
            }
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : 1;
}
