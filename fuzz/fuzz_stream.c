/*
 * fuzz_stream.c - the byte-stream receive path (src/core/stream.c: ipk_recv, ipk_peek,
 * ipk_release, ipk_pending) against what a hostile peer writes, through a real channel.
 *
 * Input: byte 0 picks the transport (a unix: connection, or a fifo:), the framing (len, line,
 * raw), whether the writer ends with ipk_close or ipk_shutdown, and the reader's flush= (unix:)
 * or a 64 KiB pipe (fifo: pipesz=65536, which the writer fills early) instead of 1 MiB; byte 1
 * the reader's max= (0 B .. 1 MiB, or the default 16 MiB). Each input listens, dials (and for
 * unix: accepts) afresh in a private directory made once. Then the stream the peer writes, as up
 * to 15 segments: bytes taken from the input, a frame around bytes of the input, or a made-up
 * frame of up to ~1 MiB (payload bytes derived from their stream position, so that a byte
 * delivered out of place shows) whose header may lie and whose payload may be cut short. The
 * rest is a schedule: write a piece of the stream (plain write() on the writer's descriptor,
 * non-blocking), recv into a buffer of a chosen size (0, the next message's size, one less, one
 * more, small, large, near the 16 KiB direct-read threshold), peek, peek twice, release, recv
 * while a message is held, ipk_pending, end the writer; timeouts 0, 1 ms (at most MAX_WAITS
 * that expire per input) or forever once the writer is gone. When the schedule is used up, the
 * rest of the stream is written and received to its end.
 *
 * The oracle is the codec itself (ipk__codec_decode) over the bytes written so far, from the
 * end of the last message delivered: it says what the next receive must return - that message
 * (byte for byte, in order, each once), IPK_EMSGSIZE with ipk_needed() (len: as soon as the
 * header is in; line: once the whole line is), -EAGAIN or IPK_ETIMEDOUT (everything written is
 * already readable: a unix: or fifo: write is in the peer's queue when it returns), IPK_EOF,
 * IPK_EPROTO (an oversize header, a cut frame or header at EOF, a line over max) and after it
 * IPK_ECLOSED. Raw framing: any non-empty prefix of what waits, no longer than the buffer.
 * Also checked: a held message stays intact at the same address until its release, whatever
 * is called meanwhile; a second peek returns it at once; recv while it is held is -EINVAL and
 * release without one -EINVAL; ipk_pending is 1 while a message is held and never 1 when the
 * next receive would wait; recv never writes outside its buffer (it ends at the end of a global
 * array, an ASan redzone, and a canary guards the bytes before it).
 */
#define _GNU_SOURCE 1
#include "codec.h"
#include "input.h"
#include "ipk.h"
#include "ipckit.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define STREAM_CAP ((size_t)1536 << 10) /* the most one input writes */
#define RBUF_CAP   ((size_t)2 << 20)    /* the largest receive buffer */
#define CANARY     16
#define MAX_OPS    256
#define MAX_WAITS  2 /* receives per input that may wait out a 1 ms timeout */

enum outcome { O_MSG, O_RAW, O_MSGSIZE, O_WAIT, O_EOF, O_PROTO, O_INVAL };

static const size_t maxes[] = {0,      1,      2,      4,      5,      64,     100,
                               4096,   16383,  16384,  65536,  131072, 131075, 262144,
                               524288, 524289, 600000, 786432, 1 << 20};
#define NMAX (sizeof maxes / sizeof maxes[0])

static unsigned char stream[STREAM_CAP];
static unsigned char pat[STREAM_CAP];         /* made-up payload bytes, by stream position */
static unsigned char rbuf[CANARY + RBUF_CAP]; /* a receive buffer ends where this array ends */
static char dir[64];

