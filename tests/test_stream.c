/*
 * test_stream.c - the conformance suite every stream transport passes (unix:, tcp:, fifo:, exec:).
 *
 * The other end is always tests/peer_stream.c, a plain program that speaks the 4-byte
 * big-endian frame with read()/write() and no ipckit: so each test also proves that ipckit
 * interoperates with anything that speaks the frame. Each test runs once per transport.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PEER IPKT_PEER_DIR "/peer_stream"
#define MIB  (1 << 20)

enum dir { RX, TX }; /* we receive / we send (matters for fifo:, which is one-way) */

typedef struct conn {
    ipk_chan *c;
    pid_t pid; /* the peer process */
    int exec;  /* the peer is our exec: child (ipk_close reaps it) */
} conn;

static int duplex(const char *kind)
{
    return strcmp(kind, "fifo") != 0;
}

/* Starts peer_stream with argv (connection arguments are filled in here). */
static pid_t start_peer(const char *const *conn_args, int nconn, const char *const *act, int nact)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[16];
        int k = 0;
        argv[k++] = (char *)PEER;
        for (int i = 0; i < nconn; i++)
            argv[k++] = (char *)conn_args[i];
        for (int i = 0; i < nact; i++)
            argv[k++] = (char *)act[i];
        argv[k] = NULL;
        execv(PEER, argv);
        _exit(2);
    }
    ipkt_journal_id("pid", pid);
    return pid;
}

/*
 * Connects this process to a peer running `act` over transport `kind`, in direction `dir`, with
 * the extra options `query` ("" or "key=value&...").
 */
static conn open_pair(const char *kind, enum dir dir, const char *query, const char *const *act,
                      int nact)
{
    conn k = {NULL, -1, 0};
    char url[PATH_MAX + 512], path[256];
    const char *q = query[0] ? "?" : "";
    if (strcmp(kind, "exec") == 0) {
        /* "exec" so that the peer is our child itself, not a shell waiting for it. */
        int n = snprintf(url, sizeof url, "exec:exec %s stdio", PEER);
        for (int i = 0; i < nact; i++)
            n += snprintf(url + n, sizeof url - (size_t)n, " %s", act[i]);
        snprintf(url + n, sizeof url - (size_t)n, "%s%s", q, query);
        ipkt_ok(ipk_dial(&k.c, url, NULL));
        ipkt_ok(ipk_peer(k.c, &k.pid, NULL, NULL));
        k.exec = 1;
        return k;
    }
    ipk_chan *l = NULL;
    if (strcmp(kind, "unix") == 0) {
        ipkt_path(path, sizeof path, "sock");
        ipkt_journal("path", path);
        snprintf(url, sizeof url, "unix:%s%s%s", path, q, query);
        ipkt_ok(ipk_listen(&l, url, NULL));
        const char *ca[] = {"unix", path};
        k.pid = start_peer(ca, 2, act, nact);
    } else if (strcmp(kind, "tcp") == 0) {
        snprintf(url, sizeof url, "tcp://127.0.0.1:0%s%s", q, query);
        ipkt_ok(ipk_listen(&l, url, NULL));
        const char *colon = strrchr(ipk_addr(l), ':');
        assert_non_null(colon);
        char port[16];
        snprintf(port, sizeof port, "%s", colon + 1);
        const char *ca[] = {"tcp", "127.0.0.1", port};
        k.pid = start_peer(ca, 3, act, nact);
    } else { /* fifo */
        ipkt_path(path, sizeof path, "fifo");
        ipkt_journal("path", path);
        snprintf(url, sizeof url, "fifo:%s%s%s", path, q, query);
        if (dir == RX) {
            ipkt_ok(ipk_listen(&k.c, url, NULL));
            const char *ca[] = {"fifo-w", path};
            k.pid = start_peer(ca, 2, act, nact);
        } else {
            assert_int_equal(mkfifo(path, 0600), 0);
            const char *ca[] = {"fifo-r", path};
            k.pid = start_peer(ca, 2, act, nact);
            ipkt_ok(ipk_dial(&k.c, url, NULL));
        }
        return k;
    }
    ipkt_ok(ipk_accept(l, &k.c, 20000));
    ipkt_ok(ipk_close(l));
    return k;
}

