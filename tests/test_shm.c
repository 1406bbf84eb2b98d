/*
 * test_shm.c - the shm: transport: the queue family's conformance suite (suite_queue.h) on a
 * ring, then what only rings have: a million records through many wrap-arounds (one producer,
 * then four), consumers that see the end of the stream, a producer killed while it holds the
 * mutex in the middle of a record, foreign and stale segments, one producer at a time without
 * multi=1, two processes sharing one CPU, the guide's segment + semaphore protocol in both
 * directions, and zero-copy.
 */
#include "harness.h"
#include "suite_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Test hook in ring.c: the nth send dies half-way through its record. */
extern int ipk__shm_die_at;

/* ---- helpers ---- */

static const char *ring(char *name, size_t cap)
{
    ipkt_name(name, cap, "/");
    ipkt_journal("shm", name);
    return name;
}

static const char *url(char *buf, size_t cap, const char *name, const char *query)
{
    snprintf(buf, cap, "shm:%s%s%s", name, query ? "?" : "", query ? query : "");
    return buf;
}

/* Records: a header {seq, producer, payload length, checksum}, then a payload cut from a
 * random block at an offset derived from (producer, seq). Sizes: mostly under 200 bytes, one
 * in eight up to 6000. */
typedef struct rec_hdr {
    uint32_t seq, prod, len, sum;
} rec_hdr;

#define RND_LEN 8192
static unsigned char rnd[RND_LEN];
#define REC_MAX (sizeof(rec_hdr) + 6000)

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint32_t sum32(const unsigned char *p, size_t n)
{
    uint64_t s = n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        s = (s ^ w) * 0x100000001b3ULL;
    }
    for (; i < n; i++)
        s = (s ^ p[i]) * 0x100000001b3ULL;
    return (uint32_t)(s ^ (s >> 32));
}

static size_t make_rec(unsigned char *buf, uint32_t prod, uint32_t seq)
{
    uint64_t h = mix(((uint64_t)prod << 32) | seq);
    size_t len = (h & 7) == 0 ? (size_t)((h >> 8) % 6001) : (size_t)((h >> 8) % 200);
    size_t off = (size_t)((h >> 40) % 2048);
    rec_hdr r = {seq, prod, (uint32_t)len, sum32(rnd + off, len)};
    memcpy(buf, &r, sizeof r);
    memcpy(buf + sizeof r, rnd + off, len);
    return sizeof r + len;
}

/* Checks a received record against what make_rec would have sent; returns its producer. */
static uint32_t check_rec(const unsigned char *buf, long n, uint32_t *next)
{
    rec_hdr r;
    assert_true(n >= (long)sizeof r);
    memcpy(&r, buf, sizeof r);
    assert_true(r.prod < 8);
    if (r.seq != next[r.prod])
        print_error("producer %u: got seq %u, expected %u\n", r.prod, r.seq, next[r.prod]);
    assert_int_equal(r.seq, next[r.prod]);
    unsigned char want[REC_MAX];
    size_t wn = make_rec(want, r.prod, r.seq);
    assert_int_equal((size_t)n, wn);
    assert_int_equal(sum32(buf + sizeof r, r.len), r.sum);
    assert_memory_equal(buf, want, wn);
    next[r.prod]++;
    return r.prod;
}

/* IPKT_SCALE divides the big record counts (never below 100,000). */
static uint32_t scaled(uint32_t n)
{
    const char *s = getenv("IPKT_SCALE");
    uint32_t k = s ? (uint32_t)atoi(s) : 1;
    if (k < 1)
        k = 1;
    n /= k;
    return n < 100000 ? 100000 : n;
}

typedef struct prod_arg {
    char url[200];
    uint32_t prod, n;
    int die_at;
} prod_arg;

static int producer(void *p)
{
    prod_arg *a = p;
    ipk_chan *c;
    int r = ipk_dial(&c, a->url, NULL);
    if (r != 0) {
        fprintf(stderr, "producer %u: dial: %s (%s)\n", a->prod, ipk_strerror(r), ipk_errmsg());
        return 1;
    }
    ipk__shm_die_at = a->die_at;
    unsigned char buf[REC_MAX];
    for (uint32_t s = 0; s < a->n; s++) {
        size_t n = make_rec(buf, a->prod, s);
        r = ipk_send(c, buf, n, 30000);
        if (r != 0) {
            fprintf(stderr, "producer %u: send %u: %s (%s)\n", a->prod, s, ipk_strerror(r),
                    ipk_errmsg());
            return 1;
        }
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

static void get_info(const char *u, char *buf, size_t cap)
{
    long n = ipk_info(u, buf, cap);
    assert_true(n > 0 && (size_t)n < cap);
}

/* ---- a million records ---- */

static void run_million(int nprod, const char *query)
{
    char name[64], u[200];
    ipkt_fill(rnd, sizeof rnd, 7);
    ring(name, sizeof name);
    url(u, sizeof u, name, query);
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, u, NULL));
    uint32_t total = scaled(1000000), per = total / (uint32_t)nprod;
    prod_arg a[4];
    pid_t pid[4];
    for (int i = 0; i < nprod; i++) {
        a[i] = (prod_arg){.prod = (uint32_t)i, .n = per};
        snprintf(a[i].url, sizeof a[i].url, "%s", u);
        pid[i] = ipkt_spawn(producer, &a[i]);
    }
    uint32_t next[8] = {0};
    unsigned char buf[REC_MAX];
    for (uint32_t got = 0; got < per * (uint32_t)nprod; got++) {
        long n = ipk_recv(c, buf, sizeof buf, 30000);
        if (n < 0)
            ipkt_expect(n, 0);
        check_rec(buf, n, next);
    }
    for (int i = 0; i < nprod; i++) {
        assert_int_equal(next[i], per);
        assert_int_equal(ipkt_wait(pid[i]), 0);
    }
    /* Every producer has closed and the ring is empty: end of stream, nothing extra. */
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_ok(ipk_close(c));
    assert_int_equal(shm_open(name, O_RDONLY, 0), -1); /* the owner removed it */
    assert_int_equal(errno, ENOENT);
}

