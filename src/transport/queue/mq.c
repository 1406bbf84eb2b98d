/*
 * mq.c - the mq: transport: POSIX message queues (mq_overview(7)).
 *
 * The listener creates the queue (mode ?perm=, attributes ?maxmsg= and ?msgsize=) and removes it
 * on close when it is empty (or keep=0; keep=1 never); a dialer opens a queue that exists, or
 * with create=1 creates it without owning it. Both may send and receive.
 *
 * Each channel opens the queue twice: c->rfd with O_NONBLOCK (what ipk_fd() returns and polls,
 * and what a call with timeout 0 uses), and a second descriptor without it for calls that wait,
 * so that a message costs one system call like a plain program's. The flag lives in each open
 * file description, so nothing is ever switched (a switched flag would be shared with forked
 * processes). A forever wait calls mq_receive()/mq_send() on the blocking descriptor; a finite
 * one calls mq_timedreceive()/mq_timedsend() with the monotonic deadline converted to the
 * absolute CLOCK_REALTIME time they want, and on ETIMEDOUT or EINTR checks the monotonic
 * deadline and goes round with what is left. Caveat: should the wall clock be set back during
 * such a wait, the wait lasts that much longer (a jump forward only ends a slice early).
 *
 * mq_receive() refuses a buffer smaller than the queue's msgsize and dequeues nothing, so it
 * cannot tell a caller with a small buffer how large the next message is. Such a receive goes
 * through an internal msgsize buffer; a message that does not fit the caller's buffer is held
 * there (c->need says its size) and handed out by the next receive that has room for it.
 */
#include "ipk.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define IPK__MQ_PROC "/proc/sys/fs/mqueue/"
/* What the kernel allows a creator with CAP_SYS_RESOURCE (HARD_MSGMAX, HARD_MSGSIZEMAX); the
 * sysctls bound everybody else. */
#define IPK__MQ_HARD_MAXMSG  65536L
#define IPK__MQ_HARD_MSGSIZE (16L << 20)
/* sysconf(_SC_MQ_PRIO_MAX) on Linux: priorities are 0..32767. */
#define IPK__MQ_PRIO_MAX 32768L

typedef struct ipk__mq {
    unsigned prio; /* ?prio=: the priority of a message sent without one */
    long maxmsg, msgsize;
    char *held; /* msgsize bytes, allocated when a caller's buffer is smaller than msgsize */
    size_t held_len;
    unsigned held_prio;
    int holding; /* held[0..held_len) is a received message the caller has not taken yet */
    mqd_t bq;    /* the same queue without O_NONBLOCK, for calls that wait */
} ipk__mq;

static const char *const ipk__mq_keys[] = {"prio", "maxmsg", "msgsize", "perm",
                                           "keep", "create", NULL};

/* Why mq_open() refused: the limit, its value and where it is set. */
static int ipk__mq_open_err(ipk_chan *c, int e, const struct mq_attr *at)
{
    const char *n = c->addr.u.posix.name;
    long msg_max = ipk__proc_long(IPK__MQ_PROC "msg_max", -1);
    long size_max = ipk__proc_long(IPK__MQ_PROC "msgsize_max", -1);
    struct rlimit rl = {0, 0};
    switch (e) {
    case ENOENT:
        return ipk__err(-ENOENT,
                        "mq:%s: no such queue (a listener creates it, or dial with create=1)", n);
    case EACCES:
        return ipk__errsys(-EACCES, "mq:%s: the queue's owner and mode do not allow read and write",
                           n);
    case EINVAL:
        if (at && at->mq_maxmsg > IPK__MQ_HARD_MAXMSG)
            return ipk__err(-EINVAL, "mq:%s: maxmsg %ld exceeds the kernel's hard limit %ld", n,
                            at->mq_maxmsg, IPK__MQ_HARD_MAXMSG);
        if (at && at->mq_msgsize > IPK__MQ_HARD_MSGSIZE)
            return ipk__err(-EINVAL, "mq:%s: msgsize %ld exceeds the kernel's hard limit %ld", n,
                            at->mq_msgsize, IPK__MQ_HARD_MSGSIZE);
        if (at && at->mq_maxmsg > msg_max)
            return ipk__err(-EINVAL, "mq:%s: maxmsg %ld exceeds " IPK__MQ_PROC "msg_max (%ld)", n,
                            at->mq_maxmsg, msg_max);
        if (at && at->mq_msgsize > size_max)
            return ipk__err(-EINVAL, "mq:%s: msgsize %ld exceeds " IPK__MQ_PROC "msgsize_max (%ld)",
                            n, at->mq_msgsize, size_max);
        return ipk__errsys(-EINVAL, "mq:%s: mq_open refused the name or the attributes", n);
    case EMFILE:
        /* The kernel says EMFILE both for a full descriptor table and for queues that would
         * exceed the user's RLIMIT_MSGQUEUE, which counts every queue the user owns. */
        getrlimit(RLIMIT_MSGQUEUE, &rl);
        return ipk__err(-EMFILE,
                        "mq:%s: the user's queues would exceed RLIMIT_MSGQUEUE (%llu bytes, ulimit "
                        "-q; this queue needs about %lld), or the process is out of descriptors",
                        n, (unsigned long long)rl.rlim_cur,
                        at ? (long long)at->mq_maxmsg * (at->mq_msgsize + 64) : 0LL);
    case ENOSPC:
        return ipk__err(-ENOSPC, "mq:%s: the system has " IPK__MQ_PROC "queues_max (%ld) queues", n,
                        ipk__proc_long(IPK__MQ_PROC "queues_max", -1));
    case ENOMEM:
        return ipk__err(-ENOMEM, "mq:%s: no memory for maxmsg %ld x msgsize %ld", n,
                        at ? at->mq_maxmsg : msg_max, at ? at->mq_msgsize : size_max);
    default:
        return ipk__errsys(-e, "mq:%s: mq_open", n);
    }
}

