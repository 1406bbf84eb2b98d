/*
 * test_fifo.c - the fifo: transport between real processes: creation (0600, exact perm), what
 * is refused and left untouched, a writer waiting for its reader (bounded, and across EINTR),
 * a reader that does not mistake "no writer yet" for EOF, EOF and persist=1 across writers,
 * atomic frames from several writers, permissions, removal by the owner only, and SIGPIPE.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char url[400];

/* A fresh path (journalled) and its "fifo:PATH?query" address in url. */
static const char *fifo_url(char *path, size_t cap, const char *query)
{
    ipkt_path(path, cap, "fifo");
    ipkt_journal("path", path);
    snprintf(url, sizeof url, "fifo:%s%s%s", path, query ? "?" : "", query ? query : "");
    return url;
}

static ipk_chan *reader(const char *u)
{
    ipk_chan *c = NULL;
    ipkt_ok(ipk_listen(&c, u, NULL));
    return c;
}

static ipk_chan *writer(const char *u)
{
    ipk_chan *c = NULL;
    ipkt_ok(ipk_dial(&c, u, NULL));
    return c;
}

static void expect_msg(ipk_chan *c, const char *want)
{
    char buf[64];
    long n = ipk_recv(c, buf, sizeof buf, 5000);
    ipkt_expect(n, strlen(want));
    assert_memory_equal(buf, want, (size_t)n);
}

static void t_created_0600(void **state)
{
    (void)state;
    char path[256];
    ipk_chan *r = reader(fifo_url(path, sizeof path, NULL));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    assert_string_equal(ipk_addr(r), url);
    ipkt_ok(ipk_close(r));
    assert_int_equal(stat(path, &st), -1); /* the owner removed it */

    /* perm is applied as given, whatever the umask. */
    mode_t old = umask(077);
    r = reader(fifo_url(path, sizeof path, "perm=0640"));
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    ipkt_ok(ipk_close(r));
}

static void t_not_a_fifo(void **state)
{
    (void)state;
    char path[256];
    const char *u = fifo_url(path, sizeof path, NULL);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    ipk_chan *c = (ipk_chan *)0x1;
    ipkt_expect(ipk_listen(&c, u, NULL), -EEXIST);
    ipkt_errmsg_has("exists and is not a FIFO");
    assert_null(c);
    ipkt_expect(ipk_dial(&c, u, NULL), -EEXIST);
    ipkt_errmsg_has("exists and is not a FIFO");
    ipkt_expect(ipk_listen(&c, u, NULL), -EEXIST); /* also with keep/perm: never touched */
    char buf[16] = "";
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "precious");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    ipkt_expect(ipk_listen(&c, "fifo:/", NULL), -EEXIST); /* a directory */
    ipkt_errmsg_has("not a FIFO");
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* Interrupts this process every 5 ms (no SA_RESTART) until stop_storm(). */
static void start_storm(void)
{
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void stop_storm(void)
{
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void t_dial_no_reader(void **state)
{
    (void)state;
    char path[256];
    const char *u = fifo_url(path, sizeof path, "wait=100");
    assert_int_equal(mkfifo(path, 0600), 0);
    ipk_chan *c = (ipk_chan *)0x1;
    ipkt_expect(ipk_dial(&c, u, NULL), IPK_ETIMEDOUT);
    ipkt_errmsg_has("no reader opened the FIFO within wait=100 ms");
    assert_null(c);

    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_opts_set(o, "wait", "0")); /* overrides the address */
    ipkt_expect(ipk_dial(&c, u, o), -EAGAIN);
    ipk_opts_free(o);

    /* Interrupted over and over, the wait still ends at its deadline and not with EINTR. */
    alarms = 0;
    start_storm();
    ipkt_expect(ipk_dial(&c, u, NULL), IPK_ETIMEDOUT);
    stop_storm();
    assert_true(alarms > 0);

    char missing[256];
    snprintf(url, sizeof url, "fifo:%s", ipkt_path(missing, sizeof missing, "none"));
    ipkt_expect(ipk_dial(&c, url, NULL), -ENOENT);
    ipkt_errmsg_has("no such FIFO");
}

static char shared_url[512];

static int late_reader(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    ipk_chan *r = NULL;
    if (ipk_listen(&r, shared_url, NULL) != 0)
        return 1;
    char buf[16];
    long n = ipk_recv(r, buf, sizeof buf, 5000);
    int ok =
        n == 5 && memcmp(buf, "hello", 5) == 0 && ipk_recv(r, buf, sizeof buf, 5000) == IPK_EOF;
    ipk_close(r);
    return ok ? 0 : 1;
}

/* The writer waits (with a bound, through a storm of signals) until a reader appears. */
static void t_dial_waits_for_reader(void **state)
{
    (void)state;
    char path[256];
    fifo_url(path, sizeof path, NULL);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(shared_url, sizeof shared_url, "%s", url);
    pid_t pid = ipkt_spawn(late_reader, NULL);
    start_storm();
    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_opts_set(o, "wait", "20000"));
    ipk_chan *w = NULL;
    ipkt_ok(ipk_dial(&w, url, o));
    stop_storm();
    ipk_opts_free(o);
    ipkt_ok(ipk_send(w, "hello", 5, 5000));
    ipkt_ok(ipk_close(w));
    assert_int_equal(ipkt_wait(pid), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0); /* the reader did not create it: not removed */
}

