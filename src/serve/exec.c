/*
 * exec.c - the handlers behind ipk_server_exec(): every worker keeps `/bin/sh -c CMD` running
 * as a coprocess, an exec: channel of the library (pipes, framing, bounded reaping), and hands
 * it every request as it comes, without waiting for the replies to the ones before (pipelining).
 *
 * The coprocess answers each request with exactly one message, in order; so the worker keeps a
 * FIFO of the requests in flight (the connection each came on, held with srv_conn_hold so that
 * it stays valid even if its client goes) and gives the replies, as they arrive, to the
 * requests at its head. Requests taken during a batch of events are staged and written after
 * the batch in one ipk_sendv (one writev); the coprocess's stdout is a descriptor of the
 * worker's loop, read (ipk_recv, timeout 0) until nothing is left. Nothing blocks the loop:
 * when the pipe to the coprocess is full, the rest stays staged, in order, and goes when the
 * pipe takes it (the channel, in the worker's poller, for writability). The FIFO is bounded
 * (EXEC_INFLIGHT requests, EXEC_STAGED bytes not yet written): past that the worker reads no
 * connection (srv_throttle) until the coprocess has caught up to half of it.
 *
 * A coprocess that exits, breaks the framing, answers what nobody asked or does not answer the
 * request at the head of the FIFO within exec_timeout (counted from when it was taken, or from
 * the reply before it, whichever is later) fails every request in flight: each is counted as an
 * error and its connection closed once the replies before it are out, so every affected client
 * sees an error at once instead of waiting for an answer that will not come. The coprocess is
 * closed (EOF on its stdin; TERM, then KILL, if it does not go) and started again for the next
 * request.
 *
 * Queues and datagrams (where a reply cannot wait: srv_conn_hold refuses) are served one at a
 * time, as before pipelining: the requests in flight are answered first, then the job is sent
 * and its reply awaited (up to exec_timeout).
 */
#include "ipk.h"
#include "server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CO_LINGER_MS  200  /* after EOF on its stdin, the coprocess gets this long to exit */
#define EXEC_INFLIGHT 1024 /* requests in flight past which connections are not read */
#define EXEC_STAGED   ((size_t)1 << 20)  /* bytes taken but not yet written, likewise */
#define STAGE_KEEP    ((size_t)64 << 10) /* a larger staging buffer is freed once written */

typedef struct co_req {
    ipk_conn *c; /* held until its reply came */
    size_t off;  /* its bytes in stage while not yet written */
    size_t len;
    double t0; /* when it was taken */
} co_req;

static ipk_server *srv; /* the server, for exec_timeout and the log */
static int wid;         /* this worker */
static ipk_chan *co;    /* this worker's coprocess, NULL until started */
static int co_rw = -1;  /* the watch on its stdout */
static int co_ww = -1;  /* the watch on its stdin, while writes wait for room */
static unsigned char *co_buf;
static size_t co_cap;
static int co_line;              /* the coprocess's framing is line */
static co_req *fifo;             /* a ring of EXEC_INFLIGHT + 1 */
static size_t head, nreq, nsent; /* fifo[head..head+nsent) written, up to nreq taken */
static double last_reply;        /* when the coprocess last answered (or the FIFO began) */
static unsigned char *stage;     /* the bytes of the requests taken, not yet written */
static size_t stage_len, stage_cap;

#define RING  (EXEC_INFLIGHT + 1)
#define AT(i) (&fifo[(head + (i)) % RING])

static void co_readable(void *arg, unsigned events);
static void co_writable(void *arg, unsigned events);

/* The coprocess speaks exec_framing, or the framing of the first connection listener (len
 * unless it says line). */
static const char *co_framing(const ipk_server *s)
{
    if (s->exec_framing >= 0)
        return s->exec_framing == IPK__FR_LINE ? "line" : "len";
    for (size_t i = 0; i < s->nl; i++)
        if (s->l[i].kind == SRV_ACCEPT && !s->l[i].seqpacket)
            return s->l[i].framing == IPK__FR_LINE ? "line" : "len";
    return "len";
}

static int co_start(ipk_server *s, int worker)
{
    /* The query goes after the command (its last '?'), so a '?' in the command is harmless. */
    size_t n = strlen(s->exec_cmd) + 64;
    char *url = malloc(n);
    if (url == NULL)
        return -1;
    /* max: the coprocess takes (and may answer with) as large a message as a client may send. */
    snprintf(url, n, "exec:%s?framing=%s&linger=%d&max=%zu", s->exec_cmd, co_framing(s),
             CO_LINGER_MS, co_cap);
    int r = ipk_dial(&co, url, NULL);
    free(url);
    if (r != 0) {
        ipk_serve_log("worker %d: --exec %s: %s", worker, s->exec_cmd, ipk_errmsg());
        co = NULL;
        return r;
    }
    co_rw = srv_watch_fd(ipk_fd(co), SRV_IN, co_readable, NULL);
    if (co_rw < 0) {
        ipk_serve_log("worker %d: --exec %s: watching its output: %s", worker, s->exec_cmd,
                      ipk_strerror(co_rw));
        ipk_close(co);
        co = NULL;
        return co_rw;
    }
    pid_t pid = 0;
    ipk_peer(co, &pid, NULL, NULL);
    ipk_serve_log("worker %d: handler pid %d", worker, (int)pid);
    return 0;
}

