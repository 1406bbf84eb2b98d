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
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/resource.h>
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

/* A listener (rx), a dialer (tx) and the hostile view of their segment. */
typedef struct shmfx {
    char name[64];
    ipk_chan *rx, *tx;
    seg s;
    uint64_t cap;
} shmfx;

static void fx_open(shmfx *x, const char *query)
{
    x->rx = shm_ring(x->name, sizeof x->name, query);
    x->tx = shm_dial(x->name, "");
    seg_map(&x->s, x->name);
    x->cap = x->s.h->capacity;
}

static void fx_close(shmfx *x)
{
    ipkt_ok(ipk_close(x->tx));
    ipkt_ok(ipk_close(x->rx));
    munmap(x->s.map, x->s.len);
}

/* multi=1 takes head and tail from the segment under the mutex at every call: a head that is
 * no record boundary made the producer write 4 bytes past the data area. */
static void t_shm_multi_indices(void **state)
{
    (void)state;
    char buf[64];
    shmfx x;
    fx_open(&x, "&multi=1");
    ipk_chan *rx = x.rx, *tx = x.tx;
    seg s = x.s;
    uint64_t cap = x.cap;
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
    fx_close(&x);
}

/* SPSC reads them once, when each side attaches: the same checks apply there. */
static void t_shm_spsc_attach_indices(void **state)
{
    (void)state;
    char buf[64];
    shmfx x;
    fx_open(&x, "");
    ipk_chan *rx = x.rx, *tx = x.tx;
    seg s = x.s;
    uint64_t cap = x.cap;
    atomic_store(&s.h->tail, cap - 4);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), IPK_EPROTO);
    atomic_store(&s.h->head, cap - 4);
    ipkt_expect(ipk_send(tx, "x", 1, 0), IPK_EPROTO);
    /* Repaired, both attach: a failed attach did not keep the claim. */
    atomic_store(&s.h->head, 0);
    atomic_store(&s.h->tail, 0);
    ipkt_ok(ipk_send(tx, "x", 1, 0));
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), 1);
    fx_close(&x);
}

/* ipk_pending read the segment's tail unchecked: a tail moved back onto a consumed record made
 * it report a message on an empty ring (that recv would never return), one moved off a record
 * boundary made it read past the ring. */
static void t_shm_pending_tail(void **state)
{
    (void)state;
    char buf[64];
    shmfx x;
    fx_open(&x, "");
    ipk_chan *rx = x.rx, *tx = x.tx;
    seg s = x.s;
    uint64_t cap = x.cap;
    ipkt_ok(ipk_send(tx, "one", 3, 0));
    assert_int_equal(ipk_pending(rx), 1);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), 3);
    assert_int_equal(ipk_pending(rx), 0);
    atomic_store(&s.h->tail, 0); /* back onto "one", consumed but still tagged DATA */
    assert_int_equal(ipk_pending(rx), 0);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), -EAGAIN);
    atomic_store(&s.h->tail, cap - 4);
    assert_int_equal(ipk_pending(rx), 0);
    fx_close(&x);
    /* A consumer that has not attached yet (and multi=1) reads the segment's tail: checked. */
    fx_open(&x, "&multi=1");
    memset(x.s.data, 0xff, x.cap); /* tags that read as "something" everywhere */
    atomic_store(&x.s.h->tail, x.cap - 4);
    assert_int_equal(ipk_pending(x.rx), 0);
    fx_close(&x);
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

/* duplex=1: a mailbox that says "the peer's message, before ring record `at`" with `at` ahead
 * of the receiver and no record at the receiver's index. A peer publishes the mailbox after
 * the records before `at`, so this is no ring a peer wrote; the waiting receive took the full
 * mailbox for news, looked again, and spun at 100% CPU forever, ignoring its timeout (found by
 * fuzz_shm once its schedule used positive deadlines). */
