/*
 * ring.h - the shared-memory ring behind shm: (internal; shm.c is the transport).
 *
 * A segment is one header page followed by a power-of-two data area holding variable-length
 * records. Indices are 64-bit byte counters that only grow; position = index & (cap - 1).
 * Layout of the header, one 64-byte cache line per writer so the SPSC fast path of each side
 * writes one shared line only:
 *   line 0  constant after creation: magic (published last), version, capacity, owner, flags
 *   line 1  producer line: head (committed write index), and the number of consumers asleep
 *           (written by consumers only when they go to sleep)
 *   line 2  consumer line: tail (read index; futex word)
 *   line 3  read-mostly: producers attached (for EOF), SPSC claims, crash recoveries, each
 *           side's last CPU (for the spin decision; written only when it changes), and the
 *           producers asleep on tail (written only when one goes to sleep)
 *   line 4, 5 the locks of multi=1 (one for producers, one for consumers; ring.c, "locks")
 *   then    the mailbox line of duplex=1 (used in the first header only)
 *   then    the pollers' wake-up lines: a process waiting in an ipk_poller cannot sleep on a
 *           futex, so it names an abstract Unix datagram socket here and declares itself
 *           asleep; a publisher that sees a sleeper (the same test as for a futex sleeper, so
 *           the fast path is unchanged) sends one byte to each armed line of its role
 * A record is an 8-byte header {len, tag} then len bytes, padded to 8. tag is the commit word:
 * 0 until the producer commits, then DATA, or PAD for the filler before a wrap (and the empty
 * record a closing producer leaves to wake a sleeping consumer). The largest message is
 * capacity - 16: its header, and the zeroed header of the record after it.
 *
 * duplex=1: one segment holds two such rings, [header 0][data 0][header 1][data 1]; the
 * listener (end 0) produces into ring 0 and consumes ring 1, the dialer (end 1) the reverse.
 * Header 0 also holds the mailbox: one cache line that carries a message of up to
 * IPK__SHM_MBOX_MAX bytes in either direction, one at a time. A request/reply conversation of
 * small messages then moves that one line back and forth, each side writing the line it has
 * just read, which is the raw cache-line ping-pong; two rings would move two lines and make
 * each writer take its line back from a reader polling it (ring.c has the ordering rules).
 */
#ifndef IPK_SHM_RING_H
#define IPK_SHM_RING_H

#include "ipk.h"

#include <stdatomic.h>
#include <time.h>

#define IPK__SHM_MAGIC 0x524b5049u /* "IPKR" */
/* 2: the bell, the mailbox and duplex=1; 3: pollers' wake-up lines; 4: multi=1's locks are
 * ipckit's own (struct ipk__shm_lock) instead of pthread robust mutexes */
#define IPK__SHM_VERSION 4u
#define IPK__SHM_LINE    64
#define IPK__SHM_HDR     4096 /* data starts one page in, so it is page aligned */
#define IPK__SHM_RECHDR  8

#define IPK__SHM_F_MULTI    0x1u /* several producers/consumers: the mutexes are used */
#define IPK__SHM_F_FENCE    0x2u /* an attached process lacks membarrier: publish with a fence */
#define IPK__SHM_F_RELEASED 0x4u /* the owner closed with keep=1: not stale, just ownerless */
#define IPK__SHM_F_DUPLEX   0x8u /* two rings and the mailbox: a conversation (duplex=1) */
#define IPK__SHM_F_KNOWN    0xfu

/* The mailbox of duplex=1. state: EMPTY; BUSY(e) while end e writes a message in; FULL(e) when
 * end e's message is there for the other end. at: the sender's ring head when it sent, so the
 * message goes before its ring record number `at` and after every record below it. */
#define IPK__SHM_MBOX_MAX 48
#define IPK__MB_EMPTY     0u
#define IPK__MB_BUSY(e)   (1u + (uint32_t)(e))
#define IPK__MB_FULL(e)   (3u + (uint32_t)(e))

struct ipk__shm_mbox {
    _Alignas(IPK__SHM_LINE) _Atomic uint32_t state;
    uint32_t len;
    uint64_t at;
    unsigned char data[IPK__SHM_MBOX_MAX];
};

/* A poller's wake-up line: process pid listens on the abstract socket "ipk-shm-poll-PID-ID";
 * armed says for what it sleeps (IPK__PW_RECORDS: a record or EOF to receive; IPK__PW_SPACE:
 * room to send); gen changes whenever a poller takes the line, so that a publisher drops the
 * eventfd it was handed by the line's previous waiter (ring.c, "pollers"). */
#define IPK__SHM_POLLW  8
#define IPK__PW_RECORDS 1u
#define IPK__PW_SPACE   2u
/* cons_sleepers and prod_sleepers count futex waiters in their low 16 bits and armed pollers
 * above (IPK__SLEEP_POLLER each), so that a publisher makes only the system call its sleepers
 * need: FUTEX_WAKE for the first kind, a wake-up datagram for the second. */