/* Reads ?prio=, ?maxmsg=, ?msgsize= (a size: 8192, 64k); *given: whether either attribute was
 * asked for. The kernel judges the attributes, since its limits depend on the caller's privilege.
 */
static int ipk__mq_opts(ipk_chan *c, ipk__mq *m, struct mq_attr *at, int *given)
{
    long prio;
    size_t size;
    int r;
    if ((r = ipk__opt_long(c, "prio", 0, IPK__MQ_PRIO_MAX - 1, 0, &prio)) != 0 ||
        (r = ipk__opt_long(c, "maxmsg", 1, LONG_MAX, ipk__proc_long(IPK__MQ_PROC "msg_default", 10),
                           &at->mq_maxmsg)) != 0 ||
        (r = ipk__opt_size(c, "msgsize",
                           (size_t)ipk__proc_long(IPK__MQ_PROC "msgsize_default", 8192), &size)) !=
            0)
        return r;
    if (size == 0 || size > LONG_MAX)
        return ipk__err(IPK_EOPTION, "mq: option msgsize=%s: expected 1 or more bytes",
                        ipk__opt(c, "msgsize"));
    at->mq_msgsize = (long)size;
    m->prio = (unsigned)prio;
    *given = ipk__opt(c, "maxmsg") != NULL || ipk__opt(c, "msgsize") != NULL;
    return 0;
}

static int ipk__mq_open(ipk_chan *c, int create)
{
    ipk__mq *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    m->bq = (mqd_t)-1;
    struct mq_attr at = {0}, got;
    int given = 0, r;
    const char *n = c->addr.u.posix.name;
    if ((r = ipk__mq_opts(c, m, &at, &given)) != 0)
        goto fail;
    /* The kernel makes every mq descriptor close-on-exec; O_CLOEXEC says so here too. */
    int fl = O_RDWR | O_CLOEXEC | O_NONBLOCK;
    mqd_t q =
        create ? mq_open(n, fl | O_CREAT, (mode_t)c->perm, given ? &at : NULL) : mq_open(n, fl);
    if (q == (mqd_t)-1) {
        r = ipk__mq_open_err(c, errno, given ? &at : NULL);
        goto fail;
    }
    c->rfd = q;
    if ((m->bq = mq_open(n, O_RDWR | O_CLOEXEC)) == (mqd_t)-1) {
        r = ipk__mq_open_err(c, errno, NULL);
        goto fail;
    }
    if (mq_getattr(q, &got) != 0) {
        r = ipk__errsys(-errno, "mq:%s: mq_getattr", n);
        goto fail;
    }
    /* A queue that already existed keeps its attributes; asking for others is a mistake the
     * caller should hear about rather than find out from a failed send. */
    if ((ipk__opt(c, "maxmsg") && got.mq_maxmsg != at.mq_maxmsg) ||
        (ipk__opt(c, "msgsize") && got.mq_msgsize != at.mq_msgsize)) {
        r = ipk__err(IPK_EOPTION,
                     "mq:%s: the queue exists with maxmsg %ld and msgsize %ld; asked for %ld and "
                     "%ld (remove it, or leave the attributes out)",
                     n, got.mq_maxmsg, got.mq_msgsize, at.mq_maxmsg, at.mq_msgsize);
        goto fail;
    }
    m->maxmsg = got.mq_maxmsg;
    m->msgsize = got.mq_msgsize;
    c->owner = create;
    c->tp = m;
    return 0;
fail:
    ipk__close_fd(c->rfd);
    if (m->bq != (mqd_t)-1)
        ipk__close_fd(m->bq);
    c->rfd = -1;
    free(m);
    return r;
}

