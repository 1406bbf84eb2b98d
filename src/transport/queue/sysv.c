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
#include "objects.h"
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#define IPK__MSGMAX_PROC "/proc/sys/kernel/msgmax"

typedef struct ipk__sysv {
    int qid;
    key_t key;
    long type;     /* ?type= */
    long msgmax;   /* /proc/sys/kernel/msgmax when last read */
    size_t qbytes; /* the queue's msg_qbytes when last read */
    long *buf;     /* mtype, then bufsz bytes of mtext */
    size_t bufsz;
    /* In a poller with type != 0: the queue as it was when a receive last found no message of
     * our type (see ipk__sysv_poll_check), and when. */
    struct msqid_ds none_ds;
    int64_t none_at;
} ipk__sysv;

static const char *const ipk__sysv_keys[] = {"proj", "type", "perm", "keep", "create", NULL};

/* Reads msgmax and the queue's msg_qbytes, and sizes the buffer for the larger of the two. */
static int ipk__sysv_limits(ipk_chan *c, ipk__sysv *q)
{
    struct msqid_ds ds;
    q->msgmax = ipk__proc_long(IPK__MSGMAX_PROC, 8192);
    if (ipk__sys_msgctl(q->qid, IPC_STAT, &ds) == 0)
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
    *key = ipk__sys_ftok(c->addr.body, (int)proj);
    if (*key == (key_t)-1)
        return ipk__errsys(-errno, "sysv:%s: ftok needs an existing file '%s'", c->addr.body,
                           c->addr.body);
    return 0;
}

/* The queue at the listener's key existed: whether it is the caller's to use. */
static int ipk__sysv_adopt(ipk_chan *c, const ipk__sysv *q)
{
    struct msqid_ds ds;
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "sysv:%s (key 0x%x)", c->addr.body, (unsigned)q->key);
    if (ipk__sys_msgctl(q->qid, IPC_STAT, &ds) != 0)
        return ipk__errsys(-errno, "%s: msgctl(IPC_STAT)", what);
    /* The creator keeps the owner's rights whoever the owner is now: both must be us. */
    uid_t who = ds.msg_perm.cuid != geteuid() ? ds.msg_perm.cuid : ds.msg_perm.uid;
    return ipk__listen_adopt(what, who, (mode_t)ds.msg_perm.mode, c->perm);
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
     * without access hears EACCES now rather than at the first send. A listener creates the
     * queue exclusively; one that exists is used only when the caller owns and created it and
     * its mode is within perm (ipk__listen_adopt: another user may have planted it). */
    q->qid = ipk__sys_msgget(q->key, create ? IPC_CREAT | IPC_EXCL | c->perm : 0600);
    if (q->qid < 0 && create && errno == EEXIST) {
        q->qid = ipk__sys_msgget(q->key, 0600);
        /* A create=1 dialer dials what is there, as any dialer does. */
        if (q->qid >= 0 && c->role == IPK__LISTENER && (r = ipk__sysv_adopt(c, q)) != 0)
            goto fail;
    }
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
        if (ipk__sys_msgsnd(q->qid, q->buf, len, flags) == 0)
            return 0;
        int e = errno;
        if (e == EINTR)
            continue;
        struct msqid_ds ds;
        if (e == EIDRM || (e == EINVAL && ipk__sys_msgctl(q->qid, IPC_STAT, &ds) != 0))
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
        ssize_t n = ipk__sys_msgrcv(q->qid, q->buf, want, q->type, flags);
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
        if (c->preg != NULL && q->type != 0 && msgctl(q->qid, IPC_STAT, &q->none_ds) == 0)
            q->none_at = ipk__now();
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
                    "%s: a System V queue has no descriptor to poll; put it in an ipk_poller, "
                    "whose descriptor is",
                    c->name);
}

/* Whether the queue behind our id is still one this process's user created and owns: root's
 * close must never remove another user's queue (an id can be reused once ours is gone). 1 yes
 * (EACCES: not root, and the kernel checks), 0 no (or gone), or an error when it cannot tell:
 * the queue is left, and close says why. */