/* The state of one input's run. */
static struct run {
    enum ipk__framing fr;
    size_t max, slen;     /* max=; the stream's length */
    ipk_chan *c, *d;      /* the receiving channel; the writer (NULL once closed) */
    int wfd, wdone, fifo; /* the writer's descriptor; the writer is gone (EOF comes) */
    int close_mode;       /* 0: ipk_close, 1: ipk_shutdown then ipk_close at the end */
    size_t written, dpos; /* bytes written; bytes delivered (messages received or released) */
    int held, broken, waits;
    const unsigned char *hp; /* the held message: where; its length, place and end in the stream */
    size_t hlen, hoff, hend;
} R;

static void cleanup(void)
{
    rmdir(dir);
}

static void init(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ipkfz-stream-XXXXXX", t && strlen(t) < 24 ? t : "/tmp");
    assert(mkdtemp(dir) != NULL);
    atexit(cleanup);
    signal(SIGPIPE, SIG_IGN);
    /* A made-up payload byte is a function of its stream position, never a newline. */
    for (size_t i = 0; i < STREAM_CAP; i++) {
        pat[i] = (unsigned char)((i * 2654435761u) >> 13);
        pat[i] = pat[i] == '\n' ? 'N' : pat[i];
    }
}

static void put(const void *p, size_t n)
{
    if (n > STREAM_CAP - R.slen)
        n = STREAM_CAP - R.slen;
    memcpy(stream + R.slen, p, n);
    R.slen += n;
}

static void put_pattern(size_t n)
{
    put(pat + R.slen, n);
}

static void put_len(size_t len)
{
    unsigned char h[IPK__HDR_LEN];
    ipk__codec_put_len(h, len);
    put(h, sizeof h);
}

/* The stream the peer writes: up to 15 segments. */
static void build_stream(rd *r)
{
    R.slen = 0;
    unsigned nseg = rd8(r) % 16;
    for (unsigned s = 0; s < nseg; s++) {
        unsigned k = rd8(r);
        size_t n;
        switch (k & 3) {
        case 0: /* bytes of the input */
        case 3:
            n = rd8(r);
            n = n < r->n ? n : r->n;
            put(r->p, n);
            r->p += n;
            r->n -= n;
            break;
        case 1: /* a frame around bytes of the input */
            n = rd8(r);
            n = n < r->n ? n : r->n;
            if (R.fr == IPK__FR_LEN)
                put_len(n);
            put(r->p, n);
            r->p += n;
            r->n -= n;
            if (R.fr == IPK__FR_LINE)
                put("\n", 1);
            break;
        default: { /* a made-up frame: its size, a lie in its header, its payload cut */
            size_t len;
            switch ((k >> 2) & 3) {
            case 0:
                len = rd8(r);
                break;
            case 1:
                len = rd16(r);
                break;
            case 2: /* around 128 KiB, where peek reads a frame to its end */
                len = ((size_t)96 << 10) + rd16(r);
                break;
            default:
                len = (size_t)rd8(r) * 4096 + rd16(r) % 4096;
                break;
            }
            size_t body = (k & 0x10) ? len * rd8(r) / 256 : len;
            if (R.fr == IPK__FR_LEN)
                put_len((k & 0x20) ? rd32(r) : len);
            put_pattern(body);
            if (R.fr == IPK__FR_LINE && !(k & 0x10))
                put("\n", 1);
            break;
        }
        }
    }
}

