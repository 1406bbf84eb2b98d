/*
 * test_harden.c - regression tests for the defects a hostile-input and kill run found (issue
 * 15): each test here failed before its fix. Signal names outside SIGRTMIN..SIGRTMAX, shm
 * indices and records written by a hostile process, objects another user planted at a
 * listener's name, a file log cut short by a system crash, and the smaller error messages.
 */
#include "harness.h"
#include "ring.h" /* the shm segment layout, to write it as a hostile process would */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- 1. signal: RTMIN+n / RTMAX-n stay inside the real-time range ---- */

static void t_sig_rt_range(void **state)
{
    (void)state;
    ipk_chan *c = NULL;
    char url[64];
    /* RTMAX-64 was signal 0: sigqueue() delivered nothing and the send succeeded. */
    ipkt_expect(ipk_dial(&c, "signal:self?sig=RTMAX-64", NULL), IPK_EOPTION);
    ipkt_errmsg_has("SIGRTMAX");
    /* RTMAX-33 .. RTMAX-63 were standard signals (RTMAX-40 was SIGXCPU). */
    for (int off = 33; off <= 63; off++) {
        snprintf(url, sizeof url, "signal:self?sig=RTMAX-%d", off);
        ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    }
    snprintf(url, sizeof url, "signal:self?sig=RTMIN+%d", SIGRTMAX - SIGRTMIN + 1);
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    /* The ends of the range still work, and name the signal they are. */
    snprintf(url, sizeof url, "signal:self?sig=RTMAX-%d", SIGRTMAX - SIGRTMIN);
    ipkt_ok(ipk_listen(&c, url, NULL));
    assert_non_null(strstr(ipk_addr(c), "sig=RTMIN+0"));
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_listen(&c, "signal:self?sig=RTMAX-0", NULL));
    ipkt_ok(ipk_close(c));
}

/* ---- 2-4. shm: indices and records another process wrote ---- */

/* A hostile process's view of a ring segment: the whole mapping, header and data. */
typedef struct seg {
    void *map;
    size_t len;
    struct ipk__shm_hdr *h;
    unsigned char *data;
} seg;

static void seg_map(seg *s, const char *name)
{
    int fd = shm_open(name, O_RDWR, 0);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    s->len = (size_t)st.st_size;
    s->map = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(s->map != MAP_FAILED);
    close(fd);
    s->h = s->map;
    s->data = (unsigned char *)s->map + IPK__SHM_HDR;
}

/* A listener on a new 4 KiB ring (query: more options) and its name. */
static ipk_chan *shm_ring(char *name, size_t cap, const char *query)
{
    char url[160];
    ipkt_name(name, cap, "/");
    ipkt_journal("shm", name);
    snprintf(url, sizeof url, "shm:%s?size=4k%s", name, query);
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, url, NULL));
    return c;
}

static ipk_chan *shm_dial(const char *name, const char *query)
{
    char url[160];
    snprintf(url, sizeof url, "shm:%s%s", name, query);
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, url, NULL));
    return c;
}

/* multi=1 takes head and tail from the segment under the mutex at every call: a head that is
 * no record boundary made the producer write 4 bytes past the data area. */
static void t_shm_multi_indices(void **state)
{
    (void)state;
    char name[64], buf[64];
    ipk_chan *rx = shm_ring(name, sizeof name, "&multi=1"), *tx = shm_dial(name, "");
    seg s;
    seg_map(&s, name);
    uint64_t cap = s.h->capacity;
    ipkt_ok(ipk_send(tx, "one", 3, 0));
    atomic_store(&s.h->head, cap - 4);
    ipkt_expect(ipk_send(tx, "two", 3, 0), IPK_EPROTO);
    ipkt_errmsg_has("corrupt header");
    /* Nothing was written at or past the end of the data area. */
    assert_int_equal(atomic_load(&s.h->head), cap - 4);
    /* A head more than a lap ahead of tail is refused too. */
    atomic_store(&s.h->head, 16 + 2 * cap);
    ipkt_expect(ipk_send(tx, "two", 3, 0), IPK_EPROTO);
    atomic_store(&s.h->head, 16);
    /* The consumers' side: a tail that is no record boundary. */
    atomic_store(&s.h->tail, cap - 4);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), IPK_EPROTO);
    ipkt_errmsg_has("corrupt header");
    atomic_store(&s.h->tail, 0);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), 3);
    assert_memory_equal(buf, "one", 3);
    ipkt_ok(ipk_close(tx));
    ipkt_ok(ipk_close(rx));
    munmap(s.map, s.len);
}

