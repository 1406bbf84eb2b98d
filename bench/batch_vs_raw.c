/*
 * batch_vs_raw.c - issue 16 item 2, like with like: each ipckit end measured against plain code
 * with the SAME plain code on the other end.
 *
 *   w (the writer): a plain reader (read() of 256 KiB, counts bytes, parses nothing) is fed
 *     either by ipk_sendv of 256 messages per call (default options, and with ?flush=0 on unix:
 *     and tcp:, which have coalescing) or by one write() of the same 256 frames (4-byte
 *     big-endian length + payload, laid out contiguously: the very bytes ipk_sendv puts on
 *     the stream). Ratio: ipk_sendv's rate / write()'s rate. A third plain writer, "write()
 *     gathered", keeps its 256 messages apart, as ipk_sendv's callers do, and copies each
 *     behind its header before the same write(): the copy ipckit must make, in plain code;
 *     ipckit's rows are also given against it. -S NS makes the plain writers spin NS ns before
 *     each write() (user time between writes, without the copy).
 *   r (the reader): a plain writer (one write() of as many whole frames as fit 256 KiB, or one
 *     frame when it is larger) feeds either one ipk_recv per message (buffer: size + 64, as
 *     `ipckit bench` gives it; -x: exactly size), or one ipk_peek + ipk_release per message (the
 *     message in place in the channel's buffer, read 256 KiB at a time; nothing copied out), or
 *     a plain reader of 256 KiB at a time. Ratios: each ipckit reader's rate / the plain
 *     reader's. None of the three touches the payload; the two ipckit readers parse every
 *     frame's header (they must, to find the message), the plain reader only counts bytes.
 *
 * Both sides of a variant are forked processes pinned like `ipckit bench`: the reader on the
 * first CPU of the affinity mask, the writer on the second (-c cross) or the first (-c same).
 * The reader times the stream after a warm-up tenth. Every comparison runs in blocks: a block
 * runs every variant in turn (the order reversed every other block), the ratio is taken per
 * block, and the median and range over the blocks are printed. The byte count of a run is
 * calibrated once per row so that the plain variant takes about -d seconds. Beside each rate, the
 * CPU time (user + system) of both processes per KB of the whole run, and its ratio (plain over
 * ipckit, so that above 1 is ipckit cheaper): on one CPU, where the machine's other load takes
 * turns with the two processes, it is the steadier figure.
 *
 * Built by bench/CMakeLists.txt. Run under the benchmark lock, e.g.
 *   flock /work/bench.lock build/bench/batch_vs_raw -t w -m unix,tcp,fifo -c same,cross -r 5
 *   flock /work/bench.lock build/bench/batch_vs_raw -t r -m unix -s 16k,64k,256k,1m -c cross
 * -V I runs only variant I of each row (0 the plain one), e.g. under perf.
 * Below each variant, what it saw (medians over the blocks): KB per read() of the plain reader,
 * and the context switches per MB of the reader and the writer, voluntary (slept) and
 * involuntary (preempted), from wait4()'s rusage.
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
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipckit.h"

#define BV_BATCH 256
#define BV_RBUF  ((size_t)256 << 10)
#define BV_MAXB  64
#define BV_MAXV  4

enum { M_UNIX, M_TCP, M_FIFO };
static const char *const bv_mech[] = {"unix", "tcp", "fifo"};

/* A variant: which end is ipckit (0: neither), and its URL options. */
typedef struct bv_var {
    const char *name;
    int ipk;         /* this variant's measured end goes through ipckit: 1, 2 (ipk_peek) */
    const char *opt; /* the query added to ipckit's address */
    int gather;      /* plain writer: copies each message from its own buffer into the block */
} bv_var;

static int bv_exact;                 /* -x: ipk_recv's buffer is exactly the message size */
static int bv_only = -1;             /* -V I: only variant I (for perf), no ratio */
static long bv_spin;                 /* -S NS: the plain writers spin NS ns before each write() */
static int bv_cpu[2];                /* the first two CPUs of the mask */
static char bv_dir[64];              /* the temporary directory for sockets and FIFOs */
static volatile int64_t *bv_elapsed; /* shared with the children: the reader's time */
static volatile int64_t *bv_reads;   /* and the number of read() calls of a plain reader */

