/*
 * exec.c - the exec: transport: a child process `/bin/sh -c CMD` with a pipe on its stdin
 * (our sends) and one on its stdout (our receives); its stderr is ours. Frames are handled by
 * stream.c. Closing sends EOF (our write end closes), then reaps the child through a pidfd,
 * bounded by ?linger=MS, and returns its wait status. No SIGCHLD handler is ever installed.
 */
#include "ipk.h"
#include "pipe.h"
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern const ipk__transport ipk__tr_exec;

extern char **environ;

#define IPK__LINGER_MS   5000 /* default: how long close waits for the child after EOF */
#define IPK__TERM_MS     1000 /* after SIGTERM, how long before SIGKILL */
#define IPK__KILLWAIT_MS 5000 /* after SIGKILL; only a child stuck in the kernel takes longer */

typedef struct ipk__exec {
    pid_t pid;
    int pidfd;
    int polled; /* no pidfd_open(2): reaping polls waitpid(WNOHANG) */
    long linger_ms;
} ipk__exec;

/* Moves fd above the standard descriptors, so the child's dup2 onto 0 and 1 cannot clobber
 * one of our pipe ends with the other, nor leave one close-on-exec (dup2(fd, fd) is a no-op). */
static int ipk__fd_above_std(int *fd)
{
    if (*fd > STDERR_FILENO)
        return 0;
    int n = ipk__sys_fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (n < 0)
        return -errno;
    close(*fd);
    *fd = n;
    return 0;
}

static int ipk__exec_pipes(int in[2], int out[2])
{
    if (ipk__sys_pipe2(in, O_CLOEXEC) != 0)
        return -errno;
    if (ipk__sys_pipe2(out, O_CLOEXEC) != 0)
        return -errno;
    int r = 0;
    for (int i = 0; i < 2 && r == 0; i++)
        if ((r = ipk__fd_above_std(&in[i])) == 0)
            r = ipk__fd_above_std(&out[i]);
    /* Only our ends are non-blocking (stream.c waits with poll); the child's stay blocking. */
    if (r == 0 && (r = ipk__set_nonblock(in[1])) == 0)
        r = ipk__set_nonblock(out[0]);
    return r;
}

/* Whether `file` is a regular file we may execute. */
static int ipk__exec_file(const char *file)
{
    struct stat st;
    return ipk__sys_stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, X_OK) == 0;
}

/*
 * Whether the shell may replace itself with cmd (`exec cmd`), so that the child IS the command:
 * close()'s SIGTERM/SIGKILL then reach it (dash, Debian's sh, forks a lone command instead of
 * exec'ing it, and a killed shell leaves it running), and ipk_peer() gives its pid. Only a
 * simple command qualifies: none of the characters that make a list, a pipeline, a subshell, a
 * substitution or a quoted word (; & | ( ) ` $ quotes backslash newline), no assignment before
 * it, and a first word that is a program (a path, or found on PATH as sh would), not a builtin
 * or a keyword. Anything else runs as written.
 */
static int ipk__exec_simple(const char *cmd)
{
    if (strpbrk(cmd, ";&|()`$\"'\\\n") != NULL)
        return 0;
    cmd += strspn(cmd, " \t");
    size_t n = strcspn(cmd, " \t<>");
    char word[256];
    if (n == 0 || n >= sizeof word || memchr(cmd, '=', n) != NULL)
        return 0;
    memcpy(word, cmd, n);
    word[n] = '\0';
    if (strcmp(word, "exec") == 0)
        return 0; /* already */
    if (strchr(word, '/'))
        return ipk__exec_file(word);
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *d = path;; d += strcspn(d, ":") + 1) {
        size_t dl = strcspn(d, ":");
        char file[4096];
        if (dl + 1 + n < sizeof file) { /* an empty entry is the current directory */
            snprintf(file, sizeof file, "%.*s%s%s", (int)dl, d, dl ? "/" : "", word);
            if (ipk__exec_file(file))
                return 1;
        }
        if (d[dl] == '\0')
            return 0;
    }
}

/*
 * posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), so no copy of a large parent) of
 * /bin/sh -c CMD (`exec CMD` for a simple command) with stdin/stdout on our pipes. The child gets
 * an empty signal mask and the default SIGPIPE action whatever the caller uses, and no descriptor
 * but 0, 1 and 2.
 */
