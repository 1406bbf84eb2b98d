/*
 * cmd_tour.c - ipckit tour: every mechanism of the guide, working between real processes, on
 * the library. Each step forks the guide's pair of programs (producer and consumer, writer and
 * reader, sender and receiver, server and client), checks what arrived, prints a few lines, and
 * takes a quick round-trip figure; the end is a table. Exit status 0 when every step passed.
 *
 * Every object a step makes is recorded before it is made, so that the end of the tour and
 * Ctrl-C (the tool's own SIGINT handler, exit 130) remove whatever the library did not.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <mqueue.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define T_IO      5000 /* ms any single wait of the tour may take */
#define RT_ROUNDS 200  /* round trips behind each figure */
#define RT_SIZE   64   /* bytes per round-trip message */
#define T_MAXOBJ  48
#define T_MAXKID  32

/* ---- what the tour made, for cleanup (also from the SIGINT handler) ---- */

enum tobj { TO_PATH, TO_MQ, TO_SHM, TO_SEM, TO_SYSV };

static struct {
    char dir[64];
    struct {
        enum tobj kind;
        char name[200];
        key_t key;
    } o[T_MAXOBJ];
    volatile sig_atomic_t nobj;
    pid_t kid[T_MAXKID];
    volatile sig_atomic_t nkid;
    pid_t self;
} T;

static void t_record(enum tobj kind, const char *name, key_t key)
{
    int n = T.nobj;
    if (n == T_MAXOBJ)
        return;
    T.o[n].kind = kind;
    snprintf(T.o[n].name, sizeof T.o[n].name, "%s", name);
    T.o[n].key = key;
    T.nobj = n + 1; /* published after the entry is complete: the handler may run any time */
}

/* Only async-signal-safe calls (and mq/shm/sem unlink, which are plain system calls or an
 * unlink under /dev/shm): this runs from the SIGINT handler too. */
static void t_cleanup(void)
{
    if (getpid() != T.self)
        return;
    for (int i = 0; i < T.nkid; i++)
        if (T.kid[i] > 0)
            kill(T.kid[i], SIGKILL);
    for (int i = 0; i < T.nkid; i++)
        if (T.kid[i] > 0)
            waitpid(T.kid[i], NULL, 0);
    for (int i = T.nobj - 1; i >= 0; i--) {
        switch (T.o[i].kind) {
        case TO_PATH:
            unlink(T.o[i].name);
            break;
        case TO_MQ:
            mq_unlink(T.o[i].name);
            break;
        case TO_SHM:
            shm_unlink(T.o[i].name);
            break;
        case TO_SEM:
            sem_unlink(T.o[i].name);
            break;
        case TO_SYSV: {
            int id = msgget(T.o[i].key, 0);
            if (id >= 0)
                msgctl(id, IPC_RMID, NULL);
            break;
        }
        }
    }
    if (T.dir[0])
        rmdir(T.dir);
}

static void t_on_sigint(int sig)
{
    (void)sig;
    static const char msg[] = "\nipckit tour: interrupted; removing what the tour made\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing to do */
    }
    t_cleanup();
    _exit(CLI_INTR);
}

/* An address of the tour, into a buffer of T_URL bytes, its object recorded for removal:
 * a path in the tour's directory (file, fifo, unix), "/ipckit-tour-PID-stem" (mq, shm), or
 * for sysv a file in the directory for ftok() with project proj. */
#define T_URL 256
static const char *t_url(char *url, const char *scheme, const char *stem, const char *query)
{
    char name[200];
    enum tobj kind = TO_PATH;
    if (strcmp(scheme, "mq") == 0 || strcmp(scheme, "shm") == 0 || strcmp(scheme, "sem") == 0) {
        kind = scheme[0] == 'm' ? TO_MQ : scheme[1] == 'h' ? TO_SHM : TO_SEM;
        snprintf(name, sizeof name, "/ipckit-tour-%d-%s", (int)T.self, stem);
    } else {
        snprintf(name, sizeof name, "%s/%s", T.dir, stem);
    }
    t_record(kind, name, 0);
    if (strcmp(scheme, "sysv") == 0) {
        int fd = open(name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        t_record(TO_SYSV, "", ftok(name, atoi(strchr(query, '=') + 1)));
    }
    snprintf(url, T_URL, "%s:%s%s%s", scheme, name, query ? "?" : "", query ? query : "");
    return url;
}

/* ---- processes ---- */

static pid_t t_fork(void)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_DFL); /* the parent cleans up; a child just goes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != T.self)
            _exit(1);
        return 0;
    }
    if (pid > 0 && T.nkid < T_MAXKID) {
        T.kid[T.nkid] = pid;
        T.nkid = T.nkid + 1;
    }
    return pid;
}

static void t_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Waits for a child for at most ms; kills it when it overstays. Its exit code, or -1. */
static int t_wait(pid_t pid, long ms)
{
    int st;
    for (long waited = 0;; waited += 5) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            return -1;
        if (waited >= ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "    child %d did not finish in %ld ms: killed\n", (int)pid, ms);
            break;
        }
        t_sleep_ms(5);
    }
    for (int i = 0; i < T.nkid; i++)
        if (T.kid[i] == pid)
            T.kid[i] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* In a child: report a library failure and leave. */
