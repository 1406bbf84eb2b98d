/*
 * test_frame.c - stream framing (src/core/stream.c) on its own, over a socketpair, with fault
 * injection: partial writes, deadlines inside a frame, read/write errors, line and raw framing,
 * buffered messages, batch sends. The transports' own suites (test_stream.c) cover the same
 * contract between real processes. t_codec_* call the codec (src/core/codec.c) directly, on
 * bytes in memory.
 */
#include "harness.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const ipk__transport fake = {
    .scheme = "unix",
    .flags = IPK__TF_STREAM,
    .send = ipk__stream_send,
    .sendv = ipk__stream_sendv,
    .recv = ipk__stream_recv,
};

/* A channel over one end of a socketpair; *other gets the raw other end. */
static ipk_chan *pair(enum ipk__framing framing, size_t max, int *other, int sndbuf)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    if (sndbuf) {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    }
    assert_int_equal(ipk__set_nonblock(sv[0]), 0);
    ipk_chan *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->tr = &fake;
    c->rfd = c->wfd = sv[0];
    c->wkind = IPK__W_SOCK;
    c->framing = framing;
    c->max = max;
    c->role = IPK__DIALER;
    c->status = -1;
    c->name = strdup("pair");
    *other = sv[1];
    return c;
}

static void put(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void put_frame(int fd, const void *p, uint32_t n)
{
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    put(fd, h, 4);
    put(fd, p, n);
}

/* Reads exactly n bytes from a blocking fd. */
static void get(int fd, void *p, size_t n)
{
    char *q = p;
    while (n) {
        ssize_t r = read(fd, q, n);
        assert_true(r > 0);
        q += r;
        n -= (size_t)r;
    }
}

static void t_many_small_one_read(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_LEN, 1 << 20, &o, 0);
    for (uint32_t i = 0; i < 100; i++) {
        char m[8];
        ipkt_fill(m, sizeof m, i);
        put_frame(o, m, sizeof m);
    }
    char buf[16];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), 8);
    assert_true(ipkt_check(buf, 8, 0));
    /* The rest came in with the first read: buffered, whole, pending. */
    assert_true(ipk_pending(c));
    for (uint32_t i = 1; i < 100; i++) {
        ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), 8);
        assert_true(ipkt_check(buf, 8, i));
    }
    assert_false(ipk_pending(c));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), -EAGAIN);
    close(o);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), IPK_EOF);
    ipkt_ok(ipk_close(c));
}

