/*
 * fuzz_file.c - a file: log that another process wrote, through the public API.
 *
 * Input: byte 0 picks the options (from=start|end, a small or the default max,
 * whether the file starts with a valid log header); then the file's first image as a list of
 * pieces: raw bytes, valid records, records with one header or payload byte changed, committed
 * headers with any length, torn records (the commit word still complemented). The rest is a
 * schedule of channel operations (open a reader or a writer, recv, pending, send, close)
 * interleaved with what another process may do to the file meanwhile: append pieces, overwrite
 * bytes, truncate. The file is /dev/shm/ipkfuzz-file-PID (tmpfs: inotify works, no disk).
 *
 * Not fuzzed: waiting, and mode=whole. A receive that finds nothing, ipk_fd and every
 * mode=whole channel make an inotify instance, and closing one costs milliseconds (an RCU grace
 * period in the kernel): a log is received from only when ipk_pending says a record is there.
 * mode=whole has no format to parse (the file's bytes are the message); tests/test_file.c
 * covers it.
 *
 * Checked: no fault, no sanitizer report, no hang (libFuzzer -timeout); a receive returns at
 * most its buffer.
 */
#define _GNU_SOURCE 1
#include "input.h"
#include "ipckit.h"

#include <assert.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* CRC32C, bitwise: the format's checksum, computed independently of file.c. */
static uint32_t crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = ~0u;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static char path[64];
static int fd = -1;

static void cleanup(void)
{
    unlink(path);
}

static void append(const void *p, size_t n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    assert(end >= 0 && pwrite(fd, p, n, end) == (ssize_t)n);
}

/* Appends one piece of file image chosen by the input. */
static void piece(rd *r)
{
    unsigned char b[16 + 256];
    unsigned kind = rd8(r) % 6, len = rd8(r);
    for (unsigned i = 0; i < len; i++)
        b[16 + i] = (unsigned char)rd8(r);
    if (kind == 0) { /* raw bytes */
        append(b + 16, len);
        return;
    }
    put32(b, 0x524b5049u);
    put32(b + 4, kind == 3 ? rd32(r) : len);
    put32(b + 8, crc32c(b + 16, len));
    put32(b + 12, crc32c(b, 12));
    switch (kind) {
    case 2: /* one byte changed, header or payload */
        b[rd8(r) % (16 + len)] ^= (unsigned char)(1 + rd8(r) % 255);
        break;
    case 4: /* torn: not committed yet, and maybe short */
        put32(b + 12, ~crc32c(b, 12));
        len = len ? rd8(r) % len : 0;
        break;
    case 5: /* committed, cut short by the end of the file */
        len = len ? rd8(r) % len : 0;
        break;
    default:
        break;
    }
    append(b, 16 + len);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    if (fd < 0) {
        snprintf(path, sizeof path, "/dev/shm/ipkfuzz-file-%d", (int)getpid());
        atexit(cleanup);
    }
    rd r = {data, size};
    unsigned b = rd8(&r);
    if (fd >= 0)
        close(fd);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert(fd >= 0);
    if (b & 1) {
        static const unsigned char hdr[16] = {'I', 'P', 'K', 'F', 'L', 'O', 'G', 1};
        append(hdr, (b & 0x80) ? 16 : (b >> 4) % 16);
    }
    unsigned np = rd8(&r) % 8;
    for (unsigned i = 0; i < np; i++)
        piece(&r);
    char url[160];
    snprintf(url, sizeof url, "file:%s?from=%s%s", path, b & 4 ? "end" : "start",
             b & 8 ? "&max=64" : "");
    ipk_chan *ch[3] = {NULL, NULL, NULL};
    static unsigned char msg[512], buf[512];
    for (unsigned steps = 0; r.n > 0 && steps < 128; steps++) {
        unsigned op = rd8(&r), i = (op >> 4) % 3;
        switch (op & 15) {
        case 0: /* a channel opens (dial: the file exists; listen: it is not ours to remove) */
        case 1:
            if (ch[i] == NULL)
                (void)(op & 1 ? ipk_listen(&ch[i], url, NULL) : ipk_dial(&ch[i], url, NULL));
            break;
        case 2:
        case 3: {
            size_t cap = op & 1 ? rd8(&r) : sizeof buf;
            /* Only when something is there: a receive that finds nothing
             * makes the channel's inotify instance, and closing one costs milliseconds. */
            if (ch[i] != NULL && ipk_pending(ch[i]) == 1) {
                long n = ipk_recv(ch[i], buf, cap, 0);
                assert(n < 0 || (size_t)n <= cap);
            }
            break;
        }
        case 4:
            if (ch[i] != NULL) {
                (void)ipk_pending(ch[i]);
                (void)ipk_undelivered(ch[i]);
            }
            break;
        case 5: {
            size_t len = rd8(&r) * (op & 0x40 ? 2 : 1);
            memset(msg, (int)len, len);
            if (ch[i] != NULL)
                (void)ipk_send(ch[i], msg, len, 0);
            break;
        }
        case 6:
            if (ch[i] != NULL)
                (void)ipk_close(ch[i]);
            ch[i] = NULL;
            break;
        case 7:
        case 8: /* another process appends */
            piece(&r);
            break;
        case 9: { /* another process overwrites a byte */
            off_t end = lseek(fd, 0, SEEK_END);
            unsigned char v = (unsigned char)rd8(&r);
            uint32_t at = rd32(&r);
            if (end > 0)
                assert(pwrite(fd, &v, 1, (off_t)(at % (uint32_t)end)) == 1);
            break;
        }
        case 10: { /* another process truncates */
            off_t end = lseek(fd, 0, SEEK_END);
            uint32_t at = rd32(&r);
            assert(ftruncate(fd, end > 0 ? (off_t)(at % (uint32_t)end) : 0) == 0);
            break;
        }
        default: /* an empty message */
            if (ch[i] != NULL)
                (void)ipk_send(ch[i], msg, 0, 0);
            break;
        }
    }
    for (int i = 0; i < 3; i++)
        if (ch[i] != NULL)
            (void)ipk_close(ch[i]);
    char info[1024];
    (void)ipk_info(url, info, sizeof info);
    return 0;
}