static void c_die(const char *who, const char *what, int err)
{
    fprintf(stderr, "    %s (pid %d): %s: %s\n", who, (int)getpid(), what,
            ipk_errmsg()[0] ? ipk_errmsg() : ipk_strerror(err));
    _exit(1);
}

/* ---- steps ---- */

enum tres { TR_OK, TR_FAIL, TR_NOTBUILT };

typedef struct step {
    const char *key, *mechanism, *guarantee;
    int (*run)(struct step *s);
    enum tres res;
    double rtt_us; /* < 0: not measured */
} step;

/* Records a failure of the parent's side; IPK_ENOTBUILT makes the step "not built". */
static int s_fail(step *s, const char *what, int err)
{
    cli_progress_done();
    if (err == IPK_ENOTBUILT) {
        printf("    not built in this version: %s\n", what);
        s->res = TR_NOTBUILT;
        return -1;
    }
    printf("    FAILED: %s: %s\n", what, err && ipk_errmsg()[0] ? ipk_errmsg() : ipk_strerror(err));
    s->res = TR_FAIL;
    return -1;
}

static int s_check(step *s, int ok, const char *what)
{
    if (ok)
        return 0;
    printf("    FAILED: %s\n", what);
    s->res = TR_FAIL;
    return -1;
}

static int s_child(step *s, pid_t pid, const char *who)
{
    if (pid < 0)
        return s_fail(s, "fork", -errno);
    int st = t_wait(pid, T_IO * 2);
    if (st == 0)
        return 0;
    printf("    FAILED: the %s (pid %d) did not finish cleanly\n", who, (int)pid);
    s->res = TR_FAIL;
    return -1;
}

/* Round trips between this process and a child: over one connection (duplex: the parent
 * listens at `up`, the child dials), or over two one-way objects (the parent owns `up`, the
 * child owns `down` and says where it is in its first message). The mean in microseconds. */
static int rt_measure(step *s, const char *up, const char *down)
{
    ipk_chan *L = NULL, *c = NULL, *d = NULL;
    int r = ipk_listen(&L, up, NULL);
    if (r != 0)
        return s_fail(s, up, r);
    char msg[RT_SIZE];
    memset(msg, 'x', sizeof msg);
    pid_t pid = t_fork();
    if (pid == 0) {
        ipk_chan *in, *out;
        if (down == NULL) {
            if ((r = ipk_dial(&in, ipk_addr(L), NULL)) != 0)
                c_die("echo", ipk_addr(L), r);
            out = in;
        } else {
            if ((r = ipk_listen(&in, down, NULL)) != 0)
                c_die("echo", down, r);
            if ((r = ipk_dial(&out, ipk_addr(L), NULL)) != 0)
                c_die("echo", ipk_addr(L), r);
            const char *where = ipk_addr(in);
            if ((r = ipk_send(out, where, strlen(where), T_IO)) != 0)
                c_die("echo", "ready", r);
        }
        for (int i = 0; i < RT_ROUNDS; i++) {
            long n = ipk_recv(in, msg, sizeof msg, T_IO);
            if (n < 0)
                c_die("echo", "recv", (int)n);
            if ((r = ipk_send(out, msg, (size_t)n, T_IO)) != 0)
                c_die("echo", "send", r);
        }
        if (out != in)
            ipk_close(out);
        ipk_close(in);
        _exit(0);
    }
    int ok = -1;
    if (down == NULL) {
        r = ipk_accept(L, &c, T_IO);
        if (r == IPK_ENOTSUP) { /* a listener that is the channel itself */
            c = L;
            L = NULL;
            r = 0;
        }
        d = c;
    } else {
        char where[512];
        long n = ipk_recv(L, where, sizeof where - 1, T_IO);
        r = n < 0 ? (int)n : 0;
        if (n >= 0) {
            where[n] = '\0';
            r = ipk_dial(&d, where, NULL);
        }
        c = L;
        L = NULL;
    }
    if (r != 0) {
        s_fail(s, "round trip: connect", r);
        goto out;
    }
    double t0 = cli_now_us();
    for (int i = 0; i < RT_ROUNDS; i++) {
        char back[RT_SIZE];
        if ((r = ipk_send(d, msg, sizeof msg, T_IO)) != 0) {
            s_fail(s, "round trip: send", r);
            goto out;
        }
        long n = ipk_recv(c, back, sizeof back, T_IO);
        if (n != RT_SIZE) {
            s_fail(s, "round trip: recv", n < 0 ? (int)n : IPK_EPROTO);
            goto out;
        }
    }
    s->rtt_us = (cli_now_us() - t0) / RT_ROUNDS;
    ok = 0;
out:
    if (d != c)
        ipk_close(d);
    ipk_close(c);
    ipk_close(L);
    if (s_child(s, pid, "echo process") != 0)
        ok = -1;
    return ok;
}

