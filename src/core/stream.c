/*
 * stream.c - messages over byte streams (exec, fifo, unix stream, tcp).
 *
 * framing=len (default): a 4-byte big-endian length, then the payload. The length is checked
 * against c->max before anything is allocated; a larger one, or a frame cut short by EOF, is
 * IPK_EPROTO and the channel is shut down, because the stream can no longer be trusted.
 * framing=line: one message per '\n'-terminated line (the newline is not part of the message).
 * framing=raw: no boundaries; recv returns the bytes that have arrived.
 *
 * Receive side: reads go into c->in (64 KiB), so one read() serves many small messages; a large
 * payload is read straight into the caller's buffer (readv: the payload there, the next header
 * into c->in), and after a large frame the next header is read with the caller's buffer right
 * behind it, so a stream of large messages never goes through c->in. Invariant between calls: the
 * unread bytes of the stream, and the part of a payload already received, are in c->in - a deadline
 * that passes in the middle of a payload loses nothing.
 *
 * Zero-copy receive (ipk_peek / ipk_release): c->in grows to 512 KiB (or to the frame when one
 * is larger) and each read() asks for 256 KiB, as a plain reader would, so a stream of 16 KiB
 * messages takes one read() per 16 of them; a frame above 128 KiB is read to its end and the next
 * header, so that it never has to move. Reads land at an address congruent to their stream
 * position modulo 64 (IPK__ALIGN). The next frame is parsed in place: a len frame's header is
 * consumed as ipk_recv consumes it (have_frame), the payload stays at c->in's read position and
 * is handed out there until release. While a message is held nothing moves c->in: a recv is
 * refused, a second peek returns the same one.
 *
 * Send side: header and payload go out in one writev(). If the deadline passes after part of a
 * frame was written, the rest is kept in c->out and the send counts as done: the next call on
 * the channel (send, recv, flush, close) writes it first. A frame is never left half-written.
 *
 * What a frame looks like is codec.c's business (pure functions over bytes); this file moves
 * the bytes between the descriptor and the caller's buffers around it.
 */
#include "ipk.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define IPK__RBUF_SIZE ((size_t)64 << 10)
#define IPK__DIRECT    ((size_t)16 << 10) /* payload rests at least this big bypass c->in */
#define IPK__BATCH     256                /* messages per writev in sendv (2 iovecs each) */
#define IPK__SMALL     ((size_t)1024)     /* a single frame up to this size is sent contiguous */
#define IPK__COALESCE  ((size_t)256)  /* frames up to this size are merged in a blocking sendv */
#define IPK__CO_SMALL  ((size_t)8192) /* coalescing: payloads up to this size are buffered */
#define IPK__CO_CAP    ((size_t)64 << 10) /* coalescing: the buffer is written at this size */
/* The kernel copies a read() fastest when the user buffer and the data it comes from (a pipe's
 * pages, filled in stream order) share their offset within a cache line; a plain reader that
 * reads whole chunks into one buffer gets that for free. */
#define IPK__ALIGN     ((size_t)64)
#define IPK__PEEK_READ ((size_t)256 << 10) /* ipk_peek: bytes asked of a read() */

static int ipk__fatal(ipk_chan *c, int code)
{
    c->broken = code;
    return code;
}

/*
 * A caller that waits forever gets a blocking descriptor, so the kernel waits inside read() or
 * writev(): one system call per message, as a plain program makes, instead of read (EAGAIN),
 * ppoll, read. Any deadline puts O_NONBLOCK back first. The mode is cached in the channel, so
 * a run of calls of one kind costs no fcntl() at all.
 */
IPK__HOTPATH static void ipk__io_mode(ipk_chan *c, int fd, int64_t dl)
{
    signed char *state = &c->fdmode[fd == c->rfd ? 0 : 1];
    if (*state != (dl == IPK__DL_FOREVER ? 1 : 2)) /* the cache, checked here: no call */
        ipk__fd_mode(fd, state, dl == IPK__DL_FOREVER);
}

/* Makes room for at least `want` bytes of capacity in c->in (want <= c->max + 4). */
static int ipk__rbuf_reserve(ipk_chan *c, size_t want)
{
    ipk__rbuf *in = &c->in;
    if (in->buf != NULL && in->cap >= want)
        return 0;
    size_t cap = in->cap ? in->cap : IPK__RBUF_SIZE;
    while (cap < want)
        cap *= 2;
    char *b = malloc(cap);
    if (b == NULL)
        return -ENOMEM;
    if (in->len)
        memcpy(b, in->buf + in->off, in->len);
    free(in->buf);
    in->buf = b;
    in->cap = cap;
    in->off = 0;
    return 0;
}

/* One readv() of the channel's input, waiting up to dl; 0 at EOF (in->eof set). */
IPK__HOTPATH static long ipk__readv_wait(ipk_chan *c, const struct iovec *iov, int n, int64_t dl)
{
    ipk__io_mode(c, c->rfd, dl);
    for (;;) {
        ssize_t r = ipk__readv(c->rfd, iov, n);
        if (r >= 0) {
            if (r == 0)
                c->in.eof = 1;
            c->in.pos += (size_t)r;
            return r;
        }
        if (r != -EAGAIN)
            return r;
        int w = ipk__wait_fd(c->rfd, POLLIN, dl);
        if (w < 0)
            return w;
    }
}

