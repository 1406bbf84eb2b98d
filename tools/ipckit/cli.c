/*
 * cli.c - helpers every subcommand of the ipckit tool shares: error reporting with the exit-code
 * policy of cli.h, number parsing, opening a channel in either role, a growing receive buffer,
 * colour (NO_COLOR) and the progress line.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t cli_sig;   /* the signal that asks the command to end */
static volatile sig_atomic_t cli_owned; /* a channel is open: end through the close path */

int cli_fail(const char *cmd, const char *what, int err)
{
    const char *detail = ipk_errmsg();
    cli_progress_done();
    /* The detail usually starts with the address already; a timeout says so in any case. */
    const char *tail = err == IPK_ETIMEDOUT && !strstr(detail, "timed out") ? " (timed out)" : "";
    if (detail[0] && strncmp(detail, what, strlen(what)) == 0)
        fprintf(stderr, "ipckit %s: %s%s\n", cmd, detail, tail);
    else if (detail[0])
        fprintf(stderr, "ipckit %s: %s: %s%s\n", cmd, what, detail, tail);
    else
        fprintf(stderr, "ipckit %s: %s: %s\n", cmd, what, ipk_strerror(err));
    /* Only an address that does not parse is a usage error: one that parses but names a host
     * that does not resolve is a failure of the operation (ipk_info parses without opening). */
    char probe[1];
    if (err == IPK_EADDR && ipk_info(what, probe, sizeof probe) >= 0)
        return CLI_FAIL;
    return err == IPK_EADDR || err == IPK_EOPTION ? CLI_USAGE : CLI_FAIL;
}

