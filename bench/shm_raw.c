/*
 * shm_raw.c - the raw yardsticks for ipckit's shm: ring, with no ipckit at all:
 *   pingpong  round trip of one cache line between two processes on two CPUs (each side spins
 *             on a shared counter and answers by bumping it): the floor for any shared-memory
 *             round trip;
 *   pingpong2 the same with one line per direction (each side writes only its own line): the
 *             floor for any design with one queue each way, as a request ring + a reply ring;
 *   ring      one-way throughput of 64-byte messages through a fixed-slot single-producer /
 *             single-consumer ring (indices on separate cache lines, each side caching the
 *             other's index, spinning when full or empty): the floor for one-way throughput;
 *   pipe      round trip of 64 bytes over two pipes with both processes on one CPU: what a
 *             same-CPU round trip costs through the kernel.
 * The ping-pong and the ring are engine/shm.h's, the same code `ipckit bench` measures beside its
 * shm: rows; this program adds the two-line ping-pong and the one-CPU pipe, and medians of runs.
 * shm_baseline.c prints them; shm_vs_raw.c runs the same measures next to ipckit's in one run.
 */
#define _GNU_SOURCE 1
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm_raw.h"
#include "shm.h" /* bench/engine: the cache-line ping-pong and the ring `ipckit bench` runs */

int64_t bl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bl_pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s) != 0) {
        perror("sched_setaffinity");
        exit(2);
    }
}

void *bl_shared(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static int bl_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median of n samples (sorts them). */
int64_t bl_median(int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bl_cmp);
    return v[n / 2];
}

double bl_median_d(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

void bl_wait(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "child %d failed\n", (int)pid);
        exit(2);
    }
}

static inline void bl_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ---- cache-line ping-pong (engine/shm.h, as `ipckit bench` runs it): p50 of the round trip, ns
 * ---- */

int64_t bl_pingpong(int cpu_a, int cpu_b)
{
    bshm_line *l = bl_shared(4096);
    pid_t pid = fork();
    if (pid == 0) {
        bl_pin(cpu_b);
        uint64_t seen = 0;
        for (int i = 0; i < BL_RT_N + BL_RT_WARM; i++) {
            bshm_line_recv(l, &seen, NULL, 0);
            bshm_line_send(l, &seen, NULL, 0);
        }
        _exit(0);
    }
    bl_pin(cpu_a);
    int64_t *s = malloc(sizeof(int64_t) * BL_RT_N);
    uint64_t seen = 0;
    for (int i = 0; i < BL_RT_N + BL_RT_WARM; i++) {
        int64_t t0 = bl_now();
        bshm_line_send(l, &seen, NULL, 0);
        bshm_line_recv(l, &seen, NULL, 0);
        if (i >= BL_RT_WARM)
            s[i - BL_RT_WARM] = bl_now() - t0;
    }
    bl_wait(pid);
    int64_t m = bl_median(s, BL_RT_N);
    free(s);
    munmap(l, 4096);
    return m;
}

/* ---- two-line ping-pong: each direction has its own line (as two queues have): p50 ns ---- */

int64_t bl_pingpong2(int cpu_a, int cpu_b)
{
    _Atomic uint64_t *a = bl_shared(4096), *b = a + BL_LINE / sizeof *a;
    pid_t pid = fork();
    if (pid == 0) {
        bl_pin(cpu_b);
        for (uint64_t v = 1; v <= BL_RT_N + BL_RT_WARM; v++) {
            while (atomic_load_explicit(a, memory_order_acquire) != v)
                bl_relax();
            atomic_store_explicit(b, v, memory_order_release);
        }
        _exit(0);
    }
    bl_pin(cpu_a);
    int64_t *s = malloc(sizeof(int64_t) * BL_RT_N);
    for (uint64_t v = 1; v <= BL_RT_N + BL_RT_WARM; v++) {
        int64_t t0 = bl_now();
        atomic_store_explicit(a, v, memory_order_release);
        while (atomic_load_explicit(b, memory_order_acquire) != v)
            bl_relax();
        if (v > BL_RT_WARM)
            s[v - BL_RT_WARM - 1] = bl_now() - t0;
    }
    bl_wait(pid);
    int64_t m = bl_median(s, BL_RT_N);
    free(s);
    munmap((void *)a, 4096);
    return m;
}

