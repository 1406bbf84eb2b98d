/*
 * test_file.c - the file: transport: the queue family's conformance suite (suite_queue.h) on the
 * log, then what only a file has: a live 100,000-record log, two concurrent writers, a writer
 * killed in the middle of an append, damaged records, the format on disk, the guide's
 * classic-lock producer and consumer against mode=whole (and lock conflicts both ways), and
 * every refusal (read-only files, FIFO, symlink, foreign file, options, max).
 */
#include "harness.h"
#include "suite_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Test hook in file.c: called with 1 when a whole-mode send holds its lock, with 2 when an
 * append has written half of its record. */
extern void (*ipk__file_hook)(int point);

#define PEER IPKT_PEER_DIR "/peer_fcntl"
#define BIG  6000

/* ---- records with sequence numbers and checksums ---- */

static uint32_t mix(uint32_t id, uint32_t seq)
{
    uint32_t h = id * 0x9e3779b1u ^ (seq + 0x7f4a7c15u) * 0x85ebca6bu;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    return h ^ (h >> 13);
}

/* Sizes from 0 B to 6 KiB, mostly small; min 8 when the record must name its writer. */
static size_t rec_size(uint32_t id, uint32_t seq, size_t min)
{
    uint32_t h = mix(id, seq);
    size_t n = h % 16 == 0 ? h % 8 : h % 4 == 0 ? 8 + h % (BIG - 8) : 8 + h % 400;
    return n < min ? min : n;
}

/* Fills a record: {id, seq} when it has room for them, then a pattern seeded by both. */
static size_t rec_make(char *buf, uint32_t id, uint32_t seq, size_t min)
{
    size_t n = rec_size(id, seq, min), head = n >= 8 ? 8 : 0;
    if (head) {
        memcpy(buf, &id, 4);
        memcpy(buf + 4, &seq, 4);
    }
    ipkt_fill(buf + head, n - head, mix(id, seq));
    return n;
}

static int rec_ok(const char *buf, long n, uint32_t id, uint32_t seq, size_t min)
{
    if (n < 0 || (size_t)n != rec_size(id, seq, min))
        return 0;
    size_t head = n >= 8 ? 8 : 0;
    uint32_t gid, gseq;
    if (head) {
        memcpy(&gid, buf, 4);
        memcpy(&gseq, buf + 4, 4);
        if (gid != id || gseq != seq)
            return 0;
    }
    return ipkt_check(buf + head, (size_t)n - head, mix(id, seq));
}

