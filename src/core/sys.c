/*
 * sys.c - the thin layer over system calls: deadlines, EINTR policy, SIGPIPE suppression for
 * pipes, and fault injection for tests. Every blocking wait in ipckit goes through here, so the
 * rule "EINTR is retried with the time that is left" is written once.
 */
#include "ipk.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t ipk__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ipk__deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return IPK__DL_FOREVER;
    if (timeout_ms == 0)
        return IPK__DL_NOW;
    return ipk__now() + (int64_t)timeout_ms * 1000000;
}

int ipk__remaining_ms(int64_t dl)
{
    if (dl == IPK__DL_FOREVER)
        return -1;
    if (dl == IPK__DL_NOW)
        return 0;
    int64_t left = dl - ipk__now();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int ipk__expired(int64_t dl)
{
    return dl == IPK__DL_NOW ? -EAGAIN : IPK_ETIMEDOUT;
}

int ipk__wait_fds(struct pollfd *p, int n, int64_t dl)
{
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (dl != IPK__DL_FOREVER) {
            int64_t left = dl == IPK__DL_NOW ? 0 : dl - ipk__now();
            if (left < 0)
                left = 0;
            ts.tv_sec = (time_t)(left / 1000000000);
            ts.tv_nsec = (long)(left % 1000000000);
            tsp = &ts;
        }
        int r = ppoll(p, (nfds_t)n, tsp, NULL);
        if (r > 0)
            return r;
        if (r == 0)
            return ipk__expired(dl);
        if (errno != EINTR)
            return -errno;
        /* EINTR: go round with the time that is left. */
    }
}

int ipk__wait_fd(int fd, short events, int64_t dl)
{
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    int r = ipk__wait_fds(&p, 1, dl);
    if (r < 0)
        return r;
    if (p.revents & POLLNVAL)
        return -EBADF;
    return p.revents;
}

/*
 * Sleeping between non-blocking attempts is the only way to keep a deadline on a call that has
 * no descriptor and no timed variant (msgsnd/msgrcv, sigqueue) without a timer signal, which the
 * library may not install. A few yields first, then sleeps doubling from 50 us, keep the latency
 * low when the peer is quick; the 2 ms ceiling bounds it to 500 wake-ups a second when it is
 * not, far from burning a CPU.
 * An EINTR from nanosleep needs nothing: the caller retries and the next call recomputes.
 */
int ipk__backoff(int64_t dl, unsigned *step_us)
{
    if (dl == IPK__DL_NOW)
        return -EAGAIN;
    /* First a few yields: a peer on this CPU runs at once, one on another CPU usually answers
     * within microseconds, and the shortest sleep costs 50 us plus the timer slack. */
    if (*step_us < IPK__BACKOFF_YIELDS) {
        if (dl != IPK__DL_FOREVER && ipk__now() >= dl)
            return IPK_ETIMEDOUT;
        ++*step_us;
        sched_yield();
        return 0;
    }
    int64_t ns = (int64_t)(*step_us == IPK__BACKOFF_YIELDS ? 50 : *step_us) * 1000;
    if (dl != IPK__DL_FOREVER) {
        int64_t left = dl - ipk__now();
        if (left <= 0)
            return IPK_ETIMEDOUT;
        if (ns > left)
            ns = left;
    }
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
    *step_us = *step_us == IPK__BACKOFF_YIELDS ? 100 : (*step_us >= 1000 ? 2000 : *step_us * 2);
    return 0;
}