/* What the next receive must return (peek: with no buffer limit); *f: the message. */
static enum outcome expect(int peek, size_t cap, ipk__frame *f)
{
    const unsigned char *s = stream + R.dpos;
    size_t rem = R.written - R.dpos;
    int eof = R.wdone;
    int d;
    switch (R.fr) {
    case IPK__FR_RAW:
        if (!peek && cap == 0)
            return O_INVAL;
        *f = (ipk__frame){0, rem, rem};
        return rem > 0 ? O_RAW : eof ? O_EOF : O_WAIT;
    case IPK__FR_LINE:
        d = ipk__codec_decode(R.fr, s, rem, R.max, eof, f);
        if (d < 0)
            return O_PROTO;
        if (d == 0)
            return eof ? O_EOF : O_WAIT;
        return !peek && f->len > cap ? O_MSGSIZE : O_MSG;
    case IPK__FR_LEN:
        break;
    }
    d = ipk__codec_decode(R.fr, s, rem, R.max, eof, f);
    if (d < 0)
        return O_PROTO;
    if (rem < IPK__HDR_LEN)
        return !eof ? O_WAIT : rem == 0 ? O_EOF : O_PROTO;
    if (!peek && f->len > cap)
        return O_MSGSIZE; /* said as soon as the header is in, whole payload or not */
    if (d == 1)
        return O_MSG;
    return eof ? O_PROTO : O_WAIT;
}

/* The timeout of a receive: 0, 1 ms (while the budget lasts: only expiries count), forever
 * once the writer is gone (EOF is certain). */
static int pick_timeout(unsigned t, enum outcome o)
{
    t %= 3;
    if (t == 2 && R.wdone)
        return -1;
    if (t >= 1 && (o != O_WAIT || R.waits < MAX_WAITS)) {
        if (o == O_WAIT)
            R.waits++;
        return 1;
    }
    return 0;
}

/* A receive's or peek's result, for an outcome that is not a message. */
static void check_other(long n, enum outcome o, int timeout, size_t need)
{
    switch (o) {
    case O_MSGSIZE:
        assert(n == IPK_EMSGSIZE && ipk_needed(R.c) == need);
        break;
    case O_WAIT:
        assert(n == (timeout == 0 ? -EAGAIN : IPK_ETIMEDOUT));
        break;
    case O_EOF:
        assert(n == IPK_EOF);
        break;
    case O_PROTO:
        assert(n == IPK_EPROTO);
        R.broken = 1;
        break;
    case O_INVAL:
        assert(n == -EINVAL);
        break;
    default:
        abort();
    }
}

static void check_held(void)
{
    assert(memcmp(R.hp, stream + R.hoff, R.hlen) == 0);
}

static void do_recv(unsigned capmode, unsigned tmode, unsigned extra)
{
    ipk__frame f;
    expect(1, 0, &f);
    size_t len = f.len, cap; /* the next message's (or the declared) length */
    switch (capmode % 8) {
    case 0:
        cap = 0;
        break;
    case 1:
        cap = len;
        break;
    case 2:
        cap = len ? len - 1 : 0;
        break;
    case 3:
        cap = len + 1;
        break;
    case 4:
        cap = extra & 0xff;
        break;
    case 5:
        cap = extra;
        break;
    case 6:
        cap = RBUF_CAP;
        break;
    default:
        cap = ((size_t)16 << 10) + (extra & 0xff) - 128;
        break;
    }
    if (cap > RBUF_CAP)
        cap = RBUF_CAP;
    if (R.broken || R.held) {
        long n = ipk_recv(R.c, rbuf + sizeof rbuf - cap, cap, 0);
        assert(n == (R.broken ? IPK_ECLOSED : -EINVAL));
        if (R.held)
            check_held();
        return;
    }
    enum outcome o = expect(0, cap, &f);
    int t = pick_timeout(tmode, o);
    unsigned char *buf = rbuf + sizeof rbuf - cap;
    memset(buf - CANARY, 0xa5, CANARY);
    long n = ipk_recv(R.c, buf, cap, t);
    for (int i = 0; i < CANARY; i++)
        assert(buf[i - CANARY] == 0xa5);
    if (o == O_MSG) {
        assert(n == (long)f.len && memcmp(buf, stream + R.dpos + f.off, f.len) == 0);
        R.dpos += f.end;
    } else if (o == O_RAW) {
        assert(n >= 1 && (size_t)n <= cap && (size_t)n <= f.len);
        assert(memcmp(buf, stream + R.dpos, (size_t)n) == 0);
        R.dpos += (size_t)n;
    } else {
        check_other(n, o, t, f.len);
    }
}