static void t_shm_mbox_ahead(void **state)
{
    (void)state;
    char name[64], buf[64];
    const void *p;
    ipk_chan *rx = shm_ring(name, sizeof name, "&duplex=1");
    ipk_chan *tx = shm_dial(name, "");
    seg s;
    seg_map(&s, name);
    struct ipk__shm_mbox *mb = &s.h->mbox;
    mb->len = 1;
    mb->data[0] = 'm';
    mb->at = 16; /* the listener's read index is 0, and its ring is empty */
    atomic_store(&mb->state, IPK__MB_FULL(1)); /* the dialer's (end 1) */
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 100), IPK_EPROTO);
    ipkt_errmsg_has("corrupt mailbox: its message goes before index 16, but there is no record "
                    "at index 0");
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), IPK_EPROTO);
    ipkt_expect(ipk_peek(rx, &p, 100), IPK_EPROTO);
    /* Once a record lies at the read index (the dialer's send finds the mailbox taken and
     * uses the ring: 16 bytes, up to index 16), it comes first, then the mailbox's message. */
    ipkt_ok(ipk_send(tx, "ring", 4, 0));
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 100), 4);
    assert_memory_equal(buf, "ring", 4);
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 100), 1);
    assert_int_equal(buf[0], 'm');
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 0), -EAGAIN);
    ipkt_ok(ipk_close(tx));
    ipkt_ok(ipk_close(rx));
    munmap(s.map, s.len);
}

/* ---- 5. objects planted at a listener's name ---- */

enum { SQ_FIFO, SQ_MQ, SQ_SYSV };

typedef struct squat {
    int kind;
    char name[128]; /* FIFO path or mq name */
    key_t key;      /* sysv */
    char url[200];
} squat;

static void squat_name(squat *q, int kind)
{
    char n[64];
    q->kind = kind;
    ipkt_name(n, sizeof n, "/");
    if (kind == SQ_FIFO) {
        /* /tmp: the test directory is not open to nobody */
        snprintf(q->name, sizeof q->name, "/tmp%s", n);
        ipkt_journal("path", q->name);
        snprintf(q->url, sizeof q->url, "fifo:%s", q->name);
    } else if (kind == SQ_MQ) {
        snprintf(q->name, sizeof q->name, "%s", n);
        ipkt_journal("mq", q->name);
        snprintf(q->url, sizeof q->url, "mq:%s", q->name);
    } else {
        q->key = (key_t)(0x7e000000 | (getpid() & 0xffffff));
        snprintf(q->url, sizeof q->url, "sysv:%d", (int)q->key);
    }
}

/* Whether the planted object is still there, owned by uid. */
static int squat_owner(const squat *q, uid_t *uid)
{
    struct stat st = {0};
    if (q->kind == SQ_SYSV) {
        struct msqid_ds ds;
        int id = msgget(q->key, 0);
        if (id < 0 || msgctl(id, IPC_STAT, &ds) != 0)
            return 0;
        *uid = ds.msg_perm.uid;
        return 1;
    }
    if (q->kind == SQ_MQ) { /* /dev/mqueue may not be mounted: ask a descriptor */
        mqd_t m = mq_open(q->name, O_RDONLY);
        int ok = m != (mqd_t)-1 && fstat(m, &st) == 0;
        if (m != (mqd_t)-1)
            mq_close(m);
        *uid = st.st_uid;
        return ok;
    }
    if (lstat(q->name, &st) != 0)
        return 0;
    *uid = st.st_uid;
    return 1;
}

/* As nobody: creates the object 0666, as a squatter would. */
static int squat_plant(void *arg)
{
    const squat *q = arg;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    umask(0);
    if (q->kind == SQ_FIFO) {
        IPKT_CHECK(mkfifo(q->name, 0666) == 0);
    } else if (q->kind == SQ_MQ) {
        mqd_t m = mq_open(q->name, O_RDWR | O_CREAT | O_EXCL, 0666, NULL);
        IPKT_CHECK(m != (mqd_t)-1);
        mq_close(m);
    } else {
        IPKT_CHECK(msgget(q->key, IPC_CREAT | IPC_EXCL | 0666) >= 0);
    }
    return 0;
}