/* Closes our end and returns the peer's exit code. */
static int finish(conn *k)
{
    int st = ipk_close(k->c);
    k->c = NULL;
    if (k->exec) {
        assert_true(st >= 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    assert_int_equal(st, 0);
    return ipkt_wait(k->pid);
}

static char *xmalloc(size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

#define ACT(...)                                                                                   \
    (const char *const[]){__VA_ARGS__},                                                            \
        (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

static const size_t sizes[] = {0, 1, PIPE_BUF - 1, PIPE_BUF, PIPE_BUF + 1, MIB};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* The query that makes kind's sends written through: flush=0 on the two coalescing schemes
 * (unix:, tcp:), else other (fifo: and exec: always write through). */
static const char *through(const char *kind, const char *other)
{
    return strcmp(kind, "unix") == 0 || strcmp(kind, "tcp") == 0 ? "flush=0" : other;
}

/* Builds the batch of messages first.. (want of them, none past total): message j has j % 2000
 * bytes of ipkt_fill's pattern j, as the peer's "recv N -1" expects. Returns how many. */
static int build_batch(char (*msgs)[2000], ipk_iov *iov, int want, long first, long total)
{
    int m = 0;
    for (; m < want && first + m < total; m++) {
        size_t n = (size_t)((first + m) % 2000);
        ipkt_fill(msgs[m], n, (uint32_t)(first + m));
        iov[m] = (ipk_iov){msgs[m], n};
    }
    return m;
}

/* The number of frames a "hold" peer received, from the file it wrote. */
static long held(const char *out)
{
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    long got = -1;
    assert_int_equal(fscanf(f, "%ld", &got), 1);
    fclose(f);
    return got;
}

/* Messages of 0, 1, PIPE_BUF-1, PIPE_BUF, PIPE_BUF+1 and 1 MiB bytes, each way. */
static void t_sizes(void **state)
{
    const char *kind = *state;
    char list[128];
    snprintf(list, sizeof list, "%zu,%zu,%zu,%zu,%zu,%zu", sizes[0], sizes[1], sizes[2], sizes[3],
             sizes[4], sizes[5]);
    char *buf = xmalloc(MIB + 1), *want = xmalloc(MIB);
    /* peer -> us */
    conn k = open_pair(kind, RX, "", ACT("sizes", list));
    for (size_t i = 0; i < NSIZES; i++) {
        ipkt_expect(ipk_recv(k.c, buf, MIB + 1, 10000), (long)sizes[i]);
        assert_true(ipkt_check(buf, sizes[i], (uint32_t)i));
    }
    ipkt_expect(ipk_recv(k.c, buf, MIB + 1, 10000), IPK_EOF);
    assert_int_equal(finish(&k), 0);
    /* us -> peer, and back where the transport is two-way */
    char out[256];
    ipkt_path(out, sizeof out, "count");
    if (duplex(kind)) {
        k = open_pair(kind, TX, "", ACT("echo"));
        for (size_t i = 0; i < NSIZES; i++) {
            ipkt_fill(want, sizes[i], (uint32_t)i);
            ipkt_ok(ipk_send(k.c, want, sizes[i], 10000));
            ipkt_expect(ipk_recv(k.c, buf, MIB + 1, 10000), (long)sizes[i]);
            assert_memory_equal(buf, want, sizes[i]);
        }
    } else {
        k = open_pair(kind, TX, "", ACT("hold", "0", out));
        for (size_t i = 0; i < NSIZES; i++) {
            ipkt_fill(want, sizes[i], (uint32_t)i);
            ipkt_ok(ipk_send(k.c, want, sizes[i], 10000));
        }
    }
    assert_int_equal(finish(&k), 0);
    free(buf);
    free(want);
}

/* 100,000 messages of varying size, in order, nothing lost, each way (batched on send). */
static void t_many(void **state)
{
    const char *kind = *state;
    enum { N = 100000 };
    char *buf = xmalloc(4096);
    conn k = open_pair(kind, RX, "", ACT("send", "100000", "-1"));
    for (long i = 0; i < N; i++) {
        long n = ipk_recv(k.c, buf, 4096, 10000);
        if (n != i % 2000 || !ipkt_check(buf, (size_t)n, (uint32_t)i)) {
            print_error("message %ld: got %ld bytes (%s)\n", i, n, ipk_errmsg());
            fail();
        }
    }
    ipkt_expect(ipk_recv(k.c, buf, 4096, 10000), IPK_EOF);
    assert_int_equal(finish(&k), 0);

    k = open_pair(kind, TX, "", ACT("recv", "100000", "-1"));
    enum { B = 64 };
    static char msgs[B][2000];
    ipk_iov iov[B];
    for (long i = 0; i < N;) {
        int m = build_batch(msgs, iov, B, i, N);
        long sent = ipk_sendv(k.c, iov, (size_t)m, 10000);
        assert_true(sent >= 1 && sent <= m);
        i += sent; /* what did not go out is built again next round */
    }
    assert_int_equal(finish(&k), 0);
    free(buf);
}

/* Blocking batches (no deadline), written through: runs of small frames are framed into one
 * buffer the channel keeps between calls, larger ones go as they are. Batches of 1 to 700
 * messages, sizes 0-1999 (small and large mixed inside one batch), single sends in between;
 * the peer checks every frame's size, content and order. The first batch (2 messages of 0 and
 * 1 bytes) leaves a kept buffer far too small for the second (256 frames of 2-257 bytes), which
 * is framed again into a larger one part-way. */
static void t_sendv_blocking(void **state)
{
    const char *kind = *state;
    enum { N = 30000, B = 700 };
    conn k = open_pair(kind, TX, through(kind, ""), ACT("recv", "30000", "-1"));
    static char msgs[B][2000];
    static const int batch[] = {2, 256, 1, 700, 2, 255, 300, 3};
    ipk_iov iov[B];
    for (long i = 0, round = 0; i < N; round++) {
        int m = build_batch(msgs, iov, batch[round % (sizeof batch / sizeof batch[0])], i, N);
        if (m == 1) {
            ipkt_ok(ipk_send(k.c, iov[0].base, iov[0].len, -1));
            i++;
            continue;
        }
        long sent = ipk_sendv(k.c, iov, (size_t)m, -1);
        assert_true(sent >= 1 && sent <= m);
        i += sent; /* what did not go out is built again next round */
    }
    assert_int_equal(finish(&k), 0);
}

/* A batch longer than one internal chunk (256 messages) whose chunk ends in a large message:
 * when the write of that chunk stops inside its last message (the buffer full) and the rest is
 * kept in the channel, the next chunk must not be written ahead of that rest. The peer drains
 * concurrently, so room often comes back between the two: before the fix the next chunk's
 * bytes went in first and the peer saw a corrupt frame. Blocking batches (the first chunk blocks,
 * later ones are written as the stream takes them) and timeout-0 ones; the peer checks every
 * frame's pattern by its index. */
static void t_sendv_chunk_rest(void **state)
{
    const char *kind = *state;
    char out[256];
    ipkt_path(out, sizeof out, "count");
    /* Buffers smaller than a large message: its write stops inside it. */
    conn k = open_pair(kind, TX, through(kind, "pipesz=65536"), ACT("hold", "0", out));
    enum { B = 600, BIG = 300000, ROUNDS = 60 };
    static char small[B][16];
    char *big = xmalloc(2 * BIG);
    ipk_iov iov[B];
    long i = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int timeout = round % 2 ? -1 : 0;
        for (long left = B; left > 0;) {
            /* Message p of the batch: p = 255 and 511 (the last of a chunk) are large. */
            int m = (int)left;
            for (int p = 0; p < m; p++) {
                size_t n = (p == 255 || p == 511) ? BIG : (size_t)(p % 16);
                char *b = n == BIG ? big + (p == 511 ? BIG : 0) : small[p];
                ipkt_fill(b, n, (uint32_t)(i + p));
                iov[p] = (ipk_iov){b, n};
            }
            long sent = ipk_sendv(k.c, iov, (size_t)m, timeout);
            if (sent == -EAGAIN || sent == IPK_ETIMEDOUT) {
                ipkt_ok(ipk_flush(k.c, -1));
                continue;
            }
            assert_true(sent >= 1 && sent <= m);
            i += sent;
            left -= sent;
        }
    }
    assert_int_equal(finish(&k), 0);
    assert_int_equal(held(out), i);
    free(big);
}

/* ipk_sendv's checks, made before anything is written: no array or no messages, a NULL message
 * of some bytes (a NULL empty one is an empty message), one above max=; each names the message,
 * and the batch then goes out whole. */
static void t_sendv_bad_args(void **state)
{
    const char *kind = *state;
    char out[256];
    ipkt_path(out, sizeof out, "count");
    conn k = open_pair(kind, TX, "max=1k", ACT("hold", "0", out));
    static char a[10], b[1025];
    ipkt_fill(a, sizeof a, 0); /* the peer checks each frame's pattern by its index */
    ipkt_fill(b, 1024, 2);
    ipk_iov iov[3] = {{a, sizeof a}, {NULL, 5}, {b, 1024}};
    ipkt_expect(ipk_sendv(k.c, NULL, 3, -1), -EINVAL);
    ipkt_errmsg_has("no messages");
    ipkt_expect(ipk_sendv(k.c, iov, 0, -1), -EINVAL);
    ipkt_expect(ipk_sendv(k.c, iov, 3, -1), -EINVAL);
    ipkt_errmsg_has("message 1 is NULL");
    iov[1].len = 0;
    iov[2].len = 1025;
    ipkt_expect(ipk_sendv(k.c, iov, 3, -1), IPK_EMSGSIZE);
    ipkt_errmsg_has("message 2 of 1025 bytes exceeds max=1024");
    iov[2].len = 1024;
    ipkt_expect(ipk_sendv(k.c, iov, 3, -1), 3);
    assert_int_equal(finish(&k), 0);
    assert_int_equal(held(out), 3); /* nothing of the refused batches reached the peer */
}

/* The reader dies while a blocking batch waits for room: the writer is not stuck and not killed
 * (no SIGPIPE), every batch before reports the messages it sent (1 to 256), and the batch under
 * way fails with the write's error (-EPIPE; -ECONNRESET on a socket). A batch cut inside a frame
 * leaves the stream unusable: later sends are IPK_ECLOSED; one cut between frames lets later
 * sends meet the same error. */
static void t_sendv_dead_peer(void **state)
{
    const char *kind = *state;
    char out[256];
    ipkt_path(out, sizeof out, "count");
    conn k = open_pair(kind, TX, through(kind, ""), ACT("hold", "600000", out));
    enum { B = 256 };
    static char msgs[B][64];
    ipk_iov iov[B];
    for (int m = 0; m < B; m++)
        iov[m] = (ipk_iov){msgs[m], sizeof msgs[m]};
    ipkt_expect(ipk_sendv(k.c, iov, B, -1), B); /* 17 KiB: the empty pipe or socket takes it */
    pid_t killer = fork();
    assert_true(killer >= 0);
    if (killer == 0) { /* the reader never reads: the writer is blocked when it dies */
        usleep(100000);
        kill(k.pid, SIGKILL);
        _exit(0);
    }
    long r;
    while ((r = ipk_sendv(k.c, iov, B, -1)) > 0)
        assert_true(r <= B);
    assert_true(r == -EPIPE ||
                (r == -ECONNRESET && strcmp(kind, "fifo") != 0 && strcmp(kind, "exec") != 0));
    ipkt_errmsg_has("write");
    long again = ipk_sendv(k.c, iov, B, -1);
    assert_true(again == IPK_ECLOSED || again == -EPIPE || again == -ECONNRESET);
    assert_int_equal(ipkt_wait(killer), 0);
    int st = ipk_close(k.c);
    if (k.exec)
        assert_true(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    else
        assert_int_equal(ipkt_wait(k.pid), 128 + SIGKILL);
}

/* EOF at a message boundary is IPK_EOF, and stays so. */
static void t_eof(void **state)
{
    char buf[64];
    conn k = open_pair(*state, RX, "", ACT("send", "3", "10"));
    for (int i = 0; i < 3; i++)
        ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 10000), 10);
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 10000), IPK_EOF);
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 0), IPK_EOF);
    assert_int_equal(finish(&k), 0);
}