static void t_million_spsc(void **state)
{
    (void)state;
    run_million(1, "size=64k");
}

static void t_million_four_producers(void **state)
{
    (void)state;
    run_million(4, "size=64k&multi=1");
}

/* Several consumers (multi=1): each message goes to exactly one of them, and each consumer
 * sees every producer's messages in order. A consumer reports its per-producer counts. */
typedef struct cons_arg {
    char url[200];
    int fd; /* write end for the counts */
} cons_arg;

static int consumer(void *p)
{
    cons_arg *a = p;
    ipk_chan *c;
    if (ipk_dial(&c, a->url, NULL) != 0)
        return 1;
    uint32_t count[8] = {0};
    int64_t last[8];
    for (int i = 0; i < 8; i++)
        last[i] = -1;
    unsigned char buf[REC_MAX], want[REC_MAX];
    long n;
    while ((n = ipk_recv(c, buf, sizeof buf, 30000)) >= 0) {
        rec_hdr r;
        memcpy(&r, buf, sizeof r);
        if (r.prod >= 8 || (int64_t)r.seq <= last[r.prod] ||
            (size_t)n != make_rec(want, r.prod, r.seq) || memcmp(buf, want, (size_t)n) != 0)
            return 2;
        last[r.prod] = r.seq;
        count[r.prod]++;
    }
    if (n != IPK_EOF || write(a->fd, count, sizeof count) != (ssize_t)sizeof count)
        return 3;
    return ipk_close(c) == 0 ? 0 : 4;
}

static void t_two_consumers_two_producers(void **state)
{
    (void)state;
    char name[64], u[200];
    ipkt_fill(rnd, sizeof rnd, 7);
    url(u, sizeof u, ring(name, sizeof name), "size=64k&multi=1");
    ipk_chan *l, *hold;
    ipkt_ok(ipk_listen(&l, u, NULL));
    /* This process stays attached as a producer until the others are done, so the consumers'
     * EOF cannot come between one producer's close and the other's first send. */
    ipkt_ok(ipk_dial(&hold, u, NULL));
    unsigned char buf[REC_MAX];
    ipkt_ok(ipk_send(hold, buf, make_rec(buf, 7, 0), 0));
    int pfd[2][2];
    cons_arg ca[2];
    pid_t cp[2], pp[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pipe(pfd[i]), 0);
        ca[i].fd = pfd[i][1];
        snprintf(ca[i].url, sizeof ca[i].url, "%s", u);
        cp[i] = ipkt_spawn(consumer, &ca[i]);
    }
    prod_arg a[2] = {{.prod = 0, .n = 50000}, {.prod = 1, .n = 50000}};
    for (int i = 0; i < 2; i++) {
        snprintf(a[i].url, sizeof a[i].url, "%s", u);
        pp[i] = ipkt_spawn(producer, &a[i]);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(ipkt_wait(pp[i]), 0);
    ipkt_ok(ipk_close(hold));
    uint32_t total[8] = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ipkt_wait(cp[i]), 0);
        uint32_t count[8];
        assert_int_equal(read(pfd[i][0], count, sizeof count), (ssize_t)sizeof count);
        for (int k = 0; k < 8; k++)
            total[k] += count[k];
    }
    assert_int_equal(total[0], 50000);
    assert_int_equal(total[1], 50000);
    assert_int_equal(total[7], 1);
    ipkt_ok(ipk_close(l));
}

/* ---- kill -9 in the middle of a record, holding the mutex ---- */

static void t_kill_producer_mid_record(void **state)
{
    (void)state;
    char name[64], u[200], info[2048];
    ipkt_fill(rnd, sizeof rnd, 7);
    ring(name, sizeof name);
    url(u, sizeof u, name, "size=64k&multi=1");
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, u, NULL));
    /* Producer 0 dies at its 500th send, after writing half of it, with the mutex held.
     * Producer 1 runs alongside; producer 2 starts after the death, so someone must take the
     * mutex over from the dead holder. */
    prod_arg a[3] = {
        {.prod = 0, .n = 100000, .die_at = 500}, {.prod = 1, .n = 20000}, {.prod = 2, .n = 20000}};
    for (int i = 0; i < 3; i++)
        snprintf(a[i].url, sizeof a[i].url, "%s", u);
    pid_t p0 = ipkt_spawn(producer, &a[0]), p1 = ipkt_spawn(producer, &a[1]), p2 = 0;
    uint32_t next[8] = {0};
    unsigned char buf[REC_MAX];
    int st, dead = 0;
    for (int idle = 0; next[1] + next[2] < 40000 || next[0] < 499;) {
        long n = ipk_recv(c, buf, sizeof buf, 100);
        if (n == IPK_ETIMEDOUT) {
            assert_true(++idle < 600); /* 60 s without progress: wedged */
        } else {
            if (n < 0)
                ipkt_expect(n, 0);
            check_rec(buf, n, next);
            idle = 0;
        }
        if (!dead && waitpid(p0, &st, WNOHANG) == p0) {
            assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
            dead = 1;
            p2 = ipkt_spawn(producer, &a[2]);
        }
    }
    /* Everything producer 0 committed arrived; its half record never does. */
    assert_int_equal(next[0], 499);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 300), IPK_ETIMEDOUT);
    assert_true(dead);
    assert_int_equal(ipkt_wait(p1), 0);
    assert_int_equal(ipkt_wait(p2), 0);
    get_info(u, info, sizeof info);
    if (strstr(info, "mutex recoveries: 1\n") == NULL)
        print_error("%s", info);
    assert_non_null(strstr(info, "mutex recoveries: 1\n"));
    ipkt_ok(ipk_close(c));
}