/* The guide's pairs: this process owns the object at url (ipk_listen) and a child dials it and
 * runs fn, whose result is the child's exit code. The child's pid, or -1 (step failed). */
static pid_t t_pair(step *s, const char *url, ipk_chan **own, const char *who,
                    int (*fn)(ipk_chan *c))
{
    int r = ipk_listen(own, url, NULL);
    if (r != 0)
        return s_fail(s, url, r);
    pid_t pid = t_fork();
    if (pid == 0) {
        ipk_chan *c;
        if ((r = ipk_dial(&c, url, NULL)) != 0)
            c_die(who, url, r);
        _exit(fn(c));
    }
    if (pid < 0) {
        s_fail(s, "fork", -errno);
        ipk_close(*own);
    }
    return pid;
}

static const char file_data[] = "Now is the winter of our discontent\n"
                                "Made glorious summer by this sun of York\n";

static int c_producer(ipk_chan *w)
{
    int r = ipk_send(w, file_data, sizeof file_data - 1, T_IO);
    if (r != 0)
        c_die("producer", "write", r);
    printf("    producer (pid %d) wrote 2 lines under an exclusive lock\n", (int)getpid());
    return ipk_close(w) == 0 ? 0 : 1;
}

/* 1. The producer writes the file under an exclusive lock; the consumer reads it whole under a
 * shared lock. */
static int st_file(step *s)
{
    char url[T_URL], up[T_URL], down[T_URL];
    t_url(url, "file", "data.dat", "mode=whole");
    t_url(up, "file", "up.log", NULL);
    t_url(down, "file", "down.log", NULL);
    ipk_chan *c;
    pid_t pid = t_pair(s, url, &c, "producer", c_producer);
    if (pid < 0)
        return -1;
    if (s_child(s, pid, "producer") != 0) {
        ipk_close(c);
        return -1;
    }
    char buf[256];
    long n = ipk_recv(c, buf, sizeof buf - 1, T_IO);
    ipk_close(c);
    if (n < 0)
        return s_fail(s, "consumer: read", (int)n);
    buf[n] = '\0';
    printf("    consumer (pid %d) read under a shared lock:\n", (int)getpid());
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        printf("      %s\n", line);
    if (s_check(s, (size_t)n == sizeof file_data - 1, "the consumer read something else") != 0)
        return -1;
    return rt_measure(s, up, down);
}

static const char shm_text[] = "This is the way the world ends...";

static int c_memreader(ipk_chan *rd)
{
    char buf[600];
    long n = ipk_recv(rd, buf, sizeof buf - 1, T_IO);
    if (n < 0)
        c_die("memreader", "read", (int)n);
    buf[n] = '\0';
    printf("    memreader (pid %d) waited on the semaphore, then read: %s\n", (int)getpid(), buf);
    ipk_close(rd);
    return strcmp(buf, shm_text) == 0 ? 0 : 1;
}

/* 2. memwriter puts a string in a segment and posts a named semaphore; memreader waits on the
 * semaphore and reads it. */
static int st_shm(step *s)
{
    char semu[T_URL], query[T_URL], url[T_URL], rt[T_URL], seg[T_URL];
    const char *sem = t_url(semu, "sem", "sem", NULL) + 4; /* "/ipckit-tour-PID-sem" */
    snprintf(query, sizeof query, "mode=segment&sem=%s&size=512", sem);
    t_url(url, "shm", "seg", query);
    t_url(rt, "shm", "rt", "duplex=1"); /* the round trip: one conversation, both ways */
    snprintf(seg, sizeof seg, "%.*s", (int)strcspn(url + 4, "?"), url + 4);
    ipk_chan *w;
    pid_t pid = t_pair(s, url, &w, "memreader", c_memreader);
    if (pid < 0)
        return -1;
    int r = ipk_send(w, shm_text, sizeof shm_text - 1, T_IO);
    if (r == 0)
        printf("    memwriter (pid %d) wrote %zu bytes into /dev/shm%s and posted %s\n",
               (int)getpid(), sizeof shm_text - 1, seg, sem);
    int cr = s_child(s, pid, "memreader");
    ipk_close(w);
    if (r != 0)
        return s_fail(s, "memwriter: write", r);
    if (cr != 0)
        return -1;
    return rt_measure(s, rt, NULL);
}

