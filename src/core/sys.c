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
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

IPK__HOTPATH int64_t ipk__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

IPK__HOTPATH int64_t ipk__deadline(int timeout_ms)
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
        int r = ipk__sys_ppoll(p, (nfds_t)n, tsp, NULL);
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

int ipk__still_ours(const char *name, const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    if (ipk__sys_lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : ipk__errsys(-errno, "%s: stat", name);
    return st.st_dev == dev && st.st_ino == ino;
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
static int ipk__faults_on, ipk__any_nth, ipk__any_err, ipk__ncalls, ipk__fired;
static unsigned char ipk__fault_log[IPK__FAULT_LOG];

void ipk__fault_set(enum ipk__syscall call, int nth, int err)
{
    ipk__faults[call].nth = nth;
    ipk__faults[call].err = err;
    ipk__faults_on = 1;
}

void ipk__fault_any(int nth, int err)
{
    ipk__any_nth = nth;
    ipk__any_err = err;
    ipk__ncalls = 0;
    ipk__fired = 0;
    ipk__faults_on = 1;
}

void ipk__fault_clear(void)
{
    memset(ipk__faults, 0, sizeof ipk__faults);
    ipk__any_nth = ipk__any_err = 0;
    ipk__faults_on = 0;
}

int ipk__fault_calls(void)
{
    return ipk__ncalls;
}

enum ipk__syscall ipk__fault_kind(int i)
{
    return i >= 1 && i <= ipk__ncalls && i <= IPK__FAULT_LOG
               ? (enum ipk__syscall)ipk__fault_log[i - 1]
               : IPK__SYS_COUNT;
}

int ipk__fault_fired(void)
{
    return ipk__fired;
}

const char *ipk__sys_name(enum ipk__syscall call)
{
#define IPK__SYS_TEXT(name, text) text,
    static const char *const names[] = {IPK__SYSCALLS(IPK__SYS_TEXT)};
#undef IPK__SYS_TEXT
    return (unsigned)call < IPK__SYS_COUNT ? names[call] : "?";
}

/* Called by every wrapper before its call: the errno to fail it with, or 0 to make it. */
IPK__HOTPATH static int ipk__fault_hit(enum ipk__syscall call)
{
    if (__builtin_expect(!ipk__faults_on, 1))
        return 0;
    int n = ++ipk__ncalls;
    if (n <= IPK__FAULT_LOG)
        ipk__fault_log[n - 1] = (unsigned char)call;
    if (ipk__faults[call].nth > 0 && --ipk__faults[call].nth == 0) {
        ipk__fired = n;
        return ipk__faults[call].err;
    }
    if (ipk__any_nth > 0 && n == ipk__any_nth) {
        ipk__fired = n;
        return ipk__any_err;
    }
    return 0;
}

/* ---- wrappers ---- */

IPK__HOTPATH ssize_t ipk__read(int fd, void *buf, size_t n)
{
    struct iovec iov = {buf, n};
    return ipk__readv(fd, &iov, 1);
}

/* A wrapped call: fails with the injected errno, else makes the call. */
#define IPK__SYS(kind, fail, call)                                                                 \
    do {                                                                                           \
        int f_ = ipk__fault_hit(IPK__SYS_##kind);                                                  \
        if (f_) {                                                                                  \
            errno = f_;                                                                            \
            return fail;                                                                           \
        }                                                                                          \
        return call;                                                                               \
    } while (0)
/* The same for a call that returns its error number. */
#define IPK__SYS_E(kind, call)                                                                     \
    do {                                                                                           \
        int f_ = ipk__fault_hit(IPK__SYS_##kind);                                                  \
        return f_ ? f_ : call;                                                                     \
    } while (0)

/* One segment: read(), which the kernel serves without copying in an iovec array (measurably
 * cheaper per small message than readv). */
IPK__HOTPATH static ssize_t ipk__readv1(int fd, const struct iovec *iov, int n)
{
    IPK__SYS(READ, -1, n == 1 ? read(fd, iov[0].iov_base, iov[0].iov_len) : readv(fd, iov, n));
}

IPK__HOTPATH ssize_t ipk__readv(int fd, const struct iovec *iov, int n)
{
    for (;;) {
        ssize_t r = ipk__readv1(fd, iov, n);
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
 * in this thread around the write, and if the write failed with EPIPE (or was cut short, which
 * is how a blocking write that the reader leaves half-way ends), consume the SIGPIPE the kernel
 * queued for this thread before unblocking. If the caller had SIGPIPE blocked already, a
 * SIGPIPE pending now may be theirs, so it is left alone.
 */
IPK__HOTPATH static ssize_t ipk__wsend(int fd, const void *p, size_t n)
{
    IPK__SYS(WRITEV, -1, send(fd, p, n, MSG_NOSIGNAL));
}

static ssize_t ipk__wsendmsg(int fd, const struct msghdr *mh)
{
    IPK__SYS(WRITEV, -1, sendmsg(fd, mh, MSG_NOSIGNAL));
}

IPK__HOTPATH static ssize_t ipk__wwrite(int fd, const struct iovec *iov, int n)
{
    IPK__SYS(WRITEV, -1, n == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, n));
}

/* A pipe write with SIGPIPE blocked around it (see above). Out of line: its signal sets need a
 * large stack frame that the other paths of ipk__writev should not pay for. */
__attribute__((noinline)) static ssize_t ipk__writev_masked(int fd, const struct iovec *iov, int n)
{
    sigset_t pipe_set, old;
    int masked = 0;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old) == 0)
        masked = !sigismember(&old, SIGPIPE);
    ssize_t r;
    do
        r = ipk__wwrite(fd, iov, n);
    while (r < 0 && errno == EINTR);
    int e = r < 0 ? errno : 0;
    if (masked) {
        /* A reader that goes away during a blocking write makes the kernel return the bytes it
         * took and queue SIGPIPE all the same: a short write may have raised one too. */
        size_t want = 0;
        for (int i = 0; e == 0 && i < n; i++)
            want += iov[i].iov_len;
        if (e == EPIPE || (e == 0 && (size_t)r < want)) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    return r < 0 ? -e : r;
}

IPK__HOTPATH ssize_t ipk__writev(int fd, const struct iovec *iov, int n, enum ipk__wkind kind,
                                 int sigpipe_ign)
{
    if (kind == IPK__W_SOCK && n == 1) { /* send(): no msghdr or iovec to fetch */
        for (;;) {
            ssize_t r = ipk__wsend(fd, iov[0].iov_base, iov[0].iov_len);
            if (r >= 0)
                return r;
            if (errno != EINTR)
                return -errno;
        }
    }
    if (kind == IPK__W_SOCK) {
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        for (;;) {
            ssize_t r = ipk__wsendmsg(fd, &mh);
            if (r >= 0)
                return r;
            if (errno != EINTR)
                return -errno;
        }
    }
    if (!sigpipe_ign)
        return ipk__writev_masked(fd, iov, n);
    for (;;) {
        ssize_t r = ipk__wwrite(fd, iov, n);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

int ipk__set_nonblock(int fd)
{
    int fl = ipk__sys_fcntl(fd, F_GETFL);
    if (fl < 0 || ipk__sys_fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

IPK__HOTPATH int ipk__fd_mode(int fd, signed char *state, int blocking)
{
    signed char want = blocking ? 1 : 2;
    if (*state == want)
        return 0;
    int fl = ipk__sys_fcntl(fd, F_GETFL);
    if (fl < 0 || ipk__sys_fcntl(fd, F_SETFL, blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK) < 0) {
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

/* ---- the wrappers of sys.h ---- */

ssize_t ipk__sys_read(int fd, void *buf, size_t n)
{
    IPK__SYS(READ, -1, read(fd, buf, n));
}

int ipk__sys_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    IPK__SYS(OPEN, -1, open(path, flags, mode));
}

int ipk__sys_stat(const char *path, struct stat *st)
{
    IPK__SYS(STAT, -1, stat(path, st));
}

int ipk__sys_lstat(const char *path, struct stat *st)
{
    IPK__SYS(STAT, -1, lstat(path, st));
}

int ipk__sys_fstat(int fd, struct stat *st)
{
    IPK__SYS(STAT, -1, fstat(fd, st));
}

int ipk__sys_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *); /* as glibc's fcntl reads it, int or pointer */
    va_end(ap);
    if (cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW)
        IPK__SYS(LOCK, -1, fcntl(fd, cmd, arg));
    IPK__SYS(FCNTL, -1, fcntl(fd, cmd, arg));
}

void *ipk__sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    IPK__SYS(MMAP, MAP_FAILED, mmap(addr, len, prot, flags, fd, off));
}

int ipk__sys_ftruncate(int fd, off_t len)
{
    IPK__SYS(FTRUNCATE, -1, ftruncate(fd, len));
}

int ipk__sys_posix_fallocate(int fd, off_t off, off_t len)
{
    IPK__SYS_E(FALLOCATE, posix_fallocate(fd, off, len));
}

int ipk__sys_chmod(const char *path, mode_t mode)
{
    IPK__SYS(CHMOD, -1, chmod(path, mode));
}

int ipk__sys_fchmod(int fd, mode_t mode)
{
    IPK__SYS(CHMOD, -1, fchmod(fd, mode));
}

int ipk__sys_unlink(const char *path)
{
    IPK__SYS(UNLINK, -1, unlink(path));
}

int ipk__sys_mkfifo(const char *path, mode_t mode)
{
    IPK__SYS(MKFIFO, -1, mkfifo(path, mode));
}

int ipk__sys_socket(int domain, int type, int proto)
{
    IPK__SYS(SOCKET, -1, socket(domain, type, proto));
}

int ipk__sys_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    IPK__SYS(BIND, -1, bind(fd, sa, len));
}

int ipk__sys_listen(int fd, int backlog)
{
    IPK__SYS(LISTEN, -1, listen(fd, backlog));
}

int ipk__sys_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    IPK__SYS(ACCEPT, -1, accept4(fd, sa, len, flags));
}

int ipk__sys_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    IPK__SYS(CONNECT, -1, connect(fd, sa, len));
}

int ipk__sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    IPK__SYS(SOCKINFO, -1, getsockopt(fd, level, opt, val, len));
}

int ipk__sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
    IPK__SYS(SOCKOPT, -1, setsockopt(fd, level, opt, val, len));
}

int ipk__sys_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
    IPK__SYS(SOCKINFO, -1, getsockname(fd, sa, len));
}

