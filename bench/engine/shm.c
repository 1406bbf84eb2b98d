/*
 * shm.c - the floors for shm: in `ipckit bench`: the raw cache-line ping-pong (round
 * trip) and the raw fixed-slot single-producer ring (one-way stream) of engine/shm.h, run by the
 * engine like every other implementation, so the shm: rows print their ratio to them from the
 * same run, the same CPUs and the same message sizes. Latency: B writes the message into the
 * line and bumps the counter, A answers the same way. Throughput: B pushes into the ring, A pops.
 * The memory is a memfd made in prepare() and mapped by both sides.
 */
#include "bench.h"
#include "shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { SHM_LINE, SHM_RING };

typedef struct shm_st {
    void *map;
    size_t len;
    uint64_t seen; /* line */
    bshm_end end;  /* ring */
} shm_st;

static size_t shm_len(const bench_spec *s)
{
    size_t n = s->size ? s->size : 1;
    return s->topo == SHM_LINE ? bshm_line_bytes(n) : bshm_ring_bytes(n);
}

static int shm_prepare(bench_spec *s)
{
    bench_side sd = {.spec = s};
    /* Two spinners pinned to one CPU: each spins until the scheduler takes the CPU from it
     * (sched_yield does not hand it over), a timeslice per message. That is no floor. */
    if (s->cpu == BENCH_CPU_SAME)
        return bench_fail(&sd, "n/a: a spinning floor needs two CPUs (the one-CPU yardstick is "
                               "the pipe)");
    s->fd[0] = memfd_create("ipkbench-raw-shm", MFD_CLOEXEC);
    if (s->fd[0] < 0 || ftruncate(s->fd[0], (off_t)shm_len(s)) != 0)
        return bench_fail(&sd, "%s: memfd of %zu bytes: %s", s->label, shm_len(s), strerror(errno));
    if (s->topo == SHM_RING) { /* laid out before either side starts */
        void *m = mmap(NULL, shm_len(s), PROT_READ | PROT_WRITE, MAP_SHARED, s->fd[0], 0);
        if (m == MAP_FAILED)
            return bench_fail(&sd, "%s: mmap %zu bytes: %s", s->label, shm_len(s), strerror(errno));
        bshm_ring_init(m, s->size ? s->size : 1);
        munmap(m, shm_len(s));
    }
    return 0;
}

static int shm_open_side(bench_side *sd, const char *peer)
{
    (void)peer;
    const bench_spec *s = sd->spec;
    shm_st *st = bench_side_state(sd, sizeof *st);
    if (st == NULL)
        return -1;
    st->len = shm_len(s);
    st->map = mmap(NULL, st->len, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd[0], 0);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        return bench_fail(sd, "%s: mmap %zu bytes: %s", s->label, st->len, strerror(errno));
    }
    return 0;
}

static int shm_send(bench_side *sd, const void *buf, size_t len)
{
    shm_st *st = sd->st;
    if (sd->spec->topo == SHM_LINE)
        bshm_line_send(st->map, &st->seen, buf, len);
    else
        bshm_ring_push(st->map, &st->end, buf, len);
    return 0;
}

static long shm_recv(bench_side *sd, void *buf, size_t cap)
{
    shm_st *st = sd->st;
    size_t n = sd->spec->size;
    if (n > cap)
        return bench_fail(sd, "%s: buffer of %zu bytes for %zu", sd->spec->label, cap, n);
    if (sd->spec->topo == SHM_LINE)
        bshm_line_recv(st->map, &st->seen, buf, n);
    else
        bshm_ring_pop(st->map, &st->end, buf, n);
    return (long)n;
}

static void shm_close(bench_side *sd)
{
    shm_st *st = sd->st;
    if (st == NULL)
        return;
    if (st->map)
        munmap(st->map, st->len);
    free(st);
    sd->st = NULL;
}

static void shm_cleanup(bench_spec *s)
{
    if (s->fd[0] >= 0)
        close(s->fd[0]);
    s->fd[0] = -1;
}

static const bench_ops bench_ops_rawshm = {
    .impl = "raw",
    .prepare = shm_prepare,
    .open = shm_open_side,
    .send = shm_send,
    .recv = shm_recv,
    .close = shm_close,
    .cleanup = shm_cleanup,
};

int bench_shm_all(bench_list *l, const char *only_mech)
{
    static const struct {
        const char *label;
        unsigned mode;
    } defs[] = {[SHM_LINE] = {"raw shm cacheline", BENCH_LATENCY},
                [SHM_RING] = {"raw shm slot ring", BENCH_THROUGHPUT}};
    if (only_mech && strcmp(only_mech, "shm") != 0)
        return 0;
    for (int m = SHM_LINE; m <= SHM_RING; m++) {
        size_t i = 0; /* each floor once */
        while (i < l->n && !(l->v[i].ops == &bench_ops_rawshm && l->v[i].topo == m))
            i++;
        if (i < l->n)
            continue;
        bench_spec *s = bench_list_add(l, &bench_ops_rawshm, defs[m].label, "shm");
        if (s == NULL)
            return -1;
        s->topo = m;
        s->modes = defs[m].mode;
    }
    return 0;
}
