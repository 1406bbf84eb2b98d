/*
 * fuzz_shm.c - a shm ring segment written by a hostile process, at attach and while in use.
 *
 * Input: byte 0 picks the kind of ring (SPSC, multi=1, duplex=1, or a dial through the public
 * API) and its capacity; then up to 15 patches (offset, length, bytes) are applied to a freshly
 * initialised segment before anything attaches; the rest is a schedule: send, sendv, recv,
 * peek/release, reserve/commit, pending, poll-ready, detach and attach again, interleaved with
 * writes of the segment (any byte, or a chosen field: indices, counters, claims, flags, a
 * record header, the duplex mailbox) between the operations.
 *
 * Kinds 0-2 drive the ring code (ring.c) directly in a memfd mapping placed so that its end
 * touches an inaccessible page: a read or write past the segment faults. Both ends run in this
 * process (they are different ring views, as two processes would have). Kind 3 dials a POSIX
 * segment this target created (/dev/shm/ipkfuzz-PID) through ipk_dial, ipk_send, ipk_recv, ...
 * so that shm.c's checks of a mapped segment (sizes, flags, the duplex halves) run too.
 *
 * Every byte is written, the multi=1 lock words included: since layout 4 they are ipckit's own
 * (a holder's pid and start time, a biased bit), not glibc's robust mutexes, whose list links
 * glibc followed while the lock was held.
 *
 * Deadlines: the public API (kind 3) always gives timeout 0. The ring kinds give IPK__DL_NOW,
 * or for up to MAX_WAITS operations of an input a deadline TINY_NS ahead, so that the waits
 * (announcing, the membarrier, the liveness check of a lock's holder, the futex sleep, the
 * timeout) run too, and a wait that never ends shows as a hang (libFuzzer -timeout); byte 0's
 * bit 5 gives the ring views a short spin as well. Nothing else runs while an operation waits,
 * so a wait on a forged segment can only end in its timeout: a detach with multi=1 waits up to
 * 100 ms for the producers' lock (to leave its EOF mark), and here that lock is often forged
 * to a live holder (our own pid, pid 1). The target makes that wait's futex report ETIMEDOUT
 * at once (the library's fault injection, ipk__fault_set, armed around each detach and
 * ipk_close and disarmed after), which runs the same code to the same end without the 100 ms
 * (an input of the corpus waited 3 x 100 ms so; docs/RELIABILITY.md has the figures).
 *
 * Checked: no fault, no sanitizer report, no hang (libFuzzer -timeout); every receive returns
 * at most the buffer's size and at most the ring's capacity; every error is negative.
 */
#define _GNU_SOURCE 1
#include "input.h"
#include "ipk.h"
#include "ring.h"
#include "sys.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define PAGE    4096
#define CAP_MAX 8192
#define SEG_MAX (2 * (IPK__SHM_HDR + CAP_MAX))

/* Positive deadlines: how far ahead, and how many operations of one input may have one. */
#define TINY_NS   10000
#define MAX_WAITS 4
/* How many times one input may detach and attach again (a multi=1 attach reads the process's
 * start time from /proc), or close and dial again (kind 3: each maps and unmaps the segment, a
 * TLB shootdown). */
#define MAX_AGAIN 8

/* The segment under test: seg (seg_len bytes, one or two headers of half bytes each). */
static unsigned char *seg;
static size_t seg_len, half;
static uint64_t cap;

static void poke(size_t off, uint64_t v, unsigned width)
{
    for (unsigned i = 0; i < width && off + i < seg_len; i++)
        seg[off + i] = (unsigned char)(v >> (8 * i));
}

