/*
 * sysv.c - the sysv: transport: System V message queues (msgget(2), msgsnd(2), msgrcv(2)).
 *
 * The key is ftok(PATH, ?proj=) or a literal number. The listener creates the queue (mode
 * ?perm=) and removes it with IPC_RMID on close when no message waits in it (keep=1 never,
 * keep=0 always); a dialer opens one that exists, or with create=1 creates it without owning it.
 * On the wire a message is the guide's layout, a long type and then the payload bytes, so plain
 * programs using msgsnd/msgrcv interoperate.
 *
 * ?type= is the type of a message sent without one (msginfo.type > 0 overrides; default 1)
 * and the receive selector: 0 any, > 0 exactly that type, < 0 the lowest type up to |type|.
 *
 * A queue has no descriptor and these calls have no timed variant, and EINTR is never restarted
 * for them. Waiting forever is the blocking call, retried on EINTR; a finite deadline is
 * IPC_NOWAIT attempts with a bounded sleep between them (ipk__backoff: 50 us doubling to 2 ms),
 * so a wait costs at most 500 wake-ups a second and no spinning.
 *
 * A message larger than the caller's buffer is left in the queue (msgrcv without MSG_NOERROR
 * fails with E2BIG and dequeues nothing); the kernel does not say its size, so c->need is the
 * bound every message in the queue respects: the larger of msgmax and the queue's msg_qbytes.
 */
#include "ipk.h"
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#define IPK__MSGMAX_PROC "/proc/sys/kernel/msgmax"

typedef struct ipk__sysv {
    int qid;
    key_t key;
    long type;     /* ?type= */
    long msgmax;   /* /proc/sys/kernel/msgmax when last read */
    size_t qbytes; /* the queue's msg_qbytes when last read */
    long *buf;     /* mtype, then bufsz bytes of mtext */
    size_t bufsz;
} ipk__sysv;

static const char *const ipk__sysv_keys[] = {"proj", "type", "perm", "keep", "create", NULL};

/* Reads msgmax and the queue's msg_qbytes, and sizes the buffer for the larger of the two. */
static int ipk__sysv_limits(ipk_chan *c, ipk__sysv *q)
{
    struct msqid_ds ds;
    q->msgmax = ipk__proc_long(IPK__MSGMAX_PROC, 8192);
    if (msgctl(q->qid, IPC_STAT, &ds) == 0)
        q->qbytes = ds.msg_qbytes;
    size_t want = (size_t)q->msgmax > q->qbytes ? (size_t)q->msgmax : q->qbytes;
    if (want <= q->bufsz)
        return 0;
    long *b = realloc(q->buf, sizeof(long) + want);
    if (b == NULL)
        return ipk__err(-ENOMEM, "%s: no memory for a %zu-byte message buffer", c->name, want);
    q->buf = b;
    q->bufsz = want;
    return 0;
}

static int ipk__sysv_key(ipk_chan *c, key_t *key)
{
    if (c->addr.u.sysv.literal) {
        *key = (key_t)(unsigned)c->addr.u.sysv.key;
        return 0;
    }
    long proj;
    int r = ipk__opt_long(c, "proj", 1, 255, 1, &proj);
    if (r != 0)
        return r;
    *key = ftok(c->addr.body, (int)proj);
    if (*key == (key_t)-1)
        return ipk__errsys(-errno, "sysv:%s: ftok needs an existing file '%s'", c->addr.body,
                           c->addr.body);
    return 0;
}