static void co_stop(int worker, const char *why)
{
    if (co == NULL)
        return;
    srv_unwatch(co_rw);
    srv_unwatch(co_ww);
    co_rw = co_ww = -1;
    pid_t pid = 0;
    ipk_peer(co, &pid, NULL, NULL);
    int st = ipk_close(co);
    co = NULL;
    if (why)
        ipk_serve_log("worker %d: handler pid %d %s (status %d): restarting it", worker, (int)pid,
                      why, st);
}

/* Takes the request at the head of the FIFO off it: its connection is released (ok = 1 once its
 * reply is queued; 0: it failed and the connection closes). */
static void co_pop(int ok)
{
    co_req *q = AT(0);
    if (q->c)
        srv_conn_release(q->c, ok);
    head = (head + 1) % RING;
    nreq--;
    nsent--;
}

static void co_unthrottle(void)
{
    if (nreq <= EXEC_INFLIGHT / 2 && stage_len <= EXEC_STAGED / 2)
        srv_throttle(0);
}

/* The coprocess failed: every request in flight fails with it (counted, its connection
 * closed), the coprocess is stopped and started again for the next request. */
static void co_fail(const char *why)
{
    co_stop(wid, why);
    for (size_t i = 0; i < nreq; i++) {
        co_req *q = AT(i);
        if (q->c)
            srv_conn_release(q->c, 0);
        atomic_fetch_add_explicit(&srv->stats[wid - 1].errs, 1, memory_order_relaxed);
    }
    head = nreq = nsent = 0;
    stage_len = 0;
    co_unthrottle();
}

static int co_again(long r)
{
    return r == -EAGAIN || r == IPK_ETIMEDOUT;
}

static const char *co_why(long r)
{
    return r == IPK_ETIMEDOUT ? "did not answer in time"
           : r == IPK_EOF     ? "exited"
                              : ipk_strerror((int)r);
}

/* Writes what is staged (and the rest of a frame the channel holds), as much as the pipe takes
 * now; watches for room while some is left. 0, or -1 when the coprocess failed. */
static int co_write(void)
{
    long r = 0;
    while (nsent < nreq) {
        ipk_iov iov[256];
        size_t k = 0;
        for (; k < 256 && nsent + k < nreq; k++)
            iov[k] = (ipk_iov){stage + AT(nsent + k)->off, AT(nsent + k)->len};
        r = ipk_sendv(co, iov, k, 0);
        if (r < 0)
            break;
        nsent += (size_t)r;
    }
    if (r >= 0)
        r = ipk_flush(co, 0);
    if (r < 0 && !co_again(r)) {
        co_fail(co_why(r));
        return -1;
    }
    if (nsent == nreq) { /* (the rest of a frame begun is the channel's own copy) */
        stage_len = 0;
        if (stage_cap > STAGE_KEEP) { /* a burst's buffer is not kept */
            free(stage);
            stage = NULL;
            stage_cap = 0;
        }
    } else if (AT(nsent)->off > 0) { /* stage keeps only what waits: stage_len is that */
        size_t done = AT(nsent)->off;
        memmove(stage, stage + done, stage_len - done);
        stage_len -= done;
        for (size_t i = nsent; i < nreq; i++)
            AT(i)->off -= done;
    }
    if (nsent == nreq && r == 0) {
        if (co_ww >= 0) {
            srv_unwatch(co_ww);
            co_ww = -1;
        }
    } else if (co_ww < 0 && (co_ww = srv_watch_chan(co, SRV_OUT, co_writable, NULL)) < 0) {
        co_fail("cannot be waited for"); /* not expected: the poller takes a pipe */
        return -1;
    }
    co_unthrottle();
    return 0;
}

static void co_writable(void *arg, unsigned events)
{
    (void)arg;
    (void)events;
    if (co)
        co_write();
}

/* Replies, each to the request at the head of the FIFO: one read of the pipe, then what it
 * brought whole (ipk_pending); the rest, if any, makes the pipe readable again (level-triggered).
 * Reading on to -EAGAIN would cost two more system calls per wake-up (a read and a poll). */
