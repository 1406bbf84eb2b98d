/*
 * cmd_serve.c - ipckit serve URL: a prefork echo server, master and workers in the nginx model.
 *
 * The master makes the listening socket with ipk_listen() (address parsing, port 0, stale Unix
 * socket files) and takes its descriptor with ipk_fd(); then it only supervises. Workers are
 * forked with the socket and run serve_worker(). All signals of the master are blocked and read
 * from a signalfd in its poll loop, so nothing runs in a handler:
 *   TERM/INT  fast: workers get TERM, those alive after --kill-timeout get KILL;
 *   QUIT      graceful: workers get QUIT (stop accepting, finish the frames in flight), KILL after
 *             --shutdown-timeout;
 *   HUP       reload: a new worker for every slot first, then the old ones get QUIT;
 *   USR1      reopen --log (and the workers reopen theirs);
 *   CHLD      reap; a worker that died while serving is respawned, with a delay that doubles
 *             each time it dies young (100 ms up to 10 s), so a crash loop does not spin.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

#define RESPAWN_MIN_MS 100
#define RESPAWN_MAX_MS 10000
#define LIVED_MS       10000 /* a worker that served this long is not "crashing" */
#define RETIRED        (-1)
#define RETIRING       (-2) /* during a reload: retired once its successor runs */

static int log_fd = 2;

double serve_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void serve_log(const char *fmt, ...)
{
    char line[512];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, " ipckit serve[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = k < 0 ? n : n + k > (int)sizeof line - 2 ? (int)sizeof line - 2 : n + k;
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w; /* nowhere to report a failing log */
}

int serve_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return -errno;
    if (log_fd != 2)
        close(log_fd);
    log_fd = fd;
    return 0;
}

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: ipckit serve [OPTIONS] URL\n"
            "A prefork echo server: a master and N worker processes sharing the listening socket\n"
            "(tcp://HOST:PORT, unix:PATH or unix:@NAME; udp://HOST:PORT for raw datagram echo).\n\n"
            "  -p, --proto P             echo (default): 4-byte big-endian length + payload, the\n"
            "                            ipckit stream framing; raw: bytes back as they come\n"
            "  -w, --workers N           worker processes (default: the number of CPUs)\n"
            "      --max-conn N          connections per worker; more are closed at once (1024)\n"
            "      --max-frame BYTES     a larger declared length closes the connection (1048576)\n"
            "      --idle-timeout MS     close a connection that moved no byte for MS (60000)\n"
            "      --read-timeout MS     close a connection whose frame is unfinished after MS\n"
            "                            (10000; echo only)\n"
            "      --shutdown-timeout MS QUIT: time for in-flight frames, then KILL (10000)\n"
            "      --kill-timeout MS     TERM: time before KILL (3000)\n"
            "      --log FILE            event log (default: standard error); USR1 reopens it\n"
            "      --pid-file FILE       write the master's pid to FILE (removed at exit)\n"
            "  -h, --help\n\n"
            "Signals to the master: TERM/INT fast shutdown, QUIT graceful shutdown, HUP new\n"
            "workers then retire the old, USR1 reopen the log. A crashed worker is respawned.\n"
            "The log names the resolved address: \"listening on tcp://127.0.0.1:PORT\".\n"
            "Exit status: 0 after shutdown, 1 failure, 2 usage error.\n"
            "Example: ipckit serve --workers 4 tcp://127.0.0.1:7000\n");
}

typedef struct child {
    pid_t pid;
    int slot;       /* 0-based slot it serves, or RETIRED by a reload */
    double kill_at; /* when it gets KILL; 0: not scheduled */
} child;

