/*
 * chan.c - the channel object: finds the transport for an address, applies the options every
 * transport shares, validates arguments, and dispatches through the transport table.
 */
#include "ipk.h"
#include "transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

const char *ipk_version(void)
{
    return IPK_VERSION_STRING;
}

int ipk__set_name(ipk_chan *c, const char *fmt, ...)
{
    char buf[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *n = strdup(buf);
    if (n == NULL)
        return -ENOMEM;
    free(c->name);
    c->name = n;
    return 0;
}

int ipk__transport_key(const ipk__transport *tr, const char *key)
{
    if (strcmp(key, "max") == 0)
        return 1;
    for (const char *const *k = tr->keys; k && *k; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    return 0;
}

/* Keeps the thread's detail of a failed call with the channel (ipk_chan_errmsg). Only failures
 * pay for it, and an expected -EAGAIN of a non-blocking call has no detail to keep. */
__attribute__((cold, noinline)) static long ipk__note_fail(ipk_chan *c, long r)
{
    if (c != NULL && ipk_errmsg()[0] != '\0' &&
        (c->errmsg == NULL || strcmp(c->errmsg, ipk_errmsg()) != 0)) {
        char *m = strdup(ipk_errmsg());
        if (m != NULL) {
            free(c->errmsg);
            c->errmsg = m;
        }
    }
    return r;
}

/* A success costs one test: the data calls below pass through here on every message. */
static inline long ipk__note(ipk_chan *c, long r)
{
    return __builtin_expect(r < 0, 0) ? ipk__note_fail(c, r) : r;
}

/* ipk__deadline without the call for the two timeouts a message loop uses most: forever (< 0)
 * and never block (0), neither of which reads the clock. */
static inline int64_t ipk__dl(int timeout_ms)
{
    if (timeout_ms < 0)
        return IPK__DL_FOREVER;
    return timeout_ms == 0 ? IPK__DL_NOW : ipk__deadline(timeout_ms);
}

const char *ipk_chan_errmsg(const ipk_chan *c)
{
    return c && c->errmsg ? c->errmsg : "";
}

static ipk_chan *ipk__chan_alloc(void)
{
    ipk_chan *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->rfd = c->wfd = -1;
    c->status = -1;
    c->perm = 0600;
    c->peer_pid = -1;
    c->peer_uid = (uid_t)-1;
    c->peer_gid = (gid_t)-1;
    return c;
}

static void ipk__chan_free(ipk_chan *c)
{
    ipk__co_close(c);
    ipk__close_fd(c->rfd);
    if (c->wfd != c->rfd)
        ipk__close_fd(c->wfd);
    free(c->in.buf);
    free(c->out.buf);
    free(c->name);
    free(c->errmsg);
    ipk__kv_free(c->opts);
    ipk__addr_free(&c->addr);
    free(c);
}

/* The options every transport shares, read once so the hot paths need not look them up. */
static int ipk__common_opts(ipk_chan *c)
{
    int r;
    if ((r = ipk__opt_size(c, "max", IPK__DEFAULT_MAX, &c->max)) != 0)
        return r;
    if (c->max >= IPK__HARD_MAX)
        return ipk__err(IPK_EOPTION, "%s: max=%zu; the largest supported is %zu",
                        c->addr.scheme_name, c->max, IPK__HARD_MAX - 1);
    const char *f = ipk__opt(c, "framing");
    if (f == NULL || strcmp(f, "len") == 0)
        c->framing = IPK__FR_LEN;
    else if (strcmp(f, "raw") == 0)
        c->framing = IPK__FR_RAW;
    else if (strcmp(f, "line") == 0)
        c->framing = IPK__FR_LINE;
    else
        return ipk__err(IPK_EOPTION, "%s: framing=%s: expected len, raw or line",
                        c->addr.scheme_name, f);
    /* Modes are octal whether or not they start with 0, as with chmod(1). */
    const char *p = ipk__opt(c, "perm");
    if (p != NULL) {
        char *end;
        long perm = strtol(p, &end, 8);
        if (*p == '\0' || *end != '\0' || perm < 0 || perm > 07777)
            return ipk__err(IPK_EOPTION, "%s: perm=%s: expected an octal mode such as 0600",
                            c->addr.scheme_name, p);
        c->perm = (int)perm;
    }
    if (ipk__transport_key(c->tr, "flush")) {
        long us;
        if ((r = ipk__opt_long(c, "flush", 0, IPK__CO_MAX_US, IPK__CO_DEFAULT_US, &us)) != 0)
            return r;
        c->co.bound = (int64_t)us * 1000;
    }
    return ipk__opt_bool(c, "keep", 0, &c->keep);
}

/* A connected stream socket coalesces small sends unless flush=0 (stream.c, coalesce.c). Pipes
 * (fifo:, exec:) do not: the flusher thread could write to them only by switching the shared
 * descriptor to non-blocking mode under its owner, where a socket has MSG_DONTWAIT. */
static void ipk__co_setup(ipk_chan *c)
{
    if ((c->tr->flags & IPK__TF_STREAM) && c->role != IPK__LISTENER && c->wkind == IPK__W_SOCK &&
        c->wfd >= 0 && c->co.bound > 0)
        ipk__co_open(c, c->co.bound);
}

static int ipk__open(ipk_chan **out, const char *url, const ipk_opts *opts, enum ipk__role role)
{
    ipk__err_clear();
    if (out == NULL)
        return ipk__err(-EINVAL, "NULL result pointer");
    *out = NULL;
    ipk_chan *c = ipk__chan_alloc();
    if (c == NULL)
        return -ENOMEM;
    int r = ipk__addr_parse(&c->addr, url);
    if (r != 0)
        goto fail;
    const ipk__transport *tr = c->addr.tr;
    if (!ipk__transport_built(tr)) {
        r = ipk__err(IPK_ENOTBUILT, "%s: the %s: transport is not built in this version", url,
                     tr->scheme);
        goto fail;
    }
    c->tr = tr;
    c->role = role;
    if ((c->opts = ipk__kv_dup(c->addr.query)) == NULL && c->addr.query != NULL) {
        r = -ENOMEM;
        goto fail;
    }
    for (const ipk__kv *kv = opts ? opts->kv : NULL; kv; kv = kv->next)
        if ((r = ipk__kv_set(&c->opts, kv->key, kv->val)) != 0)
            goto fail;
    for (const ipk__kv *kv = c->opts; kv; kv = kv->next)
        if (!ipk__transport_key(tr, kv->key)) {
            r = ipk__err(IPK_EOPTION, "%s: unknown option '%s' for %s:", url, kv->key, tr->scheme);
            goto fail;
        }
    if ((r = ipk__common_opts(c)) != 0)
        goto fail;
    c->sigpipe_ign = ipk__sigpipe_ignored();
    r = role == IPK__LISTENER ? tr->listen(c) : tr->dial(c);
    if (r != 0)
        goto fail;
    if (c->name == NULL && (r = ipk__set_name(c, "%s", url)) != 0) {
        tr->close(c);
        goto fail;
    }
    ipk__co_setup(c);
    *out = c;
    return 0;
fail:
    ipk__chan_free(c);
    return r;
}

int ipk_listen(ipk_chan **out, const char *url, const ipk_opts *opts)
{
    return ipk__open(out, url, opts, IPK__LISTENER);
}

int ipk_dial(ipk_chan **out, const char *url, const ipk_opts *opts)
{
    return ipk__open(out, url, opts, IPK__DIALER);
}

int ipk_accept(ipk_chan *l, ipk_chan **peer, int timeout_ms)
{
    ipk__err_clear();
    if (l == NULL || peer == NULL)
        return ipk__err(-EINVAL, "ipk_accept: NULL argument");
    *peer = NULL;
    if (!(l->tr->flags & IPK__TF_ACCEPT) || l->role != IPK__LISTENER)
        return ipk__err(IPK_ENOTSUP, "%s: accept needs a listening %s", l->name,
                        (l->tr->flags & IPK__TF_ACCEPT) ? "channel"
                                                        : "connection-oriented channel");
    ipk_chan *p = ipk__chan_alloc();
    if (p == NULL)
        return -ENOMEM;
    int r = -ENOMEM;
    p->tr = l->tr;
    p->role = IPK__ACCEPTED;
    p->addr = l->addr;
    p->addr.body = strdup(l->addr.body);
    p->addr.query = ipk__kv_dup(l->addr.query);
    p->opts = ipk__kv_dup(l->opts);
    if (p->addr.body == NULL || (l->addr.query && !p->addr.query) || (l->opts && !p->opts))
        goto fail;
    p->max = l->max;
    p->framing = l->framing;
    p->perm = l->perm;
    p->keep = l->keep;
    p->sigpipe_ign = l->sigpipe_ign;
    p->co.bound = l->co.bound;
    if ((r = l->tr->accept(l, p, ipk__dl(timeout_ms))) != 0) {
        ipk__note(l, r);
        goto fail;
    }
    if (p->name == NULL && (r = ipk__set_name(p, "%s", l->name)) != 0) {
        p->tr->close(p);
        goto fail;
    }
    ipk__co_setup(p);
    *peer = p;
    return 0;
fail:
    ipk__chan_free(p);
    return r;
}

/* Why a data call may not go to the transport (see ipk__ready), with the message set. */
__attribute__((cold, noinline)) static int ipk__not_ready(ipk_chan *c, const char *what)
{
    if (c == NULL)
        return ipk__err(-EINVAL, "%s: NULL channel", what);
    if (c->broken)
        return ipk__err(IPK_ECLOSED, "%s: %s: the channel was shut down after: %s", c->name, what,
                        ipk_strerror(c->broken));
    return ipk__err(IPK_ENOTSUP, "%s: %s on a listener; accept a connection first", c->name, what);
}

/* Checks shared by every data call; returns 0 when the call may go to the transport. The common
 * case is one inlined test; the messages are built out of line (ipk__not_ready). */
static inline int ipk__ready(ipk_chan *c, const char *what)
{
    if (__builtin_expect(c != NULL && !c->broken &&
                             !(c->role == IPK__LISTENER && (c->tr->flags & IPK__TF_ACCEPT)),
                         1))
        return 0;
    return ipk__not_ready(c, what);
}

IPK__HOTPATH int ipk_sendx(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                           int timeout_ms)
{
    ipk__err_clear();
    int r = ipk__ready(c, "send");
    if (r != 0)
        return (int)ipk__note(c, r);
    if (msg == NULL && len > 0)
        return (int)ipk__note(
            c, ipk__err(-EINVAL, "%s: send: NULL message of %zu bytes", c->name, len));
    if (len > c->max)
        return (int)ipk__note(c, ipk__err(IPK_EMSGSIZE, "%s: message of %zu bytes exceeds max=%zu",
                                          c->name, len, c->max));
    return (int)ipk__note(c, c->tr->send(c, msg, len, mi, ipk__dl(timeout_ms)));
}

IPK__HOTPATH int ipk_send(ipk_chan *c, const void *msg, size_t len, int timeout_ms)
{
    return ipk_sendx(c, msg, len, NULL, timeout_ms);
}

long ipk_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int timeout_ms)
{
    ipk__err_clear();
    int r = ipk__ready(c, "send");
    if (r != 0)
        return ipk__note(c, r);
    if (msgs == NULL || n == 0)
        return ipk__note(c, ipk__err(-EINVAL, "%s: sendv: no messages", c->name));
    /* One pass with the limit in a register: this runs once per message of every batch. */
    const ipk_iov *m = msgs, *end = msgs + n;
    for (size_t max = c->max; m < end; m++)
        if (__builtin_expect(m->len > max || m->base == NULL, 0) && m->len > 0)
            break;
    if (m < end) {
        size_t i = (size_t)(m - msgs);
        if (m->base == NULL)
            return ipk__note(c, ipk__err(-EINVAL, "%s: sendv: message %zu is NULL", c->name, i));
        return ipk__note(c, ipk__err(IPK_EMSGSIZE, "%s: message %zu of %zu bytes exceeds max=%zu",
                                     c->name, i, m->len, c->max));
    }
    int64_t dl = ipk__dl(timeout_ms);
    if (c->tr->sendv)
        return ipk__note(c, c->tr->sendv(c, msgs, n, dl));
    size_t i = 0;
    for (; i < n; i++) {
        r = c->tr->send(c, msgs[i].base, msgs[i].len, NULL, i == 0 ? dl : IPK__DL_NOW);
        if (r != 0)
            break;
    }
    return ipk__note(c, i > 0 ? (long)i : r);
}

IPK__HOTPATH long ipk_recvx(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int timeout_ms)
{
    ipk__err_clear();
    int r = ipk__ready(c, "recv");
    if (r != 0)
        return ipk__note(c, r);
    if (buf == NULL && cap > 0)
        return ipk__note(c, ipk__err(-EINVAL, "%s: recv: NULL buffer of %zu bytes", c->name, cap));
    if (mi) {
        memset(mi, 0, sizeof *mi);
        mi->pid = -1;
        mi->uid = (uid_t)-1;
    }
    c->need = 0;
    int64_t dl = timeout_ms < 0 ? IPK__DL_FOREVER : IPK__DL_NOW;
    c->t_call = 0;
    if (timeout_ms > 0) { /* ipk__deadline, keeping the clock it read */
        c->t_call = ipk__now();
        dl = c->t_call + (int64_t)timeout_ms * 1000000;
    }
    long n = c->tr->recv(c, buf, cap, mi, dl);
    /* A poller reports a message left buffered in user space, which its descriptors cannot. */
    if (c->preg != NULL && n >= 0 && ipk_pending(c))
        ipk__poll_pending(c);
    return ipk__note(c, n);
}

IPK__HOTPATH long ipk_recv(ipk_chan *c, void *buf, size_t cap, int timeout_ms)
{
    return ipk_recvx(c, buf, cap, NULL, timeout_ms);
}

size_t ipk_needed(const ipk_chan *c)
{
    return c ? c->need : 0;
}

int ipk_pending(const ipk_chan *c)
{
    if (c == NULL || c->tr == NULL)
        return 0;
    if (c->tr->pending)
        return c->tr->pending(c);
    return (c->tr->flags & IPK__TF_STREAM) ? ipk__stream_pending(c) : 0;
}

int ipk_fd(const ipk_chan *c)
{
    if (c == NULL)
        return ipk__err(-EINVAL, "ipk_fd: NULL channel");
    if (c->tr->fd)
        return c->tr->fd(c);
    if (c->rfd >= 0)
        return c->rfd;
    return ipk__err(IPK_ENOTSUP, "%s: this channel has no pollable descriptor", c->name);
}

const char *ipk_addr(const ipk_chan *c)
{
    return c ? c->name : NULL;
}

const char *ipk_scheme(const ipk_chan *c)
{
    return c ? c->tr->scheme : NULL;
}

int ipk_peer(const ipk_chan *c, pid_t *pid, uid_t *uid, gid_t *gid)
{
    if (c == NULL)
        return ipk__err(-EINVAL, "ipk_peer: NULL channel");
    if (c->peer_pid < 0 && c->peer_uid == (uid_t)-1)
        return ipk__err(IPK_ENOTSUP, "%s: peer credentials are not known for this channel",
                        c->name);
    if (pid)
        *pid = c->peer_pid;
    if (uid)
        *uid = c->peer_uid;
    if (gid)
        *gid = c->peer_gid;
    return 0;
}

static int ipk__flush(ipk_chan *c, int64_t dl);

int ipk_shutdown(ipk_chan *c, int timeout_ms)
{
    ipk__err_clear();
    int r = ipk__ready(c, "shutdown");
    if (r != 0)
        return (int)ipk__note(c, r);
    if (!(c->tr->flags & IPK__TF_STREAM))
        return (int)ipk__note(
            c, ipk__err(IPK_ENOTSUP, "%s: shutdown applies to stream channels", c->name));
    if (c->wfd < 0)
        return (int)ipk__note(
            c, ipk__err(IPK_ENOTSUP, "%s: this end of the channel does not send", c->name));
    if ((c->out.len || c->co.on) && (r = ipk__flush(c, ipk__dl(timeout_ms))) != 0)
        return (int)ipk__note(c, r);
    if (c->wkind == IPK__W_SOCK) {
        if (shutdown(c->wfd, SHUT_WR) != 0)
            return (int)ipk__note(c, ipk__errsys(-errno, "%s: shutdown", c->name));
        return (int)ipk__note(c, 0);
    }
    r = ipk__close_fd(c->wfd);
    if (c->rfd == c->wfd)
        c->rfd = -1;
    c->wfd = -1;
    return (int)ipk__note(c, r);
}

/* Writes what a timed-out send left behind, through the transport when it has its own way. */
static int ipk__flush(ipk_chan *c, int64_t dl)
{
    return c->tr->flush ? c->tr->flush(c, dl) : ipk__stream_flush(c, dl);
}

int ipk_flush(ipk_chan *c, int timeout_ms)
{
    ipk__err_clear();
    int r = ipk__ready(c, "flush");
    if (r != 0 || !(c->tr->flags & IPK__TF_STREAM) || (c->out.len == 0 && !c->co.on))
        return (int)ipk__note(c, r);
    return (int)ipk__note(c, ipk__flush(c, ipk__dl(timeout_ms)));
}

/* How long close() may wait to write what a timed-out send left behind. */
#define IPK__CLOSE_LINGER_MS 1000

/* DESIGN §6, decided here once for every transport: an owner's close removes its object only
 * when no message waits in it for a receiver. keep= overrides it either way (1: never remove,
 * 0: remove even so); the transport's close then honours c->keep. */
static long ipk__undelivered(const ipk_chan *c)
{
    if (!c->owner || c->keep || ipk__opt(c, "keep") != NULL || c->tr->undelivered == NULL)
        return 0;
    long n = c->tr->undelivered(c);
    return n < 0 ? 1 : n; /* cannot tell: a stray object is the lesser harm than a lost message */
}

long ipk_undelivered(const ipk_chan *c)
{
    if (c == NULL)
        return ipk__err(-EINVAL, "ipk_undelivered: NULL channel");
    return ipk__undelivered(c);
}

int ipk_close(ipk_chan *c)
{
    ipk__err_clear();
    if (c == NULL)
        return 0;
    ipk__poll_forget(c);
    if (ipk__undelivered(c) > 0)
        c->keep = 1;
    int r = 0;
    if ((c->tr->flags & IPK__TF_STREAM) && (c->out.len || c->co.on) && !c->broken)
        r = ipk__flush(c, ipk__deadline(IPK__CLOSE_LINGER_MS));
    ipk__co_close(c); /* the flusher lets go of it before its descriptor closes */
    int t = c->tr->close ? c->tr->close(c) : 0;
    ipk__chan_free(c);
    return t != 0 ? t : r;
}

#define IPK__ZC(c, op)                                                                             \
    do {                                                                                           \
        int r_ = ipk__ready(c, #op);                                                               \
        if (r_ == 0 && (c)->tr->op == NULL)                                                        \
            r_ = ipk__err(IPK_ENOTSUP, "%s: this transport offers no zero-copy " #op, (c)->name);  \
        if (r_ != 0)                                                                               \
            return (int)ipk__note(c, r_);                                                          \
    } while (0)

int ipk_reserve(ipk_chan *c, void **p, size_t len, int timeout_ms)
{
    ipk__err_clear();
    IPK__ZC(c, reserve);
    if (p == NULL)
        return (int)ipk__note(c, ipk__err(-EINVAL, "%s: reserve: NULL pointer", c->name));
    if (len > c->max)
        return (int)ipk__note(c, ipk__err(IPK_EMSGSIZE, "%s: reserve of %zu bytes exceeds max=%zu",
                                          c->name, len, c->max));
    return (int)ipk__note(c, c->tr->reserve(c, p, len, ipk__dl(timeout_ms)));
}

int ipk_commit(ipk_chan *c, size_t len)
{
    ipk__err_clear();
    IPK__ZC(c, commit);
    return (int)ipk__note(c, c->tr->commit(c, len));
}

long ipk_peek(ipk_chan *c, const void **p, int timeout_ms)
{
    ipk__err_clear();
    IPK__ZC(c, peek);
    if (p == NULL)
        return ipk__note(c, ipk__err(-EINVAL, "%s: peek: NULL pointer", c->name));
    long n = c->tr->peek(c, p, ipk__dl(timeout_ms));
    /* As after a receive: what is buffered in user space (the held message counts: a peek
     * would return at once) is a poller's to report. */
    if (c->preg != NULL && n >= 0 && ipk_pending(c))
        ipk__poll_pending(c);
    return ipk__note(c, n);
}

int ipk_release(ipk_chan *c)
{
    ipk__err_clear();
    IPK__ZC(c, release);
    int r = c->tr->release(c);
    if (c->preg != NULL && r == 0 && ipk_pending(c))
        ipk__poll_pending(c);
    return (int)ipk__note(c, r);
}

long ipk_info(const char *url, char *buf, size_t cap)
{
    ipk__err_clear();
    ipk__addr a;
    int r = ipk__addr_parse(&a, url);
    if (r != 0)
        return r;
    const ipk__transport *tr = a.tr;
    long n;
    if (tr->info)
        n = tr->info(&a, buf, cap);
    else
        n = snprintf(buf, cap, "%s: %s\n", tr->scheme, tr->summary);
    ipk__addr_free(&a);
    return n;
}