/* The peer dies in the middle of a frame: a protocol error, never a short message. */
static void t_killed_mid_frame(void **state)
{
    char buf[256];
    conn k = open_pair(*state, RX, "", ACT("partial"));
    /* The header and 10 of 100 bytes arrive; the deadline passes inside the payload. */
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 300), IPK_ETIMEDOUT);
    assert_int_equal(kill(k.pid, SIGKILL), 0);
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 10000), IPK_EPROTO);
    ipkt_errmsg_has("inside a frame (10 of 100 bytes)");
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 0), IPK_ECLOSED);
    assert_int_equal(finish(&k), 128 + SIGKILL);
}

/* A declared length over the maximum is refused before any allocation; the channel is closed. */
static void t_oversize(void **state)
{
    char buf[64];
    conn k = open_pair(*state, RX, "", ACT("oversize", "0xfffffff0"));
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 10000), IPK_EPROTO);
    ipkt_errmsg_has("declared a 4294967280-byte frame; max=16777216");
    ipkt_expect(ipk_send(k.c, "x", 1, 0), IPK_ECLOSED);
    kill(k.pid, SIGKILL);
    finish(&k);

    k = open_pair(*state, RX, "max=1k", ACT("oversize", "1025"));
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 10000), IPK_EPROTO);
    ipkt_errmsg_has("declared a 1025-byte frame; max=1024");
    kill(k.pid, SIGKILL);
    finish(&k);
}