typedef struct master {
    serve_cfg cfg;
    ipk_chan *l; /* the listener; closed when shutdown begins (and a Unix path removed) */
    int nslots, sfd, kill_ms;
    enum { RUNNING, QUITTING, TERMINATING } mode;
    child *ch;
    int nch, capch;
    pid_t *slot_pid; /* 0: empty, waiting for respawn_at */
    int *fails;
    double *started, *respawn_at;
} master;

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
        serve_log("fork worker %d: %s", slot + 1, strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        close(m->sfd);
        serve_worker(&m->cfg, slot + 1);
    }
    m->ch[m->nch++] = (child){pid, slot, 0};
    m->slot_pid[slot] = pid;
    m->started[slot] = serve_now_ms();
    serve_log("worker %d pid %d", slot + 1, (int)pid);
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
            serve_log("worker %d pid %d %s", slot + 1, (int)pid, how);
        else
            serve_log("retired worker pid %d %s", (int)pid, how);
        if (slot < 0 || m->slot_pid[slot] != pid)
            continue;
        m->slot_pid[slot] = 0;
        if (m->mode != RUNNING)
            continue;
        double now = serve_now_ms();
        m->fails[slot] = now - m->started[slot] >= LIVED_MS ? 1 : m->fails[slot] + 1;
        int delay = RESPAWN_MIN_MS;
        for (int k = 1; k < m->fails[slot] && delay < RESPAWN_MAX_MS; k++)
            delay *= 2;
        delay = delay > RESPAWN_MAX_MS ? RESPAWN_MAX_MS : delay;
        m->respawn_at[slot] = now + delay;
        serve_log("respawn worker %d in %d ms", slot + 1, delay);
    }
}

/* Shutdown begins: the master's copy of the socket goes (the workers hold theirs until they stop
 * accepting), so when the last one is gone, new clients are refused rather than queued. */
static void stop_listening(master *m)
{
    if (m->l)
        ipk_close(m->l);
    m->l = NULL;
}

static void on_signal(master *m, int sig)
{
    double now = serve_now_ms();
    switch (sig) {
    case SIGCHLD:
        reap(m);
        return;
    case SIGTERM:
    case SIGINT:
        serve_log("signal %s: fast shutdown", sig == SIGTERM ? "TERM" : "INT");
        if (m->mode != TERMINATING)
            signal_all(m, SIGTERM, now + m->kill_ms);
        m->mode = TERMINATING;
        stop_listening(m);
        return;
    case SIGQUIT:
        serve_log("signal QUIT: graceful shutdown");
        if (m->mode == RUNNING)
            signal_all(m, SIGQUIT, now + m->cfg.shutdown_ms);
        m->mode = m->mode == RUNNING ? QUITTING : m->mode;
        stop_listening(m);
        return;
    case SIGHUP:
        serve_log("signal HUP: reload");
        if (m->mode != RUNNING)
            return;
        /* New workers first (the socket never lacks one), then the old ones retire. */
        for (int i = 0; i < m->nch; i++)
            if (m->ch[i].slot >= 0)
                m->ch[i].slot = RETIRING;
        for (int s = 0; s < m->nslots; s++) {
            m->slot_pid[s] = 0;
            m->fails[s] = 0;
            if (spawn(m, s) != 0)
                m->respawn_at[s] = now + RESPAWN_MIN_MS;
        }
        for (int i = 0; i < m->nch; i++)
            if (m->ch[i].slot == RETIRING) {
                m->ch[i].slot = RETIRED;
                kill(m->ch[i].pid, SIGQUIT);
                m->ch[i].kill_at = now + m->cfg.shutdown_ms;
            }
        return;
    case SIGUSR1:
        if (m->cfg.log_path && serve_log_open(m->cfg.log_path) != 0)
            serve_log("signal USR1: cannot reopen %s: %s", m->cfg.log_path, strerror(errno));
        else
            serve_log("signal USR1: log reopened");
        signal_all(m, SIGUSR1, 0);
        return;
    default:
        return;
    }
}

