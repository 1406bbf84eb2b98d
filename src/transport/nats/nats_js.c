/*
 * nats_js.c - JetStream for the nats: transport (?stream=NAME).
 *
 * Opening makes the stream for the subject when it does not exist (file storage, ?replicas=).
 * A send is a JetStream publish: it returns once the stream has stored the message (on a
 * cluster, a majority of its replicas). Each message carries an id (Nats-Msg-Id) that is kept
 * across the retries of one send, so a retry after a lost answer or a fail-over is stored once.
 *
 * A listener consumes through a push consumer with explicit acknowledgement: a message is
 * acknowledged in ipk_recv, after it was copied to the caller, so a consumer that dies loses
 * nothing - what it had not received is delivered again after ?ackwait= ms, to itself or to a
 * successor. ?durable=NAME (or ?queue=NAME) names a consumer that outlives the channel and is
 * shared by every listener that names it (a deliver group: each message to one of them); it is
 * made here, apart from the subscription, because libnats deletes a consumer its subscribe call
 * made when that subscription ends. Without a name the consumer is ephemeral and reads the
 * stream from its start.
 */
#include "nats_int.h"
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define IPK__NATS_JS_SLICE 2000 /* ms one publish attempt waits for the stream's answer */

static int ipk__nats_js_err(const ipk_chan *c, natsStatus s, jsErrCode je, const char *what)
{
    if (je == JSNotEnabledErr || je == JSNotEnabledForAccountErr ||
        (s == NATS_NO_RESPONDERS && je == 0 && strcmp(what, "publish") != 0))
        return ipk__err(IPK_ENOTSUP, "%s: %s: the server has no JetStream (nats-server -js)",
                        c->name, what);
    int r = ipk__nats_err(c, s, what);
    if (je != 0)
        r = ipk__nats_reerr(r, " (JetStream error %d)", (int)je);
    return r;
}

/* The stream named by ?stream=, made for the subject when it does not exist. */
static int ipk__nats_js_stream(ipk_chan *c, ipk__nats *n)
{
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    natsStatus s = js_GetStreamInfo(&si, n->js, n->stream, NULL, &je);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND && je != JSStreamNotFoundErr)
        return ipk__nats_js_err(c, s, je, "stream info");
    jsStreamConfig cfg;
    const char *subjects[1] = {n->url.subject};
    jsStreamConfig_Init(&cfg);
    cfg.Name = n->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = n->replicas;
    je = 0;
    s = js_AddStream(&si, n->js, &cfg, NULL, &je);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK || je == JSStreamNameExistErr) /* made meanwhile by another process */
        return 0;
    return ipk__nats_js_err(c, s, je, "add stream");
}

/* The named consumer, made when absent: pushed to a deliver subject of its own, shared by the
 * deliver group, acknowledged explicitly. */
static int ipk__nats_js_consumer(ipk_chan *c, ipk__nats *n, char *deliver, size_t cap)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode je = 0;
    snprintf(deliver, cap, "_IPK.%s.%s", n->stream, n->consumer);
    natsStatus s = js_GetConsumerInfo(&ci, n->js, n->stream, n->consumer, NULL, &je);
    if (s == NATS_OK) {
        jsConsumerInfo_Destroy(ci);
        return 0;
    }
    if (s != NATS_NOT_FOUND && je != JSConsumerNotFoundErr)
        return ipk__nats_js_err(c, s, je, "consumer info");
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = n->consumer;
    cc.DeliverSubject = deliver;
    cc.DeliverGroup = n->group;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)n->ackwait_ms * 1000000;
    cc.MaxAckPending = n->limit;
    cc.FilterSubject = n->wild ? NULL : n->url.subject;
    je = 0;
    s = js_AddConsumer(&ci, n->js, n->stream, &cc, NULL, &je);
    jsConsumerInfo_Destroy(ci);
    if (s == NATS_OK || je == JSConsumerNameExistErr || je == JSConsumerExistingActiveErr)
        return 0;
    return ipk__nats_js_err(c, s, je, "add consumer");
}

static int ipk__nats_js_subscribe(ipk_chan *c, ipk__nats *n)
{
    char deliver[512];
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = n->stream;
    so.ManualAck = true;
    if (n->consumer) {
        int r = ipk__nats_js_consumer(c, n, deliver, sizeof deliver);
        if (r != 0)
            return r;
        so.Consumer = n->consumer;
        so.Queue = n->group;
    } else {
        so.Config.AckPolicy = js_AckExplicit;
        so.Config.AckWait = (int64_t)n->ackwait_ms * 1000000;
        so.Config.MaxAckPending = n->limit;
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    jsErrCode je = 0;
    natsStatus s =
        js_Subscribe(&n->sub, n->js, n->url.subject, ipk__nats_on_msg, n, NULL, &so, &je);
    if (s != NATS_OK) {
        n->sub = NULL;
        return ipk__nats_js_err(c, s, je, "subscribe");
    }
    pthread_mutex_lock(&n->mu);
    if (natsSubscription_SetOnCompleteCB(n->sub, ipk__nats_on_complete, n) == NATS_OK)
        n->live++;
    pthread_mutex_unlock(&n->mu);
    return 0;
}

int ipk__nats_js_open(ipk_chan *c, ipk__nats *n)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    natsStatus s = natsConnection_JetStream(&n->js, n->nc, &jo);
    if (s != NATS_OK) {
        n->js = NULL;
        return ipk__nats_err(c, s, "JetStream context");
    }
    int r = ipk__nats_js_stream(c, n);
    if (r == 0 && c->role == IPK__LISTENER)
        r = ipk__nats_js_subscribe(c, n);
    return r;
}

/* Whether a failed publish may succeed when tried again with the same id: no answer in time,
 * the connection lost, or the stream between leaders. */
static int ipk__nats_js_transient(natsStatus s, jsErrCode je)
{
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED ||
           s == NATS_STALE_CONNECTION || s == NATS_IO_ERROR || je == JSClusterNotAvailErr ||
           je == JSInsufficientResourcesErr;
}

int ipk__nats_js_send(ipk_chan *c, ipk__nats *n, natsMsg *m, const void *msg, size_t len,
                      int64_t dl)
{
    if (dl == IPK__DL_NOW)
        return ipk__err(-EAGAIN,
                        "%s: a stream's send waits for the server to store the message; "
                        "timeout 0 cannot",
                        c->name);
    char id[48];
    snprintf(id, sizeof id, "ipk-%016llx-%llu", (unsigned long long)n->idbase,
             (unsigned long long)++n->seq);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id;
    natsStatus s = NATS_TIMEOUT;
    jsErrCode je = 0;
    for (;;) {
        int ms = ipk__remaining_ms(dl);
        if (ms == 0)
            return ipk__err(IPK_ETIMEDOUT,
                            "%s: stream %s did not acknowledge the message in time (last: %s)",
                            c->name, n->stream, natsStatus_GetText(s));
        po.MaxWait = ms < 0 || ms > IPK__NATS_JS_SLICE ? IPK__NATS_JS_SLICE : ms;
        jsPubAck *pa = NULL;
        je = 0;
        if (m != NULL)
            s = js_PublishMsg(&pa, n->js, m, &po, &je);
        else
            s = js_Publish(&pa, n->js, n->url.subject, msg, (int)len, &po, &je);
        jsPubAck_Destroy(pa);
        if (s == NATS_OK)
            return 0;
        if (natsConnection_IsClosed(n->nc) || !ipk__nats_js_transient(s, je))
            return ipk__nats_js_err(c, s, je, "publish");
        if (s != NATS_TIMEOUT)
            ipk__nats_pause(dl);
    }
}