/* Without multi=1 a producer killed mid-record leaves no lock; a new producer takes over the
 * dead one's claim and the half record is overwritten. */
static void t_kill_spsc_producer(void **state)
{
    (void)state;
    char name[64], u[200];
    ipkt_fill(rnd, sizeof rnd, 7);
    ring(name, sizeof name);
    url(u, sizeof u, name, "size=16k");
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, u, NULL));
    prod_arg a = {.prod = 0, .n = 1000, .die_at = 11};
    snprintf(a.url, sizeof a.url, "%s", u);
    assert_int_equal(ipkt_wait(ipkt_spawn(producer, &a)), 128 + SIGKILL);
    uint32_t next[8] = {0};
    unsigned char buf[REC_MAX];
    for (int i = 0; i < 10; i++)
        check_rec(buf, ipk_recv(c, buf, sizeof buf, 1000), next);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    char info[2048];
    get_info(u, info, sizeof info);
    if (strstr(info, "claims: producer pid") == NULL || strstr(info, "DEAD: killed") == NULL)
        print_error("%s", info);
    assert_non_null(strstr(info, "DEAD: killed without closing"));
    a = (prod_arg){.prod = 1, .n = 100};
    snprintf(a.url, sizeof a.url, "%s", u);
    pid_t p = ipkt_spawn(producer, &a);
    for (int i = 0; i < 100; i++)
        check_rec(buf, ipk_recv(c, buf, sizeof buf, 10000), next);
    assert_int_equal(ipkt_wait(p), 0);
    assert_int_equal(next[0], 10);
    assert_int_equal(next[1], 100);
    /* The new producer counted itself as the only one, so its close is the end of the stream
     * (the killed one never counted itself out). */
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_ok(ipk_close(c));
}

/* ---- signals do not cut a wait short, in mode=segment too (the suite covers the ring) ---- */

static void t_segment_eintr(void **state)
{
    (void)state;
    char name[64], sem[64], u[200];
    ring(name, sizeof name);
    ipkt_name(sem, sizeof sem, "/");
    ipkt_journal("sem", sem);
    snprintf(u, sizeof u, "shm:%s?mode=segment&sem=%s", name, sem);
    qs_storm_recv_at(u, 100);
}

/* ---- bad segments and options ---- */