static int supervise(master *m)
{
    for (int s = 0; s < m->nslots; s++)
        if (spawn(m, s) != 0)
            return CLI_FAIL;
    for (;;) {
        if (m->mode != RUNNING && m->nch == 0)
            return CLI_OK;
        double now = serve_now_ms(), next = now + 60000;
        for (int i = 0; i < m->nch; i++)
            if (m->ch[i].kill_at > 0 && m->ch[i].kill_at < next)
                next = m->ch[i].kill_at;
        for (int s = 0; s < m->nslots && m->mode == RUNNING; s++)
            if (m->slot_pid[s] == 0 && m->respawn_at[s] < next)
                next = m->respawn_at[s];
        struct pollfd p = {.fd = m->sfd, .events = POLLIN};
        int wait = next <= now ? 0 : (int)(next - now) + 1;
        if (poll(&p, 1, wait) < 0 && errno != EINTR) {
            serve_log("poll: %s", strerror(errno));
            return CLI_FAIL;
        }
        struct signalfd_siginfo si;
        while (read(m->sfd, &si, sizeof si) == (ssize_t)sizeof si)
            on_signal(m, (int)si.ssi_signo);
        now = serve_now_ms();
        for (int i = 0; i < m->nch; i++)
            if (m->ch[i].kill_at > 0 && m->ch[i].kill_at <= now) {
                serve_log("worker pid %d did not exit in time: KILL", (int)m->ch[i].pid);
                kill(m->ch[i].pid, SIGKILL);
                m->ch[i].kill_at = 0;
            }
        for (int s = 0; s < m->nslots && m->mode == RUNNING; s++)
            if (m->slot_pid[s] == 0 && m->respawn_at[s] <= now)
                spawn(m, s);
    }
}

enum {
    OPT_MAX_CONN = 256,
    OPT_MAX_FRAME,
    OPT_IDLE,
    OPT_READ,
    OPT_SHUTDOWN,
    OPT_KILL,
    OPT_LOG,
    OPT_PID,
};