/*
 * Reads once into c->in, waiting up to dl for the descriptor. Returns bytes read (> 0), 0 at
 * EOF, or a negative code.
 */
static long ipk__fill(ipk_chan *c, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    int r = ipk__rbuf_reserve(c, IPK__RBUF_SIZE);
    if (r != 0)
        return r;
    if (in->off > 0 && in->off + in->len == in->cap) {
        memmove(in->buf, in->buf + in->off, in->len);
        in->off = 0;
    }
    if (in->len == 0)
        in->off = 0;
    struct iovec iov = {in->buf + in->off + in->len, in->cap - in->off - in->len};
    long n = ipk__readv_wait(c, &iov, 1, dl);
    if (n > 0)
        in->len += (size_t)n;
    return n;
}

/*
 * Reads once into c->in, at most `limit` bytes (at least the need - in->len that the frame being
 * assembled still lacks), with room for `need` bytes from in->off: c->in holds at least twice
 * `read`, or the frame (and IPK__ALIGN). The unread bytes (part of one frame) move to the front
 * when the frame would not fit behind them, or when less than `read` bytes are free behind them.
 * Returns bytes read (> 0), 0 at EOF, or a negative code.
 */
static long ipk__fill_ahead(ipk_chan *c, size_t need, size_t read, size_t limit, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    int r = ipk__rbuf_reserve(c, need + IPK__ALIGN > 2 * read ? need + IPK__ALIGN : 2 * read);
    if (r != 0)
        return r;
    /* Where the unread bytes start when they move: so that the read lands at an address
     * congruent to its place in the stream, modulo a cache line (see IPK__ALIGN). */
    size_t at = (in->pos - in->len - (uintptr_t)in->buf) & (IPK__ALIGN - 1);
    if (in->len == 0) {
        in->off = at;
    } else if (in->off != at && (in->off + need > in->cap || in->cap - in->off - in->len < read)) {
        memmove(in->buf + at, in->buf + in->off, in->len);
        in->off = at;
    }
    size_t room = in->cap - in->off - in->len;
    struct iovec iov = {in->buf + in->off + in->len, room < limit ? room : limit};
    long n = ipk__readv_wait(c, &iov, 1, dl);
    if (n > 0)
        in->len += (size_t)n;
    return n;
}

static void ipk__consume(ipk__rbuf *in, size_t n)
{
    in->off += n;
    in->len -= n;
    if (in->len == 0)
        in->off = 0;
}

static int ipk__read_error(ipk_chan *c, long r, const char *what)
{
    if (r == -EAGAIN || r == IPK_ETIMEDOUT)
        return (int)r;
    if (r == -ENOMEM)
        return (int)r;
    return ipk__fatal(c, ipk__errsys((int)r, "%s: %s", c->name, what));
}

/* The end of the stream before a frame's header was whole: in->len bytes of it buffered. */
static int ipk__ended_in_header(ipk_chan *c)
{
    if (c->in.len == 0)
        return ipk__err(IPK_EOF, "%s: end of stream", c->name);
    return ipk__fatal(c, ipk__err(IPK_EPROTO,
                                  "%s: stream ended inside a frame header (%zu of 4 bytes)",
                                  c->name, c->in.len));
}

static int ipk__ended_in_frame(ipk_chan *c, size_t have, size_t len)
{
    return ipk__fatal(c, ipk__err(IPK_EPROTO, "%s: stream ended inside a frame (%zu of %zu bytes)",
                                  c->name, have, len));
}

/* A header h declares len > c->max: the stream is refused before anything is allocated. */
static int ipk__oversize(ipk_chan *c, const unsigned char *h, size_t len)
{
    /* Four bytes of ASCII text ("GET ", "y\ny\n") are no length: a raw peer. */
    int text = 1;
    for (int i = 0; i < 4; i++)
        text &= (h[i] >= 0x20 && h[i] < 0x7f) || h[i] == '\t' || h[i] == '\n' || h[i] == '\r';
    return ipk__fatal(c, ipk__err(IPK_EPROTO,
                                  "%s: peer declared a %zu-byte frame; max=%zu (channel "
                                  "closed, nothing allocated)%s",
                                  c->name, len, c->max,
                                  text ? "; those 4 header bytes are ASCII text: a peer "
                                         "that sends plain bytes needs ?framing=raw (or "
                                         "framing=line)"
                                       : ""));
}

/* The payload received so far (in the caller's buffer) goes back to c->in before returning. */
static int ipk__save_partial(ipk_chan *c, const void *got, size_t n)
{
    int r = ipk__rbuf_reserve(c, n);
    if (r != 0)
        return ipk__fatal(c, r); /* cannot keep the bytes: the stream is lost */
    memcpy(c->in.buf, got, n);
    c->in.off = 0;
    c->in.len = n;
    return 0;
}

/*
 * One readv() that puts a large payload where the caller wants it, waiting up to dl; c->in
 * must be empty. head = 0: dst first, then 4 bytes of c->in, so the next header comes with the
 * payload and the next payload can go direct too (more of it in c->in would be copied out
 * again). head = 1: a 4-byte header into c->in, then dst.
 * Returns bytes read, 0 at EOF (in->eof set), or a negative code; in->len counts the bytes
 * that went to c->in.
 */
