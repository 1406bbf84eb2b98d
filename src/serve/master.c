/*
 * master.c - the master process: forks the workers, then only supervises them. It knows
 * processes and signals, not connections (relayd's proc.c, nginx's process cycle).
 *
 * All signals of the master are blocked and read from a signalfd in its poll loop, so nothing
 * runs in a signal handler:
 *   TERM/INT  fast: workers get TERM, those alive after kill_timeout get KILL;
 *   QUIT      graceful: workers get QUIT (stop taking work, finish what is in flight), KILL after
 *             shutdown_timeout;
 *   HUP       reload: the reload callback re-reads the configuration, a new worker starts for
 *             every slot first, then the old ones get QUIT;
 *   USR1      reopen the log (and the workers reopen theirs);
 *   USR2      binary upgrade (nginx's): fork and exec the program again, by the path and with
 *             the arguments this master started with, passing the listening sockets in
 *             IPK_SERVE_FDS; the new master serves them without binding and, once its workers
 *             run, sends this one QUIT (from its pid: that is how it is told from an operator's
 *             QUIT), and this one retires gracefully without removing the socket files and
 *             queues its successor now serves. A new master that exits, or does not report
 *             within shutdown_timeout (then KILL), leaves this one serving, and the log says why;
 *   CHLD      reap; a worker that died while serving is respawned, with a delay that doubles
 *             each time it dies young (100 ms up to 10 s), so a crash loop does not spin.
 * The signal mask is restored when ipk_server_run() returns.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESPAWN_MIN_MS 100
#define RESPAWN_MAX_MS 10000
#define LIVED_MS       10000 /* a worker that served this long is not "crashing" */
#define RETIRED        (-1)
#define RETIRING       (-2) /* during a reload: retired once its successor runs */

typedef struct child {
    pid_t pid;
    int slot;       /* 0-based slot it serves, or RETIRED by a reload */
    double kill_at; /* when it gets KILL; 0: not scheduled */
} child;

typedef struct master {
    ipk_server *s;
    int nslots, sfd, listening;
    enum { RUNNING, QUITTING, TERMINATING } mode;
    child *ch;
    int nch, capch;
    sigset_t oldmask; /* the caller's signal mask, which an upgraded program starts with */
    char *exe;        /* binary upgrade: the program and its arguments, read at start */
    char **argv;      /* NULL-terminated, pointing into cmdline */
    char *cmdline;
    pid_t heir;        /* a new master started by USR2 that has not reported yet */
    double heir_until; /* when it is given up on */
    struct slot {
        pid_t pid; /* 0: empty, waiting for respawn_at */
        int fails;
        double started, respawn_at;
    } * slot;
} master;

