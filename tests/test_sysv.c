/*
 * test_sysv.c - the sysv: transport: the queue family's conformance suite (suite_queue.h), then
 * what only System V queues have: the guide's typed retrieval, selectors, msg_qbytes, keys from
 * ftok or literal, a channel closed for good once its queue was removed, and interoperation
 * with a plain msgsnd/msgrcv program in the guide's layout.
 */
#include "harness.h"
#include "suite_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

static char g_url[400];

/* A fresh file to make the key from (like the guide's queue.h) and "sysv:FILE?proj=123". */
static const char *make_url(char *url, size_t cap)
{
    char path[300];
    ipkt_path(path, sizeof path, "queue.h");
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    ipkt_journal("path", path);
    snprintf(url, cap, "sysv:%s?proj=123", path);
    return url;
}

/* Listens on a fresh queue (url + query) and journals its id; url is left without query. */
static ipk_chan *listen_q(char *url, size_t cap, const char *query)
{
    ipk_chan *c = NULL;
    char u[450];
    snprintf(u, sizeof u, "%s%s", make_url(url, cap), query);
    ipkt_ok(ipk_listen(&c, u, NULL));
    unsigned key;
    assert_int_equal(sscanf(ipk_addr(c), "sysv:0x%x", &key), 1);
    ipkt_journal_id("msqid", msgget((key_t)key, 0));
    return c;
}

static ipk_chan *dial(const char *url, const char *extra)
{
    char u[450];
    snprintf(u, sizeof u, "%s%s", url, extra);
    ipk_chan *c = NULL;
    ipkt_ok(ipk_dial(&c, u, NULL));
    return c;
}

static int guide_sender(void *arg)
{
    (void)arg;
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    static const long types[] = {1, 1, 2, 2, 3, 3};
    for (int i = 0; i < 6; i++) {
        char m[8];
        snprintf(m, sizeof m, "msg%d", i + 1);
        ipk_msginfo mi = {.type = types[i]};
        IPKT_CHECK(ipk_sendx(c, m, 4, &mi, 0) == 0);
    }
    return ipk_close(c) == 0 ? 0 : 1;
}

/* The guide: sent as types 1,1,2,2,3,3, received asking 3,1,2,1,3,2. The selector is a channel
 * option, so the receiver holds one channel per type. */
static void t_guide_typed_retrieval(void **state)
{
    (void)state;
    ipk_chan *l = listen_q(g_url, sizeof g_url, "");
    assert_int_equal(ipkt_wait(ipkt_spawn(guide_sender, NULL)), 0);
    ipk_chan *by[4] = {NULL, dial(g_url, "&type=1"), dial(g_url, "&type=2"),
                       dial(g_url, "&type=3")};
    static const int ask[] = {3, 1, 2, 1, 3, 2};
    static const char *const want[] = {"msg5", "msg1", "msg3", "msg2", "msg6", "msg4"};
    for (int i = 0; i < 6; i++) {
        char buf[16];
        ipk_msginfo mi;
        ipkt_expect(ipk_recvx(by[ask[i]], buf, sizeof buf, &mi, 0), 4);
        assert_memory_equal(buf, want[i], 4);
        assert_int_equal(mi.type, ask[i]);
    }
    for (int t = 1; t <= 3; t++)
        ipkt_ok(ipk_close(by[t]));
    ipkt_expect(ipk_recv(l, (char[8]){0}, 8, 0), -EAGAIN);
    ipkt_ok(ipk_close(l));
}

