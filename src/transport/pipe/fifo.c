/*
 * fifo.c - the fifo: transport (named pipe). The listener is the reader: it creates the FIFO
 * (mkfifo, perm, default 0600) when absent and then owns it (removing it on close unless bytes
 * wait in the pipe, or keep= says otherwise), or uses an existing FIFO of its own; a path
 * that exists and is not a FIFO, or is a symbolic link, is refused and left untouched. The dialer
 * is a writer: it waits
 * (?wait=MS, default forever) for a reader to have the FIFO open. Frames are handled by stream.c.
 *
 * Two kernel behaviours shape the reader. read() on a FIFO that no writer has opened yet returns
 * 0, which is not the end of anything; and Linux's poll() on such a reader reports neither
 * POLLIN nor POLLHUP until a writer has come (and, for POLLHUP, gone) - so the reader polls
 * before its first read and reads only once a writer has been there.
 */
#include "ipk.h"
#include "objects.h"
#include "pipe.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const ipk__transport ipk__tr_fifo;

#define IPK__DIAL_STEP_MIN_NS ((int64_t)1000000)  /* first pause between open attempts: 1 ms */
#define IPK__DIAL_STEP_MAX_NS ((int64_t)50000000) /* the back-off stops at 50 ms */

typedef struct ipk__fifo {
    int hold;        /* persist=1: the reader's own write descriptor, so writers may come and go */
    int atomic;      /* refuse frames above PIPE_BUF, one frame per write */
    int seen_writer; /* a writer has been there: read() returning 0 now means EOF */
    dev_t dev;       /* the FIFO we created, to remove only that one */
    ino_t ino;
} ipk__fifo;

static int ipk__fifo_state(ipk_chan *c, ipk__fifo **out)
{
    int r = ipk__set_name(c, "fifo:%s", c->addr.body);
    if (r != 0)
        return r;
    ipk__fifo *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    f->hold = -1;
    if ((r = ipk__opt_bool(c, "atomic", 0, &f->atomic)) != 0) {
        free(f);
        return r;
    }
    *out = f;
    return 0;
}

/* Refuses, without opening it, a path that exists and is not a FIFO (st from lstat: a
 * symbolic link is refused as such, since another user may have planted it to redirect us). */
static int ipk__fifo_check(ipk_chan *c, const struct stat *st)
{
    if (S_ISFIFO(st->st_mode))
        return 0;
    if (S_ISLNK(st->st_mode))
        return ipk__err(-ELOOP, "%s: %s is a symbolic link; refused (O_NOFOLLOW), left untouched",
                        c->name, c->addr.body);
    return ipk__err(-EEXIST, "%s: %s exists and is not a FIFO; left untouched", c->name,
                    c->addr.body);
}

/* Opens path with flags, never through a symbolic link, and verifies that what was opened is a
 * FIFO. */