/* SPSC reads them once, when each side attaches: the same checks apply there. */
static void t_shm_spsc_attach_indices(void **state)
{
    (void)state;
    char name[64], buf[64];
    ipk_chan *rx = shm_ring(name, sizeof name, ""), *tx = shm_dial(name, "");
    seg s;
    seg_map(&s, name);
    uint64_t cap = s.h->capacity;
    atomic_store(&s.h->tail, cap - 4);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), IPK_EPROTO);
    atomic_store(&s.h->head, cap - 4);
    ipkt_expect(ipk_send(tx, "x", 1, 0), IPK_EPROTO);
    /* Repaired, both attach: a failed attach did not keep the claim. */
    atomic_store(&s.h->head, 0);
    atomic_store(&s.h->tail, 0);
    ipkt_ok(ipk_send(tx, "x", 1, 0));
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), 1);
    ipkt_ok(ipk_close(tx));
    ipkt_ok(ipk_close(rx));
    munmap(s.map, s.len);
}

/* ipk_pending read the segment's tail unchecked: a tail moved back onto a consumed record made
 * it report a message on an empty ring (that recv would never return), one moved off a record
 * boundary made it read past the ring. */
static void t_shm_pending_tail(void **state)
{
    (void)state;
    char name[64], buf[64];
    ipk_chan *rx = shm_ring(name, sizeof name, ""), *tx = shm_dial(name, "");
    seg s;
    seg_map(&s, name);
    uint64_t cap = s.h->capacity;
    ipkt_ok(ipk_send(tx, "one", 3, 0));
    assert_int_equal(ipk_pending(rx), 1);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), 3);
    assert_int_equal(ipk_pending(rx), 0);
    atomic_store(&s.h->tail, 0); /* back onto "one", consumed but still tagged DATA */
    assert_int_equal(ipk_pending(rx), 0);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), -EAGAIN);
    atomic_store(&s.h->tail, cap - 4);
    assert_int_equal(ipk_pending(rx), 0);
    ipkt_ok(ipk_close(tx));
    ipkt_ok(ipk_close(rx));
    /* A consumer that has not attached yet (and multi=1) reads the segment's tail: checked. */
    rx = shm_ring(name, sizeof name, "&multi=1");
    munmap(s.map, s.len);
    seg_map(&s, name);
    memset(s.data, 0xff, s.h->capacity); /* tags that read as "something" everywhere */
    atomic_store(&s.h->tail, cap - 4);
    assert_int_equal(ipk_pending(rx), 0);
    ipkt_ok(ipk_close(rx));
    munmap(s.map, s.len);
}

/* A data area of zero-length PAD records, or one PAD that leads back to itself: the receive
 * walked over them forever at 100% CPU, whatever its timeout. */
static void t_shm_pad_lap(void **state)
{
    (void)state;
    char name[64], buf[64];
    const void *p;
    for (int kind = 0; kind < 2; kind++) {
        ipk_chan *rx = shm_ring(name, sizeof name, "");
        seg s;
        seg_map(&s, name);
        uint64_t cap = s.h->capacity;
        for (uint64_t i = 0; i < cap; i += IPK__SHM_RECHDR) {
            uint32_t rec[2] = {kind ? (uint32_t)(cap - IPK__SHM_RECHDR) : 0, IPK__SHM_TAG_PAD};
            memcpy(s.data + i, rec, sizeof rec);
            if (kind)
                break; /* one PAD as long as the ring */
        }
        ipkt_expect(ipk_recv(rx, buf, sizeof buf, 100), IPK_EPROTO);
        ipkt_errmsg_has("corrupt ring");
        ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), IPK_EPROTO);
        ipkt_expect(ipk_peek(rx, &p, -1), IPK_EPROTO);
        assert_int_equal(ipk_pending(rx), 0);
        ipkt_ok(ipk_close(rx));
        munmap(s.map, s.len);
    }
}

IPKT_MAIN(cmocka_unit_test(t_sig_rt_range), cmocka_unit_test(t_shm_multi_indices),
          cmocka_unit_test(t_shm_spsc_attach_indices), cmocka_unit_test(t_shm_pending_tail),
          cmocka_unit_test(t_shm_pad_lap))