/* 3. The parent writes into an unnamed pipe, the child reads it. The library's unnamed pipes go
 * to a child it spawns (exec:), here cat, which echoes what it reads to its standard output -
 * the second pipe, back to the parent. */
static int st_pipe(step *s)
{
    static const char msg[] = "Nature's first green is gold";
    ipk_chan *c;
    int r = ipk_dial(&c, "exec:cat", NULL);
    if (r != 0)
        return s_fail(s, "exec:cat", r);
    pid_t child = -1;
    ipk_peer(c, &child, NULL, NULL);
    char buf[RT_SIZE > 64 ? RT_SIZE : 64];
    long n = -1;
    if ((r = ipk_send(c, msg, sizeof msg - 1, T_IO)) == 0)
        n = ipk_recv(c, buf, sizeof buf - 1, T_IO);
    if (r != 0 || n < 0) {
        ipk_close(c);
        return s_fail(s, r ? "parent: write" : "parent: read back", r ? r : (int)n);
    }
    buf[n] = '\0';
    int same = strcmp(buf, msg) == 0;
    printf("    parent (pid %d) wrote: %s\n", (int)getpid(), msg);
    printf("    child cat (pid %d) read it from the pipe and echoed: %s\n", (int)child, buf);
    char m[RT_SIZE];
    memset(m, 'x', sizeof m);
    double t0 = cli_now_us();
    for (int i = 0; i < RT_ROUNDS && r == 0; i++)
        if ((r = ipk_send(c, m, sizeof m, T_IO)) == 0 && ipk_recv(c, buf, sizeof buf, T_IO) < 0)
            r = IPK_EPROTO;
    s->rtt_us = (cli_now_us() - t0) / RT_ROUNDS;
    int st = ipk_close(c);
    if (r != 0)
        return s_fail(s, "round trip through cat", r);
    printf("    closing the pipe sent EOF; cat exited with status %d and was reaped\n",
           st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    if (s_check(s, same, "the echo differs from what was written") != 0)
        return -1;
    return s_check(s, st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "cat did not exit cleanly");
}

static unsigned is_prime(unsigned n)
{
    if (n <= 3)
        return n > 1;
    if (n % 2 == 0 || n % 3 == 0)
        return 0;
    for (unsigned i = 5; i * i <= n; i += 6)
        if (n % i == 0 || n % (i + 2) == 0)
            return 0;
    return 1;
}

#define FIFO_LOOPS  12000
#define FIFO_CHUNKS 16
#define FIFO_INTS   4

static int c_fifo_writer(ipk_chan *w)
{
    srand(1);
    for (int i = 0; i < FIFO_LOOPS; i++) {
        int chunk[FIFO_CHUNKS][FIFO_INTS];
        ipk_iov v[FIFO_CHUNKS];
        for (int j = 0; j < FIFO_CHUNKS; j++) {
            for (int k = 0; k < FIFO_INTS; k++)
                chunk[j][k] = rand();
            v[j] = (ipk_iov){chunk[j], sizeof chunk[j]};
        }
        /* The guide's writer draws one more value for its pause; drawing it keeps the same
         * sequence, whose primes the guide counts: 37,682. The pause itself is left out (it
         * would take seconds). */
        (void)rand();
        for (size_t done = 0; done < FIFO_CHUNKS;) {
            long k = ipk_sendv(w, v + done, FIFO_CHUNKS - done, T_IO);
            if (k < 0)
                c_die("fifoWriter", "write", (int)k);
            done += (size_t)k;
        }
    }
    printf("    fifoWriter (pid %d): %d ints sent to the pipe\n", (int)getpid(),
           FIFO_LOOPS * FIFO_CHUNKS * FIFO_INTS);
    return ipk_close(w) == 0 ? 0 : 1;
}

/* 4. fifoWriter sends 768,000 pseudo-random ints (rand() from its default seed, as the guide's
 * does) in 16-byte messages; fifoReader counts the primes and checks every value and its order. */
static int st_fifo(step *s)
{
    char url[T_URL], up[T_URL], down[T_URL];
    t_url(url, "fifo", "fifoChannel", NULL);
    t_url(up, "fifo", "up.fifo", NULL);
    t_url(down, "fifo", "down.fifo", NULL);
    ipk_chan *rd;
    pid_t pid = t_pair(s, url, &rd, "fifoWriter", c_fifo_writer);
    if (pid < 0)
        return -1;
    unsigned total = 0, primes = 0, wrong = 0;
    srand(1);
    for (long m = 0; m < (long)FIFO_LOOPS * FIFO_CHUNKS; m++) {
        int chunk[FIFO_INTS];
        long n = ipk_recv(rd, chunk, sizeof chunk, T_IO);
        if (n != (long)sizeof chunk) {
            s_fail(s, "fifoReader: read", n < 0 ? (int)n : IPK_EPROTO);
            break;
        }
        for (int k = 0; k < FIFO_INTS; k++) {
            total++;
            primes += is_prime((unsigned)chunk[k]);
            wrong += chunk[k] != rand();
        }
        if (m % FIFO_CHUNKS == FIFO_CHUNKS - 1)
            (void)rand(); /* the writer's pause value */
        if (m % 4096 == 0)
            cli_progress("    fifoReader: %u of %d ints", total, FIFO_LOOPS * FIFO_CHUNKS * 4);
    }
    cli_progress_done();
    ipk_close(rd);
    if (s_child(s, pid, "fifoWriter") != 0 || s->res != TR_OK)
        return -1;
    printf("    fifoReader (pid %d): Received ints: %u, primes: %u (every value in order; "
           "the guide's run: 37682)\n",
           (int)getpid(), total, primes);
    if (s_check(s, wrong == 0, "values arrived changed or out of order") != 0)
        return -1;
    return rt_measure(s, up, down);
}

static const long sysv_sent[] = {1, 1, 2, 2, 3, 3};

static int c_sender(ipk_chan *w)
{
    for (int i = 0; i < 6; i++) {
        char m[8];
        snprintf(m, sizeof m, "msg%d", i + 1);
        ipk_msginfo mi = {.type = sysv_sent[i]};
        int r = ipk_sendx(w, m, strlen(m), &mi, T_IO);
        if (r != 0)
            c_die("sender", "send", r);
        printf("    %s sent as type %ld\n", m, sysv_sent[i]);
    }
    return ipk_close(w) == 0 ? 0 : 1;
}

/* 5. The sender queues types 1,1,2,2,3,3; the receiver asks for 3,1,2,1,3,2. */
static int st_sysv(step *s)
{
    static const long ask[] = {3, 1, 2, 1, 3, 2};
    static const char *const expect[] = {"msg5", "msg1", "msg3", "msg2", "msg6", "msg4"};
    char url[T_URL], up[T_URL], down[T_URL];
    t_url(url, "sysv", "queue.h", "proj=123");
    t_url(up, "sysv", "up.key", "proj=1");
    t_url(down, "sysv", "down.key", "proj=1");
    ipk_chan *q, *by[4] = {0};
    int r;
    pid_t pid = t_pair(s, url, &q, "sender", c_sender);
    if (pid < 0)
        return -1;
    int ok = s_child(s, pid, "sender");
    for (int t = 1; t <= 3 && ok == 0; t++) {
        char u[300];
        snprintf(u, sizeof u, "%s&type=%d", url, t);
        if ((r = ipk_dial(&by[t], u, NULL)) != 0)
            ok = s_fail(s, u, r);
    }
    for (int i = 0; i < 6 && ok == 0; i++) {
        char m[16];
        ipk_msginfo mi;
        long n = ipk_recvx(by[ask[i]], m, sizeof m - 1, &mi, T_IO);
        if (n < 0) {
            ok = s_fail(s, "receiver", (int)n);
            break;
        }
        m[n] = '\0';
        printf("    %s received as type %ld\n", m, mi.type);
        ok = s_check(s, strcmp(m, expect[i]) == 0 && mi.type == ask[i], "wrong retrieval order");
    }
    for (int t = 1; t <= 3; t++)
        ipk_close(by[t]);
    ipk_close(q);
    return ok == 0 ? rt_measure(s, up, down) : -1;
}

static const struct {
    const char *text;
    unsigned prio;
} mq_sent[] = {{"routine", 1}, {"urgent", 9}, {"normal", 5}, {"whenever", 0}, {"important", 7}};

static int c_mq_producer(ipk_chan *w)
{
    for (int i = 0; i < 5; i++) {
        ipk_msginfo mi = {.prio = mq_sent[i].prio};
        int r = ipk_sendx(w, mq_sent[i].text, strlen(mq_sent[i].text), &mi, T_IO);
        if (r != 0)
            c_die("producer", "send", r);
    }
    printf("    producer (pid %d) queued: routine/1 urgent/9 normal/5 whenever/0 important/7\n",
           (int)getpid());
    return ipk_close(w) == 0 ? 0 : 1;
}

/* 6. Messages queued with priorities come out highest first. */
static int st_mq(step *s)
{
    static const int order[] = {1, 4, 2, 0, 3};
    char url[T_URL], u1[T_URL], u2[T_URL];
    t_url(url, "mq", "prio", NULL);
    t_url(u1, "mq", "up", NULL);
    t_url(u2, "mq", "down", NULL);
    ipk_chan *q;
    pid_t pid = t_pair(s, url, &q, "producer", c_mq_producer);
    if (pid < 0)
        return -1;
    int ok = s_child(s, pid, "producer");
    if (ok == 0)
        printf("    consumer (pid %d) received:", (int)getpid());
    for (int i = 0; i < 5 && ok == 0; i++) {
        char m[32];
        ipk_msginfo mi;
        long n = ipk_recvx(q, m, sizeof m - 1, &mi, T_IO);
        if (n < 0) {
            printf("\n");
            ok = s_fail(s, "consumer", (int)n);
            break;
        }
        m[n] = '\0';
        printf(" %s/%u", m, mi.prio);
        ok = strcmp(m, mq_sent[order[i]].text) == 0 && mi.prio == mq_sent[order[i]].prio ? 0 : -1;
        if (i == 4 || ok != 0)
            printf("\n");
        if (ok != 0)
            s_check(s, 0, "not highest priority first");
    }
    ipk_close(q);
    return ok == 0 ? rt_measure(s, u1, u2) : -1;
}

/* 7, 8. The client sends book titles; the iterative server echoes each back. */
static int echo_books(step *s, const char *url)
{
    static const char *const books[] = {"War and Peace", "Pride and Prejudice",
                                        "The Sound and the Fury"};
    ipk_chan *L, *c;
    int r = ipk_listen(&L, url, NULL);
    if (r != 0)
        return s_fail(s, url, r);
    printf("    server (pid %d) listening on %s\n", (int)getpid(), ipk_addr(L));
    pid_t pid = t_fork();
    if (pid == 0) {
        ipk_chan *k;
        char buf[64];
        if ((r = ipk_dial(&k, ipk_addr(L), NULL)) != 0)
            c_die("client", ipk_addr(L), r);
        for (int i = 0; i < 3; i++) {
            long n = -1;
            if ((r = ipk_send(k, books[i], strlen(books[i]), T_IO)) != 0 ||
                (n = ipk_recv(k, buf, sizeof buf - 1, T_IO)) < 0)
                c_die("client", "echo", r ? r : (int)n);
            buf[n] = '\0';
            printf("    client (pid %d) got back: %s\n", (int)getpid(), buf);
            if (strcmp(buf, books[i]) != 0)
                _exit(1);
        }
        _exit(ipk_close(k) == 0 ? 0 : 1);
    }
    int ok = -1;
    if ((r = ipk_accept(L, &c, T_IO)) != 0) {
        s_fail(s, "server: accept", r);
    } else {
        char buf[64];
        long n;
        while ((n = ipk_recv(c, buf, sizeof buf, T_IO)) >= 0)
            if ((r = ipk_send(c, buf, (size_t)n, T_IO)) != 0)
                break;
        ok = n == IPK_EOF ? 0 : s_fail(s, "server", r ? r : (int)n);
        ipk_close(c);
    }
    ipk_close(L);
    if (s_child(s, pid, "client") != 0 || ok != 0)
        return -1;
    return rt_measure(s, url, NULL);
}

static int st_tcp(step *s)
{
    return echo_books(s, "tcp://127.0.0.1:0");
}

static int st_unix(step *s)
{
    char url[T_URL];
    return echo_books(s, t_url(url, "unix", "books.sock", NULL));
}

/* 9. Datagrams: each send is one datagram and one receive, both ways. */
static int st_udp(step *s)
{
    if (rt_measure(s, "udp://127.0.0.1:0", "udp://127.0.0.1:0") != 0)
        return -1;
    printf("    %d datagrams of %d bytes each way between two processes, one send = one "
           "receive\n",
           RT_ROUNDS, RT_SIZE);
    return 0;
}

static void graceful(int sig)
{
    static const char m[] = "    \tChild confirming received signal: 15\n"
                            "    \tChild about to terminate gracefully...\n";
    (void)sig;
    if (write(STDOUT_FILENO, m, sizeof m - 1) < 0) {
        /* nothing to do */
    }
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    static const char d[] = "    \tChild terminating now...\n";
    if (write(STDOUT_FILENO, d, sizeof d - 1) < 0) {
        /* nothing to do */
    }
    _exit(0);
}

/* 10. The parent stops its child with SIGTERM; the child's handler finishes cleanly. */
static int st_shutdown(step *s)
{
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    /* Blocked until the child's handler is in place, so the signal cannot come too early. */
    sigprocmask(SIG_BLOCK, &term, &old);
    pid_t pid = t_fork();
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = graceful};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        for (;;) {
            t_sleep_ms(100);
            printf("    \tChild just woke up, but going back to sleep.\n");
            fflush(stdout);
        }
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return s_fail(s, "fork", -errno);
    printf("    Parent sleeping for a time...\n");
    t_sleep_ms(350);
    double t0 = cli_now_us();
    kill(pid, SIGTERM);
    int st = t_wait(pid, T_IO);
    s->rtt_us = cli_now_us() - t0;
    printf("    My child terminated, about to exit myself...\n");
    return s_check(s, st == 0, "the child did not exit cleanly after SIGTERM");
}

