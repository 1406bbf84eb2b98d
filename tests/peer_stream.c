/*
 * peer_stream.c - a plain program (no ipckit) that speaks ipckit's stream framing: a 4-byte
 * big-endian length, then the payload. The stream tests run it as the other process, which also
 * proves that anything speaking the frame interoperates with ipckit.
 *
 *   peer_stream CONNECT ACTION [ARGS]
 *   CONNECT: tcp HOST PORT | unix PATH | fifo-w PATH | fifo-r PATH | stdio
 *   ACTION:
 *     echo               echo frames back until EOF
 *     send N SIZE        N frames; frame i has SIZE bytes (SIZE -1: i % 2000) of pattern i
 *     sendhold N SIZE    the same, then stay connected and silent
 *     sizes S1,S2,...    one frame of each size, pattern = index
 *     recv N SIZE        receive N frames as `send` makes them and verify; exit 0 if all ok
 *     partial            a header declaring 100 bytes, then 10 bytes, then sleep
 *     oversize LEN       a header declaring LEN bytes, then 16 bytes, then sleep
 *     late MS            sleep MS ms, then send one 5-byte frame "late!"
 *     hold MS FILE       read nothing for MS ms, then receive frames until EOF, verifying frame
 *                        i against pattern i; writes the count to FILE
 *     lines N            framing=line: N lines (see the action), then "tail" with no newline
 *     close              close at once
 *   Exit status: 0 ok, 1 verification failed, 2 usage or connection error.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int rfd = -1, wfd = -1;

static void pattern(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static int read_full(void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(rfd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? 0 : -1;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

static int write_full(const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = write(wfd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int send_frame(const void *p, uint32_t n)
{
    uint32_t h = htonl(n);
    return write_full(&h, 4) || write_full(p, n) ? -1 : 0;
}

/* 1 with *n and *buf (malloc'd) set, 0 at EOF, -1 on error or a frame cut short. */
static int recv_frame(unsigned char **buf, uint32_t *n)
{
    uint32_t h;
    int r = read_full(&h, 4);
    if (r <= 0)
        return r;
    *n = ntohl(h);
    *buf = malloc(*n ? *n : 1);
    if (*buf == NULL || read_full(*buf, *n) != 1)
        return -1;
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int connect_to(int argc, char **argv, int *used)
{
    if (argc < 2)
        return -1;
    const char *how = argv[1];
    if (strcmp(how, "stdio") == 0) {
        rfd = 0, wfd = 1;
        *used = 2;
        return 0;
    }
    if ((strcmp(how, "fifo-w") == 0 || strcmp(how, "fifo-r") == 0) && argc >= 3) {
        int fd = open(argv[2], how[5] == 'w' ? O_WRONLY : O_RDONLY);
        if (fd < 0)
            return -1;
        rfd = wfd = fd;
        *used = 3;
        return 0;
    }
    if (strcmp(how, "unix") == 0 && argc >= 3) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[2]);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            return -1;
        rfd = wfd = fd;
        *used = 3;
        return 0;
    }
    if (strcmp(how, "tcp") == 0 && argc >= 4) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
        if (getaddrinfo(argv[2], argv[3], &hints, &ai) != 0)
            return -1;
        int fd = socket(ai->ai_family, SOCK_STREAM, 0);
        int ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        freeaddrinfo(ai);
        if (!ok)
            return -1;
        rfd = wfd = fd;
        *used = 4;
        return 0;
    }
    return -1;
}

