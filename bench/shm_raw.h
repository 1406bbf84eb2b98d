/*
 * shm_raw.h - the raw shared-memory yardsticks (shm_raw.c): no ipckit, plain atomics and pipes.
 */
#ifndef IPK_BENCH_SHM_RAW_H
#define IPK_BENCH_SHM_RAW_H

#include <stdint.h>
#include <sys/types.h>

#define BL_LINE    64
#define BL_RT_N    100000 /* round trips per run */
#define BL_RT_WARM 10000
#define BL_TP_N    5000000 /* messages per throughput run */
#define BL_MSG     64

int64_t bl_now(void);
void bl_pin(int cpu);
int64_t bl_median(int64_t *v, int n);
double bl_median_d(double *v, int n);
void bl_wait(pid_t pid);
/* n bytes of zeroed memory shared with the children forked after (exits on failure). */
void *bl_shared(size_t n);
/* Round trip p50 (ns) of one cache line between CPUs a and b; the same with one line each way. */
int64_t bl_pingpong(int cpu_a, int cpu_b);
int64_t bl_pingpong2(int cpu_a, int cpu_b);
/* One-way 64 B messages per second through a fixed-slot SPSC ring. */
double bl_ring(int cpu_a, int cpu_b);
/* Round trip p50 (ns) of 64 B over two pipes with both processes on one CPU. */
int64_t bl_pipe(int cpu);
void bl_args(int argc, char **argv, int *cpu_a, int *cpu_b, int *reps);

#endif
