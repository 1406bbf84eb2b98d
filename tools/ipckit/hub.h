/*
 * hub.h - several addresses on one ipk_poller (hub.c), for recv and relay.
 */
#ifndef IPK_CLI_HUB_H
#define IPK_CLI_HUB_H

#include "cli.h"

/* What a poller registration stands for: an end's listener, or one of its channels. */
typedef struct hub_reg {
    int end, listener;
} hub_reg;

typedef struct hub_end {
    const char *url;
    ipk_chan *l;  /* a connection-oriented listener, or NULL */
    ipk_chan **c; /* its channels: the end itself, or the peers accepted so far */
    size_t nc;
    hub_reg reg, lreg; /* what the poller gives back for a channel / for the listener */
} hub_end;

typedef struct hub {
    const char *cmd;
    hub_end *end;
    int n, live; /* ends, and ends not yet done */
    ipk_poller *p;
    ipk_pollev *ev; /* the last wait's events, and the next one to look at */
    int nev, next;
    int rc;          /* the first failed close of a channel that ended */
    long dropped;    /* channels closed because they ended */
    const char *bad; /* after hub_open failed: the address it failed on */
    /* Optional: called before a message is taken from end `end`; a non-zero result is returned
     * by hub_next instead, and nothing is taken (relay opens its sink here, so that a sink
     * that cannot be reached never costs a message taken from a queue). */
    long (*before_take)(void *arg, int end);
    void *arg;
} hub;

/* An empty hub for at most nmax ends; hub_add opens url (listen or dial, as cli_open) as the
 * next end and returns its number, or a negative code with h->bad naming the address.
 * hub_open does both for urls[0..n). hub_close() releases what was opened either way. */
int hub_init(hub *h, const char *cmd, int nmax);
int hub_add(hub *h, const char *url, const ipk_opts *o, int listen);
int hub_open(hub *h, const char *cmd, char *const *urls, int n, const ipk_opts *o, int listen);
/* Adds channel c to end i; hub_release takes it out again without closing it (1, or 0 when it
 * was not there); hub_has says whether c is still one of the hub's (a channel that reached its
 * end of stream was closed by hub_next). */
int hub_adopt(hub *h, int i, ipk_chan *c);
int hub_release(hub *h, int i, ipk_chan *c);
int hub_has(const hub *h, const ipk_chan *c);
/* The next message from any end: its length (bytes in b, metadata in mi, the end in *end and
 * the channel in *from), IPK_EOF when every end is done (a listener is never done), the
 * expiry of timeout_ms, CLI_ESTOP, or another failure. A peer or end that reaches its end of
 * stream is closed and left out. */
long hub_next(hub *h, cli_buf *b, ipk_msginfo *mi, int *end, ipk_chan **from, int timeout_ms);
/* Closes everything; returns CLI_OK or the exit status of the first failed close. */
int hub_close(hub *h);

#endif
