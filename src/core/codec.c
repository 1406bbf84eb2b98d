/*
 * codec.c - decoding stream frames from a byte buffer (see codec.h). No descriptor, no
 * allocation, no error message: the caller knows the channel or connection it reports on.
 */
#include "codec.h"

#include <string.h>

int ipk__codec_decode_line(const void *buf, size_t n, size_t scanned, size_t max, int eof,
                           ipk__frame *f)
{
    const char *b = buf;
    const char *nl = n > scanned ? memchr(b + scanned, '\n', n - scanned) : NULL;
    f->off = 0;
    if (nl != NULL) {
        f->len = (size_t)(nl - b);
        f->end = f->len + 1;
    } else if (eof && n > 0) {
        f->len = f->end = n; /* a last line without its newline is still a message */
    } else {
        f->len = n;
        f->end = n + 1;
        return n > max ? IPK_EPROTO : 0;
    }
    return f->len > max ? IPK_EPROTO : 1;
}

int ipk__codec_decode(enum ipk__framing fr, const void *buf, size_t n, size_t max, int eof,
                      ipk__frame *f)
{
    switch (fr) {
    case IPK__FR_LINE:
        return ipk__codec_decode_line(buf, n, 0, max, eof, f);
    case IPK__FR_RAW:
        *f = (ipk__frame){0, n, n ? n : 1};
        return n > 0;
    case IPK__FR_LEN:
        break;
    }
    f->off = IPK__HDR_LEN;
    if (n < IPK__HDR_LEN) {
        f->len = 0;
        f->end = IPK__HDR_LEN;
        return 0;
    }
    f->len = ipk__codec_get_len(buf);
    if (f->len > max)
        return IPK_EPROTO; /* decided from the header alone: nothing was allocated for it */
    f->end = IPK__HDR_LEN + f->len;
    return n >= f->end;
}