static int ipk__sysv_open(ipk_chan *c, int create)
{
    ipk__sysv *q = calloc(1, sizeof *q);
    if (q == NULL)
        return -ENOMEM;
    int r;
    if ((r = ipk__opt_long(c, "type", LONG_MIN + 1, LONG_MAX, 0, &q->type)) != 0 ||
        (r = ipk__sysv_key(c, &q->key)) != 0)
        goto fail;
    /* A dialer asks for read and write: msgget checks the mode bits it is given, so an opener
     * without access hears EACCES now rather than at the first send. */
    q->qid = msgget(q->key, create ? IPC_CREAT | c->perm : 0600);
    if (q->qid < 0) {
        int e = errno;
        if (e == ENOENT)
            r = ipk__err(
                -ENOENT,
                "sysv:%s: no such queue (key 0x%x; a listener creates it, or dial with create=1)",
                c->addr.body, (unsigned)q->key);
        else if (e == ENOSPC)
            r = ipk__err(-ENOSPC, "sysv:%s: the system has /proc/sys/kernel/msgmni (%ld) queues",
                         c->addr.body, ipk__proc_long("/proc/sys/kernel/msgmni", -1));
        else
            r = ipk__errsys(-e, "sysv:%s: msgget (key 0x%x)", c->addr.body, (unsigned)q->key);
        goto fail;
    }
    if ((r = ipk__set_name(c, "sysv:0x%x", (unsigned)q->key)) != 0 ||
        (r = ipk__sysv_limits(c, q)) != 0)
        goto fail;
    c->owner = create;
    c->tp = q;
    return 0;
fail:
    free(q->buf);
    free(q);
    return r;
}

static int ipk__sysv_listen(ipk_chan *c)
{
    return ipk__sysv_open(c, 1);
}

/* create=1: a producer may come first; the queue it creates is not its own to remove. */
static int ipk__sysv_dial(ipk_chan *c)
{
    int create, r = ipk__opt_bool(c, "create", 0, &create);
    if (r != 0)
        return r;
    if ((r = ipk__sysv_open(c, create)) == 0)
        c->owner = 0;
    return r;
}

/* The queue was removed under us (EIDRM, or EINVAL once the id is gone): the channel is done,
 * and the id must not be used again, for the kernel may give it to a new queue. */
static int ipk__sysv_gone(ipk_chan *c, int code)
{
    c->broken = code;
    return ipk__err(code, "%s: the queue was removed", c->name);
}

/* Whether len fits the current msgmax and msg_qbytes (either may have changed since open). */
static int ipk__sysv_fits(ipk_chan *c, ipk__sysv *q, size_t len)
{
    int r = ipk__sysv_limits(c, q);
    if (r != 0)
        return r;
    if (len > (size_t)q->msgmax)
        return ipk__err(IPK_EMSGSIZE, "%s: message of %zu bytes exceeds " IPK__MSGMAX_PROC " (%ld)",
                        c->name, len, q->msgmax);
    if (len > q->qbytes)
        return ipk__err(IPK_EMSGSIZE,
                        "%s: message of %zu bytes exceeds the queue's msg_qbytes (%zu)", c->name,
                        len, q->qbytes);
    return 0;
}

static int ipk__sysv_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                          int64_t dl)
{
    ipk__sysv *q = c->tp;
    long type = mi && mi->type ? mi->type : (q->type > 0 ? q->type : 1);
    if (type <= 0)
        return ipk__err(-EINVAL, "%s: message type %ld; a type must be > 0", c->name, type);
    int r;
    if ((len > (size_t)q->msgmax || len > q->qbytes) && (r = ipk__sysv_fits(c, q, len)) != 0)
        return r;
    q->buf[0] = type;
    if (len)
        memcpy(q->buf + 1, msg, len);
    unsigned step = 0;
    int flags = dl == IPK__DL_FOREVER ? 0 : IPC_NOWAIT;
    for (;;) {
        if (msgsnd(q->qid, q->buf, len, flags) == 0)
            return 0;
        int e = errno;
        if (e == EINTR)
            continue;
        struct msqid_ds ds;
        if (e == EIDRM || (e == EINVAL && msgctl(q->qid, IPC_STAT, &ds) != 0))
            return ipk__sysv_gone(c, -EPIPE);
        /* EINVAL: msgmax was lowered since the check above. EAGAIN: the queue is full, or
         * msg_qbytes was lowered below len and the message would never fit: look again. */
        if ((e == EINVAL || e == EAGAIN) && (r = ipk__sysv_fits(c, q, len)) != 0)
            return r;
        if (e != EAGAIN)
            return ipk__errsys(-e, "%s: msgsnd", c->name);
        if ((r = ipk__backoff(dl, &step)) != 0)
            return ipk__err(r, "%s: the queue is full (msg_qbytes %zu bytes)", c->name, q->qbytes);
    }
}