static void squat_remove(const squat *q)
{
    if (q->kind == SQ_FIFO)
        unlink(q->name);
    else if (q->kind == SQ_MQ)
        mq_unlink(q->name);
    else
        msgctl(msgget(q->key, 0), IPC_RMID, NULL);
}

/* Another user's 0666 FIFO, POSIX queue or System V queue at the name: root's listener adopted
 * it (that user could then read and inject messages), and root's close removed the queues. */
static void t_squat_other_user(void **state)
{
    (void)state;
    for (int kind = SQ_FIFO; kind <= SQ_SYSV; kind++) {
        squat q;
        squat_name(&q, kind);
        if (kind == SQ_SYSV)
            squat_remove(&q); /* a leftover of an earlier run with this pid */
        assert_int_equal(ipkt_wait(ipkt_spawn(squat_plant, &q)), 0);
        if (kind == SQ_SYSV)
            ipkt_journal_id("msqid", msgget(q.key, 0));
        uid_t nobody = 0, uid = 0;
        assert_true(squat_owner(&q, &nobody));
        assert_int_not_equal(nobody, 0);
        ipk_chan *c = NULL;
        ipkt_expect(ipk_listen(&c, q.url, NULL), -EEXIST);
        ipkt_errmsg_has("belongs to uid");
        /* Not even with perm= wide enough: another user's object is never adopted. */
        char url[220];
        snprintf(url, sizeof url, "%s?perm=0666", q.url);
        ipkt_expect(ipk_listen(&c, url, NULL), -EEXIST);
        assert_true(squat_owner(&q, &uid));
        assert_int_equal(uid, nobody);
        squat_remove(&q);
    }
}

/* Our own object, but with a mode wider than perm: refused unless perm= says so. */
static void t_squat_wide_mode(void **state)
{
    (void)state;
    for (int kind = SQ_FIFO; kind <= SQ_SYSV; kind++) {
        squat q;
        squat_name(&q, kind);
        if (kind == SQ_SYSV)
            squat_remove(&q);
        char wide[220];
        snprintf(wide, sizeof wide, "%s?perm=0666&keep=1", q.url);
        ipk_chan *c = NULL;
        ipkt_ok(ipk_listen(&c, wide, NULL));
        if (kind == SQ_SYSV)
            ipkt_journal_id("msqid", msgget(q.key, 0));
        ipkt_ok(ipk_close(c));
        ipkt_expect(ipk_listen(&c, q.url, NULL), -EEXIST);
        ipkt_errmsg_has("wider than perm=0600");
        snprintf(wide, sizeof wide, "%s?perm=0666", q.url);
        ipkt_ok(ipk_listen(&c, wide, NULL));
        ipkt_ok(ipk_close(c));
        squat_remove(&q);
    }
}

/* The listener's object was removed behind its back and another user made one of that name:
 * root's close removed the other user's queue. */
static void t_squat_close_replaced(void **state)
{
    (void)state;
    for (int kind = SQ_FIFO; kind <= SQ_SYSV; kind++) {
        squat q;
        squat_name(&q, kind);
        if (kind == SQ_SYSV)
            squat_remove(&q);
        ipk_chan *c = NULL;
        ipkt_ok(ipk_listen(&c, q.url, NULL));
        squat_remove(&q);
        assert_int_equal(ipkt_wait(ipkt_spawn(squat_plant, &q)), 0);
        if (kind == SQ_SYSV)
            ipkt_journal_id("msqid", msgget(q.key, 0));
        ipk_close(c);
        uid_t uid = 0;
        assert_true(squat_owner(&q, &uid));
        assert_int_not_equal(uid, 0);
        squat_remove(&q);
    }
}

