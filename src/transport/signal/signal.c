/*
 * signal.c - the signal: transport: signals that carry a few bytes.
 *
 * dial signal:PID sends with sigqueue(PID, ?sig=, value); listen signal:self receives through a
 * signalfd, the signal blocked in the calling thread (restored on close). The default signal is
 * SIGRTMIN+1: a real-time signal, so messages queue in order, and not SIGRTMIN itself, which
 * other libraries like to take. Standard signals (USR1, ...) coalesce: while one is pending,
 * more of the same are dropped by the kernel, so a burst arrives at least once, not n times.
 *
 * Payload: the sigval is one pointer-sized word (8 bytes here). Its top byte holds the length
 * and the other 7 the payload (byte i at bits 8i..8i+7), so a message is 0 to 7 bytes. With
 * ?raw=1 the word is the message: a send of up to 8 bytes is zero-padded, every receive is the
 * whole 8-byte word, as a plain program's sigqueue(pid, sig, (union sigval){...}) sends it.
 * A signal sent with kill() (no value) arrives as an empty message.
 *
 * Signals from another user are dropped unless ?allow_uid=any or ?allow_uid=UID. The sender's
 * queue-full error (EAGAIN: the receiving user's RLIMIT_SIGPENDING is used up) is retried with
 * the back-off of ipk__backoff() until the deadline, then reported with the limit.
 */
#include "ipk.h"
#include "signame.h"
#include "transport.h"

#include <ctype.h>
#include <errno.h>
#include <sys/epoll.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define IPK__SIG_WORD    sizeof(void *)      /* bytes in a sigval */
#define IPK__SIG_BYTES   (IPK__SIG_WORD - 1) /* payload bytes beside the length byte */
#define IPK__SIG_DEFAULT "RTMIN+1"

typedef struct ipk__sig {
    int signo;
    int raw;
    int any_uid;
    uid_t allow_uid; /* besides our own; (uid_t)-1 for none */
    uid_t uid, euid; /* our own, read at open (not a system call per message) */
    pid_t me_pid;    /* dialer: what a sent signal says of its sender ... */
    uid_t me_uid;
    unsigned me_forks;            /* ... as of this many forks (see ipk__sig_queue) */
    pid_t pid;                    /* dialer: the receiver */
    sigset_t set;                 /* listener: {signo} */
    int unblock;                  /* listener: the signal was not blocked before listen */
    int bfd;                      /* listener: a second signalfd, blocking, for forever waits */
    struct signalfd_siginfo held; /* a received message the caller's buffer could not take */
    int holding;
} ipk__sig;

static const char *const ipk__sig_keys[] = {"sig", "allow_uid", "raw", NULL};

