/*
 * nats.c - the nats: transport: a channel on a NATS server or cluster, through libnats.
 *
 *   nats://HOST:PORT[,HOST:PORT...]/SUBJECT[?key=value...]
 *
 * A listener subscribes to SUBJECT (with ?queue=GROUP, as one member of a queue group: each
 * message goes to one member); a dialer publishes to it, each message carrying the dialer's
 * reply inbox, so that the listener's next send after a receive answers that dialer (the
 * conversation of unix:). With ?stream=NAME the subject lives in a JetStream stream
 * (nats_js.c): sends are acknowledged by the server, and a listener is a consumer that
 * acknowledges a message only once the application has received it.
 *
 * A listener's subject and a dialer's reply inbox are synchronous libnats subscriptions: libnats's
 * reader thread queues each message on it and ipk_recv takes it there (natsSubscription_NextMsg),
 * in the caller's thread, as a plain libnats program does; no thread stands between the socket
 * and the application. A descriptor cannot say that such a queue holds a message, so once one is
 * given out (ipk_fd, a poller), a pump thread of the channel moves the messages, in order, into a
 * ring guarded by a mutex, and makes an eventfd readable while the ring holds one (level-
 * triggered); from then on a receive takes from the ring only. The switch loses nothing and
 * keeps the order: before it, receives took from libnats's queue directly; after it, the pump
 * alone takes from that queue, and appends to the ring behind what a receive put back (a message
 * too big for its buffer). A stream's consumer (JetStream, asynchronous in libnats) delivers
 * through its handler (ipk__nats_on_msg) into the ring always. The ring is bounded (?pending=):
 * a full ring holds the pump or the handler back, libnats then buffers up to its own limit
 * (?pending= plus 65536 messages for a synchronous subscription), and past that it drops, which
 * the next receive reports (never silently).
 *
 * A send is one message. It returns once the server has confirmed it (a PING/PONG round trip
 * after the publish, natsConnection_FlushTimeout) within the caller's timeout; a send with
 * timeout 0 hands the message to the connection only (libnats writes it within about a
 * millisecond, at once with ?asap=1; while the server is away it fails with -EAGAIN). While the
 * connection is lost, libnats reconnects with a back-off (?reconnect_wait= doubling up to 5 s,
 * ?reconnect= attempts, -1 forever) and buffers up to ?reconnect_buf= bytes of output; a send whose
 * confirmation does not come in time fails, although its message may still reach the server after a
 * reconnection.
 */
#include "nats_int.h"
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define IPK__NATS_PENDING     65536 /* default ?pending=: messages held before the handler waits */
#define IPK__NATS_JS_PENDING  256   /* the same for a stream's consumer: its MaxAckPending */
#define IPK__NATS_CLOSE_WAIT  5000  /* ms close waits for libnats's threads to let go */
#define IPK__NATS_BACKOFF_MAX 5000  /* ms: the longest wait between two rounds of reconnection */
#define IPK__NATS_HDR_PRIO    "Ipk-Prio"
#define IPK__NATS_HDR_TYPE    "Ipk-Type"

static const char *const ipk__nats_keys[] = {"queue",
                                             "stream",
                                             "durable",
                                             "replicas",
                                             "ackwait",
                                             "pending",
                                             "user",
                                             "password",
                                             "token",
                                             "nkey",
                                             "creds",
                                             "tls",
                                             "ca",
                                             "cert",
                                             "key",
                                             "reconnect",
                                             "reconnect_wait",
                                             "reconnect_buf",
                                             "connect_timeout",
                                             "oneway",
                                             "asap",
                                             NULL};

/* ---- the address ---- */

/* A subject: tokens of printable bytes but space, separated by '.', none empty; '*' and '>' only
 * as whole tokens, '>' only last. *wild: it holds a wildcard. */
static int ipk__nats_subject(const char *s, const char *url, int *wild)
{
    size_t n = strlen(s);
    *wild = 0;
    if (n == 0)
        return ipk__err(IPK_EADDR,
                        "%s: missing subject after the servers (nats://HOST:PORT/SUBJECT)", url);
    for (const char *t = s;;) {
        size_t k = strcspn(t, ".");
        if (k == 0)
            return ipk__err(IPK_EADDR, "%s: empty token in subject '%s'", url, s);
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)t[i] <= 0x20 || t[i] == 0x7f)
                return ipk__err(IPK_EADDR, "%s: subject '%s' holds a space or control character",
                                url, s);
        if (memchr(t, '*', k) || memchr(t, '>', k)) {
            if (k != 1 || (*t == '>' && t[1] != '\0'))
                return ipk__err(IPK_EADDR,
                                "%s: subject '%s': '*' and '>' stand alone as tokens, '>' last",
                                url, s);
            *wild = 1;
        }
        if (t[k] == '\0')
            return 0;
        t += k + 1;
        if (*t == '\0')
            return ipk__err(IPK_EADDR, "%s: subject '%s' ends with '.'", url, s);
    }
}

/* One "host[:port]" or "[v6]:port" of the server list, [p, end). */
static int ipk__nats_server(ipk__nats_url *u, const char *p, const char *end, const char *url)
{
    const char *h = p, *he, *port = NULL;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(end - p));
        if (he == NULL)
            return ipk__err(IPK_EADDR, "%s: '[' without ']' in the server list", url);
        h = p + 1;
        if (he + 1 < end && he[1] != ':')
            return ipk__err(IPK_EADDR, "%s: expected ':' after ']'", url);
        port = he + 1 < end ? he + 2 : NULL;
    } else {
        he = end;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                he = q;
        port = he < end ? he + 1 : NULL;
    }
    size_t hn = (size_t)(he - h);
    if (hn == 0 || hn >= sizeof u->host[0])
        return ipk__err(IPK_EADDR, "%s: %s host in the server list", url,
                        hn ? "too long a" : "empty");
    long pn = IPK__NATS_PORT;
    if (port != NULL) {
        char num[8];
        size_t k = (size_t)(end - port);
        if (k == 0 || k >= sizeof num || strspn(port, "0123456789") < k)
            return ipk__err(IPK_EADDR, "%s: bad port '%.*s'", url, (int)k, port);
        memcpy(num, port, k);
        num[k] = '\0';
        if (ipk__parse_long(num, 1, 65535, &pn) != 0)
            return ipk__err(IPK_EADDR, "%s: port %s out of range 1-65535", url, num);
    }
    int i = u->n++;
    memcpy(u->host[i], h, hn);
    u->host[i][hn] = '\0';
    u->port[i] = (unsigned short)pn;
    snprintf(u->server[i], sizeof u->server[i], *p == '[' ? "[%s]:%ld" : "%s:%ld", u->host[i], pn);
    return 0;
}

