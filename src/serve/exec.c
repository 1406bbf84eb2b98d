/*
 * exec.c - the handlers behind ipk_server_exec(): every worker keeps `/bin/sh -c CMD` running
 * as a coprocess, an exec: channel of the library (pipes, framing, bounded reaping), and for
 * every request sends it one message and waits up to exec_timeout for exactly one reply.
 *
 * A coprocess that exits, breaks the framing or does not answer in time is closed (EOF on its
 * stdin; TERM, then KILL, if it does not go) and started again for the next request; the client
 * whose request failed gets its connection closed, so it sees an error at once instead of
 * waiting for an answer that will not come.
 */
#include "ipk.h"
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CO_LINGER_MS 200 /* after EOF on its stdin, the coprocess gets this long to exit */

static ipk_chan *co; /* this worker's coprocess, NULL until started */
static unsigned char *co_buf;
static size_t co_cap;

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
    snprintf(url, n, "exec:%s?framing=%s&linger=%d", s->exec_cmd, co_framing(s), CO_LINGER_MS);
    int r = ipk_dial(&co, url, NULL);
    free(url);
    if (r != 0) {
        ipk_serve_log("worker %d: --exec %s: %s", worker, s->exec_cmd, ipk_errmsg());
        co = NULL;
        return r;
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
    pid_t pid = 0;
    ipk_peer(co, &pid, NULL, NULL);
    int st = ipk_close(co);
    co = NULL;
    if (why)
        ipk_serve_log("worker %d: handler pid %d %s (status %d): restarting it", worker, (int)pid,
                      why, st);
}

int srv_exec_start(int worker, void *arg)
{
    ipk_server *s = arg;
    co_cap = 0;
    for (size_t i = 0; i < s->nl; i++)
        if (srv_max(s, &s->l[i]) > co_cap)
            co_cap = srv_max(s, &s->l[i]);
    co_buf = malloc(co_cap ? co_cap : 1);
    if (co_buf == NULL)
        return -1;
    return co_start(s, worker);
}

void srv_exec_stop(int worker, void *arg)
{
    (void)arg;
    co_stop(worker, NULL);
    free(co_buf);
    co_buf = NULL;
}

int srv_exec_msg(ipk_conn *c, const void *msg, size_t len, void *arg)
{
    ipk_server *s = arg;
    int worker = ipk_conn_worker(c);
    if (co == NULL && co_start(s, worker) != 0)
        return -1;
    int r = ipk_send(co, msg, len, s->exec_ms);
    long n = r == 0 ? ipk_recv(co, co_buf, co_cap, s->exec_ms) : r;
    if (n < 0) {
        co_stop(worker, n == IPK_ETIMEDOUT ? "did not answer in time"
                        : n == IPK_EOF     ? "exited"
                                           : ipk_strerror((int)n));
        return -1;
    }
    r = ipk_conn_send(c, co_buf, (size_t)n);
    return r == IPK_ENOTSUP ? 0 : r; /* a queue's job has nowhere to reply */
}