/* Frames that arrive a byte at a time (header and payload in pieces), waiting forever: each is
 * whole and intact, then the end of the stream. */
static void t_trickle(void **state)
{
    char buf[512], want[300];
    conn k = open_pair(*state, RX, "", ACT("trickle"));
    const size_t lens[] = {3, 0, 300};
    for (unsigned f = 0; f < 3; f++) {
        ipkt_expect(ipk_recv(k.c, buf, sizeof buf, -1), (long)lens[f]);
        for (size_t i = 0; i < lens[f]; i++) /* byte i of frame f: f * 31 + i (peer_stream) */
            want[i] = (char)(f * 31 + i);
        assert_memory_equal(buf, want, lens[f]);
    }
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, -1), IPK_EOF);
    assert_int_equal(finish(&k), 0);
}

/* Receive timeouts: 0 never blocks, a positive one expires, -1 waits for the message. */
static void t_timeouts(void **state)
{
    char buf[64];
    conn k = open_pair(*state, RX, "", ACT("late", "400"));
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 0), -EAGAIN);
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 50), IPK_ETIMEDOUT);
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, -1), 5);
    assert_memory_equal(buf, "late!", 5);
    assert_int_equal(finish(&k), 0);
}

/* Send timeouts against a peer that does not read: nothing accepted is lost or cut. */
static void t_send_full(void **state)
{
    const char *kind = *state;
    char out[256];
    ipkt_path(out, sizeof out, "count");
    conn k = open_pair(kind, TX, "", ACT("hold", "700", out));
    static char msg[4096];
    long sent = 0;
    int r;
    for (;;) {
        ipkt_fill(msg, sizeof msg, (uint32_t)sent);
        if ((r = ipk_send(k.c, msg, sizeof msg, 0)) != 0)
            break;
        sent++;
    }
    ipkt_expect(r, -EAGAIN);
    ipkt_fill(msg, sizeof msg, (uint32_t)sent);
    r = ipk_send(k.c, msg, sizeof msg, 50);
    /* The peer starts reading at 700 ms, so a 50 ms send can only time out - unless some bytes
     * of the message went out, in which case it counts as sent and close() writes the rest. */
    if (r == 0)
        sent++;
    else
        ipkt_expect(r, IPK_ETIMEDOUT);
    assert_true(sent > 0);
    assert_int_equal(finish(&k), 0);
    assert_int_equal(held(out), sent);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* A signal every 50 us (2 ms under valgrind) during transfers both ways: nothing lost, nothing
 * duplicated. */
static void t_signal_storm(void **state)
{
    const char *kind = *state;
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: calls see EINTR */
    sigaction(SIGALRM, &sa, NULL);
    long us = ipkt_slow() ? 2000 : 50;
    struct itimerval it = {{0, us}, {0, us}};
    enum { N = 20000 };
    char *buf = xmalloc(4096);
    conn k = open_pair(kind, RX, "", ACT("send", "20000", "-1"));
    setitimer(ITIMER_REAL, &it, NULL);
    for (long i = 0; i < N; i++) {
        long n = ipk_recv(k.c, buf, 4096, -1);
        if (n != i % 2000 || !ipkt_check(buf, (size_t)n, (uint32_t)i)) {
            print_error("message %ld: got %ld (%s)\n", i, n, ipk_errmsg());
            fail();
        }
    }
    ipkt_expect(ipk_recv(k.c, buf, 4096, -1), IPK_EOF);
    assert_int_equal(finish(&k), 0);
    k = open_pair(kind, TX, "", ACT("recv", "20000", "-1"));
    for (long i = 0; i < N; i++) {
        size_t n = (size_t)(i % 2000);
        ipkt_fill(buf, n, (uint32_t)i);
        ipkt_ok(ipk_send(k.c, buf, n, -1));
    }
    assert_int_equal(finish(&k), 0);
    /* Blocking batches written through (flush=0 where sends coalesce): a signal interrupts
     * writes part-way, and the rest of a framed run goes out after it. */
    k = open_pair(kind, TX, through(kind, ""), ACT("recv", "20000", "-1"));
    enum { B = 256 };
    static char msgs[B][2000];
    ipk_iov iov[B];
    for (long i = 0; i < N;) {
        int m = build_batch(msgs, iov, B, i, N);
        long sent = ipk_sendv(k.c, iov, (size_t)m, -1);
        if (sent < 1 || sent > m) {
            print_error("batch at %ld: %ld (%s)\n", i, sent, ipk_errmsg());
            fail();
        }
        i += sent;
    }
    assert_int_equal(finish(&k), 0);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    assert_true(alarms > 100); /* the storm really happened */
    free(buf);
}

/* A reader that went away never kills the writer with SIGPIPE (disposition left at default). */
static void t_no_sigpipe(void **state)
{
    const char *kind = *state;
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    assert_true(sa.sa_handler == SIG_DFL);
    conn k = open_pair(kind, TX, "", ACT("close"));
    if (!k.exec)
        assert_int_equal(ipkt_wait(k.pid), 0);
    static char msg[65536];
    int r = 0;
    for (int i = 0; i < 1000 && r == 0; i++)
        r = ipk_send(k.c, msg, sizeof msg, 10000);
    assert_true(r == -EPIPE || r == -ECONNRESET);
    sigset_t pend;
    sigpending(&pend);
    assert_false(sigismember(&pend, SIGPIPE)); /* and none left pending for later */
    int st = ipk_close(k.c);
    if (k.exec)
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A buffer too small: IPK_EMSGSIZE with the size, and the message is still there. */
static void t_small_buffer(void **state)
{
    char *buf = xmalloc(70000);
    conn k = open_pair(*state, RX, "", ACT("sizes", "5000,70000,3"));
    ipkt_expect(ipk_recv(k.c, buf, 100, 10000), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(k.c), 5000);
    ipkt_errmsg_has("5000 bytes does not fit a 100-byte buffer");
    ipkt_expect(ipk_recv(k.c, buf, 5000, 10000), 5000);
    assert_true(ipkt_check(buf, 5000, 0));
    ipkt_expect(ipk_recv(k.c, buf, 69999, 10000), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(k.c), 70000);
    ipkt_expect(ipk_recv(k.c, buf, 70000, 10000), 70000);
    assert_true(ipkt_check(buf, 70000, 1));
    ipkt_expect(ipk_recv(k.c, buf, 3, 10000), 3);
    assert_int_equal(finish(&k), 0);
    free(buf);
}

/* Sending more than max is refused before anything is written. */
static void t_send_over_max(void **state)
{
    char out[256];
    ipkt_path(out, sizeof out, "count");
    conn k = open_pair(*state, TX, "max=100", ACT("hold", "0", out));
    static char msg[101];
    ipkt_fill(msg, sizeof msg, 0);
    ipkt_expect(ipk_send(k.c, msg, 101, 1000), IPK_EMSGSIZE);
    ipkt_errmsg_has("101 bytes exceeds max=100");
    ipkt_ok(ipk_send(k.c, msg, 100, 1000));
    assert_int_equal(finish(&k), 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    long got = -1;
    assert_int_equal(fscanf(f, "%ld", &got), 1);
    fclose(f);
    assert_int_equal(got, 1); /* only the message that fitted reached the peer */
}

static long max_pipe(void)
{
    long v = 0;
    FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &v), 1);
    fclose(f);
    return v;
}

/* pipesz= on the pipe transports: the FIFO (and both exec: pipes) hold a 64 KiB frame whole by
 * default; 0 keeps the kernel's size; a bad value or one past pipe-max-size for an unprivileged
 * process is refused with the limit named. */
static int pipesz_as_nobody(void *arg)
{
    (void)arg;
    char url[700]; /* in /tmp: nobody may not write the test's directory; listen's failure
                    * removes the FIFO it made */
    snprintf(url, sizeof url, "fifo:/tmp/ipkt-pipesz-%d?pipesz=%ld", (int)getpid(), max_pipe() * 2);
    if (ipkt_become_nobody() != 0)
        return 3;
    ipk_chan *l;
    if (ipk_listen(&l, url, NULL) != IPK_EOPTION)
        return 1;
    return strstr(ipk_errmsg(), "pipe-max-size") ? 0 : 2;
}

static void t_pipesz(void **state)
{
    (void)state;
    char p[512], url[700];
    long want = max_pipe() < MIB ? max_pipe() : MIB;
    ipkt_path(p, sizeof p, "fifo");
    ipkt_journal("path", p);
    ipk_chan *l, *d;
    snprintf(url, sizeof url, "fifo:%s", p);
    ipkt_ok(ipk_listen(&l, url, NULL));
    assert_true(fcntl(ipk_fd(l), F_GETPIPE_SZ) >= want);
    ipkt_ok(ipk_close(l));
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int dflt = fcntl(fds[0], F_GETPIPE_SZ);
    close(fds[0]), close(fds[1]);
    snprintf(url, sizeof url, "fifo:%s?pipesz=0", p);
    ipkt_ok(ipk_listen(&l, url, NULL));
    assert_int_equal(fcntl(ipk_fd(l), F_GETPIPE_SZ), dflt);
    /* The writer's pipesz= grows the FIFO both ends share. */
    snprintf(url, sizeof url, "fifo:%s?pipesz=256k", p);
    ipkt_ok(ipk_dial(&d, url, NULL));
    assert_int_equal(fcntl(ipk_fd(l), F_GETPIPE_SZ), 256 << 10);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
    snprintf(url, sizeof url, "fifo:%s?pipesz=lots", p);
    ipkt_expect(ipk_listen(&l, url, NULL), IPK_EOPTION);
    ipkt_errmsg_has("pipesz=lots");
    assert_int_equal(ipkt_wait(ipkt_spawn(pipesz_as_nobody, NULL)), 0);
    /* exec: both pipes; the child's output pipe is the one ipk_fd() polls. */
    ipkt_ok(ipk_dial(&d, "exec:cat?pipesz=512k", NULL));
    assert_int_equal(fcntl(ipk_fd(d), F_GETPIPE_SZ), 512 << 10);
    static char big[65536];
    ipkt_ok(ipk_send(d, big, sizeof big, 5000));
    ipkt_expect(ipk_recv(d, big, sizeof big, 5000), (long)sizeof big);
    ipkt_ok(ipk_close(d));
}

/* ---- zero-copy receive: ipk_peek / ipk_release ---- */

/* Waits until n bytes wait in c's descriptor (sent, not yet read by us). */
static void await_bytes(ipk_chan *c, int n)
{
    int have = 0;
    while (ioctl(ipk_fd(c), FIONREAD, &have) == 0 && have < n)
        ipkt_msleep(1);
    assert_true(have >= n);
}

/* Frame i of the mixed stream: 0 B to 1 MiB + 4000 B, consecutive sizes far apart. */
static size_t mix_size(int i)
{
    static const size_t s[] = {0,     1,     100,    4095,   16384,   16385,
                               65535, 65536, 262144, 262145, 1 << 20, (1 << 20) + 4000};
    return s[(i * 5) % 12];
}

/* Peeks at the next message, which must be frame i of `len` bytes (pattern i). */
static const char *peek_frame(ipk_chan *c, size_t len, uint32_t i, int timeout_ms)
{
    const void *p = NULL;
    ipkt_expect(ipk_peek(c, &p, timeout_ms), (long)len);
    assert_non_null(p);
    assert_true(ipkt_check(p, len, i));
    return p;
}

/* 48 frames of 0 B to 1 MiB + 4000 B taken in turn by ipk_recv, by peek and release, by two
 * peeks (the same message, the same place), and by a peek held across a refused recv and a
 * refused second release: every byte is checked, nothing read ahead is lost. */
static void t_peek_mixed(void **state)
{
    enum { N = 48 };
    char list[N * 8] = "";
    for (int i = 0, n = 0; i < N; i++)
        n += snprintf(list + n, sizeof list - (size_t)n, "%s%zu", i ? "," : "", mix_size(i));
    size_t cap = (1 << 20) + 4096;
    char *buf = xmalloc(cap);
    conn k = open_pair(*state, RX, "", ACT("sizes", list));
    ipkt_expect(ipk_release(k.c), -EINVAL);
    ipkt_errmsg_has("release without a peeked message");
    for (int i = 0; i < N; i++) {
        size_t len = mix_size(i);
        const void *again = NULL;
        const char *p;
        switch (i % 4) {
        case 0:
            ipkt_expect(ipk_recv(k.c, buf, cap, 10000), (long)len);
            assert_true(ipkt_check(buf, len, (uint32_t)i));
            break;
        case 1:
            peek_frame(k.c, len, (uint32_t)i, 10000);
            ipkt_ok(ipk_release(k.c));
            break;
        case 2:
            p = peek_frame(k.c, len, (uint32_t)i, 10000);
            ipkt_expect(ipk_peek(k.c, &again, 0), (long)len);
            assert_ptr_equal(again, p);
            ipkt_ok(ipk_release(k.c));
            break;
        default:
            p = peek_frame(k.c, len, (uint32_t)i, -1);
            ipkt_expect(ipk_recv(k.c, buf, cap, 0), -EINVAL);
            ipkt_errmsg_has("recv while a peeked message is not released");
            assert_true(ipkt_check(p, len, (uint32_t)i)); /* still in place */
            ipkt_ok(ipk_release(k.c));
            ipkt_expect(ipk_release(k.c), -EINVAL);
            break;
        }
    }
    const void *p;
    ipkt_expect(ipk_peek(k.c, &p, 10000), IPK_EOF);
    ipkt_expect(ipk_recv(k.c, buf, cap, 0), IPK_EOF);
    assert_int_equal(finish(&k), 0);
    free(buf);
}

/* Frames that arrive in pieces, taken with timeout 0 (a whole frame or -EAGAIN, what came so
 * far kept) and a receive between peeks; then a frame cut by the peer's death: the deadline
 * passes with half of it buffered, and the end of the stream is a protocol error. */
static void t_peek_partial(void **state)
{
    const void *p;
    char buf[512];
    conn k = open_pair(*state, RX, "", ACT("trickle"));
    const size_t lens[] = {3, 0, 300};
    for (unsigned f = 0; f < 3; f++) {
        long n;
        struct pollfd pf = {ipk_fd(k.c), POLLIN, 0};
        while ((n = f == 1 ? ipk_recv(k.c, buf, sizeof buf, 0) : ipk_peek(k.c, &p, 0)) == -EAGAIN)
            assert_true(poll(&pf, 1, -1) == 1);
        ipkt_expect(n, (long)lens[f]);
        const char *got = f == 1 ? buf : p;
        for (size_t i = 0; i < lens[f]; i++) /* byte i of frame f: f * 31 + i (peer_stream) */
            assert_int_equal((unsigned char)got[i], (unsigned char)(f * 31 + i));
        if (f != 1)
            ipkt_ok(ipk_release(k.c));
    }
    ipkt_expect(ipk_peek(k.c, &p, -1), IPK_EOF);
    assert_int_equal(finish(&k), 0);

    k = open_pair(*state, RX, "", ACT("partial"));
    await_bytes(k.c, 4 + 10); /* the header and 10 of 100 bytes */
    ipkt_expect(ipk_peek(k.c, &p, 0), -EAGAIN);
    assert_int_equal(ipk_pending(k.c), 0);
    ipkt_expect(ipk_peek(k.c, &p, 50), IPK_ETIMEDOUT);
    assert_int_equal(kill(k.pid, SIGKILL), 0);
    ipkt_expect(ipk_peek(k.c, &p, 10000), IPK_EPROTO);
    ipkt_errmsg_has("inside a frame (10 of 100 bytes)");
    ipkt_expect(ipk_peek(k.c, &p, 0), IPK_ECLOSED);
    ipkt_expect(ipk_release(k.c), IPK_ECLOSED);
    assert_int_equal(finish(&k), 128 + SIGKILL);
}

/* A declared length over the maximum: refused before anything is allocated, as by recv. */
static void t_peek_oversize(void **state)
{
    const void *p;
    conn k = open_pair(*state, RX, "", ACT("oversize", "0xfffffff0"));
    ipkt_expect(ipk_peek(k.c, &p, 10000), IPK_EPROTO);
    ipkt_errmsg_has("declared a 4294967280-byte frame; max=16777216");
    ipkt_expect(ipk_peek(k.c, &p, 0), IPK_ECLOSED);
    kill(k.pid, SIGKILL);
    finish(&k);

    k = open_pair(*state, RX, "max=300k", ACT("oversize", "307201"));
    ipkt_expect(ipk_peek(k.c, &p, 10000), IPK_EPROTO);
    ipkt_errmsg_has("declared a 307201-byte frame; max=307200");
    kill(k.pid, SIGKILL);
    finish(&k);
}

/* A poller reports the channel while whole frames wait in the channel's buffer (the held one
 * too: a peek would return at once), and stops when they are all taken. */
static void t_peek_poller(void **state)
{
    enum { N = 20, SIZE = 10 };
    conn k = open_pair(*state, RX, "", ACT("sendhold", "20", "10"));
    ipk_poller *pl;
    ipk_pollev ev[2];
    ipkt_ok(ipk_poller_new(&pl));
    ipkt_ok(ipk_poller_add(pl, k.c, IPK_POLLIN, NULL));
    await_bytes(k.c, N * (4 + SIZE));               /* so that one read takes them all */
    ipkt_expect(ipk_poller_wait(pl, ev, 2, -1), 1); /* the descriptor */
    assert_ptr_equal(ev[0].chan, k.c);
    assert_true(ev[0].events & IPK_POLLIN);
    peek_frame(k.c, SIZE, 0, -1);
    int left = -1; /* the peek read them all: only the channel's buffer holds frames now */
    assert_int_equal(ioctl(ipk_fd(k.c), FIONREAD, &left), 0);
    assert_int_equal(left, 0);
    ipkt_expect(ipk_poller_wait(pl, ev, 2, 0), 1); /* the held message */
    assert_ptr_equal(ev[0].chan, k.c);
    for (int i = 0; i < N; i++) {
        if (i > 0)
            peek_frame(k.c, SIZE, (uint32_t)i, 0); /* buffered: no wait */
        ipkt_ok(ipk_release(k.c));
        ipkt_expect(ipk_poller_wait(pl, ev, 2, 0), i < N - 1 ? 1 : -EAGAIN);
    }
    const void *p;
    ipkt_expect(ipk_peek(k.c, &p, 0), -EAGAIN);
    ipk_poller_free(pl);
    kill(k.pid, SIGKILL);
    finish(&k);
}

/* framing=line: lines of 0 to 293,003 bytes (longer than the 256 KiB read), peeked and
 * received in turn; a last line without its newline is a message at the end of the stream. */
static void t_peek_line(void **state)
{
    enum { N = 40 };
    size_t cap = 300001;
    char *buf = xmalloc(cap);
    conn k = open_pair(*state, RX, "framing=line", ACT("lines", "40"));
    for (long i = 0; i < N; i++) {
        size_t len = (size_t)((i * 7919) % 300000);
        const void *p;
        const char *got = buf;
        if (i % 2) {
            ipkt_expect(ipk_recv(k.c, buf, cap, 10000), (long)len);
        } else {
            ipkt_expect(ipk_peek(k.c, &p, 10000), (long)len);
            got = p;
        }
        for (size_t j = 0; j < len; j++)
            if (got[j] != (char)('a' + (size_t)(i + (long)j) % 26))
                fail_msg("line %ld, byte %zu: %d", i, j, got[j]);
        if (i % 2 == 0)
            ipkt_ok(ipk_release(k.c));
    }
    const void *p;
    ipkt_expect(ipk_peek(k.c, &p, 10000), 4);
    assert_memory_equal(p, "tail", 4);
    ipkt_ok(ipk_release(k.c));
    ipkt_expect(ipk_peek(k.c, &p, 10000), IPK_EOF);
    assert_int_equal(finish(&k), 0);
    free(buf);
}

/* A message too large for recv's buffer can be peeked in place; framing=raw peeks at the bytes
 * that have arrived; a closed channel with a held message frees it; no peek where nothing is
 * received. */
static void t_peek_misc(void **state)
{
    const char *kind = *state;
    const void *p;
    char buf[16];
    conn k = open_pair(kind, RX, "", ACT("sizes", "100,5,7"));
    ipkt_expect(ipk_recv(k.c, buf, 10, 10000), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(k.c), 100);
    peek_frame(k.c, 100, 0, 10000);
    ipkt_ok(ipk_release(k.c));
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 10000), 5);
    assert_true(ipkt_check(buf, 5, 1));
    peek_frame(k.c, 7, 2, 10000); /* held when the channel closes */
    assert_int_equal(finish(&k), 0);

    /* framing=raw: the peer's frames as bytes (header, payload, header, payload). */
    unsigned char want[2 * 4 + 1000 + 2000], got[sizeof want];
    size_t n = 0, have = 0;
    for (uint32_t f = 0; f < 2; f++) {
        uint32_t len = 1000 * (f + 1), be = htonl(len);
        memcpy(want + n, &be, 4);
        ipkt_fill(want + n + 4, len, f);
        n += 4 + len;
    }
    k = open_pair(kind, RX, "framing=raw", ACT("sizes", "1000,2000"));
    long r;
    while ((r = ipk_peek(k.c, &p, 10000)) > 0) {
        assert_true(have + (size_t)r <= sizeof got);
        memcpy(got + have, p, (size_t)r);
        have += (size_t)r;
        ipkt_ok(ipk_release(k.c));
    }
    ipkt_expect(r, IPK_EOF);
    assert_int_equal(have, sizeof want);
    assert_memory_equal(got, want, sizeof want);
    assert_int_equal(finish(&k), 0);

    if (!duplex(kind)) { /* the writing end of a FIFO */
        char out[256];
        ipkt_path(out, sizeof out, "count");
        k = open_pair(kind, TX, "", ACT("hold", "0", out));
        ipkt_expect(ipk_peek(k.c, &p, 0), IPK_ENOTSUP);
        ipkt_errmsg_has("only sends");
        assert_int_equal(finish(&k), 0);
    }
}