int ipk__nats_split(const char *body, const char *url, ipk__nats_url *u)
{
    memset(u, 0, sizeof *u);
    if (strncmp(body, "//", 2) != 0)
        return ipk__err(IPK_EADDR, "%s: write nats://HOST:PORT[,HOST:PORT...]/SUBJECT", url);
    const char *p = body + 2, *slash = strchr(p, '/');
    if (slash == NULL)
        return ipk__err(IPK_EADDR, "%s: missing /SUBJECT after the servers", url);
    if (slash == p)
        return ipk__err(IPK_EADDR, "%s: missing server (nats://HOST:PORT/SUBJECT)", url);
    while (p < slash) {
        if (u->n == IPK__NATS_MAX_SERVERS)
            return ipk__err(IPK_EADDR, "%s: more than %d servers", url, IPK__NATS_MAX_SERVERS);
        const char *end = memchr(p, ',', (size_t)(slash - p));
        if (end == NULL)
            end = slash;
        int r = ipk__nats_server(u, p, end, url);
        if (r != 0)
            return r;
        p = end < slash ? end + 1 : end;
        if (end < slash && p == slash)
            return ipk__err(IPK_EADDR, "%s: empty server after ','", url);
    }
    u->subject = slash + 1;
    int wild;
    return ipk__nats_subject(u->subject, url, &wild);
}

static int ipk__nats_parse(ipk__addr *a, const char *url)
{
    ipk__nats_url u;
    return ipk__nats_split(a->body, url, &u);
}

/* ---- errors ---- */

static int ipk__nats_code(natsStatus s)
{
    switch (s) {
    case NATS_NO_SERVER:
        return -ECONNREFUSED;
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return -EACCES;
    case NATS_TIMEOUT:
        return IPK_ETIMEDOUT;
    case NATS_MAX_PAYLOAD:
        return IPK_EMSGSIZE;
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_SLOW_CONSUMER:
        return -ENOBUFS;
    case NATS_NO_MEMORY:
        return -ENOMEM;
    case NATS_CONNECTION_CLOSED:
        return -ENOTCONN;
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
        return -ECONNRESET;
    case NATS_SSL_ERROR:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED:
    case NATS_PROTOCOL_ERROR:
        return -EPROTO;
    case NATS_NOT_FOUND:
        return -ENOENT;
    case NATS_NO_RESPONDERS:
        return -EHOSTUNREACH;
    case NATS_INVALID_SUBJECT:
        return IPK_EADDR;
    case NATS_INVALID_ARG:
        return -EINVAL;
    case NATS_NO_SERVER_SUPPORT:
        return IPK_ENOTSUP;
    default:
        return -EIO;
    }
}

int ipk__nats_err(const ipk_chan *c, natsStatus s, const char *what)
{
    natsStatus last = NATS_OK;
    const char *t = nats_GetLastError(&last);
    if (t == NULL || *t == '\0' || last != s)
        t = natsStatus_GetText(s);
    return ipk__err(ipk__nats_code(s), "%s: %s: %s", c->name, what, t);
}

int ipk__nats_reerr(int code, const char *fmt, ...)
{
    char was[1024], more[512] = "";
    ipk__strlcpy(was, ipk_errmsg(), sizeof was); /* the message cannot format itself */
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(more, sizeof more, fmt, ap);
        va_end(ap);
    }
    return ipk__err(code, "%s%s", was, more);
}

void ipk__nats_pause(int64_t dl)
{
    int ms = ipk__remaining_ms(dl);
    nats_Sleep(ms < 0 || ms > 50 ? 50 : ms);
}

/* ---- what the libnats threads call ---- */

/* With mu held: something is there to be told (a message, a drop, the end). A receive waiting
 * in this process is woken through the condition variable; the eventfd is written only once
 * somebody may watch it (ipk_fd, a poller), which spares two system calls per message to a
 * channel that nobody polls. */
static void ipk__nats_signal(ipk__nats *n)
{
    uint64_t one = 1;
    pthread_cond_signal(&n->rcv);
    if (n->exported && !n->signalled && write(n->evfd, &one, sizeof one) == (ssize_t)sizeof one)
        n->signalled = 1;
}

/* With mu held, after any change to what it reads: whether a receive may go to the synchronous
 * subscription without taking mu (the fast path of ipk__nats_recv). */
static void ipk__nats_calm(ipk__nats *n)
{
    int calm = n->rsub != NULL && !n->pumping && n->qn == 0 && n->dropped == 0 && !n->gone;
    atomic_store_explicit(&n->calm, calm, memory_order_release);
}

/* With mu held: the drops libnats counted on sub since last looked join those to be told. */
static void ipk__nats_drops(ipk__nats *n, natsSubscription *sub)
{
    int64_t d = 0;
    if (sub != NULL && natsSubscription_GetDropped(sub, &d) == NATS_OK && d > n->dropseen) {
        n->dropped += d - n->dropseen;
        n->dropseen = d;
    }
}

static void *ipk__nats_pump(void *arg);

/* The descriptor leaves the transport: from now on it is kept readable while anything waits,
 * and a synchronous subscription's messages go through the ring (the pump). */
static int ipk__nats_export(const ipk_chan *c)
{
    ipk__nats *n = c->tp;
    int e = 0;
    pthread_mutex_lock(&n->mu);
    if (!n->exported) {
        if (n->rsub != NULL) {
            /* The pump takes no signal meant for the application's threads. */
            sigset_t all, was;
            sigfillset(&all);
            pthread_sigmask(SIG_SETMASK, &all, &was);
            e = pthread_create(&n->pump, NULL, ipk__nats_pump, n);
            pthread_sigmask(SIG_SETMASK, &was, NULL);
            n->pumping = e == 0;
            ipk__nats_calm(n);
        }
        if (e == 0) {
            n->exported = 1;
            if (n->qn || n->gone || n->dropped)
                ipk__nats_signal(n);
        }
    }
    pthread_mutex_unlock(&n->mu);
    if (e != 0)
        return ipk__errsys(-e, "%s: starting the thread that makes the descriptor readable",
                           c->name);
    return n->evfd;
}