static void t_selectors(void **state)
{
    (void)state;
    char url[400];
    ipk_chan *l = listen_q(url, sizeof url, "&type=5"); /* sends type 5 by default */
    ipkt_ok(ipk_send(l, "five", 4, 0));
    ipk_msginfo mi = {.type = 2};
    ipkt_ok(ipk_sendx(l, "two", 3, &mi, 0));
    mi.type = 4;
    ipkt_ok(ipk_sendx(l, "four", 4, &mi, 0));
    mi.type = -1;
    ipkt_expect(ipk_sendx(l, "x", 1, &mi, 0), -EINVAL);
    ipkt_errmsg_has("a type must be > 0");
    /* type=-4: the lowest type up to 4, so 2 then 4, never 5. */
    ipk_chan *low = dial(url, "&type=-4"), *any = dial(url, "&type=0");
    char buf[8];
    ipkt_expect(ipk_recvx(low, buf, sizeof buf, &mi, 0), 3);
    assert_int_equal(mi.type, 2);
    ipkt_expect(ipk_recvx(low, buf, sizeof buf, &mi, 0), 4);
    assert_int_equal(mi.type, 4);
    ipkt_expect(ipk_recv(low, buf, sizeof buf, 0), -EAGAIN);
    ipkt_errmsg_has("no message of type -4");
    ipkt_expect(ipk_recvx(any, buf, sizeof buf, &mi, 0), 4);
    assert_int_equal(mi.type, 5);
    assert_memory_equal(buf, "five", 4);
    ipkt_ok(ipk_close(low));
    ipkt_ok(ipk_close(any));
    ipkt_ok(ipk_close(l));
}

static int set_qbytes(ipk_chan *c, unsigned long n)
{
    unsigned key;
    sscanf(ipk_addr(c), "sysv:0x%x", &key);
    int id = msgget((key_t)key, 0);
    struct msqid_ds ds;
    if (id < 0 || msgctl(id, IPC_STAT, &ds) != 0)
        return -1;
    ds.msg_qbytes = n;
    return msgctl(id, IPC_SET, &ds);
}

/* Once its queue was removed, a channel has seen the end (IPK_EOF, the suite's qs_removed) and
 * is closed for good: the id may be reused by a new queue. */
static void t_closed_after_removal(void **state)
{
    (void)state;
    char url[400], buf[16];
    ipk_chan *l = listen_q(url, sizeof url, "");
    ipk_chan *d = dial(url, "");
    ipkt_ok(ipk_close(l));
    ipkt_expect(ipk_recv(d, buf, sizeof buf, 0), IPK_EOF);
    ipkt_errmsg_has("the queue was removed");
    ipkt_expect(ipk_recv(d, buf, sizeof buf, 0), IPK_ECLOSED);
    ipkt_ok(ipk_close(d));
}

/* msg_qbytes bounds a message as msgmax does (the suite checks msgmax), read again when a send
 * cannot proceed since an administrator may lower it. */
static void t_qbytes(void **state)
{
    (void)state;
    char url[400], big[101] = {0};
    ipk_chan *l = listen_q(url, sizeof url, "");
    ipkt_ok(ipk_send(l, big, 101, 0));
    assert_int_equal(set_qbytes(l, 100), 0);
    ipkt_expect(ipk_send(l, big, 101, 0), IPK_EMSGSIZE);
    ipkt_errmsg_has("message of 101 bytes exceeds the queue's msg_qbytes (100)");
    ipkt_expect(ipk_recv(l, big, sizeof big, 0), 101);
    ipkt_ok(ipk_close(l));
}

