/*
 * test_faults.c - every system call ipckit makes, failed in turn (issue 15).
 *
 * For each transport, one sequence: listen, dial, accept (where there is one), send, receive,
 * (reply, where the channel goes both ways), close. A first run counts the wrapped system calls
 * the sequence makes (sys.h) and their kinds. Then, for every k and every errno that call can
 * really return, a fresh process runs the sequence with call number k failing with that errno,
 * and checks:
 *   - the error reaches the caller exactly: the step that failed returns -errno (or the code
 *     the transport documents for it, TRANSLATED below), or, for a fault the transport absorbs
 *     by design (ABSORBED below, each with its reason), the sequence completes;
 *   - no descriptor leaks: /proc/self/fd holds as many entries as before the sequence;
 *   - no kernel object is left behind: the object the listener made is gone after the closes;
 *   - the channel was usable or cleanly closed: the same sequence, run again without a fault,
 *     succeeds (a leftover object or a wedged name would make it fail);
 *   - no memory leaks: the process exits through exit(), so LeakSanitizer checks it in the
 *     ASan build (a leak is a non-zero exit status, which fails the test).
 * Under valgrind (IPKT_SLOW=1) every 5th k is run: memcheck's job there is memory errors, and
 * the full sweep would take it an hour; the plain and ASan runs do every k.
 */
#include "harness.h"
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define IPKT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IPKT_ASAN 1
#endif
#endif

/* The errnos each kind of call can really return, injected in turn. FCNTL has none: F_GETFL,
 * F_SETFL and F_GETPIPE_SZ on a valid descriptor fail only with EBADF, a bug the sweep is
 * not about (its calls are still counted, so the calls after them are swept). */
static const int errnos[IPK__SYS_COUNT][4] = {
    [IPK__SYS_READ] = {EIO, EINTR, ECONNRESET},
    [IPK__SYS_WRITEV] = {EIO, EINTR, EPIPE, ENOSPC},
    [IPK__SYS_OPEN] = {EACCES, EMFILE, ENFILE, ENOENT},
    [IPK__SYS_STAT] = {EACCES, ENOMEM, ENOENT},
    [IPK__SYS_LOCK] = {ENOLCK, EINTR},
    [IPK__SYS_MMAP] = {ENOMEM, EACCES},
    [IPK__SYS_FTRUNCATE] = {EIO},
    [IPK__SYS_FALLOCATE] = {ENOSPC},
    [IPK__SYS_CHMOD] = {EPERM},
    [IPK__SYS_UNLINK] = {EACCES},
    [IPK__SYS_MKFIFO] = {EACCES, ENOSPC},
    [IPK__SYS_SOCKET] = {EMFILE, ENOBUFS, ENFILE},
    [IPK__SYS_BIND] = {EADDRINUSE, EACCES, EADDRNOTAVAIL},
    [IPK__SYS_LISTEN] = {EADDRINUSE},
    [IPK__SYS_ACCEPT] = {EMFILE, ECONNABORTED, ENFILE, ENOBUFS},
    [IPK__SYS_CONNECT] = {ECONNREFUSED, EACCES, ENOENT, ETIMEDOUT},
    [IPK__SYS_SOCKOPT] = {ENOBUFS},
    [IPK__SYS_SOCKINFO] = {ENOBUFS},
    [IPK__SYS_SEND] = {ENOBUFS, EINTR, ECONNREFUSED, EMSGSIZE},
    [IPK__SYS_RECV] = {ENOMEM, EINTR, ECONNREFUSED},
    [IPK__SYS_PREAD] = {EIO, EINTR},
    [IPK__SYS_PWRITE] = {ENOSPC, EINTR, EIO, EDQUOT},
    [IPK__SYS_FSYNC] = {EIO},
    [IPK__SYS_PIPE] = {EMFILE},
    [IPK__SYS_SPAWN] = {EAGAIN, ENOMEM},
    [IPK__SYS_WAIT] = {ECHILD},
    [IPK__SYS_KILL] = {EPERM},
    [IPK__SYS_MQ_OPEN] = {EACCES, EMFILE, ENOSPC, ENOMEM},
    [IPK__SYS_MQ_SEND] = {EINTR, EAGAIN},
    [IPK__SYS_MQ_RECV] = {EINTR, EAGAIN},
    [IPK__SYS_MQ_UNLINK] = {EACCES},
    [IPK__SYS_FTOK] = {ENOENT},
    [IPK__SYS_MSGGET] = {EACCES, ENOSPC, ENOMEM},
    [IPK__SYS_MSGCTL] = {EACCES, EPERM},
    [IPK__SYS_MSGSND] = {EINTR, EAGAIN, ENOMEM, EIDRM},
    [IPK__SYS_MSGRCV] = {EINTR, ENOMSG, EIDRM},
    [IPK__SYS_SHM_OPEN] = {EACCES, EMFILE, ENFILE},
    [IPK__SYS_SHM_UNLINK] = {EACCES},
    [IPK__SYS_FUTEX] = {EINTR, EAGAIN},
    [IPK__SYS_INOTIFY] = {EMFILE, ENFILE, ENOMEM},
    [IPK__SYS_WATCH] = {ENOSPC, ENOMEM, EACCES},
    [IPK__SYS_SIGNALFD] = {EMFILE, ENOMEM, ENFILE},
    [IPK__SYS_SIGQUEUE] = {EAGAIN, EPERM, ESRCH},
    [IPK__SYS_POLL] = {EINTR, ENOMEM},
};