/* What one run saw besides its rate: read() calls of the plain reader, and the context switches
 * (voluntary: it slept; involuntary: it was preempted) of the reader and the writer. */
typedef struct bv_seen {
    double reads, vcs[2], ivcs[2];
} bv_seen;

static void die(const char *what)
{
    fprintf(stderr, "batch_vs_raw: %s: %s\n", what, strerror(errno));
    _exit(2);
}

static void ipk_die(long r, const char *what)
{
    fprintf(stderr, "batch_vs_raw: %s: %s (%s)\n", what, ipk_strerror((int)r), ipk_errmsg());
    _exit(2);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

static void pipe_size(int fd) /* as ipckit's fifo: default (pipesz=1 MiB, best effort) */
{
    if (fcntl(fd, F_GETPIPE_SZ) < (1 << 20))
        fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

/* ---- plain ends ---- */

/* The plain listening socket of a row, made by the parent; *url gets ipckit's address of it. */
static int plain_listen(int mech, char *url, size_t cap)
{
    int fd;
    if (mech == M_UNIX) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%s/s", bv_dir);
        unlink(a.sun_path);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0)
            die("unix listen");
        snprintf(url, cap, "unix:%s", a.sun_path);
        return fd;
    }
    if (mech == M_TCP) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
            getsockname(fd, (struct sockaddr *)&a, &al) != 0)
            die("tcp listen");
        snprintf(url, cap, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
        return fd;
    }
    char p[128];
    snprintf(p, sizeof p, "%s/f", bv_dir);
    unlink(p);
    if (mkfifo(p, 0600) != 0)
        die("mkfifo");
    snprintf(url, cap, "fifo:%s", p);
    return -1;
}