static int ipk__mq_listen(ipk_chan *c)
{
    return ipk__mq_open(c, 1);
}

/* create=1: a producer may come first. It creates the queue when absent but does not own it,
 * so the queue and its messages outlive the producer until a consumer takes them. */
static int ipk__mq_dial(ipk_chan *c)
{
    int create, r = ipk__opt_bool(c, "create", 0, &create);
    if (r != 0)
        return r;
    if ((r = ipk__mq_open(c, create)) == 0)
        c->owner = 0;
    return r;
}

/* The absolute CLOCK_REALTIME time of the monotonic deadline dl, for mq_timed*(). */
static const struct timespec *ipk__mq_abs(int64_t dl, struct timespec *ts)
{
    int64_t left = dl - ipk__now();
    clock_gettime(CLOCK_REALTIME, ts);
    int64_t t = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + (left > 0 ? left : 0);
    ts->tv_sec = (time_t)(t / 1000000000);
    ts->tv_nsec = (long)(t % 1000000000);
    return ts;
}

/* After a failed mq call with errno e: 0 to go round (EINTR, or the wall clock ran ahead of the
 * monotonic deadline), ipk__expired(dl) once the deadline has passed, 1 for another error. */
static int ipk__mq_retry(int64_t dl, int e)
{
    if (e == EINTR)
        return 0;
    if (e != EAGAIN && e != ETIMEDOUT)
        return 1;
    if (dl == IPK__DL_NOW || dl == IPK__DL_FOREVER) /* FOREVER: EAGAIN cannot come; be safe */
        return dl == IPK__DL_NOW ? -EAGAIN : 0;
    return dl - ipk__now() > 0 ? 0 : IPK_ETIMEDOUT;
}

static int ipk__mq_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi, int64_t dl)
{
    ipk__mq *m = c->tp;
    if (len > (size_t)m->msgsize)
        return ipk__err(IPK_EMSGSIZE, "%s: message of %zu bytes exceeds the queue's msgsize %ld",
                        c->name, len, m->msgsize);
    /* A zero field in msginfo means "not given", as for sysv's type: ?prio= applies. */
    unsigned prio = mi && mi->prio ? mi->prio : m->prio;
    if (prio >= IPK__MQ_PRIO_MAX)
        return ipk__err(-EINVAL, "%s: priority %u out of range 0..%ld", c->name, prio,
                        IPK__MQ_PRIO_MAX - 1);
    for (;;) {
        struct timespec ts;
        int r = dl == IPK__DL_NOW       ? mq_send(c->rfd, msg, len, prio)
                : dl == IPK__DL_FOREVER ? mq_send(m->bq, msg, len, prio)
                                        : mq_timedsend(m->bq, msg, len, prio, ipk__mq_abs(dl, &ts));
        if (r == 0)
            return 0;
        int e = errno, w = ipk__mq_retry(dl, e);
        if (w > 0)
            return ipk__errsys(-e, "%s: mq_send", c->name);
        if (w < 0)
            return ipk__err(w, "%s: the queue is full (maxmsg %ld messages)", c->name, m->maxmsg);
    }
}

/* Hands the held message to the caller if it fits. */
static long ipk__mq_take(ipk_chan *c, ipk__mq *m, void *buf, size_t cap, ipk_msginfo *mi)
{
    if (mi)
        mi->prio = m->held_prio;
    if (m->held_len > cap) {
        c->need = m->held_len;
        return ipk__err(IPK_EMSGSIZE,
                        "%s: message of %zu bytes does not fit the buffer of %zu; it is kept for "
                        "the next recv",
                        c->name, m->held_len, cap);
    }
    memcpy(buf, m->held, m->held_len);
    m->holding = 0;
    return (long)m->held_len;
}

static long ipk__mq_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    ipk__mq *m = c->tp;
    if (m->holding)
        return ipk__mq_take(c, m, buf, cap, mi);
    int direct = cap >= (size_t)m->msgsize;
    if (!direct && m->held == NULL && (m->held = malloc((size_t)m->msgsize)) == NULL)
        return -ENOMEM;
    char *to = direct ? buf : m->held;
    size_t room = direct ? cap : (size_t)m->msgsize;
    for (;;) {
        unsigned prio;
        struct timespec ts;
        ssize_t n = dl == IPK__DL_NOW ? mq_receive(c->rfd, to, room, &prio)
                    : dl == IPK__DL_FOREVER
                        ? mq_receive(m->bq, to, room, &prio)
                        : mq_timedreceive(m->bq, to, room, &prio, ipk__mq_abs(dl, &ts));
        if (n >= 0) {
            if (direct) {
                if (mi)
                    mi->prio = prio;
                return (long)n;
            }
            m->holding = 1;
            m->held_len = (size_t)n;
            m->held_prio = prio;
            return ipk__mq_take(c, m, buf, cap, mi);
        }
        int e = errno, w = ipk__mq_retry(dl, e);
        if (w > 0)
            return ipk__errsys(-e, "%s: mq_receive", c->name);
        if (w < 0)
            return ipk__err(w, "%s: no message", c->name);
    }
}