static void t_keys(void **state)
{
    (void)state;
    ipk_chan *c = NULL;
    char url[400];
    ipkt_expect(ipk_dial(&c, "sysv:/nonexistent/queue.h", NULL), -ENOENT);
    ipkt_errmsg_has("ftok needs an existing file '/nonexistent/queue.h'");
    snprintf(url, sizeof url, "sysv:0x7f%06x", (unsigned)getpid() & 0xffffff);
    ipkt_expect(ipk_dial(&c, url, NULL), -ENOENT);
    ipkt_errmsg_has("no such queue (key 0x7f");
    ipkt_expect(ipk_dial(&c, "sysv:/etc/passwd?proj=256", NULL), IPK_EOPTION);
    ipkt_errmsg_has("proj=256");
    ipkt_expect(ipk_dial(&c, "sysv:/etc/passwd?prio=1", NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'prio'");
    assert_null(c);
}

static void t_interop(void **state)
{
    (void)state;
    char url[400], cmd[600], line[200];
    ipk_chan *l = listen_q(url, sizeof url, "&type=0");
    unsigned key;
    sscanf(ipk_addr(l), "sysv:0x%x", &key);
    snprintf(cmd, sizeof cmd, "%s/peer_sysv send 0x%x 3 hello-from-msgsnd", IPKT_PEER_DIR, key);
    assert_int_equal(system(cmd), 0);
    char buf[64];
    ipk_msginfo mi;
    ipkt_expect(ipk_recvx(l, buf, sizeof buf, &mi, 0), 17);
    assert_memory_equal(buf, "hello-from-msgsnd", 17);
    assert_int_equal(mi.type, 3);
    mi.type = 9;
    ipkt_ok(ipk_sendx(l, "to-msgrcv", 9, &mi, 0));
    snprintf(cmd, sizeof cmd, "%s/peer_sysv recv 0x%x 9", IPKT_PEER_DIR, key);
    assert_int_equal(ipkt_run_line(cmd, line, sizeof line), 0);
    assert_string_equal(line, "9 9 to-msgrcv\n");
    ipkt_ok(ipk_close(l));
}

static void t_info(void **state)
{
    (void)state;
    char url[400];
    ipk_chan *l = listen_q(url, sizeof url, "");
    ipkt_ok(ipk_send(l, "x", 1, 0));
    ipkt_info_has(url, (const char *const[]){"/proc/sys/kernel/msgmax", "/proc/sys/kernel/msgmnb",
                                             "/proc/sys/kernel/msgmni", "1 messages", NULL});
    ipkt_ok(ipk_close(l));
}

/* ---- the suite ---- */

static void sysv_fresh(char *url, size_t cap)
{
    make_url(url, cap);
    *strchr(url, '?') = '\0'; /* proj=1, the default */
}

/* Journals the queue's id; a queue meant to fill holds two messages of 32 bytes. */
static void sysv_created(ipk_chan *l, int small)
{
    unsigned key;
    assert_int_equal(sscanf(ipk_addr(l), "sysv:0x%x", &key), 1);
    ipkt_journal_id("msqid", msgget((key_t)key, 0));
    if (small)
        assert_int_equal(set_qbytes(l, 64), 0);
}

static size_t sysv_largest(void)
{
    char b[32];
    ipkt_slurp("/proc/sys/kernel/msgmax", b, sizeof b);
    return (size_t)atol(b);
}

static int sysv_mode(ipk_chan *l)
{
    unsigned key;
    struct msqid_ds ds;
    assert_int_equal(sscanf(ipk_addr(l), "sysv:0x%x", &key), 1);
    assert_int_equal(msgctl(msgget((key_t)key, 0), IPC_STAT, &ds), 0);
    return ds.msg_perm.mode & 0777;
}

static int sysv_info_ok(const ipk_msginfo *mi, pid_t sender)
{
    (void)sender;
    return mi->type == 1; /* the default type */
}

static qs_kind sysv = {
    .scheme = "sysv",
    .fresh = sysv_fresh,
    .created = sysv_created,
    .consumers = QS_SHARE,
    .largest = sysv_largest,
    .over_fmt = "message of %zu bytes exceeds /proc/sys/kernel/msgmax (%zu)",
    .small_fmt = "the next message is larger than the buffer of %zu bytes; it stays queued",
    .needed_bound = 1,
    .empty_says = "no message of type 0 (any)",
    .nofd_says = "no descriptor",
    .info_ok = sysv_info_ok,
    .small = "",
    .fill_len = 32,
    .full_says = "the queue is full (msg_qbytes 64 bytes)",
    .missing_says = "no such queue",
    .eacces_says = "msgget",
    .mode_of = sysv_mode,
    .removed_says = "the queue was removed",
};

IPKT_MAIN(QS_MESSAGES("sysv", &sysv), QS_FULL("sysv", &sysv), QS_CONSUMERS("sysv", &sysv),
          QS_OWNED("sysv", &sysv), QS_REMOVED("sysv", &sysv),
          cmocka_unit_test(t_guide_typed_retrieval), cmocka_unit_test(t_selectors),
          cmocka_unit_test(t_closed_after_removal), cmocka_unit_test(t_qbytes),
          cmocka_unit_test(t_keys), cmocka_unit_test(t_interop), cmocka_unit_test(t_info))
