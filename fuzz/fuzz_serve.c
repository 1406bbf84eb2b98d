/*
 * fuzz_serve.c - what a client can send to a server's worker (src/serve): frames, half frames,
 * oversized declarations, garbage, in any cut, then a half-close or a reset.
 *
 * The first input starts a real server (ipk_server_run, one worker, the echo handler) in a
 * child process; it listens on five Unix sockets: framing=len and framing=line, each with
 * max=64 and with the default maximum, and a unixpacket one with max=64. Each input then
 * connects to one of them (byte 0), writes the rest in the pieces it says (a length byte, then
 * that many bytes; a packet each for unixpacket), and either half-closes and reads the replies
 * to the end, or resets the connection without reading.
 *
 * Checked, besides no hang: the worker never dies (a counter in shared memory counts worker
 * starts; a crash would make the master start another), and the replies are exactly the
 * messages the library's own codec finds in what was sent, in order, each echoed once — all
 * of them when the bytes are a valid stream, a prefix of them when the stream ends in a frame
 * over the maximum (the worker closes there). Coverage: libFuzzer sees the codec in this
 * process, not the worker's; the worker runs the same codec (a crash there shows as a restart
 * or a missing reply).
 */
#define _GNU_SOURCE 1
#include "codec.h"
#include "ipckit.h"
#include "ipckit/serve.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define NL 5
static const struct {
    const char *scheme, *query;
    enum ipk__framing fr;
    size_t max;
    int packet;
} lis[NL] = {
    {"unix", "framing=len&max=64", IPK__FR_LEN, 64, 0},
    {"unix", "framing=line&max=64", IPK__FR_LINE, 64, 0},
    {"unix", "framing=len", IPK__FR_LEN, 16 << 20, 0},
    {"unix", "framing=line", IPK__FR_LINE, 16 << 20, 0},
    {"unixpacket", "max=64", IPK__FR_RAW, 64, 1},
};

static char paths[NL][108]; /* sun_path */
static pid_t server = -1;
static ipk_server *srv;
static _Atomic int *starts; /* worker starts, shared with the server's processes */

static int on_start(int worker, void *arg)
{
    (void)worker;
    (void)arg;
    atomic_fetch_add(starts, 1);
    return 0;
}

static void stop_server(void)
{
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
    }
    ipk_server_free(srv);
    for (int i = 0; i < NL; i++)
        unlink(paths[i]);
}

static void start_server(void)
{
    starts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert(starts != MAP_FAILED);
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    assert(ipk_server_new(&srv) == 0);
    ipk_server *s = srv;
    assert(ipk_server_set(s, "workers", "1") == 0);
    assert(ipk_server_set(s, "log", "/dev/null") == 0);
    for (int i = 0; i < NL; i++) {
        char url[1024];
        snprintf(paths[i], sizeof paths[i], "%s/ipkfz-%d-%d", dir, (int)getpid(), i);
        unlink(paths[i]);
        snprintf(url, sizeof url, "%s:%s?%s", lis[i].scheme, paths[i], lis[i].query);
        assert(ipk_server_listen(s, url, NULL) == 0);
    }
    ipk_serve_handlers h = {.on_worker_start = on_start};
    ipk_server_handlers(s, &h, NULL);
    pid_t parent = getpid();
    server = fork();
    assert(server >= 0);
    if (server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        _exit(ipk_server_run(s) == 0 ? 0 : 1);
    }
    /* Freed at exit only: closing the listeners removes the socket files the child serves. */
    atexit(stop_server);
    while (atomic_load(starts) == 0)
        usleep(1000);
}

/* Reads everything until EOF (or a reset); the worker must finish within 10 s. */
static size_t read_all(int fd, unsigned char *buf, size_t cap, int packet, size_t *lens,
                       size_t *npk)
{
    size_t n = 0;
    *npk = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 10000);
        if (r < 0 && errno == EINTR)
            continue;   /* libFuzzer's SIGALRM (its -timeout check) */
        assert(r == 1); /* a worker that neither answers nor closes is a hang */
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return n;
        if (packet && *npk < 4096)
            lens[(*npk)++] = (size_t)k;
        n += (size_t)k;
        assert(n < cap);
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    if (server < 0)
        start_server();
    int li = data[0] % NL, reset = (data[0] & 0x80) != 0;
    int fd = socket(AF_UNIX, (lis[li].packet ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    assert(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", paths[li]);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror(a.sun_path);
        abort();
    }
    /* The stream as sent, and the packets' lengths. */
    static unsigned char sent[8192];
    size_t ns = 0, pk[4096], npk = 0;
    for (size_t i = 1; i < size;) {
        size_t len = data[i++];
        if (len > size - i)
            len = size - i;
        if (len == 0 && !lis[li].packet)
            continue;
        ssize_t k = send(fd, data + i, len, MSG_NOSIGNAL);
        if (k < 0)
            break; /* the worker closed (a frame over the maximum): nothing more is read */
        assert((size_t)k == len);
        memcpy(sent + ns, data + i, len);
        ns += len;
        pk[npk++] = len;
        i += len;
    }
    if (reset) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd);
        return 0;
    }
    shutdown(fd, SHUT_WR);
    static unsigned char got[1 << 16];
    size_t rl[4096], nr;
    size_t n = read_all(fd, got, sizeof got, lis[li].packet, rl, &nr);
    close(fd);
    assert(atomic_load(starts) == 1);
    /* What the replies must be: each message echoed, framed the same way. */
    static unsigned char want[1 << 16];
    size_t nw = 0, pos = 0;
    int whole = 1;
    if (lis[li].packet) {
        /* The worker closes at a packet over the maximum or an empty one (it reads as the end,
         * as for the library's unixpacket), and when a reply finds this socket's receive queue
         * full (it does not buffer packets: a client that sends ~200 small requests before
         * reading any reply is closed; RELIABILITY.md). Closing with packets unread resets the
         * socket, and a reset may hide replies not yet read: then only a prefix is checked.
         * Up to 32 packets of at most 64 bytes never fill the queue. */
        size_t ok = 0;
        while (ok < npk && pk[ok] > 0 && pk[ok] <= lis[li].max)
            ok++;
        assert(nr <= ok && (ok < npk || npk > 32 || nr == npk));
        for (size_t i = 0; i < nr; i++)
            assert(rl[i] == pk[i]);
        return 0;
    }
    for (;;) {
        ipk__frame f;
        int r = ipk__codec_decode(lis[li].fr, sent + pos, ns - pos, lis[li].max, 1, &f);
        if (r < 0)
            whole = 0;
        if (r <= 0)
            break;
        size_t pre, post;
        const char *postp;
        assert(ipk__codec_encode(lis[li].fr, sent + pos + f.off, f.len, want + nw, &pre, &postp,
                                 &post) == 0);
        memcpy(want + nw + pre, sent + pos + f.off, f.len);
        memcpy(want + nw + pre + f.len, postp, post);
        nw += pre + f.len + post;
        pos += f.end;
    }
    if (whole)
        assert(n == nw && memcmp(got, want, n) == 0);
    else
        assert(n <= nw && memcmp(got, want, n) == 0);
    return 0;
}