/* Writes a chosen field of header `which` (or of the record at its head or tail). */
static void poke_field(rd *r)
{
    unsigned f = rd8(r);
    size_t base = (f & 0x80) && seg_len > half ? half : 0;
    uint64_t v = rdn(r, 8);
    /* Small values and values near the indices are the interesting ones. */
    switch (rd8(r) & 3) {
    case 0:
        v &= 0xff;
        break;
    case 1:
        v = cap + (int8_t)(v & 0xff);
        break;
    case 2:
        v &= 0xffffffffu;
        break;
    default:
        break;
    }
    struct ipk__shm_hdr *h = (struct ipk__shm_hdr *)(seg + base);
    uint64_t head = atomic_load(&h->head), tail = atomic_load(&h->tail);
    unsigned char *d = seg + base + IPK__SHM_HDR;
    size_t o;
    unsigned w = 8;
    unsigned fi = (f & 0x7f) % 20;
    switch (fi) {
#define F(field, width)                                                                            \
    o = base + offsetof(struct ipk__shm_hdr, field);                                               \
    w = width;                                                                                     \
    break
    case 0:
        F(head, 8);
    case 1:
        F(tail, 8);
    case 2:
        F(nprod, 4);
    case 3:
        F(everprod, 4);
    case 4:
        F(prod_pid, 4);
    case 5:
        F(cons_pid, 4);
    case 6:
        F(flags, 4);
    case 7:
        F(capacity, 8);
    case 8:
        F(cons_sleepers, 4);
    case 9:
        F(prod_sleepers, 4);
    case 10:
        F(mbox.state, 4);
    case 11:
        F(mbox.len, 4);
    case 12:
        F(mbox.at, 8);
    case 13:
        F(bell, 4);
    case 14:
        F(pollw[0].armed, 4);
#undef F
    case 15: /* the record header at tail (15, 16) or at head (17, 18): len, tag */
    case 16:
    case 17:
    case 18:
        o = (size_t)(d - seg) + ((fi < 17 ? tail : head) & (cap - 1)) + (fi % 2 == 0 ? 4 : 0);
        w = 4;
        if (fi % 2 == 0 && (v & 1))
            v = v & 2 ? IPK__SHM_TAG_DATA : IPK__SHM_TAG_PAD;
        break;
    default: /* a tag at any aligned data position */
        o = (size_t)(d - seg) + ((v >> 32) & (cap - 1) & ~(uint64_t)7) + 4;
        v = v & 1 ? IPK__SHM_TAG_DATA : IPK__SHM_TAG_PAD;
        w = 4;
        break;
    }
    poke(o, v, w);
}

/* ---- the segment's image ---- */

static unsigned char *tmpl[4][8];

/* A freshly initialised segment of kind k and capacity 64 << e (built once, then copied). */
static const unsigned char *template_for(int k, int e)
{
    if (tmpl[k][e] == NULL) {
        unsigned char *t = aligned_alloc(PAGE, SEG_MAX);
        assert(t != NULL);
        memset(t, 0, SEG_MAX);
        uint32_t fl = k == 1 ? IPK__SHM_F_MULTI : k == 2 ? IPK__SHM_F_DUPLEX : 0;
        size_t hl = ipk__shm_seg_size(cap);
        if (k == 2)
            assert(ipk__shm_init((void *)(t + hl), cap, hl, fl) == 0);
        assert(ipk__shm_init((void *)t, cap, k == 2 ? 2 * hl : hl, fl) == 0);
        tmpl[k][e] = t;
    }
    return tmpl[k][e];
}

static void apply_patches(rd *r)
{
    unsigned np = rd8(r) % 16;
    for (unsigned i = 0; i < np; i++) {
        size_t off = rd16(r) % seg_len;
        unsigned len = rd8(r) % 17;
        for (unsigned j = 0; j < len; j++)
            poke(off + j, rd8(r), 1);
    }
}

/* ---- kinds 0-2: the ring code on a guarded memfd mapping ---- */

static unsigned char *region; /* PAGE guard, SEG_MAX mapped, PAGE guard */
static int memfd = -1;

