/*
 * test_undelivered.c - DESIGN §6, per owning transport: an owner's close never destroys a message
 * that a send reported as sent. The owner removes its object only when nothing waits in it;
 * keep=1 never removes, keep=0 always does; ipk_undelivered() says what close will leave. A
 * producer on a queue may come first (create=1) and does not own what it created. Senders are
 * separate processes.
 */
#include "cli_run.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a sender in its own process ---- */

typedef struct sender {
    const char *url;
    int listen; /* listen instead of dial (an owner that produces) */
    int n;      /* messages "m0".."m<n-1>" */
    int hold;   /* read end of a pipe: keep the channel open until it yields a byte or EOF */
    int other;  /* the pipe's write end, which the sender closes (-1: none) */
} sender;

static int send_n(void *arg)
{
    const sender *s = arg;
    if (s->other >= 0)
        close(s->other);
    ipk_chan *c = NULL;
    IPKT_CHECK((s->listen ? ipk_listen(&c, s->url, NULL) : ipk_dial(&c, s->url, NULL)) == 0);
    for (int i = 0; i < s->n; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "m%d", i);
        IPKT_CHECK(ipk_send(c, m, (size_t)len, 5000) == 0);
    }
    if (s->hold >= 0) {
        char b;
        IPKT_CHECK(read(s->hold, &b, 1) >= 0);
    }
    IPKT_CHECK(ipk_close(c) >= 0);
    return 0;
}

static void run_sender(const char *url, int n)
{
    sender s = {url, 0, n, -1, -1};
    assert_int_equal(ipkt_wait(ipkt_spawn(send_n, &s)), 0);
}

/* Receives "m0".."m<n-1>" on c in order, then nothing more within a moment. */
static void expect_msgs(ipk_chan *c, int n)
{
    char buf[256];
    for (int i = 0; i < n; i++) {
        char want[16];
        int len = snprintf(want, sizeof want, "m%d", i);
        ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), len);
        assert_memory_equal(buf, want, (size_t)len);
    }
}

static void receive_all(const char *url, int n)
{
    ipk_chan *c = NULL;
    ipkt_ok(ipk_dial(&c, url, NULL));
    expect_msgs(c, n);
    ipkt_ok(ipk_close(c));
}

/* ---- mq ---- */

static const char *mq_url(char *url, size_t cap, char *name, size_t ncap, const char *query)
{
    ipkt_name(name, ncap, "/");
    ipkt_journal("mq", name);
    snprintf(url, cap, "mq:%s%s", name, query);
    return url;
}

static int mq_exists(const char *name)
{
    mqd_t q = mq_open(name, O_RDONLY | O_CLOEXEC);
    if (q != (mqd_t)-1)
        mq_close(q);
    return q != (mqd_t)-1;
}

static void t_mq_owner_leaves_what_waits(void **state)
{
    (void)state;
    char name[64], url[128];
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, mq_url(url, sizeof url, name, sizeof name, ""), NULL));
    ipkt_expect(ipk_undelivered(l), 0);
    run_sender(url, 2);
    ipkt_expect(ipk_undelivered(l), 2);
    ipkt_ok(ipk_close(l)); /* two messages wait: the queue stays */
    assert_true(mq_exists(name));
    receive_all(url, 2);
    /* A consumer that listens owns the queue it finds, and removes it once it is empty. */
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_ok(ipk_close(l));
    assert_false(mq_exists(name));
}

static void t_mq_keep_overrides_both_ways(void **state)
{
    (void)state;
    char name[64], url[128];
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, mq_url(url, sizeof url, name, sizeof name, "?keep=0"), NULL));
    run_sender(url, 1);
    ipkt_expect(ipk_undelivered(l), 0); /* keep=0: close removes it regardless */
    ipkt_ok(ipk_close(l));
    assert_false(mq_exists(name));
    snprintf(url, sizeof url, "mq:%s?keep=1", name);
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_ok(ipk_close(l)); /* empty, but keep=1 */
    assert_true(mq_exists(name));
    assert_int_equal(mq_unlink(name), 0);
}