/* The steps of a sequence; a failure is reported as (step, code). */
enum { S_LISTEN, S_DIAL, S_ACCEPT, S_EMPTY, S_SEND, S_RECV, S_REPLY, S_RECV2, S_CLOSE, S_OK };
static const char *const step_names[] = {"listen", "dial",  "accept", "empty", "send",
                                         "recv",   "reply", "recv2",  "close", "ok"};

typedef struct scen {
    const char *name;
    const char *listen; /* URL format with one %s for the unique name; NULL: dial only */
    const char *dial;   /* dial-only transports; else the listener's ipk_addr() is dialled */
    int accept, reply;  /* the listener accepts; the receiver replies and the dialer receives */
    int kind;           /* what to look for after close: 0 path, 1 mq, 2 sysv, 3 shm, 4 none */
    int co;             /* stream socket that coalesces: each send is followed by ipk_flush */
    const char *dq;     /* options for the dialer too, appended to the listener's address */
} scen;

typedef struct outcome {
    int step;  /* the step that failed, or S_OK */
    long code; /* what it returned */
    int fired; /* the step in which the fault fired (S_OK: none) */
    int kept;  /* the listener's close left its object for undelivered messages (ipk_close) */
} outcome;

static char obj[200]; /* this run's object name */

static void obj_name(const scen *s)
{
    char n[64];
    ipkt_name(n, sizeof n, "/");
    if (s->kind == 0)
        snprintf(obj, sizeof obj, "%s%s", ipkt_dir(), n);
    else if (s->kind == 2)
        snprintf(obj, sizeof obj, "%d", 0x7d000000 | (int)(getpid() & 0xffffff));
    else
        snprintf(obj, sizeof obj, "%s", n);
}

/* Whether the object the listener made is still there. */
static int obj_exists(const scen *s)
{
    struct stat st;
    switch (s->kind) {
    case 0:
        return lstat(obj, &st) == 0;
    case 1: {
        mqd_t q = mq_open(obj, O_RDONLY);
        if (q != (mqd_t)-1)
            mq_close(q);
        return q != (mqd_t)-1;
    }
    case 2:
        return msgget((key_t)atoi(obj), 0) >= 0;
    case 3: {
        int fd = shm_open(obj, O_RDONLY, 0);
        if (fd >= 0)
            close(fd);
        return fd >= 0;
    }
    default:
        return 0;
    }
}