static long ipk__fill_direct(ipk_chan *c, int head, void *dst, size_t dstlen, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    int r = ipk__rbuf_reserve(c, IPK__RBUF_SIZE);
    if (r != 0)
        return r;
    in->off = 0;
    struct iovec iov[2] = {{dst, dstlen}, {in->buf, 4}};
    if (head) {
        iov[0] = (struct iovec){in->buf, 4};
        iov[1] = (struct iovec){dst, dstlen};
    }
    long n = ipk__readv_wait(c, iov, 2, dl);
    if (n > 0)
        in->len =
            head ? ((size_t)n < 4 ? (size_t)n : 4) : ((size_t)n > dstlen ? (size_t)n - dstlen : 0);
    return n;
}

static long ipk__recv_rest(ipk_chan *c, char *buf, size_t len, size_t have, int64_t dl);

static long ipk__recv_len(ipk_chan *c, char *buf, size_t cap, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    long r;
    size_t pre = 0; /* payload bytes (and maybe what follows) already in buf */
    if (!in->have_frame && in->len == 0 && !in->eof && in->frame >= IPK__DIRECT &&
        cap >= IPK__DIRECT) {
        /* After a large frame the next is likely large too (a stream of 64 KiB messages): its
         * header is read with the caller's buffer right behind it, so the payload skips c->in. */
        r = ipk__fill_direct(c, 1, buf, cap, dl);
        if (r < 0)
            return ipk__read_error(c, r, "read");
        pre = r > 4 ? (size_t)r - 4 : 0;
    }
    if (!in->have_frame) {
        while (in->len < 4) {
            if (in->eof || (r = ipk__fill(c, dl)) == 0)
                return ipk__ended_in_header(c);
            if (r < 0)
                return ipk__read_error(c, r, "read");
        }
        const unsigned char *h = (const unsigned char *)in->buf + in->off;
        size_t len = ipk__codec_get_len(h);
        if (len > c->max)
            return ipk__oversize(c, h, len);
        ipk__consume(in, 4);
        in->frame = len;
        in->have_frame = 1;
    }
    size_t len = in->frame;
    if (pre) { /* c->in is empty: it takes back what in buf is not this payload */
        size_t keep = len > cap ? 0 : pre < len ? pre : len;
        if (pre > keep && (r = ipk__save_partial(c, buf + keep, pre - keep)) != 0)
            return r;
        if (len <= cap)
            return ipk__recv_rest(c, buf, len, keep, dl);
    }
    if (len > cap) {
        c->need = len;
        return ipk__err(IPK_EMSGSIZE, "%s: message of %zu bytes does not fit a %zu-byte buffer",
                        c->name, len, cap);
    }
    size_t have = in->len < len ? in->len : len;
    if (have)
        memcpy(buf, in->buf + in->off, have);
    ipk__consume(in, have);
    return ipk__recv_rest(c, buf, len, have, dl);
}

/* The rest of a len-byte payload of which `have` bytes are in buf; c->in is empty. */
static long ipk__recv_rest(ipk_chan *c, char *buf, size_t len, size_t have, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    long r;
    while (have < len) {
        size_t left = len - have;
        if (left >= IPK__DIRECT) {
            r = ipk__fill_direct(c, 0, buf + have, left, dl);
            if (r > 0) {
                have += (size_t)r - in->len; /* the bytes past the payload are in c->in */
                continue;
            }
        } else {
            r = ipk__fill(c, dl);
            if (r > 0) {
                size_t k = in->len < left ? in->len : left;
                memcpy(buf + have, in->buf + in->off, k);
                ipk__consume(in, k);
                have += k;
                continue;
            }
        }
        /* Nothing more now: EOF, error or deadline. c->in is empty here. */
        if (r == 0)
            return ipk__ended_in_frame(c, have, len);
        if (r == -EAGAIN || r == IPK_ETIMEDOUT) {
            int s = ipk__save_partial(c, buf, have);
            return s != 0 ? s : r;
        }
        return ipk__read_error(c, r, "read");
    }
    in->have_frame = 0; /* in->frame stays: the next header read looks at it */
    return (long)len;
}

/* Buffers the next whole line in c->in (c->in twice `read` bytes, or more for a longer line);
 * *f says where it is, from in->off. 0, or a negative code. */
static int ipk__line_next(ipk_chan *c, size_t read, int64_t dl, ipk__frame *f)
{
    ipk__rbuf *in = &c->in;
    size_t scanned = 0;
    int d;
    while ((d = ipk__codec_decode_line(in->len ? in->buf + in->off : "", in->len, scanned, c->max,
                                       in->eof, f)) == 0) {
        if (in->eof)
            return ipk__err(IPK_EOF, "%s: end of stream", c->name);
        scanned = in->len;
        long r = ipk__fill_ahead(c, in->len + 1, read, SIZE_MAX, dl);
        if (r < 0)
            return ipk__read_error(c, r, "read");
    }
    if (d < 0 && f->end > in->len) /* no newline yet, and already too long */
        return ipk__fatal(c, ipk__err(IPK_EPROTO, "%s: line longer than max=%zu (channel closed)",
                                      c->name, c->max));
    if (d < 0)
        return ipk__fatal(c, ipk__err(IPK_EPROTO, "%s: line of %zu bytes exceeds max=%zu", c->name,
                                      f->len, c->max));
    return 0;
}

