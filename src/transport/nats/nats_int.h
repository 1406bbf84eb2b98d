/*
 * nats_int.h - what the files of the nats: transport share (nats.c the channel, nats_js.c
 * JetStream, nats_info.c the server's INFO for ipk_info). Nothing outside this folder sees it.
 */
#ifndef IPK_NATS_INT_H
#define IPK_NATS_INT_H

#include "ipk.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#define IPK__NATS_MAX_SERVERS 16
#define IPK__NATS_PORT        4222
#define IPK__NATS_HOSTPORT    272 /* "[" 255-byte host "]:" 5-digit port, NUL */

/* The address body "//HOST:PORT[,HOST:PORT...]/SUBJECT", split. */
typedef struct ipk__nats_url {
    char server[IPK__NATS_MAX_SERVERS][IPK__NATS_HOSTPORT]; /* "host:port", "[v6]:port" */
    char host[IPK__NATS_MAX_SERVERS][256];                  /* without brackets */
    unsigned short port[IPK__NATS_MAX_SERVERS];
    int n;
    const char *subject; /* points into the body */
} ipk__nats_url;

int ipk__nats_split(const char *body, const char *url, ipk__nats_url *u);

/* One channel's state. The message handlers run on libnats's delivery threads; everything
 * they touch is guarded by mu (see nats.c). */
typedef struct ipk__nats {
    ipk__nats_url url;
    natsOptions *o;
    natsConnection *nc;
    natsSubscription *sub;  /* the subject (listener) or the stream's consumer */
    natsSubscription *isub; /* a dialer's reply inbox */
    jsCtx *js;
    char *inbox; /* a dialer's reply subject */
    char *reply; /* a listener's: the reply subject of the message it received last ("":
                    none), in a buffer of replycap bytes */
    size_t replycap;
    const char *stream, *consumer, *group;
    long replicas, ackwait_ms, limit, rwait_ms;
    int64_t max_payload;
    int wild;             /* the subject holds a wildcard: nothing is published to it */
    int tls;              /* ?tls=, ?ca= or ?cert= */
    int oneway;           /* ?oneway=1: a dialer without a reply inbox */
    uint64_t idbase, seq; /* JetStream message ids: retries are deduplicated by the server */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    natsMsg **q; /* ring of received messages not yet handed out */
    size_t qcap, qhead, qn;
    pthread_cond_t rcv; /* a receive waits on it (CLOCK_MONOTONIC) */
    int evfd;           /* readable while q holds a message or the connection is gone */
    int exported;       /* ipk_fd() or a poller has it: evfd is kept level from then on */
    int signalled;      /* evfd holds a count */
    int closing;
    int live;               /* handlers that may still run: subscriptions not complete, plus the
                               connection until its closed callback */
    int64_t dropped;        /* messages libnats dropped (slow consumer), not yet reported */
    int64_t dropseen;       /* libnats's count of drops (it only grows) already added to dropped */
    natsSubscription *rsub; /* the synchronous subscription received from (sub or isub), NULL
                               for a stream's consumer (asynchronous, into the ring) */
    int pumping;            /* a pump thread moves rsub's messages into the ring (from the
                               descriptor's export on): receives then take from the ring only */
    pthread_t pump;
    int gone; /* the connection closed for good */
    /* 1 while a receive may take from rsub without the mutex: nothing in the ring, no drop or
       end to tell, no pump (kept by ipk__nats_calm, under mu, wherever those change) */
    atomic_int calm;
} ipk__nats;

/* A negative ipckit code for status s, with the message "<name>: <what>: <libnats' text>". */
int ipk__nats_err(const ipk_chan *c, natsStatus s, const char *what);
/* Sets the message again with code, the message so far followed by fmt (NULL: nothing). */
int ipk__nats_reerr(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Before another attempt after a failure that came at once (no responders, a lost
 * connection): sleeps 50 ms, never past dl. */
void ipk__nats_pause(int64_t dl);
/* The message handler of every subscription (closure: the channel's ipk__nats). */
void ipk__nats_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure);
void ipk__nats_on_complete(void *closure);

/* JetStream (nats_js.c): the stream of ?stream= made when absent; the consumer of a listener;
 * one acknowledged publish. */
int ipk__nats_js_open(ipk_chan *c, ipk__nats *n);
int ipk__nats_js_send(ipk_chan *c, ipk__nats *n, natsMsg *m, const void *msg, size_t len,
                      int64_t dl);

/* ipk_info for nats: (nats_info.c). */
long ipk__nats_info(const ipk__addr *a, char *buf, size_t cap);

#endif