#define SIG_BURST 100

/* 11. Real-time signals carry a payload (up to 7 bytes), queue, and arrive in order with the
 * sender's pid. */
static int st_signal(step *s)
{
    static const char self[] = "signal:self?sig=RTMIN+1";
    ipk_chan *me, *to = NULL;
    int r = ipk_listen(&me, self, NULL);
    if (r != 0)
        return s_fail(s, self, r);
    pid_t parent = getpid();
    pid_t pid = t_fork();
    if (pid == 0) {
        ipk_chan *in, *out;
        char u[64];
        snprintf(u, sizeof u, "signal:%d?sig=RTMIN+1", (int)parent);
        if ((r = ipk_listen(&in, self, NULL)) != 0)
            c_die("child", self, r);
        if ((r = ipk_dial(&out, u, NULL)) != 0)
            c_die("child", u, r);
        uint32_t want = 1;
        for (int i = 0; i < SIG_BURST + RT_ROUNDS; i++) {
            uint32_t v;
            ipk_msginfo mi;
            long n = ipk_recvx(in, &v, sizeof v, &mi, T_IO);
            if (n != (long)sizeof v)
                c_die("child", "receive", n < 0 ? (int)n : IPK_EPROTO);
            if (i < SIG_BURST && (v != want++ || mi.pid != parent)) {
                fprintf(stderr, "    child: signal %d carried %u from pid %d\n", i, (unsigned)v,
                        (int)mi.pid);
                _exit(1);
            }
            if (i == SIG_BURST - 1)
                printf("    child (pid %d) received all %d in order, each from pid %d\n",
                       (int)getpid(), SIG_BURST, (int)parent);
            if ((r = ipk_send(out, &v, sizeof v, T_IO)) != 0)
                c_die("child", "send", r);
        }
        ipk_close(out);
        ipk_close(in);
        _exit(0);
    }
    char u[64];
    snprintf(u, sizeof u, "signal:%d?sig=RTMIN+1", (int)pid);
    int ok = -1;
    if ((r = ipk_dial(&to, u, NULL)) != 0) {
        s_fail(s, u, r);
        goto out;
    }
    for (uint32_t v = 1; v <= SIG_BURST; v++)
        if ((r = ipk_send(to, &v, sizeof v, T_IO)) != 0) {
            s_fail(s, "sigqueue", r);
            goto out;
        }
    printf("    parent (pid %d) queued %d real-time signals, each carrying a 4-byte counter\n",
           (int)getpid(), SIG_BURST);
    for (int i = 0; i < SIG_BURST; i++) {
        uint32_t v;
        ipk_msginfo mi;
        long n = ipk_recvx(me, &v, sizeof v, &mi, T_IO);
        if (n != (long)sizeof v || v != (uint32_t)i + 1 || mi.pid != pid) {
            s_fail(s, "echo from the child", n < 0 ? (int)n : IPK_EPROTO);
            goto out;
        }
    }
    double t0 = cli_now_us();
    for (uint32_t v = 0; v < RT_ROUNDS; v++) {
        uint32_t back;
        long n = -1;
        if ((r = ipk_send(to, &v, sizeof v, T_IO)) != 0 ||
            (n = ipk_recv(me, &back, sizeof back, T_IO)) != (long)sizeof back) {
            s_fail(s, "round trip", r ? r : n < 0 ? (int)n : IPK_EPROTO);
            goto out;
        }
    }
    s->rtt_us = (cli_now_us() - t0) / RT_ROUNDS;
    printf("    and echoed every one back (%d in all), payloads intact\n", SIG_BURST + RT_ROUNDS);
    ok = 0;
out:
    ipk_close(to);
    if (s_child(s, pid, "child") != 0)
        ok = -1;
    ipk_close(me);
    return ok;
}

