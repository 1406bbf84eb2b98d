/*
 * engine.c - one measurement between two processes, the same way for every
 * implementation: fork the two sides, pin them, connect them through the ops, then either time
 * every round trip of a ping-pong (latency) or stream messages one way and have the receiver
 * check count, order and checksum (throughput).
 *
 * The two sides coordinate through two plain pipes ("control pipes") that carry only names,
 * a start barrier, credits for lossy mechanisms and a final "done" - never measured data.
 * Results come back through an anonymous shared mapping made before fork.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_WATCHDOG_S 30

typedef struct bench_shared {
    uint64_t cpumask[2];
    char err[2][240];
    _Atomic int first; /* 1 + the side that failed first: its reason is the cause */
    int64_t t0, t1;
    long measured, received, bad_seq;
    uint64_t csum_got, csum_want;
    int64_t samples[];
} bench_shared;

/* Per-process state of the side running in this process. */
static bench_shared *bench_sh;

static int64_t bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_fail(bench_side *sd, const char *fmt, ...)
{
    char *e = bench_sh->err[sd->side];
    if (e[0] == '\0') { /* the first reason is the one that matters */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e, sizeof bench_sh->err[0], fmt, ap);
        va_end(ap);
        int none = 0; /* in a conversation the other side then fails too, of the consequence */
        atomic_compare_exchange_strong(&bench_sh->first, &none, 1 + sd->side);
    }
    return -1;
}

void *bench_side_state(bench_side *sd, size_t size)
{
    if ((sd->st = calloc(1, size)) == NULL)
        bench_fail(sd, "out of memory");
    return sd->st;
}

/* ---- message content and its checks ---- */

void bench_fill(unsigned char *buf, size_t len, uint64_t seq)
{
    for (size_t j = 0; j < len; j++)
        buf[j] = (unsigned char)(j * 131 + 7);
    for (size_t j = 0; j < len && j < 8; j++)
        buf[j] = (unsigned char)(seq >> (8 * j));
}

/* The sequence number sits in the first min(8, len) bytes, little-endian. */
static void bench_put_seq(unsigned char *buf, size_t len, uint64_t seq)
{
    if (len >= 8) { /* little-endian hosts only: x86-64 and arm64, where this runs */
        memcpy(buf, &seq, 8);
        return;
    }
    for (size_t j = 0; j < len && j < 8; j++)
        buf[j] = (unsigned char)(seq >> (8 * j));
}

static uint64_t bench_seq_mask(size_t len)
{
    return len >= 8 ? UINT64_MAX : ((uint64_t)1 << (8 * len)) - 1;
}

/*
 * The receiver's view of the stream: splits bytes into messages of `size` (also when they come
 * from an unframed byte stream in arbitrary pieces), sums each message's little-endian 64-bit
 * words (the last one zero-padded) and checks that the first word is the expected sequence
 * number. The sum over n messages is then known in closed form: n * sum(message 0) + sum(seq).
 */
typedef struct bench_rx {
    size_t size, pos;
    uint64_t word, msum, first, total;
    unsigned fill;
    long msgs, bad_seq;
} bench_rx;

static void bench_rx_word(bench_rx *rx)
{
    if (rx->pos <= 8)
        rx->first = rx->word;
    rx->msum += rx->word;
    rx->word = 0;
    rx->fill = 0;
}

/* A whole message at a message boundary (the usual case): its words summed straight, with
 * fixed-size loads only (a variable-length memcpy is a library call per message). */
static void bench_rx_whole(bench_rx *rx, const unsigned char *p)
{
    size_t size = rx->size, words = size / 8;
    uint64_t sum = 0, v, tail = 0, first;
    for (size_t w = 0; w < words; w++) {
        memcpy(&v, p + 8 * w, 8);
        sum += v;
    }
    for (size_t j = words * 8; j < size; j++) /* little-endian, zero-padded on top */
        tail |= (uint64_t)p[j] << (8 * (j - words * 8));
    sum += tail;
    if (words > 0)
        memcpy(&first, p, 8);
    else
        first = tail;
    if (first != ((uint64_t)rx->msgs & bench_seq_mask(size)))
        rx->bad_seq++;
    rx->total += sum;
    rx->msgs++;
}