static long ipk__recv_line(ipk_chan *c, char *buf, size_t cap, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    ipk__frame f;
    int r = ipk__line_next(c, IPK__RBUF_SIZE / 4, dl, &f);
    if (r != 0)
        return r;
    if (f.len > cap) {
        c->need = f.len;
        return ipk__err(IPK_EMSGSIZE, "%s: line of %zu bytes does not fit a %zu-byte buffer",
                        c->name, f.len, cap);
    }
    if (f.len)
        memcpy(buf, in->buf + in->off, f.len);
    ipk__consume(in, f.end);
    return (long)f.len;
}

static long ipk__recv_raw(ipk_chan *c, char *buf, size_t cap, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    if (cap == 0)
        return ipk__err(-EINVAL, "%s: framing=raw needs a buffer of at least one byte", c->name);
    if (in->len == 0) {
        if (in->eof)
            return ipk__err(IPK_EOF, "%s: end of stream", c->name);
        long r = ipk__fill(c, dl);
        if (r == 0)
            return ipk__err(IPK_EOF, "%s: end of stream", c->name);
        if (r < 0)
            return ipk__read_error(c, r, "read");
    }
    size_t n = in->len < cap ? in->len : cap;
    memcpy(buf, in->buf + in->off, n);
    ipk__consume(in, n);
    return (long)n;
}

/* What every receive does first: refuses a channel end that only sends, and writes what this end
 * buffered before it waits for an answer. */
static inline int ipk__recv_begin(ipk_chan *c, int64_t dl)
{
    if (c->rfd < 0)
        return ipk__err(IPK_ENOTSUP, "%s: this end of the channel only sends", c->name);
    if (c->co.on) {
        /* Without blocking: what the peer's full socket does not take now the flusher writes,
         * and the bytes already here to read are read. A write error stays for the next send
         * (ipk__co_error). */
        if (atomic_load_explicit(&c->co.since, memory_order_relaxed) != 0) {
            pthread_mutex_lock(&c->co.mu);
            ipk__co_push(c);
            pthread_mutex_unlock(&c->co.mu);
        }
    } else if (c->out.len) {
        return ipk__stream_flush(c, dl);
    }
    return 0;
}

IPK__HOTPATH long ipk__stream_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    (void)mi;
    int b = ipk__recv_begin(c, dl);
    if (b != 0)
        return b;
    ipk__rbuf *in = &c->in;
    if (__builtin_expect(in->peeked, 0)) /* c->in must not move under the caller's pointer */
        return ipk__err(-EINVAL, "%s: recv while a peeked message is not released", c->name);
    if (c->framing == IPK__FR_LEN && !in->have_frame && in->len == 0 && !in->eof &&
        in->buf != NULL && in->frame < IPK__DIRECT) {
        /* Nothing buffered and the last frame was small (a ping-pong): the one read() that
         * ipk__fill would make, into the whole of c->in, without its steps. What it brings is
         * handled below as any buffered bytes are; EOF, too little, and errors as in
         * ipk__recv_len. */
        struct iovec iov = {in->buf, in->cap};
        in->off = 0;
        long n = ipk__readv_wait(c, &iov, 1, dl);
        if (n < 0)
            return ipk__read_error(c, n, "read");
        in->len = (size_t)n;
    }
    if (c->framing == IPK__FR_LEN && !in->have_frame && in->len >= IPK__HDR_LEN) {
        /* A whole frame already in c->in (the common case for small messages): one copy, none
         * of the general path's steps. Anything else (part of a frame, too long, too big for
         * buf) is the general path's to report. */
        size_t len = ipk__codec_get_len((const unsigned char *)in->buf + in->off);
        if (len <= c->max && len <= cap && in->len - IPK__HDR_LEN >= len) {
            if (len)
                memcpy(buf, in->buf + in->off + IPK__HDR_LEN, len);
            ipk__consume(in, IPK__HDR_LEN + len);
            in->frame = len;
            return (long)len;
        }
    }
    switch (c->framing) {
    case IPK__FR_LINE:
        return ipk__recv_line(c, buf, cap, dl);
    case IPK__FR_RAW:
        return ipk__recv_raw(c, buf, cap, dl);
    case IPK__FR_LEN:
        break;
    }
    return ipk__recv_len(c, buf, cap, dl);
}

int ipk__stream_pending(const ipk_chan *c)
{
    const ipk__rbuf *in = &c->in;
    switch (c->framing) {
    case IPK__FR_RAW:
        return in->len > 0;
    case IPK__FR_LINE:
        return in->len > 0 && (memchr(in->buf + in->off, '\n', in->len) != NULL || in->eof);
    case IPK__FR_LEN:
        break;
    }
    if (in->have_frame)
        return in->len >= in->frame;
    if (in->len < 4)
        return 0;
    size_t len = ipk__codec_get_len((const unsigned char *)in->buf + in->off);
    return len > c->max || in->len - 4 >= len; /* an oversized header is "ready" to fail */
}

/* ---- zero-copy receive ---- */