/* ---- 6. a file log whose last committed record a system crash cut short ---- */

/* The commit word reached the disk, part of the payload did not (fsync=0 and a system crash):
 * every writer refused the log with IPK_EPROTO forever, and readers waited instead of saying
 * the log was damaged. docs/semantics/file.md: the next writer cuts such a record off. */
static void t_file_cut_record(void **state)
{
    (void)state;
    char path[256], url[300], buf[64];
    ipkt_path(path, sizeof path, "log");
    snprintf(url, sizeof url, "file:%s?keep=0", path);
    ipk_chan *rd, *wr;
    ipkt_ok(ipk_listen(&rd, url, NULL));
    ipkt_ok(ipk_dial(&wr, url, NULL));
    ipkt_ok(ipk_send(wr, "first", 5, -1));
    ipkt_ok(ipk_send(wr, "second record", 13, -1));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 4), 0); /* "second rec" is left of it */
    ipkt_expect(ipk_recv(rd, buf, sizeof buf, 1000), 5);
    assert_memory_equal(buf, "first", 5);
    ipkt_expect(ipk_recv(rd, buf, sizeof buf, 1000), IPK_EPROTO);
    ipkt_errmsg_has("cut short by the end of the file");
    ipkt_expect(ipk_recv(rd, buf, sizeof buf, 0), -EAGAIN); /* said once */
    /* A writer, this one or a new one, cuts it off and appends in its place. */
    ipk_chan *wr2;
    ipkt_ok(ipk_dial(&wr2, url, NULL));
    ipkt_ok(ipk_send(wr2, "third", 5, 1000));
    ipkt_ok(ipk_send(wr, "fourth", 6, 1000));
    ipkt_expect(ipk_recv(rd, buf, sizeof buf, 1000), 5);
    assert_memory_equal(buf, "third", 5);
    ipkt_expect(ipk_recv(rd, buf, sizeof buf, 1000), 6);
    assert_memory_equal(buf, "fourth", 6);
    ipkt_ok(ipk_close(wr2));
    ipkt_ok(ipk_close(wr));
    ipkt_ok(ipk_close(rd));
}

/* ---- 7. the smaller ones ---- */

/* mq: perm=0666 was filtered by the umask (0644 under 022). */
static void t_mq_perm_exact(void **state)
{
    (void)state;
    char name[64], url[128];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("mq", name);
    snprintf(url, sizeof url, "mq:%s?perm=0666", name);
    umask(022);
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, url, NULL));
    struct stat st;
    mqd_t q = mq_open(name, O_RDONLY);
    assert_true(q != (mqd_t)-1);
    assert_int_equal(fstat(q, &st), 0);
    mq_close(q);
    assert_int_equal(st.st_mode & 0777, 0666);
    ipkt_ok(ipk_close(c));
}

/* Fills the descriptor table: RLIMIT_NOFILE lowered to what is open now plus a few, then
 * those taken. */
static void fill_fds(void)
{
    int fd;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        ;
    assert_int_equal(errno, EMFILE);
}

/* Under ulimit -n, a file: receive blamed inotify's max_user_instances, and an mq listen said
 * "this queue needs about 0 bytes" of RLIMIT_MSGQUEUE. */
static void t_emfile_messages(void **state)
{
    (void)state;
    char path[256], url[300], name[64], buf[16];
    ipkt_path(path, sizeof path, "log");
    snprintf(url, sizeof url, "file:%s?keep=0", path);
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("mq", name);
    ipk_chan *rd, *c;
    ipkt_ok(ipk_listen(&rd, url, NULL));
    fill_fds();
    ipkt_expect(ipk_recv(rd, buf, sizeof buf, 10), -EMFILE);
    ipkt_errmsg_has("RLIMIT_NOFILE");
    assert_null(strstr(ipk_errmsg(), "max_user_instances"));
    snprintf(url, sizeof url, "mq:%s", name);
    ipkt_expect(ipk_listen(&c, url, NULL), -EMFILE);
    ipkt_errmsg_has("RLIMIT_NOFILE");
    assert_null(strstr(ipk_errmsg(), "about 0)"));
}