static step steps[] = {
    {"file", "shared file (file:)", "writers exclusive, readers shared (locks)", st_file},
    {"shm", "shared memory (shm:)", "segment handed over by a named semaphore", st_shm},
    {"pipe", "unnamed pipe (exec:)", "in order; EOF and exit status on close", st_pipe},
    {"fifo", "named pipe (fifo:)", "in order, nothing lost", st_fifo},
    {"sysv", "System V queue (sysv:)", "retrieval by type, not only FIFO", st_sysv},
    {"mq", "POSIX queue (mq:)", "highest priority first", st_mq},
    {"tcp", "TCP socket (tcp:)", "reliable, ordered, both ways", st_tcp},
    {"unix", "Unix socket (unix:)", "reliable, ordered, local, both ways", st_unix},
    {"udp", "UDP (udp:)", "one send = one datagram, boundaries kept", st_udp},
    {"shutdown", "SIGTERM shutdown", "the child's handler runs, clean exit", st_shutdown},
    {"signal", "RT signals (signal:)", "in order, 7 bytes each, with sender's pid", st_signal},
};
#define NSTEPS (sizeof steps / sizeof steps[0])

static void tour_usage(FILE *f)
{
    fprintf(f, "usage: ipckit tour [OPTIONS]\n"
               "Runs every mechanism of the guide between real processes on this machine and\n"
               "ends with a table: mechanism, guarantee, result, mean round trip. Objects the\n"
               "tour makes are removed at the end, and on Ctrl-C.\n\n"
               "  -s, --step NAME   run only this step (repeatable):");
    for (size_t i = 0; i < NSTEPS; i++)
        fprintf(f, " %s", steps[i].key);
    fprintf(f, "\n  -h, --help\n\n"
               "Exit status: 0 every step passed, 1 a step failed or its transport is not\n"
               "built, 2 usage error, 130 interrupted.\n");
}