static off_t log_bytes(uint32_t id, uint32_t from, uint32_t to, size_t min)
{
    off_t n = 0;
    for (uint32_t s = from; s < to; s++)
        n += 16 + (off_t)rec_size(id, s, min);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static const char *url_of(char *buf, size_t cap, const char *path, const char *query)
{
    snprintf(buf, cap, "file:%s%s%s", path, query ? "?" : "", query ? query : "");
    return buf;
}

/* A fresh log created by a listener, kept by the journal for cleanup. */
static ipk_chan *new_log(char *path, size_t cap, char *url, size_t ucap, const char *query)
{
    ipkt_path(path, cap, "log");
    ipkt_journal("path", path);
    ipk_chan *c = NULL;
    ipkt_ok(ipk_listen(&c, url_of(url, ucap, path, query), NULL));
    return c;
}

/* ---- child processes ---- */

typedef struct job {
    const char *url;
    uint32_t id, from, to;
    size_t min;
    int nwriters; /* reader: records from this many writers, ids 0.. */
} job;

static int writer(void *arg)
{
    const job *j = arg;
    ipk_chan *c;
    if (ipk_dial(&c, j->url, NULL) != 0)
        return 1;
    static char buf[BIG];
    for (uint32_t s = j->from; s < j->to; s++) {
        size_t n = rec_make(buf, j->id, s, j->min);
        int r = ipk_send(c, buf, n, -1);
        if (r != 0) {
            fprintf(stderr, "writer %u: send %u: %s (%s)\n", j->id, s, ipk_strerror(r),
                    ipk_errmsg());
            return 1;
        }
    }
    return ipk_close(c) != 0;
}

/* Reads (to - from) records per writer, checking each writer's order and every byte. */
static int reader(void *arg)
{
    const job *j = arg;
    ipk_chan *c;
    if (ipk_dial(&c, j->url, NULL) != 0)
        return 1;
    static char buf[BIG];
    uint32_t next[8];
    for (int w = 0; w < j->nwriters; w++)
        next[w] = j->from;
    uint64_t total = (uint64_t)(j->to - j->from) * (uint64_t)j->nwriters;
    for (uint64_t i = 0; i < total; i++) {
        long n = ipk_recv(c, buf, sizeof buf, -1);
        uint32_t id = 0;
        if (n >= 8 && j->nwriters > 1)
            memcpy(&id, buf, 4);
        if (id >= (uint32_t)j->nwriters || next[id] >= j->to ||
            !rec_ok(buf, n, id, next[id], j->min)) {
            fprintf(stderr, "reader: record %llu (writer %u, expected seq %u): bad, n=%ld %s\n",
                    (unsigned long long)i, id, next[id], n, n < 0 ? ipk_errmsg() : "");
            return 1;
        }
        next[id]++;
    }
    /* Nothing more: no duplicates behind the last one. */
    long n = ipk_recv(c, buf, sizeof buf, 0);
    if (n != -EAGAIN) {
        fprintf(stderr, "reader: extra record (%ld)\n", n);
        return 1;
    }
    return ipk_close(c) != 0;
}

/* ---- the log ---- */

static void t_log_live_100k(void **state)
{
    (void)state;
    char path[256], url[300];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    job j = {.url = url, .id = 0, .from = 0, .to = 100000, .min = 0, .nwriters = 1};
    pid_t r = ipkt_spawn(reader, &j);
    pid_t w = ipkt_spawn(writer, &j);
    assert_int_equal(ipkt_wait(w), 0);
    assert_int_equal(ipkt_wait(r), 0);
    assert_int_equal(file_size(path), 16 + log_bytes(0, 0, 100000, 0));
    ipkt_ok(ipk_close(l));
}

static void t_log_two_writers(void **state)
{
    (void)state;
    char path[256], url[300];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    job rj = {.url = url, .from = 0, .to = 20000, .min = 8, .nwriters = 2};
    job w0 = {.url = url, .id = 0, .from = 0, .to = 20000, .min = 8};
    job w1 = {.url = url, .id = 1, .from = 0, .to = 20000, .min = 8};
    pid_t r = ipkt_spawn(reader, &rj);
    pid_t a = ipkt_spawn(writer, &w0), b = ipkt_spawn(writer, &w1);
    assert_int_equal(ipkt_wait(a), 0);
    assert_int_equal(ipkt_wait(b), 0);
    assert_int_equal(ipkt_wait(r), 0);
    assert_int_equal(file_size(path), 16 + log_bytes(0, 0, 20000, 8) + log_bytes(1, 0, 20000, 8));
    ipkt_ok(ipk_close(l));
}

static int kill_point; /* the hook point at which torn_writer dies */

static void kill_me(int point)
{
    if (point == kill_point)
        raise(SIGKILL);
}

static int torn_writer(void *arg)
{
    ipk__file_hook = kill_me;
    return writer(arg);
}

/* A writer of seq `seq` that dies at hook point `point`; its record is larger than any that
 * follow, so a tail that was not repaired would leave bytes behind. */
static void tear(const char *url, uint32_t seq, int point)
{
    kill_point = point;
    job tj = {.url = url, .id = 0, .from = seq, .to = seq + 1, .min = BIG - 1};
    assert_int_equal(ipkt_wait(ipkt_spawn(torn_writer, &tj)), 128 + SIGKILL);
}

static void read_seqs(ipk_chan *c, uint32_t from, uint32_t to)
{
    static char buf[BIG];
    for (uint32_t s = from; s < to; s++)
        assert_true(rec_ok(buf, ipk_recv(c, buf, sizeof buf, 0), 0, s, 100));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    assert_int_equal(ipk_pending(c), 0);
}

static void t_log_torn_record(void **state)
{
    (void)state;
    char path[256], url[300], buf[BIG];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    for (uint32_t s = 0; s < 5; s++)
        ipkt_ok(ipk_send(l, buf, rec_make(buf, 0, s, 100), -1));
    /* A reader following live, started before the tears: it must see 0..7 and nothing torn. */
    job rj = {.url = url, .from = 0, .to = 8, .min = 100, .nwriters = 1};
    pid_t r = ipkt_spawn(reader, &rj);
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, url, NULL));
    read_seqs(c, 0, 5);

    /* Killed half-way through its payload. */
    tear(url, 5, 2);
    off_t good = 16 + log_bytes(0, 0, 5, 100);
    assert_true(file_size(path) > good);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 30), IPK_ETIMEDOUT);
    ipkt_errmsg_has("no new record at offset");
    /* The next writer cuts the torn tail off and appends where it began. */
    ipkt_ok(ipk_send(l, buf, rec_make(buf, 0, 5, 100), -1));
    good += log_bytes(0, 5, 6, 100);
    assert_int_equal(file_size(path), good);
    assert_int_equal(ipk_pending(c), 1);
    read_seqs(c, 5, 6);

    /* Killed with every byte written but the commit word: still not a record. */
    tear(url, 6, 3);
    assert_int_equal(file_size(path), good + 16 + (off_t)rec_size(0, 6, BIG - 1));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    assert_int_equal(ipk_pending(c), 0);
    for (uint32_t s = 6; s < 8; s++)
        ipkt_ok(ipk_send(l, buf, rec_make(buf, 0, s, 100), -1));
    assert_int_equal(file_size(path), good + log_bytes(0, 6, 8, 100));
    read_seqs(c, 6, 8);

    assert_int_equal(ipkt_wait(r), 0);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(l));
}

