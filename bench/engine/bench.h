/*
 * bench.h - the benchmark engine shared by `ipckit bench` and the peer driver
 * (bench/peers): one method for every implementation (ipckit, raw system calls, ZeroMQ, nng).
 *
 * A run measures one implementation of one mechanism at one message size between two forked
 * processes: side A (echoes in latency mode, receives in throughput mode) and side B (times the
 * round trips, or sends the stream). An implementation is a bench_ops table; the engine owns
 * the processes, the CPU pinning, the clock, the checks and the statistics.
 */
#ifndef IPK_BENCH_H
#define IPK_BENCH_H

#define _GNU_SOURCE 1
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_A 0 /* echoes / receives */
#define BENCH_B 1 /* pings / sends */

#define BENCH_BATCH 256 /* messages per sendv in throughput mode */

enum bench_mode { BENCH_LATENCY = 1, BENCH_THROUGHPUT = 2 };
enum bench_cpu { BENCH_CPU_NONE, BENCH_CPU_SAME, BENCH_CPU_CROSS };

typedef struct bench_spec bench_spec;
typedef struct bench_result bench_result;

/* One side's connection, private to the ops. */
typedef struct bench_side {
    const bench_spec *spec;
    int side;
    void *st;
} bench_side;

/*
 * An implementation. Every function returns 0 (or a length) on success, and a negative value
 * on failure after writing a one-line reason with bench_fail(). Calls are made in this order in
 * each side's process: listen (may publish a name for the peer), open (with the peer's name),
 * then send/recv, then close. prepare/cleanup run in the parent around the two processes.
 */
typedef struct bench_ops {
    const char *impl; /* "ipckit", "raw", "zmq", "nng" */
    int (*prepare)(bench_spec *s);
    int (*listen)(bench_side *sd, char *name, size_t cap);
    int (*open)(bench_side *sd, const char *peer);
    int (*send)(bench_side *sd, const void *buf, size_t len);
    /* Optional: n messages of len bytes at once. Returns how many went (>= 1). */
    long (*sendv)(bench_side *sd, void *const *bufs, size_t n, size_t len);
    /* One message into buf; returns its length. */
    long (*recv)(bench_side *sd, void *buf, size_t cap);
    /* Optional, for unframed byte streams in throughput mode: whatever bytes have arrived. */
    long (*recv_bytes)(bench_side *sd, void *buf, size_t cap);
    void (*close)(bench_side *sd);
    void (*cleanup)(bench_spec *s);
    /* Optional: runs the whole measurement itself (a program of its own: bench/indep) instead
     * of the engine's two processes; the engine still plans, repeats and reports it. */
    void (*run)(bench_spec *s, bench_result *r);
} bench_ops;

/* What to run. The ops may keep objects made in prepare() in fd[]/path[]/id[]. */
struct bench_spec {
    const bench_ops *ops;
    char label[48];   /* "unix", "raw unix stream", "zmq ipc" */
    char mech[16];    /* the mechanism rows are compared on: "unix", "tcp", "pipe", ... */
    char url[512];    /* ipckit, zmq, nng: the address (side A's inbound for one-way schemes) */
    char url2[512];   /* one-way schemes: side B's inbound address */
    int topo;         /* ops-specific: how the two sides connect */
    int lossy;        /* messages may be dropped under load: the sender keeps a credit window */
    int solo;         /* side A only connects: B's peer is a program of its own (exec:cat) */
    unsigned modes;   /* the modes that apply (0: both) */
    int permsg;       /* throughput: one send call per message even when the ops batch */
    char key[16];     /* rows are compared only with rows of the same key: "pair" marks the
                       * unixgram socketpair floor, "" everything in the listener's topology */
    const char *skip; /* set: not run, and this says why ("not built in this version") */
    size_t maxsize;   /* largest message the mechanism carries (0: no limit) */
    size_t size;
    enum bench_mode mode;
    long count;
    enum bench_cpu cpu;
    int pin[2]; /* the CPUs of A and B (set by bench_run from the parent's affinity) */
    const char *tmpdir;
    int fd[8];
    long id[2];
    char name[2][128];
};