/* Before any writer, read() on a FIFO returns 0; that must not read as EOF. Linux's poll()
 * reports nothing (no POLLHUP) until a writer has come and gone. */
static void t_reader_before_writer(void **state)
{
    (void)state;
    char path[256];
    ipk_chan *r = reader(fifo_url(path, sizeof path, NULL));
    char buf[16];
    ipkt_expect(ipk_recv(r, buf, sizeof buf, 100), IPK_ETIMEDOUT);
    ipkt_errmsg_has("no writer has opened the FIFO yet");
    ipkt_expect(ipk_recv(r, buf, sizeof buf, 0), -EAGAIN);
    struct pollfd p = {.fd = ipk_fd(r), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 50), 0);

    ipk_chan *w = writer(url);
    ipkt_ok(ipk_send(w, "one", 3, 5000));
    ipkt_ok(ipk_send(w, "two", 3, 5000));
    expect_msg(r, "one");
    ipkt_ok(ipk_close(w));
    expect_msg(r, "two");
    /* The last writer left: EOF, at a frame boundary; now poll reports the hang-up. */
    ipkt_expect(ipk_recv(r, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_errmsg_has("end of stream");
    assert_int_equal(poll(&p, 1, 0), 1);
    assert_true(p.revents & POLLHUP);
    ipkt_ok(ipk_close(r));
}

static int send_one(void *arg)
{
    ipk_chan *w = NULL;
    if (ipk_dial(&w, shared_url, NULL) != 0)
        return 1;
    int r = ipk_send(w, arg, strlen(arg), 5000);
    return ipk_close(w) != 0 || r != 0;
}

/* persist=1: the reader outlives its writers; without it, the first writer's leaving is EOF. */
static void t_persist(void **state)
{
    (void)state;
    char path[256];
    ipk_chan *r = reader(fifo_url(path, sizeof path, "persist=1"));
    snprintf(shared_url, sizeof shared_url, "fifo:%s", path);
    assert_int_equal(ipkt_wait(ipkt_spawn(send_one, "first")), 0);
    assert_int_equal(ipkt_wait(ipkt_spawn(send_one, "second")), 0);
    expect_msg(r, "first");
    expect_msg(r, "second");
    char buf[16];
    ipkt_expect(ipk_recv(r, buf, sizeof buf, 100), IPK_ETIMEDOUT); /* no EOF */
    ipkt_expect(ipk_send(r, "x", 1, 0), IPK_ENOTSUP);              /* still a reader only */
    assert_int_equal(ipkt_wait(ipkt_spawn(send_one, "third")), 0);
    expect_msg(r, "third");
    ipkt_ok(ipk_close(r));

    r = reader(fifo_url(path, sizeof path, NULL));
    snprintf(shared_url, sizeof shared_url, "fifo:%s", path);
    assert_int_equal(ipkt_wait(ipkt_spawn(send_one, "only")), 0);
    expect_msg(r, "only");
    ipkt_expect(ipk_recv(r, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_ok(ipk_close(r));
}

#define WRITERS 4
#define FRAMES  200
#define FRAME   (PIPE_BUF - 4) /* the largest message whose frame is atomic */
#define BATCH   40             /* frames per ipk_sendv: about 100 KiB, more than a pipe holds */

/* Sizes vary up to FRAME, so frames do not line up with the kernel's page-sized pipe buffers
 * (with 4096-byte frames even split writes would happen to end at frame boundaries). */
static size_t msg_len(uint32_t id)
{
    return id % 3 == 0 ? FRAME : 8 + (id * 2654435761u) % (FRAME - 8);
}

/* Message k of writer w: its index in the first 4 bytes, then a pattern seeded by both. */
static size_t make_msg(char *m, int w, int k)
{
    uint32_t id = (uint32_t)(w * FRAMES + k);
    memcpy(m, &id, 4);
    ipkt_fill(m + 4, msg_len(id) - 4, id);
    return msg_len(id);
}

static int atomic_writer(void *arg)
{
    int w = (int)(intptr_t)arg;
    ipk_chan *c = NULL;
    if (ipk_dial(&c, shared_url, NULL) != 0)
        return 1;
    static char msgs[BATCH][FRAME];
    for (int k = 0; k < FRAMES; k += BATCH) {
        ipk_iov v[BATCH];
        for (int i = 0; i < BATCH; i++) {
            v[i] = (ipk_iov){msgs[i], make_msg(msgs[i], w, k + i)};
        }
        /* A batch larger than the pipe: with atomic=1 still one write per frame. */
        for (size_t done = 0; done < BATCH;) {
            long n = ipk_sendv(c, v + done, BATCH - done, 10000);
            if (n <= 0)
                return 1;
            done += (size_t)n;
        }
    }
    return ipk_close(c) != 0;
}

static void t_atomic_writers(void **state)
{
    (void)state;
    char path[256];
    ipk_chan *r = reader(fifo_url(path, sizeof path, "persist=1"));
    snprintf(shared_url, sizeof shared_url, "fifo:%s?atomic=1", path);
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++)
        pids[w] = ipkt_spawn(atomic_writer, (void *)(intptr_t)w);
    int next[WRITERS] = {0};
    static char buf[PIPE_BUF];
    for (int i = 0; i < WRITERS * FRAMES; i++) {
        long n = ipk_recv(r, buf, sizeof buf, 20000);
        assert_true(n >= 8);
        uint32_t id;
        memcpy(&id, buf, 4);
        assert_true(id < WRITERS * FRAMES);
        ipkt_expect(n, msg_len(id));
        int w = (int)(id / FRAMES), k = (int)(id % FRAMES);
        assert_true(w < WRITERS);
        assert_int_equal(k, next[w]); /* each writer's frames in order, none lost */
        next[w]++;
        assert_true(ipkt_check(buf + 4, (size_t)n - 4, id)); /* and none interleaved */
    }
    for (int w = 0; w < WRITERS; w++)
        assert_int_equal(ipkt_wait(pids[w]), 0);
    ipkt_ok(ipk_close(r));
}

static void t_atomic_refuses(void **state)
{
    (void)state;
    char path[256];
    ipk_chan *r = reader(fifo_url(path, sizeof path, NULL));
    snprintf(url, sizeof url, "fifo:%s?atomic=1", path);
    ipk_chan *w = writer(url);
    static char big[PIPE_BUF + 1];
    ipkt_ok(ipk_send(w, big, PIPE_BUF - 4, 5000));
    ipkt_expect(ipk_send(w, big, PIPE_BUF + 1, 5000), IPK_EMSGSIZE);
    ipkt_errmsg_has("PIPE_BUF (4096)");
    ipkt_expect(ipk_send(w, big, PIPE_BUF - 3, 5000), IPK_EMSGSIZE); /* 4097 with its header */
    ipkt_errmsg_has("4097-byte frame");
    ipk_iov v[2] = {{big, 1}, {big, PIPE_BUF}};
    ipkt_expect(ipk_sendv(w, v, 2, 5000), 1); /* the first went, the second was refused */
    ipkt_ok(ipk_close(w));
    static char in[PIPE_BUF];
    ipkt_expect(ipk_recv(r, in, sizeof in, 5000), PIPE_BUF - 4);
    ipkt_expect(ipk_recv(r, in, sizeof in, 5000), 1);
    ipkt_expect(ipk_recv(r, in, sizeof in, 5000), IPK_EOF); /* nothing refused got through */
    ipkt_ok(ipk_close(r));

    /* framing=raw has no header: PIPE_BUF itself is allowed. */
    r = reader(fifo_url(path, sizeof path, "framing=raw"));
    snprintf(url, sizeof url, "fifo:%s?atomic=1&framing=raw", path);
    w = writer(url);
    ipkt_ok(ipk_send(w, big, PIPE_BUF, 5000));
    ipkt_expect(ipk_send(w, big, PIPE_BUF + 1, 5000), IPK_EMSGSIZE);
    ipkt_errmsg_has("PIPE_BUF");
    ipkt_ok(ipk_close(w));
    ipkt_ok(ipk_close(r));
}

static int open_as_nobody(void *arg)
{
    (void)arg;
    if (ipkt_become_nobody() != 0)
        return 2;
    ipk_chan *c = NULL;
    ipk_opts *o = ipk_opts_new();
    ipk_opts_set(o, "wait", "100");
    int r = ipk_dial(&c, shared_url, o);
    ipk_opts_free(o);
    if (r != -EACCES || strstr(ipk_errmsg(), "open for writing") == NULL)
        return 3;
    if (ipk_listen(&c, shared_url, NULL) != -EACCES || strstr(ipk_errmsg(), "open") == NULL)
        return 4;
    return 0;
}

static void t_permission_denied(void **state)
{
    (void)state;
    assert_int_equal(geteuid(), 0); /* tests run as root; the child becomes nobody */
    char path[256];
    ipk_chan *r = reader(fifo_url(path, sizeof path, NULL));
    snprintf(shared_url, sizeof shared_url, "fifo:%s", path);
    assert_int_equal(ipkt_wait(ipkt_spawn(open_as_nobody, NULL)), 0);
    ipkt_ok(ipk_close(r));
}

static void t_owner_removes(void **state)
{
    (void)state;
    char path[256];
    struct stat st;
    ipk_chan *r = reader(fifo_url(path, sizeof path, "keep=1"));
    ipkt_ok(ipk_close(r));
    assert_int_equal(stat(path, &st), 0); /* keep=1 keeps it */

    r = reader(url); /* an existing FIFO: used, not owned */
    ipkt_ok(ipk_close(r));
    assert_int_equal(stat(path, &st), 0);

    /* The owner removes only the FIFO it made: a replacement at the same path stays. */
    r = reader(fifo_url(path, sizeof path, NULL));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    ipkt_ok(ipk_close(r));
    assert_int_equal(stat(path, &st), 0);
}

static void t_bad_options(void **state)
{
    (void)state;
    char path[256];
    ipk_chan *c = NULL;
    ipkt_expect(ipk_listen(&c, fifo_url(path, sizeof path, "linger=1"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'linger'");
    ipkt_expect(ipk_listen(&c, fifo_url(path, sizeof path, "persist=2"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("persist=2");
    ipkt_expect(ipk_dial(&c, fifo_url(path, sizeof path, "wait=-5"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("wait=-5");
    ipkt_expect(ipk_listen(&c, fifo_url(path, sizeof path, "atomic=maybe"), NULL), IPK_EOPTION);
    ipkt_errmsg_has("atomic=maybe");
    assert_null(c);
    struct stat st;
    assert_int_equal(stat(path, &st), -1); /* nothing was created on the way */
}

/* Each end goes one way; SIGPIPE (default action here) never reaches the writer. */
static void t_one_way_no_sigpipe(void **state)
{
    (void)state;
    char path[256];
    ipk_chan *r = reader(fifo_url(path, sizeof path, NULL));
    ipk_chan *w = writer(url);
    char buf[8];
    ipkt_expect(ipk_send(r, "x", 1, 0), IPK_ENOTSUP);
    ipkt_errmsg_has("only receives");
    ipkt_expect(ipk_recv(w, buf, sizeof buf, 0), IPK_ENOTSUP);
    ipkt_errmsg_has("only sends");
    ipkt_expect(ipk_fd(w), IPK_ENOTSUP);
    ipkt_ok(ipk_close(r));
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_DFL);
    ipkt_expect(ipk_send(w, "x", 1, 5000), -EPIPE);
    ipkt_errmsg_has("write");
    ipkt_ok(ipk_close(w));
}

static void t_info(void **state)
{
    (void)state;
    char path[256], buf[1024];
    fifo_url(path, sizeof path, NULL);
    long n = ipk_info(url, buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "absent"));
    assert_non_null(strstr(buf, "PIPE_BUF"));
    ipk_chan *r = reader(url);
    ipk_info(url, buf, sizeof buf);
    assert_non_null(strstr(buf, "a FIFO, mode 0600"));
    ipkt_ok(ipk_close(r));
    assert_int_equal(ipk_scheme_built("fifo"), 1);
}

IPKT_MAIN(cmocka_unit_test(t_info), cmocka_unit_test(t_created_0600),
          cmocka_unit_test(t_not_a_fifo), cmocka_unit_test(t_dial_no_reader),
          cmocka_unit_test(t_dial_waits_for_reader), cmocka_unit_test(t_reader_before_writer),
          cmocka_unit_test(t_persist), cmocka_unit_test(t_atomic_writers),
          cmocka_unit_test(t_atomic_refuses), cmocka_unit_test(t_permission_denied),
          cmocka_unit_test(t_owner_removes), cmocka_unit_test(t_bad_options),
          cmocka_unit_test(t_one_way_no_sigpipe))
