/*
 * test_sysv.c - the sysv: transport between real processes: the guide's typed retrieval,
 * selectors, full and empty queues with and without a timeout, oversized messages, missing and
 * foreign queues, a queue removed under a waiting receiver, and interoperation with a plain
 * msgsnd/msgrcv program in the guide's layout.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

/* In a child process (no cmocka there): report and fail. */
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

static void t_full_and_empty(void **state)
{
    (void)state;
    char url[400], a[32], b[32], buf[64];
    ipk_chan *l = listen_q(url, sizeof url, "");
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), -EAGAIN);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 20), IPK_ETIMEDOUT);
    ipkt_errmsg_has("no message of type 0 (any)");
    assert_int_equal(set_qbytes(l, 64), 0); /* root may set it; two 32-byte messages fill it */
    ipk_chan *c = dial(url, "");
    ipkt_fill(a, 32, 1);
    ipkt_fill(b, 32, 2);
    ipkt_ok(ipk_send(c, a, 32, 0));
    ipkt_ok(ipk_send(c, b, 32, 0));
    ipkt_expect(ipk_send(c, "x", 1, 0), -EAGAIN);
    ipkt_errmsg_has("the queue is full (msg_qbytes 64 bytes)");
    ipkt_expect(ipk_send(c, "x", 1, 30), IPK_ETIMEDOUT);
    ipkt_errmsg_has("full");
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 32);
    assert_true(ipkt_check(buf, 32, 1));
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), 32);
    assert_true(ipkt_check(buf, 32, 2));
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 0), -EAGAIN);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(l));
}

static int late_sender(void *arg)
{
    (void)arg;
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    usleep(50 * 1000);
    IPKT_CHECK(ipk_send(c, "late", 4, -1) == 0);
    usleep(50 * 1000);
    IPKT_CHECK(ipk_send(c, "later", 5, -1) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* Waiting with a deadline (back-off) and forever (the blocking call) both get the message. */
static void t_waits(void **state)
{
    (void)state;
    ipk_chan *l = listen_q(g_url, sizeof g_url, "");
    pid_t p = ipkt_spawn(late_sender, NULL);
    char buf[16];
    ipkt_expect(ipk_recv(l, buf, sizeof buf, 10000), 4);
    assert_memory_equal(buf, "late", 4);
    ipkt_expect(ipk_recv(l, buf, sizeof buf, -1), 5);
    assert_memory_equal(buf, "later", 5);
    assert_int_equal(ipkt_wait(p), 0);
    ipkt_ok(ipk_close(l));
}

static int recv_until_removed(void *arg)
{
    int *ready = arg;
    ipk_chan *c;
    char buf[16];
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    IPKT_CHECK(write(ready[1], "r", 1) == 1);
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, -1) == IPK_EOF);
    IPKT_CHECK(strstr(ipk_errmsg(), "the queue was removed") != NULL);
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 0) == IPK_ECLOSED);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* The owner's close removes the queue; a receiver waiting on it (or about to) sees IPK_EOF. */
static void t_removed_under_receiver(void **state)
{
    (void)state;
    int ready[2];
    char b;
    assert_int_equal(pipe(ready), 0);
    ipk_chan *l = listen_q(g_url, sizeof g_url, "");
    pid_t p = ipkt_spawn(recv_until_removed, ready);
    assert_int_equal(read(ready[0], &b, 1), 1);
    usleep(20 * 1000); /* most likely blocked in msgrcv by now; either way it must see EOF */
    ipkt_ok(ipk_close(l));
    assert_int_equal(ipkt_wait(p), 0);
}

static void t_oversized(void **state)
{
    (void)state;
    char url[400];
    ipk_chan *l = listen_q(url, sizeof url, "");
    FILE *f = fopen("/proc/sys/kernel/msgmax", "r");
    long msgmax = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &msgmax), 1);
    fclose(f);
    char *big = calloc(1, (size_t)msgmax + 1), want[160];
    assert_non_null(big);
    ipkt_expect(ipk_send(l, big, (size_t)msgmax + 1, 0), IPK_EMSGSIZE);
    snprintf(want, sizeof want, "message of %ld bytes exceeds /proc/sys/kernel/msgmax (%ld)",
             msgmax + 1, msgmax);
    ipkt_errmsg_has(want);
    assert_int_equal(set_qbytes(l, 100), 0);
    ipkt_expect(ipk_send(l, big, 101, 0), IPK_EMSGSIZE);
    ipkt_errmsg_has("message of 101 bytes exceeds the queue's msg_qbytes (100)");
    /* A buffer too small: IPK_EMSGSIZE, the message stays queued, ipk_needed() holds it. */
    ipkt_fill(big, 90, 3);
    ipkt_ok(ipk_send(l, big, 90, 0));
    char small[10];
    ipkt_expect(ipk_recv(l, small, sizeof small, 0), IPK_EMSGSIZE);
    ipkt_errmsg_has("stays queued");
    size_t need = ipk_needed(l);
    assert_true(need >= 90);
    char *got = malloc(need);
    assert_non_null(got);
    ipkt_expect(ipk_recv(l, got, need, 0), 90);
    assert_true(ipkt_check(got, 90, 3));
    free(got);
    free(big);
    ipkt_ok(ipk_close(l));
}

static int dial_as_nobody(void *arg)
{
    (void)arg;
    IPKT_CHECK(ipkt_become_nobody() == 0);
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == -EACCES);
    IPKT_CHECK(strstr(ipk_errmsg(), "msgget") != NULL);
    return 0;
}