static int slots_resize(master *m, int n)
{
    struct slot *p = realloc(m->slot, (size_t)n * sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    m->slot = p;
    for (int i = m->nslots; i < n; i++)
        m->slot[i] = (struct slot){0};
    m->nslots = n;
    return 0;
}

static int spawn(master *m, int slot)
{
    if (m->nch == m->capch) {
        int cap = m->capch ? m->capch * 2 : 8;
        child *p = realloc(m->ch, (size_t)cap * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        m->ch = p;
        m->capch = cap;
    }
    pid_t pid = fork();
    if (pid < 0) {
        ipk_serve_log("fork worker %d: %s", slot + 1, strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        close(m->sfd);
        srv_worker(m->s, slot + 1);
    }
    m->ch[m->nch++] = (child){pid, slot, 0};
    m->slot[slot].pid = pid;
    m->slot[slot].started = srv_now_ms();
    m->s->stats[slot].pid = pid;
    ipk_serve_log("worker %d pid %d", slot + 1, (int)pid);
    return 0;
}

static void signal_all(master *m, int sig, double kill_at)
{
    for (int i = 0; i < m->nch; i++) {
        kill(m->ch[i].pid, sig);
        if (kill_at > 0)
            m->ch[i].kill_at = kill_at;
    }
}

static void reap(master *m)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        int i = 0;
        while (i < m->nch && m->ch[i].pid != pid)
            i++;
        if (pid == m->heir) {
            ipk_serve_log("upgrade failed: new master pid %d %s; this master serves on", (int)pid,
                          WIFSIGNALED(st) ? "was killed" : "exited before it served");
            m->heir = 0;
        }
        if (i == m->nch)
            continue;
        int slot = m->ch[i].slot;
        m->ch[i] = m->ch[--m->nch];
        char how[64];
        if (WIFSIGNALED(st))
            snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(st));
        else
            snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
        if (slot >= 0)
            ipk_serve_log("worker %d pid %d %s", slot + 1, (int)pid, how);
        else
            ipk_serve_log("retired worker pid %d %s", (int)pid, how);
        if (slot < 0 || slot >= m->nslots || m->slot[slot].pid != pid)
            continue;
        m->slot[slot].pid = 0;
        m->s->stats[slot].conns = 0; /* they went with it */
        m->s->stats[slot].pid = 0;
        if (m->mode != RUNNING)
            continue;
        double now = srv_now_ms();
        m->slot[slot].fails = now - m->slot[slot].started >= LIVED_MS ? 1 : m->slot[slot].fails + 1;
        int delay = RESPAWN_MIN_MS;
        for (int k = 1; k < m->slot[slot].fails && delay < RESPAWN_MAX_MS; k++)
            delay *= 2;
        delay = delay > RESPAWN_MAX_MS ? RESPAWN_MAX_MS : delay;
        m->slot[slot].respawn_at = now + delay;
        atomic_fetch_add_explicit(&m->s->stats[slot].respawns, 1, memory_order_relaxed);
        ipk_serve_log("respawn worker %d in %d ms", slot + 1, delay);
    }
}

/* Closes a listener's socket or channel, removing what it owns (a socket file taken over in an
 * upgrade included). */
static void close_listener(srv_listener *l)
{
    if (l->chan)
        ipk_close(l->chan);
    else if (l->fd >= 0)
        close(l->fd);
    if (l->sock_path)
        unlink(l->sock_path);
    free(l->sock_path);
    l->sock_path = NULL;
    l->chan = NULL;
    l->fd = -1;
}

/* Shutdown begins: the master's copies of the sockets go (the workers hold theirs until they
 * stop accepting), so when the last one is gone, new clients are refused rather than queued. A
 * listener that owns an object (a Unix socket file, a queue) removes it. */
static void stop_listening(master *m)
{
    if (!m->listening)
        return;
    m->listening = 0;
    for (size_t i = 0; i < m->s->nl; i++)
        close_listener(&m->s->l[i]);
    close_listener(&m->s->status);
}

/* The settings a failed reload restores. */
typedef struct snapshot {
    ipk_server v;
    char *log_path, *pid_file, *name, *exec_cmd;
} snapshot;

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

/* HUP: the reload callback applies the new configuration; listeners not named again are
 * closed. 0, or the callback's error with the configuration as it was. */
