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
#include "objects.h"
#include "transport.h"

#include <errno.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
    case EMFILE: {
        /* The kernel says EMFILE both for a full descriptor table and for queues that would
         * exceed the user's RLIMIT_MSGQUEUE, which counts every queue the user owns. Without
         * attributes the queue gets the defaults. */
        char what[NAME_MAX + 8];
        snprintf(what, sizeof what, "mq:%s", n);
        int r = ipk__emfile_fds(what);
        if (r)
            return r;
        getrlimit(RLIMIT_MSGQUEUE, &rl);
        long maxmsg = at ? at->mq_maxmsg : ipk__proc_long(IPK__MQ_PROC "msg_default", 10);
        long msgsize = at ? at->mq_msgsize : ipk__proc_long(IPK__MQ_PROC "msgsize_default", 8192);
        return ipk__err(-EMFILE,
                        "mq:%s: the user's queues would exceed RLIMIT_MSGQUEUE (%llu bytes, ulimit "
                        "-q; this queue needs about %lld)",
                        n, (unsigned long long)rl.rlim_cur, (long long)maxmsg * (msgsize + 64));
    }
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
    int given = 0, made = 0, r;
    const char *n = c->addr.u.posix.name;
    if ((r = ipk__mq_opts(c, m, &at, &given)) != 0)
        goto fail;
    /* The kernel makes every mq descriptor close-on-exec; O_CLOEXEC says so here too. A
     * listener creates the queue exclusively; one that exists is used only when the caller
     * owns it and its mode is within perm (ipk__listen_adopt: another user may have planted
     * it). */
    int fl = O_RDWR | O_CLOEXEC | O_NONBLOCK;
    mqd_t q = create
                  ? ipk__sys_mq_open(n, fl | O_CREAT | O_EXCL, (mode_t)c->perm, given ? &at : NULL)
                  : ipk__sys_mq_open(n, fl);
    made = create && q != (mqd_t)-1;
    if (create && q == (mqd_t)-1 && errno == EEXIST)
        q = ipk__sys_mq_open(n, fl);
    if (q == (mqd_t)-1) {
        r = ipk__mq_open_err(c, errno, given ? &at : NULL);
        goto fail;
    }
    c->rfd = q;
    struct stat st;
    char what[NAME_MAX + 8];
    snprintf(what, sizeof what, "mq:%s", n);
    if (made && ipk__sys_fchmod(q, (mode_t)c->perm) != 0) { /* exactly perm, whatever the umask */
        r = ipk__errsys(-errno, "%s: fchmod %o", what, (unsigned)c->perm);
        goto fail;
    }
    if (create && !made && c->role == IPK__LISTENER) { /* a create=1 dialer dials what is there */
        r = ipk__sys_fstat(q, &st) != 0 ? ipk__errsys(-errno, "%s: fstat", what)
                                        : ipk__listen_adopt(what, st.st_uid, st.st_mode, c->perm);
        if (r != 0)
            goto fail;
    }
    if ((m->bq = ipk__sys_mq_open(n, O_RDWR | O_CLOEXEC)) == (mqd_t)-1) {
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
    if (made) /* created here: a listen that fails leaves nothing behind */
        ipk__sys_mq_unlink(n);
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
        int r = dl == IPK__DL_NOW ? ipk__sys_mq_send(c->rfd, msg, len, prio)
                : dl == IPK__DL_FOREVER
                    ? ipk__sys_mq_send(m->bq, msg, len, prio)
                    : ipk__sys_mq_timedsend(m->bq, msg, len, prio, ipk__mq_abs(dl, &ts));
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
        ssize_t n = dl == IPK__DL_NOW ? ipk__sys_mq_receive(c->rfd, to, room, &prio)
                    : dl == IPK__DL_FOREVER
                        ? ipk__sys_mq_receive(m->bq, to, room, &prio)
                        : ipk__sys_mq_timedreceive(m->bq, to, room, &prio, ipk__mq_abs(dl, &ts));
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

/* Whether the name still holds our queue: once ours was removed, another user may have made
 * one of that name, which root's close must not remove. 1 yes (EACCES: the caller is not
 * root, and the kernel refuses to remove another user's queue anyway), 0 no (or gone), or an
 * error when it cannot tell: the queue is left, and close says why. */
static int ipk__mq_ours(const ipk_chan *c)
{
    struct stat named, mine;
    mqd_t q = ipk__sys_mq_open(c->addr.u.posix.name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (q == (mqd_t)-1)
        return errno == ENOENT   ? 0
               : errno == EACCES ? 1
                                 : ipk__errsys(-errno, "%s: mq_open to check it", c->name);
    int r = ipk__sys_fstat(q, &named) == 0 && ipk__sys_fstat(c->rfd, &mine) == 0
                ? named.st_dev == mine.st_dev && named.st_ino == mine.st_ino
                : ipk__errsys(-errno, "%s: fstat", c->name);
    mq_close(q);
    return r;
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
    int r = c->owner && !c->keep ? ipk__mq_ours(c) : 0;
    if (r == 1)
        r = ipk__sys_mq_unlink(c->addr.u.posix.name) != 0 && errno != ENOENT
                ? ipk__errsys(-errno, "%s: mq_unlink", c->name)
                : 0;
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
    mqd_t q = ipk__sys_mq_open(a->u.posix.name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
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

/* ---- the queues on this machine (ipk_objects_scan) ---- */

#define IPK__MQUEUE_MAGIC 0x19800202 /* statfs f_type of an mqueue file system */

static int ipk__mq_obj_remove(const ipk__obj *o, unsigned flags)
{
    mqd_t q = mq_open(o->name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    struct mq_attr at;
    int r = 0;
    if (q == (mqd_t)-1)
        return ipk__errsys(-errno, "%s: mq_open", o->url);
    if (o->has_ino && fstat(q, &st) == 0 && st.st_ino != o->ino)
        r = ipk__err(-ESTALE, "%s: replaced since it was inspected; left alone", o->url);
    else if (!(flags & IPK_OBJ_FORCE) && mq_getattr(q, &at) == 0 && at.mq_curmsgs > 0)
        r = ipk__err(-ENOTEMPTY, "%s: %ld messages wait in it now; not removed", o->url,
                     at.mq_curmsgs);
    mq_close(q);
    if (r == 0 && mq_unlink(o->name) != 0)
        r = ipk__errsys(-errno, "%s: mq_unlink", o->url);
    return r;
}

static const ipk__objkind ipk__mq_kind = {"posix-mq", IPK__OK_CARRIES, NULL, ipk__mq_obj_remove};
static const ipk__objkind *const ipk__mq_kinds[] = {&ipk__mq_kind, NULL};

/* What a listing of an mqueue file system says of one queue. */
typedef struct ipk__mq_ent {
    long long qsize; /* bytes queued, -1 unknown */
    unsigned uid, mode;
    unsigned long long dev, ino;
} ipk__mq_ent;

/* Adds queue name; e: what the file system said, or NULL. Its depth comes from mq_getattr. */
static int ipk__mq_obj_add(ipk__objset *s, const char *name, const ipk__mq_ent *e)
{
    mqd_t q = mq_open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (q == (mqd_t)-1 && e == NULL)
        return errno == ENOENT ? -ENOENT : ipk__errsys(-errno, "mq:%s: mq_open", name);
    ipk__obj *o = ipk__obj_add(s, &ipk__mq_kind, name, "mq:%s", name);
    struct mq_attr at;
    struct stat st;
    if (o != NULL && e != NULL) {
        o->uid = e->uid;
        o->mode = e->mode & 07777;
        o->dev = (dev_t)e->dev;
        o->ino = (ino_t)e->ino;
        o->has_ino = 1;
        o->bytes = e->qsize;
    }
    if (o != NULL && q != (mqd_t)-1 && fstat(q, &st) == 0)
        ipk__obj_stat(o, &st);
    if (o != NULL && q != (mqd_t)-1 && mq_getattr(q, &at) == 0)
        o->msgs = at.mq_curmsgs;
    if (q != (mqd_t)-1)
        mq_close(q);
    return o ? 0 : -ENOMEM;
}

/* Reads one entry of an mqueue directory: "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0". */
static int ipk__mq_stat_ent(int dfd, const char *file, ipk__mq_ent *e)
{
    struct stat st;
    if (fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    *e = (ipk__mq_ent){-1, st.st_uid, st.st_mode, st.st_dev, st.st_ino};
    int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC);
    char buf[128];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    if (sscanf(buf, "QSIZE:%lld", &e->qsize) != 1)
        e->qsize = -1;
    return 0;
}

/* Lists the queues of an mounted mqueue file system: each one to out as
 * "QSIZE UID MODE DEV INO /NAME" and a NUL (a name may hold any byte but '/' and NUL). */
static void ipk__mq_list(const char *dir, FILE *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    ipk__mq_ent e;
    while (d != NULL && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && ipk__mq_stat_ent(dirfd(d), de->d_name, &e) == 0)
            fprintf(out, "%lld %u %o %llu %llu /%s%c", e.qsize, e.uid, e.mode, e.dev, e.ino,
                    de->d_name, 0);
    if (d != NULL)
        closedir(d);
}

/* Where /dev/mqueue is not mounted, queues are listed by a child that mounts an mqueue file
 * system in a mount name space of its own (nobody else sees it, and it goes with the child).
 * The caller's own name spaces are left alone. Needs CAP_SYS_ADMIN. */
static FILE *ipk__mq_list_child(ipk__objset *s, pid_t *pid)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        ipk__obj_note(s, "POSIX queues not listed: pipe: %s", strerror(errno));
        return NULL;
    }
    *pid = fork(); /* the child writes through its own stream and leaves with _exit */
    if (*pid == 0) {
        close(p[0]);
        FILE *out = fdopen(p[1], "w");
        char dir[] = "/tmp/.ipckit-mq.XXXXXX";
        if (out == NULL || unshare(CLONE_NEWNS) != 0 ||
            mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 || mkdtemp(dir) == NULL)
            _exit(1);
        int ok = mount("mqueue", dir, "mqueue", 0, NULL) == 0;
        if (ok)
            ipk__mq_list(dir, out);
        umount2(dir, MNT_DETACH);
        rmdir(dir);
        fclose(out);
        _exit(ok ? 0 : 2);
    }
    close(p[1]);
    if (*pid < 0) {
        close(p[0]);
        ipk__obj_note(s, "POSIX queues not listed: fork: %s", strerror(errno));
        return NULL;
    }
    FILE *in = fdopen(p[0], "r");
    if (in == NULL)
        close(p[0]);
    return in;
}

static int ipk__mq_objects(ipk__objset *s)
{
    struct statfs fs;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len), *in = NULL;
    pid_t pid = -1;
    if (mem == NULL)
        return -ENOMEM;
    if (statfs("/dev/mqueue", &fs) == 0 && (unsigned long)fs.f_type == IPK__MQUEUE_MAGIC)
        ipk__mq_list("/dev/mqueue", mem);
    else if ((in = ipk__mq_list_child(s, &pid)) != NULL)
        for (int ch; (ch = getc(in)) != EOF;)
            putc(ch, mem);
    if (in != NULL)
        fclose(in);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (pid > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        ipk__obj_note(s, "POSIX queues not listed: /dev/mqueue is not mounted "
                         "(mount -t mqueue none /dev/mqueue)");
    fclose(mem);
    int r = 0;
    for (size_t off = 0; r != -ENOMEM && off < len; off += strlen(buf + off) + 1) {
        ipk__mq_ent e;
        int at = 0;
        if (sscanf(buf + off, "%lld %u %o %llu %llu %n", &e.qsize, &e.uid, &e.mode, &e.dev, &e.ino,
                   &at) == 5 &&
            at > 0 && buf[off + (size_t)at] == '/')
            r = ipk__mq_obj_add(s, buf + off + at, &e);
    }
    free(buf);
    return r == -ENOMEM ? r : 0;
}

static int ipk__mq_resolve(const ipk_chan *c, ipk__objset *s)
{
    return ipk__mq_obj_add(s, c->addr.u.posix.name, NULL);
}

/* ---- pollers: the queue descriptor polls readable when a message waits and writable when
 * the queue has room, both ways on the one O_RDWR descriptor. */
static int ipk__mq_poll_src(ipk_chan *c, unsigned interest, ipk__pollsrc *src)
{
    src->fd[0] = c->rfd;
    src->ev[0] =
        ((interest & IPK_POLLIN) ? EPOLLIN : 0) | ((interest & IPK_POLLOUT) ? EPOLLOUT : 0);
    return 0;
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
    .kinds = ipk__mq_kinds,
    .objects = ipk__mq_objects,
    .resolve = ipk__mq_resolve,
    .poll_src = ipk__mq_poll_src,
};
