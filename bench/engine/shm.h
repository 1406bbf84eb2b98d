/*
 * shm.h - the raw shared-memory yardsticks, with no ipckit and no system call: the
 * primitives are here (header-only, so bench/shm_baseline.c stays a standalone program) and
 * engine/shm.c drives them as an implementation of the bench engine, so `ipckit bench` measures
 * them in the same run and on the same CPUs as its shm: rows.
 *   line  a cache-line ping-pong: one shared line holds a counter (and, up to
 *         BSHM_LINE_DATA bytes, the message); each side answers by bumping the counter.
 *   ring  a fixed-slot single-producer / single-consumer ring: indices on separate cache lines,
 *         each side caching the other's index, spinning when full or empty.
 */
#ifndef IPK_BENCH_SHM_H
#define IPK_BENCH_SHM_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BSHM_LINE      64
#define BSHM_LINE_DATA (BSHM_LINE - 8) /* message bytes that ride in the counter's line */
#define BSHM_SPINS     256 /* pauses (microseconds) before a spinning side yields its CPU */

static inline void bshm_relax(unsigned *spins)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    /* Both sides on one CPU: the peer cannot move until this one lets it run. */
    if (++*spins >= BSHM_SPINS) {
        *spins = 0;
        sched_yield();
    }
}

/* ---- line: the counter, then the message (the first BSHM_LINE_DATA bytes in the line) ---- */

typedef struct bshm_line {
    _Alignas(BSHM_LINE) _Atomic uint64_t seq;
    unsigned char data[]; /* BSHM_LINE_DATA in the line, the rest after it */
} bshm_line;

/* Bytes to map for messages of up to `size` bytes. */
static inline size_t bshm_line_bytes(size_t size)
{
    return sizeof(bshm_line) + (size > BSHM_LINE_DATA ? size : BSHM_LINE_DATA);
}

/* Hands the line to the peer with n bytes of message; *seen is the last value this side saw. */
static inline void bshm_line_send(bshm_line *l, uint64_t *seen, const void *p, size_t n)
{
    if (n)
        memcpy(l->data, p, n);
    atomic_store_explicit(&l->seq, ++*seen, memory_order_release);
}

/* Waits for the peer's answer and copies n bytes of its message into p. */
static inline void bshm_line_recv(bshm_line *l, uint64_t *seen, void *p, size_t n)
{
    unsigned spins = 0;
    uint64_t v;
    while ((v = atomic_load_explicit(&l->seq, memory_order_acquire)) == *seen)
        bshm_relax(&spins);
    *seen = v;
    if (n)
        memcpy(p, l->data, n);
}

/* ---- ring: fixed slots of `slot` bytes, `nslots` of them (a power of two) ---- */

typedef struct bshm_ring {
    _Alignas(BSHM_LINE) _Atomic uint64_t head; /* written by the producer */
    _Alignas(BSHM_LINE) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(BSHM_LINE) uint64_t nslots, slot;
    _Alignas(BSHM_LINE) unsigned char data[];
} bshm_ring;

/* One side's view: its own index and its cached copy of the other's. */
typedef struct bshm_end {
    uint64_t mine, theirs;
} bshm_end;

/* Slots for messages of `slot` bytes: 1024, or fewer so that the ring stays within 1 MiB
 * (ipckit's default ring size), at least 8. */
static inline uint64_t bshm_ring_slots(size_t slot)
{
    uint64_t n = 1024;
    while (n > 8 && n * slot > ((size_t)1 << 20))
        n /= 2;
    return n;
}

static inline size_t bshm_ring_bytes(size_t slot)
{
    return sizeof(bshm_ring) + bshm_ring_slots(slot) * slot;
}

static inline void bshm_ring_init(bshm_ring *r, size_t slot)
{
    memset(r, 0, sizeof *r);
    r->nslots = bshm_ring_slots(slot);
    r->slot = slot;
}

static inline void bshm_ring_push(bshm_ring *r, bshm_end *e, const void *p, size_t n)
{
    unsigned spins = 0;
    while (e->mine - e->theirs >= r->nslots) {
        e->theirs = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (e->mine - e->theirs >= r->nslots)
            bshm_relax(&spins);
    }
    memcpy(r->data + (e->mine & (r->nslots - 1)) * r->slot, p, n);
    atomic_store_explicit(&r->head, ++e->mine, memory_order_release);
}

static inline void bshm_ring_pop(bshm_ring *r, bshm_end *e, void *p, size_t n)
{
    unsigned spins = 0;
    while (e->mine == e->theirs) {
        e->theirs = atomic_load_explicit(&r->head, memory_order_acquire);
        if (e->mine == e->theirs)
            bshm_relax(&spins);
    }
    memcpy(p, r->data + (e->mine & (r->nslots - 1)) * r->slot, n);
    atomic_store_explicit(&r->tail, ++e->mine, memory_order_release);
}

#endif