static int reload_config(master *m)
{
    ipk_server *s = m->s;
    if (s->reload == NULL)
        return 0;
    snapshot sn = {*s, dup_or_null(s->log_path), dup_or_null(s->pid_file), dup_or_null(s->name),
                   dup_or_null(s->exec_cmd)};
    size_t nl = s->nl;
    for (size_t i = 0; i < nl; i++)
        s->l[i].stale = 1;
    s->in_reload = 1;
    s->errmsg[0] = '\0';
    int r = s->reload(s, s->reload_arg);
    s->in_reload = 0;
    if (r < 0) {
        ipk_serve_log("reload failed, configuration kept: %s", s->errmsg);
        for (size_t i = nl; i < s->nl; i++) {
            if (s->l[i].chan)
                ipk_close(s->l[i].chan);
            free(s->l[i].url);
            free(s->l[i].addr);
            ipk_opts_free(s->l[i].opts);
        }
        free(s->log_path);
        free(s->pid_file);
        free(s->name);
        free(s->exec_cmd);
        srv_listener *l = s->l;
        size_t capl = s->capl;
        *s = sn.v;
        s->l = l;
        s->capl = capl;
        s->nl = nl;
        s->log_path = sn.log_path;
        s->pid_file = sn.pid_file;
        s->name = sn.name;
        s->exec_cmd = sn.exec_cmd;
        if (s->exec_cmd)
            s->arg = s;
        for (size_t i = 0; i < nl; i++)
            s->l[i].stale = 0;
        return r;
    }
    free(sn.log_path);
    free(sn.pid_file);
    free(sn.name);
    free(sn.exec_cmd);
    size_t k = 0;
    for (size_t i = 0; i < s->nl; i++) {
        if (s->l[i].stale) {
            ipk_serve_log("no longer listening on %s", s->l[i].addr);
            close_listener(&s->l[i]);
            free(s->l[i].url);
            free(s->l[i].addr);
            ipk_opts_free(s->l[i].opts);
            continue;
        }
        if (i >= nl)
            ipk_serve_log("listening on %s", s->l[i].addr);
        s->l[k++] = s->l[i];
    }
    s->nl = k;
    if (s->log_path && srv_log_open(s->log_path) != 0)
        ipk_serve_log("cannot open log %s: %s", s->log_path, srv_log_strerror(errno));
    srv_log_name(s->name ? s->name : "ipk_server");
    return 0;
}

static void on_hup(master *m)
{
    ipk_serve_log("signal HUP: reload");
    if (m->mode != RUNNING)
        return;
    double now = srv_now_ms();
    if (reload_config(m) == 0 && m->s->workers != m->nslots) {
        int old = m->nslots;
        if (slots_resize(m, m->s->workers) != 0)
            m->s->workers = old;
        ipk_serve_log("workers: %d (were %d)", m->nslots, old);
    }
    /* New workers first (the sockets never lack one), then the old ones retire. */
    for (int i = 0; i < m->nch; i++)
        if (m->ch[i].slot >= 0)
            m->ch[i].slot = RETIRING;
    for (int s = 0; s < m->nslots; s++) {
        m->slot[s].pid = 0;
        m->slot[s].fails = 0;
        if (spawn(m, s) != 0)
            m->slot[s].respawn_at = now + RESPAWN_MIN_MS;
    }
    for (int i = 0; i < m->nch; i++)
        if (m->ch[i].slot == RETIRING) {
            m->ch[i].slot = RETIRED;
            kill(m->ch[i].pid, SIGQUIT);
            m->ch[i].kill_at = now + m->s->shutdown_ms;
        }
}

/* The program and arguments to exec on USR2: /proc/self/exe and /proc/self/cmdline, read at
 * start (a binary replaced later by rename is found again by its path). */
static void upgrade_prepare(master *m)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (n <= 0 || fd < 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    path[n] = '\0';
    size_t cap = 4096, len = 0;
    char *b = malloc(cap + 1);
    for (ssize_t k; b && (k = read(fd, b + len, cap - len)) > 0;) {
        len += (size_t)k;
        if (len == cap) {
            char *p = realloc(b, cap * 2 + 1);
            if (p == NULL) {
                free(b);
                b = NULL;
                break;
            }
            b = p;
            cap *= 2;
        }
    }
    close(fd);
    if (b == NULL || len == 0) {
        free(b);
        return;
    }
    b[len] = '\0';
    size_t argc = 0;
    for (size_t i = 0; i < len; i++)
        argc += b[i] == '\0';
    char **argv = calloc(argc + 1, sizeof *argv);
    m->exe = strdup(path);
    if (argv == NULL || m->exe == NULL) {
        free(argv);
        free(b);
        return;
    }
    for (size_t i = 0, k = 0; i < len && k < argc; i += strlen(b + i) + 1)
        argv[k++] = b + i;
    m->argv = argv;
    m->cmdline = b;
}