int ipk__parse_signal(const char *s, int *signo)
{
    static const struct {
        const char *name;
        int sig;
    } named[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"USR1", SIGUSR1},
        {"USR2", SIGUSR2}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
        {"CONT", SIGCONT}, {"WINCH", SIGWINCH},   {"PIPE", SIGPIPE}, {"URG", SIGURG},
        {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"IO", SIGIO},
        {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}, {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
        {"SYS", SIGSYS},   {"TRAP", SIGTRAP},
    };
    if (s == NULL || *s == '\0')
        return ipk__err(IPK_EOPTION, "empty signal name");
    const char *p = strncmp(s, "SIG", 3) == 0 ? s + 3 : s;
    int sig = -1;
    if (isdigit((unsigned char)*p)) {
        long v;
        if (ipk__parse_long(p, 1, 64, &v) != 0)
            return ipk__err(IPK_EOPTION, "signal '%s': not a signal number", s);
        sig = (int)v;
    } else if (strncmp(p, "RTMIN", 5) == 0 || strncmp(p, "RTMAX", 5) == 0) {
        /* The offset stays inside SIGRTMIN..SIGRTMAX: RTMAX-64 would be signal 0 (which
         * sigqueue() only checks for, delivering nothing), RTMAX-40 a standard signal. */
        long off = 0, most = SIGRTMAX - SIGRTMIN;
        const char *q = p + 5;
        if (*q != '\0') {
            if ((p[3] == 'I' && *q != '+') || (p[3] == 'A' && *q != '-') ||
                ipk__parse_long(q + 1, 0, LONG_MAX, &off) != 0)
                return ipk__err(IPK_EOPTION, "signal '%s': write RTMIN+n or RTMAX-n", s);
            if (off > most)
                return ipk__err(IPK_EOPTION,
                                "signal '%s': n is 0..%ld (SIGRTMIN %d .. SIGRTMAX %d); "
                                "name a standard signal by its name",
                                s, most, SIGRTMIN, SIGRTMAX);
        }
        sig = p[3] == 'I' ? SIGRTMIN + (int)off : SIGRTMAX - (int)off;
    } else {
        for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
            if (strcmp(p, named[i].name) == 0)
                sig = named[i].sig;
        if (sig < 0)
            return ipk__err(IPK_EOPTION, "signal '%s': unknown signal name", s);
    }
    if (sig < 1)
        return ipk__err(IPK_EOPTION, "signal '%s': not a signal", s);
    if (sig == SIGKILL || sig == SIGSTOP)
        return ipk__err(IPK_EOPTION, "signal '%s': SIGKILL and SIGSTOP cannot be caught", s);
    if (sig > SIGRTMAX)
        return ipk__err(IPK_EOPTION, "signal '%s': above SIGRTMAX (%d)", s, SIGRTMAX);
    if (sig >= 32 && sig < SIGRTMIN)
        return ipk__err(IPK_EOPTION,
                        "signal '%s': real-time signals below SIGRTMIN (%d) are reserved by the C "
                        "library",
                        s, SIGRTMIN);
    *signo = sig;
    return 0;
}

/* "RTMIN+1", "USR1": the name ipk__parse_signal() reads back. */
static void ipk__sig_name(int signo, char *buf, size_t cap)
{
    const char *abbrev = sigabbrev_np(signo);
    if (signo >= SIGRTMIN && signo <= SIGRTMAX)
        snprintf(buf, cap, "RTMIN+%d", signo - SIGRTMIN);
    else if (abbrev)
        snprintf(buf, cap, "%s", abbrev);
    else
        snprintf(buf, cap, "%d", signo);
}

/* Allocates the channel state from ?sig=, ?raw=, ?allow_uid=. */
static int ipk__sig_new(ipk_chan *c, ipk__sig **out)
{
    ipk__sig *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    const char *v = ipk__opt(c, "sig");
    int r = ipk__parse_signal(v ? v : IPK__SIG_DEFAULT, &s->signo);
    if (r == 0)
        r = ipk__opt_bool(c, "raw", 0, &s->raw);
    s->allow_uid = (uid_t)-1;
    s->bfd = -1;
    s->uid = getuid();
    s->euid = geteuid();
    v = ipk__opt(c, "allow_uid");
    long uid;
    if (r != 0 || v == NULL)
        ;
    else if (strcmp(v, "any") == 0)
        s->any_uid = 1;
    else if (ipk__parse_long(v, 0, (long)UINT32_MAX - 1, &uid) == 0)
        s->allow_uid = (uid_t)uid;
    else
        r = ipk__err(IPK_EOPTION, "signal: option allow_uid=%s: expected any or a uid", v);
    if (r != 0)
        free(s);
    else
        *out = s;
    return r;
}

/*
 * The default action of a real-time signal, and of most standard ones, is to end the process.
 * A receiver that neither blocks, catches nor ignores the signal is not listening, and sending
 * would kill it: refuse. /proc/PID/status shows the main thread's mask; a process that cannot
 * be read is given the benefit of the doubt.
 */
static int ipk__sig_listening(pid_t pid, int signo)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return 1;
    int yes = 0, seen = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long mask;
        if ((sscanf(line, "SigBlk: %llx", &mask) == 1 || sscanf(line, "SigIgn: %llx", &mask) == 1 ||
             sscanf(line, "SigCgt: %llx", &mask) == 1)) {
            seen = 1;
            yes |= (mask >> (signo - 1)) & 1;
        }
    }
    fclose(f);
    return yes || !seen;
}