static void print_table(const int *want)
{
    char a[64];
    int ok = 0, failed = 0, notbuilt = 0, ran = 0, shutdown = 0;
    printf("\n%-24s %-42s %-10s %s\n", "MECHANISM", "GUARANTEE", "RESULT", "ROUND TRIP");
    for (size_t i = 0; i < NSTEPS; i++) {
        if (!want[i])
            continue;
        step *s = &steps[i];
        const char *w = s->res == TR_OK ? "ok" : s->res == TR_FAIL ? "FAILED" : "not built";
        char rt[32] = "-";
        if (s->res == TR_OK && s->rtt_us >= 0)
            snprintf(rt, sizeof rt, s->rtt_us >= 1000 ? "%.1f ms" : "%.1f us",
                     s->rtt_us >= 1000 ? s->rtt_us / 1000 : s->rtt_us);
        printf("%-24s %-42s %s%*s %s\n", s->mechanism, s->guarantee,
               cli_paint(stdout,
                         s->res == TR_OK     ? "32"
                         : s->res == TR_FAIL ? "31"
                                             : "33",
                         w, a, sizeof a),
               (int)(10 - strlen(w)), "", rt);
        ran++;
        shutdown |= s->run == st_shutdown;
        ok += s->res == TR_OK;
        failed += s->res == TR_FAIL;
        notbuilt += s->res == TR_NOTBUILT;
    }
    printf("\n%d of %d steps passed", ok, ran);
    if (failed)
        printf(", %d failed", failed);
    if (notbuilt)
        printf(", %d not built in this version", notbuilt);
    printf(".\nROUND TRIP: the mean of %d, %d-byte messages, between two processes%s.\n", RT_ROUNDS,
           RT_SIZE, shutdown ? " (shutdown: from SIGTERM to the child reaped)" : "");
}

