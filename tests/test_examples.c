/*
 * test_examples.c - the example programs of examples/ run as a user runs them, between real
 * processes: their output is read back from files and checked line by line.
 *
 * serve_all (the guide's closing chapter): one process serving a FIFO, a POSIX queue, a System V
 * queue, a Unix socket, a shared-memory ring and SIGTERM on one poller, fed at once by writers,
 * senders and clients in other processes; every message must be printed exactly once with its
 * source (and echoed to its client), SIGTERM must end it with status 0, and nothing it created
 * may be left behind. asyncio_poller.py: the same, with the poller nested in Python's asyncio
 * loop through ipk_poller_fd() (the library through ctypes).
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
#include <sys/stat.h>
#include <unistd.h>

#define EXAMPLES IPKT_BIN_DIR "/examples"
#define WAIT_MS  20000 /* for a state to appear; generous for ASan and valgrind */
#define K        40    /* messages per feeder */

/* Starts an example with its output into files. */
static pid_t start_example(const char *const *argv, const char *out, const char *err)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int i = open("/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0)
            _exit(99);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], (char *const *)argv);
        _exit(98);
    }
    ipkt_journal_id("pid", pid);
    return pid;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Waits until file holds needle at least n times; fails the test otherwise. */
static void wait_for(const char *file, const char *needle, int n, char *buf, size_t cap)
{
    for (int waited = 0;; waited += 20) {
        ipkt_slurp(file, buf, cap);
        if (count_of(buf, needle) >= n)
            return;
        if (waited >= WAIT_MS) {
            print_error("%s has %d of %d '%s':\n%s\n", file, count_of(buf, needle), n, needle, buf);
            fail();
        }
        ipkt_msleep(20);
    }
}

typedef struct feeder {
    const char *url;
    const char *tag; /* messages are "<tag>-<id>-<i>" */
    int id;
    int echo; /* a client: each message comes back */
} feeder;

static int feed(void *arg)
{
    const feeder *f = arg;
    ipk_chan *c = NULL;
    IPKT_CHECK(ipk_dial(&c, f->url, NULL) == 0);
    for (int i = 0; i < K; i++) {
        char m[64], in[64];
        int n = snprintf(m, sizeof m, "%s-%d-%d", f->tag, f->id, i);
        IPKT_CHECK(ipk_send(c, m, (size_t)n, WAIT_MS) == 0);
        if (f->echo) {
            IPKT_CHECK(ipk_recv(c, in, sizeof in, WAIT_MS) == n);
            IPKT_CHECK(memcmp(in, m, (size_t)n) == 0);
        }
    }
    IPKT_CHECK(ipk_close(c) == 0);
    return 0;
}

/* The object url names is gone. */
static void gone(const char *url)
{
    ipk_objects *l;
    ipkt_ok(ipk_objects_new(&l));
    int r = ipk_objects_resolve(l, url);
    if (r != -ENOENT)
        print_error("%s: still there (%d, %s)\n", url, r, ipk_errmsg());
    assert_int_equal(r, -ENOENT);
    ipk_objects_free(l);
}

/* How a program under test is started: the words before the addresses, what it says on standard
 * error when it is ready, and whether SIGTERM is one of its addresses (signal:self). */
typedef struct program {
    const char *argv[8];
    const char *ready;
    int signal_url;
} program;

/*
 * Starts the program on a FIFO, a POSIX queue, a System V queue, a Unix socket and a
 * shared-memory ring (and SIGTERM), feeds them all at once from other processes, checks that
 * every message is printed exactly once with its source (and echoed to its client), then sends
 * SIGTERM: it must exit 0 having removed everything it created.
 */