/* exec: a send that waits for the child's stdin takes the child's output in meanwhile (see
 * exec.c); with a message held, only into the room behind it, so the held message stays put. */
static void t_peek_exec_send(void **state)
{
    (void)state;
    enum { BIG = 300 << 10 };
    char *big = xmalloc(BIG);
    ipkt_fill(big, BIG, 7);
    conn k = open_pair("exec", TX, "", ACT("echo"));
    char a[1000];
    ipkt_fill(a, sizeof a, 1);
    ipkt_ok(ipk_send(k.c, a, sizeof a, 10000));
    const char *p = peek_frame(k.c, sizeof a, 1, 10000);
    /* More than the two pipes hold: the child blocks writing its echo, then stops reading. */
    int sent = 0;
    while (sent < 12 && ipk_send(k.c, big, BIG, 1000) == 0)
        sent++;
    assert_true(sent >= 1);
    assert_true(ipkt_check(p, sizeof a, 1));
    const void *again;
    ipkt_expect(ipk_peek(k.c, &again, 0), (long)sizeof a);
    assert_ptr_equal(again, p);
    ipkt_ok(ipk_release(k.c));
    ipkt_expect(ipk_recv(k.c, big, BIG, 10000), BIG); /* the first echo, whole */
    assert_true(ipkt_check(big, BIG, 7));
    kill(k.pid, SIGKILL);
    finish(&k);
    free(big);
}

