/*
 * test_mq.c - the mq: transport: the queue family's conformance suite (suite_queue.h), then
 * what only POSIX queues have: priority order, attributes over the kernel's limits (each error
 * naming its /proc file), an existing queue's attributes, a channel shared across fork(), and
 * interoperation with a plain mq_send/mq_receive program.
 */
#include "harness.h"
#include "suite_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A fresh queue name, journalled. */
static const char *qname(char *name, size_t cap)
{
    ipkt_name(name, cap, "/");
    ipkt_journal("mq", name);
    return name;
}

static ipk_chan *listen_q(char *name, size_t cap, const char *query)
{
    char url[300];
    qname(name, cap);
    snprintf(url, sizeof url, "mq:%s%s", name, query);
    ipk_chan *c = NULL;
    ipkt_ok(ipk_listen(&c, url, NULL));
    return c;
}

static long proc(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static char g_name[128];

static int send_prios(void *arg)
{
    (void)arg;
    char url[200];
    snprintf(url, sizeof url, "mq:%s?prio=2", g_name);
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, url, NULL) == 0);
    static const unsigned prios[] = {1, 5, 0, 3, 5, 9};
    for (unsigned i = 0; i < 6; i++) {
        char m[8];
        snprintf(m, sizeof m, "m%u", i);
        ipk_msginfo mi = {.prio = prios[i]};
        IPKT_CHECK(ipk_sendx(c, m, strlen(m), &mi, -1) == 0);
    }
    IPKT_CHECK(ipk_send(c, "plain", 5, -1) == 0); /* no msginfo: ?prio=2 */
    return ipk_close(c) == 0 ? 0 : 1;
}

static void t_priorities(void **state)
{
    (void)state;
    ipk_chan *c = listen_q(g_name, sizeof g_name, "");
    assert_int_equal(ipkt_wait(ipkt_spawn(send_prios, NULL)), 0);
    /* Highest first, FIFO within a priority; msginfo.prio 0 means ?prio=2. */
    static const char *const want[] = {"m5", "m1", "m4", "m3", "m2", "plain", "m0"};
    static const unsigned wprio[] = {9, 5, 5, 3, 2, 2, 1};
    for (int i = 0; i < 7; i++) {
        char buf[8192];
        ipk_msginfo mi;
        long n = ipk_recvx(c, buf, sizeof buf, &mi, 0);
        ipkt_expect(n, (long)strlen(want[i]));
        assert_memory_equal(buf, want[i], (size_t)n);
        assert_int_equal(mi.prio, wprio[i]);
    }
    ipkt_expect(ipk_recv(c, (char[16]){0}, 16, 0), -EAGAIN);
    ipkt_errmsg_has("no message");
    ipkt_ok(ipk_close(c));
}

static int over_limits_as_nobody(void *arg)
{
    (void)arg;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    char url[200], name[128];
    long msg_max = proc("/proc/sys/fs/mqueue/msg_max");
    long size_max = proc("/proc/sys/fs/mqueue/msgsize_max");
    ipk_chan *c = NULL;
    snprintf(url, sizeof url, "mq:%s?maxmsg=%ld&msgsize=64", qname(name, sizeof name), msg_max + 1);
    IPKT_CHECK(ipk_listen(&c, url, NULL) == -EINVAL);
    char want[128];
    snprintf(want, sizeof want, "maxmsg %ld exceeds /proc/sys/fs/mqueue/msg_max (%ld)", msg_max + 1,
             msg_max);
    IPKT_CHECK(strstr(ipk_errmsg(), want) != NULL);
    snprintf(url, sizeof url, "mq:%s?maxmsg=1&msgsize=%ld", qname(name, sizeof name), size_max + 1);
    IPKT_CHECK(ipk_listen(&c, url, NULL) == -EINVAL);
    snprintf(want, sizeof want, "msgsize %ld exceeds /proc/sys/fs/mqueue/msgsize_max (%ld)",
             size_max + 1, size_max);
    IPKT_CHECK(strstr(ipk_errmsg(), want) != NULL);
    return 0;
}

static int over_rlimit(void *arg)
{
    (void)arg;
    struct rlimit rl = {1000, 1000};
    IPKT_CHECK(setrlimit(RLIMIT_MSGQUEUE, &rl) == 0);
    char url[200], name[128];
    snprintf(url, sizeof url, "mq:%s?maxmsg=4&msgsize=1024", qname(name, sizeof name));
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_listen(&c, url, NULL) == -EMFILE);
    IPKT_CHECK(strstr(ipk_errmsg(), "RLIMIT_MSGQUEUE (1000 bytes") != NULL);
    return 0;
}

static void t_attribute_limits(void **state)
{
    (void)state;
    assert_int_equal(ipkt_wait(ipkt_spawn(over_limits_as_nobody, NULL)), 0);
    assert_int_equal(ipkt_wait(ipkt_spawn(over_rlimit, NULL)), 0);
    /* Even a privileged creator stops at the kernel's hard ceilings. */
    char name[128], url[200];
    ipk_chan *c = NULL;
    snprintf(url, sizeof url, "mq:%s?maxmsg=1&msgsize=32m", qname(name, sizeof name));
    ipkt_expect(ipk_listen(&c, url, NULL), -EINVAL);
    ipkt_errmsg_has("msgsize 33554432 exceeds the kernel's hard limit 16777216");
    snprintf(url, sizeof url, "mq:%s?maxmsg=0", qname(name, sizeof name));
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("maxmsg=0");
    snprintf(url, sizeof url, "mq:%s?prio=32768", qname(name, sizeof name));
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("prio=32768");
    assert_null(c);
}