#define IPK__SLEEP_FUTEX  0xffffu
#define IPK__SLEEP_POLLER 0x10000u
#define IPK__SLEEPERS(v)  (((v)&IPK__SLEEP_FUTEX) + ((v) / IPK__SLEEP_POLLER))
struct ipk__shm_pollw {
    _Atomic int32_t pid;
    _Atomic uint32_t id;
    _Atomic uint32_t armed;
    _Atomic uint32_t gen;
};

/* multi=1: a lock word holds 0 (free) or the holder's pid, with IPK__LK_BIASED when its holder
 * keeps it while nobody else wants it (busy: it is inside; revoke: someone else wants it; see
 * ring.c, "locks"); sleepers counts the processes asleep on the word or on busy (they are woken
 * only then). start: the holder's pid (high 32 bits) and the low 32 bits of its start time
 * (/proc/PID/stat), written after it takes the lock, so that a waiter can tell a dead holder from
 * a new process that reused its pid. */
#define IPK__LK_BIASED 0x80000000u
#define IPK__LK_PID    0x7fffffffu
struct ipk__shm_lock {
    _Alignas(IPK__SHM_LINE) _Atomic uint32_t word;
    _Atomic uint32_t sleepers;
    _Atomic uint64_t start;
    _Atomic uint32_t busy;
    _Atomic uint32_t revoke;
};

#define IPK__SHM_TAG_DATA 0x44415441u
#define IPK__SHM_TAG_PAD  0x50414444u

struct ipk__shm_hdr {
    /* line 0 */
    _Alignas(IPK__SHM_LINE) _Atomic uint32_t magic;
    uint32_t version;
    uint64_t capacity;
    uint64_t seg_size;
    _Atomic int32_t owner_pid;
    _Atomic uint32_t flags;
    uint64_t owner_start; /* /proc/PID/stat start time: tells a recycled pid apart */
    /* line 1 */
    _Alignas(IPK__SHM_LINE) _Atomic uint64_t head;
    _Atomic uint32_t cons_sleepers;
    /* duplex=1: a sleeping consumer waits for a ring record or a mailbox message, so it sleeps
     * on this word, which a producer bumps (only when cons_sleepers says someone sleeps) */
    _Atomic uint32_t bell;
    /* line 2 */
    _Alignas(IPK__SHM_LINE) _Atomic uint64_t tail;
    /* line 3 */
    _Alignas(IPK__SHM_LINE) _Atomic uint32_t nprod; /* producers attached now */
    _Atomic uint32_t everprod;                      /* a producer ever attached */
    _Atomic int32_t prod_pid;                       /* SPSC: the one producer */
    _Atomic int32_t cons_pid;                       /* SPSC: the one consumer */
    _Atomic uint32_t recovered;                     /* EOWNERDEAD recoveries */
    /* Each side's last CPU: read by the other at every wait, written only when it changes,
     * so they live here, away from the lines written on every message. */
    _Atomic uint32_t prod_cpu;
    _Atomic uint32_t cons_cpu;
    /* Producers asleep on a full ring: written only by a producer going to sleep, read by the
     * consumer after every tail store. Not beside tail: a producer polling tail keeps taking
     * that line, and a load from it right after the tail store would wait for its return. */
    _Atomic uint32_t prod_sleepers;
    /* lines 4, 5 */
    struct ipk__shm_lock plk;
    struct ipk__shm_lock clk;
    struct ipk__shm_mbox mbox;
    _Alignas(IPK__SHM_LINE) struct ipk__shm_pollw pollw[IPK__SHM_POLLW];
};

/* One process's view of a ring, with the indices it caches privately. */
typedef struct ipk__ring {
    struct ipk__shm_hdr *h;
    unsigned char *data;
    uint64_t cap, mask;
    size_t map_len;
    int multi;
    int fence; /* publish with a full fence (no membarrier here) */
    int64_t spin_ns;
    int32_t pid;        /* this process (getpid() is a system call) */
    uint64_t pid_start; /* and its start time, for multi=1's locks */
    /* duplex=1: the mailbox shared with the other end, and this end's number (0 listener) */
    struct ipk__shm_mbox *mb;
    int end;
    int c_mbox;                 /* the peeked message is the mailbox's */
    int mb_held;                /* rx: the peer's mailbox message was consumed; ours to reuse */
    struct ipk__ring *twin;     /* the other ring of this end */
    _Atomic uint32_t *peer_cpu; /* duplex consumer: where the peer says which CPU it is on */
    /* producer side */
    uint64_t p_head; /* next write index (== h->head between operations) */
    uint64_t p_tail; /* cached tail: a lower bound, refreshed only when space seems short */
    int p_attached, p_locked, p_reserved;
    int p_batch;        /* multi=1, inside a sendv: the lock stays held between its messages */
    int p_bias, c_bias; /* multi=1: this process holds that lock biased (ring.c, "locks") */
    uint64_t res_pos;   /* index of the reserved record */
    size_t res_len;
    /* consumer side */
    uint64_t c_tail; /* next read index */
    int c_attached, c_locked, c_peeked;
    uint64_t peek_next; /* tail after the peeked record */
    unsigned ops;       /* counts operations, to republish our CPU now and then */
    /* pollers: this process's wake-up line in this ring (-1: none), what it armed, and the
     * socket a publisher here sends wake-ups from (made on first use); per wake-up line, the
     * eventfd its waiter handed us (-1: none yet), for the waiter named by key */
    int pw_slot;
    unsigned pw_armed;
    int pw_txfd;
    struct ipk__pw_peer {
        int efd;
        int32_t pid;
        uint32_t id, gen;
        unsigned asks; /* datagrams sent asking for the eventfd; IPK__PW_NOASK: stop asking */
    } pw_peer[IPK__SHM_POLLW];
    const char *name; /* for messages */
} ipk__ring;

