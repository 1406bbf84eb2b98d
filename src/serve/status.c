/*
 * status.c - the status address: the master answers every connection to it with a JSON
 * snapshot of the live counters and closes it, so `ipckit info --status ADDR`, socat or a
 * monitoring script reads the server's state without a protocol.
 *
 * The counters live in the mapping the workers share with the master (server.h, srv_stats):
 * the master only reads them here, with relaxed loads, so a snapshot is not one instant of the
 * whole server (a message may be counted in but not yet out), but every figure is one a worker
 * did write.
 */
#include "server.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct jbuf {
    char *b;
    size_t cap, len;
} jbuf;

static void put(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(jbuf *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->len < j->cap ? j->b + j->len : NULL, j->len < j->cap ? j->cap - j->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n > 0)
        j->len += (size_t)n;
}

static long get(const _Atomic long *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* The counters every slot has and the total sums (the master's own figures are apart). */
#define COUNTERS(X)                                                                                \
    X(conns, "conns")                                                                              \
    X(conns_total, "conns_total")                                                                  \
    X(msgs_in, "msgs_in")                                                                          \
    X(msgs_out, "msgs_out")                                                                        \
    X(errs, "errors")                                                                              \
    X(refused, "refused")                                                                          \
    X(timeouts, "timeouts")                                                                        \
    X(emfile, "emfile")                                                                            \
    X(respawns, "respawns")

size_t srv_status_json(const ipk_server *s, char *b, size_t cap)
{
    jbuf j = {b, cap, 0};
    if (cap)
        b[0] = '\0';
    int nw = s->workers < SRV_MAX_WORKERS ? s->workers : SRV_MAX_WORKERS;
    put(&j, "{\"master\":%d,\"workers\":[", (int)s->master_pid);
    struct {
#define FIELD(f, name) long f;
        COUNTERS(FIELD)
#undef FIELD
    } tot = {0};
    for (int i = 0; i < nw; i++) {
        const srv_stats *st = &s->stats[i];
        put(&j, "%s{\"worker\":%d,\"pid\":%ld", i ? "," : "", i + 1, get(&st->pid));
#define SLOT(f, name)                                                                              \
    tot.f += get(&st->f);                                                                          \
    put(&j, ",\"" name "\":%ld", get(&st->f));
        COUNTERS(SLOT)
#undef SLOT
        put(&j, "}");
    }
    put(&j, "],\"total\":{");
    const char *sep = "";
#define TOTAL(f, name)                                                                             \
    put(&j, "%s\"" name "\":%ld", sep, tot.f);                                                     \
    sep = ",";
    COUNTERS(TOTAL)
#undef TOTAL
    put(&j, "}}\n");
    return j.len;
}

void srv_status_serve(ipk_server *s)
{
    for (;;) {
        int fd = accept4(s->status.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or out of descriptors: the client waits, the master goes on */
        char small[8192], *b = small;
        size_t n = srv_status_json(s, small, sizeof small);
        if (n >= sizeof small && (b = malloc(n + 1)) != NULL)
            srv_status_json(s, b, n + 1);
        else if (n >= sizeof small)
            n = 0; /* out of memory: an empty answer */
        /* The master must not block on a client that does not read: the snapshot goes in one
         * non-blocking send. So that it goes whole, the socket's send buffer is first made to
         * hold it (the kernel grants up to twice net.core.wmem_max, 416 KiB by default; the
         * largest snapshot, SRV_MAX_WORKERS workers with every counter at 19 digits, is
         * about 310 KB, a usual one 150 bytes per worker). Only a lowered wmem_max can still
         * cut it: then the log says so. */
        int want = n > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)n;
        int have = 0;
        socklen_t hl = sizeof have;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &have, &hl) == 0 && have / 2 < want)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
        ssize_t k = n ? send(fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL) : 0;
        if (k >= 0 && (size_t)k < n)
            ipk_serve_log("status: snapshot cut at %zd of %zu bytes (socket buffer; see "
                          "net.core.wmem_max)",
                          k, n);
        if (b != small)
            free(b);
        close(fd);
    }
}
