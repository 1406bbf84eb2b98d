/*
 * peer_nng.c - nng through its public API: a pair1 socket each side (one peer to one peer,
 * with back-pressure), listened on by side A and dialled by side B, over ipc:// or tcp://.
 * nng_send/nng_recv with caller buffers (nng copies), the plain way to use it, with send and
 * receive queues of 1000 messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "peers.h"

typedef struct nng_st {
    nng_socket sock;
    int open;
} nng_st;

static int pn_fail(bench_side *sd, const char *what, int err)
{
    return bench_fail(sd, "nng %s: %s", what, nng_strerror(err));
}

static int pn_listen(bench_side *sd, char *name, size_t cap)
{
    nng_st *st = bench_side_state(sd, sizeof *st);
    if (st == NULL)
        return -1;
    int r = nng_pair1_open(&st->sock);
    if (r != 0)
        return pn_fail(sd, "pair1_open", r);
    st->open = 1;
    nng_setopt_size(st->sock, NNG_OPT_RECVMAXSZ, 0);
    /* Queues in the socket (default: none), so that a stream is not one hand-off per message;
     * ZeroMQ's counterpart is its high-water mark of 1000. */
    nng_setopt_int(st->sock, NNG_OPT_SENDBUF, 1000);
    nng_setopt_int(st->sock, NNG_OPT_RECVBUF, 1000);
    if (sd->side != BENCH_A)
        return 0;
    char url[600];
    snprintf(url, sizeof url, "%s%s", sd->spec->url, sd->spec->topo == PEER_TCP ? ":0" : "");
    nng_listener l;
    if ((r = nng_listener_create(&l, st->sock, url)) != 0 || (r = nng_listener_start(l, 0)) != 0)
        return pn_fail(sd, url, r);
    if (sd->spec->topo == PEER_TCP) {
        int port;
        if ((r = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0)
            return pn_fail(sd, "bound port", r);
        snprintf(name, cap, "%s:%d", sd->spec->url, port);
    } else {
        snprintf(name, cap, "%s", url);
    }
    return 0;
}

static int pn_open(bench_side *sd, const char *peer)
{
    nng_st *st = sd->st;
    int r;
    if (sd->side == BENCH_B && (r = nng_dial(st->sock, peer, NULL, 0)) != 0)
        return pn_fail(sd, peer, r);
    return 0;
}

static int pn_send(bench_side *sd, const void *buf, size_t len)
{
    nng_st *st = sd->st;
    int r = nng_send(st->sock, (void *)buf, len, 0);
    return r != 0 ? pn_fail(sd, "send", r) : 0;
}

static long pn_recv(bench_side *sd, void *buf, size_t cap)
{
    nng_st *st = sd->st;
    size_t n = cap;
    int r = nng_recv(st->sock, buf, &n, 0);
    return r != 0 ? pn_fail(sd, "recv", r) : (long)n;
}

static void pn_close(bench_side *sd)
{
    nng_st *st = sd->st;
    if (st == NULL)
        return;
    if (st->open)
        nng_close(st->sock);
    free(st);
    sd->st = NULL;
}

const bench_ops bench_ops_nng = {
    .impl = "nng",
    .listen = pn_listen,
    .open = pn_open,
    .send = pn_send,
    .recv = pn_recv,
    .close = pn_close,
};