static int ipk__mq_pending(const ipk_chan *c)
{
    const ipk__mq *m = c->tp;
    return m && m->holding;
}

static long ipk__mq_undelivered(const ipk_chan *c)
{
    struct mq_attr at;
    if (mq_getattr(c->rfd, &at) != 0)
        return ipk__errsys(-errno, "%s: mq_getattr", c->name);
    return at.mq_curmsgs;
}

static int ipk__mq_close(ipk_chan *c)
{
    ipk__mq *m = c->tp;
    int r = 0;
    if (c->owner && !c->keep && mq_unlink(c->addr.u.posix.name) != 0 && errno != ENOENT)
        r = ipk__errsys(-errno, "%s: mq_unlink", c->name);
    if (m) {
        if (m->bq != (mqd_t)-1)
            ipk__close_fd(m->bq);
        free(m->held);
    }
    free(m);
    c->tp = NULL;
    return r;
}

static void ipk__mq_describe(FILE *f, const ipk__addr *a)
{
    fprintf(
        f,
        "mq:%s - POSIX message queue\n"
        "  One send is one message. Receive takes the highest priority first, FIFO within a\n"
        "  priority. listen creates the queue (?perm=0600, ?maxmsg=, ?msgsize=) and removes it\n"
        "  on close when no message waits in it (?keep=1 never, ?keep=0 always); dial opens an\n"
        "  existing one (?create=1: creates it, not owned). ipk_fd() polls. Send blocks\n"
        "  while maxmsg messages wait. ?prio=N is the priority of a message sent without one\n"
        "  (msginfo.prio > 0 overrides). A message above msgsize is IPK_EMSGSIZE; a buffer\n"
        "  smaller than the next message gets IPK_EMSGSIZE and the message is kept.\n"
        "Limits (live):\n",
        a->u.posix.name);
    static const char *const files[] = {"msg_max", "msgsize_max", "msg_default", "msgsize_default",
                                        "queues_max"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[64];
        snprintf(p, sizeof p, IPK__MQ_PROC "%s", files[i]);
        fprintf(f, "  %-36s %ld\n", p, ipk__proc_long(p, -1));
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_MSGQUEUE, &rl) == 0)
        fprintf(f, "  %-36s %llu bytes\n", "RLIMIT_MSGQUEUE (ulimit -q)",
                (unsigned long long)rl.rlim_cur);
    fprintf(f, "  %-36s 0..%ld\n", "priorities", IPK__MQ_PRIO_MAX - 1);
    fprintf(f, "  %-36s maxmsg %ld, msgsize %ld\n", "privileged creators (hard limits)",
            IPK__MQ_HARD_MAXMSG, IPK__MQ_HARD_MSGSIZE);
    mqd_t q = mq_open(a->u.posix.name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct mq_attr at;
    if (q != (mqd_t)-1 && mq_getattr(q, &at) == 0)
        fprintf(f, "This queue: maxmsg %ld, msgsize %ld, %ld messages waiting\n", at.mq_maxmsg,
                at.mq_msgsize, at.mq_curmsgs);
    else
        fprintf(f, "This queue: %s\n", errno == ENOENT ? "does not exist" : strerror(errno));
    if (q != (mqd_t)-1)
        mq_close(q);
}

static long ipk__mq_info(const ipk__addr *a, char *buf, size_t cap)
{
    return ipk__info_print(a, buf, cap, ipk__mq_describe);
}

const ipk__transport ipk__tr_mq = {
    .scheme = "mq",
    .parse = ipk__addr_posix_name,
    .flags = IPK_SCHEME_QUEUE,
    .usage = "mq:/NAME",
    .keys = ipk__mq_keys,
    .summary = "POSIX message queue: priorities, highest first; pollable",
    .listen = ipk__mq_listen,
    .dial = ipk__mq_dial,
    .send = ipk__mq_send,
    .recv = ipk__mq_recv,
    .pending = ipk__mq_pending,
    .undelivered = ipk__mq_undelivered,
    .close = ipk__mq_close,
    .info = ipk__mq_info,
};