static int ipk__sysv_ours(ipk_chan *c, const ipk__sysv *q)
{
    struct msqid_ds ds;
    if (ipk__sys_msgctl(q->qid, IPC_STAT, &ds) != 0)
        return errno == EACCES ? 1
               : errno == EINVAL || errno == EIDRM
                   ? 0
                   : ipk__errsys(-errno, "%s: msgctl(IPC_STAT)", c->name);
    return ds.msg_perm.cuid == geteuid() && ds.msg_perm.uid == geteuid() &&
           ds.msg_perm.__key == q->key;
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
    int r = q && c->owner && !c->keep && !c->broken ? ipk__sysv_ours(c, q) : 0;
    if (r == 1)
        r = ipk__sys_msgctl(q->qid, IPC_RMID, NULL) != 0 && errno != EIDRM && errno != EINVAL
                ? ipk__errsys(-errno, "%s: msgctl(IPC_RMID)", c->name)
                : 0;
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
        key = ipk__sys_ftok(a->body, (int)proj);
    }
    struct msqid_ds ds;
    int id = key == (key_t)-1 ? -1 : ipk__sys_msgget(key, 0);
    if (key == (key_t)-1)
        fprintf(f, "This queue: no key (%s)\n", strerror(errno));
    else if (id < 0 || ipk__sys_msgctl(id, IPC_STAT, &ds) != 0)
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

/* ---- the queues on this machine (ipk_objects_scan) ---- */

static const ipk__objkind ipk__sysv_kind = {"sysv-msg", IPK__OK_CARRIES, ipk__obj_settle_used,
                                            ipk__obj_msq_remove};
static const ipk__objkind *const ipk__sysv_kinds[] = {&ipk__sysv_kind, NULL};

/* The keyed queues; the core lists the private ones (key 0 has no sysv: address). */
static int ipk__sysv_objects(ipk__objset *s)
{
    int r = ipk__obj_msq_scan(s, &ipk__sysv_kind, "sysv", -1);
    return r == -ENOMEM ? r : 0;
}

/* The key as listen and dial derive it (ftok with ?proj=, or the literal), then its queue. */
static int ipk__sysv_resolve(const ipk_chan *c, ipk__objset *s)
{
    key_t key;
    int r = ipk__sysv_key((ipk_chan *)c, &key);
    if (r != 0)
        return r;
    int id = msgget(key, 0);
    if (id < 0)
        return errno == ENOENT ? ipk__err(-ENOENT, "sysv:%s: no such queue (key 0x%x)",
                                          c->addr.body, (unsigned)key)
                               : ipk__errsys(-errno, "sysv:%s: msgget", c->addr.body);
    r = ipk__obj_msq_scan(s, &ipk__sysv_kind, "sysv", id);
    return r != -ENOENT ? r : ipk__err(-ENOENT, "sysv:%s: no such queue", c->addr.body);
}

/* ---- pollers ---- */

/* After a receive of type t found none, a typed receiver is not reported again until the queue
 * has changed (count, bytes, times, pids) or 100 ms have passed: the kernel cannot say, without
 * taking it, whether a message of type t is there. */
#define IPK__SYSV_RESYNC_NS 100000000LL

static int ipk__sysv_poll_src(ipk_chan *c, unsigned interest, ipk__pollsrc *src)
{
    (void)c;
    (void)interest;
    src->flags = IPK__PS_CHECK | IPK__PS_TIMED; /* no descriptor: a timer and msgctl */
    return 0;
}

static int ipk__sysv_poll_check(ipk_chan *c, unsigned interest, int op)
{
    (void)op;
    ipk__sysv *q = c->tp;
    struct msqid_ds ds;
    if (msgctl(q->qid, IPC_STAT, &ds) != 0)
        return ipk__errsys(-errno, "%s: msgctl IPC_STAT", c->name);
    unsigned ready = 0;
    if ((interest & IPK_POLLOUT) && ds.msg_cbytes < ds.msg_qbytes)
        ready |= IPK_POLLOUT;
    if ((interest & IPK_POLLIN) && ds.msg_qnum > 0) {
        const struct msqid_ds *n = &q->none_ds;
        int same = q->none_at != 0 && ds.msg_qnum == n->msg_qnum &&
                   ds.msg_cbytes == n->msg_cbytes && ds.msg_stime == n->msg_stime &&
                   ds.msg_rtime == n->msg_rtime && ds.msg_lspid == n->msg_lspid &&
                   ds.msg_lrpid == n->msg_lrpid && ipk__now() - q->none_at < IPK__SYSV_RESYNC_NS;
        if (q->type == 0 || !same)
            ready |= IPK_POLLIN;
    }
    return (int)ready;
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
    .kinds = ipk__sysv_kinds,
    .objects = ipk__sysv_objects,
    .resolve = ipk__sysv_resolve,
    .poll_src = ipk__sysv_poll_src,
    .poll_check = ipk__sysv_poll_check,
};