/* Damage a committed record (as a system crash without fsync=1 can): the reader reports it,
 * skips it, and goes on with the next. */
static void t_log_corrupt_payload(void **state)
{
    (void)state;
    char path[256], url[300], buf[64];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    ipkt_ok(ipk_send(l, "first", 5, 0));
    ipkt_ok(ipk_send(l, "second", 6, 0));
    ipkt_ok(ipk_send(l, "third", 5, 0));
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 16 + 16 + 5 + 16 + 2), 1);
    close(fd);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 5);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), IPK_EPROTO);
    ipkt_errmsg_has("record of 6 bytes at offset 37 fails its checksum; skipped");
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "third", 5);
    ipkt_ok(ipk_close(l));
}

static void append_raw(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static int small_fsize(void *arg)
{
    struct rlimit rl = {100, 100};
    ipk_chan *c;
    char buf[200] = {0};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || ipk_dial(&c, arg, NULL) != 0)
        return 1;
    int r = ipk_send(c, buf, sizeof buf, 0);
    if (r != -EFBIG || strstr(ipk_errmsg(), "RLIMIT_FSIZE (100)") == NULL) {
        fprintf(stderr, "send: %d %s\n", r, ipk_errmsg());
        return 1;
    }
    return ipk_send(c, buf, 10, 0) != 0 || ipk_close(c) != 0;
}

/* After the last record: bytes that are not one torn record are left alone (cutting them could
 * destroy what a damaged header hides); zeros are cut; a log cut short by something else is
 * walked again; RLIMIT_FSIZE is an error, not a SIGXFSZ. */