/* A plain end of the row's stream: the accepted socket, or the FIFO opened for `flags`. */
static int plain_open(int mech, int lfd, const char *url, int flags)
{
    int fd;
    if (mech == M_FIFO) {
        if ((fd = open(url + 5, flags | O_CLOEXEC)) < 0)
            die("open fifo");
        pipe_size(fd);
        return fd;
    }
    if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
        die("accept");
    if (mech == M_TCP) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* The dialling plain end: connects to the row's listener, or opens the FIFO for `flags`. */
static int plain_dial(int mech, const char *url, int flags)
{
    int fd;
    if (mech == M_FIFO)
        return plain_open(mech, -1, url, flags);
    if (mech == M_UNIX) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof a.sun_path, "%.100s", url + 5);
        if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
            connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
            die("connect");
        return fd;
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(strrchr(url, ':') + 1)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* Reads `total` bytes 256 KiB at a time, timing the part after `warm`. */
static void plain_read(int fd, uint64_t warm, uint64_t total)
{
    unsigned char *b = malloc(BV_RBUF);
    uint64_t got = 0;
    int64_t t0 = warm == 0 ? now_ns() : 0, reads = 0;
    if (b == NULL)
        die("malloc");
    while (got < total) {
        size_t want = total - got < BV_RBUF ? (size_t)(total - got) : BV_RBUF;
        ssize_t r = read(fd, b, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die(r == 0 ? "read: end of stream too early" : "read");
        if (got < warm && got + (uint64_t)r >= warm)
            t0 = now_ns();
        got += (uint64_t)r;
        reads++;
    }
    *bv_elapsed = now_ns() - t0;
    *bv_reads = reads;
    free(b);
}

/* A block of k whole frames of `size` bytes each: header, then payload. */
static unsigned char *frames(size_t size, size_t k)
{
    unsigned char *b = malloc(k * (size + 4));
    if (b == NULL)
        die("malloc");
    for (size_t i = 0; i < k; i++) {
        unsigned char *f = b + i * (size + 4);
        uint32_t be = htonl((uint32_t)size);
        memcpy(f, &be, 4);
        for (size_t j = 0; j < size; j++)
            f[4 + j] = (unsigned char)(j * 131 + 7);
    }
    return b;
}

/* What a user's loop does to each message before sending: stamps its sequence number. */
static void stamp(unsigned char *blk, size_t size, size_t k, uint64_t seq)
{
    if (size < 8)
        return;
    for (size_t i = 0; i < k; i++, seq++)
        memcpy(blk + i * (size + 4) + 4, &seq, 8);
}

/* ---- the two tests ---- */

/* Test w, writer side: `msgs` messages of `size` in batches of 256, ipk_sendv or write(). */
static void w_writer(const bv_var *v, int mech, const char *url, size_t size, uint64_t msgs)
{
    unsigned char *blk = frames(size, BV_BATCH);
    size_t fsz = size + 4;
    if (!v->ipk) {
        int fd = plain_dial(mech, url, O_WRONLY); /* dials, as ipckit's writer does */
        /* gathered: the messages live apart (as ipk_sendv's callers' do), each is stamped
         * there and copied behind its header in the block, then the block is written */
        unsigned char *src = v->gather ? frames(size, BV_BATCH) : NULL;
        for (uint64_t i = 0; i < msgs; i += BV_BATCH) {
            if (src != NULL) {
                stamp(src, size, BV_BATCH, i);
                for (size_t k = 0; k < BV_BATCH; k++)
                    memcpy(blk + k * fsz + 4, src + k * fsz + 4, size);
            } else {
                stamp(blk, size, BV_BATCH, i);
            }
            for (int64_t until = bv_spin ? now_ns() + bv_spin : 0; now_ns() < until;)
                ;
            write_all(fd, blk, BV_BATCH * fsz);
        }
        free(src);
        close(fd);
        return;
    }
    char u[300];
    snprintf(u, sizeof u, "%s%s", url, v->opt);
    ipk_chan *c;
    long r = ipk_dial(&c, u, NULL);
    if (r < 0)
        ipk_die(r, u);
    ipk_iov iov[BV_BATCH];
    for (size_t i = 0; i < BV_BATCH; i++)
        iov[i] = (ipk_iov){blk + i * fsz + 4, size};
    for (uint64_t i = 0; i < msgs;) {
        stamp(blk, size, BV_BATCH, i);
        size_t done = 0;
        while (done < BV_BATCH) {
            if ((r = ipk_sendv(c, iov + done, BV_BATCH - done, -1)) < 1)
                ipk_die(r, "ipk_sendv");
            done += (size_t)r;
        }
        i += BV_BATCH;
    }
    if ((r = ipk_close(c)) < 0) /* writes what is buffered */
        ipk_die(r, "ipk_close");
}

/* Test r, writer side: `msgs` messages of `size`, as many whole frames per write() as fit
 * 256 KiB (one when a frame is larger). */
static void r_writer(int mech, int lfd, const char *url, size_t size, uint64_t msgs)
{
    size_t k = BV_RBUF / (size + 4);
    if (k < 1)
        k = 1;
    unsigned char *blk = frames(size, k);
    int fd = plain_open(mech, lfd, url, O_WRONLY);
    for (uint64_t i = 0; i < msgs; i += k) {
        size_t n = msgs - i < k ? (size_t)(msgs - i) : k;
        stamp(blk, size, n, i);
        write_all(fd, blk, n * (size + 4));
    }
    close(fd);
    free(blk);
}

/* Test r, reader side through ipckit: one ipk_recv per message, or one ipk_peek and
 * ipk_release (v->ipk == 2). */
static void r_ipk_reader(const bv_var *v, const char *url, size_t size, uint64_t msgs)
{
    char u[300];
    snprintf(u, sizeof u, "%s%s", url, v->opt);
    ipk_chan *c;
    long r = strncmp(u, "fifo:", 5) == 0 ? ipk_listen(&c, u, NULL) : ipk_dial(&c, u, NULL);
    if (r < 0)
        ipk_die(r, u);
    size_t cap = bv_exact ? size : size + 64;
    unsigned char *b = malloc(cap ? cap : 1);
    uint64_t warm = msgs / 10;
    int64_t t0 = warm == 0 ? now_ns() : 0;
    if (b == NULL)
        die("malloc");
    for (uint64_t i = 0; i < msgs; i++) {
        if (i == warm)
            t0 = now_ns();
        if (v->ipk == 2) {
            const void *p;
            if ((r = ipk_peek(c, &p, -1)) != (long)size)
                ipk_die(r < 0 ? r : -EPROTO, "ipk_peek");
            if ((r = ipk_release(c)) != 0)
                ipk_die(r, "ipk_release");
        } else if ((r = ipk_recv(c, b, cap, -1)) != (long)size) {
            ipk_die(r < 0 ? r : -EPROTO, "ipk_recv");
        }
    }
    *bv_elapsed = now_ns() - t0;
    ipk_close(c);
    free(b);
}

/* One variant of a row: forks reader and writer, returns the timed part's rate (bytes/s) and in
 * *cpu the CPU time (user + system) both processes took per byte of the whole run (ns/KB). */
static double run_one(char test, const bv_var *v, int mech, int cross, size_t size, uint64_t msgs,
                      double *cpu, bv_seen *seen)
{
    char url[200];
    int lfd = plain_listen(mech, url, sizeof url);
    uint64_t fsz = size + 4, total = msgs * fsz, warm = (msgs / 10) * fsz;
    pid_t pid[2];
    *bv_elapsed = 0;
    *bv_reads = 0;
    for (int side = 0; side < 2; side++) {
        if ((pid[side] = fork()) < 0)
            die("fork");
        if (pid[side] != 0)
            continue;
        signal(SIGPIPE, SIG_IGN);
        pin(side == 0 ? bv_cpu[0] : bv_cpu[cross ? 1 : 0]);
        if (side == 0 && test == 'w') { /* the plain reader */
            int fd = plain_open(mech, lfd, url, O_RDONLY);
            plain_read(fd, warm, total);
        } else if (side == 0) {
            if (v->ipk) {
                r_ipk_reader(v, url, size, msgs);
            } else {
                /* the plain reader dials like ipckit's: the writer listens */
                int fd = plain_dial(mech, url, O_RDONLY);
                plain_read(fd, warm, total);
            }
        } else if (test == 'w') {
            w_writer(v, mech, url, size, msgs);
        } else {
            r_writer(mech, lfd, url, size, msgs);
        }
        _exit(0);
    }
    if (lfd >= 0)
        close(lfd);
    int bad = 0;
    double ns = 0;
    for (int side = 0; side < 2; side++) {
        int st;
        struct rusage ru;
        if (wait4(pid[side], &st, 0, &ru) != pid[side] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
        ns += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
        if (seen != NULL) {
            seen->vcs[side] = (double)ru.ru_nvcsw;
            seen->ivcs[side] = (double)ru.ru_nivcsw;
        }
    }
    if (seen != NULL)
        seen->reads = (double)*bv_reads;
    if (cpu != NULL)
        *cpu = ns / ((double)total / 1024);
    if (bad || *bv_elapsed <= 0) {
        fprintf(stderr, "batch_vs_raw: %c %s %zu: %s failed\n", test, bv_mech[mech], size, v->name);
        exit(2);
    }
    return (double)(total - warm) / ((double)*bv_elapsed / 1e9);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n, double *lo, double *hi)
{
    double s[BV_MAXB];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmpd);
    *lo = s[0];
    *hi = s[n - 1];
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* One row: every variant in each of `blocks` blocks; prints rates and ratios over variant 0. */
static void row(char test, int mech, int cross, size_t size, int blocks, double secs)
{
    bv_var w_vars[BV_MAXV] = {{"write()", 0, "", 0},
                              {"write() gathered", 0, "", 1},
                              {"ipk_sendv", 1, "", 0},
                              {"ipk_sendv flush=0", 1, "?flush=0", 0}};
    bv_var r_vars[BV_MAXV] = {
        {"read(256K)", 0, "", 0}, {"ipk_recv", 1, "", 0}, {"ipk_peek", 2, "", 0}};
    bv_var *vars = test == 'w' ? w_vars : r_vars;
    int nv = test == 'w' ? (mech == M_FIFO ? 3 : 4) : 3;
    int gathered = test == 'w' ? 1 : -1; /* the plain writer that copies as ipckit must */
    /* calibrate: the plain variant for about `secs` */
    uint64_t msgs = ((uint64_t)64 << 20) / (size + 4);
    msgs = (msgs + BV_BATCH - 1) / BV_BATCH * BV_BATCH;
    double rate = run_one(test, &vars[0], mech, cross, size, msgs, NULL, NULL);
    msgs = (uint64_t)(rate * secs / (double)(size + 4) / 0.9);
    msgs = (msgs + BV_BATCH - 1) / BV_BATCH * BV_BATCH;
    if (msgs < 10 * BV_BATCH)
        msgs = 10 * BV_BATCH;
    double mbs[BV_MAXV][BV_MAXB], ratio[BV_MAXV][BV_MAXB], cpu[BV_MAXV][BV_MAXB],
        cratio[BV_MAXV][BV_MAXB], gratio[BV_MAXV][BV_MAXB], gcratio[BV_MAXV][BV_MAXB];
    bv_seen seen[BV_MAXV][BV_MAXB];
    for (int b = 0; b < blocks; b++) {
        for (int k = 0; k < nv; k++) {
            int i = b % 2 ? nv - 1 - k : k;
            if (bv_only >= 0 && i != bv_only) {
                mbs[i][b] = cpu[i][b] = 1;
                continue;
            }
            mbs[i][b] =
                run_one(test, &vars[i], mech, cross, size, msgs, &cpu[i][b], &seen[i][b]) / 1e6;
        }
        for (int i = 1; i < nv; i++) {
            ratio[i][b] = mbs[i][b] / mbs[0][b];
            cratio[i][b] = cpu[0][b] / cpu[i][b];
            if (gathered > 0) {
                gratio[i][b] = mbs[i][b] / mbs[gathered][b];
                gcratio[i][b] = cpu[gathered][b] / cpu[i][b];
            }
        }
    }
    for (int i = 0; i < nv; i++) {
        if (bv_only >= 0 && i != bv_only)
            continue;
        double lo, hi, m = median(mbs[i], blocks, &lo, &hi);
        printf("%c  %-5s %-6s %8zu  %-18s %9.1f MB/s [%7.1f-%7.1f]  %10.0f msg/s", test,
               bv_mech[mech], cross ? "cross" : "same", size, vars[i].name, m, lo, hi,
               m * 1e6 / (double)(size + 4));
        if (i > 0 && bv_only < 0) {
            m = median(ratio[i], blocks, &lo, &hi);
            printf("  ratio %.2fx [%.2f-%.2f]  (", m, lo, hi);
            for (int b = 0; b < blocks; b++)
                printf("%s%.2f", b ? " " : "", ratio[i][b]);
            printf(")");
        }
        double clo, chi, cm = median(cpu[i], blocks, &clo, &chi);
        printf("\n%c  %-5s %-6s %8zu  %-18s cpu %7.1f ns/KB [%7.1f-%7.1f]", test, bv_mech[mech],
               cross ? "cross" : "same", size, vars[i].name, cm, clo, chi);
        if (i > 0 && bv_only < 0) {
            cm = median(cratio[i], blocks, &clo, &chi);
            printf("  plain cpu / ipckit cpu %.2fx [%.2f-%.2f]", cm, clo, chi);
        }
        if (vars[i].ipk && gathered > 0 && bv_only < 0) {
            m = median(gratio[i], blocks, &lo, &hi);
            printf("\n%c  %-5s %-6s %8zu  %-18s against %s: rate %.2fx [%.2f-%.2f]", test,
                   bv_mech[mech], cross ? "cross" : "same", size, vars[i].name, vars[gathered].name,
                   m, lo, hi);
            m = median(gcratio[i], blocks, &lo, &hi);
            printf("  cpu %.2fx [%.2f-%.2f]", m, lo, hi);
        }
        /* medians over the blocks: KB per plain read(), switches per MB of the whole run */
        double mb = (double)msgs * (double)(size + 4) / (1 << 20), x[BV_MAXB], l, h;
        printf("\n%c  %-5s %-6s %8zu  %-18s seen", test, bv_mech[mech], cross ? "cross" : "same",
               size, vars[i].name);
        if (seen[i][0].reads > 0) {
            for (int b = 0; b < blocks; b++)
                x[b] = (double)msgs * (double)(size + 4) / 1024 / seen[i][b].reads;
            printf(" %7.1f KB/read", median(x, blocks, &l, &h));
        }
        static const char *const who[2] = {"reader", "writer"};
        for (int side = 0; side < 2; side++) {
            for (int b = 0; b < blocks; b++)
                x[b] = seen[i][b].vcs[side] / mb;
            printf("  %s switches/MB: %.1f slept", who[side], median(x, blocks, &l, &h));
            for (int b = 0; b < blocks; b++)
                x[b] = seen[i][b].ivcs[side] / mb;
            printf(" %.1f preempted", median(x, blocks, &l, &h));
        }
        printf("\n");
        fflush(stdout);
    }
}

static size_t parse_size(const char *s)
{
    char *e;
    size_t v = strtoull(s, &e, 10);
    if (*e == 'k' || *e == 'K')
        v <<= 10;
    else if (*e == 'm' || *e == 'M')
        v <<= 20;
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: batch_vs_raw [-t w|r] [-m unix,tcp,fifo] [-c same,cross] "
                    "[-s 64,16k,...] [-r BLOCKS] [-d SECONDS] [-x] [-V VARIANT] [-S NS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    char test = 'w';
    const char *mechs = "unix,tcp,fifo", *cpus = "same,cross", *sizes = NULL;
    int blocks = 5;
    double secs = 0.2;
    int o;
    while ((o = getopt(argc, argv, "t:m:c:s:r:d:xV:S:")) != -1) {
        switch (o) {
        case 't':
            test = optarg[0];
            break;
        case 'm':
            mechs = optarg;
            break;
        case 'c':
            cpus = optarg;
            break;
        case 's':
            sizes = optarg;
            break;
        case 'r':
            blocks = atoi(optarg);
            break;
        case 'd':
            secs = atof(optarg);
            break;
        case 'x':
            bv_exact = 1;
            break;
        case 'V':
            bv_only = atoi(optarg);
            break;
        case 'S':
            bv_spin = atol(optarg);
            break;
        default:
            usage();
        }
    }
    if ((test != 'w' && test != 'r') || blocks < 1 || blocks > BV_MAXB || secs <= 0)
        usage();
    if (sizes == NULL)
        sizes = test == 'w' ? "64" : "16k,64k,256k,1m";
    cpu_set_t set;
    bv_cpu[0] = bv_cpu[1] = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        die("sched_getaffinity");
    for (int i = 0, k = 0; i < CPU_SETSIZE && k < 2; i++)
        if (CPU_ISSET(i, &set))
            bv_cpu[k++] = i;
    if (bv_cpu[1] < 0)
        bv_cpu[1] = bv_cpu[0];
    snprintf(bv_dir, sizeof bv_dir, "/tmp/batch_vs_raw.XXXXXX");
    if (mkdtemp(bv_dir) == NULL)
        die("mkdtemp");
    bv_elapsed = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (bv_elapsed == MAP_FAILED)
        die("mmap");
    bv_reads = bv_elapsed + 1;
    printf("# test %c (%s), reader on CPU %d, writer on CPU %d (cross) or %d (same); "
           "%d blocks; ratio = ipckit / the plain variant, per block\n",
           test,
           test == 'w' ? "writers into one plain 256 KiB reader" : "readers of one plain writer",
           bv_cpu[0], bv_cpu[1], bv_cpu[0], blocks);
    fflush(stdout);
    char ml[64], sl[256];
    const char *cp = cpus;
    while (*cp) {
        size_t cn = strcspn(cp, ",");
        int cross = strncmp(cp, "cross", cn) == 0 && cn == 5;
        snprintf(ml, sizeof ml, "%s", mechs);
        const char *mp = ml;
        while (*mp) {
            size_t mn = strcspn(mp, ",");
            int mech = -1;
            for (int i = 0; i < 3; i++)
                if (strlen(bv_mech[i]) == mn && strncmp(mp, bv_mech[i], mn) == 0)
                    mech = i;
            if (mech < 0)
                usage();
            snprintf(sl, sizeof sl, "%s", sizes);
            const char *sp = sl;
            while (*sp) {
                row(test, mech, cross, parse_size(sp), blocks, secs);
                sp += strcspn(sp, ",");
                sp += *sp == ',';
            }
            mp += mn;
            mp += *mp == ',';
        }
        cp += cn;
        cp += *cp == ',';
    }
    char p[128];
    snprintf(p, sizeof p, "%s/s", bv_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/f", bv_dir);
    unlink(p);
    rmdir(bv_dir);
    return 0;
}