static int ipk__exec_spawn(ipk_chan *c, int in_rd, int out_wr, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int e = posix_spawn_file_actions_init(&fa);
    if (e != 0)
        return -e;
    if ((e = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -e;
    }
    sigset_t none, pipe_set;
    sigemptyset(&none);
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if ((e = posix_spawn_file_actions_adddup2(&fa, in_rd, STDIN_FILENO)) == 0 &&
        (e = posix_spawn_file_actions_adddup2(&fa, out_wr, STDOUT_FILENO)) == 0 &&
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
        /* Also descriptors the caller left without close-on-exec. */
        (e = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1)) == 0 &&
#endif
        (e = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
        (e = posix_spawnattr_setsigdefault(&at, &pipe_set)) == 0 &&
        (e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0) {
        char *execd = NULL;
        if (ipk__exec_simple(c->addr.body) && asprintf(&execd, "exec %s", c->addr.body) < 0)
            execd = NULL; /* no memory for it: run as written */
        char *argv[] = {"sh", "-c", execd ? execd : c->addr.body, NULL};
        e = ipk__sys_posix_spawn(pid, "/bin/sh", &fa, &at, argv, environ);
        free(execd);
    }
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return e ? ipk__errsys(-e, "%s: cannot start /bin/sh -c '%s'", c->name, c->addr.body) : 0;
}

/*
 * Reaps the child if it has exited, waiting on the pidfd until dl. 0 with *status set, the
 * deadline's code while it still runs, or -ECHILD when someone else reaped it.
 */
static int ipk__exec_wait(ipk_chan *c, ipk__exec *x, int64_t dl, int *status)
{
    unsigned step = 0;
    for (;;) {
        /* No pidfd: the child was gone before we could watch it (see ipk__exec_pidfd). */
        pid_t w = x->pidfd >= 0 || x->polled ? ipk__sys_waitpid(x->pid, status, WNOHANG)
                                             : (errno = ECHILD, -1);
        if (w == x->pid)
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return ipk__errsys(-errno,
                               "%s: child %d was reaped elsewhere (SIGCHLD ignored, or a "
                               "waitpid(-1) in the program); its exit status is lost",
                               c->name, (int)x->pid);
        int r = x->polled ? ipk__backoff(dl, &step) : ipk__wait_fd(x->pidfd, POLLIN, dl);
        if (r < 0)
            return r;
    }
}

/* Bounded reaping: linger, then SIGTERM, then SIGKILL. Returns the wait status or an error. */
static int ipk__exec_reap(ipk_chan *c, ipk__exec *x)
{
    static const int sigs[] = {0, SIGTERM, SIGKILL};
    const long waits[] = {x->linger_ms, IPK__TERM_MS, IPK__KILLWAIT_MS};
    int status = 0, r = 0;
    for (int i = 0; i < 3; i++) {
        /* Through the pidfd: a signal can never reach a process that reused the pid. */
        if (sigs[i] && x->pidfd >= 0 &&
            syscall(SYS_pidfd_send_signal, x->pidfd, sigs[i], NULL, 0) != 0 && errno != ESRCH)
            return ipk__errsys(-errno, "%s: pidfd_send_signal(%d)", c->name, (int)x->pid);
        /* Without a pidfd the child is still unreaped, so its pid cannot have been reused. */
        if (sigs[i] && x->polled)
            ipk__sys_kill(x->pid, sigs[i]);
        r = ipk__exec_wait(c, x, ipk__deadline((int)waits[i]), &status);
        if (r == 0)
            return status;
        if (r != IPK_ETIMEDOUT && r != -EAGAIN)
            return r;
    }
    return ipk__err(IPK_ETIMEDOUT, "%s: child %d survived SIGKILL for %d ms; left unreaped",
                    c->name, (int)x->pid, IPK__KILLWAIT_MS);
}

/*
 * A pidfd for the child. If the caller ignores SIGCHLD, the kernel reaps a child that exits at
 * once, and its pid may even be reused before pidfd_open: then there is no child to watch
 * (x->pidfd stays -1, and close reports the lost status) rather than a stranger's pidfd.
 */
static int ipk__exec_pidfd(ipk_chan *c, ipk__exec *x)
{
    int fd = (int)syscall(SYS_pidfd_open, x->pid, 0); /* always close-on-exec */
    if (fd < 0 && errno == ESRCH)
        return 0;
    if (fd < 0 && errno == ENOSYS) {
        /* Before Linux 5.3 (or under valgrind): poll waitpid(WNOHANG) with a back-off. */
        x->polled = 1;
        return 0;
    }
    if (fd < 0)
        return ipk__errsys(-errno, "%s: pidfd_open", c->name);
    siginfo_t si;
    if (ipk__sys_waitid(P_PID, (id_t)x->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        close(fd); /* not our child any more: the pid was reused */
        return 0;
    }
    x->pidfd = fd;
    return 0;
}

static int ipk__exec_open(ipk_chan *c)
{
    long linger;
    int r = ipk__opt_long(c, "linger", 0, INT_MAX, IPK__LINGER_MS, &linger);
    if (r != 0)
        return r;
    if ((r = ipk__set_name(c, "exec:%s", c->addr.body)) != 0)
        return r;
    ipk__exec *x = calloc(1, sizeof *x);
    if (x == NULL)
        return -ENOMEM;
    x->linger_ms = linger;
    x->pidfd = -1;
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if ((r = ipk__exec_pipes(in, out)) != 0) {
        ipk__errsys(r, "%s: pipe", c->name);
        goto fail;
    }
    /* Both directions hold a whole 64 KiB frame (pipesz=, default 1 MiB): see stream.c. */
    if ((r = ipk__pipe_size(c, in[1])) != 0 || (r = ipk__pipe_size(c, out[0])) != 0)
        goto fail;
    if ((r = ipk__exec_spawn(c, in[0], out[1], &x->pid)) != 0)
        goto fail;
    if ((r = ipk__exec_pidfd(c, x)) != 0) {
        ipk__sys_kill(x->pid, SIGKILL); /* unreaped (unless SIGCHLD is ignored): still ours */
        while (ipk__sys_waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto fail;
    }
    close(in[0]);
    close(out[1]);
    c->wfd = in[1];
    c->rfd = out[0];
    c->wkind = IPK__W_PIPE;
    c->peer_pid = x->pid;
    c->peer_uid = geteuid();
    c->peer_gid = getegid();
    c->tp = x;
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        ipk__close_fd(in[i]);
        ipk__close_fd(out[i]);
    }
    free(x);
    return r;
}

/*
 * Our write end closes first, so the child reads EOF; our read end too, so a child still
 * writing output nobody will read gets EPIPE (or dies of SIGPIPE, its default) instead of
 * blocking forever on a full pipe.
 */
static int ipk__exec_close(ipk_chan *c)
{
    ipk__exec *x = c->tp;
    if (x == NULL)
        return 0;
    ipk__close_fd(c->wfd);
    ipk__close_fd(c->rfd);
    c->wfd = c->rfd = -1;
    int r = ipk__exec_reap(c, x);
    if (r >= 0)
        c->status = r;
    ipk__close_fd(x->pidfd);
    free(x);
    c->tp = NULL;
    return r;
}

/*
 * The classic deadlock of a pipe to a filter: we block writing a large message to `cat` while
 * cat blocks writing its echo to us, because nobody reads. So while a send (or the rest of a
 * frame a timed-out send left behind) waits for room in the child's stdin, whatever the child
 * writes is taken into the receive buffer, where the next recv finds it. This is bounded: past
 * max + 64 KiB of unread output we stop taking, and the caller must read (see docs).
 */
#define IPK__ABSORB_CHUNK ((size_t)64 << 10)

/* Reads what the child wrote into c->in. 0, or -1 when taking more in is not possible now. */
static int ipk__exec_absorb(ipk_chan *c)
{
    ipk__rbuf *in = &c->in;
    if (in->cap - in->off - in->len < IPK__ABSORB_CHUNK && !in->peeked) {
        if (in->off > 0) {
            memmove(in->buf, in->buf + in->off, in->len);
            in->off = 0;
        }
        if (in->cap - in->len < IPK__ABSORB_CHUNK) {
            size_t cap = in->cap ? in->cap * 2 : IPK__ABSORB_CHUNK;
            while (cap - in->len < IPK__ABSORB_CHUNK)
                cap *= 2;
            char *b = realloc(in->buf, cap);
            if (b == NULL)
                return -1; /* not fatal: we just stop taking output in */
            in->buf = b;
            in->cap = cap;
        }
    }
    /* A message peeked in place (ipk_peek) pins c->in: only the room behind it is taken. */
    if (in->cap == in->off + in->len)
        return -1;
    ssize_t n = ipk__read(c->rfd, in->buf + in->off + in->len, in->cap - in->off - in->len);
    if (n > 0) {
        in->len += (size_t)n;
        in->pos += (size_t)n;
    } else if (n == 0)
        in->eof = 1;
    /* A read error is left for recv to meet and report. */
    return n >= 0 || n == -EAGAIN ? 0 : -1;
}

/* Waits until the child's stdin has room, taking in its output meanwhile. */
static int ipk__exec_wait_room(ipk_chan *c, int64_t dl)
{
    int failed = 0;
    for (;;) {
        int absorb = c->rfd >= 0 && !c->in.eof && !failed && c->in.len < c->max + IPK__ABSORB_CHUNK;
        struct pollfd p[2] = {{.fd = c->wfd, .events = POLLOUT}, {.fd = c->rfd, .events = POLLIN}};
        int r = ipk__wait_fds(p, absorb ? 2 : 1, dl);
        if (r < 0)
            return r;
        if (absorb && p[1].revents)
            failed = ipk__exec_absorb(c);
        if (p[0].revents)
            return 0;
    }
}

/* Writes the rest of a frame an earlier timed-out send left in c->out. */
static int ipk__exec_flush(ipk_chan *c, int64_t dl)
{
    for (;;) {
        int r = ipk__stream_flush(c, IPK__DL_NOW);
        if (r != -EAGAIN)
            return r;
        if ((r = ipk__exec_wait_room(c, dl)) != 0)
            return ipk__err(r, "%s: the rest of an earlier message is still waiting to be written",
                            c->name);
    }
}

/* Sends all n messages unless the deadline passes or the child is gone; like stream.c, a message
 * counts as sent once any of it is written, and a rest left by the deadline waits in c->out. */
IPK__HOTPATH static long ipk__exec_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl)
{
    size_t done = 0;
    long r = 0;
    while (done < n || c->out.len) {
        if (c->out.len && (r = ipk__exec_flush(c, dl)) != 0)
            break;
        if (done == n)
            break;
        if (n - done == 1) { /* stream_send: a small frame in one write(), not a writev() */
            int one = ipk__stream_send(c, msgs[done].base, msgs[done].len, NULL, IPK__DL_NOW);
            r = one == 0 ? 1 : one;
        } else {
            r = ipk__stream_sendv(c, msgs + done, n - done, IPK__DL_NOW);
        }
        if (r > 0) {
            done += (size_t)r;
        } else if (r != -EAGAIN) {
            break;
        } else if ((r = ipk__exec_wait_room(c, dl)) != 0) {
            r = ipk__err((int)r, "%s: send: no room in the child's stdin (it is not reading)",
                         c->name);
            break;
        }
    }
    if (r == -EAGAIN || r == IPK_ETIMEDOUT || r == 0)
        return done > 0 ? (long)done : r;
    return c->broken || done == 0 ? r : (long)done;
}

IPK__HOTPATH static int ipk__exec_send(ipk_chan *c, const void *msg, size_t len,
                                       const ipk_msginfo *mi, int64_t dl)
{
    (void)mi;
    ipk_iov one = {msg, len};
    long r = ipk__exec_sendv(c, &one, 1, dl);
    return r == 1 ? 0 : (int)r;
}

IPK__HOTPATH static long ipk__exec_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi,
                                        int64_t dl)
{
    int r = c->out.len ? ipk__exec_flush(c, dl) : 0;
    return r != 0 ? r : ipk__stream_recv(c, buf, cap, mi, dl);
}

static long ipk__exec_peek(ipk_chan *c, const void **p, int64_t dl)
{
    int r = c->out.len && !c->in.peeked ? ipk__exec_flush(c, dl) : 0; /* held: the same again */
    return r != 0 ? r : ipk__stream_peek(c, p, dl);
}

static long ipk__exec_info(const ipk__addr *a, char *buf, size_t cap)
{
    /* Whether this kernel has pidfd_open (Linux 5.3+); without it reaping polls waitpid. */
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    return snprintf(buf, cap,
                    "exec: %s\n"
                    "runs: /bin/sh -c '%s' (stdin and stdout on pipes, stderr inherited)\n"
                    "close: EOF to the child, then linger (default %d ms), SIGTERM, and SIGKILL "
                    "%d ms later; returns the wait status\n"
                    "reaping: %s\n",
                    ipk__tr_exec.summary, a->body, IPK__LINGER_MS, IPK__TERM_MS,
                    e ? "waitpid(WNOHANG) with a back-off (no pidfd_open on this kernel)"
                      : "pidfd (pidfd_open available)");
}

static const char *const ipk__exec_keys[] = {"framing", "linger", "pipesz", NULL};

static int ipk__parse_exec(ipk__addr *a, const char *url)
{
    for (const char *q = a->body; *q; q++)
        if (!isspace((unsigned char)*q))
            return 0;
    return ipk__err(IPK_EADDR, "%s: missing command", url);
}

const ipk__transport ipk__tr_exec = {
    .scheme = "exec",
    .parse = ipk__parse_exec,
    .flags = IPK_SCHEME_STREAM | IPK__TF_QUERY_LAST,
    .usage = "exec:COMMAND",
    .keys = ipk__exec_keys,
    .summary = "unnamed pipes to a child process (/bin/sh -c CMD on stdin/stdout)",
    .listen = ipk__exec_open,
    .dial = ipk__exec_open,
    .send = ipk__exec_send,
    .sendv = ipk__exec_sendv,
    .recv = ipk__exec_recv,
    .peek = ipk__exec_peek,
    .release = ipk__stream_release,
    .flush = ipk__exec_flush,
    .close = ipk__exec_close,
    .info = ipk__exec_info,
};