/* A deadline inside a payload loses nothing: small (buffered) and large (direct) payloads. */
static void t_deadline_inside_payload(void **state)
{
    (void)state;
    static const size_t lens[] = {1000, 200000};
    for (size_t k = 0; k < 2; k++) {
        int o;
        ipk_chan *c = pair(IPK__FR_LEN, 1 << 20, &o, 0);
        size_t n = lens[k];
        char *m = malloc(n), *buf = malloc(n);
        assert_non_null(m);
        assert_non_null(buf);
        ipkt_fill(m, n, 7);
        unsigned char h[4] = {0, (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                              (unsigned char)n};
        put(o, h, 4);
        put(o, m, n / 3);
        ipkt_expect(ipk_recv(c, buf, n, 50), IPK_ETIMEDOUT);
        ipkt_expect(ipk_recv(c, buf, n, 0), -EAGAIN);
        assert_false(ipk_pending(c));
        put(o, m + n / 3, n / 3);
        ipkt_expect(ipk_recv(c, buf, n, 50), IPK_ETIMEDOUT);
        put(o, m + 2 * (n / 3), n - 2 * (n / 3));
        ipkt_expect(ipk_recv(c, buf, n, 1000), (long)n);
        assert_memory_equal(buf, m, n);
        free(m);
        free(buf);
        close(o);
        ipkt_ok(ipk_close(c));
    }
}

/* Receives one frame of n bytes with content `seed` into a cap-byte buffer. */
static void recv_frame(ipk_chan *c, size_t n, uint32_t seed, size_t cap, int64_t timeout)
{
    char *buf = malloc(cap);
    assert_non_null(buf);
    ipkt_expect(ipk_recv(c, buf, cap, (int)timeout), (long)n);
    assert_true(ipkt_check(buf, n, seed));
    free(buf);
}

static void put_filled(int fd, size_t n, uint32_t seed)
{
    char *m = malloc(n);
    assert_non_null(m);
    ipkt_fill(m, n, seed);
    put_frame(fd, m, (uint32_t)n);
    free(m);
}

/* After a large frame the next header is read with the caller's buffer behind it: what lands
 * there beyond the payload (small frames, part of the next large one), a payload too big for
 * the buffer, and a deadline inside the payload all keep the stream whole. */
static void t_large_frames_direct(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_LEN, 1 << 20, &o, 1 << 20);
    put_filled(o, 70000, 1); /* the first large frame */
    recv_frame(c, 70000, 1, 100000, 1000);
    /* A large frame, two small ones and the next large one, all there at once. */
    put_filled(o, 40000, 2);
    put_filled(o, 8, 3);
    put_filled(o, 100, 4);
    put_filled(o, 50000, 5);
    recv_frame(c, 40000, 2, 100000, 1000);
    assert_true(ipk_pending(c));
    recv_frame(c, 8, 3, 100000, 0);
    recv_frame(c, 100, 4, 100000, 0);
    recv_frame(c, 50000, 5, 100000, 1000);
    /* Too big for a large buffer: what arrived is kept, the message stays queued. */
    put_filled(o, 60000, 6);
    char *small = malloc(20000);
    assert_non_null(small);
    ipkt_expect(ipk_recv(c, small, 20000, 1000), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(c), 60000);
    free(small);
    recv_frame(c, 60000, 6, 60000, 1000);
    /* A deadline inside the payload of a header read direct. */
    size_t n = 90000;
    char *m = malloc(n);
    assert_non_null(m);
    ipkt_fill(m, n, 7);
    unsigned char h[4] = {0, (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    put(o, h, 4);
    put(o, m, n / 3);
    char *buf = malloc(n);
    assert_non_null(buf);
    ipkt_expect(ipk_recv(c, buf, n, 50), IPK_ETIMEDOUT);
    assert_false(ipk_pending(c));
    put(o, m + n / 3, n - n / 3);
    ipkt_expect(ipk_recv(c, buf, n, 1000), (long)n);
    assert_memory_equal(buf, m, n);
    free(buf);
    free(m);
    /* The header alone, then EOF: still a protocol error. */
    put(o, "\0\1\0\0", 4);
    close(o);
    char b[16];
    ipkt_expect(ipk_recv(c, b, sizeof b, 1000), IPK_EMSGSIZE);
    char *big = malloc(65536);
    assert_non_null(big);
    ipkt_expect(ipk_recv(c, big, 65536, 1000), IPK_EPROTO);
    ipkt_errmsg_has("stream ended inside a frame");
    free(big);
    ipk_close(c);
}

/* A header cut short by EOF is a protocol error, not EOF. */
static void t_eof_inside_header(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_LEN, 100, &o, 0);
    put(o, "\0\0", 2);
    close(o);
    char buf[8];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), IPK_EPROTO);
    ipkt_errmsg_has("inside a frame header (2 of 4 bytes)");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), IPK_ECLOSED);
    ipkt_ok(ipk_close(c));
}

/* A send that times out after part of a frame went out completes later; frames stay whole. */
static void t_partial_send_completes(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_LEN, 1 << 22, &o, 4096);
    size_t n = 1 << 20;
    char *m = malloc(n), *buf = malloc(n);
    assert_non_null(m);
    assert_non_null(buf);
    ipkt_fill(m, n, 3);
    /* The socket holds far less than 1 MiB: part goes out, the rest waits in the channel. */
    ipkt_ok(ipk_send(c, m, n, 0));
    assert_true(c->out.len > 0);
    /* Nothing else may be sent before the rest: a second send cannot pass it. */
    ipkt_expect(ipk_send(c, "x", 1, 0), -EAGAIN);
    ipkt_errmsg_has("still waiting to be written");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* drain the other end: one frame of n bytes, then one of 1 */
        unsigned char h[4];
        get(o, h, 4);
        size_t len = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
        if (h[0] != 0 || len != n)
            _exit(1);
        get(o, buf, n);
        if (!ipkt_check(buf, n, 3))
            _exit(2);
        get(o, h, 4);
        get(o, buf, 1);
        _exit(h[3] == 1 && buf[0] == 'y' ? 0 : 3);
    }
    ipkt_journal_id("pid", pid);
    ipkt_ok(ipk_flush(c, 10000));
    assert_int_equal(c->out.len, 0);
    ipkt_ok(ipk_send(c, "y", 1, 10000));
    assert_int_equal(ipkt_wait(pid), 0);
    free(m);
    free(buf);
    close(o);
    ipkt_ok(ipk_close(c));
}