static void t_log_damage_and_limits(void **state)
{
    (void)state;
    char path[256], url[300], buf[64];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    ipkt_ok(ipk_send(l, "one", 3, 0));
    append_raw(path, "GARBAGE, NOT A RECORD", 21);
    ipkt_expect(ipk_send(l, "two", 3, 0), IPK_EPROTO);
    ipkt_errmsg_has("the 21 bytes at offset 35 are neither records nor one torn record");
    assert_int_equal(file_size(path), 35 + 21);
    assert_int_equal(truncate(path, 35), 0);
    static const char zeros[100];
    append_raw(path, zeros, sizeof zeros);
    ipkt_ok(ipk_send(l, "two", 3, 0));
    assert_int_equal(file_size(path), 35 + 19);
    assert_int_equal(truncate(path, 35), 0); /* behind the writer's back */
    ipkt_ok(ipk_send(l, "three", 5, 0));
    assert_int_equal(file_size(path), 35 + 21);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 3);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "three", 5);
    assert_int_equal(ipkt_wait(ipkt_spawn(small_fsize, url)), 0);
    ipkt_ok(ipk_close(l));
}

static void t_log_from_end_pending_fd(void **state)
{
    (void)state;
    char path[256], url[300], buf[64];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    ipkt_ok(ipk_send(l, "old", 3, 0));
    ipk_chan *c, *d;
    ipkt_ok(ipk_dial(&c, url_of(url, sizeof url, path, "from=end"), NULL));
    ipkt_ok(ipk_dial(&d, url_of(url, sizeof url, path, "from=start"), NULL));
    assert_int_equal(ipk_pending(c), 0);
    assert_int_equal(ipk_pending(d), 1);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    int fd = ipk_fd(c);
    assert_true(fd >= 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0); /* drained by the empty recv */
    ipkt_ok(ipk_send(l, "", 0, 0));      /* an empty record is a record */
    ipkt_ok(ipk_send(l, "new", 3, 0));
    assert_int_equal(poll(&p, 1, -1), 1);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 0);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 3);
    assert_memory_equal(buf, "new", 3);
    ipkt_expect(ipk_recv(d, buf, sizeof buf, 0), 3);
    assert_memory_equal(buf, "old", 3);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

static void t_log_format_and_fsync(void **state)
{
    (void)state;
    char path[256], url[300], buf[64];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, "fsync=1");
    ipkt_ok(ipk_send(l, "123456789", 9, -1));
    unsigned char raw[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, raw, sizeof raw), 16 + 16 + 9);
    close(fd);
    assert_memory_equal(raw, "IPKFLOG\1", 8);
    assert_memory_equal(raw + 16, "IPKR\x09\0\0\0", 8);
    /* CRC32C("123456789") is the standard check value 0xe3069283. */
    assert_memory_equal(raw + 24, "\x83\x92\x06\xe3", 4);
    assert_memory_equal(raw + 32, "123456789", 9);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 9);
    ipkt_ok(ipk_close(l));
}

/* A reader's max bounds what it takes from the log, as it bounds what a writer appends (the suite
 * covers a buffer too small); the record stays where it is. */
static void t_log_max(void **state)
{
    (void)state;
    char path[256], url[300], buf[200];
    ipkt_fill(buf, sizeof buf, 1);
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    ipkt_ok(ipk_send(l, buf, 100, 0));
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, url_of(url, sizeof url, path, "max=50"), NULL));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), IPK_EMSGSIZE);
    ipkt_errmsg_has("record of 100 bytes at offset 16 exceeds the maximum (50)");
    assert_int_equal(ipk_needed(c), 100);
    ipkt_expect(ipk_send(c, buf, 51, 0), IPK_EMSGSIZE);
    ipkt_ok(ipk_close(c));
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 100);
    ipkt_ok(ipk_close(l));
}

/* ---- roles, ownership, refusals ---- */