static void run_all(const program *pg)
{
    char fifo[256], sock[256], keyf[256], mq[64], shm[64], out[256], err[256];
    ipkt_path(fifo, sizeof fifo, "sa.fifo");
    ipkt_path(sock, sizeof sock, "sa.sock");
    ipkt_path(keyf, sizeof keyf, "sa.key");
    ipkt_path(out, sizeof out, "sa.out");
    ipkt_path(err, sizeof err, "sa.err");
    ipkt_name(mq, sizeof mq, "/");
    ipkt_name(shm, sizeof shm, "/");
    ipkt_journal("path", fifo);
    ipkt_journal("path", sock);
    ipkt_journal("path", keyf);
    ipkt_journal("path", out);
    ipkt_journal("path", err);
    ipkt_journal("mq", mq);
    ipkt_journal("shm", shm);
    int kfd = open(keyf, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(kfd >= 0);
    close(kfd);
    char u_fifo[300], u_mq[80], u_sysv[300], u_unix[300], u_shm[80];
    snprintf(u_fifo, sizeof u_fifo, "fifo:%s", fifo);
    snprintf(u_mq, sizeof u_mq, "mq:%s", mq);
    snprintf(u_sysv, sizeof u_sysv, "sysv:%s?proj=7", keyf);
    snprintf(u_unix, sizeof u_unix, "unix:%s", sock);
    snprintf(u_shm, sizeof u_shm, "shm:%s?multi=1", shm);
    const char *argv[16];
    int n = 0;
    for (; pg->argv[n]; n++)
        argv[n] = pg->argv[n];
    const char *urls[] = {u_fifo, u_mq, u_sysv, u_unix, u_shm, "signal:self?sig=TERM"};
    for (int i = 0; i < (pg->signal_url ? 6 : 5); i++)
        argv[n++] = urls[i];
    argv[n] = NULL;
    pid_t srv = start_example(argv, out, err);
    static char buf[1 << 18];
    wait_for(err, pg->ready, 1, buf, sizeof buf);
    key_t key = ftok(keyf, 7);
    int msqid = msgget(key, 0);
    assert_true(msqid >= 0);
    ipkt_journal_id("msqid", msqid);

    /* Everything at once: two writers or senders per queue, three clients on the socket. */
    char w_fifo[320];
    snprintf(w_fifo, sizeof w_fifo, "%s?atomic=1", u_fifo); /* frames never interleave */
    char w_shm[80];
    snprintf(w_shm, sizeof w_shm, "shm:%s", shm);
    struct {
        const char *url, *tag, *src;
        int writers, echo;
    } kinds[] = {
        {w_fifo, "fifo", u_fifo, 2, 0}, {u_mq, "mq", u_mq, 2, 0},     {u_sysv, "sysv", NULL, 2, 0},
        {w_shm, "shm", w_shm, 2, 0},    {u_unix, "unix", NULL, 3, 1},
    };
    enum { NK = sizeof kinds / sizeof kinds[0] };
    feeder f[16];
    pid_t pid[16];
    int nf = 0, total = 0;
    for (int k = 0; k < NK; k++)
        for (int w = 0; w < kinds[k].writers; w++) {
            f[nf] = (feeder){kinds[k].url, kinds[k].tag, w, kinds[k].echo};
            pid[nf] = ipkt_spawn(feed, &f[nf]);
            nf++;
            total += K;
        }
    for (int i = 0; i < nf; i++)
        assert_int_equal(ipkt_wait(pid[i]), 0);
    wait_for(out, "\n", total, buf, sizeof buf);

    /* Exactly once each, and from the right source. */
    char sysv_src[64], unix_src[320];
    snprintf(sysv_src, sizeof sysv_src, "sysv:0x%x", (unsigned)key);
    snprintf(unix_src, sizeof unix_src, "%s #", u_unix);
    assert_int_equal(count_of(buf, "\n"), total);
    for (int k = 0; k < NK; k++) {
        const char *src = kinds[k].src ? kinds[k].src : k == 2 ? sysv_src : unix_src;
        for (int w = 0; w < kinds[k].writers; w++)
            for (int i = 0; i < K; i++) {
                char needle[64];
                snprintf(needle, sizeof needle, "] %s-%d-%d\n", kinds[k].tag, w, i);
                assert_int_equal(count_of(buf, needle), 1);
                const char *line = strstr(buf, needle);
                while (line > buf && line[-1] != '\n')
                    line--;
                if (line[0] != '[' || strncmp(line + 1, src, strlen(src)) != 0) {
                    print_error("'%s' came from '%.*s', expected %s\n", needle, 60, line, src);
                    fail();
                }
            }
    }
    /* Each client had its own connection. */
    for (int c = 1; c <= 3; c++) {
        char who[340];
        snprintf(who, sizeof who, "[%s%d] ", unix_src, c);
        assert_int_equal(count_of(buf, who), K);
    }

    /* Alone, with nothing else to wake the poller: a message on the ring whose producers have
     * all closed (end of stream, then a new producer), then, with that producer still attached
     * (the ring quiet, not at its end), one on the System V queue (no descriptor: a timer). */
    const char *late[][2] = {{w_shm, "shm-late"}, {u_sysv, "sysv-late"}};
    ipk_chan *lc[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        ipkt_ok(ipk_dial(&lc[i], late[i][0], NULL));
        ipkt_ok(ipk_send(lc[i], late[i][1], strlen(late[i][1]), WAIT_MS));
        char needle[64];
        snprintf(needle, sizeof needle, "] %s\n", late[i][1]);
        wait_for(out, needle, 1, buf, sizeof buf);
    }
    for (int i = 0; i < 2; i++)
        ipkt_ok(ipk_close(lc[i]));

    /* SIGTERM: a graceful exit, and nothing left behind. */
    assert_int_equal(kill(srv, SIGTERM), 0);
    assert_int_equal(ipkt_wait(srv), 0);
    ipkt_slurp(err, buf, sizeof buf);
    assert_non_null(strstr(buf, "signal 15"));
    assert_null(strstr(buf, "left in place"));
    gone(u_fifo);
    gone(u_mq);
    gone(u_sysv);
    gone(u_unix);
    gone(u_shm);
    struct stat sb;
    assert_int_equal(stat(fifo, &sb), -1);
    assert_int_equal(stat(sock, &sb), -1);
}

static void test_serve_all(void **st)
{
    (void)st;
    static const program pg = {{EXAMPLES "/serve_all", NULL}, "serve_all: ready, 6 channels", 1};
    run_all(&pg);
}

/*
 * In a sanitizer build the library needs its runtime loaded first: a program that is not built
 * with it (python3) gets it through LD_PRELOAD, found where this test process has it mapped.
 */
static void preload_sanitizer(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[1024], path[1024];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "%*s %*s %*s %*s %*s %1023s", path) == 1 && strstr(path, "/libasan.so")) {
            setenv("LD_PRELOAD", path, 1);
            setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0", 1);
            break;
        }
    if (f)
        fclose(f);
}

static void test_asyncio_poller(void **st)
{
    (void)st;
    preload_sanitizer();
    static const program pg = {{"/usr/bin/env", "python3",
                                IPKT_SRC_DIR "/examples/asyncio_poller.py", "--lib", IPKT_LIB,
                                NULL},
                               "asyncio_poller: ready, 5 channels",
                               0};
    run_all(&pg);
}

IPKT_MAIN(cmocka_unit_test(test_serve_all), cmocka_unit_test(test_asyncio_poller))