int ipk__sys_getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
    IPK__SYS(SOCKINFO, -1, getpeername(fd, sa, len));
}

IPK__HOTPATH ssize_t ipk__sys_send(int fd, const void *buf, size_t n, int flags)
{
    IPK__SYS(SEND, -1, send(fd, buf, n, flags));
}

IPK__HOTPATH ssize_t ipk__sys_sendto(int fd, const void *buf, size_t n, int flags,
                                     const struct sockaddr *sa, socklen_t len)
{
    IPK__SYS(SEND, -1, sendto(fd, buf, n, flags, sa, len));
}

int ipk__sys_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
    IPK__SYS(SEND, -1, sendmmsg(fd, v, n, flags));
}

IPK__HOTPATH ssize_t ipk__sys_recvmsg(int fd, struct msghdr *mh, int flags)
{
    IPK__SYS(RECV, -1, recvmsg(fd, mh, flags));
}

IPK__HOTPATH ssize_t ipk__sys_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
                                       socklen_t *len)
{
    IPK__SYS(RECV, -1, recvfrom(fd, buf, n, flags, sa, len));
}

ssize_t ipk__sys_pread(int fd, void *buf, size_t n, off_t off)
{
    IPK__SYS(PREAD, -1, pread(fd, buf, n, off));
}