static int ipk__sig_dial(ipk_chan *c)
{
    ipk__sig *s;
    int r = ipk__sig_new(c, &s);
    if (r != 0)
        return r;
    s->pid = c->addr.u.sig.pid ? c->addr.u.sig.pid : getpid();
    if (ipk__sys_kill(s->pid, 0) != 0) {
        r = errno == ESRCH ? ipk__err(-ESRCH, "signal:%d: no such process", (int)s->pid)
            : errno == EPERM
                ? ipk__err(-EPERM, "signal:%d: process owned by another user", (int)s->pid)
                : ipk__errsys(-errno, "signal:%d: kill(pid, 0)", (int)s->pid);
        goto fail;
    }
    char name[32];
    ipk__sig_name(s->signo, name, sizeof name);
    if (!ipk__sig_listening(s->pid, s->signo)) {
        r = ipk__err(-ECONNREFUSED,
                     "signal:%d: the process neither blocks nor catches SIG%s; sending it would "
                     "end the process (it is not listening)",
                     (int)s->pid, name);
        goto fail;
    }
    if ((r = ipk__set_name(c, "signal:%d?sig=%s", (int)s->pid, name)) != 0)
        goto fail;
    c->tp = s;
    return 0;
fail:
    free(s);
    return r;
}

static int ipk__sig_listen(ipk_chan *c)
{
    if (c->addr.u.sig.pid != 0 && c->addr.u.sig.pid != getpid())
        return ipk__err(IPK_ENOTSUP,
                        "signal:%d: a process receives only its own signals; listen "
                        "on signal:self",
                        (int)c->addr.u.sig.pid);
    ipk__sig *s;
    int r = ipk__sig_new(c, &s);
    if (r != 0)
        return r;
    sigset_t old;
    sigemptyset(&s->set);
    sigaddset(&s->set, s->signo);
    if ((r = -pthread_sigmask(SIG_BLOCK, &s->set, &old)) != 0) {
        r = ipk__errsys(r, "signal:self: pthread_sigmask");
        goto fail;
    }
    s->unblock = !sigismember(&old, s->signo);
    c->tp = s; /* from here on, close undoes the mask */
    c->rfd = ipk__sys_signalfd(-1, &s->set, SFD_CLOEXEC | SFD_NONBLOCK);
    s->bfd = c->rfd < 0 ? -1 : ipk__sys_signalfd(-1, &s->set, SFD_CLOEXEC);
    if (s->bfd < 0) {
        r = ipk__errsys(-errno, "signal:self: signalfd");
        goto fail;
    }
    char name[32];
    ipk__sig_name(s->signo, name, sizeof name);
    if ((r = ipk__set_name(c, "signal:%d?sig=%s", (int)getpid(), name)) != 0)
        goto fail;
    return 0;
fail:
    if (s->bfd >= 0)
        ipk__close_fd(s->bfd);
    if (c->tp) {
        if (s->unblock)
            pthread_sigmask(SIG_UNBLOCK, &s->set, NULL);
        c->tp = NULL;
    }
    free(s);
    return r;
}

/* The receiver's RLIMIT_SIGPENDING as text: prlimit(2) needs CAP_SYS_RESOURCE for another
 * user's process, /proc/PID/limits only read access. */
static void ipk__sig_pending_limit(pid_t pid, char *out, size_t cap)
{
    struct rlimit rl;
    if (prlimit(pid, RLIMIT_SIGPENDING, NULL, &rl) == 0) {
        snprintf(out, cap, "%llu", (unsigned long long)rl.rlim_cur);
        return;
    }
    snprintf(out, cap, "unknown");
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Max pending signals", 19) == 0) {
            unsigned long long soft;
            if (sscanf(line + 19, "%llu", &soft) == 1)
                snprintf(out, cap, "%llu", soft);
            break;
        }
    fclose(f);
}