/* framing=raw needs a buffer of at least one byte: -EINVAL at once, before any byte has come
 * (a FIFO reader used to wait for the first byte first: -EAGAIN with timeout 0, and with no
 * timeout until the writer wrote; found by fuzz/fuzz_stream.c). */
static void t_raw_zero_buffer(void **state)
{
    const char *kind = *state;
    char buf[1];
    conn k = open_pair(kind, RX, "framing=raw", ACT("sendhold", "0", "1"));
    ipkt_expect(ipk_recv(k.c, buf, 0, 0), -EINVAL);
    ipkt_errmsg_has("at least one byte");
    ipkt_expect(ipk_recv(k.c, buf, 0, -1), -EINVAL);
    ipkt_expect(ipk_recv(k.c, buf, sizeof buf, 0), -EAGAIN); /* the peer is silent */
    kill(k.pid, SIGKILL);
    finish(&k);
}

/* Datagram and queue transports other than shm: keep no zero-copy receive. */
static void t_peek_unsupported(void **state)
{
    (void)state;
    ipk_chan *c;
    const void *p;
    ipkt_ok(ipk_listen(&c, "udp://127.0.0.1:0", NULL));
    ipkt_expect(ipk_peek(c, &p, 0), IPK_ENOTSUP);
    ipkt_errmsg_has("no zero-copy peek");
    ipkt_expect(ipk_release(c), IPK_ENOTSUP);
    ipkt_ok(ipk_close(c));
}