static void on_usr2(master *m)
{
    ipk_serve_log("signal USR2: binary upgrade");
    if (m->mode != RUNNING || m->heir > 0) {
        ipk_serve_log("upgrade: %s", m->heir > 0 ? "already under way" : "shutting down, not now");
        return;
    }
    if (m->exe == NULL || m->argv == NULL) {
        ipk_serve_log("upgrade: the program's path or arguments could not be read at start");
        return;
    }
    char *env = srv_upgrade_env(m->s);
    if (env == NULL) {
        ipk_serve_log("upgrade: out of memory");
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        ipk_serve_log("upgrade: fork: %s", strerror(errno));
        free(env);
        return;
    }
    if (pid == 0) {
        close(m->sfd);
        /* The sockets survive the exec; everything else of this master does not. */
        for (size_t i = 0; i < m->s->nl; i++)
            if (m->s->l[i].kind != SRV_QUEUE && m->s->l[i].fd >= 0)
                fcntl(m->s->l[i].fd, F_SETFD, 0);
        if (m->s->status.fd >= 0)
            fcntl(m->s->status.fd, F_SETFD, 0);
        setenv("IPK_SERVE_FDS", env, 1);
        /* Sockets adopted through LISTEN_FDS (3, 4, ...) are passed the same way again. */
        int nfd = 0;
        for (size_t i = 0; i < m->s->nl; i++)
            if (m->s->l[i].url == NULL && m->s->l[i].fd == 3 + nfd)
                nfd++;
        if (nfd > 0) {
            char b[32];
            snprintf(b, sizeof b, "%d", nfd);
            setenv("LISTEN_FDS", b, 1);
            snprintf(b, sizeof b, "%d", (int)getpid());
            setenv("LISTEN_PID", b, 1);
        }
        sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
        execv(m->exe, m->argv);
        ipk_serve_log("upgrade: exec %s: %s", m->exe, strerror(errno));
        _exit(127);
    }
    free(env);
    m->heir = pid;
    m->heir_until = srv_now_ms() + m->s->shutdown_ms;
    ipk_serve_log("upgrade: new master pid %d (%s)", (int)pid, m->exe);
}

static void on_signal(master *m, int sig, pid_t from)
{
    double now = srv_now_ms();
    if ((sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) && m->heir > 0 && from != m->heir) {
        /* A shutdown while the new master starts: it would serve sockets whose files go now. */
        ipk_serve_log("upgrade abandoned: new master pid %d gets TERM", (int)m->heir);
        kill(m->heir, SIGTERM);
    }
    switch (sig) {
    case SIGCHLD:
        reap(m);
        return;
    case SIGTERM:
    case SIGINT:
        ipk_serve_log("signal %s: fast shutdown", sig == SIGTERM ? "TERM" : "INT");
        if (m->mode != TERMINATING)
            signal_all(m, SIGTERM, now + m->s->kill_ms);
        m->mode = TERMINATING;
        stop_listening(m);
        return;
    case SIGQUIT:
        if (m->heir > 0 && from == m->heir && m->mode == RUNNING) {
            ipk_serve_log("upgrade: new master pid %d serves: retiring gracefully", (int)from);
            m->heir = 0;
            srv_disown(m->s);
        }
        ipk_serve_log("signal QUIT: graceful shutdown");
        if (m->mode == RUNNING)
            signal_all(m, SIGQUIT, now + m->s->shutdown_ms);
        m->mode = m->mode == RUNNING ? QUITTING : m->mode;
        stop_listening(m);
        return;
    case SIGHUP:
        on_hup(m);
        return;
    case SIGUSR1:
        if (m->s->log_path && srv_log_open(m->s->log_path) != 0)
            ipk_serve_log("signal USR1: cannot reopen %s: %s", m->s->log_path,
                          srv_log_strerror(errno));
        else
            ipk_serve_log("signal USR1: log reopened");
        signal_all(m, SIGUSR1, 0);
        return;
    case SIGUSR2:
        on_usr2(m);
        return;
    default:
        return;
    }
}

