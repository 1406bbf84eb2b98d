/*
 * codec.h - stream framing over bytes: pure functions, no descriptors, no channel.
 *
 * The three framings of a byte stream (see stream.c): len (a 4-byte big-endian length, then the
 * payload), line (one message per '\n'-terminated line, the newline not part of it) and raw (the
 * bytes as they come). stream.c drives this codec from a channel's descriptor, the server
 * component (src/serve) from its own event loop, and fuzz/fuzz_frame.c calls it directly.
 *
 * The header helpers are inline: stream.c's hot path must not pay a call per message.
 */
#ifndef IPK_CODEC_H
#define IPK_CODEC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipckit.h"

/* The framing of a stream (also c->framing). */
enum ipk__framing { IPK__FR_LEN = 0, IPK__FR_RAW, IPK__FR_LINE };

#define IPK__HDR_LEN 4 /* bytes of a framing=len header */

/* One decoded frame in a buffer: the payload is buf[off, off + len); the next frame begins at
 * buf[end]. */
typedef struct ipk__frame {
    size_t off;
    size_t len;
    size_t end;
} ipk__frame;

/* Writes the 4-byte big-endian header for a payload of len bytes (len < 2^32). */
static inline void ipk__codec_put_len(unsigned char *h, size_t len)
{
    uint32_t l = (uint32_t)len;
    h[0] = (unsigned char)(l >> 24);
    h[1] = (unsigned char)(l >> 16);
    h[2] = (unsigned char)(l >> 8);
    h[3] = (unsigned char)l;
}

/* The payload length a 4-byte header declares. */
static inline size_t ipk__codec_get_len(const unsigned char *h)
{
    return (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
}

/*
 * Decodes the first frame of buf[0, n) in the given framing, against the largest payload max.
 *   1            a whole frame: *f says where it is;
 *   0            more bytes are needed; f->end is how many the buffer must hold at least before
 *                a frame can be complete (n + 1 when that is not known yet, as for a line);
 *   IPK_EPROTO   the stream can never yield a valid frame here: a header declares more than
 *                max (f->len = the declared length; nothing needs allocating to know it), or a
 *                line is already longer than max (f->len = its bytes so far).
 * eof: no more bytes will come. A last line without its newline is then a message; a cut
 * length frame is still 0 (the caller decides that the stream ended inside a frame).
 * framing=raw: every non-empty buffer is one frame of all its bytes.
 */
int ipk__codec_decode(enum ipk__framing fr, const void *buf, size_t n, size_t max, int eof,
                      ipk__frame *f);

/*
 * framing=line only: the same, but the first `scanned` bytes are known to hold no newline (a
 * caller that reads a long line in pieces need not search the start again).
 */
int ipk__codec_decode_line(const void *buf, size_t n, size_t scanned, size_t max, int eof,
                           ipk__frame *f);

/*
 * What goes around a payload of len bytes in framing fr: the bytes before it (*pre of them,
 * written into hdr) and after it (*post of them, at *postp: the newline of framing=line).
 * Returns 0, -EINVAL for a line message that holds a newline (framing=line cannot carry it), or
 * IPK_EMSGSIZE for a length the 4-byte header cannot state. Inline: a batch send calls it per
 * message.
 */
static inline int ipk__codec_encode(enum ipk__framing fr, const void *msg, size_t len,
                                    unsigned char *hdr, size_t *pre, const char **postp,
                                    size_t *post)
{
    *pre = *post = 0;
    *postp = "\n";
    switch (fr) {
    case IPK__FR_LEN:
        if ((uint64_t)len > UINT32_MAX)
            return IPK_EMSGSIZE;
        ipk__codec_put_len(hdr, len);
        *pre = IPK__HDR_LEN;
        return 0;
    case IPK__FR_LINE:
        if (len && memchr(msg, '\n', len) != NULL)
            return -EINVAL;
        *post = 1;
        return 0;
    case IPK__FR_RAW:
        break;
    }
    return 0;
}

#endif