#define EACH(fn)                                                                                   \
    {#fn "/unix", fn, NULL, NULL, (void *)"unix"}, {#fn "/tcp", fn, NULL, NULL, (void *)"tcp"},    \
        {#fn "/fifo", fn, NULL, NULL, (void *)"fifo"},                                             \
    {                                                                                              \
#fn "/exec", fn, NULL, NULL, (void *)"exec"                                                \
    }

IPKT_MAIN(EACH(t_sizes), EACH(t_many), EACH(t_sendv_blocking), EACH(t_sendv_chunk_rest),
          EACH(t_sendv_dead_peer), EACH(t_sendv_bad_args), EACH(t_eof), EACH(t_trickle),
          EACH(t_killed_mid_frame), EACH(t_oversize), EACH(t_timeouts), EACH(t_send_full),
          EACH(t_signal_storm), EACH(t_no_sigpipe), EACH(t_small_buffer), EACH(t_send_over_max),
          cmocka_unit_test(t_pipesz), EACH(t_peek_mixed), EACH(t_peek_partial),
          EACH(t_peek_oversize), EACH(t_peek_poller), EACH(t_peek_line), EACH(t_peek_misc),
          cmocka_unit_test(t_peek_exec_send), cmocka_unit_test(t_peek_unsupported),
          EACH(t_raw_zero_buffer))