static int parse_opts(int argc, char **argv, master *m, const char **pid_file)
{
    static const struct option lo[] = {{"proto", required_argument, 0, 'p'},
                                       {"workers", required_argument, 0, 'w'},
                                       {"max-conn", required_argument, 0, OPT_MAX_CONN},
                                       {"max-frame", required_argument, 0, OPT_MAX_FRAME},
                                       {"idle-timeout", required_argument, 0, OPT_IDLE},
                                       {"read-timeout", required_argument, 0, OPT_READ},
                                       {"shutdown-timeout", required_argument, 0, OPT_SHUTDOWN},
                                       {"kill-timeout", required_argument, 0, OPT_KILL},
                                       {"log", required_argument, 0, OPT_LOG},
                                       {"pid-file", required_argument, 0, OPT_PID},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int opt;
    long v;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+p:w:h", lo, NULL)) != -1) {
        int *ms = opt == OPT_IDLE       ? &m->cfg.idle_ms
                  : opt == OPT_READ     ? &m->cfg.read_ms
                  : opt == OPT_SHUTDOWN ? &m->cfg.shutdown_ms
                  : opt == OPT_KILL     ? &m->kill_ms
                                        : NULL;
        if (ms) {
            if (cli_parse_long(optarg, 1, 86400000L, &v) != 0)
                return cli_usage_err("serve", "%s %s: expected milliseconds >= 1", argv[optind - 1],
                                     optarg);
            *ms = (int)v;
            continue;
        }
        switch (opt) {
        case 'p':
            if (strcmp(optarg, "echo") == 0)
                m->cfg.proto = SERVE_ECHO;
            else if (strcmp(optarg, "raw") == 0)
                m->cfg.proto = SERVE_RAW;
            else
                return cli_usage_err("serve", "--proto %s: expected echo or raw", optarg);
            break;
        case 'w':
            if (cli_parse_long(optarg, 1, 1024, &v) != 0)
                return cli_usage_err("serve", "--workers %s: expected 1 to 1024", optarg);
            m->nslots = (int)v;
            break;
        case OPT_MAX_CONN:
            if (cli_parse_long(optarg, 1, 1000000, &v) != 0)
                return cli_usage_err("serve", "--max-conn %s: expected 1 to 1000000", optarg);
            m->cfg.max_conn = (int)v;
            break;
        case OPT_MAX_FRAME:
            if (cli_parse_long(optarg, 0, 1L << 30, &v) != 0)
                return cli_usage_err("serve", "--max-frame %s: expected 0 to 1073741824", optarg);
            m->cfg.max_frame = (uint32_t)v;
            break;
        case OPT_LOG:
            m->cfg.log_path = optarg;
            break;
        case OPT_PID:
            *pid_file = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return -1;
        default:
            serve_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_usage_err("serve", "expected one URL");
    return 0;
}

static int write_pid_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    char b[32];
    int n = snprintf(b, sizeof b, "%d\n", (int)getpid());
    int r = write(fd, b, (size_t)n) == n ? 0 : -EIO;
    close(fd);
    return r;
}

int cmd_serve(int argc, char **argv)
{
    master m = {.nslots = (int)sysconf(_SC_NPROCESSORS_ONLN), .kill_ms = 3000, .sfd = -1};
    m.cfg = (serve_cfg){.proto = SERVE_ECHO,
                        .max_conn = 1024,
                        .idle_ms = 60000,
                        .read_ms = 10000,
                        .shutdown_ms = 10000,
                        .max_frame = 1u << 20,
                        .master_pid = (int)getpid()};
    m.nslots = m.nslots < 1 ? 1 : m.nslots;
    const char *pid_file = NULL;
    int rc = parse_opts(argc, argv, &m, &pid_file);
    if (rc != 0)
        return rc < 0 ? CLI_OK : rc;
    const char *url = argv[optind];
    /* Checked before listening: ipk_listen() on another scheme would create that object. */
    if (strncmp(url, "tcp://", 6) != 0 && strncmp(url, "udp://", 6) != 0 &&
        strncmp(url, "unix:", 5) != 0)
        return cli_usage_err("serve", "%s: expected a tcp://, unix: or udp:// address", url);
    if (m.cfg.log_path && serve_log_open(m.cfg.log_path) != 0) {
        fprintf(stderr, "ipckit serve: --log %s: %s\n", m.cfg.log_path, strerror(errno));
        return CLI_FAIL;
    }
    int r = ipk_listen(&m.l, url, NULL);
    if (r != 0) {
        rc = cli_fail("serve", url, r);
        goto out;
    }
    m.cfg.dgram = strcmp(ipk_scheme(m.l), "udp") == 0;
    m.cfg.lfd = ipk_fd(m.l);
    /* Shared by every worker: O_NONBLOCK is on the open file, so a worker that loses the race
     * for a connection gets EAGAIN instead of sleeping in accept(). */
    fcntl(m.cfg.lfd, F_SETFL, fcntl(m.cfg.lfd, F_GETFL) | O_NONBLOCK);
    if (pid_file && (r = write_pid_file(pid_file)) != 0) {
        fprintf(stderr, "ipckit serve: --pid-file %s: %s\n", pid_file, strerror(-r));
        pid_file = NULL;
        rc = CLI_FAIL;
        goto out;
    }
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    m.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    size_t ns = (size_t)m.nslots;
    m.slot_pid = calloc(ns, sizeof *m.slot_pid);
    m.fails = calloc(ns, sizeof *m.fails);
    m.started = calloc(ns, sizeof *m.started);
    m.respawn_at = calloc(ns, sizeof *m.respawn_at);
    if (m.sfd < 0 || !m.slot_pid || !m.fails || !m.started || !m.respawn_at) {
        rc = cli_fail("serve", "signalfd", m.sfd < 0 ? -errno : -ENOMEM);
        goto out;
    }
    serve_log("listening on %s (proto %s%s, %d worker%s)", ipk_addr(m.l),
              m.cfg.dgram                 ? "raw"
              : m.cfg.proto == SERVE_ECHO ? "echo"
                                          : "raw",
              m.cfg.dgram ? " datagrams" : "", m.nslots, m.nslots == 1 ? "" : "s");
    serve_log("started, master pid %d", (int)getpid());
    rc = supervise(&m);
    /* Anything still alive (a failed start): fast shutdown. */
    signal_all(&m, SIGKILL, 0);
    while (m.nch > 0 && waitpid(-1, NULL, 0) > 0)
        m.nch--;
    serve_log("exit %d", rc);
out:
    if (pid_file)
        unlink(pid_file);
    stop_listening(&m);
    if (m.sfd >= 0)
        close(m.sfd);
    free(m.ch);
    free(m.slot_pid);
    free(m.fails);
    free(m.started);
    free(m.respawn_at);
    if (log_fd != 2)
        close(log_fd);
    return rc;
}