static void t_keep_and_eof(void **state)
{
    (void)state;
    char path[256], url[300], buf[64];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    ipkt_ok(ipk_send(l, "r", 1, 0));
    ipkt_ok(ipk_close(l));
    assert_int_equal(access(path, F_OK), 0); /* a log with a record stays by default */
    /* Existing: opened, not owned, so not removed even with keep=0. */
    ipkt_ok(ipk_listen(&l, url_of(url, sizeof url, path, "keep=0"), NULL));
    ipkt_ok(ipk_close(l));
    assert_int_equal(access(path, F_OK), 0);

    ipkt_ok(ipk_listen(&l, url_of(url, sizeof url, path, "keep=1"), NULL));
    ipkt_ok(ipk_send(l, "a", 1, 0));
    ipkt_ok(ipk_close(l));
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, url_of(url, sizeof url, path, NULL), NULL));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 1);
    ipkt_ok(ipk_close(c));

    unlink(path); /* keep=0: the listener that created the file removes it */
    ipkt_ok(ipk_listen(&l, url_of(url, sizeof url, path, "keep=0"), NULL));
    ipkt_ok(ipk_dial(&c, url_of(url, sizeof url, path, NULL), NULL));
    ipkt_ok(ipk_send(l, "x", 1, 0));
    ipkt_ok(ipk_close(l));
    assert_int_equal(access(path, F_OK), -1);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, -1), 1); /* what was written is still read */
    ipkt_expect(ipk_recv(c, buf, sizeof buf, -1), IPK_EOF);
    ipkt_errmsg_has("removed");
    ipkt_ok(ipk_close(c));
}

static void t_missing_file(void **state)
{
    (void)state;
    char path[256], url[300];
    ipkt_path(path, sizeof path, "absent");
    ipk_chan *c = (ipk_chan *)0x1;
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, path, NULL), NULL), -ENOENT);
    assert_null(c);
    ipkt_errmsg_has("no such file");
    ipkt_errmsg_has(path);
    ipkt_expect(ipk_dial(&c, "file:/nonexistent-dir/x", NULL), -ENOENT);
}

/* In a child that became "nobody": a 0644 log opens read-only, so a reader, not a writer (the
 * suite covers 0600 and 0666). */
static int nobody_reads(void *arg)
{
    ipk_chan *c;
    char buf[16];
    IPKT_CHECK(ipkt_become_nobody() == 0);
    IPKT_CHECK(ipk_dial(&c, arg, NULL) == 0);
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 0) == 2);
    IPKT_CHECK(ipk_send(c, "no", 2, 0) == -EACCES);
    IPKT_CHECK(strstr(ipk_errmsg(), "read-only") != NULL);
    return ipk_close(c) != 0;
}

static void t_read_only(void **state)
{
    (void)state;
    char path[256], url[300];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, "perm=0644");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    ipkt_ok(ipk_send(l, "ok", 2, 0));
    assert_int_equal(ipkt_wait(ipkt_spawn(nobody_reads, url)), 0);
    ipkt_ok(ipk_close(l));
}

static void t_not_regular_symlink_foreign(void **state)
{
    (void)state;
    char path[256], url[300], link[256];
    ipk_chan *c = NULL;
    ipkt_path(path, sizeof path, "fifo");
    ipkt_journal("path", path);
    assert_int_equal(mkfifo(path, 0600), 0);
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, path, NULL), NULL), -EINVAL);
    ipkt_errmsg_has("not a regular file (a FIFO)");
    ipkt_expect(ipk_listen(&c, url, NULL), -EINVAL);
    ipkt_expect(ipk_dial(&c, "file:/dev/null", NULL), -EINVAL);
    ipkt_errmsg_has("character device");

    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    ipkt_path(link, sizeof link, "link");
    ipkt_journal("path", link);
    assert_int_equal(symlink(path, link), 0);
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, link, NULL), NULL), -ELOOP);
    ipkt_errmsg_has("symbolic link");
    ipkt_expect(ipk_listen(&c, url, NULL), -ELOOP);
    ipkt_ok(ipk_close(l));

    ipkt_path(path, sizeof path, "foreign");
    ipkt_journal("path", path);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs("not a log, just a file\n", f);
    fclose(f);
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, path, NULL), NULL), IPK_EPROTO);
    ipkt_errmsg_has("not an ipckit file log");
    ipkt_ok(ipk_dial(&c, url_of(url, sizeof url, path, "mode=whole"), NULL));
    char buf[64];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 23);
    ipkt_ok(ipk_close(c));
    assert_int_equal(file_size(path), 23); /* never rewritten by a look */
}