/* An absolute CLOCK_MONOTONIC deadline (ipk.h) as the timespec that futex, mutex and semaphore
 * waits take. */
static inline struct timespec ipk__dl_ts(int64_t dl)
{
    struct timespec ts = {.tv_sec = (time_t)(dl / 1000000000), .tv_nsec = (long)(dl % 1000000000)};
    return ts;
}

/* Bytes a segment of data capacity cap occupies. */
size_t ipk__shm_seg_size(uint64_t cap);
/* Initialises a freshly created, zeroed mapping; publishes magic last. flags: MULTI, DUPLEX. */
int ipk__shm_init(struct ipk__shm_hdr *h, uint64_t cap, size_t seg_size, uint32_t flags);
/* Validates a mapped segment (magic, version, sizes, indices) and fills r. */
int ipk__ring_attach(ipk__ring *r, void *map, size_t map_len, const char *name);
/* duplex=1: end `end` takes its two rings now (producer of tx, consumer of rx: a second live
 * process for the same end is refused with -EBUSY) and shares the mailbox of header 0. */
int ipk__ring_duplex(ipk__ring *tx, ipk__ring *rx, struct ipk__shm_mbox *mb, int end);
/* Releases the SPSC claims and the producer count; wakes consumers so they can see EOF. */
void ipk__ring_detach(ipk__ring *r);

int ipk__ring_reserve(ipk__ring *r, void **p, size_t len, int64_t dl);
int ipk__ring_commit(ipk__ring *r, size_t len);
long ipk__ring_peek(ipk__ring *r, const void **p, int64_t dl);
int ipk__ring_release(ipk__ring *r);
int ipk__ring_send(ipk__ring *r, const void *msg, size_t len, int64_t dl);
long ipk__ring_sendv(ipk__ring *r, const ipk_iov *msgs, size_t n, int64_t dl);
/* Copies the next record into buf; IPK_EMSGSIZE with *need set when cap is too small. */
long ipk__ring_recv(ipk__ring *r, void *buf, size_t cap, size_t *need, int64_t dl);
int ipk__ring_pending(const ipk__ring *r);

/* Pollers (see the header layout). attach claims a wake-up line for this process's socket id;
 * arm declares it asleep for `role` and returns 1 (not armed) when that is ready already;
 * disarm withdraws; ready tells without waiting: a record, a mailbox message or EOF to receive
 * (IPK__PW_RECORDS), room for a small message (IPK__PW_SPACE). */
int ipk__ring_poll_attach(ipk__ring *r, uint32_t id);
void ipk__ring_poll_detach(ipk__ring *r);
int ipk__ring_poll_arm(ipk__ring *r, unsigned role);
void ipk__ring_poll_disarm(ipk__ring *r, unsigned role);
int ipk__ring_poll_ready(ipk__ring *r, unsigned role);

/* The wake-up request byte: a publisher that sends it asks the waiter for its eventfd. */
#define IPK__PW_ASK   'E'
#define IPK__PW_NOASK 0xffffu
/* Test hook: what this process's publishers did to wake pollers. */
struct ipk__pw_stats {
    unsigned long datagrams, efd_writes, efd_taken, efd_dropped;
    unsigned long efd_refused; /* lines whose answer was refused (each once) */
};
extern struct ipk__pw_stats ipk__shm_pw_stats;

/* Whether pid is alive and, when start != 0, still the process that started at `start`. */
int ipk__pid_alive(pid_t pid, uint64_t start);
uint64_t ipk__pid_start(pid_t pid);

/* Test hook: when > 0, the producer's nth ipk__ring_send writes half a record and raises
 * SIGKILL (holding the producers' mutex with multi=1), to test crash recovery. */
extern int ipk__shm_die_at;
/* Benchmark hook: publish with a full fence even where membarrier would allow none. */
extern int ipk__shm_force_fence;

#endif