static void map_guarded(void)
{
    if (memfd < 0) {
        memfd = memfd_create("ipk-fuzz-shm", MFD_CLOEXEC);
        assert(memfd >= 0 && ftruncate(memfd, SEG_MAX) == 0);
        region = mmap(NULL, SEG_MAX + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert(region != MAP_FAILED);
    }
    /* Only the pages the segment needs are accessible, and it ends where they do. Mapped
     * again only when that size changes: a mapping replaced costs a TLB shootdown (an IPI
     * to every CPU this process ran on) and a page fault per page. */
    static size_t mapped;
    size_t pages = (seg_len + PAGE - 1) / PAGE * PAGE;
    if (pages != mapped) {
        void *m = mmap(region + PAGE, SEG_MAX + PAGE, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        assert(m == region + PAGE);
        m = mmap(region + PAGE, pages, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd, 0);
        assert(m == region + PAGE);
        mapped = pages;
    }
    seg = region + PAGE + pages - seg_len;
}

/* One end's view: tx produces, rx consumes (the same ring unless duplex). */
typedef struct end {
    ipk__ring tx, rx;
    int up;
} end;

static void end_attach_rings(end *x, int kind, int e)
{
    if (kind != 2) {
        if (ipk__ring_attach(&x->tx, seg, seg_len, "fuzz") != 0 ||
            ipk__ring_attach(&x->rx, seg, seg_len, "fuzz") != 0)
            return;
        x->up = 1;
        return;
    }
    /* As shm.c does for duplex=1: two halves, the header's capacity says how large. */
    uint64_t c = ((struct ipk__shm_hdr *)seg)->capacity;
    size_t h = c <= CAP_MAX ? ipk__shm_seg_size(c) : 0;
    if (h == 0 || seg_len < 2 * h)
        return;
    /* Ring 0 first, as shm.c does: its checks of the capacity come before anything is read
     * at the second half. */
    ipk__ring *r0 = e ? &x->rx : &x->tx, *r1 = e ? &x->tx : &x->rx;
    if (ipk__ring_attach(r0, seg, h, "fuzz") != 0 ||
        ipk__ring_attach(r1, seg + h, h, "fuzz") != 0 || x->rx.cap != x->tx.cap || x->tx.multi ||
        x->rx.multi)
        return;
    if (ipk__ring_duplex(&x->tx, &x->rx, &((struct ipk__shm_hdr *)seg)->mbox, e) != 0) {
        ipk__ring_detach(&x->tx);
        ipk__ring_detach(&x->rx);
        return;
    }
    x->up = 1;
}

static int64_t spin_ns; /* byte 0's bit 5 (ring kinds) */

static void end_attach(end *x, int kind, int e)
{
    memset(x, 0, sizeof *x);
    end_attach_rings(x, kind, e);
    x->tx.spin_ns = x->rx.spin_ns = spin_ns; /* as shm.c, after the attach that cleared it */
}

/* A detach's wait for a forged lock ends in its timeout at once (see the top). */
static void detach_now(ipk__ring *r)
{
    ipk__fault_set(IPK__SYS_FUTEX, 1, ETIMEDOUT);
    ipk__ring_detach(r);
    ipk__fault_clear();
}

static void end_detach(end *x)
{
    if (x->up) {
        detach_now(&x->tx);
        if (&x->rx != &x->tx)
            detach_now(&x->rx);
    }
    x->up = 0;
}

static unsigned char msg[CAP_MAX], buf[CAP_MAX];

static void check_len(long n, size_t bufcap)
{
    assert(n < 0 || ((size_t)n <= bufcap && (uint64_t)n <= cap));
}

/* An operation's deadline: IPK__DL_NOW, or TINY_NS ahead when op has bits 5 and 6 set (for
 * MAX_WAITS operations of an input; waits counts them). */
static int waits;

static int64_t op_dl(unsigned op)
{
    if ((op & 0x60) != 0x60 || waits >= MAX_WAITS)
        return IPK__DL_NOW;
    waits++;
    return ipk__now() + TINY_NS;
}

static void run_ring(rd *r, int kind)
{
    waits = 0;
    int again = 0;
    end ends[2];
    int n_ends = kind == 2 ? 2 : 1;
    for (int e = 0; e < n_ends; e++)
        end_attach(&ends[e], kind, e);
    for (unsigned steps = 0; r->n > 0 && steps < 256; steps++) {
        unsigned op = rd8(r);
        end *x = &ends[(op >> 7) % n_ends];
        switch (op & 15) {
        case 0:
        case 1: {
            size_t len = rd8(r) * (op & 1 ? 33 : 1) % (cap + 1);
            if (x->up)
                (void)ipk__ring_send(&x->tx, msg, len, op_dl(op));
            break;
        }
        case 2:
        case 3: {
            size_t bc = op & 1 ? rd8(r) : sizeof buf;
            size_t need = 0;
            if (x->up)
                check_len(ipk__ring_recv(&x->rx, buf, bc, &need, op_dl(op)), bc);
            break;
        }
        case 4: {
            const void *p;
            if (!x->up)
                break;
            long n = ipk__ring_peek(&x->rx, &p, op_dl(op));
            check_len(n, cap);
            if (n > 0)
                memcpy(buf, p, (size_t)n);
            if (n >= 0 && !(rd8(r) & 1))
                (void)ipk__ring_release(&x->rx);
            break;
        }
        case 5:
            if (x->up)
                (void)ipk__ring_release(&x->rx);
            break;
        case 6: {
            void *p;
            size_t len = rd8(r) % (cap + 1), clen = rd8(r) % (cap + 1);
            if (x->up && ipk__ring_reserve(&x->tx, &p, len, op_dl(op)) == 0) {
                memset(p, 0xa5, len);
                if (clen <= len || (op & 16))
                    (void)ipk__ring_commit(&x->tx, clen);
            }
            break;
        }
        case 7:
            if (x->up) {
                (void)ipk__ring_pending(&x->rx);
                (void)ipk__ring_poll_ready(&x->rx, IPK__PW_RECORDS);
                (void)ipk__ring_poll_ready(&x->tx, IPK__PW_SPACE);
            }
            break;
        case 8: {
            ipk_iov v[3] = {{msg, rd8(r) % (cap + 1)}, {msg, rd8(r)}, {msg, 0}};
            if (x->up)
                (void)ipk__ring_sendv(&x->tx, v, 3, op_dl(op));
            break;
        }
        case 9: /* this end goes away and a new process takes its place */
            if (again++ >= MAX_AGAIN)
                break;
            end_detach(x);
            end_attach(x, kind, (int)(x - ends));
            break;
        case 10: /* only the producer side closes (EOF for the consumer) */
            if (x->up && kind != 2 && again++ < MAX_AGAIN) {
                detach_now(&x->tx);
                if (ipk__ring_attach(&x->tx, seg, seg_len, "fuzz") != 0) {
                    detach_now(&x->rx);
                    x->up = 0;
                }
                x->tx.spin_ns = spin_ns;
            }
            break;
        case 11:
        case 12:
            poke(rd16(r) % seg_len, rdn(r, 8), 1u << (rd8(r) & 3));
            break;
        default:
            poke_field(r);
            break;
        }
    }
    for (int e = 0; e < n_ends; e++)
        end_detach(&ends[e]);
}

/* ---- kind 3: a dial through the public API ---- */

static int obj_fd = -1;
static unsigned char *obj_map;
static char obj_name[64];

static void cleanup_obj(void)
{
    shm_unlink(obj_name);
}

/* ipk_close, whose detach waits as a ring's does (see detach_now). */
static void close_now(ipk_chan *c)
{
    ipk__fault_set(IPK__SYS_FUTEX, 1, ETIMEDOUT);
    (void)ipk_close(c);
    ipk__fault_clear();
}

static void run_public(rd *r)
{
    if (obj_fd < 0) {
        snprintf(obj_name, sizeof obj_name, "/ipkfuzz-%d", (int)getpid());
        obj_fd = shm_open(obj_name, O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert(obj_fd >= 0 && ftruncate(obj_fd, SEG_MAX) == 0);
        obj_map = mmap(NULL, SEG_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, obj_fd, 0);
        assert(obj_map != MAP_FAILED);
        atexit(cleanup_obj);
    }
    assert(ftruncate(obj_fd, (off_t)seg_len) == 0);
    memcpy(obj_map, seg, seg_len);
    seg = obj_map;
    /* A dialer waits up to 100 ms for the magic of a segment being created: not fuzzed here
     * (one comparison), so that an input never costs that wait. */
    struct ipk__shm_hdr *h0 = (struct ipk__shm_hdr *)seg;
    atomic_store(&h0->magic, IPK__SHM_MAGIC);
    char url[96];
    snprintf(url, sizeof url, "shm:%s?stale=1", obj_name);
    ipk_chan *c = NULL;
    (void)ipk_dial(&c, url, NULL);
    int again = 0;
    for (unsigned steps = 0; r->n > 0 && steps < 256; steps++) {
        unsigned op = rd8(r);
        switch (op & 7) {
        case 0:
            if (c)
                (void)ipk_send(c, msg, rd8(r) * (op & 8 ? 33 : 1) % (cap + 1), 0);
            break;
        case 1: {
            size_t bc = op & 8 ? rd8(r) : sizeof buf;
            if (c)
                check_len(ipk_recv(c, buf, bc, 0), bc);
            break;
        }
        case 2: {
            const void *p;
            long n = c ? ipk_peek(c, &p, 0) : -1;
            check_len(n, cap);
            if (n > 0)
                memcpy(buf, p, (size_t)n);
            if (n >= 0 && !(op & 8))
                (void)ipk_release(c);
            break;
        }
        case 3:
            if (c) {
                (void)ipk_pending(c);
                (void)ipk_undelivered(c);
            }
            break;
        case 4:
            if (again++ >= MAX_AGAIN)
                break;
            if (c)
                close_now(c);
            c = NULL;
            atomic_store(&h0->magic, IPK__SHM_MAGIC);
            (void)ipk_dial(&c, url, NULL);
            break;
        case 5:
            poke(rd16(r) % seg_len, rdn(r, 8), 1u << (rd8(r) & 3));
            break;
        default:
            poke_field(r);
            break;
        }
    }
    if (c)
        close_now(c);
    char info[512];
    (void)ipk_info(url, info, sizeof info);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    rd r = {data, size};
    unsigned b = rd8(&r);
    int kind = b & 3, e = (b >> 2) % 8;
    if (kind == 3)
        e = 6 + e % 2; /* shm's smallest ring is 4 KiB */
    else if (e > 6)
        e = 6;
    spin_ns = kind != 3 && (b & 0x20) ? 2000 : 0;
    cap = (uint64_t)64 << e;
    half = ipk__shm_seg_size(cap);
    seg_len = kind == 2 || (kind == 3 && (b & 0x40)) ? 2 * half : half;
    if (kind == 3)
        seg = (unsigned char *)template_for((b & 0x40) ? 2 : (b & 0x80) ? 1 : 0, e);
    else
        map_guarded();
    if (kind != 3)
        memcpy(seg, template_for(kind, e), seg_len);
    if (kind == 3) {
        /* Copy the template into a scratch image first, then patch it there. */
        static unsigned char img[SEG_MAX];
        memcpy(img, seg, seg_len);
        seg = img;
        apply_patches(&r);
        run_public(&r);
        return 0;
    }
    apply_patches(&r);
    run_ring(&r, kind);
    return 0;
}