static void t_missing_and_foreign(void **state)
{
    (void)state;
    char name[64], u[200];
    ipk_chan *c = NULL;
    ipkt_expect(ipk_dial(&c, url(u, sizeof u, ring(name, sizeof name), NULL), NULL), -ENOENT);
    ipkt_errmsg_has("no such segment");
    assert_null(c);
    /* A segment that is not a ring: zeros, then a wrong version. */
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8192), 0);
    ipkt_expect(ipk_dial(&c, u, NULL), IPK_EPROTO);
    ipkt_errmsg_has("not an ipckit ring");
    uint32_t hdr[2] = {0x524b5049u, 99};
    assert_int_equal(pwrite(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
    ipkt_expect(ipk_dial(&c, u, NULL), IPK_EPROTO);
    ipkt_errmsg_has("version 99");
    /* The previous layout (3: pthread robust mutexes for multi=1) is refused by name too. */
    hdr[1] = 3;
    assert_int_equal(pwrite(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
    ipkt_expect(ipk_dial(&c, u, NULL), IPK_EPROTO);
    ipkt_errmsg_has("ring layout version 3; this ipckit speaks version 4");
    close(fd);
    /* listen on a name that is taken by something that is not a stale ring. */
    ipkt_expect(ipk_listen(&c, u, NULL), -EEXIST);
    ipkt_errmsg_has("segment exists");
    shm_unlink(name);
}

static void t_options(void **state)
{
    (void)state;
    char name[64], u[200];
    ipk_chan *c = NULL, *d = NULL;
    ring(name, sizeof name);
    ipkt_expect(ipk_listen(&c, url(u, sizeof u, name, "mode=pipe"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("expected ring or segment");
    ipkt_expect(ipk_listen(&c, url(u, sizeof u, name, "mode=segment"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("needs sem=NAME");
    ipkt_expect(ipk_listen(&c, url(u, sizeof u, name, "sem=/x"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("mode=segment only");
    ipkt_expect(ipk_listen(&c, url(u, sizeof u, name, "size=100"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("size=100");
    ipkt_expect(ipk_listen(&c, url(u, sizeof u, name, "spin=-1"), NULL), IPK_EOPTION);
    ipkt_expect(ipk_listen(&c, url(u, sizeof u, name, "framing=raw"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'framing'");
    assert_null(c);
    /* size rounds up to a power of two. */
    ipkt_ok(ipk_listen(&c, url(u, sizeof u, name, "size=5000"), NULL));
    char info[2048];
    get_info(u, info, sizeof info);
    assert_non_null(strstr(info, "data 8192 B"));
    assert_non_null(strstr(info, "owner: pid"));
    assert_non_null(strstr(info, "alive"));
    assert_non_null(strstr(info, "limits: /dev/shm"));
    ipkt_expect(ipk_listen(&d, u, NULL), -EEXIST);
    ipkt_errmsg_has("is alive");
    ipkt_expect(ipk_dial(&d, url(u, sizeof u, name, "multi=1"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("created with multi=0");
    ipkt_ok(ipk_dial(&d, url(u, sizeof u, name, NULL), NULL));
    ipkt_expect(ipk_fd(d), IPK_ENOTSUP);
    ipkt_errmsg_has("no pollable descriptor");
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(c));
    get_info(u, info, sizeof info);
    assert_non_null(strstr(info, "No such file"));
}

/* ---- stale segments ---- */

static int owner_then_hang(void *p)
{
    int *pfd = p;
    ipk_chan *c;
    char u[200];
    if (read(pfd[0], u, sizeof u) <= 0 || ipk_listen(&c, u, NULL) != 0)
        return 1;
    if (write(pfd[1], "R", 1) != 1)
        return 1;
    pause();
    return 0;
}

static void t_stale_segment(void **state)
{
    (void)state;
    char name[64], u[200], info[2048];
    int to[2], from[2];
    assert_int_equal(pipe(to), 0);
    assert_int_equal(pipe(from), 0);
    url(u, sizeof u, ring(name, sizeof name), "size=4k");
    int fds[2] = {to[0], from[1]};
    pid_t pid = ipkt_spawn(owner_then_hang, fds);
    assert_int_equal(write(to[1], u, strlen(u) + 1), (ssize_t)strlen(u) + 1);
    char ok;
    assert_int_equal(read(from[0], &ok, 1), 1);
    ipk_chan *c = NULL;
    ipkt_ok(ipk_dial(&c, u, NULL)); /* live owner */
    ipkt_ok(ipk_close(c));
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(ipkt_wait(pid), 128 + SIGKILL);
    ipkt_expect(ipk_dial(&c, u, NULL), -EOWNERDEAD);
    ipkt_errmsg_has("stale segment");
    ipkt_errmsg_has("stale=1");
    get_info(u, info, sizeof info);
    assert_non_null(strstr(info, "DEAD: stale segment"));
    char stale_u[220];
    snprintf(stale_u, sizeof stale_u, "%s&stale=1", u);
    ipkt_ok(ipk_dial(&c, stale_u, NULL));
    ipkt_ok(ipk_send(c, "x", 1, 0));
    ipkt_ok(ipk_close(c));
    /* listen replaces a stale ring (never a live one: see t_options). */
    ipkt_ok(ipk_listen(&c, u, NULL));
    ipkt_expect(ipk_recv(c, info, sizeof info, 0), -EAGAIN); /* a fresh ring */
    ipkt_ok(ipk_close(c));
    /* keep=1: the owner leaves the ring, which is then not stale but released. */
    snprintf(stale_u, sizeof stale_u, "%s&keep=1", u);
    ipkt_ok(ipk_listen(&c, stale_u, NULL));
    ipk_chan *p;
    ipkt_ok(ipk_dial(&p, u, NULL));
    ipkt_ok(ipk_send(p, "kept", 4, 0));
    ipkt_ok(ipk_close(p));
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_dial(&c, u, NULL));
    ipkt_expect(ipk_recv(c, info, sizeof info, 0), 4);
    ipkt_expect(ipk_recv(c, info, sizeof info, 0), IPK_EOF);
    ipkt_ok(ipk_close(c));
    get_info(u, info, sizeof info);
    assert_non_null(strstr(info, "keep=1"));
    shm_unlink(name);
}

/* ---- an ownerless ring adopted by a later listener (issue 10) ---- */

/* A listener in its own process that sends its arguments and closes without keep=: the ring
 * holds undelivered messages, so it is left ownerless (released), not removed. */
typedef struct {
    const char *url;
    int n;
    const char *const *msgs;
} owner_arg;

static int send_and_leave(void *p)
{
    owner_arg *a = p;
    ipk_chan *c;
    IPKT_CHECK(ipk_listen(&c, a->url, NULL) == 0);
    for (int i = 0; i < a->n; i++)
        IPKT_CHECK(ipk_send(c, a->msgs[i], strlen(a->msgs[i]), 0) == 0);
    IPKT_CHECK(ipk_undelivered(c) > 0);
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

/* Takes one message in its own process, as a listener that adopts the ring. */
static int adopt_take_one(void *p)
{
    owner_arg *a = p;
    ipk_chan *c;
    char buf[64];
    IPKT_CHECK(ipk_listen(&c, a->url, NULL) == 0);
    long n = ipk_recv(c, buf, sizeof buf, 0);
    IPKT_CHECK(n == (long)strlen(a->msgs[0]) && memcmp(buf, a->msgs[0], (size_t)n) == 0);
    IPKT_CHECK(ipk_close(c) == 0); /* one still waits: left ownerless again */
    return 0;
}

static int seg_exists(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    return access(path, F_OK) == 0;
}

static void t_adopt_ownerless(void **state)
{
    (void)state;
    char name[64], u[200], u2[240], buf[64];
    url(u, sizeof u, ring(name, sizeof name), "size=4k");
    static const char *const jobs[] = {"j1", "j2", "j3"};
    owner_arg a = {.url = u, .n = 3, .msgs = jobs};
    assert_int_equal(ipkt_wait(ipkt_spawn(send_and_leave, &a)), 0);
    assert_true(seg_exists(name));
    /* Another process listens and takes j1, then leaves (two wait: the ring stays). */
    static const char *const first[] = {"j1"};
    owner_arg b = {.url = u, .n = 1, .msgs = first};
    assert_int_equal(ipkt_wait(ipkt_spawn(adopt_take_one, &b)), 0);
    assert_true(seg_exists(name));
    /* Options that contradict the ring left there are refused, the ring untouched. */
    ipk_chan *c;
    snprintf(u2, sizeof u2, "shm:%s?size=8k", name);
    ipkt_expect(ipk_listen(&c, u2, NULL), IPK_EOPTION);
    ipkt_errmsg_has("ownerless ring");
    snprintf(u2, sizeof u2, "shm:%s?multi=1", name);
    ipkt_expect(ipk_listen(&c, u2, NULL), IPK_EOPTION);
    /* A mode wider than perm is refused (ipk__listen_adopt), then accepted when perm allows. */
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    assert_int_equal(chmod(path, 0640), 0);
    ipkt_expect(ipk_listen(&c, u, NULL), -EEXIST);
    ipkt_errmsg_has("wider than perm");
    snprintf(u2, sizeof u2, "%s&perm=0640", u);
    ipkt_ok(ipk_listen(&c, u2, NULL));
    /* This listener owns it now: a second one is refused as for any live owner. */
    ipk_chan *d;
    ipkt_expect(ipk_listen(&d, u2, NULL), -EEXIST);
    ipkt_errmsg_has("is alive");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 2);
    assert_memory_equal(buf, "j2", 2);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 2);
    assert_memory_equal(buf, "j3", 2);
    /* A producer may still come. */
    ipkt_ok(ipk_dial(&d, u, NULL));
    ipkt_ok(ipk_send(d, "j4", 2, 0));
    ipkt_ok(ipk_close(d));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 2);
    assert_memory_equal(buf, "j4", 2);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), IPK_EOF);
    ipkt_ok(ipk_close(c)); /* drained: the adopting owner removes it */
    assert_false(seg_exists(name));

    /* A duplex ring left behind is not adopted: what waits at the listener's end was for the
     * listener that left. */
    snprintf(u2, sizeof u2, "shm:%s?size=4k&duplex=1&keep=1", name);
    ipkt_ok(ipk_listen(&c, u2, NULL));
    ipkt_ok(ipk_close(c));
    ipkt_expect(ipk_listen(&c, u, NULL), -EEXIST);
    shm_unlink(name);
}

/* ---- one producer at a time without multi=1; EOF ---- */

static int hold_producer(void *p)
{
    int *pfd = p;
    char u[200];
    ipk_chan *c;
    if (read(pfd[0], u, sizeof u) <= 0 || ipk_dial(&c, u, NULL) != 0 ||
        ipk_send(c, "first", 5, 1000) != 0 || write(pfd[1], "R", 1) != 1)
        return 1;
    char go;
    if (read(pfd[0], &go, 1) != 1)
        return 1;
    return ipk_close(c) == 0 ? 0 : 1;
}

static void t_spsc_claim_and_eof(void **state)
{
    (void)state;
    char name[64], u[200], buf[16];
    int to[2], from[2];
    assert_int_equal(pipe(to), 0);
    assert_int_equal(pipe(from), 0);
    ipk_chan *c, *p;
    ipkt_ok(ipk_listen(&c, url(u, sizeof u, ring(name, sizeof name), "size=4k"), NULL));
    int fds[2] = {to[0], from[1]};
    pid_t pid = ipkt_spawn(hold_producer, fds);
    assert_int_equal(write(to[1], u, strlen(u) + 1), (ssize_t)strlen(u) + 1);
    assert_int_equal(read(from[0], buf, 1), 1);
    ipkt_ok(ipk_dial(&p, u, NULL));
    ipkt_expect(ipk_send(p, "second", 6, 0), -EBUSY);
    ipkt_errmsg_has("already has a producer");
    ipkt_errmsg_has("multi=1");
    ipkt_ok(ipk_close(p));
    assert_int_equal(ipk_pending(c), 1); /* a record waits in the ring */
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), 5);
    /* The consumer sleeps on the empty ring; the producer's close must wake it with EOF. */
    assert_int_equal(write(to[1], "G", 1), 1);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, -1), IPK_EOF);
    assert_int_equal(ipkt_wait(pid), 0);
    ipkt_ok(ipk_close(c));
}

/* ---- both processes on one CPU ---- */

typedef struct echo_arg {
    char req[200], resp[200];
    int n, cpu;
} echo_arg;

static int echo_peer(void *p)
{
    echo_arg *a = p;
    ipk_chan *rq, *rs;
    if (sched_getcpu() != a->cpu || ipk_dial(&rq, a->req, NULL) || ipk_dial(&rs, a->resp, NULL))
        return 1;
    char buf[64];
    for (int i = 0; i < a->n; i++) {
        long n = ipk_recv(rq, buf, sizeof buf, 30000);
        if (n < 0 || ipk_send(rs, buf, (size_t)n, 30000) != 0)
            return 1;
    }
    ipk_close(rq);
    ipk_close(rs);
    return 0;
}

static void t_same_cpu_round_trips(void **state)
{
    (void)state;
    int cpu = ipkt_pin_one_cpu(); /* the child inherits it */
    assert_true(cpu >= 0);
    char n1[64], n2[64];
    echo_arg a = {.n = 10000, .cpu = cpu};
    url(a.req, sizeof a.req, ring(n1, sizeof n1), "size=4k");
    url(a.resp, sizeof a.resp, ring(n2, sizeof n2), "size=4k");
    ipk_chan *rq, *rs;
    ipkt_ok(ipk_listen(&rq, a.req, NULL));
    ipkt_ok(ipk_listen(&rs, a.resp, NULL));
    pid_t pid = ipkt_spawn(echo_peer, &a);
    for (int i = 0; i < a.n; i++) {
        long n;
        ipkt_ok(ipk_send(rq, &i, sizeof i, 30000));
        ipkt_expect(ipk_recv(rs, &n, sizeof n, 30000), sizeof i);
        assert_int_equal((int)n, i);
    }
    assert_int_equal(ipkt_wait(pid), 0);
    ipkt_ok(ipk_close(rq));
    ipkt_ok(ipk_close(rs));
}

/* A stream with both ends on one CPU: each side hands the CPU over (sched_yield) instead of
 * spinning or being woken per message; 200,000 records through a 16 KiB ring (wraps, full and
 * empty rings on both sides), all in order, then EOF. */
static void t_same_cpu_stream(void **state)
{
    (void)state;
    int cpu = ipkt_pin_one_cpu();
    assert_true(cpu >= 0);
    char name[64], u[200];
    ipkt_fill(rnd, sizeof rnd, 7);
    url(u, sizeof u, ring(name, sizeof name), "size=16k");
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, u, NULL));
    prod_arg a = {.prod = 0, .n = 200000};
    snprintf(a.url, sizeof a.url, "%s", u);
    pid_t pid = ipkt_spawn(producer, &a);
    uint32_t next[8] = {0};
    unsigned char buf[REC_MAX];
    long n;
    while ((n = ipk_recv(c, buf, sizeof buf, 30000)) >= 0)
        check_rec(buf, n, next);
    ipkt_expect(n, IPK_EOF);
    assert_int_equal(next[0], a.n);
    assert_int_equal(ipkt_wait(pid), 0);
    ipkt_ok(ipk_close(c));
}

/* ---- multi=1: the biased locks (ring.c, "locks") ---- */

/* Sends n records of producer `prod` through a channel it keeps, then tells `fd` and waits on
 * `go` (a byte, or end of file) before closing: a holder that stays idle, or is killed there. */
typedef struct idle_arg {
    char url[200];
    uint32_t prod, n;
    int fd, go;
} idle_arg;

static int idle_producer(void *p)
{
    idle_arg *a = p;
    ipk_chan *c;
    unsigned char buf[REC_MAX];
    if (ipk_dial(&c, a->url, NULL) != 0)
        return 1;
    for (uint32_t s = 0; s < a->n; s++)
        if (ipk_send(c, buf, make_rec(buf, a->prod, s), 30000) != 0)
            return 2;
    char b = 0;
    if (write(a->fd, "s", 1) != 1 || read(a->go, &b, 1) < 0)
        return 3;
    return ipk_close(c) == 0 ? 0 : 4;
}

/* Receives n records, each checked against what its producer sent. */
static void recv_checked(ipk_chan *c, int n, uint32_t *next)
{
    unsigned char buf[REC_MAX];
    for (int i = 0; i < n; i++) {
        long k = ipk_recv(c, buf, sizeof buf, 30000);
        if (k < 0)
            ipkt_expect(k, 0);
        check_rec(buf, k, next);
    }
}

static int has_line(const char *info, const char *what)
{
    if (strstr(info, what) != NULL)
        return 1;
    print_error("no \"%s\" in:\n%s", what, info);
    return 0;
}

/* The first holder of each lock keeps it (biased) while it is idle; another producer and
 * another consumer must still get through: they revoke the bias without its holder's help. */
static void t_multi_bias_revoked(void **state)
{
    (void)state;
    char name[64], u[200], info[2048];
    ipkt_fill(rnd, sizeof rnd, 7);
    url(u, sizeof u, ring(name, sizeof name), "size=64k&multi=1");
    ipk_chan *c, *p;
    ipkt_ok(ipk_listen(&c, u, NULL));
    ipkt_ok(ipk_dial(&p, u, NULL));
    unsigned char buf[REC_MAX];
    ipkt_ok(ipk_send(p, buf, make_rec(buf, 7, 0), 0));
    uint32_t next[8] = {0};
    long n = ipk_recv(c, buf, sizeof buf, 0);
    check_rec(buf, n, next);
    char want[128];
    get_info(u, info, sizeof info);
    snprintf(want, sizeof want, "locks: producers pid %d (biased); consumers pid %d (biased)\n",
             (int)getpid(), (int)getpid());
    assert_true(has_line(info, want));
    /* Both holders stay idle (and open) in this process; a producer in another process sends
     * 20,000 records, which a consumer in a third process receives. */
    prod_arg a = {.prod = 1, .n = 20000};
    snprintf(a.url, sizeof a.url, "%s", u);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    cons_arg ca = {.fd = pfd[1]};
    snprintf(ca.url, sizeof ca.url, "%s", u);
    pid_t pp = ipkt_spawn(producer, &a), cp = ipkt_spawn(consumer, &ca);
    assert_int_equal(ipkt_wait(pp), 0);
    ipkt_ok(ipk_close(p)); /* the last producer: the consumer sees EOF once it has them all */
    assert_int_equal(ipkt_wait(cp), 0);
    uint32_t count[8];
    assert_int_equal(read(pfd[0], count, sizeof count), (ssize_t)sizeof count);
    assert_int_equal(count[1], 20000);
    close(pfd[0]);
    close(pfd[1]);
    get_info(u, info, sizeof info);
    assert_true(has_line(info, "locks: producers free, bias revoked; consumers "));
    assert_true(has_line(info, "mutex recoveries: 0\n"));
    ipkt_ok(ipk_close(c));
}

/* A biased producer (the only one so far) killed inside a record, then one killed outside any
 * call: the next producer takes the lock over each time; only the first counts a recovery, and
 * nothing committed is lost. (The ring holds everything sent before each receive.) */
static void t_multi_bias_holder_killed(void **state)
{
    (void)state;
    char name[64], u[200], info[2048];
    ipkt_fill(rnd, sizeof rnd, 7);
    url(u, sizeof u, ring(name, sizeof name), "size=4m&multi=1");
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, u, NULL));
    unsigned char buf[REC_MAX];
    uint32_t next[8] = {0};
    /* Inside: dies at its 300th send with half a record written, biased and busy. */
    prod_arg a0 = {.prod = 0, .n = 1000, .die_at = 300};
    snprintf(a0.url, sizeof a0.url, "%s", u);
    pid_t p0 = ipkt_spawn(producer, &a0);
    int st;
    assert_int_equal(waitpid(p0, &st, 0), p0);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    get_info(u, info, sizeof info);
    char want[128];
    snprintf(want, sizeof want, "locks: producers pid %d (biased, inside)", (int)p0);
    assert_true(has_line(info, want));
    prod_arg a1 = {.prod = 1, .n = 500};
    snprintf(a1.url, sizeof a1.url, "%s", u);
    assert_int_equal(ipkt_wait(ipkt_spawn(producer, &a1)), 0);
    recv_checked(c, 299 + 500, next);
    assert_int_equal(next[0], 299);
    assert_int_equal(next[1], 500);
    get_info(u, info, sizeof info);
    assert_true(has_line(info, "mutex recoveries: 1\n"));
    ipkt_ok(ipk_close(c));
    /* Outside, on a new ring (a revoked bias never comes back): a producer that holds the lock
     * biased, idle in no call, is killed. */
    url(u, sizeof u, ring(name, sizeof name), "size=4m&multi=1");
    ipkt_ok(ipk_listen(&c, u, NULL));
    int ready[2], go[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    idle_arg ia = {.prod = 2, .n = 100, .fd = ready[1], .go = go[0]};
    snprintf(ia.url, sizeof ia.url, "%s", u);
    pid_t p2 = ipkt_spawn(idle_producer, &ia);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);
    get_info(u, info, sizeof info);
    snprintf(want, sizeof want, "locks: producers pid %d (biased)", (int)p2);
    assert_true(has_line(info, want));
    assert_int_equal(kill(p2, SIGKILL), 0);
    assert_int_equal(waitpid(p2, &st, 0), p2);
    prod_arg a3 = {.prod = 3, .n = 500};
    snprintf(a3.url, sizeof a3.url, "%s", u);
    assert_int_equal(ipkt_wait(ipkt_spawn(producer, &a3)), 0);
    recv_checked(c, 100 + 500, next);
    assert_int_equal(next[2], 100);
    assert_int_equal(next[3], 500);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    get_info(u, info, sizeof info);
    assert_true(has_line(info, "mutex recoveries: 0\n"));
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(go[i]);
    }
    ipkt_ok(ipk_close(c));
}

/* multi=1 and ipk_sendv: the producers' lock is held for a whole batch; two producers sending
 * batches of 1..64 at once, each producer's order kept, nothing lost or torn. */
static int batch_producer(void *p)
{
    prod_arg *a = p;
    ipk_chan *c;
    if (ipk_dial(&c, a->url, NULL) != 0)
        return 1;
    static unsigned char bufs[64][REC_MAX];
    ipk_iov v[64];
    for (uint32_t s = 0; s < a->n;) {
        uint32_t k = 1 + (uint32_t)(mix(s ^ (a->prod << 20)) % 64);
        if (k > a->n - s)
            k = a->n - s;
        for (uint32_t j = 0; j < k; j++)
            v[j] = (ipk_iov){bufs[j], make_rec(bufs[j], a->prod, s + j)};
        long m = ipk_sendv(c, v, k, 30000);
        if (m < 1)
            return 2;
        s += (uint32_t)m;
    }
    return ipk_close(c) == 0 ? 0 : 3;
}

static void t_multi_sendv(void **state)
{
    (void)state;
    char name[64], u[200];
    ipkt_fill(rnd, sizeof rnd, 7);
    url(u, sizeof u, ring(name, sizeof name), "size=64k&multi=1");
    ipk_chan *c, *hold;
    ipkt_ok(ipk_listen(&c, u, NULL));
    ipkt_ok(ipk_dial(&hold, u, NULL)); /* no EOF between the two producers' lives */
    prod_arg a[2] = {{.prod = 0, .n = 100000}, {.prod = 1, .n = 100000}};
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        snprintf(a[i].url, sizeof a[i].url, "%s", u);
        pid[i] = ipkt_spawn(batch_producer, &a[i]);
    }
    uint32_t next[8] = {0};
    unsigned char buf[REC_MAX];
    recv_checked(c, 200000, next);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    ipkt_ok(ipk_close(hold));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), IPK_EOF);
    ipkt_ok(ipk_close(c));
}

/* ---- the guide's segment + semaphore protocol ---- */

static pid_t run_peer(char *const argv[], int out_fd)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (out_fd >= 0)
            dup2(out_fd, STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    ipkt_journal_id("pid", pid);
    return pid;
}

static void t_segment_interop(void **state)
{
    (void)state;
    char seg[64], sem[64], u[300], buf[600];
    char peer[] = IPKT_PEER_DIR "/peer_memwriter";
    /* The guide's writer -> ipckit. */
    ring(seg, sizeof seg);
    ipkt_name(sem, sizeof sem, "/");
    ipkt_journal("sem", sem);
    char *w[] = {peer, "write", seg, sem, "This is the way the world ends...", NULL};
    assert_int_equal(ipkt_wait(run_peer(w, -1)), 0);
    ipk_chan *c;
    snprintf(u, sizeof u, "shm:%s?mode=segment&sem=%s", seg, sem);
    ipkt_ok(ipk_dial(&c, u, NULL));
    char small[8];
    ipkt_expect(ipk_recv(c, small, sizeof small, 1000), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(c), 33);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), 33);
    assert_memory_equal(buf, "This is the way the world ends...", 33);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN); /* one post, one message */
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 30), IPK_ETIMEDOUT);
    void *zp;
    ipkt_expect(ipk_reserve(c, &zp, 1, 0), IPK_ENOTSUP);
    ipkt_ok(ipk_close(c));
    shm_unlink(seg);
    sem_unlink(sem);
    /* ipckit -> a reader written the guide's way. */
    ring(seg, sizeof seg);
    ipkt_name(sem, sizeof sem, "/");
    ipkt_journal("sem", sem);
    snprintf(u, sizeof u, "shm:%s?mode=segment&sem=%s&size=512", seg, sem);
    ipkt_ok(ipk_listen(&c, u, NULL));
    ipkt_expect(ipk_send(c, "a\0b", 3, 0), -EINVAL);
    ipkt_errmsg_has("NUL at byte 1");
    ipkt_expect(ipk_send(c, buf, 512, 0), IPK_EMSGSIZE);
    ipkt_errmsg_has("at most 511 bytes");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    char *r[] = {peer, "read", seg, sem, NULL};
    pid_t pid = run_peer(r, pfd[1]);
    close(pfd[1]);
    ipkt_ok(ipk_send(c, "hello from ipckit", 17, 0));
    size_t got = 0;
    ssize_t k;
    while ((k = read(pfd[0], buf + got, sizeof buf - got)) > 0)
        got += (size_t)k;
    assert_int_equal(ipkt_wait(pid), 0);
    assert_int_equal(got, 17);
    assert_memory_equal(buf, "hello from ipckit", 17);
    ipkt_ok(ipk_close(c));
    /* The owner removed both objects. */
    assert_int_equal(shm_open(seg, O_RDONLY, 0), -1);
    assert_true(sem_open(sem, 0) == SEM_FAILED);
}