/* With mu held: the descriptor stays readable while anything is there to be told. */
static void ipk__nats_unsignal(ipk__nats *n)
{
    uint64_t v;
    if (n->signalled && n->qn == 0 && !n->gone && n->dropped == 0 &&
        read(n->evfd, &v, sizeof v) >= 0)
        n->signalled = 0;
}

/* With mu held: room for one more message in the ring. */
static int ipk__nats_grow(ipk__nats *n)
{
    if (n->qn < n->qcap)
        return 0;
    size_t cap = n->qcap ? n->qcap * 2 : 64;
    natsMsg **q = malloc(cap * sizeof *q);
    if (q == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n->qn; i++)
        q[i] = n->q[(n->qhead + i) % n->qcap];
    free(n->q);
    n->q = q;
    n->qcap = cap;
    n->qhead = 0;
    return 0;
}

void ipk__nats_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    ipk__nats *n = closure;
    pthread_mutex_lock(&n->mu);
    while (!n->closing && n->qn >= (size_t)n->limit)
        pthread_cond_wait(&n->cv, &n->mu);
    int ok = !n->closing && ipk__nats_grow(n) == 0;
    if (ok) {
        n->q[(n->qhead + n->qn) % n->qcap] = m;
        n->qn++;
    } else if (!n->closing) {
        n->dropped++; /* no memory for the ring: said by the next receive */
    }
    if (!n->closing)
        ipk__nats_signal(n);
    ipk__nats_calm(n);
    pthread_mutex_unlock(&n->mu);
    if (!ok) {
        if (n->stream) /* a JetStream message comes again, to another consumer */
            natsMsg_Nak(m, NULL);
        natsMsg_Destroy(m);
    }
}

/* Moves the synchronous subscription's messages into the ring, once the descriptor is out. */
static void *ipk__nats_pump(void *arg)
{
    ipk__nats *n = arg;
    for (;;) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, n->rsub, 100);
        if (s == NATS_OK) {
            ipk__nats_on_msg(NULL, n->rsub, m, n);
        } else if (s != NATS_TIMEOUT && s != NATS_SLOW_CONSUMER) {
            break; /* the subscription or the connection is closed */
        }
        pthread_mutex_lock(&n->mu);
        if (s == NATS_SLOW_CONSUMER && !n->closing) {
            ipk__nats_drops(n, n->rsub);
            ipk__nats_signal(n);
            ipk__nats_calm(n);
        }
        int stop = n->closing;
        pthread_mutex_unlock(&n->mu);
        if (stop)
            break;
    }
    return NULL;
}