/* sendv: a thousand messages in a few system calls, each received whole and in order. */
static void t_sendv_batches(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_LEN, 1 << 20, &o, 0);
    enum { N = 1000 };
    static char msgs[N][32];
    ipk_iov iov[N];
    for (int i = 0; i < N; i++) {
        ipkt_fill(msgs[i], (size_t)(i % 32), (uint32_t)i);
        iov[i] = (ipk_iov){msgs[i], (size_t)(i % 32)};
    }
    ipkt_expect(ipk_sendv(c, iov, N, 1000), N);
    /* Read them back on a second channel over the other end. */
    int sv2;
    ipk_chan *r = pair(IPK__FR_LEN, 1 << 20, &sv2, 0);
    close(r->rfd);
    r->rfd = r->wfd = o;
    assert_int_equal(ipk__set_nonblock(o), 0);
    char buf[64];
    for (int i = 0; i < N; i++) {
        ipkt_expect(ipk_recv(r, buf, sizeof buf, 1000), i % 32);
        assert_true(ipkt_check(buf, (size_t)(i % 32), (uint32_t)i));
    }
    close(sv2);
    ipkt_ok(ipk_close(r));
    ipkt_ok(ipk_close(c));
}

/* Injected failures: a write error before anything is written leaves the channel usable; a
 * read error is fatal for the stream. */
static void t_injected_errors(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_LEN, 100, &o, 0);
    ipk__fault_set(IPK__SYS_WRITEV, 1, EIO);
    ipkt_expect(ipk_send(c, "abc", 3, 1000), -EIO);
    ipkt_ok(ipk_send(c, "abc", 3, 1000));
    char buf[16];
    get(o, buf, 7);
    assert_memory_equal(buf, "\0\0\0\3abc", 7);
    put_frame(o, "hello", 5);
    ipk__fault_set(IPK__SYS_READ, 1, EIO);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), -EIO);
    ipkt_errmsg_has("pair: read");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), IPK_ECLOSED);
    ipk__fault_clear();
    close(o);
    ipkt_ok(ipk_close(c));
}

static void t_line_framing(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_LINE, 10, &o, 0);
    put(o, "a\nbc\n\nlast", 10);
    close(o);
    char buf[16];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), 1);
    assert_memory_equal(buf, "a", 1);
    ipkt_expect(ipk_recv(c, buf, 1, 1000), IPK_EMSGSIZE);
    assert_int_equal(ipk_needed(c), 2);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), 2);
    assert_memory_equal(buf, "bc", 2);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), 0);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), 4); /* last line without its newline */
    assert_memory_equal(buf, "last", 4);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), IPK_EOF);
    ipkt_expect(ipk_send(c, "x\ny", 3, 0), -EINVAL);
    ipkt_errmsg_has("containing a newline");
    ipkt_ok(ipk_close(c));

    c = pair(IPK__FR_LINE, 10, &o, 0);
    put(o, "0123456789abcdef\n", 17);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 1000), IPK_EPROTO);
    ipkt_errmsg_has("exceeds max=10");
    close(o);
    ipkt_ok(ipk_close(c));
}

static void t_raw_framing(void **state)
{
    (void)state;
    int o;
    ipk_chan *c = pair(IPK__FR_RAW, 100, &o, 0);
    ipkt_ok(ipk_send(c, "hello", 5, 1000));
    char buf[16];
    get(o, buf, 5);
    assert_memory_equal(buf, "hello", 5);
    put(o, "abcdef", 6);
    ipkt_expect(ipk_recv(c, buf, 4, 1000), 4);
    ipkt_expect(ipk_recv(c, buf + 4, 4, 1000), 2);
    assert_memory_equal(buf, "abcdef", 6);
    ipkt_expect(ipk_recv(c, buf, 0, 1000), -EINVAL);
    close(o);
    ipkt_expect(ipk_recv(c, buf, 4, 1000), IPK_EOF);
    ipkt_ok(ipk_close(c));
}