int cmd_tour(int argc, char **argv)
{
    static const struct option lo[] = {
        {"step", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int want[NSTEPS], any = 0, opt;
    memset(want, 0, sizeof want);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "s:h", lo, NULL)) != -1) {
        if (opt == 'h') {
            tour_usage(stdout);
            return CLI_OK;
        }
        if (opt != 's') {
            tour_usage(stderr);
            return CLI_USAGE;
        }
        size_t i = 0;
        while (i < NSTEPS && strcmp(steps[i].key, optarg) != 0)
            i++;
        if (i == NSTEPS)
            return cli_usage_err("tour", "no step '%s'", optarg);
        want[i] = any = 1;
    }
    if (optind != argc)
        return cli_usage_err("tour", "unexpected argument '%s'", argv[optind]);
    for (size_t i = 0; i < NSTEPS; i++)
        want[i] = want[i] || !any;

    /* Line by line, so that the lines of parents and children come out in the order written. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    T.self = getpid();
    snprintf(T.dir, sizeof T.dir, "/tmp/ipckit-tour.XXXXXX");
    if (mkdtemp(T.dir) == NULL) {
        fprintf(stderr, "ipckit tour: mkdtemp %s: %s\n", T.dir, strerror(errno));
        return CLI_FAIL;
    }
    struct sigaction sa = {.sa_handler = t_on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    char a[64];
    printf("ipckit %s: the guide's programs, on the library, between real processes\n",
           ipk_version());
    int n = 0, total = 0;
    for (size_t i = 0; i < NSTEPS; i++)
        total += want[i];
    for (size_t i = 0; i < NSTEPS; i++) {
        if (!want[i])
            continue;
        step *s = &steps[i];
        s->res = TR_OK;
        s->rtt_us = -1;
        printf("\n[%d/%d] %s\n", ++n, total, cli_paint(stdout, "1", s->mechanism, a, sizeof a));
        if (s->run(s) != 0 && s->res == TR_OK)
            s->res = TR_FAIL;
        fflush(stdout);
    }
    print_table(want);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    t_cleanup();
    sigprocmask(SIG_SETMASK, &old, NULL);
    for (size_t i = 0; i < NSTEPS; i++)
        if (want[i] && steps[i].res != TR_OK)
            return CLI_FAIL;
    return CLI_OK;
}