/* ---- zero-copy ---- */

static int zc_consumer(void *p)
{
    ipk_chan *c;
    if (ipk_dial(&c, p, NULL) != 0)
        return 1;
    for (uint32_t i = 0; i < 64; i++) {
        const void *m;
        long n = ipk_peek(c, &m, 10000);
        if (n != (long)(i + 1) * 16384 || !ipkt_check(m, (size_t)n, i))
            return 2;
        const void *again;
        if (ipk_peek(c, &again, 0) != n || again != m) /* the same message until release */
            return 3;
        if (ipk_release(c) != 0)
            return 4;
    }
    return ipk_close(c) == 0 ? 0 : 5;
}

static void t_zero_copy(void **state)
{
    (void)state;
    char name[64], u[200];
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, url(u, sizeof u, ring(name, sizeof name), "size=4m"), NULL));
    ipkt_expect(ipk_commit(c, 1), -EINVAL);
    ipkt_errmsg_has("without a reservation");
    ipkt_expect(ipk_release(c), -EINVAL);
    pid_t pid = ipkt_spawn(zc_consumer, u);
    for (uint32_t i = 0; i < 64; i++) {
        void *p;
        size_t len = (size_t)(i + 1) * 16384;
        ipkt_ok(ipk_reserve(c, &p, len + 1000, 10000));
        ipkt_fill(p, len, i); /* written in place */
        ipkt_expect(ipk_commit(c, len + 1001), -EINVAL);
        ipkt_ok(ipk_commit(c, len)); /* less than reserved */
    }
    assert_int_equal(ipkt_wait(pid), 0);
    ipkt_ok(ipk_close(c));
}