/*
 * sigqueue() asks the kernel for the caller's pid and uid on every call (two system calls beside
 * rt_sigqueueinfo). They are read at the first send instead, and the pid again in a child after
 * fork(), which a pthread_atfork() handler counts. Caveats: a child made by a raw clone(2) that
 * skips the fork handlers, or a process that changes its real uid after its first send, would
 * send the old values (dial again after such a change).
 */
static unsigned ipk__sig_forks; /* bumped in every child of fork() */
static pthread_once_t ipk__sig_once = PTHREAD_ONCE_INIT;

static void ipk__sig_forked(void)
{
    ipk__sig_forks++;
}

static void ipk__sig_atfork(void)
{
    pthread_atfork(NULL, NULL, ipk__sig_forked);
}

static int ipk__sig_queue(ipk__sig *s, union sigval v)
{
    pthread_once(&ipk__sig_once, ipk__sig_atfork); /* before the first read of the pid */
    if (s->me_forks != ipk__sig_forks || s->me_pid == 0) {
        s->me_forks = ipk__sig_forks;
        s->me_pid = getpid();
        s->me_uid = getuid();
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = s->signo;
    si.si_code = SI_QUEUE;
    si.si_pid = s->me_pid;
    si.si_uid = s->me_uid;
    si.si_value = v;
    return ipk__sys_rt_sigqueueinfo(s->pid, s->signo, &si);
}

static int ipk__sig_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                         int64_t dl)
{
    (void)mi;
    ipk__sig *s = c->tp;
    if (c->role != IPK__DIALER)
        return ipk__err(IPK_ENOTSUP, "%s: a listener receives; dial signal:PID to send", c->name);
    size_t most = s->raw ? IPK__SIG_WORD : IPK__SIG_BYTES;
    if (len > most)
        return ipk__err(IPK_EMSGSIZE, "%s: message of %zu bytes; a signal carries at most %zu%s",
                        c->name, len, most, s->raw ? "" : " (8 with ?raw=1, without a length)");
    uint64_t w = s->raw ? 0 : (uint64_t)len << (8 * IPK__SIG_BYTES);
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t)((const unsigned char *)msg)[i] << (8 * i);
    union sigval v = {.sival_ptr = (void *)(uintptr_t)w};
    unsigned step = 0;
    for (;;) {
        if (ipk__sig_queue(s, v) == 0)
            return 0;
        int e = errno;
        if (e == ESRCH) {
            c->broken = -EPIPE;
            return ipk__err(-EPIPE, "%s: the process is gone (no such process)", c->name);
        }
        if (e == EPERM)
            return ipk__err(-EPERM, "%s: process owned by another user", c->name);
        if (e == EINTR)
            continue;
        if (e != EAGAIN)
            return ipk__errsys(-e, "%s: sigqueue", c->name);
        int r = ipk__backoff(dl, &step);
        if (r != 0) {
            /* Pending signals are charged to the receiving user, against its limit. */
            char lim[32];
            ipk__sig_pending_limit(s->pid, lim, sizeof lim);
            return ipk__err(r,
                            "%s: the receiver's signal queue is full (RLIMIT_SIGPENDING %s "
                            "signals of the receiving user, ulimit -i)",
                            c->name, lim);
        }
    }
}

/* Whether a received signal is from a user this channel accepts. */
static int ipk__sig_allowed(const ipk__sig *s, uint32_t uid)
{
    return s->any_uid || uid == s->uid || uid == s->euid || uid == s->allow_uid;
}