static void t_missing_and_foreign(void **state)
{
    (void)state;
    ipk_chan *c = NULL;
    char url[400];
    make_url(url, sizeof url);
    ipkt_expect(ipk_dial(&c, url, NULL), -ENOENT);
    ipkt_errmsg_has("no such queue");
    ipkt_expect(ipk_dial(&c, "sysv:/nonexistent/queue.h", NULL), -ENOENT);
    ipkt_errmsg_has("ftok needs an existing file '/nonexistent/queue.h'");
    snprintf(url, sizeof url, "sysv:0x7f%06x", (unsigned)getpid() & 0xffffff);
    ipkt_expect(ipk_dial(&c, url, NULL), -ENOENT);
    ipkt_errmsg_has("no such queue (key 0x7f");
    ipkt_expect(ipk_dial(&c, "sysv:/etc/passwd?proj=256", NULL), IPK_EOPTION);
    ipkt_errmsg_has("proj=256");
    ipkt_expect(ipk_dial(&c, "sysv:/etc/passwd?prio=1", NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'prio'");
    ipk_chan *l = listen_q(g_url, sizeof g_url, "&perm=0600");
    assert_int_equal(ipkt_wait(ipkt_spawn(dial_as_nobody, NULL)), 0);
    ipkt_expect(ipk_fd(l), IPK_ENOTSUP);
    ipkt_errmsg_has("no descriptor");
    ipkt_ok(ipk_close(l));
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
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    assert_string_equal(line, "9 9 to-msgrcv\n");
    ipkt_ok(ipk_close(l));
}

static volatile sig_atomic_t g_interrupts;
static void on_usr2(int sig)
{
    (void)sig;
    g_interrupts++;
}

static int recv_through_signals(void *arg)
{
    int *ready = arg;
    /* A handler without SA_RESTART: msgrcv/msgsnd are never restarted anyway. */
    struct sigaction sa = {.sa_handler = on_usr2};
    IPKT_CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
    ipk_chan *c;
    char buf[16];
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    IPKT_CHECK(write(ready[1], "r", 1) == 1);
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, -1) == 5 && memcmp(buf, "first", 5) == 0);
    IPKT_CHECK(write(ready[1], "r", 1) == 1);
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 20000) == 6 && memcmp(buf, "second", 6) == 0);
    IPKT_CHECK(g_interrupts > 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* Signals that interrupt a waiting receive (blocking, and with a deadline) are not errors. */
static void t_eintr(void **state)
{
    (void)state;
    int ready[2];
    char b;
    assert_int_equal(pipe(ready), 0);
    ipk_chan *l = listen_q(g_url, sizeof g_url, "");
    pid_t p = ipkt_spawn(recv_through_signals, ready);
    const char *msgs[] = {"first", "second"};
    for (int m = 0; m < 2; m++) {
        assert_int_equal(read(ready[0], &b, 1), 1);
        for (int i = 0; i < 5; i++) {
            usleep(5000);
            assert_int_equal(kill(p, SIGUSR2), 0);
        }
        ipkt_ok(ipk_send(l, msgs[m], strlen(msgs[m]), 0));
    }
    assert_int_equal(ipkt_wait(p), 0);
    ipkt_ok(ipk_close(l));
}

/* The owner removes the queue on close unless keep=1 or a message waits; a dialer never does. */
static void t_owner_removes(void **state)
{
    (void)state;
    char url[400], u[450];
    ipk_chan *l = listen_q(url, sizeof url, "");
    ipk_chan *d = dial(url, "");
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
    ipkt_expect(ipk_dial(&d, url, NULL), -ENOENT);
    snprintf(u, sizeof u, "%s&keep=1", url);
    ipkt_ok(ipk_listen(&l, u, NULL));
    ipkt_ok(ipk_send(l, "kept", 4, 0));
    ipkt_ok(ipk_close(l));
    d = dial(url, "");
    char buf[8];
    ipkt_expect(ipk_recv(d, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "kept", 4);
    unsigned key;
    assert_int_equal(sscanf(ipk_addr(d), "sysv:0x%x", &key), 1);
    ipkt_ok(ipk_close(d));
    assert_int_equal(msgctl(msgget((key_t)key, 0), IPC_RMID, NULL), 0);
}

static void t_info(void **state)
{
    (void)state;
    char url[400], buf[4096];
    ipk_chan *l = listen_q(url, sizeof url, "");
    ipkt_ok(ipk_send(l, "x", 1, 0));
    long n = ipk_info(url, buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "/proc/sys/kernel/msgmax"));
    assert_non_null(strstr(buf, "/proc/sys/kernel/msgmnb"));
    assert_non_null(strstr(buf, "/proc/sys/kernel/msgmni"));
    assert_non_null(strstr(buf, "1 messages"));
    ipkt_ok(ipk_close(l));
}

IPKT_MAIN(cmocka_unit_test(t_guide_typed_retrieval), cmocka_unit_test(t_selectors),
          cmocka_unit_test(t_full_and_empty), cmocka_unit_test(t_waits),
          cmocka_unit_test(t_removed_under_receiver), cmocka_unit_test(t_oversized),
          cmocka_unit_test(t_missing_and_foreign), cmocka_unit_test(t_interop),
          cmocka_unit_test(t_owner_removes), cmocka_unit_test(t_eintr), cmocka_unit_test(t_info))