long ipk__proc_long(const char *path, long def)
{
    char b[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return def;
    ssize_t n = read(fd, b, sizeof b - 1); /* not ipk__read: keep fault counts for data I/O */
    close(fd);
    if (n <= 0)
        return def;
    b[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(b, &end, 10);
    return errno == 0 && end != b ? v : def;
}

/*
 * Another user can create an object at the name a listener is about to use (a FIFO, a queue)
 * before it does. Adopting it would let that user read or inject messages, and would make the
 * listener's close remove the other user's object. So a listener uses an object that exists
 * only when the caller owns it and its mode allows no more than perm; a wider mode must be
 * asked for with perm=, and another user's object is never adopted (dial it instead).
 */
int ipk__listen_adopt(const char *name, uid_t uid, mode_t mode, int perm)
{
    uid_t me = geteuid();
    mode &= 0777;
    if (uid != me)
        return ipk__err(-EEXIST,
                        "%s: exists and belongs to uid %u, not to this process (uid %u): refused, "
                        "since its owner could read or inject messages; remove it, or dial it",
                        name, (unsigned)uid, (unsigned)me);
    if (mode & ~(mode_t)perm)
        return ipk__err(-EEXIST,
                        "%s: exists with mode %04o, wider than perm=%04o: refused; remove it, or "
                        "listen with perm=%04o to accept it",
                        name, (unsigned)mode, (unsigned)perm, (unsigned)mode);
    return 0;
}

int ipk__emfile_fds(const char *name)
{
    int e = errno, fd = open("/", O_PATH | O_CLOEXEC); /* a probe, not ipckit's own work */
    if (fd >= 0 || errno != EMFILE) {
        if (fd >= 0)
            close(fd);
        errno = e;
        return 0;
    }
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_NOFILE, &rl);
    errno = e;
    return ipk__err(-EMFILE,
                    "%s: the process has no free descriptor (RLIMIT_NOFILE %llu, ulimit -n)", name,
                    (unsigned long long)rl.rlim_cur);
}

/* ---- fault injection ---- */

static struct {
    int nth, err;
} ipk__faults[IPK__SYS_COUNT];
static int ipk__faults_on;

void ipk__fault_set(enum ipk__syscall call, int nth, int err)
{
    ipk__faults[call].nth = nth;
    ipk__faults[call].err = err;
    ipk__faults_on = 1;
}

void ipk__fault_clear(void)
{
    memset(ipk__faults, 0, sizeof ipk__faults);
    ipk__faults_on = 0;
}

static int ipk__fault_hit(enum ipk__syscall call)
{
    if (!ipk__faults_on || ipk__faults[call].nth <= 0)
        return 0;
    if (--ipk__faults[call].nth > 0)
        return 0;
    return ipk__faults[call].err;
}

/* ---- wrappers ---- */

ssize_t ipk__read(int fd, void *buf, size_t n)
{
    struct iovec iov = {buf, n};
    return ipk__readv(fd, &iov, 1);
}

ssize_t ipk__readv(int fd, const struct iovec *iov, int n)
{
    int f = ipk__fault_hit(IPK__SYS_READ); /* a read like any other for fault injection */
    if (f)
        return -f;
    for (;;) {
        /* One segment: read(), which the kernel serves without copying in an iovec array
         * (measurably cheaper per small message than readv). */
        ssize_t r = n == 1 ? read(fd, iov[0].iov_base, iov[0].iov_len) : readv(fd, iov, n);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

int ipk__sigpipe_ignored(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0)
        return 0;
    return sa.sa_handler == SIG_IGN;
}

/*
 * A write to a pipe whose reader is gone raises SIGPIPE, which by default kills the process;
 * the library may not install a handler. So, unless the caller already ignores SIGPIPE, block it
 * in this thread around the write, and if the write failed with EPIPE, consume the SIGPIPE the
 * kernel queued for this thread before unblocking. If the caller had SIGPIPE blocked already, a
 * SIGPIPE pending now may be theirs, so it is left alone.
 */
ssize_t ipk__writev(int fd, const struct iovec *iov, int n, enum ipk__wkind kind, int sigpipe_ign)
{
    int f = ipk__fault_hit(IPK__SYS_WRITEV);
    if (f)
        return -f;
    if (kind == IPK__W_SOCK && n == 1) { /* send(): no msghdr or iovec to fetch */
        for (;;) {
            ssize_t r = send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
            if (r >= 0)
                return r;
            if (errno != EINTR)
                return -errno;
        }
    }
    if (kind == IPK__W_SOCK) {
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        for (;;) {
            ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
            if (r >= 0)
                return r;
            if (errno != EINTR)
                return -errno;
        }
    }
    sigset_t pipe_set, old;
    int masked = 0;
    if (!sigpipe_ign) {
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) == 0)
            masked = !sigismember(&old, SIGPIPE);
    }
    ssize_t r;
    do
        r = n == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, n);
    while (r < 0 && errno == EINTR);
    int e = r < 0 ? errno : 0;
    if (masked) {
        if (e == EPIPE) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return r < 0 ? -e : r;
}

int ipk__set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int ipk__fd_mode(int fd, signed char *state, int blocking)
{
    signed char want = blocking ? 1 : 2;
    if (*state == want)
        return 0;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) < 0) {
        *state = 0;
        return -errno;
    }
    *state = want;
    return 0;
}

int ipk__close_fd(int fd)
{
    /* Linux releases the descriptor even when close() reports EINTR: never retry. */
    if (fd < 0)
        return 0;
    if (close(fd) != 0 && errno != EINTR)
        return -errno;
    return 0;
}