static void obj_remove(const scen *s)
{
    if (s->kind == 0)
        unlink(obj);
    else if (s->kind == 1)
        mq_unlink(obj);
    else if (s->kind == 2)
        msgctl(msgget((key_t)atoi(obj), 0), IPC_RMID, NULL);
    else if (s->kind == 3)
        shm_unlink(obj);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Runs the sequence; the first failure (or S_OK). Everything opened is closed. */
static outcome run(const scen *s)
{
    outcome o = {S_OK, 0, S_OK, 0};
    ipk_chan *l = NULL, *d = NULL, *a = NULL;
    char url[300], buf[64];
    long r = 0;
#define STEP(st, call)                                                                             \
    do {                                                                                           \
        r = (call);                                                                                \
        if (o.fired == S_OK && ipk__fault_fired())                                                 \
            o.fired = st;                                                                          \
        if (r < 0) {                                                                               \
            o.step = st;                                                                           \
            o.code = r;                                                                            \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    if (s->listen) {
        snprintf(url, sizeof url, s->listen, obj);
        STEP(S_LISTEN, ipk_listen(&l, url, NULL));
    }
    snprintf(url, sizeof url, "%s%s", l ? ipk_addr(l) : s->dial, s->dq ? s->dq : "");
    STEP(S_DIAL, ipk_dial(&d, url, NULL));
    if (s->accept)
        STEP(S_ACCEPT, ipk_accept(l, &a, 2000));
    ipk_chan *rx = a ? a : l ? l : d;
    /* A receive that waits and times out: the waiting calls (ppoll, futex, back-off). */
    STEP(S_EMPTY, (r = ipk_recv(rx, buf, sizeof buf, 2)) == IPK_ETIMEDOUT ? 0 : r < 0 ? r : -1);
    STEP(S_SEND, ipk_send(d, "hello", 5, 2000));
    /* A coalescing channel keeps "hello" for a moment: the owner's write is made here, so the
     * sweep reaches it (the flusher thread's writes are not counted: it would write it within
     * the bound otherwise, which test_coalesce checks). */
    if (s->co)
        STEP(S_SEND, ipk_flush(d, 2000));
    STEP(S_RECV, ipk_recv(rx, buf, sizeof buf, 2000));
    if (r != 5 || memcmp(buf, "hello", 5) != 0) {
        o.step = S_RECV;
        o.code = 1; /* wrong data */
        goto out;
    }
    if (s->reply && rx != d) {
        STEP(S_REPLY, ipk_send(rx, "back", 4, 2000));
        if (s->co)
            STEP(S_REPLY, ipk_flush(rx, 2000));
        STEP(S_RECV2, ipk_recv(d, buf, sizeof buf, 2000));
    }
    ipk_chan *d0 = d, *a0 = a, *l0 = l;
    d = a = l = NULL;
    /* exec: close returns the child's wait status (0 for cat) */
    STEP(S_CLOSE, ipk_close(d0));
    STEP(S_CLOSE, a0 ? ipk_close(a0) : 0);
    STEP(S_CLOSE, l0 ? ipk_close(l0) : 0);
#undef STEP
out:
    if (d)
        ipk_close(d);
    if (a)
        ipk_close(a);
    if (l) {
        o.kept = ipk_undelivered(l) > 0; /* a message sent and never received stays with it */
        ipk_close(l);
    }
    return o;
}

/*
 * Faults a transport absorbs by design: the sequence completes. Each rule names the scheme
 * (a prefix of the scenario's name, "" for all), the step in which the call failed, the kind
 * and errno (0: any), and why. Anything else that completes has swallowed an error.
 */
typedef struct rule {
    const char *scheme;
    int step;
    enum ipk__syscall kind;
    int err;
    const char *why;
} rule;

#define ANY_STEP -1
static const rule rules[] = {
    {"", ANY_STEP, IPK__SYS_COUNT, EINTR, "EINTR is retried with the time that is left"},
    {"", ANY_STEP, IPK__SYS_COUNT, EAGAIN, "not ready yet: waited for within the deadline"},
    {"sysv", ANY_STEP, IPK__SYS_MSGRCV, ENOMSG, "no message yet: waited for within the deadline"},
    {"unix", S_LISTEN, IPK__SYS_BIND, EADDRINUSE,
     "a unix path in use is probed; nothing answers, so it is replaced as a stale socket"},
    {"", ANY_STEP, IPK__SYS_SOCKINFO, 0,
     "getsockopt of SO_SNDBUF (a size hint: without it the kernel's EMSGSIZE says it) and of "
     "SO_PEERCRED (the peer's credentials then read as unknown) are best effort"},
    {"", S_ACCEPT, IPK__SYS_ACCEPT, ECONNABORTED,
     "a connection aborted before accept is skipped; the next one is taken"},
    {"", ANY_STEP, IPK__SYS_SEND, ENOBUFS,
     "a full buffer (unix datagrams) or device queue (udp) says ENOBUFS: waited for within the "
     "deadline"},
    {"exec", S_DIAL, IPK__SYS_STAT, 0,
     "the search of PATH for a better 'not found' message: a failed stat is 'not here'"},
    {"mq", S_CLOSE, IPK__SYS_MQ_OPEN, EACCES,
     "checking the name still holds our queue: no right to open it means the caller is not "
     "root, and the kernel itself refuses to remove another user's queue"},
#define IPKT_QBYTES                                                                                \
    "IPC_STAT for msg_qbytes: read again, when a message seems too large, before refusing it"
    {"sysv", S_LISTEN, IPK__SYS_MSGCTL, 0, IPKT_QBYTES},
    {"sysv", S_DIAL, IPK__SYS_MSGCTL, 0, IPKT_QBYTES},
    {"sysv", S_SEND, IPK__SYS_MSGCTL, 0, IPKT_QBYTES},
    {"sysv", S_REPLY, IPK__SYS_MSGCTL, 0, IPKT_QBYTES},
    {"sysv", S_CLOSE, IPK__SYS_MSGCTL, EACCES,
     "checking the queue is still ours: EACCES means the caller is not root, and the kernel "
     "itself refuses to remove another user's queue"},
    {"shm", ANY_STEP, IPK__SYS_KILL, EPERM,
     "kill(pid, 0) says EPERM for a live process of another user: alive"},
    {"file", S_LISTEN, IPK__SYS_COUNT, 0,
     "a listener stamps an empty log's header best effort; else the first writer does"},
    {"", S_CLOSE, IPK__SYS_STAT, ENOENT,
     "close looks at the file before removing it: ENOENT says it is gone already"},
    {"file", S_EMPTY, IPK__SYS_WATCH, 0,
     "the watch through /proc/self/fd falls back to the path when it fails"},
    {"file", S_EMPTY, IPK__SYS_READ, 0,
     "draining inotify events is best effort: an event left over is one spurious wake-up"},
    {"file", S_EMPTY, IPK__SYS_STAT, 0,
     "the 'was the file removed' check before a wait: when it fails, the wait just waits"},
    {"signal", S_CLOSE, IPK__SYS_READ, 0,
     "close drains pending signals best effort before unblocking (a documented caveat)"},
};

static const char *absorbed(const scen *s, int step, enum ipk__syscall k, int e)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const rule *u = &rules[i];
        if (strncmp(s->name, u->scheme, strlen(u->scheme)) == 0 &&
            (u->step == ANY_STEP || u->step == step) &&
            (u->kind == IPK__SYS_COUNT || u->kind == k) && (u->err == 0 || u->err == e))
            return u->why;
    }
    return NULL;
}

/* Codes a transport documents for an errno of a call, and whether that errno says the object
 * is gone (then the injected lie leaves it in place, and the sweep removes it). */
static const struct {
    enum ipk__syscall kind;
    int err;
    long code;
    int gone;
} translations[] = {
    {IPK__SYS_SEND, EMSGSIZE, IPK_EMSGSIZE, 0}, /* too large for the path: ipckit's code */
    {IPK__SYS_MSGSND, EIDRM, -EPIPE, 1},        /* the queue was removed: a dead peer */
    {IPK__SYS_MSGRCV, EIDRM, IPK_EOF, 1},       /* ... and the end of the messages */
    {IPK__SYS_SIGQUEUE, ESRCH, -EPIPE, 0},      /* the receiving process is gone */
    {IPK__SYS_STAT, ENOENT, 0, 1},              /* close: the file is gone, nothing to remove */
};

static int translated(enum ipk__syscall k, int e, long code, int *gone)
{
    for (size_t i = 0; i < sizeof translations / sizeof translations[0]; i++)
        if (translations[i].kind == k && translations[i].err == e) {
            *gone = translations[i].gone;
            return translations[i].code == code || translations[i].code == 0;
        }
    return 0;
}

/* One run with call k failing with e, in a fresh process: 0 when every check holds. */
/* k: the call's number in the counting run; it fails as the nth call of its kind, since a
 * timed wait makes as many attempts as the clock allows, which shifts the calls after it. */
static int one(const scen *s, int k, enum ipk__syscall kind, int nth, int e)
{
    fflush(NULL);
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int fds = count_fds();
        ipk__fault_any(0, 0);
        ipk__fault_set(kind, nth, e);
        outcome o = run(s);
        int fired = ipk__fault_fired();
        ipk__fault_clear();
        int bad = 0, gone = 0;
        translated(kind, e, 0, &gone);
        const char *why = fired ? absorbed(s, o.fired, kind, e) : "not reached";
        if (o.step == S_OK && why == NULL) {
            fprintf(stderr, "%s: call %d (%s) failing with %s was swallowed\n", s->name, k,
                    ipk__sys_name(kind), strerror(e));
            bad = 1;
        } else if (o.step != S_OK && o.code != -e && !translated(kind, e, o.code, &gone)) {
            fprintf(stderr, "%s: call %d (%s) failing with %s: %s returned %ld (%s) [%s]\n",
                    s->name, k, ipk__sys_name(kind), strerror(e), step_names[o.step], o.code,
                    ipk_strerror((int)o.code), ipk_errmsg());
            bad = 1;
        }
        if (count_fds() != fds) {
            fprintf(stderr, "%s: call %d (%s) failing with %s: %d descriptors leaked\n", s->name, k,
                    ipk__sys_name(kind), strerror(e), count_fds() - fds);
            bad = 1;
        }
        /* A close that failed to remove the object said so: it may stay; so does one that
         * holds a message that was sent and never received (the rule of ipk_close). */
        int said = (o.step == S_CLOSE && o.code == -e) || (fired && gone) || o.kept;
        if (obj_exists(s) && !said) {
            fprintf(stderr, "%s: call %d (%s) failing with %s: the object %s is left behind\n",
                    s->name, k, ipk__sys_name(kind), strerror(e), obj);
            obj_remove(s);
            bad = 1;
        }
        obj_remove(s);
        outcome again = run(s);
        if (again.step != S_OK) {
            fprintf(stderr, "%s: after call %d (%s) failed with %s, a clean run fails at %s: %s\n",
                    s->name, k, ipk__sys_name(kind), strerror(e), step_names[again.step],
                    ipk_errmsg());
            bad = 1;
        }
        obj_remove(s);
        exit(bad); /* exit, not _exit: LeakSanitizer checks this process */
    }
    return ipkt_wait(p);
}

