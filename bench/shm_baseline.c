/*
 * shm_baseline.c - prints the raw shared-memory yardsticks of shm_raw.c (no ipckit at all).
 * Run: shm_baseline [-c CPU_A] [-C CPU_B] [-r REPEATS]   (prints medians of REPEATS runs)
 */
#include <stdint.h>
#include <stdio.h>

#include "shm_raw.h"

int main(int argc, char **argv)
{
    int ca, cb, reps;
    bl_args(argc, argv, &ca, &cb, &reps);
    int64_t pp[64], pp2[64], pi[64];
    double rg[64];
    if (reps > 64)
        reps = 64;
    for (int i = 0; i < reps; i++) {
        pp[i] = bl_pingpong(ca, cb);
        pp2[i] = bl_pingpong2(ca, cb);
        rg[i] = bl_ring(ca, cb);
        pi[i] = bl_pipe(ca);
    }
    printf("cpus %d,%d; medians of %d runs\n", ca, cb, reps);
    printf("raw cache-line ping-pong round trip p50: %lld ns (CPUs %d and %d)\n",
           (long long)bl_median(pp, reps), ca, cb);
    printf("raw two-line ping-pong round trip p50: %lld ns (CPUs %d and %d)\n",
           (long long)bl_median(pp2, reps), ca, cb);
    printf("raw fixed-slot SPSC ring, 64 B messages: %.2f M msg/s (CPUs %d and %d)\n",
           bl_median_d(rg, reps) / 1e6, ca, cb);
    printf("pipe round trip p50, one CPU: %lld ns (CPU %d)\n", (long long)bl_median(pi, reps), ca);
    return 0;
}