/* framing=len: the next whole frame's payload at in->off (its header consumed). */
static long ipk__peek_len(ipk_chan *c, int64_t dl, size_t *end)
{
    ipk__rbuf *in = &c->in;
    for (;;) {
        if (!in->have_frame && in->len >= IPK__HDR_LEN) {
            const unsigned char *h = (const unsigned char *)in->buf + in->off;
            size_t len = ipk__codec_get_len(h);
            if (len > c->max)
                return ipk__oversize(c, h, len);
            ipk__consume(in, IPK__HDR_LEN);
            in->frame = len;
            in->have_frame = 1;
        }
        if (in->have_frame && in->len >= in->frame) {
            *end = in->frame;
            return (long)in->frame;
        }
        if (in->eof)
            return in->have_frame ? ipk__ended_in_frame(c, in->len, in->frame)
                                  : ipk__ended_in_header(c);
        /* Small frames: a whole read's worth, many frames per read(). A frame above half a read
         * is read to its end and the next header only: more of the next frame would have to
         * move to the front of c->in before it fits (the copy this path exists to avoid). */
        size_t need = in->have_frame ? in->frame : IPK__HDR_LEN;
        size_t limit = IPK__PEEK_READ;
        if (in->have_frame && in->frame > IPK__PEEK_READ / 2)
            limit = in->frame - in->len + IPK__HDR_LEN;
        long r = ipk__fill_ahead(c, need, IPK__PEEK_READ, limit, dl);
        if (r < 0)
            return ipk__read_error(c, r, "read");
    }
}

long ipk__stream_peek(ipk_chan *c, const void **p, int64_t dl)
{
    ipk__rbuf *in = &c->in;
    if (!in->peeked) {
        int b = ipk__recv_begin(c, dl);
        if (b != 0)
            return b;
        long n;
        size_t end = 0;
        ipk__frame f;
        switch (c->framing) {
        case IPK__FR_LINE:
            if ((n = ipk__line_next(c, IPK__PEEK_READ, dl, &f)) == 0) {
                n = (long)f.len;
                end = f.end;
            }
            break;
        case IPK__FR_RAW: /* the bytes that have arrived, all of them */
            n = in->len == 0 && !in->eof ? ipk__fill_ahead(c, 1, IPK__PEEK_READ, IPK__PEEK_READ, dl)
                                         : 0;
            if (n < 0)
                return ipk__read_error(c, n, "read");
            if (in->len == 0)
                return ipk__err(IPK_EOF, "%s: end of stream", c->name);
            n = (long)(end = in->len);
            break;
        default:
            n = ipk__peek_len(c, dl, &end);
            break;
        }
        if (n < 0)
            return n;
        in->peeked = 1;
        in->peek_len = (size_t)n;
        in->peek_end = end;
    }
    *p = in->buf + in->off;
    return (long)in->peek_len;
}

int ipk__stream_release(ipk_chan *c)
{
    ipk__rbuf *in = &c->in;
    if (!in->peeked)
        return ipk__err(-EINVAL, "%s: release without a peeked message", c->name);
    ipk__consume(in, in->peek_end);
    in->peeked = 0;
    in->have_frame = 0; /* framing=len: in->frame stays, the last frame's length */
    return 0;
}

/* ---- send side ---- */

/* Room for `more` bytes behind what c->out holds; 0 or -ENOMEM. */
static int ipk__out_reserve(ipk_chan *c, size_t more)
{
    ipk__wbuf *o = &c->out;
    if (o->off > 0 && o->len + more > o->cap) {
        memmove(o->buf, o->buf + o->off, o->len - o->off);
        o->len -= o->off;
        o->off = 0;
    }
    if (o->len + more <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + more)
        cap *= 2;
    char *b = realloc(o->buf, cap);
    if (b == NULL)
        return -ENOMEM;
    o->buf = b;
    o->cap = cap;
    return 0;
}

/* memcpy for a small payload (framing a batch): fixed-size moves the compiler inlines, where a
 * call per 64-byte message costs as much as the copy. Reads and writes exactly n bytes. */