static void sweep(const scen *s)
{
    obj_name(s);
    if (s->kind == 1)
        ipkt_journal("mq", obj);
    else if (s->kind == 3)
        ipkt_journal("shm", obj);
    /* The count and kinds of the calls, from a run that fails nothing. */
    ipk__fault_any(0, 0);
    outcome o = run(s);
    int n = ipk__fault_calls();
    enum ipk__syscall kinds[IPK__FAULT_LOG];
    int nth[IPK__FAULT_LOG], seen[IPK__SYS_COUNT] = {0};
    for (int i = 1; i <= n && i <= IPK__FAULT_LOG; i++) {
        kinds[i - 1] = ipk__fault_kind(i);
        nth[i - 1] = ++seen[kinds[i - 1]];
    }
    ipk__fault_clear();
    if (getenv("IPKT_FAULTS_LIST")) /* the sequence, to tell the call sites apart */
        for (int i = 1; i <= n && i <= IPK__FAULT_LOG; i++)
            fprintf(stderr, "%s: call %d: %s\n", s->name, i, ipk__sys_name(kinds[i - 1]));
    if (o.step != S_OK)
        print_error("%s: the sequence fails without a fault at %s: %ld [%s]\n", s->name,
                    step_names[o.step], o.code, ipk_errmsg());
    assert_int_equal(o.step, S_OK);
    assert_true(n > 0 && n <= IPK__FAULT_LOG);
    int stride = ipkt_slow() ? 5 : 1, failed = 0, runs = 0;
    for (int k = 1; k <= n; k += stride)
        for (int j = 0; j < 4 && errnos[kinds[k - 1]][j]; j++, runs++)
            failed += one(s, k, kinds[k - 1], nth[k - 1], errnos[kinds[k - 1]][j]) != 0;
    fprintf(stderr, "%s: %d calls, %d runs, %d failed\n", s->name, n, runs, failed);
    assert_int_equal(failed, 0);
}

