/*
 * fuzz_frame.c - stream framing against arbitrary bytes from the peer. The first input byte
 * picks the framing and the maximum; the rest is what the peer wrote before closing. Every
 * message returned must respect the maximum and the buffer; the stream must end in IPK_EOF,
 * IPK_EPROTO or IPK_EMSGSIZE (for the small buffer), never a crash or a leak.
 */
#include "ipk.h"
#include "transport.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const ipk__transport fuzz_tr = {
    .scheme = "unix",
    .flags = IPK__TF_STREAM,
    .send = ipk__stream_send,
    .recv = ipk__stream_recv,
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 60000)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    /* The whole input fits the socket buffer, so writing it cannot block. */
    if (write(sv[1], data + 1, size - 1) != (ssize_t)(size - 1)) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    close(sv[1]);
    ipk_chan *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(sv[0]);
        return 0;
    }
    c->tr = &fuzz_tr;
    c->rfd = c->wfd = sv[0];
    c->wkind = IPK__W_SOCK;
    c->framing = (enum ipk__framing)(data[0] % 3);
    c->max = (size_t)1 << (data[0] >> 4); /* 1 B .. 32 KiB */
    c->role = IPK__DIALER;
    c->status = -1;
    c->name = strdup("fuzz");
    ipk__set_nonblock(sv[0]);
    char buf[64 << 10];
    size_t cap = (data[0] & 8) ? 16 : sizeof buf;
    for (int i = 0; i < 100000; i++) {
        long n = ipk_recv(c, buf, cap, 0);
        if (n >= 0) {
            assert((size_t)n <= cap);
            assert(c->framing == IPK__FR_RAW || (size_t)n <= c->max);
            continue;
        }
        if (n == IPK_EMSGSIZE) {
            assert(ipk_needed(c) > cap);
            cap = sizeof buf;
            continue;
        }
        assert(n == IPK_EOF || n == IPK_EPROTO || n == -EINVAL);
        break;
    }
    ipk_close(c);
    return 0;
}