static void t_mq_producer_first(void **state)
{
    (void)state;
    char name[64], url[128], plain[128];
    mq_url(url, sizeof url, name, sizeof name, "?create=1");
    snprintf(plain, sizeof plain, "mq:%s", name);
    ipk_chan *c = NULL;
    ipkt_expect(ipk_dial(&c, plain, NULL), -ENOENT);
    ipkt_errmsg_has("create=1");
    run_sender(url, 3); /* creates the queue; not its owner, so the queue outlives it */
    assert_true(mq_exists(name));
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, plain, NULL));
    expect_msgs(l, 3);
    ipkt_ok(ipk_close(l));
    assert_false(mq_exists(name));
}

/* ---- sysv ---- */

static const char *sysv_url(char *url, size_t cap, const char *query)
{
    char path[256];
    ipkt_path(path, sizeof path, "sysv");
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    ipkt_journal("path", path);
    snprintf(url, cap, "sysv:%s?proj=7%s", path, query);
    return url;
}

static key_t sysv_key(const char *url)
{
    char p[256];
    snprintf(p, sizeof p, "%.*s", (int)strcspn(url + 5, "?"), url + 5);
    return ftok(p, 7);
}

static int sysv_exists(const char *url)
{
    int id = msgget(sysv_key(url), 0);
    if (id >= 0)
        ipkt_journal_id("msqid", id);
    return id >= 0;
}

static void t_sysv_owner_leaves_what_waits(void **state)
{
    (void)state;
    char url[400], kurl[420];
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, sysv_url(url, sizeof url, ""), NULL));
    assert_true(sysv_exists(url)); /* journals the id */
    run_sender(url, 2);
    ipkt_expect(ipk_undelivered(l), 2);
    ipkt_ok(ipk_close(l));
    assert_true(sysv_exists(url));
    receive_all(url, 2);
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_ok(ipk_close(l)); /* empty now: the owner removes it */
    assert_false(sysv_exists(url));
    /* keep=0 removes it although a message waits. */
    snprintf(kurl, sizeof kurl, "%s&keep=0", url);
    ipkt_ok(ipk_listen(&l, kurl, NULL));
    run_sender(url, 1);
    ipkt_ok(ipk_close(l));
    assert_false(sysv_exists(url));
}

static void t_sysv_producer_first(void **state)
{
    (void)state;
    char url[400], curl[420];
    sysv_url(url, sizeof url, "");
    snprintf(curl, sizeof curl, "%s&create=1", url);
    ipk_chan *c = NULL;
    ipkt_expect(ipk_dial(&c, url, NULL), -ENOENT);
    run_sender(curl, 2);
    assert_true(sysv_exists(url));
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    assert_true(sysv_exists(url)); /* journals the id */
    expect_msgs(l, 2);
    ipkt_ok(ipk_close(l));
    assert_false(sysv_exists(url));
}

/* ---- shm ---- */