static inline void ipk__copy_small(unsigned char *d, const unsigned char *s, size_t n)
{
    if (n >= 16) { /* 16-byte moves, the last one ending at n (overlapping when n is odd-sized) */
        size_t i = 0;
        for (; i + 16 < n; i += 16)
            memcpy(d + i, s + i, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

/* Keeps iov[i..] (the part not yet written) in c->out, behind what it holds. */
static int ipk__save_rest(ipk_chan *c, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (ipk__out_reserve(c, total) != 0)
        return ipk__fatal(c, -ENOMEM);
    int was_empty = c->out.len == c->out.off;
    for (int i = 0; i < n; i++) {
        memcpy(c->out.buf + c->out.len, iov[i].iov_base, iov[i].iov_len);
        c->out.len += iov[i].iov_len;
    }
    if (c->co.on && was_empty)
        ipk__co_armed(c); /* the flusher finishes it if the owner does not */
    return 0;
}

/* c->out is written: a coalescing channel keeps its buffer for the next burst. */
static void ipk__out_done(ipk_chan *c)
{
    c->out.len = c->out.off = 0;
    if (c->co.on) {
        atomic_store_explicit(&c->co.since, 0, memory_order_relaxed);
        return;
    }
    free(c->out.buf);
    c->out.buf = NULL;
    c->out.cap = 0;
}

void ipk__co_push(ipk_chan *c)
{
    ipk__wbuf *o = &c->out;
    while (o->len > o->off) {
        ssize_t w =
            ipk__sys_send(c->wfd, o->buf + o->off, o->len - o->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            o->off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return;
        atomic_store(&c->co.err, w < 0 ? -errno : -EPIPE);
        break;
    }
    ipk__out_done(c);
}

/* The rest of ipk__write_all: w is what its first writev() returned. */
static long ipk__write_rest(ipk_chan *c, struct iovec *iov, int n, const int *frames, int64_t dl,
                            ssize_t w)
{
    int i = 0;
    int cut = 0; /* some of iov[i] is already written */
    for (;;
         w = ipk__writev(c->wfd, iov + i, n - i > 1024 ? 1024 : n - i, c->wkind, c->sigpipe_ign)) {
        if (w >= 0) {
            size_t k = (size_t)w;
            while (i < n && k >= iov[i].iov_len) {
                k -= iov[i].iov_len;
                i++;
                cut = 0;
            }
            if (i == n)
                return frames[n - 1] + 1;
            if (k > 0) {
                iov[i].iov_base = (char *)iov[i].iov_base + k;
                iov[i].iov_len -= k;
                cut = 1;
            }
            continue;
        }
        int r = (int)w;
        if (r == -EAGAIN && (r = ipk__wait_fd(c->wfd, POLLOUT, dl)) > 0)
            continue;
        int cur = frames[i];
        int started = cut || (i > 0 && frames[i - 1] == cur);
        if (!started) {
            if (cur > 0)
                return cur; /* messages before this one went out whole */
            return r == -EAGAIN || r == IPK_ETIMEDOUT ? ipk__err(r, "%s: send", c->name)
                                                      : ipk__errsys(r, "%s: write", c->name);
        }
        if (r == -EAGAIN || r == IPK_ETIMEDOUT) {
            int end = i;
            while (end < n && frames[end] == cur)
                end++;
            int s = ipk__save_rest(c, iov + i, end - i);
            return s != 0 ? s : cur + 1;
        }
        /* A hard error half-way through a frame leaves the stream unusable. */
        return ipk__fatal(c, ipk__errsys(r, "%s: write", c->name));
    }
}

/*
 * Writes iov[0..n) (which this function may modify) with deadline dl. frames[i] is the index of
 * the message iov[i] belongs to. A message counts as sent once any byte of it is written: if the
 * deadline passes inside it, its rest is kept in c->out. Returns the number of messages sent, or
 * a negative code when none was. The common case, one buffer written whole, returns here.
 */
IPK__HOTPATH static inline long ipk__write_all(ipk_chan *c, struct iovec *iov, int n,
                                               const int *frames, int64_t dl)
{
    ipk__io_mode(c, c->wfd, dl);
    ssize_t w = ipk__writev(c->wfd, iov, n > 1024 ? 1024 : n, c->wkind, c->sigpipe_ign);
    if (n == 1 && w >= 0 && (size_t)w == iov[0].iov_len)
        return frames[0] + 1;
    return ipk__write_rest(c, iov, n, frames, dl, w);
}

/* Writes c->out, waiting up to dl (c->co.mu held when coalescing). */
static int ipk__out_flush(ipk_chan *c, int64_t dl)
{
    ipk__io_mode(c, c->wfd, dl);
    while (c->out.len > c->out.off) {
        struct iovec iov = {c->out.buf + c->out.off, c->out.len - c->out.off};
        ssize_t w = ipk__writev(c->wfd, &iov, 1, c->wkind, c->sigpipe_ign);
        if (w > 0) {
            c->out.off += (size_t)w;
            continue;
        }
        int r = (int)w;
        if (r == -EAGAIN && (r = ipk__wait_fd(c->wfd, POLLOUT, dl)) > 0)
            continue;
        if (r == -EAGAIN || r == IPK_ETIMEDOUT)
            return ipk__err(r, "%s: the rest of an earlier message is still waiting to be written",
                            c->name);
        return ipk__fatal(c, ipk__errsys(r, "%s: write", c->name));
    }
    ipk__out_done(c);
    return 0;
}

int ipk__stream_flush(ipk_chan *c, int64_t dl)
{
    if (!c->co.on)
        return ipk__out_flush(c, dl);
    pthread_mutex_lock(&c->co.mu);
    int r = ipk__co_error(c);
    if (r == 0 && c->out.len > c->out.off)
        r = ipk__out_flush(c, dl);
    pthread_mutex_unlock(&c->co.mu);
    return r;
}

/* The message for a failed ipk__codec_encode(). */
static int ipk__encode_error(ipk_chan *c, int r, size_t len)
{
    if (r == -EINVAL)
        return ipk__err(r, "%s: framing=line cannot carry a message containing a newline", c->name);
    return ipk__err(r, "%s: a %zu-byte message does not fit a frame header", c->name, len);
}

/* The staging area of a blocking batch (ipk__sendv_direct): c->out's buffer, empty here. With
 * grow = 0, the buffer kept from an earlier call, whatever its size (the caller checks the room
 * of each frame, which costs less than summing the batch first); else, or when there is none,
 * one sized to the small frames of the first IPK__BATCH messages. NULL when there are none or
 * memory is short (the batch then goes out unstaged). *end: the end of the buffer. */
static unsigned char *ipk__stage(ipk_chan *c, const ipk_iov *msgs, size_t n, int grow,
                                 unsigned char **end)
{
    if (grow || c->out.buf == NULL) {
        size_t need = 0, most = n < IPK__BATCH ? n : IPK__BATCH;
        for (size_t i = 0; i < most; i++)
            need += msgs[i].len <= IPK__COALESCE ? IPK__HDR_LEN + msgs[i].len : 0;
        if (need == 0 || ipk__out_reserve(c, need) != 0)
            return NULL;
    }
    *end = (unsigned char *)c->out.buf + c->out.cap;
    return (unsigned char *)c->out.buf;
}

/* Writes msgs now, behind what c->out holds. */
static long ipk__sendv_direct(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl)
{
    if (c->out.len > c->out.off) {
        int r = ipk__out_flush(c, dl);
        if (r != 0)
            return r;
    }
    struct iovec iov[2 * IPK__BATCH];
    int frames[2 * IPK__BATCH];
    unsigned char hdr[IPK__BATCH][IPK__HDR_LEN];
    /* Small frames of a blocking batch are copied, header and payload, into one contiguous
     * buffer: the kernel copies many tiny iovec segments far more slowly than memcpy does. With
     * no deadline nothing is left half-written: either all goes, or a hard error stops the
     * stream, and a chunk not begun reports the messages before it, as write_all does. The
     * staging area is c->out's buffer, empty here (flushed above) and kept between calls, so a
     * loop of batches allocates nothing; c->out.len stays 0, so nothing in it counts as queued
     * (coalescing channels, whose c->out the flusher reads, only come here with large frames). */
    unsigned char *stage = NULL, *stage_end = NULL;
    if (c->framing == IPK__FR_LEN && n > 1 && dl == IPK__DL_FOREVER && !c->co.on)
        stage = ipk__stage(c, msgs, n, 0, &stage_end);
    size_t done = 0;
    while (done < n) {
        int k, m;
        size_t used;
        int staging = stage != NULL && done == 0; /* later batches do not block (DL_NOW) */
        int most = n - done < IPK__BATCH ? (int)(n - done) : IPK__BATCH;
    frame:
        k = m = 0;
        used = 0;
        while (m < most) {
            const ipk_iov *msg = &msgs[done + (size_t)m];
            if (staging && msg->len <= IPK__COALESCE) {
                /* The run of small frames here, header and payload, in one tight pass (every
                 * instruction here is spent 256 times per call). The run is one iovec, a chunk,
                 * which counts as its first message (see below). */
                unsigned char *p0 = stage + used, *p = p0;
                frames[k] = m;
                do { /* read first: the stores below may alias msgs[] for the compiler */
                    size_t len = msg->len;
                    const unsigned char *src = msg->base;
                    if ((size_t)(stage_end - p) < IPK__HDR_LEN + len) {
                        /* The buffer kept from earlier calls is too small: sized to this
                         * batch, and the batch framed again (nothing is written yet). */
                        stage = ipk__stage(c, msgs, n, 1, &stage_end);
                        staging = stage != NULL;
                        goto frame;
                    }
                    ipk__codec_put_len(p, len);
                    ipk__copy_small(p + IPK__HDR_LEN, src, len);
                    p += IPK__HDR_LEN + len;
                    msg++;
                } while (++m < most && msg->len <= IPK__COALESCE);
                iov[k++] = (struct iovec){p0, (size_t)(p - p0)};
                used += (size_t)(p - p0);
                continue;
            }
            unsigned char *h = hdr[m];
            size_t pre, post;
            const char *postp;
            int r = ipk__codec_encode(c->framing, msg->base, msg->len, h, &pre, &postp, &post);
            if (r != 0)
                return done + (size_t)m > 0 ? (long)(done + (size_t)m)
                                            : ipk__encode_error(c, r, msg->len);
            if (pre) {
                iov[k] = (struct iovec){h, pre};
                frames[k++] = m;
            }
            if (msg->len) {
                iov[k] = (struct iovec){(void *)msg->base, msg->len};
                frames[k++] = m;
            }
            if (post) {
                iov[k] = (struct iovec){(void *)postp, post};
                frames[k++] = m;
            }
            m++;
        }
        if (k == 0) { /* raw framing, all messages empty */
            done += (size_t)m;
            continue;
        }
        long r = ipk__write_all(c, iov, k, frames, done == 0 ? dl : IPK__DL_NOW);
        if (r < 0)
            return done > 0 ? (long)done : r;
        /* Everything written: a last chunk stands for all its messages, not only its first.
         * (Anything short of that, with no deadline, is an error before the chunk began.) */
        if (staging && r == frames[k - 1] + 1)
            r = m;
        done += (size_t)r;
        /* A chunk whose write stopped inside its last message left that message's rest in
         * c->out: nothing may be written ahead of it, so the next chunk waits for the next call
         * (which flushes c->out first). Writing on was how a stream got a later chunk's bytes in
         * the middle of a frame when room came back at once (t_sendv_chunk_rest). */
        if (r < m || c->out.len > c->out.off)
            break;
    }
    return (long)done;
}

/*
 * Coalescing (c->co.mu held): each small frame is appended to c->out; a full buffer is written
 * first (waiting up to dl, as a plain send would have), a large frame goes out directly after
 * what is buffered. What stays buffered the owner writes before it waits for anything, or the
 * flusher within the channel's bound (coalesce.c).
 */
static long ipk__co_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl)
{
    int r = ipk__co_error(c);
    if (r != 0)
        return r;
    ipk__wbuf *o = &c->out;
    size_t i = 0;
    while (i < n) {
        if (msgs[i].len > IPK__CO_SMALL) {
            size_t j = i + 1;
            while (j < n && msgs[j].len > IPK__CO_SMALL)
                j++;
            long k = ipk__sendv_direct(c, msgs + i, j - i, dl);
            if (k < 0)
                return i > 0 ? (long)i : k;
            i += (size_t)k;
            if (i < j)
                break;
            continue;
        }
        if (c->framing == IPK__FR_LEN) {
            /* The run of small frames that fits what is left of the buffer is copied in one
             * pass: one reservation, a header and a memcpy each, instead of the general path's
             * encode and reservation per frame (half the sender's time in a 256 x 64 B batch). */
            size_t room = IPK__CO_CAP - (o->len - o->off), bytes = 0, j = i;
            while (j < n && msgs[j].len <= IPK__CO_SMALL &&
                   bytes + IPK__HDR_LEN + msgs[j].len <= room)
                bytes += IPK__HDR_LEN + msgs[j++].len;
            if (j > i) {
                if (ipk__out_reserve(c, bytes) != 0)
                    return i > 0 ? (long)i : -ENOMEM;
                int was_empty = o->len == o->off;
                unsigned char *p = (unsigned char *)o->buf + o->len;
                for (size_t k = i; k < j; k++) {
                    ipk__codec_put_len(p, msgs[k].len);
                    if (msgs[k].len <= IPK__COALESCE)
                        ipk__copy_small(p + IPK__HDR_LEN, msgs[k].base, msgs[k].len);
                    else
                        memcpy(p + IPK__HDR_LEN, msgs[k].base, msgs[k].len);
                    p += IPK__HDR_LEN + msgs[k].len;
                }
                o->len += bytes;
                size_t before = i;
                i = j;
                if (was_empty && ipk__co_armed(c) != 0 && (r = ipk__out_flush(c, dl)) != 0)
                    return before > 0 ? (long)before : r; /* no flusher: written through */
                continue;
            }
        }
        const ipk_iov *m = &msgs[i];
        unsigned char h[IPK__HDR_LEN];
        size_t pre, post;
        const char *postp;
        if ((r = ipk__codec_encode(c->framing, m->base, m->len, h, &pre, &postp, &post)) != 0)
            return i > 0 ? (long)i : ipk__encode_error(c, r, m->len);
        size_t need = pre + m->len + post;
        if (o->len - o->off + need > IPK__CO_CAP) {
            r = ipk__out_flush(c, dl);
            if (r != 0 && (c->broken || o->len - o->off + need > IPK__CO_CAP))
                return i > 0 ? (long)i : r;
        }
        if (ipk__out_reserve(c, need) != 0)
            return i > 0 ? (long)i : -ENOMEM;
        int was_empty = o->len == o->off;
        char *p = o->buf + o->len;
        memcpy(p, h, pre);
        if (m->len)
            memcpy(p + pre, m->base, m->len);
        if (post)
            memcpy(p + pre + m->len, postp, post);
        o->len += need;
        i++;
        if (was_empty && ipk__co_armed(c) != 0 && (r = ipk__out_flush(c, dl)) != 0)
            return i > 1 ? (long)i - 1 : r; /* no flusher: written through */
    }
    return (long)i;
}

long ipk__stream_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl)
{
    if (c->wfd < 0)
        return ipk__err(IPK_ENOTSUP, "%s: this end of the channel only receives", c->name);
    if (!c->co.on)
        return ipk__sendv_direct(c, msgs, n, dl);
    pthread_mutex_lock(&c->co.mu);
    long r = ipk__co_sendv(c, msgs, n, dl);
    pthread_mutex_unlock(&c->co.mu);
    return r;
}

IPK__HOTPATH int ipk__stream_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                                  int64_t dl)
{
    (void)mi;
    if (c->co.on) {
        ipk_iov one = {msg, len};
        long r = ipk__stream_sendv(c, &one, 1, dl);
        return r == 1 ? 0 : (int)r;
    }
    /* A small frame is copied behind its header and goes out with one write(): cheaper than
     * a two-part writev(), whose iovec the kernel must fetch and walk. */
    if (c->framing == IPK__FR_LEN && len <= IPK__SMALL && c->wfd >= 0 && c->out.len == 0) {
        unsigned char b[4 + IPK__SMALL];
        ipk__codec_put_len(b, len);
        if (len)
            memcpy(b + 4, msg, len);
        struct iovec iov = {b, 4 + len};
        int frame = 0;
        long r = ipk__write_all(c, &iov, 1, &frame, dl);
        return r == 1 ? 0 : (int)r;
    }
    ipk_iov one = {msg, len};
    long r = ipk__stream_sendv(c, &one, 1, dl);
    return r == 1 ? 0 : (int)r;
}