ssize_t ipk__sys_pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    IPK__SYS(PWRITE, -1, pwritev(fd, iov, n, off));
}

int ipk__sys_fdatasync(int fd)
{
    IPK__SYS(FSYNC, -1, fdatasync(fd));
}

int ipk__sys_pipe2(int fds[2], int flags)
{
    IPK__SYS(PIPE, -1, pipe2(fds, flags));
}

int ipk__sys_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                         const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
    IPK__SYS_E(SPAWN, posix_spawn(pid, path, fa, at, argv, envp));
}

pid_t ipk__sys_waitpid(pid_t pid, int *status, int options)
{
    IPK__SYS(WAIT, -1, waitpid(pid, status, options));
}

int ipk__sys_waitid(idtype_t type, id_t id, siginfo_t *si, int options)
{
    IPK__SYS(WAIT, -1, waitid(type, id, si, options));
}

int ipk__sys_kill(pid_t pid, int sig)
{
    IPK__SYS(KILL, -1, kill(pid, sig));
}

mqd_t ipk__sys_mq_open(const char *name, int flags, ...)
{
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode_t mode = (mode_t)va_arg(ap, int);
        struct mq_attr *at = va_arg(ap, struct mq_attr *);
        va_end(ap);
        IPK__SYS(MQ_OPEN, (mqd_t)-1, mq_open(name, flags, mode, at));
    }
    IPK__SYS(MQ_OPEN, (mqd_t)-1, mq_open(name, flags));
}