static void t_options(void **state)
{
    (void)state;
    char path[256], url[300];
    ipk_chan *c = NULL;
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, path, "mode=stream"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("mode=stream: expected log or whole");
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, path, "from=middle"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("from=middle: expected start or end");
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, path, "fsync=maybe"), NULL), IPK_EOPTION);
    ipkt_expect(ipk_dial(&c, url_of(url, sizeof url, path, "framing=raw"), NULL), IPK_EOPTION);
    assert_null(c);
    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_opts_set(o, "mode", "whole"));
    ipkt_ok(ipk_dial(&c, url_of(url, sizeof url, path, "mode=log"), o)); /* opts win */
    ipkt_ok(ipk_send(c, "w", 1, 0));
    assert_int_equal(file_size(path), 1);
    ipk_opts_free(o);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(l));
}

static void t_info(void **state)
{
    (void)state;
    char path[256], url[300], buf[2048];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, NULL);
    long n = ipk_info(url, buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "CRC32C"));
    assert_non_null(strstr(buf, "F_OFD_SETLKW F_WRLCK"));
    assert_non_null(strstr(buf, "file: 16 bytes, mode 0600"));
    assert_non_null(strstr(buf, "bytes free"));
    char small[8];
    assert_int_equal(ipk_info(url, small, sizeof small), n);
    ipkt_ok(ipk_close(l));
}

/* ---- mode=whole and the guide's classic-lock programs ---- */

typedef struct peer {
    pid_t pid;
    int in, out;
} peer;

static void peer_start(peer *p, const char *a, const char *b, const char *c, const char *d)
{
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    fflush(NULL);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl(PEER, "peer_fcntl", a, b, c, d, (char *)NULL);
        _exit(127);
    }
    ipkt_journal_id("pid", p->pid);
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    p->out = out[0];
}

/* read() that goes on after a signal (t_eintr_keeps_deadline keeps a timer firing). */
static ssize_t read_more(int fd, void *buf, size_t n)
{
    ssize_t r;
    while ((r = read(fd, buf, n)) < 0 && errno == EINTR)
        ;
    return r;
}

/* Reads what the peer printed so far, up to a newline or its end. */
static void peer_line(peer *p, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap && read_more(p->out, buf + n, 1) == 1 && buf[n++] != '\n')
        ;
    buf[n] = '\0';
}

/* Lets it go (stdin reaches its end), collects its output and its exit status. */
static int peer_end(peer *p, char *buf, size_t cap)
{
    close(p->in);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read_more(p->out, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(p->out);
    return ipkt_wait(p->pid);
}

static int peer_run(char *out, size_t cap, const char *a, const char *b, const char *c,
                    const char *d)
{
    peer p;
    peer_start(&p, a, b, c, d);
    return peer_end(&p, out, cap);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* A storm of signals (no SA_RESTART) while waiting for a lock: the deadline holds, nothing
 * returns EINTR (the suite covers waits for a record). */
static void t_eintr_keeps_deadline(void **state)
{
    (void)state;
    char path[256], url[300], buf[64], out[64];
    struct sigaction sa = {.sa_handler = on_alarm};
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    /* Lock waits: timed (polling) and forever (F_OFD_SETLKW), against a classic lock. */
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, "mode=whole");
    l = new_log(path, sizeof path, url, sizeof url, "mode=whole");
    ipkt_ok(ipk_send(l, "data", 4, 0));
    peer p;
    peer_start(&p, "hold", path, "wr", "100");
    peer_line(&p, out, sizeof out);
    assert_string_equal(out, "locked\n");
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 20), IPK_ETIMEDOUT);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, -1), 4);
    assert_int_equal(peer_end(&p, out, sizeof out), 0);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    assert_true(alarms > 0); /* the waits above were interrupted */
    ipkt_ok(ipk_close(l));
}