#define SCEN(fn, ...)                                                                              \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        static const scen s_ = {__VA_ARGS__};                                                      \
        sweep(&s_);                                                                                \
    }

/* unix and tcp twice: written through (flush=0: every send writes, as before coalescing), and
 * coalescing with an explicit flush after each send. */
SCEN(t_unix, "unix", "unix:%s?flush=0", NULL, 1, 1, 0, 0, "?flush=0")
SCEN(t_unix_co, "unix coalescing", "unix:%s", NULL, 1, 1, 0, 1)
SCEN(t_unixpacket, "unixpacket", "unixpacket:%s", NULL, 1, 1, 0)
SCEN(t_unixgram, "unixgram", "unixgram:%s", NULL, 0, 0, 0)
SCEN(t_tcp, "tcp", "tcp://127.0.0.1:0?flush=0", NULL, 1, 1, 4, 0, "?flush=0")
SCEN(t_tcp_co, "tcp coalescing", "tcp://127.0.0.1:0", NULL, 1, 1, 4, 1)
SCEN(t_udp, "udp", "udp://127.0.0.1:0", NULL, 0, 0, 4)
SCEN(t_fifo, "fifo", "fifo:%s", NULL, 0, 0, 0)
SCEN(t_exec, "exec", NULL, "exec:cat", 0, 0, 4)
SCEN(t_mq, "mq", "mq:%s", NULL, 0, 1, 1)
SCEN(t_sysv, "sysv", "sysv:%s", NULL, 0, 1, 2)
SCEN(t_shm, "shm", "shm:%s?size=4k", NULL, 0, 0, 3)
SCEN(t_shm_multi, "shm multi", "shm:%s?size=4k&multi=1", NULL, 0, 0, 3)
SCEN(t_shm_duplex, "shm duplex", "shm:%s?size=4k&duplex=1", NULL, 0, 1, 3)
SCEN(t_file, "file", "file:%s?keep=0", NULL, 0, 0, 0)
SCEN(t_signal, "signal", "signal:self", NULL, 0, 0, 4)

IPKT_MAIN(cmocka_unit_test(t_unix), cmocka_unit_test(t_unix_co), cmocka_unit_test(t_unixpacket),
          cmocka_unit_test(t_unixgram), cmocka_unit_test(t_tcp), cmocka_unit_test(t_tcp_co),
          cmocka_unit_test(t_udp), cmocka_unit_test(t_fifo), cmocka_unit_test(t_exec),
          cmocka_unit_test(t_mq), cmocka_unit_test(t_sysv), cmocka_unit_test(t_shm),
          cmocka_unit_test(t_shm_multi), cmocka_unit_test(t_shm_duplex), cmocka_unit_test(t_file),
          cmocka_unit_test(t_signal))
