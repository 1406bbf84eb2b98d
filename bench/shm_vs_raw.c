/*
 * shm_vs_raw.c - ipckit's shm: ring measured the same way as the raw yardsticks of
 * shm_baseline.c, in the same run, on the same CPUs, with the ratios that issue 4 targets:
 *   round trip p50 (two CPUs)        <= 1.5 x raw cache-line ping-pong (also shown against a
 *                                      two-line ping-pong, the floor for two one-way queues)
 *   one-way 64 B throughput (two CPUs) >= 0.8 x raw fixed-slot SPSC ring
 *   round trip p50 (one CPU)         <= 2 x pipe round trip on that CPU
 * Built by bench/CMakeLists.txt. Run: build/bench/shm_vs_raw [-c A] [-C B] [-r N].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm_raw.h"

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

/* Round trip p50 of `size`-byte messages; the echo child runs on cpu_b. duplex: over one
 * duplex=1 ring (a conversation, as a request/reply client would use it); else over two
 * one-way rings, requests on one and replies on the other. */
static int64_t ipk_roundtrip(int cpu_a, int cpu_b, size_t size, int duplex)
{
    char req[128], resp[128];
    ring_url(req, sizeof req, "req", duplex ? "size=64k&duplex=1" : "size=64k");
    ring_url(resp, sizeof resp, "resp", "size=64k");
    ipk_chan *rq, *rs;
    ipk_check(ipk_listen(&rq, req, NULL), req);
    if (duplex)
        rs = rq;
    else
        ipk_check(ipk_listen(&rs, resp, NULL), resp);
    int n = cpu_a == cpu_b ? BL_RT_N / 4 : BL_RT_N,
        warm = cpu_a == cpu_b ? BL_RT_WARM / 4 : BL_RT_WARM;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        bl_pin(cpu_b);
        ipk_chan *a, *b;
        ipk_check(ipk_dial(&a, req, NULL), req);
        if (duplex)
            b = a;
        else
            ipk_check(ipk_dial(&b, resp, NULL), resp);
        char m[BL_MSG];
        for (int i = 0; i < n + warm; i++) {
            long k = ipk_recv(a, m, sizeof m, -1);
            ipk_check((int)k, "echo recv");
            ipk_check(ipk_send(b, m, (size_t)k, -1), "echo send");
        }
        ipk_close(a);
        if (b != a)
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
    if (rs != rq)
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
    /* Round trips: raw one-line and two-line ping-pongs, then ipckit over one duplex ring (8 B
     * and 48 B ride in the mailbox line, 64 B in the rings) and over two one-way rings. */
    enum { PP, PP2, DX8, DX48, DX64, TW8, TW64, PIPE1, DX1, TW1, NRT };
    int64_t rt[NRT][64];
    double rg[64], irg[64];
    for (int i = 0; i < reps; i++) {
        rt[PP][i] = bl_pingpong(ca, cb);
        rt[PP2][i] = bl_pingpong2(ca, cb);
        rt[DX8][i] = ipk_roundtrip(ca, cb, 8, 1);
        rt[DX48][i] = ipk_roundtrip(ca, cb, 48, 1);
        rt[DX64][i] = ipk_roundtrip(ca, cb, BL_MSG, 1);
        rt[TW8][i] = ipk_roundtrip(ca, cb, 8, 0);
        rt[TW64][i] = ipk_roundtrip(ca, cb, BL_MSG, 0);
        rg[i] = bl_ring(ca, cb);
        irg[i] = ipk_throughput(ca, cb);
        rt[PIPE1][i] = bl_pipe(ca);
        rt[DX1][i] = ipk_roundtrip(ca, ca, 8, 1);
        rt[TW1][i] = ipk_roundtrip(ca, ca, BL_MSG, 0);
    }
    double m[NRT];
    for (int k = 0; k < NRT; k++)
        m[k] = (double)bl_median(rt[k], reps);
    double mrg = bl_median_d(rg, reps), mirg = bl_median_d(irg, reps);
    double r0 = m[DX8] / m[PP], r1 = m[DX48] / m[PP], r2 = mirg / mrg, r3 = m[DX1] / m[PIPE1],
           r4 = m[TW1] / m[PIPE1];
    printf("shm: vs raw, CPUs %d and %d, medians of %d runs\n", ca, cb, reps);
    printf("round trip p50, two CPUs: raw cache-line ping-pong %.0f ns\n", m[PP]);
    printf("  ipckit duplex=1,  8 B  %6.0f ns  ratio %.2f (target <= 1.5) %s\n", m[DX8], r0,
           r0 <= 1.5 ? "ok" : "MISSED");
    printf("  ipckit duplex=1, 48 B  %6.0f ns  ratio %.2f (target <= 1.5) %s\n", m[DX48], r1,
           r1 <= 1.5 ? "ok" : "MISSED");
    printf("  ipckit duplex=1, 64 B  %6.0f ns  ratio %.2f (larger than the mailbox: the rings)\n",
           m[DX64], m[DX64] / m[PP]);
    printf("  ipckit two one-way rings, 8 B %6.0f ns, 64 B %6.0f ns: ratios %.2f, %.2f; against "
           "the raw two-line ping-pong (%.0f ns, one line per direction) %.2f, %.2f\n",
           m[TW8], m[TW64], m[TW8] / m[PP], m[TW64] / m[PP], m[PP2], m[TW8] / m[PP2],
           m[TW64] / m[PP2]);
    printf("64 B one-way, two CPUs:   raw ring %.2f M/s  ipckit %.2f M/s  ratio %.2f "
           "(target >= 0.8) %s\n",
           mrg / 1e6, mirg / 1e6, r2, r2 >= 0.8 ? "ok" : "MISSED");
    printf("round trip p50, one CPU:  pipe %.0f ns  ipckit duplex=1 8 B %.0f ns  ratio %.2f "
           "(target <= 2.0) %s; two rings 64 B %.0f ns  ratio %.2f %s\n",
           m[PIPE1], m[DX1], r3, r3 <= 2.0 ? "ok" : "MISSED", m[TW1], r4,
           r4 <= 2.0 ? "ok" : "MISSED");
    return 0;
}