static void t_whole_round_trip(void **state)
{
    (void)state;
    char path[256], url[300], buf[64];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, "mode=whole");
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, url, NULL));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN); /* empty: no message yet */
    ipkt_ok(ipk_send(l, "hello", 5, 0));
    assert_int_equal(ipk_pending(c), 1);
    struct pollfd p = {.fd = ipk_fd(c), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0); /* pending() took the event, and remembers it */
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "hello", 5);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN); /* read once, not again */
    ipkt_ok(ipk_send(l, "world, again", 12, 0));
    assert_int_equal(poll(&p, 1, -1), 1);
    ipkt_expect(ipk_recv(c, buf, 4, 0), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(c), 12);
    ipkt_errmsg_has("holds 12 bytes; the buffer is 4");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 12);
    assert_memory_equal(buf, "world, again", 12);
    assert_int_equal(file_size(path), 12);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(l));
}

static void t_whole_interop(void **state)
{
    (void)state;
    char path[256], url[300], buf[128], out[128];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, "mode=whole&from=end");
    /* The guide's producer -> our recv. */
    assert_int_equal(peer_run(out, sizeof out, "produce", path, "Now is the winter", NULL), 0);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, -1), 17);
    assert_memory_equal(buf, "Now is the winter", 17);
    /* Our send -> the guide's consumer (same inode, truncated and rewritten). */
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    ipkt_ok(ipk_send(l, "of our discontent", 17, -1));
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(peer_run(out, sizeof out, "consume", path, NULL, NULL), 0);
    assert_string_equal(out, "of our discontent");
    ipkt_ok(ipk_close(l));
}

static void t_whole_peer_holds_lock(void **state)
{
    (void)state;
    char path[256], url[300], buf[128], out[128];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, "mode=whole");
    ipkt_ok(ipk_send(l, "mine", 4, 0));
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, url, NULL));
    /* A classic write lock blocks our OFD read lock... */
    peer p;
    peer_start(&p, "hold", path, "wr", NULL);
    peer_line(&p, out, sizeof out);
    assert_string_equal(out, "locked\n");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    ipkt_errmsg_has("locked by another process");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 20), IPK_ETIMEDOUT);
    ipkt_expect(ipk_send(l, "x", 1, 0), -EAGAIN);
    assert_int_equal(peer_end(&p, out, sizeof out), 0);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 4); /* ...until it goes */
    /* A classic write lock held for a while: a blocking recv waits it out. */
    ipkt_ok(ipk_send(l, "next", 4, 0));
    peer_start(&p, "hold", path, "wr", "100");
    peer_line(&p, out, sizeof out);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, -1), 4);
    assert_int_equal(peer_end(&p, out, sizeof out), 0);
    /* A classic read lock is shared with our read lock, and excludes our write. */
    ipkt_ok(ipk_send(l, "third", 5, 0));
    peer_start(&p, "hold", path, "rd", NULL);
    peer_line(&p, out, sizeof out);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 5);
    ipkt_expect(ipk_send(l, "x", 1, 0), -EAGAIN);
    assert_int_equal(peer_end(&p, out, sizeof out), 0);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(l));

    /* The log mode's OFD locks conflict with classic locks as well. */
    l = new_log(path, sizeof path, url, sizeof url, NULL);
    peer_start(&p, "hold", path, "wr", NULL);
    peer_line(&p, out, sizeof out);
    ipkt_expect(ipk_send(l, "x", 1, 0), -EAGAIN);
    ipkt_expect(ipk_send(l, "x", 1, 20), IPK_ETIMEDOUT);
    assert_int_equal(peer_end(&p, out, sizeof out), 0);
    ipkt_ok(ipk_send(l, "x", 1, 0));
    ipkt_ok(ipk_close(l));
}

static int sync_w = -1, go_r = -1;