/* RLIMIT_MSGQUEUE itself: the message says how much the queue needs, never 0. */
static void t_mq_msgqueue_limit(void **state)
{
    (void)state;
    char name[64], url[128];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("mq", name);
    struct rlimit rl = {64, 64};
    assert_int_equal(setrlimit(RLIMIT_MSGQUEUE, &rl), 0);
    snprintf(url, sizeof url, "mq:%s", name);
    ipk_chan *c;
    ipkt_expect(ipk_listen(&c, url, NULL), -EMFILE);
    ipkt_errmsg_has("RLIMIT_MSGQUEUE (64 bytes");
    assert_null(strstr(ipk_errmsg(), "about 0)"));
}

/* A 100 KB address: the message kept its first 511 bytes, all of them the address, and lost
 * the reason. */
static void t_long_address_reason(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    char *url = malloc(n + 1);
    assert_non_null(url);
    memcpy(url, "fifo:", 5);
    memset(url + 5, 'a', n - 5);
    url[n] = '\0';
    ipk_chan *c;
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EADDR);
    ipkt_errmsg_has("fifo:aaaa");
    ipkt_errmsg_has(" ... ");
    ipkt_errmsg_has("PATH_MAX");
    free(url);
}

/* A timed-out shm send (and receive) left ipk_errmsg() empty. */
static void t_shm_timeout_message(void **state)
{
    (void)state;
    char name[64], buf[64];
    ipk_chan *rx = shm_ring(name, sizeof name, ""), *tx = shm_dial(name, "");
    static char big[1024];
    while (ipk_send(tx, big, sizeof big, 0) == 0)
        ;
    ipkt_expect(ipk_send(tx, big, sizeof big, 20), IPK_ETIMEDOUT);
    ipkt_errmsg_has("the ring is full");
    ipkt_ok(ipk_close(tx));
    ipkt_ok(ipk_close(rx));
    rx = shm_ring(name, sizeof name, "&multi=1");
    ipkt_expect(ipk_recv(rx, buf, sizeof buf, 20), IPK_ETIMEDOUT);
    ipkt_errmsg_has("no message");
    ipkt_ok(ipk_close(rx));
}

/* A newline (or any control character) in a shm or mq name was accepted. */
static void t_posix_name_control(void **state)
{
    (void)state;
    ipk_chan *c;
    ipkt_expect(ipk_listen(&c, "shm:/ipkt-a\nb", NULL), IPK_EADDR);
    ipkt_errmsg_has("control character 0x0a");
    ipkt_expect(ipk_listen(&c, "mq:/ipkt-a\tb", NULL), IPK_EADDR);
    ipkt_expect(ipk_dial(&c, "shm:/ipkt-\x7f", NULL), IPK_EADDR);
}

IPKT_MAIN(cmocka_unit_test(t_sig_rt_range), cmocka_unit_test(t_shm_multi_indices),
          cmocka_unit_test(t_shm_spsc_attach_indices), cmocka_unit_test(t_shm_pending_tail),
          cmocka_unit_test(t_shm_pad_lap), cmocka_unit_test(t_shm_mbox_ahead),
          cmocka_unit_test(t_squat_other_user), cmocka_unit_test(t_squat_wide_mode),
          cmocka_unit_test(t_squat_close_replaced), cmocka_unit_test(t_file_cut_record),
          cmocka_unit_test(t_mq_perm_exact), cmocka_unit_test(t_emfile_messages),
          cmocka_unit_test(t_mq_msgqueue_limit), cmocka_unit_test(t_long_address_reason),
          cmocka_unit_test(t_shm_timeout_message), cmocka_unit_test(t_posix_name_control))