static long ipk__sysv_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    ipk__sysv *q = c->tp;
    unsigned step = 0;
    int flags = dl == IPK__DL_FOREVER ? 0 : IPC_NOWAIT;
    for (;;) {
        size_t want = cap < q->bufsz ? cap : q->bufsz;
        ssize_t n = msgrcv(q->qid, q->buf, want, q->type, flags);
        if (n >= 0) {
            if (n)
                memcpy(buf, q->buf + 1, (size_t)n);
            if (mi)
                mi->type = q->buf[0];
            return (long)n;
        }
        int e = errno;
        if (e == EINTR)
            continue;
        if (e == EIDRM || e == EINVAL)
            return ipk__sysv_gone(c, IPK_EOF);
        if (e == E2BIG) {
            size_t had = q->bufsz;
            int r = ipk__sysv_limits(c, q);
            if (r != 0)
                return r;
            if (want < cap && q->bufsz > had)
                continue; /* the limits grew: our own buffer was too small, not the caller's */
            if (q->bufsz <= cap) {
                /* Larger than msgmax and msg_qbytes allow now: they were lowered since it was
                 * sent. It stays queued; its size is not known. */
                c->need = 0;
                return ipk__err(IPK_EMSGSIZE,
                                "%s: the next message is larger than msgmax (%ld) and msg_qbytes "
                                "(%zu), lowered since it was sent; it stays queued",
                                c->name, q->msgmax, q->qbytes);
            }
            c->need = q->bufsz;
            return ipk__err(IPK_EMSGSIZE,
                            "%s: the next message is larger than the buffer of %zu bytes; it "
                            "stays queued (a buffer of %zu, the larger of msgmax and msg_qbytes, "
                            "holds any message)",
                            c->name, cap, q->bufsz);
        }
        if (e != ENOMSG && e != EAGAIN)
            return ipk__errsys(-e, "%s: msgrcv", c->name);
        int r = ipk__backoff(dl, &step);
        if (r != 0)
            return ipk__err(r, "%s: no message of type %ld%s", c->name, q->type,
                            q->type == 0  ? " (any)"
                            : q->type < 0 ? " (lowest up to |type|)"
                                          : "");
    }
}

static int ipk__sysv_fd(const ipk_chan *c)
{
    return ipk__err(IPK_ENOTSUP,
                    "%s: a System V queue has no descriptor to poll; use recv with a timeout",
                    c->name);
}

static long ipk__sysv_undelivered(const ipk_chan *c)
{
    const ipk__sysv *q = c->tp;
    struct msqid_ds ds;
    if (msgctl(q->qid, IPC_STAT, &ds) == 0)
        return (long)ds.msg_qnum;
    if (errno == EIDRM || errno == EINVAL) /* removed already: nothing is left to keep */
        return 0;
    return ipk__errsys(-errno, "%s: msgctl(IPC_STAT)", c->name);
}

static int ipk__sysv_close(ipk_chan *c)
{
    ipk__sysv *q = c->tp;
    int r = 0;
    if (q && c->owner && !c->keep && !c->broken && msgctl(q->qid, IPC_RMID, NULL) != 0 &&
        errno != EIDRM && errno != EINVAL)
        r = ipk__errsys(-errno, "%s: msgctl(IPC_RMID)", c->name);
    if (q)
        free(q->buf);
    free(q);
    c->tp = NULL;
    return r;
}

