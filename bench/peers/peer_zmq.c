/*
 * peer_zmq.c - ZeroMQ through its public API: a PAIR socket each side (the pattern that, like
 * an ipckit channel, is one peer to one peer with back-pressure), bound by side A and connected
 * by side B, over ipc:// or tcp://. The engine pins each side before zmq_ctx_new(), so the I/O
 * thread ZeroMQ starts runs on the same CPU as its side.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "peers.h"

typedef struct zmq_st {
    void *ctx, *sock;
} zmq_st;

static int zmq_fail(bench_side *sd, const char *what)
{
    return bench_fail(sd, "zmq %s: %s", what, zmq_strerror(zmq_errno()));
}

static int pz_listen(bench_side *sd, char *name, size_t cap)
{
    zmq_st *st = bench_side_state(sd, sizeof *st);
    if (st == NULL)
        return -1;
    if ((st->ctx = zmq_ctx_new()) == NULL || (st->sock = zmq_socket(st->ctx, ZMQ_PAIR)) == NULL)
        return zmq_fail(sd, "socket");
    int zero = 0;
    zmq_setsockopt(st->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (sd->side != BENCH_A)
        return 0;
    char url[600];
    snprintf(url, sizeof url, "%s%s", sd->spec->url, sd->spec->topo == PEER_TCP ? ":*" : "");
    if (zmq_bind(st->sock, url) != 0)
        return zmq_fail(sd, url);
    size_t len = cap;
    if (zmq_getsockopt(st->sock, ZMQ_LAST_ENDPOINT, name, &len) != 0)
        return zmq_fail(sd, "ZMQ_LAST_ENDPOINT");
    return 0;
}

static int pz_open(bench_side *sd, const char *peer)
{
    zmq_st *st = sd->st;
    if (sd->side == BENCH_B && zmq_connect(st->sock, peer) != 0)
        return zmq_fail(sd, peer);
    return 0;
}

static int pz_send(bench_side *sd, const void *buf, size_t len)
{
    zmq_st *st = sd->st;
    return zmq_send(st->sock, buf, len, 0) < 0 ? zmq_fail(sd, "send") : 0;
}

static long pz_recv(bench_side *sd, void *buf, size_t cap)
{
    zmq_st *st = sd->st;
    int n = zmq_recv(st->sock, buf, cap, 0);
    if (n < 0)
        return zmq_fail(sd, "recv");
    if ((size_t)n > cap)
        return bench_fail(sd, "zmq recv: message of %d bytes truncated", n);
    return n;
}

static void pz_close(bench_side *sd)
{
    zmq_st *st = sd->st;
    if (st == NULL)
        return;
    if (st->sock)
        zmq_close(st->sock);
    if (st->ctx)
        zmq_ctx_term(st->ctx);
    free(st);
    sd->st = NULL;
}

const bench_ops bench_ops_zmq = {
    .impl = "zmq",
    .listen = pz_listen,
    .open = pz_open,
    .send = pz_send,
    .recv = pz_recv,
    .close = pz_close,
};