void ipk__nats_on_complete(void *closure)
{
    ipk__nats *n = closure;
    pthread_mutex_lock(&n->mu);
    n->live--;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void ipk__nats_on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    ipk__nats *n = closure;
    pthread_mutex_lock(&n->mu);
    n->gone = 1;
    n->live--;
    if (!n->closing)
        ipk__nats_signal(n);
    ipk__nats_calm(n);
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void ipk__nats_on_error(natsConnection *nc, natsSubscription *sub, natsStatus e,
                               void *closure)
{
    (void)nc;
    ipk__nats *n = closure;
    if (e != NATS_SLOW_CONSUMER || sub == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    if (!n->closing) {
        ipk__nats_drops(n, sub);
        if (n->dropped)
            ipk__nats_signal(n);
        ipk__nats_calm(n);
    }
    pthread_mutex_unlock(&n->mu);
}

/* The wait before the next round of reconnection: ?reconnect_wait= doubling with each failed
 * round up to 5 s, plus up to a quarter of it at random so that many clients spread out. */
static int64_t ipk__nats_backoff(natsConnection *nc, int attempts, void *closure)
{
    (void)nc;
    const ipk__nats *n = closure;
    int shift = attempts > 1 ? (attempts - 1 < 10 ? attempts - 1 : 10) : 0;
    int64_t d = (int64_t)n->rwait_ms << shift;
    if (d > IPK__NATS_BACKOFF_MAX)
        d = IPK__NATS_BACKOFF_MAX;
    return d + (nats_NowInNanoSeconds() % (d / 4 + 1));
}

/* ---- connecting ---- */

/* ?nkey=FILE: the user's public key (a line "U...") and its seed ("SU..."), as
 * `nk -gen user -pubout` writes them. libnats signs the server's nonce with the seed. */
static int ipk__nats_nkey(ipk_chan *c, ipk__nats *n, const char *file)
{
    char pub[128] = "", line[256];
    FILE *f = fopen(file, "re");
    if (f == NULL)
        return ipk__err(IPK_EOPTION, "%s: nkey=%s: %s", c->name, file, strerror(errno));
    while (fgets(line, sizeof line, f) != NULL)
        if (line[0] == 'U' && strlen(line) > 50) {
            line[strcspn(line, " \t\r\n")] = '\0';
            ipk__strlcpy(pub, line, sizeof pub);
        }
    fclose(f);
    if (pub[0] == '\0')
        return ipk__err(IPK_EOPTION,
                        "%s: nkey=%s: no public key (a line U...) beside the seed (SU...); write "
                        "both, as `nk -gen user -pubout` does",
                        c->name, file);
    natsStatus s = natsOptions_SetNKeyFromSeed(n->o, pub, file);
    return s == NATS_OK ? 0 : ipk__nats_err(c, s, "nkey");
}

/* Credentials and TLS, passed through to libnats. */
static int ipk__nats_auth(ipk_chan *c, ipk__nats *n, int tls)
{
    const char *user = ipk__opt(c, "user"), *pass = ipk__opt(c, "password");
    const char *token = ipk__opt(c, "token"), *nkey = ipk__opt(c, "nkey");
    const char *creds = ipk__opt(c, "creds"), *ca = ipk__opt(c, "ca");
    const char *cert = ipk__opt(c, "cert"), *key = ipk__opt(c, "key");
    natsStatus s = NATS_OK;
    const char *what = "";
    if (pass != NULL && user == NULL)
        return ipk__err(IPK_EOPTION, "%s: password= without user=", c->name);
    if ((cert == NULL) != (key == NULL))
        return ipk__err(IPK_EOPTION, "%s: cert= and key= go together", c->name);
    /* libnats reads a creds file only when it connects, and then says -EIO: said here, as
     * for the other files, as the option's fault. */
    if (creds != NULL && access(creds, R_OK) != 0)
        return ipk__err(IPK_EOPTION, "%s: creds=%s: %s", c->name, creds, strerror(errno));
    if (user != NULL && (s = natsOptions_SetUserInfo(n->o, user, pass)) != NATS_OK)
        what = "user";
    else if (token != NULL && (s = natsOptions_SetToken(n->o, token)) != NATS_OK)
        what = "token";
    else if (creds != NULL && (s = natsOptions_SetUserCredentialsFromFiles(n->o, creds, NULL)))
        what = "creds";
    else if (tls && (s = natsOptions_SetSecure(n->o, true)) != NATS_OK)
        what = "tls";
    else if (ca != NULL && (s = natsOptions_LoadCATrustedCertificates(n->o, ca)) != NATS_OK)
        what = "ca";
    else if (cert != NULL && (s = natsOptions_LoadCertificatesChain(n->o, cert, key)) != NATS_OK)
        what = "cert";
    if (s != NATS_OK) {
        ipk__nats_err(c, s, what);
        return ipk__nats_reerr(IPK_EOPTION, NULL); /* the option's value is at fault */
    }
    return nkey != NULL ? ipk__nats_nkey(c, n, nkey) : 0;
}

static int ipk__nats_options(ipk_chan *c, ipk__nats *n)
{
    long retries, ctimeout;
    size_t rbuf;
    int tls, asap, r;
    if ((r = ipk__opt_long(c, "reconnect", -1, INT_MAX, -1, &retries)) != 0 ||
        (r = ipk__opt_long(c, "reconnect_wait", 1, 3600000, 100, &n->rwait_ms)) != 0 ||
        (r = ipk__opt_size(c, "reconnect_buf", (size_t)8 << 20, &rbuf)) != 0 ||
        (r = ipk__opt_long(c, "connect_timeout", 1, INT_MAX, 2000, &ctimeout)) != 0 ||
        (r = ipk__opt_bool(c, "tls", 0, &tls)) != 0 ||
        (r = ipk__opt_bool(c, "asap", 0, &asap)) != 0)
        return r;
    if (rbuf == 0 || rbuf > INT_MAX)
        return ipk__err(IPK_EOPTION, "%s: reconnect_buf=%s: expected 1 byte to 2g", c->name,
                        ipk__opt(c, "reconnect_buf"));
    tls = tls || ipk__opt(c, "ca") != NULL || ipk__opt(c, "cert") != NULL;
    n->tls = tls;
    const char *urls[IPK__NATS_MAX_SERVERS];
    char buf[IPK__NATS_MAX_SERVERS][IPK__NATS_HOSTPORT + 8];
    for (int i = 0; i < n->url.n; i++) {
        snprintf(buf[i], sizeof buf[i], "%s://%s", tls ? "tls" : "nats", n->url.server[i]);
        urls[i] = buf[i];
    }
    natsStatus s = natsOptions_Create(&n->o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(n->o, urls, n->url.n);
    if (s == NATS_OK)
        s = natsOptions_SetName(n->o, "ipckit");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(n->o, ctimeout);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(n->o, (int)retries);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(n->o, ipk__nats_backoff, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(n->o, (int)rbuf);
    if (s == NATS_OK)
        s = natsOptions_SetFailRequestsOnDisconnect(n->o, true);
    /* By default libnats's flusher thread writes what a send with timeout 0 published about
     * a millisecond later, with whatever else came meanwhile (throughput); ?asap=1 writes each
     * message at once (latency). */
    if (s == NATS_OK && asap)
        s = natsOptions_SetSendAsap(n->o, true);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(n->o, ipk__nats_on_closed, n);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(n->o, ipk__nats_on_error, n);
    if (s != NATS_OK)
        return ipk__nats_err(c, s, "options");
    return ipk__nats_auth(c, n, tls);
}

static int ipk__nats_connect(ipk_chan *c, ipk__nats *n)
{
    natsStatus s = natsConnection_Connect(&n->nc, n->o);
    if (s != NATS_OK) {
        n->nc = NULL;
        if (s == NATS_NO_SERVER || s == NATS_TIMEOUT)
            return ipk__err(s == NATS_NO_SERVER ? -ECONNREFUSED : IPK_ETIMEDOUT,
                            "%s: no NATS server answered at %s%s (%s)", c->name, n->url.server[0],
                            n->url.n > 1 ? " nor the others listed" : "",
                            s == NATS_NO_SERVER ? "connection refused" : "timed out");
        int r = ipk__nats_err(c, s, "connect");
        /* What libnats says of a failed TLS handshake names OpenSSL's reason only. A server
         * that wants a client certificate ends the connection after the handshake (TLS 1.3):
         * the client sees its alert or the end of the stream, whichever libnats reads first. */
        int untrusted = s == NATS_SSL_ERROR && (strstr(ipk_errmsg(), "verify") != NULL ||
                                                strstr(ipk_errmsg(), "issuer") != NULL);
        if (untrusted && ipk__opt(c, "ca") == NULL)
            return ipk__nats_reerr(r, " (the server's certificate is not trusted by the system's "
                                      "CAs: ?ca=FILE names the CA that signed it)");
        if (n->tls && !untrusted && ipk__opt(c, "cert") == NULL &&
            (s == NATS_SSL_ERROR || s == NATS_PROTOCOL_ERROR || s == NATS_IO_ERROR ||
             s == NATS_CONNECTION_CLOSED))
            return ipk__nats_reerr(-EPROTO,
                                   " (the server closed the connection after the TLS handshake: "
                                   "one that verifies its clients wants ?cert=FILE&key=FILE)");
        return r;
    }
    pthread_mutex_lock(&n->mu);
    n->live++; /* until the closed callback */
    pthread_mutex_unlock(&n->mu);
    n->max_payload = natsConnection_GetMaxPayload(n->nc);
    return 0;
}

/* A listener's subscription, or a dialer's reply inbox, both synchronous (ipk_recv takes from
 * them). Flushed, so that the server knows of it before listen/dial returns: a message
 * published just after is not missed. */
static int ipk__nats_subscribe(ipk_chan *c, ipk__nats *n, long ctimeout)
{
    natsStatus s;
    natsSubscription *sub = NULL;
    const char *q = ipk__opt(c, "queue");
    if (c->role == IPK__LISTENER) {
        s = q ? natsConnection_QueueSubscribeSync(&sub, n->nc, n->url.subject, q)
              : natsConnection_SubscribeSync(&sub, n->nc, n->url.subject);
        n->sub = sub;
    } else if (n->oneway) {
        return 0; /* publishes only: nothing to subscribe to */
    } else {
        natsInbox *inbox = NULL;
        s = natsInbox_Create(&inbox);
        if (s == NATS_OK && (n->inbox = strdup(inbox)) == NULL)
            s = NATS_NO_MEMORY;
        natsInbox_Destroy(inbox);
        if (s == NATS_OK)
            s = natsConnection_SubscribeSync(&sub, n->nc, n->inbox);
        n->isub = sub;
    }
    if (s != NATS_OK)
        return ipk__nats_err(c, s, q ? "queue subscribe" : "subscribe");
    pthread_mutex_lock(&n->mu);
    n->rsub = sub;
    ipk__nats_calm(n);
    pthread_mutex_unlock(&n->mu);
    /* libnats's queue holds what the ring would have held beside its own default. */
    int64_t msgs = (int64_t)n->limit + 65536, bytes = msgs * 1024;
    s = natsSubscription_SetPendingLimits(sub, msgs > INT_MAX ? INT_MAX : (int)msgs,
                                          bytes > INT_MAX ? INT_MAX : (int)bytes);
    if (s != NATS_OK)
        return ipk__nats_err(c, s, "pending limits");
    s = natsConnection_FlushTimeout(n->nc, ctimeout);
    return s == NATS_OK ? 0 : ipk__nats_err(c, s, "flush after subscribing");
}

/* ?stream=, ?durable=, ?queue=: names become parts of subjects, so they are plain words. */
static int ipk__nats_name_opt(ipk_chan *c, const char *key, const char **out)
{
    const char *v = ipk__opt(c, key);
    *out = v;
    if (v == NULL)
        return 0;
    size_t k = strlen(v);
    if (k == 0 || k > 200)
        return ipk__err(IPK_EOPTION, "%s: %s=: expected 1 to 200 characters", c->name, key);
    for (size_t i = 0; i < k; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_')
            return ipk__err(IPK_EOPTION, "%s: %s=%s: letters, digits, '-' and '_' only", c->name,
                            key, v);
    return 0;
}

static int ipk__nats_release(ipk_chan *c);

static int ipk__nats_open(ipk_chan *c)
{
    ipk__nats *n = calloc(1, sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    atomic_init(&n->calm, 0);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the clock of ipckit's deadlines */
    pthread_cond_init(&n->rcv, &ca);
    pthread_condattr_destroy(&ca);
    c->tp = n;
    n->evfd = c->rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->evfd < 0) {
        int r = ipk__errsys(-errno, "%s: eventfd", c->addr.body);
        ipk__nats_release(c);
        return r;
    }
    int r = ipk__nats_split(c->addr.body, c->addr.body, &n->url);
    char list[IPK__NATS_MAX_SERVERS * IPK__NATS_HOSTPORT];
    size_t off = 0;
    for (int i = 0; r == 0 && i < n->url.n; i++)
        off +=
            (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? "," : "", n->url.server[i]);
    if (r == 0)
        r = ipk__set_name(c, "nats://%s/%s", list, n->url.subject); /* no credentials in it */
    const char *queue = NULL;
    long ctimeout = 2000;
    if (r == 0)
        ipk__nats_subject(n->url.subject, c->name, &n->wild);
    if (r == 0 && n->wild && c->role == IPK__DIALER)
        r = ipk__err(IPK_EADDR, "%s: a dialer publishes: its subject cannot hold '*' or '>'",
                     c->name);
    if (r == 0)
        r = ipk__nats_name_opt(c, "stream", &n->stream);
    if (r == 0)
        r = ipk__nats_name_opt(c, "durable", &n->consumer);
    if (r == 0)
        r = ipk__nats_name_opt(c, "queue", &queue);
    if (r == 0)
        r = ipk__opt_long(c, "replicas", 1, 5, 1, &n->replicas);
    if (r == 0)
        r = ipk__opt_long(c, "ackwait", 1, 86400000, 30000, &n->ackwait_ms);
    if (r == 0)
        r = ipk__opt_long(c, "pending", 1, INT_MAX,
                          n->stream ? IPK__NATS_JS_PENDING : IPK__NATS_PENDING, &n->limit);
    if (r == 0)
        r = ipk__opt_long(c, "connect_timeout", 1, INT_MAX, 2000, &ctimeout);
    if (r == 0)
        r = ipk__opt_bool(c, "oneway", 0, &n->oneway);
    if (r == 0 && n->oneway && c->role != IPK__DIALER)
        r = ipk__err(IPK_EOPTION, "%s: oneway= is a dialer's: a listener only answers", c->name);
    if (r == 0 && n->stream == NULL &&
        (n->consumer || ipk__opt(c, "replicas") || ipk__opt(c, "ackwait")))
        r = ipk__err(IPK_EOPTION, "%s: durable=, replicas= and ackwait= need stream=", c->name);
    if (r == 0) {
        /* A queue group of a stream is a consumer shared by its members. */
        n->group = queue ? queue : n->consumer;
        if (n->consumer == NULL)
            n->consumer = queue;
    }
    if (r == 0)
        r = ipk__nats_options(c, n);
    if (r == 0)
        r = ipk__nats_connect(c, n);
    if (r == 0 && n->stream)
        r = ipk__nats_js_open(c, n);
    else if (r == 0)
        r = ipk__nats_subscribe(c, n, ctimeout);
    if (r == 0 && getrandom(&n->idbase, sizeof n->idbase, 0) != (ssize_t)sizeof n->idbase)
        n->idbase = (uint64_t)nats_NowInNanoSeconds() ^ ((uint64_t)getpid() << 32);
    if (r != 0)
        ipk__nats_release(c);
    return r;
}

static int ipk__nats_listen(ipk_chan *c)
{
    return ipk__nats_open(c);
}

static int ipk__nats_dial(ipk_chan *c)
{
    return ipk__nats_open(c);
}

/* ---- sending ---- */

/* The headers carrying msginfo (a priority of mq:, a type of sysv:), in a message m made for
 * them; *hdr: the bytes they add, which count against max_payload. m stays NULL without. */
static int ipk__nats_msg(ipk_chan *c, const char *to, const char *reply, const void *msg,
                         size_t len, const ipk_msginfo *mi, natsMsg **m)
{
    ipk__nats *n = c->tp;
    char prio[16] = "", type[24] = "";
    size_t hdr = 0;
    *m = NULL;
    if (mi && mi->prio)
        hdr += sizeof IPK__NATS_HDR_PRIO + 3 + (size_t)snprintf(prio, sizeof prio, "%u", mi->prio);
    if (mi && mi->type)
        hdr += sizeof IPK__NATS_HDR_TYPE + 3 + (size_t)snprintf(type, sizeof type, "%ld", mi->type);
    if (hdr)
        hdr += sizeof "NATS/1.0\r\n" - 1 + 2;
    if (n->max_payload > 0 && len + hdr > (size_t)n->max_payload)
        return ipk__err(IPK_EMSGSIZE,
                        "%s: message of %zu bytes%s exceeds the server's max_payload %lld "
                        "(nats-server option max_payload)",
                        c->name, len, hdr ? " with its headers" : "", (long long)n->max_payload);
    if (!hdr)
        return 0;
    natsStatus s = natsMsg_Create(m, to, reply, msg, (int)len);
    if (s == NATS_OK && prio[0])
        s = natsMsgHeader_Set(*m, IPK__NATS_HDR_PRIO, prio);
    if (s == NATS_OK && type[0])
        s = natsMsgHeader_Set(*m, IPK__NATS_HDR_TYPE, type);
    if (s != NATS_OK) {
        natsMsg_Destroy(*m);
        *m = NULL;
        return ipk__nats_err(c, s, "message headers");
    }
    return 0;
}

/* Waits until the server has confirmed everything published so far (a PING answered), while
 * the connection comes back if it was lost. */
static int ipk__nats_confirm(ipk_chan *c, ipk__nats *n, int64_t dl)
{
    natsStatus s = NATS_TIMEOUT;
    for (;;) {
        int ms = ipk__remaining_ms(dl);
        if (ms == 0)
            return ipk__err(ipk__expired(dl),
                            "%s: the server did not confirm the message in time (%s); it may "
                            "still arrive after a reconnection",
                            c->name, natsStatus_GetText(s));
        s = natsConnection_FlushTimeout(n->nc, ms < 0 || ms > 1000 ? 1000 : ms);
        if (s == NATS_OK)
            return 0;
        if (natsConnection_IsClosed(n->nc))
            return ipk__nats_err(c, NATS_CONNECTION_CLOSED, "send");
        if (s != NATS_TIMEOUT)
            ipk__nats_pause(dl);
    }
}

static int ipk__nats_publish(ipk_chan *c, ipk__nats *n, const void *msg, size_t len,
                             const ipk_msginfo *mi, int64_t dl)
{
    const char *to = n->url.subject, *reply = n->inbox;
    if (!n->stream && c->role == IPK__LISTENER) {
        if (n->reply == NULL || n->reply[0] == '\0')
            return ipk__err(-EDESTADDRREQ,
                            "%s: a listener's send answers the message it received last, and "
                            "none asked for an answer (dial to publish to the subject)",
                            c->name);
        to = n->reply;
        reply = NULL;
    }
    if (to == n->url.subject && n->wild)
        return ipk__err(IPK_ENOTSUP, "%s: cannot publish to a wildcard subject", c->name);
    natsMsg *m = NULL;
    int r = ipk__nats_msg(c, to, reply, msg, len, mi, &m);
    if (r != 0)
        return r;
    if (n->stream) {
        r = ipk__nats_js_send(c, n, m, msg, len, dl);
        natsMsg_Destroy(m);
        return r;
    }
    if (dl == IPK__DL_NOW && natsConnection_Status(n->nc) != NATS_CONN_STATUS_CONNECTED) {
        natsMsg_Destroy(m);
        return ipk__err(-EAGAIN, "%s: the server is away (reconnecting)", c->name);
    }
    natsStatus s = m       ? natsConnection_PublishMsg(n->nc, m)
                   : reply ? natsConnection_PublishRequest(n->nc, to, reply, msg, (int)len)
                           : natsConnection_Publish(n->nc, to, msg, (int)len);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        return ipk__nats_err(c, s, "publish");
    return 0;
}

static int ipk__nats_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                          int64_t dl)
{
    ipk__nats *n = c->tp;
    int r = ipk__nats_publish(c, n, msg, len, mi, dl);
    if (r != 0 || n->stream || dl == IPK__DL_NOW)
        return r;
    return ipk__nats_confirm(c, n, dl);
}

/* Several messages, one confirmation for them all. */
static long ipk__nats_sendv(ipk_chan *c, const ipk_iov *msgs, size_t count, int64_t dl)
{
    ipk__nats *n = c->tp;
    size_t i = 0;
    int r = 0;
    for (; i < count; i++)
        if ((r = ipk__nats_publish(c, n, msgs[i].base, msgs[i].len, NULL, dl)) != 0)
            break;
    if (i == 0)
        return r;
    if (!n->stream && dl != IPK__DL_NOW && (r = ipk__nats_confirm(c, n, dl)) != 0)
        return r;
    return (long)i;
}

/* ---- receiving ---- */

static void ipk__nats_info_of(natsMsg *m, ipk_msginfo *mi)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, IPK__NATS_HDR_PRIO, &v) == NATS_OK && v)
        mi->prio = (unsigned)strtoul(v, NULL, 10);
    if (natsMsgHeader_Get(m, IPK__NATS_HDR_TYPE, &v) == NATS_OK && v)
        mi->type = strtol(v, NULL, 10);
}

/* Hands a message taken from the ring to the caller; only then is a JetStream message
 * acknowledged, and a listener remembers whom to answer. */
static long ipk__nats_take(ipk_chan *c, ipk__nats *n, natsMsg *m, void *buf, ipk_msginfo *mi)
{
    int len = natsMsg_GetDataLength(m);
    if (len > 0)
        memcpy(buf, natsMsg_GetData(m), (size_t)len);
    if (mi)
        ipk__nats_info_of(m, mi);
    if (n->stream) {
        /* An acknowledgement lost with the connection only makes the server deliver the
         * message again: the caller has it, so this receive succeeds. */
        natsMsg_Ack(m, NULL);
    } else if (c->role == IPK__LISTENER) {
        const char *rp = natsMsg_GetReply(m);
        /* Kept in a buffer that only grows: no allocation per message received. */
        size_t k = rp ? strlen(rp) : 0;
        if (k >= n->replycap) {
            char *b = realloc(n->reply, k + 1);
            if (b != NULL) {
                n->reply = b;
                n->replycap = k + 1;
            } else
                k = 0; /* no memory: this message cannot be answered (-EDESTADDRREQ) */
        }
        if (n->reply != NULL) {
            memcpy(n->reply, rp ? rp : "", k);
            n->reply[k] = '\0';
        }
    }
    natsMsg_Destroy(m);
    return len;
}

static int ipk__nats_no_recv(const ipk_chan *c)
{
    const ipk__nats *n = c->tp;
    if (n->stream && c->role == IPK__DIALER)
        return ipk__err(IPK_ENOTSUP,
                        "%s: a stream's dialer publishes; listen (?durable=NAME) to consume",
                        c->name);
    if (n->oneway)
        return ipk__err(IPK_ENOTSUP,
                        "%s: a oneway=1 dialer publishes only (its messages carry no reply "
                        "inbox); dial without it to receive answers",
                        c->name);
    return 0;
}

/* Waits until the ring holds a message, a drop or the end is to be told, or dl passes
 * (ETIMEDOUT). */
static int ipk__nats_wait(ipk__nats *n, int64_t dl)
{
    struct timespec ts = {0};
    if (dl != IPK__DL_FOREVER) {
        ts.tv_sec = (time_t)(dl / 1000000000);
        ts.tv_nsec = (long)(dl % 1000000000);
    }
    int e = 0;
    pthread_mutex_lock(&n->mu);
    while (n->qn == 0 && !n->gone && n->dropped == 0 && e != ETIMEDOUT)
        e = dl == IPK__DL_FOREVER ? pthread_cond_wait(&n->rcv, &n->mu)
                                  : pthread_cond_timedwait(&n->rcv, &n->mu, &ts);
    int ready = n->qn || n->gone || n->dropped;
    pthread_mutex_unlock(&n->mu);
    return ready ? 0 : ETIMEDOUT;
}

/* A receive from the synchronous subscription itself (no descriptor given out yet), waiting up
 * to ms (-1: forever): 1 with *m taken and fitting cap, 0 to look at the ring again (a drop or
 * the end to tell, a message too big for cap put back at the ring's head, where the next
 * receive finds it first), or ETIMEDOUT when nothing came. */
static int ipk__nats_next(ipk__nats *n, size_t cap, int ms, natsMsg **m)
{
    natsStatus s = natsSubscription_NextMsg(m, n->rsub, ms < 0 ? 3600000 : ms);
    if (s == NATS_OK && (size_t)natsMsg_GetDataLength(*m) <= cap)
        return 1;
    if (s == NATS_TIMEOUT)
        return ETIMEDOUT;
    pthread_mutex_lock(&n->mu);
    if (s == NATS_OK) {
        if (ipk__nats_grow(n) == 0) {
            n->qhead = (n->qhead + n->qcap - 1) % n->qcap;
            n->q[n->qhead] = *m;
            n->qn++;
        } else {
            natsMsg_Destroy(*m);
            n->dropped++; /* no memory to keep it: said as a drop */
        }
        if (n->exported)
            ipk__nats_signal(n);
    } else if (s == NATS_SLOW_CONSUMER) {
        ipk__nats_drops(n, n->rsub);
    } else {
        n->gone = 1; /* the subscription ends with the connection only */
    }
    ipk__nats_calm(n);
    pthread_mutex_unlock(&n->mu);
    *m = NULL;
    return 0;
}

static long ipk__nats_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    ipk__nats *n = c->tp;
    int r = ipk__nats_no_recv(c);
    if (r != 0)
        return r;
    natsMsg *m = NULL;
    /* The usual case, as a plain libnats program receives: nothing in the ring nor to tell, so
     * the message is taken from libnats's queue without the mutex, and a message already
     * queued without reading the clock (a timed wait looks first for at most 1 ms, the
     * rounding of ipk__remaining_ms, then below for the rest of the time). */
    if (atomic_load_explicit(&n->calm, memory_order_acquire)) {
        int k = ipk__nats_next(n, cap, dl == IPK__DL_FOREVER ? -1 : dl == IPK__DL_NOW ? 0 : 1, &m);
        if (k == 1)
            return ipk__nats_take(c, n, m, buf, mi);
        if (k == ETIMEDOUT && dl == IPK__DL_NOW)
            return ipk__err(-EAGAIN, "%s: no message", c->name);
    }
    for (;;) {
        pthread_mutex_lock(&n->mu);
        int64_t dropped = n->dropped;
        size_t len = n->qn ? (size_t)natsMsg_GetDataLength(n->q[n->qhead]) : 0;
        if (dropped) {
            n->dropped = 0;
            ipk__nats_unsignal(n);
        } else if (n->qn && len <= cap) {
            m = n->q[n->qhead];
            n->qhead = (n->qhead + 1) % n->qcap;
            n->qn--;
            ipk__nats_unsignal(n);
            pthread_cond_signal(&n->cv);
        }
        ipk__nats_calm(n);
        int gone = n->gone, queued = n->qn != 0 || m != NULL;
        int direct = n->rsub != NULL && !n->pumping;
        pthread_mutex_unlock(&n->mu);
        if (dropped)
            return ipk__err(-ENOBUFS,
                            "%s: %lld messages were dropped: the receiver fell behind the server "
                            "(libnats slow consumer; raise ?pending=)",
                            c->name, (long long)dropped);
        if (m)
            return ipk__nats_take(c, n, m, buf, mi);
        if (queued) {
            c->need = len;
            return ipk__err(IPK_EMSGSIZE,
                            "%s: message of %zu bytes does not fit the buffer of %zu; it is kept "
                            "for the next recv",
                            c->name, len, cap);
        }
        if (gone) {
            const char *why = NULL;
            natsConnection_GetLastError(n->nc, &why);
            return ipk__err(-ENOTCONN, "%s: the connection is closed for good%s%s", c->name,
                            why && *why ? ": " : "", why ? why : "");
        }
        if (direct) {
            int k = ipk__nats_next(n, cap, ipk__remaining_ms(dl), &m);
            if (k == 1)
                return ipk__nats_take(c, n, m, buf, mi);
            /* A wait of ms rounded up, or an hour for ever: a timeout before dl looks again. */
            if (k == 0 || (dl != IPK__DL_NOW && ipk__remaining_ms(dl) != 0))
                continue;
        } else if (dl != IPK__DL_NOW && ipk__nats_wait(n, dl) == 0) {
            continue;
        }
        if (dl == IPK__DL_NOW)
            return ipk__err(-EAGAIN, "%s: no message", c->name);
        return ipk__err(ipk__expired(dl), "%s: no message", c->name);
    }
}