static int supervise(master *m)
{
    for (int s = 0; s < m->nslots; s++)
        if (spawn(m, s) != 0)
            return srv_err(m->s, -errno, "fork: %s", strerror(errno));
    pid_t old = srv_upgrade_taken();
    if (old > 0 && getppid() != old)
        ipk_serve_log("upgrade: master pid %d is gone; serving on alone", (int)old);
    else if (old > 0) {
        ipk_serve_log("upgrade: serving the sockets of master pid %d; telling it to retire",
                      (int)old);
        kill(old, SIGQUIT);
    }
    for (;;) {
        if (m->mode != RUNNING && m->nch == 0)
            return 0;
        double now = srv_now_ms(), next = now + 60000;
        for (int i = 0; i < m->nch; i++)
            if (m->ch[i].kill_at > 0 && m->ch[i].kill_at < next)
                next = m->ch[i].kill_at;
        for (int s = 0; s < m->nslots && m->mode == RUNNING; s++)
            if (m->slot[s].pid == 0 && m->slot[s].respawn_at < next)
                next = m->slot[s].respawn_at;
        if (m->heir > 0 && m->heir_until < next)
            next = m->heir_until;
        struct pollfd p[2] = {{.fd = m->sfd, .events = POLLIN},
                              {.fd = m->s->status.fd, .events = POLLIN}};
        int wait = next <= now ? 0 : (int)(next - now) + 1;
        if (poll(p, 2, wait) < 0 && errno != EINTR) /* a negative fd is skipped by poll */
            return srv_err(m->s, -errno, "poll: %s", strerror(errno));
        if (p[1].revents && m->s->status.fd >= 0)
            srv_status_serve(m->s);
        struct signalfd_siginfo si;
        while (read(m->sfd, &si, sizeof si) == (ssize_t)sizeof si)
            on_signal(m, (int)si.ssi_signo, (pid_t)si.ssi_pid);
        now = srv_now_ms();
        for (int i = 0; i < m->nch; i++)
            if (m->ch[i].kill_at > 0 && m->ch[i].kill_at <= now) {
                ipk_serve_log("worker pid %d did not exit in time: KILL", (int)m->ch[i].pid);
                kill(m->ch[i].pid, SIGKILL);
                m->ch[i].kill_at = 0;
            }
        if (m->heir > 0 && m->heir_until <= now) {
            ipk_serve_log("upgrade: new master pid %d did not report in %d ms: KILL", (int)m->heir,
                          m->s->shutdown_ms);
            kill(m->heir, SIGKILL); /* reaped as a failed upgrade */
            m->heir_until = now + 60000;
        }
        for (int s = 0; s < m->nslots && m->mode == RUNNING; s++)
            if (m->slot[s].pid == 0 && m->slot[s].respawn_at <= now)
                spawn(m, s);
    }
}

/* As the log (srv_log_open): never through a link, and only into a regular file of this user,
 * checked before it is truncated (another user's file would be emptied, then removed at exit). */
static int write_pid_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0)
        return -errno;
    int e = srv_own_file(fd);
    if (e == 0 && ftruncate(fd, 0) != 0)
        e = -errno;
    if (e != 0) {
        close(fd);
        return e;
    }
    char b[32];
    int n = snprintf(b, sizeof b, "%d\n", (int)getpid());
    int r = write(fd, b, (size_t)n) == n ? 0 : -EIO;
    close(fd);
    return r;
}

static int pid_file_ours(const char *path)
{
    char b[32] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
    if (fd >= 0)
        close(fd);
    return n > 0 && atol(b) == (long)getpid();
}