/* Decodes the held signal into buf, or leaves it held when it does not fit. */
static long ipk__sig_take(ipk_chan *c, ipk__sig *s, void *buf, size_t cap, ipk_msginfo *mi)
{
    const struct signalfd_siginfo *si = &s->held;
    uint64_t w = si->ssi_code == SI_QUEUE ? si->ssi_ptr : 0;
    size_t len = s->raw ? IPK__SIG_WORD : (size_t)(w >> (8 * IPK__SIG_BYTES));
    if (mi) {
        mi->signo = (int)si->ssi_signo;
        mi->pid = (pid_t)si->ssi_pid;
        mi->uid = (uid_t)si->ssi_uid;
    }
    if (len > IPK__SIG_BYTES && !s->raw) {
        s->holding = 0;
        return ipk__err(IPK_EPROTO,
                        "%s: signal %u from pid %u carried 0x%llx, not an ipckit payload (receive "
                        "plain sigqueue values with ?raw=1)",
                        c->name, si->ssi_signo, si->ssi_pid, (unsigned long long)w);
    }
    if (len > cap) {
        c->need = len;
        return ipk__err(IPK_EMSGSIZE,
                        "%s: message of %zu bytes does not fit the buffer of %zu; it is kept for "
                        "the next recv",
                        c->name, len, cap);
    }
    for (size_t i = 0; i < len; i++)
        ((unsigned char *)buf)[i] = (unsigned char)(w >> (8 * i));
    s->holding = 0;
    return (long)len;
}

static long ipk__sig_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    ipk__sig *s = c->tp;
    if (c->role != IPK__LISTENER)
        return ipk__err(IPK_ENOTSUP, "%s: a dialer sends; listen on signal:self to receive",
                        c->name);
    while (!s->holding) {
        /* A forever wait reads the blocking signalfd: one system call, like sigwaitinfo() but
         * without it, since sigwaitinfo() unblocks the signal while it waits, and a dialer
         * that looks at this process's mask then (ipk__sig_listening) would see no listener. */
        int fd = dl == IPK__DL_FOREVER ? s->bfd : c->rfd;
        ssize_t n = ipk__sys_read(fd, &s->held, sizeof s->held);
        if (n == (ssize_t)sizeof s->held) {
            s->holding = ipk__sig_allowed(s, s->held.ssi_uid);
            continue; /* a signal from another user is dropped: read the next one */
        }
        if (n >= 0)
            return ipk__err(IPK_EPROTO, "%s: short read of %zd bytes from signalfd", c->name, n);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return ipk__errsys(-errno, "%s: read from signalfd", c->name);
        int w = ipk__wait_fd(c->rfd, POLLIN, dl);
        if (w < 0)
            return ipk__err(w, "%s: no signal", c->name);
    }
    return ipk__sig_take(c, s, buf, cap, mi);
}

static int ipk__sig_pending(const ipk_chan *c)
{
    const ipk__sig *s = c->tp;
    return s && s->holding;
}

static int ipk__sig_fd(const ipk_chan *c)
{
    if (c->rfd >= 0)
        return c->rfd;
    return ipk__err(IPK_ENOTSUP, "%s: a sending channel has no descriptor to poll", c->name);
}

/*
 * Before the signal is unblocked again, the instances still pending are read and dropped: once
 * unblocked they would be delivered with their default action, which ends the process. One
 * that arrives between the drain and the unblock cannot be stopped; the docs say so.
 */