static void do_peek(unsigned tmode, int twice)
{
    const void *p = NULL;
    if (R.broken) {
        assert(ipk_peek(R.c, &p, 0) == IPK_ECLOSED);
        return;
    }
    if (R.held) {
        long n = ipk_peek(R.c, &p, 0);
        assert(n == (long)R.hlen && p == R.hp);
        check_held();
        return;
    }
    ipk__frame f;
    enum outcome o = expect(1, 0, &f);
    int t = pick_timeout(tmode, o);
    long n = ipk_peek(R.c, &p, t);
    if (o == O_MSG || o == O_RAW) {
        assert(n >= 0 && (size_t)n <= f.len && (o == O_RAW ? n >= 1 : (size_t)n == f.len));
        assert(memcmp(p, stream + R.dpos + f.off, (size_t)n) == 0);
        R.held = 1;
        R.hp = p;
        R.hlen = (size_t)n;
        R.hoff = R.dpos + f.off;
        R.hend = R.dpos + (o == O_RAW ? (size_t)n : f.end);
        assert(ipk_pending(R.c) == 1);
        if (twice) {
            const void *q = NULL;
            assert(ipk_peek(R.c, &q, 0) == n && q == p);
        }
        check_held();
    } else {
        check_other(n, o, t, 0);
    }
}

static void do_release(void)
{
    int r = ipk_release(R.c);
    if (R.broken) {
        assert(r == IPK_ECLOSED);
    } else if (!R.held) {
        assert(r == -EINVAL);
    } else {
        assert(r == 0);
        R.held = 0;
        R.dpos = R.hend;
    }
}

static void do_pending(void)
{
    int p = ipk_pending(R.c);
    if (R.broken)
        return;
    ipk__frame f;
    if (R.held)
        assert(p == 1);
    else if (expect(1, 0, &f) == O_WAIT)
        assert(p == 0);
}

/* Writes up to n more bytes of the stream without blocking; how many went. */
static size_t do_write(size_t n)
{
    if (R.wdone || R.written == R.slen)
        return 0;
    if (n > R.slen - R.written)
        n = R.slen - R.written;
    ssize_t w = write(R.wfd, stream + R.written, n);
    if (w < 0) {
        assert(errno == EAGAIN);
        return 0;
    }
    R.written += (size_t)w;
    return (size_t)w;
}

/* The writer goes: what it wrote is the whole stream. */
static void end_writer(void)
{
    if (R.wdone)
        return;
    if (R.close_mode) {
        assert(ipk_shutdown(R.d, 0) == 0);
    } else {
        assert(ipk_close(R.d) == 0);
        R.d = NULL;
    }
    R.wdone = 1;
}

static void open_pair(unsigned b0, unsigned b1)
{
    static const char *const fname[] = {"len", "raw", "line"};
    char url[256], q[128], path[96];
    R.fifo = b0 & 1;
    R.fr = (enum ipk__framing)((b0 >> 1) % 4 % 3);
    R.close_mode = (b0 >> 3) & 1;
    R.max = IPK__DEFAULT_MAX;
    int n = snprintf(q, sizeof q, "framing=%s", fname[R.fr]);
    if (b1 / NMAX % 2 == 0) {
        R.max = maxes[b1 % NMAX];
        n += snprintf(q + n, sizeof q - (size_t)n, "&max=%zu", R.max);
    }
    snprintf(path, sizeof path, "%s/%s", dir, R.fifo ? "f" : "s");
    if (R.fifo) {
        /* keep=0: the FIFO goes at close even with bytes unread in it */
        snprintf(url, sizeof url, "fifo:%s?%s&keep=0%s", path, q,
                 (b0 & 0x10) ? "&pipesz=65536" : "");
        assert(ipk_listen(&R.c, url, NULL) == 0);
        snprintf(url, sizeof url, "fifo:%s", path);
        assert(ipk_dial(&R.d, url, NULL) == 0);
        R.wfd = R.d->wfd; /* a writer has no descriptor to poll: ipk_fd() is for readers */
    } else {
        ipk_chan *l;
        snprintf(url, sizeof url, "unix:%s?%s&flush=%s", path, q, (b0 & 0x10) ? "0" : "200");
        assert(ipk_listen(&l, url, NULL) == 0);
        snprintf(url, sizeof url, "unix:%s?flush=0", path);
        assert(ipk_dial(&R.d, url, NULL) == 0);
        assert(ipk_accept(l, &R.c, 10000) == 0);
        assert(ipk_close(l) == 0);
        R.wfd = ipk_fd(R.d);
    }
    assert(R.wfd >= 0);
    assert(fcntl(R.wfd, F_SETFL, fcntl(R.wfd, F_GETFL) | O_NONBLOCK) == 0);
}