/* ---- the suite ---- */

static void shm_fresh(char *u, size_t cap)
{
    char name[64];
    url(u, cap, ring(name, sizeof name), NULL);
}

static size_t shm_largest(void)
{
    return 4096 - 16; /* size=4k: the ring but two record headers */
}

static int shm_mode(ipk_chan *l)
{
    char path[300];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm%.*s", (int)strcspn(ipk_addr(l) + 4, "?"),
             ipk_addr(l) + 4);
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

static qs_kind shm = {
    .scheme = "shm",
    .fresh = shm_fresh,
    .consumers = QS_SHARE,
    .sized = "size=4k",
    .largest = shm_largest,
    .over_fmt = "message of %zu bytes can never fit the ring of 4096 bytes (largest message %zu",
    .small_fmt = "message of %zu bytes does not fit the buffer of %zu bytes",
    .pending_held = 1,
    .drained = IPK_EOF,
    .multi = "multi=1",
    .nofd_says = "no pollable descriptor",
    .small = "size=4k",
    .fill_len = 1016, /* records of 1024 bytes: taking one makes room for one (records never wrap,
                         so a ring does not promise that for every size) */
    .missing_says = "no such segment",
    .eacces_says = "Permission denied",
    .mode_of = shm_mode,
};

IPKT_MAIN(QS_MESSAGES("shm", &shm), QS_FULL("shm", &shm), QS_CONSUMERS("shm", &shm),
          QS_OWNED("shm", &shm), cmocka_unit_test(t_million_spsc),
          cmocka_unit_test(t_million_four_producers),
          cmocka_unit_test(t_two_consumers_two_producers),
          cmocka_unit_test(t_kill_producer_mid_record), cmocka_unit_test(t_kill_spsc_producer),
          cmocka_unit_test(t_segment_eintr), cmocka_unit_test(t_missing_and_foreign),
          cmocka_unit_test(t_options), cmocka_unit_test(t_stale_segment),
          cmocka_unit_test(t_adopt_ownerless), cmocka_unit_test(t_spsc_claim_and_eof),
          cmocka_unit_test(t_same_cpu_round_trips), cmocka_unit_test(t_same_cpu_stream),
          cmocka_unit_test(t_multi_bias_revoked), cmocka_unit_test(t_multi_bias_holder_killed),
          cmocka_unit_test(t_multi_sendv), cmocka_unit_test(t_segment_interop),
          cmocka_unit_test(t_zero_copy))