static int ipk__nats_pending(const ipk_chan *c)
{
    ipk__nats *n = c->tp;
    if (n == NULL)
        return 0;
    int msgs = 0;
    pthread_mutex_lock(&n->mu);
    int r = n->qn != 0;
    if (!r && n->rsub != NULL && !n->pumping)
        r = natsSubscription_GetPending(n->rsub, &msgs, NULL) == NATS_OK && msgs > 0;
    pthread_mutex_unlock(&n->mu);
    return r;
}

static int ipk__nats_fd(const ipk_chan *c)
{
    int r = ipk__nats_no_recv(c);
    return r != 0 ? r : ipk__nats_export(c);
}

/* ---- pollers: the eventfd is readable while a message waits in the ring (or the connection
 * is gone); a send never waits for room, so a channel is always writable. */
static int ipk__nats_poll_src(ipk_chan *c, unsigned interest, ipk__pollsrc *src)
{
    if (interest & IPK_POLLIN) {
        int r = ipk__nats_no_recv(c);
        if (r != 0)
            return r;
        int fd = ipk__nats_export(c);
        if (fd < 0)
            return fd;
        src->fd[0] = fd;
        src->ev[0] = EPOLLIN;
    }
    src->flags = IPK__PS_CHECK;
    return 0;
}