int ipk__sys_mq_send(mqd_t q, const char *msg, size_t len, unsigned prio)
{
    IPK__SYS(MQ_SEND, -1, mq_send(q, msg, len, prio));
}

int ipk__sys_mq_timedsend(mqd_t q, const char *msg, size_t len, unsigned prio,
                          const struct timespec *ts)
{
    IPK__SYS(MQ_SEND, -1, mq_timedsend(q, msg, len, prio, ts));
}

ssize_t ipk__sys_mq_receive(mqd_t q, char *buf, size_t len, unsigned *prio)
{
    IPK__SYS(MQ_RECV, -1, mq_receive(q, buf, len, prio));
}

ssize_t ipk__sys_mq_timedreceive(mqd_t q, char *buf, size_t len, unsigned *prio,
                                 const struct timespec *ts)
{
    IPK__SYS(MQ_RECV, -1, mq_timedreceive(q, buf, len, prio, ts));
}

int ipk__sys_mq_unlink(const char *name)
{
    IPK__SYS(MQ_UNLINK, -1, mq_unlink(name));
}

key_t ipk__sys_ftok(const char *path, int proj)
{
    IPK__SYS(FTOK, (key_t)-1, ftok(path, proj));
}

int ipk__sys_msgget(key_t key, int flags)
{
    IPK__SYS(MSGGET, -1, msgget(key, flags));
}

int ipk__sys_msgctl(int id, int cmd, struct msqid_ds *ds)
{
    IPK__SYS(MSGCTL, -1, msgctl(id, cmd, ds));
}

int ipk__sys_msgsnd(int id, const void *msg, size_t len, int flags)
{
    IPK__SYS(MSGSND, -1, msgsnd(id, msg, len, flags));
}

ssize_t ipk__sys_msgrcv(int id, void *msg, size_t len, long type, int flags)
{
    IPK__SYS(MSGRCV, -1, msgrcv(id, msg, len, type, flags));
}

int ipk__sys_shm_open(const char *name, int flags, mode_t mode)
{
    IPK__SYS(SHM_OPEN, -1, shm_open(name, flags, mode));
}

int ipk__sys_shm_unlink(const char *name)
{
    IPK__SYS(SHM_UNLINK, -1, shm_unlink(name));
}

long ipk__sys_futex_wait(void *word, uint32_t val, const struct timespec *ts)
{
    /* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
    IPK__SYS(FUTEX, -1,
             syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, ts, NULL, FUTEX_BITSET_MATCH_ANY));
}

int ipk__sys_inotify_init1(int flags)
{
    IPK__SYS(INOTIFY, -1, inotify_init1(flags));
}

int ipk__sys_inotify_add_watch(int fd, const char *path, uint32_t mask)
{
    IPK__SYS(WATCH, -1, inotify_add_watch(fd, path, mask));
}

int ipk__sys_signalfd(int fd, const sigset_t *set, int flags)
{
    IPK__SYS(SIGNALFD, -1, signalfd(fd, set, flags));
}

int ipk__sys_rt_sigqueueinfo(pid_t pid, int sig, siginfo_t *si)
{
    IPK__SYS(SIGQUEUE, -1, (int)syscall(SYS_rt_sigqueueinfo, pid, sig, si));
}

int ipk__sys_ppoll(struct pollfd *p, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    IPK__SYS(POLL, -1, ppoll(p, n, ts, mask));
}