static int shm_exists(const char *name)
{
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

static void t_shm_ring_owner_leaves_what_waits(void **state)
{
    (void)state;
    char name[64], url[128];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("shm", name);
    snprintf(url, sizeof url, "shm:%s?size=4k", name);
    /* The owner consumes; a producer process sends two and goes. */
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_expect(ipk_undelivered(l), 0);
    run_sender(url, 2);
    ipkt_expect(ipk_undelivered(l), 1);
    ipkt_ok(ipk_close(l));
    assert_true(shm_exists(name));
    receive_all(url, 2);
    assert_int_equal(shm_unlink(name), 0);
    /* The owner produces and goes; the consumer comes later. */
    sender s = {url, 1, 3, -1, -1};
    assert_int_equal(ipkt_wait(ipkt_spawn(send_n, &s)), 0);
    assert_true(shm_exists(name));
    receive_all(url, 3);
    assert_int_equal(shm_unlink(name), 0);
    /* Nothing waits: the owner removes it. */
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_ok(ipk_close(l));
    assert_false(shm_exists(name));
}

/* A producer may come first on a ring: create=1 makes a one-way ring and lets go of it at once,
 * so the consumer's listener adopts it with what waits and removes it once drained. Without
 * create=1 the dialer finds nothing and is told so; duplex=1 rings are their listener's. */
static void t_shm_producer_first(void **state)
{
    (void)state;
    char name[64], url[128], curl[160];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("shm", name);
    snprintf(url, sizeof url, "shm:%s", name);
    snprintf(curl, sizeof curl, "%s?create=1&size=8k", url);
    ipk_chan *c = NULL;
    ipkt_expect(ipk_dial(&c, url, NULL), -ENOENT);
    ipkt_errmsg_has("no such segment");
    run_sender(curl, 3);
    assert_true(shm_exists(name));
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    expect_msgs(l, 3);
    ipkt_ok(ipk_close(l)); /* adopted, drained: its listener removes it */
    assert_false(shm_exists(name));
    /* The tool's send is such a producer. */
    static run r;
    assert_int_equal(CLI(&r, NULL, "send", url, "m0", "m1"), 0);
    ipkt_ok(ipk_listen(&l, url, NULL));
    expect_msgs(l, 2);
    ipkt_ok(ipk_close(l));
    assert_false(shm_exists(name));
    char durl[200];
    snprintf(durl, sizeof durl, "%s?create=1&duplex=1", url);
    ipkt_expect(ipk_dial(&c, durl, NULL), IPK_EOPTION);
    ipkt_errmsg_has("one-way ring");
    assert_false(shm_exists(name));
}

static void t_shm_segment_owner_leaves_an_unread_text(void **state)
{
    (void)state;
    char name[64], sem[64], url[200];
    ipkt_name(name, sizeof name, "/");
    ipkt_name(sem, sizeof sem, "/");
    ipkt_journal("shm", name);
    ipkt_journal("sem", sem);
    snprintf(url, sizeof url, "shm:%s?mode=segment&sem=%s", name, sem);
    sender s = {url, 1, 1, -1, -1};
    assert_int_equal(ipkt_wait(ipkt_spawn(send_n, &s)), 0);
    assert_true(shm_exists(name));
    receive_all(url, 1);
    assert_int_equal(shm_unlink(name), 0);
    assert_int_equal(sem_unlink(sem), 0);
    /* Read: nothing waits, both go. */
    ipk_chan *l = NULL, *d = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_ok(ipk_dial(&d, url, NULL));
    ipkt_ok(ipk_send(l, "m0", 2, 0));
    expect_msgs(d, 1);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
    assert_false(shm_exists(name));
}

/* ---- fifo ---- */

static void t_fifo_reader_leaves_unread_bytes(void **state)
{
    (void)state;
    char path[256], url[300];
    path_url(path, sizeof path, url, sizeof url, "fifo", "fifo");
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    /* A writer sends three and keeps the FIFO open; the reader goes without reading. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    sender s = {url, 0, 3, p[0], p[1]};
    pid_t w = ipkt_spawn(send_n, &s);
    close(p[0]);
    for (int i = 0; i < 2000 && ipk_undelivered(l) == 0; i++)
        ipkt_msleep(5);
    ipkt_expect(ipk_undelivered(l), 1);
    ipkt_ok(ipk_close(l));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* The next reader gets all three: nothing was lost. */
    ipkt_ok(ipk_listen(&l, url, NULL));
    expect_msgs(l, 3);
    close(p[1]);
    assert_int_equal(ipkt_wait(w), 0);
    ipkt_expect(ipk_recv(l, path, 1, 5000), IPK_EOF);
    ipkt_ok(ipk_close(l)); /* not its creator: the FIFO stays */
    assert_int_equal(unlink(url + 5), 0);
    /* A FIFO whose pipe is empty goes with its creator. */
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_ok(ipk_close(l));
    assert_int_equal(stat(url + 5, &st), -1);
}

/* ---- file ---- */

static void t_file_log_with_records_stays(void **state)
{
    (void)state;
    char path[256], url[300], kurl[320];
    path_url(path, sizeof path, url, sizeof url, "file", "log");
    ipk_chan *l = NULL;
    /* An empty log its listener created goes with it. */
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_expect(ipk_undelivered(l), 0);
    ipkt_ok(ipk_close(l));
    assert_int_equal(access(path, F_OK), -1);
    /* A record in it: every later reader may still read it, so it stays. */
    ipkt_ok(ipk_listen(&l, url, NULL));
    run_sender(url, 1);
    ipkt_expect(ipk_undelivered(l), 1);
    ipkt_ok(ipk_close(l));
    assert_int_equal(access(path, F_OK), 0);
    receive_all(url, 1);
    assert_int_equal(unlink(path), 0);
    /* keep=0: removed with its records. */
    snprintf(kurl, sizeof kurl, "%s?keep=0", url);
    ipkt_ok(ipk_listen(&l, kurl, NULL));
    run_sender(url, 1);
    ipkt_ok(ipk_close(l));
    assert_int_equal(access(path, F_OK), -1);
}

/* A producer may come first on a log: create=1 makes the file, which it does not own, so the
 * log outlives it; the reader that comes later gets every record (and, not its creator, leaves
 * the log). Without create=1 a dialer finds nothing and is told how to create it. */
static void t_file_producer_first(void **state)
{
    (void)state;
    char path[256], url[300], curl[320];
    path_url(path, sizeof path, url, sizeof url, "file", "log");
    snprintf(curl, sizeof curl, "%s?create=1", url);
    ipk_chan *c = NULL;
    ipkt_expect(ipk_dial(&c, url, NULL), -ENOENT);
    ipkt_errmsg_has("create=1");
    run_sender(curl, 3);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    expect_msgs(l, 3);
    ipkt_ok(ipk_close(l));
    assert_int_equal(access(path, F_OK), 0);
    /* The tool's send is such a producer. */
    assert_int_equal(unlink(path), 0);
    static run r;
    assert_int_equal(CLI(&r, NULL, "send", url, "m0", "m1"), 0);
    receive_all(url, 2);
    assert_int_equal(unlink(path), 0);
}

/* Channels that own nothing that stores messages answer 0. */
static void t_undelivered_elsewhere(void **state)
{
    (void)state;
    char path[256], url[300];
    path_url(path, sizeof path, url, sizeof url, "unixgram", "sock");
    ipk_chan *l = NULL, *d = NULL;
    ipkt_ok(ipk_listen(&l, url, NULL));
    ipkt_ok(ipk_dial(&d, url, NULL));
    ipkt_ok(ipk_send(d, "x", 1, 0));
    ipkt_expect(ipk_undelivered(l), 0);
    ipkt_expect(ipk_undelivered(d), 0);
    ipkt_expect(ipk_undelivered(NULL), -EINVAL);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
}

IPKT_MAIN(cmocka_unit_test(t_mq_owner_leaves_what_waits),
          cmocka_unit_test(t_mq_keep_overrides_both_ways), cmocka_unit_test(t_mq_producer_first),
          cmocka_unit_test(t_sysv_owner_leaves_what_waits), cmocka_unit_test(t_sysv_producer_first),
          cmocka_unit_test(t_shm_ring_owner_leaves_what_waits),
          cmocka_unit_test(t_shm_producer_first),
          cmocka_unit_test(t_shm_segment_owner_leaves_an_unread_text),
          cmocka_unit_test(t_fifo_reader_leaves_unread_bytes),
          cmocka_unit_test(t_file_log_with_records_stays), cmocka_unit_test(t_file_producer_first),
          cmocka_unit_test(t_undelivered_elsewhere))