static void pause_locked(int point)
{
    char b = 'L';
    if (point == 1 && write(sync_w, &b, 1) == 1 && read(go_r, &b, 1) != 1)
        _exit(3);
}

static int paused_sender(void *arg)
{
    ipk__file_hook = pause_locked;
    ipk_chan *c;
    if (ipk_dial(&c, arg, NULL) != 0 || ipk_send(c, "from us", 7, -1) != 0)
        return 1;
    return ipk_close(c);
}

static void t_whole_we_hold_lock(void **state)
{
    (void)state;
    char path[256], url[300], out[128];
    ipk_chan *l = new_log(path, sizeof path, url, sizeof url, "mode=whole");
    int s[2], g[2];
    assert_int_equal(pipe2(s, O_CLOEXEC), 0);
    assert_int_equal(pipe2(g, O_CLOEXEC), 0);
    sync_w = s[1];
    go_r = g[0];
    pid_t w = ipkt_spawn(paused_sender, url);
    char b;
    assert_int_equal(read(s[0], &b, 1), 1); /* our send now holds its OFD write lock */
    assert_int_equal(peer_run(out, sizeof out, "trylock", path, "wr", NULL), 3);
    assert_int_equal(peer_run(out, sizeof out, "trylock", path, "rd", NULL), 3);
    assert_int_equal(write(g[1], "G", 1), 1);
    assert_int_equal(ipkt_wait(w), 0);
    assert_int_equal(peer_run(out, sizeof out, "trylock", path, "wr", NULL), 0);
    assert_int_equal(peer_run(out, sizeof out, "consume", path, NULL, NULL), 0);
    assert_string_equal(out, "from us");
    ipkt_ok(ipk_close(l));
}

/* ---- the suite ---- */

static void file_fresh(char *url, size_t cap)
{
    char path[256];
    ipkt_path(path, sizeof path, "log");
    ipkt_journal("path", path);
    url_of(url, cap, path, NULL);
}

static size_t file_largest(void)
{
    return 5000; /* max=5000 */
}

static int file_mode(ipk_chan *l)
{
    char path[300];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(ipk_addr(l) + 5, "?"), ipk_addr(l) + 5);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

static qs_kind log_kind = {
    .scheme = "file",
    .fresh = file_fresh,
    .consumers = QS_EACH,
    .sized = "max=5000",
    .sized_dial = "max=5000",
    .largest = file_largest,
    .over_fmt = "message of %zu bytes exceeds max=%zu",
    .small_fmt = "record of %zu bytes at offset 16 exceeds the buffer (%zu)",
    .pending_held = 1,
    .empty_says = "no new record at offset 16",
    .missing_says = "no such file",
    .eacces_says = "permission denied (mode 0600, owner uid 0",
    .keep0 = "keep=0",
    .mode_of = file_mode,
    .removed_says = "the file was removed",
};

IPKT_MAIN(QS_MESSAGES("file", &log_kind), QS_CONSUMERS("file", &log_kind),
          QS_OWNED("file", &log_kind), QS_REMOVED("file", &log_kind),
          cmocka_unit_test(t_log_live_100k), cmocka_unit_test(t_log_two_writers),
          cmocka_unit_test(t_log_torn_record), cmocka_unit_test(t_log_corrupt_payload),
          cmocka_unit_test(t_log_damage_and_limits), cmocka_unit_test(t_log_from_end_pending_fd),
          cmocka_unit_test(t_log_format_and_fsync), cmocka_unit_test(t_log_max),
          cmocka_unit_test(t_keep_and_eof), cmocka_unit_test(t_missing_file),
          cmocka_unit_test(t_read_only), cmocka_unit_test(t_not_regular_symlink_foreign),
          cmocka_unit_test(t_options), cmocka_unit_test(t_info),
          cmocka_unit_test(t_whole_round_trip), cmocka_unit_test(t_whole_interop),
          cmocka_unit_test(t_whole_peer_holds_lock), cmocka_unit_test(t_whole_we_hold_lock),
          cmocka_unit_test(t_eintr_keeps_deadline))