static void bench_rx_feed(bench_rx *rx, const unsigned char *p, size_t n)
{
    while (rx->pos == 0 && n >= rx->size && rx->size > 0) {
        bench_rx_whole(rx, p);
        p += rx->size;
        n -= rx->size;
    }
    while (n > 0) {
        size_t take = rx->size - rx->pos < n ? rx->size - rx->pos : n;
        size_t i = 0;
        while (i < take && rx->fill != 0) {
            rx->word |= (uint64_t)p[i++] << (8 * rx->fill++);
            rx->pos++;
            if (rx->fill == 8)
                bench_rx_word(rx);
        }
        if (rx->fill == 0) {
            uint64_t s = 0;
            size_t words = (take - i) / 8;
            if (rx->pos == 0 && words > 0) {
                memcpy(&rx->first, p + i, 8);
            }
            for (size_t w = 0; w < words; w++) {
                uint64_t v;
                memcpy(&v, p + i + 8 * w, 8);
                s += v;
            }
            rx->msum += s;
            i += 8 * words;
            rx->pos += 8 * words;
        }
        while (i < take) {
            rx->word |= (uint64_t)p[i++] << (8 * rx->fill++);
            rx->pos++;
            if (rx->fill == 8)
                bench_rx_word(rx);
        }
        p += take;
        n -= take;
        if (rx->pos == rx->size) {
            if (rx->fill)
                bench_rx_word(rx);
            if (rx->size && rx->first != ((uint64_t)rx->msgs & bench_seq_mask(rx->size)))
                rx->bad_seq++;
            rx->total += rx->msum;
            rx->msum = rx->first = 0;
            rx->pos = 0;
            rx->msgs++;
        }
    }
}

static uint64_t bench_rx_expected(size_t size, long n)
{
    unsigned char *b = malloc(size ? size : 1);
    if (b == NULL)
        return 0;
    bench_fill(b, size, 0);
    bench_rx rx = {.size = size};
    bench_rx_feed(&rx, b, size);
    free(b);
    uint64_t mask = bench_seq_mask(size), sum = rx.total * (uint64_t)n;
    if (size == 0)
        return 0;
    for (long i = 0; i < n; i++)
        sum += (uint64_t)i & mask;
    return sum;
}

/* ---- control pipes ---- */

