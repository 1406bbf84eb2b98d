/*
 * fuzz_frame.c - the stream codec (src/core/codec.c) against arbitrary bytes from a peer, called
 * directly: no channel, no descriptor. The first input byte picks the framing (% 3), the maximum
 * (1 B .. 32 KiB, from the high nibble) and whether the bytes arrive whole or in pieces (bit 3);
 * the rest is what the peer wrote before closing. Checked for every frame: it lies inside the
 * buffer and respects the maximum; every shorter prefix of it asks for more bytes (and for more
 * than it has); re-encoding its payload and decoding that gives the same payload. The stream
 * ends at its end, inside a frame, or at an IPK_EPROTO the codec saw from bytes alone.
 */
#include "codec.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Encodes the payload again and decodes it: the same bytes come back as one frame. */
static void round_trip(enum ipk__framing fr, const unsigned char *p, size_t len, size_t max)
{
    static unsigned char b[(64 << 10) + 8];
    size_t pre, post;
    const char *postp;
    if (len + 8 > sizeof b || ipk__codec_encode(fr, p, len, b, &pre, &postp, &post) != 0)
        return;
    if (len)
        memcpy(b + pre, p, len);
    memcpy(b + pre + len, postp, post);
    ipk__frame f;
    size_t n = pre + len + post;
    int r = ipk__codec_decode(fr, b, n, max, 0, &f);
    if (fr == IPK__FR_RAW && len == 0) {
        assert(r == 0);
        return;
    }
    assert(r == 1 && f.len == len && f.end == n && memcmp(b + f.off, p, len) == 0);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 60000)
        return 0;
    enum ipk__framing fr = (enum ipk__framing)(data[0] % 3);
    size_t max = (size_t)1 << (data[0] >> 4);
    int pieces = (data[0] & 8) != 0;
    const unsigned char *s = data + 1;
    size_t n = size - 1, pos = 0;
    /* In pieces, the receiver sees only what has "arrived": 1, 2, 3... bytes more each time. */
    size_t arrived = pieces ? 0 : n;
    for (size_t step = 1; pos < n || (pos == n && arrived < n);) {
        if (pieces && arrived < n)
            arrived = arrived + step > n ? n : arrived + step++;
        int eof = arrived == n;
        ipk__frame f;
        int r = ipk__codec_decode(fr, s + pos, arrived - pos, max, eof, &f);
        if (r < 0) {
            assert(r == IPK_EPROTO && f.len > max && fr != IPK__FR_RAW);
            return 0;
        }
        if (r == 0) {
            assert(f.end > arrived - pos);
            if (eof)
                return 0; /* the stream ended inside a frame (or at its end) */
            continue;
        }
        assert(f.off <= f.end && f.off + f.len <= f.end && f.end <= arrived - pos);
        assert(fr == IPK__FR_RAW || f.len <= max);
        if (fr != IPK__FR_RAW) {
            /* Every shorter prefix needs more, never reports a frame. */
            size_t ks[] = {0, f.end / 2, f.end - 1};
            for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
                ipk__frame g;
                int q = ipk__codec_decode(fr, s + pos, ks[i], max, 0, &g);
                assert(q == 0 && g.end > ks[i]);
            }
        }
        round_trip(fr, s + pos + f.off, f.len, max);
        pos += f.end;
    }
    return 0;
}