static void ipk__sysv_describe(FILE *f, const ipk__addr *a)
{
    fprintf(f,
            "sysv:%s - System V message queue\n"
            "  One send is one message: a long type, then the payload (the guide's layout, so\n"
            "  plain msgsnd/msgrcv programs interoperate). The key is ftok(PATH, ?proj=1) or a\n"
            "  literal number. listen creates the queue (?perm=0600) and removes it on close\n"
            "  when no message waits in it (?keep=1 never, ?keep=0 always); dial opens an\n"
            "  existing one (?create=1: creates it, not owned). ?type=N: the type sent by default\n"
            "  (msginfo.type > 0 overrides; default 1) and the receive selector: 0 any, >0 that\n"
            "  type, <0 the lowest type up to |N|. No descriptor: finite timeouts poll with\n"
            "  IPC_NOWAIT and a 50 us..2 ms back-off. A message that does not fit the buffer\n"
            "  stays queued (IPK_EMSGSIZE; ipk_needed() gives a size that holds any message).\n"
            "Limits (live):\n",
            a->body);
    static const char *const files[] = {"msgmax", "msgmnb", "msgmni"};
    static const char *const what[] = {"largest message", "default msg_qbytes of a new queue",
                                       "queues in the system"};
    for (size_t i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/sys/kernel/%s", files[i]);
        fprintf(f, "  %-26s %-8ld %s\n", p, ipk__proc_long(p, -1), what[i]);
    }
    key_t key = a->u.sysv.literal ? (key_t)(unsigned)a->u.sysv.key : (key_t)-1;
    if (!a->u.sysv.literal) {
        long proj = 1;
        for (const ipk__kv *kv = a->query; kv; kv = kv->next)
            if (strcmp(kv->key, "proj") == 0 && ipk__parse_long(kv->val, 1, 255, &proj) != 0)
                proj = 1;
        key = ftok(a->body, (int)proj);
    }
    struct msqid_ds ds;
    int id = key == (key_t)-1 ? -1 : msgget(key, 0);
    if (key == (key_t)-1)
        fprintf(f, "This queue: no key (%s)\n", strerror(errno));
    else if (id < 0 || msgctl(id, IPC_STAT, &ds) != 0)
        fprintf(f, "This queue: key 0x%x, %s\n", (unsigned)key,
                errno == ENOENT ? "does not exist" : strerror(errno));
    else
        fprintf(f,
                "This queue: key 0x%x, msqid %d, mode %03o, owner uid %u, %lu messages, "
                "%lu of %lu bytes used\n",
                (unsigned)key, id, ds.msg_perm.mode & 0777, (unsigned)ds.msg_perm.uid,
                (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
                (unsigned long)ds.msg_qbytes);
}

static long ipk__sysv_info(const ipk__addr *a, char *buf, size_t cap)
{
    return ipk__info_print(a, buf, cap, ipk__sysv_describe);
}

static int ipk__parse_sysv(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (*b == '\0')
        return ipk__err(IPK_EADDR, "%s: missing key or path (sysv:0x7b0001 or sysv:PATH)", url);
    if (isdigit((unsigned char)*b) || (*b == '-' && isdigit((unsigned char)b[1]))) {
        long k;
        if (ipk__parse_long(b, INT_MIN, UINT_MAX, &k) != 0)
            return ipk__err(IPK_EADDR,
                            "%s: '%s' is not a key (a number; write ./%s for a file of that name)",
                            url, b, b);
        if (k == 0)
            return ipk__err(IPK_EADDR, "%s: key 0 is IPC_PRIVATE and cannot be shared by name",
                            url);
        a->u.sysv.literal = 1;
        a->u.sysv.key = k;
        return 0;
    }
    return ipk__addr_path(a, url);
}

const ipk__transport ipk__tr_sysv = {
    .scheme = "sysv",
    .parse = ipk__parse_sysv,
    .flags = IPK_SCHEME_QUEUE,
    .usage = "sysv:PATH or sysv:KEY",
    .keys = ipk__sysv_keys,
    .summary = "System V message queue: typed messages, receive by type",
    .listen = ipk__sysv_listen,
    .dial = ipk__sysv_dial,
    .send = ipk__sysv_send,
    .recv = ipk__sysv_recv,
    .fd = ipk__sysv_fd,
    .undelivered = ipk__sysv_undelivered,
    .close = ipk__sysv_close,
    .info = ipk__sysv_info,
};