/* What a run measured. Times in nanoseconds. */
struct bench_result {
    char label[48], mech[16], key[16];
    const char *impl;
    size_t size;
    enum bench_mode mode;
    enum bench_cpu cpu;
    int ok;
    char err[240];
    char cpus[2][16]; /* the CPUs each side ran on, e.g. "0" or "0,1" */
    long n;           /* round trips or messages measured */
    /* latency: per round trip */
    double min, p50, p90, p99, p999, max, rtps;
    /* throughput */
    double secs, mps, mbps;
    long received;
    uint64_t csum_got, csum_want;
    int csum_ok;
    long batch; /* messages per send call at most: 1 one call per message, > 1 sendv batches */
};

/* Records why the current side failed (printf-style); returns -1. */
int bench_fail(bench_side *sd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocates a side's zeroed private state into sd->st; NULL (reason recorded) when out of
 * memory. */
void *bench_side_state(bench_side *sd, size_t size);

/* The CPU a side is pinned to, or -1 for none. */
int bench_cpu_of(const bench_spec *s, int side);

/* Runs one spec (count messages or round trips) and fills *r. Never exits. */
void bench_run(bench_spec *s, bench_result *r);

/* Fills buf with message `seq`'s deterministic content. */
void bench_fill(unsigned char *buf, size_t len, uint64_t seq);

/* The kernel's message size limits for queues (0 when unknown). */
#define BENCH_MQ_MSGSIZE_MAX "/proc/sys/fs/mqueue/msgsize_max"
#define BENCH_SYSV_MSGMAX    "/proc/sys/kernel/msgmax"
size_t bench_proc_limit(const char *path);

/* Implementations. */
extern const bench_ops bench_ops_ipckit, bench_ops_raw, bench_ops_indep;
/* Adds every raw baseline / ipckit transport for the run list. */
typedef struct bench_list {
    bench_spec *v;
    size_t n, cap;
} bench_list;
bench_spec *bench_list_add(bench_list *l, const bench_ops *ops, const char *label,
                           const char *mech);
int bench_raw_all(bench_list *l, const char *only_mech);
/* Adds a floor (topo, one call per message or batched: a throughput row, " batched" after its
 * label) unless the list has it: 1 and *out when added, 0 when there, -1 out of memory. */
int bench_floor_add(bench_list *l, const bench_ops *ops, int topo, int permsg, const char *label,
                    const char *mech, const char *key, bench_spec **out);
/* The independent raw benchmark (bench/indep, a program of its own) for the mechanisms it
 * covers: the check of the engine's floors. Adds nothing when the program is not found. */
int bench_indep_all(bench_list *l, const char *only_mech);
/* The shared-memory floors (engine/shm.c): a raw cache-line ping-pong (latency) and a raw
 * fixed-slot SPSC ring (throughput), mechanism "shm"; bench_raw_all adds them. */
int bench_shm_all(bench_list *l, const char *only_mech);
/* One ipckit target from a URL, or every built transport (url NULL) with temporary addresses
 * inside tmpdir. Returns 0, or -1 with a message on stderr for a bad URL. */
int bench_ipk_add(bench_list *l, const char *url, const char *tmpdir);
/* One ipckit row for a connected stream URL under its own label: with permsg, one ipk_send per
 * message in throughput mode (else ipk_sendv batches); modes as bench_spec's (0: both). */
int bench_ipk_add_as(bench_list *l, const char *url, const char *label, int permsg, unsigned modes);

/* Output (bench_report.c). */
typedef struct bench_report {
    const bench_result *r;
    size_t n;
    const char *cmdline;
    int ncpu;
} bench_report;
void bench_print_table(FILE *f, const bench_report *rep);
void bench_print_json(FILE *f, const bench_report *rep);
void bench_print_csv(FILE *f, const bench_report *rep);
int bench_write_svg(const bench_report *rep, const char *path);

/* The command line (bench_main.c). `extra` lists more targets to add (peers), may be NULL. */
typedef int (*bench_add_fn)(bench_list *l, const char *tmpdir);
int bench_main(const char *prog, int argc, char **argv, bench_add_fn peers);

#endif