/* After the schedule: the rest of the stream written and received to its end. */
static void drain(unsigned b0)
{
    for (unsigned i = 0;; i++) {
        assert(i < 100000); /* no progress: a receive that never ends the stream */
        if (!R.wdone) {
            while (do_write(SIZE_MAX) > 0)
                ;
            if (R.written == R.slen || R.broken)
                end_writer();
        }
        if (R.held) {
            do_release();
            continue;
        }
        ipk__frame f;
        enum outcome o = expect(1, 0, &f);
        if (o == O_EOF || o == O_PROTO) {
            /* The end, twice: IPK_EOF stays; IPK_EPROTO closes the channel. */
            do_recv(6, 2, 0);
            do_recv(6, 2, 0);
            do_peek(2, 0);
            return;
        }
        if (R.broken)
            return;
        if (o == O_WAIT && !R.wdone) {
            do_peek(0, 0); /* reads what waits, so that the writer has room again */
            continue;
        }
        /* A message: received exactly (a buffer of its size), or peeked and released. */
        if ((i + b0) % 2 == 0 && f.len <= RBUF_CAP)
            do_recv(1, 2, 0);
        else
            do_peek(2, 0);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    if (dir[0] == 0)
        init();
    memset(&R, 0, sizeof R);
    rd r = {data + 2, size - 2};
    open_pair(data[0], data[1]);
    build_stream(&r);
    for (int op = 0; op < MAX_OPS && r.n > 0; op++) {
        unsigned o = rd8(&r);
        switch (o & 15) {
        case 0:
        case 1:
        case 2: { /* write a piece */
            size_t n;
            switch (o >> 4 & 3) {
            case 0:
                n = rd8(&r);
                break;
            case 1:
                n = rd16(&r);
                break;
            case 2:
                n = 1 + (o >> 6);
                break;
            default:
                n = SIZE_MAX;
                break;
            }
            do_write(n);
            break;
        }
        case 3:
        case 4:
        case 5:
        case 6: { /* the buffer: its size (and a number for it), the timeout */
            unsigned a = rd8(&r);
            unsigned extra = (a & 7) == 4 || (a & 7) == 5 || (a & 7) == 7 ? rd16(&r) : 0;
            do_recv(a & 7, a >> 3 & 3, extra);
            break;
        }
        case 7:
        case 8:
        case 9:
            do_peek(o >> 4 & 3, o >> 6 & 1);
            break;
        case 10:
        case 11:
            do_release();
            break;
        case 12:
            do_pending();
            break;
        case 13:
            if ((o >> 4) == 0)
                end_writer();
            else
                do_pending();
            break;
        default: /* a receive into a buffer of the next message's size, at once */
            do_recv(1 + (o >> 4) % 3, 0, 0);
            break;
        }
    }
    drain(data[0]);
    if (R.d != NULL)
        assert(ipk_close(R.d) == 0);
    assert(ipk_close(R.c) == 0);
    return 0;
}