static int ipk__sig_close(ipk_chan *c)
{
    ipk__sig *s = c->tp;
    if (s && c->role == IPK__LISTENER && c->rfd >= 0 && s->unblock) {
        struct signalfd_siginfo si;
        while (ipk__sys_read(c->rfd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
        pthread_sigmask(SIG_UNBLOCK, &s->set, NULL);
    }
    if (s && s->bfd >= 0)
        ipk__close_fd(s->bfd);
    free(s);
    c->tp = NULL;
    return 0;
}

static void ipk__sig_describe(FILE *f, const ipk__addr *a)
{
    if (a->u.sig.pid)
        fprintf(f, "signal:%d", (int)a->u.sig.pid);
    else
        fprintf(f, "signal:self");
    fprintf(f,
            " - signals carrying data\n"
            "  dial signal:PID sends sigqueue(PID, ?sig=%s, value); listen signal:self receives\n"
            "  through signalfd, the signal blocked in the calling thread (every other thread of\n"
            "  the process must block it too, or it may be delivered there instead). A message\n"
            "  is 0..%zu bytes (the length rides in the top byte of the %zu-byte sigval); ?raw=1\n"
            "  sends and receives the whole %zu-byte word. Real-time signals queue in order;\n"
            "  standard signals coalesce (a burst arrives at least once). Signals from other\n"
            "  users are dropped unless ?allow_uid=any|UID. msginfo reports signo, pid, uid.\n"
            "Limits (live):\n",
            IPK__SIG_DEFAULT, IPK__SIG_BYTES, IPK__SIG_WORD, IPK__SIG_WORD);
    struct rlimit rl;
    if (getrlimit(RLIMIT_SIGPENDING, &rl) == 0)
        fprintf(f, "  %-34s %llu\n", "RLIMIT_SIGPENDING (ulimit -i)",
                (unsigned long long)rl.rlim_cur);
    fprintf(f, "  %-34s %d..%d (RTMIN+0..RTMIN+%d)\n", "real-time signals SIGRTMIN..SIGRTMAX",
            SIGRTMIN, SIGRTMAX, SIGRTMAX - SIGRTMIN);
    fprintf(f, "  %-34s 32..%d\n", "reserved by the C library", SIGRTMIN - 1);
    fprintf(f, "  %-34s %zu bytes (raw: %zu)\n", "payload", IPK__SIG_BYTES, IPK__SIG_WORD);
    if (a->u.sig.pid) {
        int k = ipk__sys_kill(a->u.sig.pid, 0), e = errno;
        fprintf(f, "This process: %s\n",
                k == 0       ? "alive"
                : e == EPERM ? "alive, owned by another user"
                             : "no such process");
    }
}

static long ipk__sig_info(const ipk__addr *a, char *buf, size_t cap)
{
    return ipk__info_print(a, buf, cap, ipk__sig_describe);
}

static int ipk__parse_sig(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (strcmp(b, "self") == 0) {
        a->u.sig.pid = 0;
        return 0;
    }
    long pid;
    for (const char *q = b; *q; q++)
        if (!isdigit((unsigned char)*q))
            return ipk__err(IPK_EADDR, "%s: write signal:PID or signal:self", url);
    if (ipk__parse_long(b, 1, 4194304, &pid) != 0)
        return ipk__err(IPK_EADDR, "%s: pid '%s' out of range 1-4194304", url, b);
    a->u.sig.pid = (pid_t)pid;
    return 0;
}

/* ---- pollers: the signalfd polls readable; sending never waits on a descriptor (a full
 * queue makes sigqueue fail with EAGAIN), so a sender is always writable. */

static int ipk__sig_poll_src(ipk_chan *c, unsigned interest, ipk__pollsrc *src)
{
    if (interest & IPK_POLLIN) {
        if (c->rfd < 0)
            return ipk__err(IPK_ENOTSUP, "%s: this end sends signals; it does not receive",
                            c->name);
        src->fd[0] = c->rfd;
        src->ev[0] = EPOLLIN;
    }
    src->flags = IPK__PS_CHECK;
    return 0;
}

static int ipk__sig_poll_check(ipk_chan *c, unsigned interest, int op)
{
    (void)op;
    unsigned ready = interest & IPK_POLLOUT;
    if ((interest & IPK_POLLIN) &&
        (ipk__sig_pending(c) || ipk__wait_fd(c->rfd, POLLIN, IPK__DL_NOW) > 0))
        ready |= IPK_POLLIN;
    return (int)ready;
}

const ipk__transport ipk__tr_signal = {
    .scheme = "signal",
    .parse = ipk__parse_sig,
    .flags = IPK_SCHEME_SIGNAL,
    .usage = "signal:PID or signal:self",
    .keys = ipk__sig_keys,
    .summary = "signals carrying up to 7 bytes: sigqueue to send, signalfd to receive",
    .listen = ipk__sig_listen,
    .dial = ipk__sig_dial,
    .send = ipk__sig_send,
    .recv = ipk__sig_recv,
    .fd = ipk__sig_fd,
    .pending = ipk__sig_pending,
    .close = ipk__sig_close,
    .info = ipk__sig_info,
    .poll_src = ipk__sig_poll_src,
    .poll_check = ipk__sig_poll_check,
};