static int ipk__fifo_openat(ipk_chan *c, int flags, struct stat *st)
{
    int fd = ipk__sys_open(c->addr.body, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP) {
        st->st_mode = S_IFLNK;
        return ipk__fifo_check(c, st);
    }
    if (fd < 0)
        return -errno;
    if (ipk__sys_fstat(fd, st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    int r = ipk__fifo_check(c, st);
    if (r != 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* Removes the FIFO this channel created, and only that one: a path replaced meanwhile is not
 * ours. (A replacement between the check and unlink() cannot be excluded; it needs our write
 * access to the directory.) */
static int ipk__fifo_unlink(ipk_chan *c, const ipk__fifo *f)
{
    int r = ipk__still_ours(c->name, c->addr.body, f->dev, f->ino);
    if (r <= 0)
        return r;
    if (ipk__sys_unlink(c->addr.body) != 0 && errno != ENOENT)
        return ipk__errsys(-errno, "%s: unlink", c->name);
    return 0;
}

static int ipk__fifo_listen(ipk_chan *c)
{
    ipk__fifo *f;
    int r = ipk__fifo_state(c, &f), persist = 0;
    if (r != 0)
        return r;
    if ((r = ipk__opt_bool(c, "persist", 0, &persist)) != 0)
        goto fail;
    const char *path = c->addr.body;
    struct stat st;
    if (ipk__sys_mkfifo(path, (mode_t)c->perm) == 0) {
        c->owner = 1;
        if (ipk__sys_lstat(path, &st) != 0) {
            r = ipk__errsys(-errno, "%s: stat after mkfifo", c->name);
            ipk__sys_unlink(path); /* made a moment ago; its identity is all we lack */
            c->owner = 0;
            goto fail;
        }
        f->dev = st.st_dev;
        f->ino = st.st_ino;
    } else if (errno != EEXIST) {
        r = ipk__errsys(-errno, "%s: mkfifo", c->name);
        goto fail;
    } else if (ipk__sys_lstat(path, &st) != 0) {
        r = ipk__errsys(-errno, "%s: stat", c->name);
        goto fail;
    } else if ((r = ipk__fifo_check(c, &st)) != 0) {
        goto fail;
    }
    /* Opened without following links: a link planted in between would otherwise redirect us. */
    r = ipk__fifo_openat(c, O_RDONLY, &st);
    if (r < 0) {
        if (r != -EEXIST && r != -ELOOP)
            ipk__errsys(r, "%s: open for reading", c->name);
        goto fail;
    }
    c->rfd = r;
    if (!c->owner && (r = ipk__listen_adopt(c->name, st.st_uid, st.st_mode, c->perm)) != 0)
        goto fail;
    if (c->owner) {
        if (st.st_dev != f->dev || st.st_ino != f->ino) {
            r = ipk__err(-EEXIST, "%s: the FIFO was replaced while being opened", c->name);
            goto fail;
        }
        /* The mode asked for, not filtered by the umask. */
        if (ipk__sys_fchmod(c->rfd, (mode_t)c->perm) != 0) {
            r = ipk__errsys(-errno, "%s: fchmod %o", c->name, (unsigned)c->perm);
            goto fail;
        }
    }
    /* Our own write descriptor: the FIFO then never reports EOF when a writer leaves. */
    if (persist && (f->hold = ipk__sys_open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
        r = ipk__errsys(-errno, "%s: persist=1: open for writing", c->name);
        goto fail;
    }
    /* The FIFO's buffer is shared by its ends: each end grows it to its own pipesz=. */
    if ((r = ipk__pipe_size(c, c->rfd)) != 0)
        goto fail;
    c->wkind = IPK__W_PIPE;
    c->tp = f;
    return 0;
fail:
    if (c->owner)
        ipk__fifo_unlink(c, f);
    c->owner = 0;
    ipk__close_fd(c->rfd);
    c->rfd = -1;
    free(f);
    return r;
}

/*
 * Sleeps until min(now + step, dl); an interruption resumes towards the same absolute time,
 * so the deadline holds across EINTR.
 */
static void ipk__sleep_step(int64_t step, int64_t dl)
{
    int64_t until = ipk__now() + step;
    if (dl < until)
        until = dl;
    struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/*
 * open(O_WRONLY|O_NONBLOCK) fails with ENXIO while no reader has the FIFO open, and there is
 * no descriptor to poll for a reader's arrival: retry with a growing pause until the deadline.
 */
static int ipk__fifo_dial(ipk_chan *c)
{
    ipk__fifo *f;
    int r = ipk__fifo_state(c, &f);
    if (r != 0)
        return r;
    long wait;
    if ((r = ipk__opt_long(c, "wait", -1, INT_MAX, -1, &wait)) != 0)
        goto fail;
    struct stat st;
    if (ipk__sys_lstat(c->addr.body, &st) != 0) {
        r = errno == ENOENT
                ? ipk__err(-ENOENT, "%s: no such FIFO (the listener creates it)", c->name)
                : ipk__errsys(-errno, "%s: stat", c->name);
        goto fail;
    }
    if ((r = ipk__fifo_check(c, &st)) != 0)
        goto fail;
    int64_t dl = ipk__deadline((int)wait);
    int64_t step = IPK__DIAL_STEP_MIN_NS;
    while ((r = ipk__fifo_openat(c, O_WRONLY, &st)) == -ENXIO) {
        if (dl != IPK__DL_FOREVER && ipk__now() >= dl) {
            r = ipk__err(ipk__expired(dl), "%s: no reader opened the FIFO within wait=%ld ms",
                         c->name, wait);
            goto fail;
        }
        ipk__sleep_step(step, dl);
        if (step < IPK__DIAL_STEP_MAX_NS)
            step *= 2;
    }
    if (r < 0) {
        if (r != -EEXIST && r != -ELOOP)
            ipk__errsys(r, "%s: open for writing", c->name);
        goto fail;
    }
    c->wfd = r;
    if ((r = ipk__pipe_size(c, c->wfd)) != 0) {
        close(c->wfd);
        c->wfd = -1;
        goto fail;
    }
    c->wkind = IPK__W_PIPE;
    c->tp = f;
    return 0;
fail:
    free(f);
    return r;
}

/* The size of msg as it goes on the wire, header or newline included. */
static size_t ipk__fifo_wire(const ipk_chan *c, size_t len)
{
    return len + (c->framing == IPK__FR_LEN ? 4 : c->framing == IPK__FR_LINE ? 1 : 0);
}

static int ipk__fifo_atomic_check(ipk_chan *c, size_t len)
{
    size_t wire = ipk__fifo_wire(c, len);
    if (wire <= PIPE_BUF)
        return 0;
    return ipk__err(IPK_EMSGSIZE,
                    "%s: atomic=1: a %zu-byte message is a %zu-byte frame; PIPE_BUF (%d) is the "
                    "largest write the kernel keeps whole",
                    c->name, len, wire, PIPE_BUF);
}

/* atomic=1: the frame must fit PIPE_BUF; then the common path. Out of line, so that the hot
 * path below is a test and a jump (no registers to save around a call it does not make). */
__attribute__((noinline)) static int ipk__fifo_send_atomic(ipk_chan *c, const void *msg, size_t len,
                                                           const ipk_msginfo *mi, int64_t dl)
{
    int r = c->wfd >= 0 ? ipk__fifo_atomic_check(c, len) : 0;
    return r != 0 ? r : ipk__stream_send(c, msg, len, mi, dl);
}

IPK__HOTPATH static int ipk__fifo_send(ipk_chan *c, const void *msg, size_t len,
                                       const ipk_msginfo *mi, int64_t dl)
{
    const ipk__fifo *f = c->tp;
    if (__builtin_expect(f->atomic, 0))
        return ipk__fifo_send_atomic(c, msg, len, mi, dl);
    return ipk__stream_send(c, msg, len, mi, dl);
}

/* atomic=1 writes one frame per writev(): a batch above PIPE_BUF could be split by the kernel
 * and interleaved with another writer's frames. */
static long ipk__fifo_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl)
{
    const ipk__fifo *f = c->tp;
    if (!f->atomic || c->wfd < 0)
        return ipk__stream_sendv(c, msgs, n, dl);
    size_t i = 0;
    int r = 0;
    for (; i < n; i++)
        if ((r = ipk__fifo_send(c, msgs[i].base, msgs[i].len, NULL, i == 0 ? dl : IPK__DL_NOW)))
            break;
    return i > 0 ? (long)i : r;
}

/* Before the first read: not readable (nor hung up) until a writer has been there (see the top
 * of the file). Out of line, as for ipk__fifo_send_atomic. */
__attribute__((noinline)) static int ipk__fifo_await_writer(ipk_chan *c, int64_t dl)
{
    ipk__fifo *f = c->tp;
    if (c->rfd < 0)
        return 0;
    int w = ipk__wait_fd(c->rfd, POLLIN, dl);
    if (w < 0)
        return w == -EAGAIN || w == IPK_ETIMEDOUT
                   ? ipk__err(w, "%s: no writer has opened the FIFO yet", c->name)
                   : ipk__errsys(w, "%s: poll", c->name);
    f->seen_writer = 1;
    return 0;
}

IPK__HOTPATH static long ipk__fifo_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi,
                                        int64_t dl)
{
    const ipk__fifo *f = c->tp;
    /* framing=raw with no room is refused at once, as on the other streams: not after the wait
     * (which, with no byte in the pipe yet, was -EAGAIN, or forever with no timeout). */
    if (__builtin_expect(!f->seen_writer, 0) && (c->framing != IPK__FR_RAW || cap > 0)) {
        int r = ipk__fifo_await_writer(c, dl);
        if (r != 0)
            return r;
    }
    return ipk__stream_recv(c, buf, cap, mi, dl);
}

static long ipk__fifo_peek(ipk_chan *c, const void **p, int64_t dl)
{
    const ipk__fifo *f = c->tp;
    int r = f->seen_writer ? 0 : ipk__fifo_await_writer(c, dl);
    return r != 0 ? r : ipk__stream_peek(c, p, dl);
}

/* Bytes in the pipe that no reader has taken. They outlive this close only while a writer
 * still has the FIFO open (a pipe's buffer goes with its last descriptor): then the FIFO stays,
 * and the next reader gets them. */
static long ipk__fifo_undelivered(const ipk_chan *c)
{
    int n = 0;
    if (c->rfd < 0 || ioctl(c->rfd, FIONREAD, &n) != 0)
        return c->rfd < 0 ? 0 : ipk__errsys(-errno, "%s: FIONREAD", c->name);
    return n > 0;
}

static int ipk__fifo_close(ipk_chan *c)
{
    ipk__fifo *f = c->tp;
    if (f == NULL)
        return 0;
    int r = 0;
    ipk__close_fd(f->hold);
    if (c->owner && !c->keep)
        r = ipk__fifo_unlink(c, f);
    free(f);
    c->tp = NULL;
    return r;
}

/* The live limits: PIPE_BUF, a new pipe's capacity and the most an unprivileged user may set. */
static long ipk__fifo_info(const ipk__addr *a, char *buf, size_t cap)
{
    struct stat st;
    char what[128];
    if (ipk__sys_lstat(a->body, &st) != 0)
        snprintf(what, sizeof what, "absent (listen creates it, mode 0600)");
    else if (!S_ISFIFO(st.st_mode))
        snprintf(what, sizeof what, "exists and is NOT a FIFO (refused, left untouched)");
    else
        snprintf(what, sizeof what, "a FIFO, mode %04o, owner uid %u", (unsigned)st.st_mode & 07777,
                 (unsigned)st.st_uid);
    int fds[2], size = -1;
    if (ipk__sys_pipe2(fds, O_CLOEXEC) == 0) {
        size = ipk__sys_fcntl(fds[0], F_GETPIPE_SZ);
        close(fds[0]);
        close(fds[1]);
    }
    return snprintf(buf, cap,
                    "fifo: %s\n"
                    "path %s: %s\n"
                    "PIPE_BUF (largest write never interleaved, atomic=1 frame limit): %d bytes\n"
                    "pipe capacity: %d bytes (writers wait while it is full)\n",
                    ipk__tr_fifo.summary, a->body, what, PIPE_BUF, size);
}

/* ---- the FIFOs on this machine (ipk_objects_scan) ---- */

/* A pipe's buffer is freed when its last descriptor closes, so a FIFO nobody holds has nothing
 * waiting. One that is held is measured only when a reader holds it: opening it for reading
 * when none does could let a waiting writer in, to meet EPIPE once we close. */
static void ipk__fifo_obj_settle(ipk__obj *o, const ipk__objset *s)
{
    ipk__obj_settle_holders(o, s);
    o->bytes = o->npids == 0 ? 0 : -1;
    int fd = o->alive && o->readers ? open(o->name, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;
    struct stat st;
    int n;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == o->ino && st.st_dev == o->dev &&
        ioctl(fd, FIONREAD, &n) == 0)
        o->bytes = n;
    if (fd >= 0)
        close(fd);
}

static const ipk__objkind ipk__fifo_kind = {"fifo", 0, ipk__fifo_obj_settle, ipk__obj_unlink};
static const ipk__objkind *const ipk__fifo_kinds[] = {&ipk__fifo_kind, NULL};

static int ipk__fifo_objects(ipk__objset *s)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        ipk__obj *o =
            S_ISFIFO(s->files[i].st.st_mode)
                ? ipk__obj_add(s, &ipk__fifo_kind, s->files[i].path, "fifo:%s", s->files[i].path)
                : NULL;
        if (o != NULL)
            ipk__obj_stat(o, &s->files[i].st);
    }
    return 0;
}

static int ipk__fifo_resolve(const ipk_chan *c, ipk__objset *s)
{
    return ipk__obj_path(s, &ipk__fifo_kind, S_IFIFO, "fifo", c->addr.body);
}

static const char *const ipk__fifo_keys[] = {"framing", "perm", "keep",   "persist",
                                             "atomic",  "wait", "pipesz", NULL};

const ipk__transport ipk__tr_fifo = {
    .scheme = "fifo",
    .parse = ipk__addr_path,
    .flags = IPK_SCHEME_STREAM,
    .usage = "fifo:PATH",
    .keys = ipk__fifo_keys,
    .summary = "named pipe: listen reads (creates the FIFO 0600), dial writes",
    .listen = ipk__fifo_listen,
    .dial = ipk__fifo_dial,
    .send = ipk__fifo_send,
    .sendv = ipk__fifo_sendv,
    .recv = ipk__fifo_recv,
    .peek = ipk__fifo_peek,
    .release = ipk__stream_release,
    .undelivered = ipk__fifo_undelivered,
    .close = ipk__fifo_close,
    .info = ipk__fifo_info,
    .kinds = ipk__fifo_kinds,
    .objects = ipk__fifo_objects,
    .resolve = ipk__fifo_resolve,
};