/* ---- fixed-slot SPSC ring (engine/shm.h, as `ipckit bench` runs it): messages per second ---- */

double bl_ring(int cpu_a, int cpu_b)
{
    size_t len = bshm_ring_bytes(BL_MSG);
    bshm_ring *r = bl_shared(len);
    bshm_ring_init(r, BL_MSG);
    pid_t pid = fork();
    if (pid == 0) { /* producer */
        bl_pin(cpu_b);
        unsigned char msg[BL_MSG];
        memset(msg, 'm', sizeof msg);
        bshm_end e = {0, 0};
        for (uint64_t i = 0; i < BL_TP_N; i++) {
            memcpy(msg, &i, sizeof i);
            bshm_ring_push(r, &e, msg, BL_MSG);
        }
        _exit(0);
    }
    bl_pin(cpu_a);
    unsigned char out[BL_MSG];
    bshm_end e = {0, 0};
    int64_t t0 = 0;
    for (uint64_t i = 0; i < BL_TP_N; i++) {
        bshm_ring_pop(r, &e, out, BL_MSG);
        if (i == 0)
            t0 = bl_now();
        uint64_t seq;
        memcpy(&seq, out, sizeof seq);
        if (seq != i) {
            fprintf(stderr, "raw ring: got %llu, expected %llu\n", (unsigned long long)seq,
                    (unsigned long long)i);
            exit(2);
        }
    }
    double rate = (double)(BL_TP_N - 1) * 1e9 / (double)(bl_now() - t0);
    bl_wait(pid);
    munmap(r, len);
    return rate;
}

/* ---- pipe ping-pong on one CPU: p50 ns ---- */

int64_t bl_pipe(int cpu)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b)) {
        perror("pipe");
        exit(2);
    }
    bl_pin(cpu);
    int n = BL_RT_N / 4, warm = BL_RT_WARM / 4;
    pid_t pid = fork();
    if (pid == 0) {
        char m[BL_MSG];
        for (int i = 0; i < n + warm; i++)
            if (read(a[0], m, sizeof m) != (ssize_t)sizeof m ||
                write(b[1], m, sizeof m) != (ssize_t)sizeof m)
                _exit(1);
        _exit(0);
    }
    char m[BL_MSG] = {0};
    int64_t *s = malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n + warm; i++) {
        int64_t t0 = bl_now();
        if (write(a[1], m, sizeof m) != (ssize_t)sizeof m ||
            read(b[0], m, sizeof m) != (ssize_t)sizeof m)
            exit(2);
        if (i >= warm)
            s[i - warm] = bl_now() - t0;
    }
    bl_wait(pid);
    int64_t med = bl_median(s, n);
    free(s);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    return med;
}

/* Chooses two CPUs this process may run on (or the ones given) and the repeat count. */
void bl_args(int argc, char **argv, int *cpu_a, int *cpu_b, int *reps)
{
    cpu_set_t s;
    sched_getaffinity(0, sizeof s, &s);
    *cpu_a = *cpu_b = -1;
    for (int c = 0; c < CPU_SETSIZE && *cpu_b < 0; c++)
        if (CPU_ISSET(c, &s)) {
            if (*cpu_a < 0)
                *cpu_a = c;
            else
                *cpu_b = c;
        }
    *reps = 5;
    int opt;
    while ((opt = getopt(argc, argv, "c:C:r:")) != -1) {
        if (opt == 'c')
            *cpu_a = atoi(optarg);
        else if (opt == 'C')
            *cpu_b = atoi(optarg);
        else if (opt == 'r')
            *reps = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-c CPU_A] [-C CPU_B] [-r REPEATS]\n", argv[0]);
            exit(2);
        }
    }
    if (*cpu_b < 0) {
        fprintf(stderr, "needs two CPUs (found one): the cross-CPU figures make no sense\n");
        exit(2);
    }
    if (*reps < 1)
        *reps = 1;
}