int cli_usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ipckit %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'ipckit %s --help'\n", cmd);
    return CLI_USAGE;
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_ms(const char *s, int *out)
{
    long v;
    if (cli_parse_long(s, -1, 86400000, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

int cli_opt_kv(const char *cmd, ipk_opts *o, char *kv)
{
    char *eq = strchr(kv, '=');
    if (eq == NULL)
        return cli_usage_err(cmd, "-o %s: write KEY=VALUE", kv);
    *eq = '\0';
    int r = ipk_opts_set(o, kv, eq + 1);
    *eq = '=';
    return r == 0 ? 0 : cli_fail(cmd, kv, r);
}

int cli_chan_opt(const char *cmd, int opt, char *arg, ipk_opts *o, int *listen)
{
    switch (opt) {
    case 'o':
        return cli_opt_kv(cmd, o, arg);
    case 'l':
    case 'd':
        *listen = opt == 'l';
        return 0;
    default:
        return -1;
    }
}

int cli_open(const char *url, const ipk_opts *o, int listen, ipk_chan **l, ipk_chan **c)
{
    *l = *c = NULL;
    if (!listen) {
        int r = ipk_dial(c, url, o);
        cli_owned |= r == 0;
        return r;
    }
    /* A listener creates its object inside ipk_listen: a signal arriving before the command
     * knows it owns it would end the process and leave the object behind. Held back until
     * then, it takes the normal close path. (A dial, which may wait for its peer, stays
     * interruptible.) */
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, &old);
    ipk_chan *x;
    int r = ipk_listen(&x, url, o);
    if (r == 0)
        cli_owned = 1;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return r;
    /* Only connection-oriented listeners accept; for the others the listener is the channel.
     * A zero-timeout accept answers IPK_ENOTSUP at once for those, without side effects. */
    ipk_chan *p = NULL;
    r = ipk_accept(x, &p, 0);
    if (r == IPK_ENOTSUP) {
        *c = x;
        return 0;
    }
    if (r == 0)
        *c = p;
    *l = x;
    return 0;
}

int cli_close(const char *cmd, ipk_chan *c)
{
    if (c == NULL)
        return CLI_OK;
    char name[512];
    snprintf(name, sizeof name, "%s", ipk_addr(c));
    int exec = strcmp(ipk_scheme(c), "exec") == 0;
    long left = ipk_undelivered(c);
    int r = ipk_close(c);
    if (left > 0)
        fprintf(stderr,
                "ipckit %s: %s still holds messages nobody has received; it stays (receive "
                "them, or remove it: ipckit rm %s)\n",
                cmd, name, name);
    if (r < 0)
        return cli_fail(cmd, name, r);
    if (!exec || r == 0)
        return CLI_OK;
    /* exec: the child's wait status. TERM and KILL come from close itself (a child that did
     * not end after its input did), PIPE from a child writing after we stopped reading. */
    if (WIFEXITED(r)) {
        fprintf(stderr, "ipckit %s: %s: exited with status %d%s\n", cmd, name, WEXITSTATUS(r),
                WEXITSTATUS(r) == 127 ? " (command not found)" : "");
        return CLI_FAIL;
    }
    if (WIFSIGNALED(r) && WTERMSIG(r) != SIGTERM && WTERMSIG(r) != SIGKILL &&
        WTERMSIG(r) != SIGPIPE) {
        fprintf(stderr, "ipckit %s: %s: killed by signal %d (%s)\n", cmd, name, WTERMSIG(r),
                strsignal(WTERMSIG(r)));
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_scheme_takes(const char *url, const char *key)
{
    char scheme[32];
    size_t n = strcspn(url, ":");
    if (url[n] != ':' || n >= sizeof scheme)
        return 0;
    memcpy(scheme, url, n);
    scheme[n] = '\0';
    const char *k;
    for (size_t i = 0; (k = ipk_scheme_option(scheme, i)) != NULL; i++)
        if (strcmp(k, key) == 0)
            return 1;
    return 0;
}

int cli_url_sets(const char *url, const char *key)
{
    const char *q = strrchr(url, '?');
    size_t kl = strlen(key);
    for (const char *p = q; p != NULL; p = strchr(p + 1, '&'))
        if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '=')
            return 1;
    return 0;
}

long cli_recv(ipk_chan *c, cli_buf *b, ipk_msginfo *mi, int timeout_ms)
{
    for (;;) {
        if (b->p == NULL) {
            b->cap = 64 * 1024;
            if ((b->p = malloc(b->cap)) == NULL)
                return -ENOMEM;
        }
        long n = ipk_recvx(c, b->p, b->cap, mi, timeout_ms);
        if (n != IPK_EMSGSIZE || ipk_needed(c) <= b->cap)
            return n;
        unsigned char *nb = realloc(b->p, ipk_needed(c));
        if (nb == NULL)
            return -ENOMEM;
        b->p = nb;
        b->cap = ipk_needed(c);
    }
}

struct cli_recv_arg {
    ipk_chan *c;
    cli_buf *b;
    ipk_msginfo *mi;
};

static long cli_recv_op(void *arg, int slice_ms)
{
    struct cli_recv_arg *a = arg;
    return cli_recv(a->c, a->b, a->mi, slice_ms);
}

long cli_recv_wait(const char *cmd, ipk_chan *c, cli_buf *b, ipk_msginfo *mi, int timeout_ms)
{
    struct cli_recv_arg a = {c, b, mi};
    return cli_wait(cmd, cli_recv_op, &a, timeout_ms);
}

struct cli_accept_arg {
    ipk_chan *l, **c;
};

static long cli_accept_op(void *arg, int slice_ms)
{
    struct cli_accept_arg *a = arg;
    return ipk_accept(a->l, a->c, slice_ms);
}

int cli_accept(const char *cmd, ipk_chan *l, ipk_chan **c, int timeout_ms)
{
    struct cli_accept_arg a = {l, c};
    return (int)cli_wait(cmd, cli_accept_op, &a, timeout_ms);
}

struct cli_send_arg {
    ipk_chan *c;
    const void *p;
    size_t n;
    const ipk_msginfo *mi;
};

/* A send that times out sent nothing (a frame it began counts as sent, its rest is buffered
 * and written first by the next call), so the next slice sends the same message again. */
static long cli_send_op(void *arg, int slice_ms)
{
    struct cli_send_arg *a = arg;
    return ipk_sendx(a->c, a->p, a->n, a->mi, slice_ms);
}

int cli_send(const char *cmd, ipk_chan *c, const void *p, size_t n, const ipk_msginfo *mi,
             int timeout_ms)
{
    struct cli_send_arg a = {c, p, n, mi};
    return (int)cli_wait(cmd, cli_send_op, &a, timeout_ms);
}

/* ---- ending a command early ---- */

static void cli_on_signal(int sig)
{
    if (!cli_owned) { /* nothing to close yet: end as the default action would */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cli_sig = sig;
}

void cli_signals_catch(void)
{
    /* No SA_RESTART: a read of standard input returns EINTR rather than waiting on. */
    struct sigaction sa = {.sa_handler = cli_on_signal};
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaddset(&sa.sa_mask, sigs[i]);
        sigaction(sigs[i], &sa, NULL);
    }
}

int cli_signal_caught(void)
{
    return cli_sig;
}

static int cli_watch_out;   /* standard output is a pipe or socket whose reader may go */
static int cli_status = -1; /* the exit status to end with once the command must stop */

void cli_out_watch(void)
{
    struct stat st;
    cli_watch_out =
        fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

static void cli_out_failed(const char *cmd, int e)
{
    if (cli_status >= 0)
        return;
    cli_progress_done();
    fprintf(stderr, "ipckit %s: standard output: %s\n", cmd, strerror(e));
    cli_status = CLI_FAIL;
}

int cli_out_flush(const char *cmd)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    cli_out_failed(cmd, errno ? errno : EIO);
    return CLI_FAIL;
}

int cli_stopped(const char *cmd)
{
    if (cli_sig != 0 && cli_status < 0)
        cli_status = 128 + cli_sig;
    if (cli_status >= 0)
        return 1;
    /* The write end of a pipe whose reader has gone polls POLLERR (a socket: POLLHUP too), so
     * the command stops before it takes a message it could not write. */
    struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
    if (cli_watch_out && poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
        cli_out_failed(cmd, EPIPE);
    return cli_status >= 0;
}

int cli_stop_status(void)
{
    return cli_status >= 0 ? cli_status : CLI_OK;
}

long cli_wait(const char *cmd, cli_op op, void *arg, int timeout_ms)
{
    double end = cli_now_us() + timeout_ms * 1000.0;
    for (;;) {
        if (cli_stopped(cmd))
            return CLI_ESTOP;
        int slice = CLI_TICK_MS;
        if (timeout_ms >= 0) {
            double left = (end - cli_now_us()) / 1000.0;
            slice = left <= 0 ? 0 : left < CLI_TICK_MS ? (int)left + 1 : CLI_TICK_MS;
        }
        long r = op(arg, slice);
        if (r != IPK_ETIMEDOUT || (timeout_ms >= 0 && cli_now_us() >= end))
            return r;
    }
}

void cli_buf_free(cli_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

int cli_color(FILE *f)
{
    const char *nc = getenv("NO_COLOR");
    if (nc != NULL && nc[0] != '\0')
        return 0;
    const char *term = getenv("TERM");
    if (term != NULL && strcmp(term, "dumb") == 0)
        return 0;
    return isatty(fileno(f));
}

const char *cli_paint(FILE *f, const char *sgr, const char *text, char *buf, size_t cap)
{
    if (!cli_color(f))
        return text;
    snprintf(buf, cap, "\033[%sm%s\033[0m", sgr, text);
    return buf;
}

static int cli_progress_shown;

void cli_progress(const char *fmt, ...)
{
    if (!isatty(STDERR_FILENO))
        return;
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    cli_progress_shown = 1;
}

void cli_progress_done(void)
{
    if (!cli_progress_shown)
        return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    cli_progress_shown = 0;
}

double cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}