static int ipk__nats_poll_check(ipk_chan *c, unsigned interest, int op)
{
    (void)op;
    ipk__nats *n = c->tp;
    unsigned ready = interest & IPK_POLLOUT;
    pthread_mutex_lock(&n->mu);
    if ((interest & IPK_POLLIN) && (n->qn || n->gone || n->dropped))
        ready |= IPK_POLLIN;
    pthread_mutex_unlock(&n->mu);
    return (int)ready;
}

/* ---- closing ---- */

/* Waits (bounded) until no libnats thread can call into n any more. */
static int ipk__nats_quiesce(ipk__nats *n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += IPK__NATS_CLOSE_WAIT / 1000;
    pthread_mutex_lock(&n->mu);
    int e = 0;
    while (n->live > 0 && e != ETIMEDOUT)
        e = pthread_cond_timedwait(&n->cv, &n->mu, &ts);
    int live = n->live;
    pthread_mutex_unlock(&n->mu);
    return live;
}

/* Releases everything; also the failure path of open. */
static int ipk__nats_release(ipk_chan *c)
{
    ipk__nats *n = c->tp;
    if (n == NULL)
        return 0;
    pthread_mutex_lock(&n->mu);
    n->closing = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    /* Messages of a stream that were pushed here but not received go back at once (else the
     * server would wait ackwait before giving them to another consumer). */
    for (; n->qn; n->qn--, n->qhead = (n->qhead + 1) % n->qcap) {
        if (n->stream)
            natsMsg_Nak(n->q[n->qhead], NULL);
        natsMsg_Destroy(n->q[n->qhead]);
    }
    if (n->stream && n->nc && c->role == IPK__LISTENER)
        natsConnection_FlushTimeout(n->nc, 500);
    /* Unsubscribing deletes an ephemeral consumer that js_Subscribe made; the durable ones
     * were made apart (nats_js.c) and stay with the server. */
    if (n->sub)
        natsSubscription_Unsubscribe(n->sub);
    if (n->isub)
        natsSubscription_Unsubscribe(n->isub);
    if (n->pumping) /* it sees closing within its 100 ms wait, at once if unsubscribed */
        pthread_join(n->pump, NULL);
    if (n->nc)
        natsConnection_Close(n->nc);
    if (ipk__nats_quiesce(n) > 0) {
        /* A libnats thread still holds n: leaking it (and its descriptor) is safe, freeing
         * it is not. */
        c->rfd = -1;
        c->tp = NULL;
        return ipk__err(-EBUSY, "%s: libnats did not let go of the channel in %d ms; leaked",
                        c->name, IPK__NATS_CLOSE_WAIT);
    }
    natsSubscription_Destroy(n->sub);
    natsSubscription_Destroy(n->isub);
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    natsOptions_Destroy(n->o);
    pthread_cond_destroy(&n->cv);
    pthread_cond_destroy(&n->rcv);
    pthread_mutex_destroy(&n->mu);
    free(n->q);
    free(n->inbox);
    free(n->reply);
    free(n);
    c->tp = NULL;
    return 0; /* the core closes c->rfd, the eventfd */
}