/* The codec over bytes: need-more hints, a frame's place, the limit decided from the header. */
static void t_codec_len(void **state)
{
    (void)state;
    unsigned char b[32] = {0};
    ipk__frame f;
    assert_int_equal(ipk__codec_decode(IPK__FR_LEN, b, 0, 10, 0, &f), 0);
    assert_int_equal(f.end, 4);
    ipk__codec_put_len(b, 5);
    memcpy(b + 4, "hello", 5);
    ipk__codec_put_len(b + 9, 0);
    assert_int_equal(ipk__codec_decode(IPK__FR_LEN, b, 6, 10, 0, &f), 0);
    assert_int_equal(f.end, 9); /* the whole frame must be there */
    assert_int_equal(ipk__codec_decode(IPK__FR_LEN, b, 13, 10, 0, &f), 1);
    assert_int_equal(f.off, 4);
    assert_int_equal(f.len, 5);
    assert_int_equal(f.end, 9);
    assert_int_equal(ipk__codec_decode(IPK__FR_LEN, b + 9, 4, 10, 0, &f), 1);
    assert_int_equal(f.len, 0);
    assert_int_equal(f.end, 4);
    /* The limit itself passes; one more is refused from the 4 header bytes alone. */
    ipk__codec_put_len(b, 10);
    assert_int_equal(ipk__codec_decode(IPK__FR_LEN, b, 4, 10, 0, &f), 0);
    ipk__codec_put_len(b, 11);
    assert_int_equal(ipk__codec_decode(IPK__FR_LEN, b, 4, 10, 0, &f), IPK_EPROTO);
    assert_int_equal(f.len, 11);
    ipk__codec_put_len(b, 0xffffffffu);
    assert_int_equal(ipk__codec_decode(IPK__FR_LEN, b, 4, 10, 1, &f), IPK_EPROTO);
    size_t pre, post;
    const char *postp;
    assert_int_equal(ipk__codec_encode(IPK__FR_LEN, "abc", 3, b, &pre, &postp, &post), 0);
    assert_int_equal(pre, 4);
    assert_int_equal(post, 0);
    assert_int_equal(ipk__codec_get_len(b), 3);
}

static void t_codec_line_raw(void **state)
{
    (void)state;
    ipk__frame f;
    assert_int_equal(ipk__codec_decode(IPK__FR_LINE, "ab\ncd", 5, 10, 0, &f), 1);
    assert_int_equal(f.len, 2);
    assert_int_equal(f.end, 3);
    assert_int_equal(ipk__codec_decode(IPK__FR_LINE, "cd", 2, 10, 0, &f), 0);
    assert_true(f.end > 2);
    assert_int_equal(ipk__codec_decode(IPK__FR_LINE, "cd", 2, 10, 1, &f), 1); /* last line */
    assert_int_equal(f.len, 2);
    assert_int_equal(ipk__codec_decode(IPK__FR_LINE, "", 0, 10, 1, &f), 0);
    /* Too long: with its newline, or already without it. */
    assert_int_equal(ipk__codec_decode(IPK__FR_LINE, "0123456789a\n", 12, 10, 0, &f), IPK_EPROTO);
    assert_int_equal(ipk__codec_decode(IPK__FR_LINE, "0123456789a", 11, 10, 0, &f), IPK_EPROTO);
    assert_int_equal(ipk__codec_decode(IPK__FR_LINE, "0123456789", 10, 10, 0, &f), 0);
    /* A caller that scanned the start already is not sent back to it. */
    assert_int_equal(ipk__codec_decode_line("a\nbc\n", 5, 2, 10, 0, &f), 1);
    assert_int_equal(f.len, 4);
    size_t pre, post;
    const char *postp;
    unsigned char h[4];
    assert_int_equal(ipk__codec_encode(IPK__FR_LINE, "a\nb", 3, h, &pre, &postp, &post), -EINVAL);
    assert_int_equal(ipk__codec_encode(IPK__FR_LINE, "ab", 2, h, &pre, &postp, &post), 0);
    assert_int_equal(pre, 0);
    assert_int_equal(post, 1);
    assert_int_equal(postp[0], '\n');
    assert_int_equal(ipk__codec_decode(IPK__FR_RAW, "xyz", 3, 1, 0, &f), 1);
    assert_int_equal(f.len, 3);
    assert_int_equal(ipk__codec_decode(IPK__FR_RAW, "", 0, 1, 1, &f), 0);
}

IPKT_MAIN(cmocka_unit_test(t_codec_len), cmocka_unit_test(t_codec_line_raw),
          cmocka_unit_test(t_many_small_one_read), cmocka_unit_test(t_deadline_inside_payload),
          cmocka_unit_test(t_large_frames_direct), cmocka_unit_test(t_eof_inside_header),
          cmocka_unit_test(t_partial_send_completes), cmocka_unit_test(t_sendv_batches),
          cmocka_unit_test(t_injected_errors), cmocka_unit_test(t_line_framing),
          cmocka_unit_test(t_raw_framing))