static void co_readable(void *arg, unsigned events)
{
    (void)arg;
    (void)events;
    for (int first = 1; co && (first || ipk_pending(co)); first = 0) {
        long n = ipk_recv(co, co_buf, co_cap, 0);
        if (co_again(n))
            break;
        if (n >= 0 && nsent == 0)
            n = IPK_EPROTO; /* a reply nobody asked for */
        if (n < 0) {
            co_fail(n == IPK_EPROTO && nsent == 0 ? "wrote more replies than requests" : co_why(n));
            return;
        }
        co_req *q = AT(0);
        if (q->c)
            ipk_conn_send(q->c, co_buf, (size_t)n); /* fails if the client went: discarded */
        last_reply = srv_worker_now();
        co_pop(1);
    }
    co_unthrottle();
}

/* A job that cannot wait for its reply (a queue's, a datagram's): the requests in flight are
 * answered first, then this one, synchronously. */
static int co_sync(ipk_conn *c, const void *msg, size_t len)
{
    int ms = srv->exec_ms;
    int r = 0;
    if (nsent < nreq || ipk_flush(co, 0) != 0) {
        ipk_iov iov[1];
        while (r >= 0 && nsent < nreq) {
            iov[0] = (ipk_iov){stage + AT(nsent)->off, AT(nsent)->len};
            r = ipk_send(co, iov[0].base, iov[0].len, ms);
            nsent += r == 0;
        }
        if (r == 0)
            r = ipk_flush(co, ms);
    }
    while (r == 0 && nreq > 0) {
        long n = ipk_recv(co, co_buf, co_cap, ms);
        if (n < 0)
            r = (int)n;
        else {
            if (AT(0)->c)
                ipk_conn_send(AT(0)->c, co_buf, (size_t)n);
            co_pop(1);
        }
    }
    stage_len = 0;
    long n = r == 0 ? ipk_send(co, msg, len, ms) : r;
    n = n == 0 ? ipk_recv(co, co_buf, co_cap, ms) : n;
    if (n < 0) {
        co_fail(co_why(n));
        return -1;
    }
    co_unthrottle();
    r = ipk_conn_send(c, co_buf, (size_t)n);
    return r == IPK_ENOTSUP ? 0 : r; /* a queue's job has nowhere to reply */
}

int srv_exec_start(int worker, void *arg)
{
    srv = arg;
    wid = worker;
    co_cap = 0;
    for (size_t i = 0; i < srv->nl; i++)
        if (srv_max(srv, &srv->l[i]) > co_cap)
            co_cap = srv_max(srv, &srv->l[i]);
    if (co_cap == 0)
        co_cap = 1;
    co_line = strcmp(co_framing(srv), "line") == 0;
    co_buf = malloc(co_cap);
    fifo = malloc(RING * sizeof *fifo);
    if (co_buf == NULL || fifo == NULL)
        return -1;
    return co_start(srv, worker);
}

void srv_exec_stop(int worker, void *arg)
{
    (void)arg;
    co_stop(worker, NULL);
    free(co_buf);
    free(fifo);
    free(stage);
    co_buf = NULL;
    fifo = NULL;
    stage = NULL;
}

int srv_exec_msg(ipk_conn *c, const void *msg, size_t len, void *arg)
{
    ipk_server *s = arg;
    int worker = ipk_conn_worker(c);
    if (co == NULL && co_start(s, worker) != 0)
        return -1;
    /* A request the coprocess's framing cannot carry fails alone, not with those in flight. */
    if (co_line && memchr(msg, '\n', len) != NULL)
        return -1;
    if (srv_conn_hold(c) != 0)
        return co_sync(c, msg, len);
    if (stage_cap - stage_len < len) {
        size_t cap = stage_cap ? stage_cap : 4096;
        while (cap - stage_len < len)
            cap *= 2;
        unsigned char *p = realloc(stage, cap);
        if (p == NULL) {
            srv_conn_release(c, 0);
            return -1;
        }
        stage = p;
        stage_cap = cap;
    }
    if (len)
        memcpy(stage + stage_len, msg, len);
    if (nreq == 0)
        last_reply = srv_worker_now();
    *AT(nreq) = (co_req){.c = c, .off = stage_len, .len = len, .t0 = srv_worker_now()};
    nreq++;
    stage_len += len;
    if (nreq >= EXEC_INFLIGHT || stage_len >= EXEC_STAGED)
        srv_throttle(1);
    return 0;
}

void srv_exec_flush(void)
{
    if (co && nsent < nreq && co_ww < 0)
        co_write();
}

void srv_exec_sweep(double now)
{
    if (co == NULL || nreq == 0)
        return;
    double t0 = AT(0)->t0 > last_reply ? AT(0)->t0 : last_reply;
    if (now - t0 >= srv->exec_ms)
        co_fail(co_why(IPK_ETIMEDOUT));
}