static int ctl_write(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int ctl_read(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- CPUs ---- */

/* The first two CPUs this process may run on. */
static void bench_two_cpus(int cpu[2])
{
    cpu_set_t set;
    cpu[0] = cpu[1] = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int i = 0, k = 0; i < CPU_SETSIZE && k < 2; i++)
        if (CPU_ISSET(i, &set))
            cpu[k++] = i;
    if (cpu[1] < 0)
        cpu[1] = cpu[0];
}

int bench_cpu_of(const bench_spec *s, int side)
{
    return s->cpu == BENCH_CPU_NONE ? -1 : s->pin[side];
}

static int bench_pin(const bench_spec *s, int side)
{
    if (s->cpu == BENCH_CPU_NONE)
        return 0;
    int want = bench_cpu_of(s, side);
    if (want < 0)
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(want, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

static void bench_note_cpu(int side)
{
    int c = sched_getcpu();
    if (c >= 0 && c < 64)
        __atomic_fetch_or(&bench_sh->cpumask[side], (uint64_t)1 << c, __ATOMIC_RELAXED);
}

/* ---- the two sides ---- */

typedef struct bench_proc {
    bench_side sd;
    int rfd, wfd; /* control pipe from and to the peer */
    long warm, total;
} bench_proc;

static int bench_latency(bench_proc *p)
{
    const bench_spec *s = p->sd.spec;
    size_t cap = s->size + 64;
    unsigned char *buf = malloc(cap), *rb = malloc(cap);
    int rc = -1;
    if (buf == NULL || rb == NULL) {
        bench_fail(&p->sd, "out of memory");
        goto out;
    }
    bench_fill(buf, s->size, 0);
    for (long i = 0; i < p->total; i++) {
        if ((i & 4095) == 0)
            bench_note_cpu(p->sd.side);
        if (p->sd.side == BENCH_A) {
            long n = s->ops->recv(&p->sd, rb, cap);
            if (n < 0 || s->ops->send(&p->sd, rb, (size_t)n) < 0)
                goto out;
            continue;
        }
        bench_put_seq(buf, s->size, (uint64_t)i);
        int64_t t0 = bench_now();
        if (s->ops->send(&p->sd, buf, s->size) < 0)
            goto out;
        long n = s->ops->recv(&p->sd, rb, cap);
        int64_t t1 = bench_now();
        if (n < 0)
            goto out;
        if ((size_t)n != s->size || memcmp(rb, buf, s->size < 8 ? s->size : 8) != 0) {
            bench_fail(&p->sd, "round trip %ld came back as %ld bytes or out of order", i, n);
            goto out;
        }
        if (i >= p->warm)
            bench_sh->samples[i - p->warm] = t1 - t0;
    }
    rc = 0;
out:
    free(buf);
    free(rb);
    return rc;
}

/* Lossy mechanisms: the sender keeps at most `window` messages beyond what the receiver has
 * credited; the receiver credits every window/2 messages with a byte on its control pipe. */
static long bench_window(const bench_spec *s)
{
    /* A quarter of the default receive buffer, counting each datagram at twice its size (the
     * kernel charges its whole allocation, headers and slack included). */
    long w = (long)(212992 / 4 / (2 * s->size + 1024));
    return w < 1 ? 1 : w;
}

/* The receiver credits every bench_half() messages. */
static long bench_half(const bench_spec *s)
{
    long h = bench_window(s) / 2;
    return h < 1 ? 1 : h;
}

/* Messages per sendv: up to BENCH_BATCH, about 1 MiB at most. */
static long bench_batch(const bench_spec *s)
{
    long b = (long)((size_t)1 << 20) / (long)s->size;
    if (!s->ops->sendv || s->each || b < 1)
        return 1;
    return b > BENCH_BATCH ? BENCH_BATCH : b;
}

/* The sender's control pipe carries credits ('c') and phase marks ('T' timed phase, 'D' done);
 * waits for `mark`, counting the credits met on the way. */
static int bench_wait_mark(bench_proc *p, char mark, long *credits)
{
    char c;
    do {
        if (ctl_read(p->rfd, &c, 1) != 0)
            return bench_fail(&p->sd, "the receiver went away");
        if (c == 'c')
            ++*credits;
    } while (c != mark);
    return 0;
}

/* Sends messages [from, to) in batches, within the credit window when lossy. */
static int bench_send_range(bench_proc *p, unsigned char **bufs, long from, long to, long *credits)
{
    const bench_spec *s = p->sd.spec;
    long batch = bench_batch(s), window = bench_window(s), half = bench_half(s);
    for (long i = from; i < to;) {
        long k = to - i < batch ? to - i : batch;
        if (s->lossy) {
            while (i >= *credits * half + window)
                if (bench_wait_mark(p, 'c', credits) != 0)
                    return -1;
            if (k > *credits * half + window - i)
                k = *credits * half + window - i;
        }
        for (long j = 0; j < k; j++)
            bench_put_seq(bufs[j], s->size, (uint64_t)(i + j));
        if ((i & 4095) < k)
            bench_note_cpu(p->sd.side);
        if (s->ops->sendv && k > 1) {
            long m = s->ops->sendv(&p->sd, (void *const *)bufs, (size_t)k, s->size);
            if (m < 1)
                return -1;
            i += m; /* what did not go is re-stamped at the top of the loop */
        } else {
            if (s->ops->send(&p->sd, bufs[0], s->size) < 0)
                return -1;
            i++;
        }
    }
    return 0;
}

/*
 * The stream goes in two phases: `warm` messages untimed, then, once the receiver has them all
 * and says 'T', `count` messages timed by the receiver from its 'T' to the last one. So the
 * figure covers exactly the timed messages, whatever the size of the receiver's reads.
 */
static int bench_stream_send(bench_proc *p)
{
    const bench_spec *s = p->sd.spec;
    unsigned char *bufs[BENCH_BATCH];
    long credits = 0;
    int rc = -1;
    memset(bufs, 0, sizeof bufs);
    for (long k = 0; k < bench_batch(s); k++) {
        if ((bufs[k] = malloc(s->size)) == NULL) {
            bench_fail(&p->sd, "out of memory");
            goto out;
        }
        bench_fill(bufs[k], s->size, 0);
    }
    if (bench_send_range(p, bufs, 0, p->warm, &credits) != 0 ||
        bench_wait_mark(p, 'T', &credits) != 0 ||
        bench_send_range(p, bufs, p->warm, p->total, &credits) != 0)
        goto out;
    /* The receiver has everything before the channel is torn down. */
    rc = bench_wait_mark(p, 'D', &credits);
out:
    for (long k = 0; k < BENCH_BATCH; k++)
        free(bufs[k]);
    return rc;
}

/* Receives until rx holds `upto` messages. */
static int bench_recv_upto(bench_proc *p, bench_rx *rx, unsigned char *buf, size_t cap, long upto,
                           long *credited)
{
    const bench_spec *s = p->sd.spec;
    long half = bench_half(s);
    while (rx->msgs < upto) {
        long n;
        if (s->ops->recv_bytes) {
            size_t want = (size_t)(upto - rx->msgs) * s->size - rx->pos;
            n = s->ops->recv_bytes(&p->sd, buf, want < cap ? want : cap);
        } else {
            n = s->ops->recv(&p->sd, buf, cap);
            if (n >= 0 && (size_t)n != s->size)
                return bench_fail(&p->sd, "message %ld has %ld bytes, sent %zu", rx->msgs, n,
                                  s->size);
        }
        if (n < 0)
            return -1;
        bench_rx_feed(rx, buf, (size_t)n);
        if (s->lossy)
            while (rx->msgs / half > *credited && ctl_write(p->wfd, "c", 1) == 0)
                ++*credited;
        if ((rx->msgs & 4095) == 0)
            bench_note_cpu(p->sd.side);
    }
    return 0;
}

static int bench_stream_recv(bench_proc *p)
{
    const bench_spec *s = p->sd.spec;
    size_t cap = s->ops->recv_bytes ? (size_t)256 << 10 : s->size + 64;
    unsigned char *buf = malloc(cap);
    if (buf == NULL)
        return bench_fail(&p->sd, "out of memory");
    bench_rx rx = {.size = s->size};
    long credited = 0;
    int rc = -1;
    if (bench_recv_upto(p, &rx, buf, cap, p->warm, &credited) != 0 ||
        ctl_write(p->wfd, "T", 1) != 0)
        goto out;
    bench_sh->t0 = bench_now();
    if (bench_recv_upto(p, &rx, buf, cap, p->total, &credited) != 0)
        goto out;
    bench_sh->t1 = bench_now();
    bench_sh->measured = p->total - p->warm;
    bench_sh->received = rx.msgs;
    bench_sh->bad_seq = rx.bad_seq;
    bench_sh->csum_got = rx.total;
    bench_sh->csum_want = bench_rx_expected(s->size, p->total);
    rc = ctl_write(p->wfd, "D", 1);
out:
    free(buf);
    return rc;
}

/* Exchanges the names the two sides published, then waits for both to be connected. */
static int bench_connect(bench_proc *p)
{
    const bench_ops *ops = p->sd.spec->ops;
    char mine[512] = "", peer[512];
    uint32_t len;
    if (ops->listen && ops->listen(&p->sd, mine, sizeof mine) < 0)
        return -1;
    len = (uint32_t)strlen(mine);
    if (ctl_write(p->wfd, &len, 4) != 0 || ctl_write(p->wfd, mine, len) != 0 ||
        ctl_read(p->rfd, &len, 4) != 0 || len >= sizeof peer || ctl_read(p->rfd, peer, len) != 0)
        return bench_fail(&p->sd, "the other side failed to start");
    peer[len] = '\0';
    if (ops->open(&p->sd, peer) < 0)
        return -1;
    char c;
    if (ctl_write(p->wfd, "R", 1) != 0 || ctl_read(p->rfd, &c, 1) != 0)
        return bench_fail(&p->sd, "the other side failed to connect");
    return 0;
}

static void bench_side_main(bench_spec *s, int side, int rfd, int wfd)
{
    bench_proc p = {.sd = {.spec = s, .side = side}, .rfd = rfd, .wfd = wfd};
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (bench_pin(s, side) != 0) {
        bench_fail(&p.sd, "cannot pin to a CPU: %s", strerror(errno));
        _exit(1);
    }
    /* Warm-up: a tenth of the run, within bounds; never timed, always checked. */
    long lo = s->mode == BENCH_LATENCY ? 10 : 1, hi = s->mode == BENCH_LATENCY ? 1000 : 10000;
    p.warm = s->count / 10 < lo ? lo : s->count / 10 > hi ? hi : s->count / 10;
    p.total = s->count + p.warm;
    int rc = bench_connect(&p);
    bench_note_cpu(side);
    if (rc == 0 && !(s->solo && side == BENCH_A)) {
        if (s->mode == BENCH_LATENCY)
            rc = bench_latency(&p);
        else
            rc = side == BENCH_A ? bench_stream_recv(&p) : bench_stream_send(&p);
    }
    bench_note_cpu(side);
    if (rc == 0 && s->mode == BENCH_LATENCY) {
        /* Both ends finish their last message before either closes. */
        char c;
        if (ctl_write(wfd, "E", 1) != 0 || ctl_read(rfd, &c, 1) != 0)
            rc = -1;
    }
    if (s->ops->close)
        s->ops->close(&p.sd);
    _exit(rc == 0 ? 0 : 1);
}

/* ---- the parent ---- */

static int bench_pidfd(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Records how child i ended; a failure kills the other. Returns 1 when it failed. */
static int bench_ended(pid_t pid[2], int fd[2], int i, int status)
{
    pid[i] = 0;
    if (fd[i] >= 0)
        close(fd[i]);
    fd[i] = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (pid[1 - i] > 0)
        kill(pid[1 - i], SIGKILL);
    return 1;
}

/*
 * Waits for both children; kills the survivor when one fails or the watchdog fires. Each child
 * is watched through a pidfd; where the kernel has none (before 5.3), by polling waitpid every
 * millisecond.
 */
static int bench_reap(pid_t pid[2], int64_t limit_ns, char *why, size_t cap)
{
    int fd[2] = {bench_pidfd(pid[0]), bench_pidfd(pid[1])};
    int live = 2, bad = 0, status;
    int64_t end = bench_now() + limit_ns;
    while (live > 0) {
        struct pollfd pf[2] = {{fd[0], POLLIN, 0}, {fd[1], POLLIN, 0}};
        int64_t left = end - bench_now();
        int ms = left > 0 ? (int)(left / 1000000) + 1 : 0;
        int blind = (pid[0] > 0 && fd[0] < 0) || (pid[1] > 0 && fd[1] < 0);
        int r = poll(pf, 2, blind && ms > 1 ? 1 : ms);
        if (r < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < 2; i++) {
            if (pid[i] <= 0)
                continue;
            if (fd[i] >= 0 ? (pf[i].revents & POLLIN) && waitpid(pid[i], &status, 0) == pid[i]
                           : waitpid(pid[i], &status, WNOHANG) == pid[i]) {
                bad |= bench_ended(pid, fd, i, status);
                live--;
            }
        }
        if (live > 0 && bench_now() >= end) {
            if (!why[0])
                snprintf(why, cap, "no progress after %lld s (watchdog)",
                         (long long)(limit_ns / 1000000000));
            bad = 1;
            for (int i = 0; i < 2; i++)
                if (pid[i] > 0)
                    kill(pid[i], SIGKILL);
            end = bench_now() + 5000000000LL; /* SIGKILL: they are gone within this */
        }
    }
    return bad ? -1 : 0;
}

static void bench_cpus_str(uint64_t mask, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < 64 && o + 4 < cap; i++)
        if (mask & ((uint64_t)1 << i))
            o += (size_t)snprintf(out + o, cap - o, "%s%d", o ? "," : "", i);
}

static int bench_cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double bench_pct(const int64_t *v, long n, double q)
{
    long k = (long)(q * (double)n + 0.999999) - 1; /* nearest rank */
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return (double)v[k];
}

static void bench_stats(const bench_spec *s, bench_shared *sh, bench_result *r)
{
    if (s->mode == BENCH_LATENCY) {
        long n = s->count;
        int64_t *v = sh->samples;
        qsort(v, (size_t)n, sizeof *v, bench_cmp64);
        double sum = 0;
        for (long i = 0; i < n; i++)
            sum += (double)v[i];
        r->n = n;
        r->min = (double)v[0];
        r->p50 = bench_pct(v, n, 0.50);
        r->p90 = bench_pct(v, n, 0.90);
        r->p99 = bench_pct(v, n, 0.99);
        r->p999 = bench_pct(v, n, 0.999);
        r->max = (double)v[n - 1];
        r->rtps = sum > 0 ? (double)n * 1e9 / sum : 0;
        r->ok = 1;
        return;
    }
    r->n = sh->measured;
    r->received = sh->received;
    r->csum_got = sh->csum_got;
    r->csum_want = sh->csum_want;
    r->csum_ok = sh->csum_got == sh->csum_want && sh->bad_seq == 0;
    r->secs = (double)(sh->t1 - sh->t0) / 1e9;
    if (!r->csum_ok) {
        snprintf(r->err, sizeof r->err, "checksum mismatch (%ld out of order): figure discarded",
                 sh->bad_seq);
        return;
    }
    if (r->secs <= 0 || r->n <= 0) {
        snprintf(r->err, sizeof r->err, "too few messages to time");
        return;
    }
    r->mps = (double)r->n / r->secs;
    r->mbps = r->mps * (double)s->size / 1e6;
    r->ok = 1;
}

void bench_run(bench_spec *s, bench_result *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->label, s->label, sizeof r->label);
    memcpy(r->mech, s->mech, sizeof r->mech);
    r->impl = s->ops->impl;
    r->size = s->size;
    r->mode = s->mode;
    r->cpu = s->cpu;
    r->batch = s->mode == BENCH_THROUGHPUT ? bench_batch(s) : 1;
    if (s->skip) {
        snprintf(r->err, sizeof r->err, "%s", s->skip);
        return;
    }
    if (s->modes && !(s->modes & s->mode)) {
        snprintf(r->err, sizeof r->err, "n/a: %s only",
                 s->modes == BENCH_LATENCY ? "latency" : "throughput");
        return;
    }
    if (s->maxsize && s->size > s->maxsize) {
        snprintf(r->err, sizeof r->err, "n/a: carries at most %zu bytes", s->maxsize);
        return;
    }
    size_t shsz =
        sizeof(bench_shared) + (s->mode == BENCH_LATENCY ? (size_t)s->count * sizeof(int64_t) : 0);
    bench_sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (bench_sh == MAP_FAILED) {
        snprintf(r->err, sizeof r->err, "mmap %zu bytes: %s", shsz, strerror(errno));
        return;
    }
    int ab[2] = {-1, -1}, ba[2] = {-1, -1};
    pid_t pid[2] = {0, 0};
    for (int i = 0; i < 8; i++)
        s->fd[i] = -1;
    if (pipe2(ab, O_CLOEXEC) != 0 || pipe2(ba, O_CLOEXEC) != 0) {
        snprintf(r->err, sizeof r->err, "pipe: %s", strerror(errno));
        goto out;
    }
    if (s->ops->prepare && s->ops->prepare(s) < 0) {
        snprintf(r->err, sizeof r->err, "%s", bench_sh->err[0]);
        goto out;
    }
    int two[2];
    bench_two_cpus(two);
    s->pin[0] = two[0];
    s->pin[1] = s->cpu == BENCH_CPU_SAME ? two[0] : two[1];
    fflush(NULL);
    for (int side = 0; side < 2; side++) {
        pid[side] = fork();
        if (pid[side] == 0) {
            close(side == BENCH_A ? ab[0] : ba[0]);
            close(side == BENCH_A ? ba[1] : ab[1]);
            bench_side_main(s, side, side == BENCH_A ? ba[0] : ab[0],
                            side == BENCH_A ? ab[1] : ba[1]);
        }
        if (pid[side] < 0) {
            snprintf(r->err, sizeof r->err, "fork: %s", strerror(errno));
            if (side == 1 && pid[0] > 0) {
                kill(pid[0], SIGKILL);
                waitpid(pid[0], NULL, 0);
            }
            goto cleanup;
        }
    }
    close(ab[0]), close(ab[1]), close(ba[0]), close(ba[1]);
    ab[0] = ab[1] = ba[0] = ba[1] = -1;
    char why[120] = "";
    if (bench_reap(pid, (int64_t)BENCH_WATCHDOG_S * 1000000000, why, sizeof why) != 0) {
        int f = atomic_load(&bench_sh->first);
        const char *e = bench_sh->err[f ? f - 1 : bench_sh->err[0][0] ? 0 : 1];
        snprintf(r->err, sizeof r->err, "%s", e[0] ? e : why[0] ? why : "a side crashed");
        goto cleanup;
    }
    for (int i = 0; i < 2; i++)
        bench_cpus_str(bench_sh->cpumask[i], r->cpus[i], sizeof r->cpus[i]);
    bench_stats(s, bench_sh, r);
cleanup:
    if (s->ops->cleanup)
        s->ops->cleanup(s);
out:
    for (int i = 0; i < 2; i++) {
        if (ab[i] >= 0)
            close(ab[i]);
        if (ba[i] >= 0)
            close(ba[i]);
    }
    munmap(bench_sh, shsz);
    bench_sh = NULL;
}