static size_t frame_size(long size, long i)
{
    return size < 0 ? (size_t)(i % 2000) : (size_t)size;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    int used;
    if (connect_to(argc, argv, &used) != 0 || used >= argc) {
        fprintf(stderr, "peer_stream: cannot connect (%s)\n", strerror(errno));
        return 2;
    }
    const char *act = argv[used];
    char **a = argv + used + 1;
    int na = argc - used - 1;
    static unsigned char big[(1 << 20) + 4096];
    if (strcmp(act, "echo") == 0) {
        unsigned char *b;
        uint32_t n;
        int r;
        while ((r = recv_frame(&b, &n)) == 1) {
            int w = send_frame(b, n);
            free(b);
            if (w)
                return 2;
        }
        return r == 0 ? 0 : 1;
    }
    if ((strcmp(act, "send") == 0 || strcmp(act, "sendhold") == 0) && na == 2) {
        long count = atol(a[0]), size = atol(a[1]);
        for (long i = 0; i < count; i++) {
            size_t n = frame_size(size, i);
            pattern(big, n, (uint32_t)i);
            if (send_frame(big, (uint32_t)n))
                return 2;
        }
        while (act[4] == 'h') /* sendhold: the connection stays open and silent */
            pause();
        return 0;
    }
    if (strcmp(act, "sizes") == 0 && na == 1) {
        char *list = a[0], *tok, *save;
        uint32_t i = 0;
        for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
            size_t n = (size_t)atol(tok);
            pattern(big, n, i);
            if (send_frame(big, (uint32_t)n))
                return 2;
        }
        return 0;
    }
    if ((strcmp(act, "recv") == 0 && na == 2) || (strcmp(act, "hold") == 0 && na == 2)) {
        long count = -1, size = -1;
        if (act[0] == 'r')
            count = atol(a[0]), size = atol(a[1]);
        else
            sleep_ms(atol(a[0]));
        long i = 0;
        for (; count < 0 || i < count; i++) {
            unsigned char *b;
            uint32_t n;
            int r = recv_frame(&b, &n);
            if (r == 0 && count < 0)
                break;
            if (r != 1)
                return 1;
            pattern(big, n, (uint32_t)i);
            int ok = (count < 0 || n == frame_size(size, i)) && memcmp(b, big, n) == 0;
            free(b);
            if (!ok) {
                fprintf(stderr, "peer_stream: frame %ld corrupt (%u bytes)\n", i, n);
                return 1;
            }
        }
        if (count < 0) {
            FILE *f = fopen(a[1], "w");
            if (f == NULL || fprintf(f, "%ld\n", i) < 0 || fclose(f) != 0)
                return 2;
        }
        return 0;
    }
    if (strcmp(act, "partial") == 0) {
        uint32_t h = htonl(100);
        write_full(&h, 4);
        write_full("0123456789", 10);
        for (;;)
            pause();
    }
    if (strcmp(act, "oversize") == 0 && na == 1) {
        uint32_t h = htonl((uint32_t)strtoul(a[0], NULL, 0));
        write_full(&h, 4);
        write_full("0123456789abcdef", 16);
        for (;;)
            pause();
    }
    if (strcmp(act, "trickle") == 0) {
        /* Three frames (3, 0 and 300 bytes), written one byte at a time: the reader gets each
         * header and payload in pieces, then the end of the stream. */
        static unsigned char t[3 * 4 + 3 + 300];
        size_t n = 0;
        const uint32_t lens[] = {3, 0, 300};
        for (int f = 0; f < 3; f++) {
            uint32_t h = htonl(lens[f]);
            memcpy(t + n, &h, 4);
            n += 4;
            for (uint32_t i = 0; i < lens[f]; i++) /* byte i of frame f: f * 31 + i */
                t[n++] = (unsigned char)(f * 31 + i);
        }
        for (size_t i = 0; i < n; i++) {
            if (write_full(t + i, 1))
                return 2;
            if (i % 16 == 0)
                sleep_ms(1);
        }
        return 0;
    }
    if (strcmp(act, "lines") == 0 && na == 1) {
        /* framing=line: N lines, line i of (i * 7919) % 300000 bytes, byte j 'a' + (i + j) % 26,
         * each with its newline; then "tail" without one, and the end of the stream. */
        static unsigned char l[300000 + 1];
        long count = atol(a[0]);
        for (long i = 0; i < count; i++) {
            size_t n = (size_t)((i * 7919) % 300000);
            for (size_t j = 0; j < n; j++)
                l[j] = (unsigned char)('a' + (size_t)(i + (long)j) % 26);
            l[n] = '\n';
            if (write_full(l, n + 1))
                return 2;
        }
        return write_full("tail", 4) ? 2 : 0;
    }
    if (strcmp(act, "late") == 0 && na == 1) {
        sleep_ms(atol(a[0]));
        return send_frame("late!", 5) ? 2 : 0;
    }
    if (strcmp(act, "close") == 0)
        return 0;
    fprintf(stderr, "peer_stream: bad action '%s'\n", act);
    return 2;
}