/* What a send with timeout 0 left in libnats's buffer is written first (close lingers up to a
 * second, as for streams), so that close does not drop it. */
static int ipk__nats_close(ipk_chan *c)
{
    ipk__nats *n = c->tp;
    int r = 0;
    if (n && n->nc && !n->stream && natsConnection_Buffered(n->nc) > 0) {
        natsStatus s = natsConnection_FlushTimeout(n->nc, 1000);
        if (s != NATS_OK)
            r = ipk__nats_err(c, s, "flush at close");
    }
    int t = ipk__nats_release(c);
    return r != 0 ? r : t;
}

const ipk__transport ipk__tr_nats = {
    .scheme = "nats",
    .parse = ipk__nats_parse,
    .flags = IPK_SCHEME_QUEUE, /* the message family: many producers, consumers share */
    .usage = "nats://HOST:PORT[,HOST:PORT...]/SUBJECT",
    .keys = ipk__nats_keys,
    .summary = "NATS subject through libnats: queue groups, request/reply, JetStream streams",
    .listen = ipk__nats_listen,
    .dial = ipk__nats_dial,
    .send = ipk__nats_send,
    .sendv = ipk__nats_sendv,
    .recv = ipk__nats_recv,
    .fd = ipk__nats_fd,
    .pending = ipk__nats_pending,
    .close = ipk__nats_close,
    .info = ipk__nats_info,
    .poll_src = ipk__nats_poll_src,
    .poll_check = ipk__nats_poll_check,
};