/* An existing queue keeps its attributes: asking for others is an error, not a surprise later. */
static void t_existing_attributes(void **state)
{
    (void)state;
    char name[128], url[200];
    ipk_chan *c = NULL, *d = NULL;
    snprintf(url, sizeof url, "mq:%s?keep=1&maxmsg=3&msgsize=100", qname(name, sizeof name));
    ipkt_ok(ipk_listen(&c, url, NULL));
    ipkt_ok(ipk_send(c, "kept", 4, 0));
    ipkt_ok(ipk_close(c));
    snprintf(url, sizeof url, "mq:%s?msgsize=200", name);
    ipkt_expect(ipk_dial(&d, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("exists with maxmsg 3 and msgsize 100");
    assert_null(d);
    snprintf(url, sizeof url, "mq:%s?maxmsg=3&msgsize=100", name);
    ipkt_ok(ipk_dial(&d, url, NULL));
    char buf[100];
    ipkt_expect(ipk_recv(d, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "kept", 4);
    ipkt_ok(ipk_close(d));
    assert_int_equal(mq_unlink(name), 0);
}

static void t_interop(void **state)
{
    (void)state;
    char name[128], cmd[400], line[200];
    ipk_chan *c = listen_q(name, sizeof name, "?maxmsg=4&msgsize=64");
    snprintf(cmd, sizeof cmd, "%s/peer_mq send %s 7 hello-from-peer", IPKT_PEER_DIR, name);
    assert_int_equal(system(cmd), 0);
    ipk_msginfo mi;
    char buf[64];
    ipkt_expect(ipk_recvx(c, buf, sizeof buf, &mi, 0), 15);
    assert_memory_equal(buf, "hello-from-peer", 15);
    assert_int_equal(mi.prio, 7);
    mi.prio = 4;
    ipkt_ok(ipk_sendx(c, "to-the-peer", 11, &mi, 0));
    snprintf(cmd, sizeof cmd, "%s/peer_mq recv %s", IPKT_PEER_DIR, name);
    assert_int_equal(ipkt_run_line(cmd, line, sizeof line), 0);
    assert_string_equal(line, "4 11 to-the-peer\n");
    ipkt_ok(ipk_close(c));
}

static void t_info(void **state)
{
    (void)state;
    ipkt_info_has("mq:/ipkt-no-such-queue",
                  (const char *const[]){
                      "/proc/sys/fs/mqueue/msg_max", "/proc/sys/fs/mqueue/msgsize_max",
                      "/proc/sys/fs/mqueue/queues_max", "RLIMIT_MSGQUEUE", "does not exist", NULL});
}

/* A channel shared across fork(): a forever receive blocking in one process leaves the other's
 * timed and immediate receives their deadlines (the blocking descriptor is a separate open of
 * the queue; no O_NONBLOCK flag is switched on a shared one). */
static int shared_forever(void *arg)
{
    ipk_chan *c = arg;
    char buf[16];
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, -1) == 4 && memcmp(buf, "wake", 4) == 0);
    return 0;
}

static void t_shared_fork(void **state)
{
    (void)state;
    ipk_chan *c = listen_q(g_name, sizeof g_name, "?maxmsg=1&msgsize=16");
    pid_t p = ipkt_spawn(shared_forever, c);
    usleep(30 * 1000); /* most likely the child is in its receive by now; either order passes */
    char buf[16];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 40), IPK_ETIMEDOUT);
    ipkt_errmsg_has("no message");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    ipkt_ok(ipk_send(c, "wake", 4, -1));
    assert_int_equal(ipkt_wait(p), 0);
    /* Full: a timed send ends at its deadline, an immediate one at once. */
    ipkt_ok(ipk_send(c, "x", 1, 0));
    ipkt_expect(ipk_send(c, "y", 1, 40), IPK_ETIMEDOUT);
    ipkt_errmsg_has("the queue is full");
    ipkt_expect(ipk_send(c, "y", 1, 0), -EAGAIN);
    ipkt_ok(ipk_close(c));
}

/* ---- the suite ---- */

static void mq_fresh(char *url, size_t cap)
{
    char name[128];
    snprintf(url, cap, "mq:%s", qname(name, sizeof name));
}

static size_t mq_largest(void)
{
    return 4096; /* msgsize=4096 */
}

static int mq_info_ok(const ipk_msginfo *mi, pid_t sender)
{
    (void)sender;
    return mi->prio == 0;
}

static qs_kind mq = {
    .scheme = "mq",
    .fresh = mq_fresh,
    .consumers = QS_SHARE,
    .sized = "msgsize=4096",
    .largest = mq_largest,
    .over_fmt = "message of %zu bytes exceeds the queue's msgsize %zu",
    .small_fmt = "message of %zu bytes does not fit the buffer of %zu; it is kept",
    .pending_held = 1,
    .empty_says = "no message",
    .info_ok = mq_info_ok,
    .small = "maxmsg=2&msgsize=64",
    .fill_len = 32,
    .full_says = "the queue is full (maxmsg 2 messages)",
    .missing_says = "no such queue",
    .eacces_says = "do not allow read and write",
};

IPKT_MAIN(QS_MESSAGES("mq", &mq), QS_FULL("mq", &mq), QS_CONSUMERS("mq", &mq), QS_OWNED("mq", &mq),
          cmocka_unit_test(t_priorities), cmocka_unit_test(t_attribute_limits),
          cmocka_unit_test(t_existing_attributes), cmocka_unit_test(t_interop),
          cmocka_unit_test(t_shared_fork), cmocka_unit_test(t_info))