int srv_master_run(ipk_server *s)
{
    master m = {.s = s, .sfd = -1, .listening = 1};
    s->balance_fd = -1;
    s->stats = mmap(NULL, SRV_MAX_WORKERS * sizeof *s->stats, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s->stats == MAP_FAILED) {
        s->stats = NULL;
        return srv_err(s, -errno, "mmap: %s", strerror(errno));
    }
    srv_log_name(s->name ? s->name : "ipk_server");
    if (s->log_path && srv_log_open(s->log_path) != 0)
        return srv_err(s, -errno, "log %s: %s", s->log_path, srv_log_strerror(errno));
    const char *pid_file = s->pid_file;
    int r = pid_file ? write_pid_file(pid_file) : 0;
    if (r != 0) {
        srv_log_close();
        munmap(s->stats, SRV_MAX_WORKERS * sizeof *s->stats);
        s->stats = NULL;
        return srv_err(s, r, "pid file %s: %s", pid_file, srv_log_strerror(-r));
    }
    sigset_t set, old;
    sigemptyset(&set);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, &old);
    m.oldmask = old;
    upgrade_prepare(&m);
    /* Blocked, a signal is queued for the signalfd even where its disposition is "ignore" (as a
     * shell leaves INT and QUIT for a background job): Linux discards only unblocked ones. */
    s->master_pid = getpid();
    m.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m.sfd < 0 || slots_resize(&m, s->workers) != 0) {
        r = srv_err(s, m.sfd < 0 ? -errno : -ENOMEM, "signalfd: %s", strerror(errno));
        goto out;
    }
    if ((s->balance_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        r = srv_err(s, -errno, "eventfd: %s", strerror(errno));
        goto out;
    }
    if ((r = srv_status_open(s)) != 0)
        goto out;
    if (s->status.fd >= 0)
        ipk_serve_log("status on %s", s->status.addr);
    for (size_t i = 0; i < s->nl; i++)
        ipk_serve_log("listening on %s (%s)", s->l[i].addr,
                      s->l[i].kind == SRV_DGRAM         ? "datagrams"
                      : s->l[i].kind == SRV_QUEUE       ? "queue"
                      : s->l[i].framing == IPK__FR_RAW  ? "connections, raw"
                      : s->l[i].framing == IPK__FR_LINE ? "connections, lines"
                                                        : "connections, frames");
    ipk_serve_log("started, master pid %d, %d worker%s", (int)getpid(), m.nslots,
                  m.nslots == 1 ? "" : "s");
    r = supervise(&m);
    for (int i = 0; i < m.nslots; i++)
        ipk_serve_log("worker %d: %ld connections, %ld messages in, %ld out, %ld errors, %ld "
                      "timeouts, %ld peers refused, %ld accepts out of descriptors, %ld respawns",
                      i + 1, (long)s->stats[i].conns_total, (long)s->stats[i].msgs_in,
                      (long)s->stats[i].msgs_out, (long)s->stats[i].errs,
                      (long)s->stats[i].timeouts, (long)s->stats[i].refused,
                      (long)s->stats[i].emfile, (long)s->stats[i].respawns);
    /* Anything still alive (a failed start): fast shutdown. */
    signal_all(&m, SIGKILL, 0);
    while (m.nch > 0 && waitpid(-1, NULL, 0) > 0)
        m.nch--;
    ipk_serve_log("exit %d", r == 0 ? 0 : 1);
out:
    if (pid_file && pid_file_ours(pid_file)) /* after an upgrade it names the new master */
        unlink(pid_file);
    stop_listening(&m);
    if (m.sfd >= 0)
        close(m.sfd);
    if (s->balance_fd >= 0)
        close(s->balance_fd);
    s->balance_fd = -1;
    /* Signals that came while blocked are dropped, not delivered to the caller's handlers. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(m.ch);
    free(m.slot);
    free(m.exe);
    free(m.argv);
    free(m.cmdline);
    srv_log_close();
    munmap(s->stats, SRV_MAX_WORKERS * sizeof *s->stats);
    s->stats = NULL;
    return r;
}
