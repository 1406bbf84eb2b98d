/*
 * shm_vs_raw.c - ipckit's shm: ring measured the same way as the raw yardsticks of
 * shm_baseline.c, in the same run, on the same CPUs, with the ratios that issue 4 targets:
 *   round trip p50 (two CPUs)        <= 1.5 x raw cache-line ping-pong (also shown against a
 *                                      two-line ping-pong, the floor for two one-way queues)
 *   one-way 64 B throughput (two CPUs) >= 0.8 x raw fixed-slot SPSC ring
 *   round trip p50 (one CPU)         <= 2 x pipe round trip on that CPU
 * Build (from the repository, after building libipckit.a in build/):
 *   gcc -O2 -std=c11 -Iinclude -Itools/ipckit -o shm_vs_raw bench/shm_vs_raw.c build/libipckit.a
 * or with cmake: include(bench/CMakeLists.shm.cmake). Run: shm_vs_raw [-c A] [-C B] [-r N].
 */
#define SHM_BASELINE_NO_MAIN
#include "shm_baseline.c"

#include "ipckit.h"

static void ipk_check(int r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "%s: %s (%s)\n", what, ipk_strerror(r), ipk_errmsg());
        exit(2);
    }
}

static void ring_url(char *buf, size_t cap, const char *tag, const char *query)
{
    snprintf(buf, cap, "shm:/ipk-bench-%d-%s?%s", (int)getpid(), tag, query);
}

/* Round trip p50 of `size`-byte messages over two rings; the echo child runs on cpu_b. */
static int64_t ipk_roundtrip(int cpu_a, int cpu_b, size_t size)
{
    char req[128], resp[128];
    ring_url(req, sizeof req, "req", "size=64k");
    ring_url(resp, sizeof resp, "resp", "size=64k");
    ipk_chan *rq, *rs;
    ipk_check(ipk_listen(&rq, req, NULL), req);
    ipk_check(ipk_listen(&rs, resp, NULL), resp);
    int n = cpu_a == cpu_b ? BL_RT_N / 4 : BL_RT_N,
        warm = cpu_a == cpu_b ? BL_RT_WARM / 4 : BL_RT_WARM;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        bl_pin(cpu_b);
        ipk_chan *a, *b;
        ipk_check(ipk_dial(&a, req, NULL), req);
        ipk_check(ipk_dial(&b, resp, NULL), resp);
        char m[BL_MSG];
        for (int i = 0; i < n + warm; i++) {
            long k = ipk_recv(a, m, sizeof m, -1);
            ipk_check((int)k, "echo recv");
            ipk_check(ipk_send(b, m, (size_t)k, -1), "echo send");
        }
        ipk_close(a);
        ipk_close(b);
        _exit(0);
    }
    bl_pin(cpu_a);
    char m[BL_MSG] = {0};
    int64_t *s = malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n + warm; i++) {
        int64_t t0 = bl_now();
        ipk_check(ipk_send(rq, m, size, -1), "send");
        ipk_check((int)ipk_recv(rs, m, sizeof m, -1), "recv");
        if (i >= warm)
            s[i - warm] = bl_now() - t0;
    }
    bl_wait(pid);
    int64_t med = bl_median(s, n);
    free(s);
    ipk_close(rq);
    ipk_close(rs);
    return med;
}

/* One-way throughput of 64-byte messages, producer on cpu_b, consumer on cpu_a. */
static double ipk_throughput(int cpu_a, int cpu_b)
{
    char u[128];
    ring_url(u, sizeof u, "tp", "size=64k");
    ipk_chan *c;
    ipk_check(ipk_listen(&c, u, NULL), u);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        bl_pin(cpu_b);
        ipk_chan *p;
        ipk_check(ipk_dial(&p, u, NULL), u);
        unsigned char msg[BL_MSG];
        memset(msg, 'm', sizeof msg);
        for (uint64_t i = 0; i < BL_TP_N; i++) {
            memcpy(msg, &i, sizeof i);
            ipk_check(ipk_send(p, msg, sizeof msg, -1), "send");
        }
        ipk_close(p);
        _exit(0);
    }
    bl_pin(cpu_a);
    unsigned char out[BL_MSG];
    int64_t t0 = 0;
    for (uint64_t i = 0; i < BL_TP_N; i++) {
        ipk_check((int)ipk_recv(c, out, sizeof out, -1), "recv");
        if (i == 0)
            t0 = bl_now();
        uint64_t seq;
        memcpy(&seq, out, sizeof seq);
        if (seq != i) {
            fprintf(stderr, "ipckit ring: got %llu, expected %llu\n", (unsigned long long)seq,
                    (unsigned long long)i);
            exit(2);
        }
    }
    double rate = (double)(BL_TP_N - 1) * 1e9 / (double)(bl_now() - t0);
    bl_wait(pid);
    ipk_close(c);
    return rate;
}

int main(int argc, char **argv)
{
    int ca, cb, reps;
    bl_args(argc, argv, &ca, &cb, &reps);
    if (reps > 64)
        reps = 64;
    int64_t pp[64], pp2[64], ipp[64], ipp8[64], pi[64], ipi[64];
    double rg[64], irg[64];
    for (int i = 0; i < reps; i++) {
        pp[i] = bl_pingpong(ca, cb);
        pp2[i] = bl_pingpong2(ca, cb);
        ipp[i] = ipk_roundtrip(ca, cb, BL_MSG);
        ipp8[i] = ipk_roundtrip(ca, cb, 8);
        rg[i] = bl_ring(ca, cb);
        irg[i] = ipk_throughput(ca, cb);
        pi[i] = bl_pipe(ca);
        ipi[i] = ipk_roundtrip(ca, ca, BL_MSG);
    }
    int64_t mpp2 = bl_median(pp2, reps);
    int64_t mpp = bl_median(pp, reps), mipp = bl_median(ipp, reps), mipp8 = bl_median(ipp8, reps);
    int64_t mpi = bl_median(pi, reps), mipi = bl_median(ipi, reps);
    double mrg = bl_median_d(rg, reps), mirg = bl_median_d(irg, reps);
    double r0 = (double)mipp8 / (double)mpp, r1 = (double)mipp / (double)mpp, r2 = mirg / mrg,
           r3 = (double)mipi / (double)mpi;
    printf("shm: vs raw, CPUs %d and %d, medians of %d runs\n", ca, cb, reps);
    printf("round trip p50, two CPUs:  raw ping-pong %6lld ns  ipckit  8 B %6lld ns  ratio %.2f "
           "(target <= 1.5) %s\n",
           (long long)mpp, (long long)mipp8, r0, r0 <= 1.5 ? "ok" : "MISSED");
    printf("                                                  ipckit 64 B %6lld ns  ratio %.2f\n",
           (long long)mipp, r1);
    printf("  vs raw two-line ping-pong %6lld ns (one line per direction): 8 B ratio %.2f, "
           "64 B ratio %.2f\n",
           (long long)mpp2, (double)mipp8 / (double)mpp2, (double)mipp / (double)mpp2);
    printf("64 B one-way, two CPUs:    raw ring %8.2f M/s  ipckit %6.2f M/s  ratio %.2f "
           "(target >= 0.8) %s\n",
           mrg / 1e6, mirg / 1e6, r2, r2 >= 0.8 ? "ok" : "MISSED");
    printf("round trip p50, one CPU:   pipe %13lld ns  ipckit %6lld ns  ratio %.2f "
           "(target <= 2.0) %s\n",
           (long long)mpi, (long long)mipi, r3, r3 <= 2.0 ? "ok" : "MISSED");
    return 0;
}
