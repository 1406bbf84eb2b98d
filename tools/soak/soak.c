/*
 * soak.c - the soak-and-kill engine (soak.h).
 *
 * Processes: this one supervises; it owns the queue objects (mq, sysv, shm, file), so that a
 * killed worker never takes one with it; producers and consumers are forked workers (exec:
 * the producer is the child the consumer spawns; tools/soak/main.c runs soak_exec_child()).
 * Everything they know is in one shared file mapping (struct shared), so that the supervisor
 * can tell, after a SIGKILL, what the dead process had done.
 *
 * A message: u32 sequence, u8 producer slot, u8 payload length, payload, u32 FNV-1a of all
 * before (signal: 24-bit sequence, slot, 24-bit hash: 7 bytes). A producer publishes the next
 * sequence and marks the message attempted before it calls ipk_send, and marks it committed
 * when ipk_send returned 0; it never sends a sequence twice (a failed send is not retried:
 * on a stream a timed-out send may still be completed by the next one, so a retry would be a
 * duplicate the transport did not make). A consumer counts every copy it receives in got[] and
 * checks, per producer, that sequences only go up.
 *
 * What the transport promises decides what a missing message is (docs/semantics/):
 * - attempted but not committed (the producer was killed inside the send, or it failed): may
 *   be missing, must not be duplicated;
 * - committed on a queue (mq, sysv, shm, file): must arrive, except, on mq and sysv, the one
 *   message the kernel handed a consumer killed inside its receive (the first after its last
 *   record); shm consumers peek, record, release, so nothing is taken unrecorded, and a
 *   consumer killed before its release leaves the message to come again (redelivered);
 * - committed into a socket, pipe or signal queue of a consumer that was killed: gone with it
 *   (a stream does not survive a killed peer); the producer tags each message with the
 *   consumer incarnations it may have reached (producer_dial), and only those are excused;
 * - udp promises nothing: missing datagrams are counted as excused.
 * Duplicates and reordering are never excused (udp's order is reported, not promised).
 */
#define _GNU_SOURCE 1
#include "soak.h"

#include "ipckit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { K_QUEUE, K_FILE, K_STREAM, K_FIFO, K_DGRAM, K_SIGNAL, K_EXEC };

typedef struct tdef {
    const char *name;
    enum kind kind;
    int nprod, ncons;
    int kill_prod, kill_cons;
    int lossy;   /* udp: nothing promised about delivery or order */
    int ordered; /* order is promised per producer */
} tdef;

/* Who may be killed follows each transport's promise (see the top). fifo: a reader's buffered
 * bytes go with it (fifo.md), so only writers are killed, with atomic=1 so a killed writer never
 * leaves half a frame. exec: the consumer is the ipckit end; the producer is a plain child. */
static const tdef tdefs[] = {
    {"mq", K_QUEUE, 1, 1, 1, 1, 0, 1},       {"sysv", K_QUEUE, 1, 1, 1, 1, 0, 1},
    {"shm", K_QUEUE, 1, 1, 1, 1, 0, 1},      {"shm-multi", K_QUEUE, 2, 2, 1, 1, 0, 1},
    {"file", K_FILE, 2, 1, 1, 1, 0, 1},      {"fifo", K_FIFO, 2, 1, 1, 0, 0, 1},
    {"unix", K_STREAM, 1, 1, 1, 1, 0, 1},    {"unixpacket", K_STREAM, 1, 1, 1, 1, 0, 1},
    {"unixgram", K_DGRAM, 1, 1, 1, 1, 0, 1}, {"tcp", K_STREAM, 1, 1, 1, 1, 0, 1},
    {"udp", K_DGRAM, 1, 1, 1, 1, 1, 0},      {"exec", K_EXEC, 1, 1, 1, 0, 0, 1},
    {"signal", K_SIGNAL, 1, 1, 1, 1, 0, 1},
};
#define NT     (sizeof tdefs / sizeof tdefs[0])
#define SLOTS  2
#define MAXINC 65536

static const char *const names[NT + 1] = {"mq",   "sysv", "shm",        "shm-multi", "file",
                                          "fifo", "unix", "unixpacket", "unixgram",  "tcp",
                                          "udp",  "exec", "signal",     NULL};

const char *const *soak_transports(void)
{
    return names;
}

#define ST_ATTEMPT 1u
#define ST_COMMIT  2u

struct shared {
    int t;             /* index in tdefs */
    uint64_t per_slot; /* sequences per producer slot */
    int pace_us;       /* producers nap this long every 100 messages */
    char url_rx[1300], url_tx[1300], path[256];
    _Atomic int stop_cons;
    _Atomic uint32_t cons_inc;               /* consumer incarnations started */
    _Atomic int32_t cons_pid[SLOTS];         /* live consumers */
    _Atomic uint32_t cons_cur[SLOTS];        /* their incarnations */
    _Atomic int in_recv[SLOTS];              /* a consumer is between recv and its record */
    _Atomic int64_t cons_last[SLOTS][SLOTS]; /* per consumer, per producer: last recorded */
    _Atomic int32_t prod_pid[SLOTS];         /* live producers (exec: the child) */
    _Atomic uint64_t next[SLOTS];            /* next sequence a slot attempts */
    _Atomic int done[SLOTS];                 /* a slot attempted all its sequences */
    _Atomic int32_t sig_pid;                 /* signal: the listening consumer */
    _Atomic uint64_t committed, received, reordered, corrupt, unexpected, signals;
    _Atomic int err_set;
    char first_error[256];
    unsigned char killed_inc[MAXINC]; /* consumer incarnations that were killed */
    /* then: got[SLOTS][per_slot], state[SLOTS][per_slot] (bytes), tag[SLOTS][per_slot] (u32) */
};

static struct shared *S;
static _Atomic unsigned char *got_;
static _Atomic unsigned char *state_;
static _Atomic uint32_t *tag_;

#define GOT(s, q)   got_[(size_t)(s)*S->per_slot + (q)]
#define STATE(s, q) state_[(size_t)(s)*S->per_slot + (q)]
#define TAG(s, q)   tag_[(size_t)(s)*S->per_slot + (q)]

static size_t shared_size(uint64_t per_slot)
{
    return sizeof(struct shared) + SLOTS * per_slot * 6;
}

static void shared_arrays(void)
{
    unsigned char *p = (unsigned char *)(S + 1);
    got_ = (_Atomic unsigned char *)p;
    state_ = (_Atomic unsigned char *)(p + SLOTS * S->per_slot);
    tag_ = (_Atomic uint32_t *)(p + 2 * SLOTS * S->per_slot);
}

/* Counts a finding (counter may be NULL) and keeps the first one's description. */
static void note(uint64_t _Atomic *counter, const char *fmt, ...)
{
    if (counter != NULL)
        atomic_fetch_add(counter, 1);
    int no = 0;
    if (atomic_compare_exchange_strong(&S->err_set, &no, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(S->first_error, sizeof S->first_error, fmt, ap);
        va_end(ap);
    }
}

/* ---- messages ---- */

static uint32_t fnv(const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    while (n--)
        h = (h ^ *p++) * 16777619u;
    return h;
}

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static size_t build(unsigned char *m, int slot, uint64_t seq)
{
    if (tdefs[S->t].kind == K_SIGNAL) {
        m[0] = (unsigned char)seq;
        m[1] = (unsigned char)(seq >> 8);
        m[2] = (unsigned char)(seq >> 16);
        m[3] = (unsigned char)slot;
        uint32_t h = fnv(m, 4);
        m[4] = (unsigned char)h;
        m[5] = (unsigned char)(h >> 8);
        m[6] = (unsigned char)(h >> 16);
        return 7;
    }
    size_t plen = (size_t)((seq * 2654435761u) >> 7) % 49;
    put32(m, (uint32_t)seq);
    m[4] = (unsigned char)slot;
    m[5] = (unsigned char)plen;
    for (size_t i = 0; i < plen; i++)
        m[6 + i] = (unsigned char)(seq + i * 131);
    put32(m + 6 + plen, fnv(m, 6 + plen));
    return 10 + plen;
}

/* The slot and sequence of a received message, or -1 when it is corrupt. */
static int parse(const unsigned char *m, size_t n, int *slot, uint64_t *seq)
{
    if (tdefs[S->t].kind == K_SIGNAL) {
        uint32_t h = fnv(m, 4);
        if (n != 7 || m[4] != (unsigned char)h || m[5] != (unsigned char)(h >> 8) ||
            m[6] != (unsigned char)(h >> 16))
            return -1;
        *seq = m[0] | (uint64_t)m[1] << 8 | (uint64_t)m[2] << 16;
        *slot = m[3];
    } else {
        if (n < 10 || n != 10 + (size_t)m[5] || get32(m + n - 4) != fnv(m, n - 4))
            return -1;
        *seq = get32(m);
        *slot = m[4];
    }
    return *slot < tdefs[S->t].nprod && *seq < S->per_slot ? 0 : -1;
}

/* ---- workers ---- */

static void on_storm(int signo)
{
    (void)signo;
}

/* The storm's signal interrupts every blocking call: a handler without SA_RESTART. */
static void catch_storm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_storm;
    sigaction(SIGUSR2, &sa, NULL);
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int is_conn_error(long r)
{
    return r == IPK_EOF || r == IPK_EPROTO || r == -ECONNRESET || r == -EPIPE ||
           r == -ECONNREFUSED || r == -ENOTCONN || r == IPK_ECLOSED;
}

static _Atomic int64_t *cons_last; /* this consumer's row of S->cons_last */

static void record(const unsigned char *m, size_t n, int64_t *last, int count)
{
    int slot;
    uint64_t seq;
    if (parse(m, n, &slot, &seq) != 0) {
        note(&S->corrupt, "%s: a corrupt message of %zu bytes", tdefs[S->t].name, n);
        return;
    }
    unsigned prev = count ? atomic_fetch_add(&GOT(slot, seq), 1) : 1;
    if ((int64_t)seq <= last[slot] && tdefs[S->t].ordered && (prev == 0 || !count))
        note(&S->reordered, "%s: producer %d: sequence %llu after %lld", tdefs[S->t].name, slot,
             (unsigned long long)seq, (long long)last[slot]);
    if ((int64_t)seq > last[slot])
        last[slot] = (int64_t)seq;
    if (cons_last != NULL)
        atomic_store(&cons_last[slot], last[slot]);
    if (count)
        atomic_fetch_add(&S->received, 1);
}

static int consumer(int ci)
{
    const tdef *td = &tdefs[S->t];
    catch_storm();
    uint32_t inc = atomic_fetch_add(&S->cons_inc, 1) + 1;
    cons_last = S->cons_last[ci];
    for (int i = 0; i < SLOTS; i++)
        atomic_store(&cons_last[i], -1);
    atomic_store(&S->cons_cur[ci], inc);
    ipk_chan *l = NULL, *c = NULL;
    int r;
    /* Open (a restarted consumer retries: its predecessor's socket may still be closing). */
    for (int tries = 0;; tries++) {
        switch (td->kind) {
        case K_STREAM:
            r = ipk_listen(&l, S->url_rx, NULL);
            break;
        case K_FIFO:
        case K_DGRAM:
            r = ipk_listen(&c, S->url_rx, NULL);
            break;
        case K_SIGNAL:
            r = ipk_listen(&c, "signal:self?sig=RTMIN+1", NULL);
            break;
        case K_EXEC:
            r = 0; /* dialled below, when there is something to receive */
            break;
        default:
            r = ipk_dial(&c, S->url_rx, NULL);
            break;
        }
        if (r == 0)
            break;
        if (tries >= 2000) {
            note(&S->unexpected, "%s: consumer open: %s", td->name, ipk_errmsg());
            return 1;
        }
        nap_ms(1);
    }
    if (td->kind == K_SIGNAL)
        atomic_store(&S->sig_pid, getpid());
    int64_t last[SLOTS] = {-1, -1};
    static unsigned char buf[70000];
    int zc = strncmp(td->name, "shm", 3) == 0;
    for (;;) {
        if (td->kind == K_STREAM && c == NULL) {
            r = ipk_accept(l, &c, 100);
            if (r != 0) {
                if (atomic_load(&S->stop_cons))
                    return 0;
                if (r != IPK_ETIMEDOUT && r != -EAGAIN)
                    note(&S->unexpected, "%s: accept: %s", td->name, ipk_errmsg());
                continue;
            }
        }
        if (td->kind == K_EXEC && c == NULL) {
            if (atomic_load(&S->done[0])) {
                if (atomic_load(&S->stop_cons))
                    return 0;
                nap_ms(10);
                continue;
            }
            if (ipk_dial(&c, S->url_rx, NULL) != 0) {
                note(&S->unexpected, "%s: dial: %s", td->name, ipk_errmsg());
                nap_ms(10);
                continue;
            }
        }
        atomic_store(&S->in_recv[ci], 1);
        long n;
        if (zc) {
            /* shm: recorded before it is released, so a kill at any instant either leaves it
             * for the next consumer or has recorded it (then it may come again: redelivered). */
            const void *p;
            n = ipk_peek(c, &p, 100);
            if (n >= 0) {
                record(p, (size_t)n, last, 1);
                int e = ipk_release(c);
                if (e != 0)
                    note(&S->unexpected, "%s: release: %s", td->name, ipk_errmsg());
                atomic_store(&S->in_recv[ci], 0);
                continue;
            }
        } else if ((n = ipk_recv(c, buf, sizeof buf, 100)) >= 0) {
            record(buf, (size_t)n, last, td->kind != K_FILE);
            atomic_store(&S->in_recv[ci], 0);
            continue;
        }
        atomic_store(&S->in_recv[ci], 0);
        if (n == IPK_ETIMEDOUT || n == -EAGAIN || (n == IPK_EOF && td->kind == K_QUEUE)) {
            if (atomic_load(&S->stop_cons))
                return 0;
            continue;
        }
        if ((td->kind == K_STREAM || td->kind == K_EXEC) && is_conn_error(n)) {
            /* The producer was killed or finished: the next connection continues. */
            if (getenv("IPK_SOAK_DEBUG"))
                fprintf(stderr, "consumer %u: connection ends: %s (last %lld)\n", inc, ipk_errmsg(),
                        (long long)last[0]);
            int e = ipk_close(c);
            c = NULL;
            if (td->kind == K_EXEC && e < 0 && e != -ECHILD)
                note(&S->unexpected, "%s: close: %s", td->name, ipk_strerror(e));
            continue;
        }
        if (td->kind == K_FIFO && n == IPK_EPROTO) {
            note(&S->unexpected, "%s: a frame cut (atomic=1 promises none): %s", td->name,
                 ipk_errmsg());
            continue;
        }
        note(&S->unexpected, "%s: recv: %s", td->name, ipk_errmsg());
        nap_ms(1);
    }
}

/* The short run's pacing (soak_cfg.pace_us). */
static void pace(uint64_t seq)
{
    if (S->pace_us > 0 && seq % 100 == 0) {
        struct timespec ts = {0, S->pace_us * 1000L};
        nanosleep(&ts, NULL);
    }
}

/* Dials the producer's channel; *tag gets the range of consumer incarnations it may have
 * reached: a consumer counts itself (cons_inc) before it listens, so the one reached is at most
 * the count read after the dial, and at least the count read before it (an older one was
 * killed and gone before the dial began; the supervisor starts a consumer only after killing
 * its predecessor). The range is packed as lo | hi << 16. */
static int producer_dial(ipk_chan **c, uint32_t *tag)
{
    const tdef *td = &tdefs[S->t];
    char url[1400];
    uint32_t lo = atomic_load(&S->cons_inc);
    if (td->kind == K_SIGNAL) {
        int32_t pid = atomic_load(&S->sig_pid);
        if (pid == 0)
            return -EAGAIN;
        snprintf(url, sizeof url, "signal:%d?sig=RTMIN+1", (int)pid);
    } else {
        snprintf(url, sizeof url, "%s", S->url_tx);
    }
    int r = ipk_dial(c, url, NULL);
    *tag = (lo & 0xffff) | (atomic_load(&S->cons_inc) & 0xffff) << 16;
    return r;
}

static int producer(int slot)
{
    const tdef *td = &tdefs[S->t];
    catch_storm();
    ipk_chan *c = NULL;
    uint32_t inc = 0;
    unsigned char m[64];
    for (;;) {
        uint64_t seq = atomic_load(&S->next[slot]);
        if (seq >= S->per_slot)
            break;
        if (c == NULL) {
            int r = producer_dial(&c, &inc);
            if (r != 0) {
                c = NULL;
                if (!(r == -ENOENT || r == -ECONNREFUSED || r == -EAGAIN || r == -EPIPE ||
                      r == -ESRCH || r == IPK_ETIMEDOUT || r == -ECONNRESET))
                    note(&S->unexpected, "%s: producer dial: %s", td->name, ipk_errmsg());
                nap_ms(1);
                continue;
            }
        }
        pace(seq);
        size_t len = build(m, slot, seq);
        atomic_store(&TAG(slot, seq), inc);
        atomic_store(&STATE(slot, seq), ST_ATTEMPT);
        atomic_store(&S->next[slot], seq + 1);
        int r = ipk_send(c, m, len, 1000);
        if (r == 0) {
            atomic_fetch_or(&STATE(slot, seq), ST_COMMIT);
            atomic_fetch_add(&S->committed, 1);
            continue;
        }
        if (r == IPK_ETIMEDOUT || r == -EAGAIN) {
            if (td->kind == K_QUEUE || td->kind == K_FILE || td->kind == K_SIGNAL)
                continue; /* full while a consumer is away: the next one will wait again */
        } else if (!is_conn_error(r) && r != -ESRCH) {
            note(&S->unexpected, "%s: send: %s", td->name, ipk_errmsg());
        }
        if (td->kind != K_QUEUE && td->kind != K_FILE) {
            ipk_close(c); /* the consumer is gone (or a frame was cut): dial the next one */
            c = NULL;
        }
    }
    atomic_store(&S->done[slot], 1);
    if (c)
        ipk_close(c);
    return 0;
}

/* exec: the child behind the consumer's exec: channel writes len-framed messages to stdout with
 * plain write(2): it is the "other program", not ipckit. */
int soak_exec_child(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int fd = open(argv[2], O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 2;
    S = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (S == MAP_FAILED)
        return 2;
    close(fd);
    shared_arrays();
    catch_storm();
    atomic_store(&S->prod_pid[0], getpid());
    unsigned char f[68];
    for (;;) {
        uint64_t seq = atomic_load(&S->next[0]);
        if (seq >= S->per_slot)
            break;
        pace(seq);
        size_t len = build(f + 4, 0, seq);
        f[0] = f[1] = 0;
        f[2] = (unsigned char)(len >> 8);
        f[3] = (unsigned char)len;
        uint32_t inc = atomic_load(&S->cons_inc) & 0xffff;
        atomic_store(&TAG(0, seq), inc | inc << 16);
        atomic_store(&STATE(0, seq), ST_ATTEMPT);
        atomic_store(&S->next[0], seq + 1);
        size_t off = 0;
        while (off < len + 4) {
            ssize_t k = write(1, f + off, len + 4 - off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return 1; /* the consumer is gone */
            off += (size_t)k;
        }
        atomic_fetch_or(&STATE(0, seq), ST_COMMIT);
        atomic_fetch_add(&S->committed, 1);
    }
    atomic_store(&S->done[0], 1);
    atomic_store(&S->prod_pid[0], 0);
    return 0;
}

/* ---- supervisor ---- */

static pid_t spawn(int (*fn)(int), int arg)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

/* SIGUSR2 to a live worker (exec: the child too) every 0-400 us, for the whole run. */
static void storm(void)
{
    unsigned seed = (unsigned)getpid();
    while (!atomic_load(&S->stop_cons)) {
        struct timespec ts = {0, (long)(rand_r(&seed) % 400) * 1000L};
        nanosleep(&ts, NULL);
        int32_t live[2 * SLOTS];
        int n = 0;
        for (int i = 0; i < SLOTS; i++) {
            int32_t p = atomic_load(&S->prod_pid[i]), c = atomic_load(&S->cons_pid[i]);
            if (p > 0)
                live[n++] = p;
            if (c > 0)
                live[n++] = c;
        }
        if (n > 0 && kill(live[rand_r(&seed) % n], SIGUSR2) == 0)
            atomic_fetch_add(&S->signals, 1);
    }
    _exit(0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t taken[4096]; /* per consumer killed inside a receive: its last record */
static int n_taken;

/* Kills a consumer; returns 1 when it was inside a receive (it may have taken a message). */
static int kill_consumer(int ci, pid_t *pids)
{
    pid_t pid = pids[ci];
    atomic_store(&S->cons_pid[ci], 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    uint32_t inc = atomic_load(&S->cons_cur[ci]);
    if (inc < MAXINC)
        S->killed_inc[inc] = 1;
    if (getenv("IPK_SOAK_DEBUG"))
        fprintf(stderr, "killed consumer %u (in recv %d, last %lld)\n", inc,
                atomic_load(&S->in_recv[ci]), (long long)atomic_load(&S->cons_last[ci][0]));
    if (tdefs[S->t].kind == K_SIGNAL)
        atomic_store(&S->sig_pid, 0);
    int in = atomic_exchange(&S->in_recv[ci], 0);
    /* mq, sysv: the one message a consumer killed inside its receive may have taken is the
     * first it had not recorded yet. */
    if (in && n_taken < (int)(sizeof taken / sizeof taken[0]))
        taken[n_taken++] = atomic_load(&S->cons_last[ci][0]);
    pids[ci] = spawn(consumer, ci);
    atomic_store(&S->cons_pid[ci], pids[ci]);
    return in;
}

static void kill_producer(int slot, pid_t *pids)
{
    const tdef *td = &tdefs[S->t];
    if (td->kind == K_EXEC) {
        /* The child of the consumer: the consumer reaps it and spawns the next. */
        int32_t pid = atomic_exchange(&S->prod_pid[0], 0);
        if (pid > 0)
            kill(pid, SIGKILL);
        return;
    }
    pid_t pid = pids[slot];
    atomic_store(&S->prod_pid[slot], 0);
    if (getenv("IPK_SOAK_DEBUG"))
        fprintf(stderr, "killed producer %d at next %llu\n", slot,
                (unsigned long long)atomic_load(&S->next[slot]));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    pids[slot] = spawn(producer, slot);
    atomic_store(&S->prod_pid[slot], pids[slot]);
}

/* file: the log is never consumed; after the run, one reader from the start must find every
 * committed record once, in order per producer. */
static void file_final(void)
{
    ipk_chan *c;
    char url[1400];
    snprintf(url, sizeof url, "%s", S->url_rx);
    if (ipk_dial(&c, url, NULL) != 0) {
        note(&S->unexpected, "file: final reader: %s", ipk_errmsg());
        return;
    }
    int64_t last[SLOTS] = {-1, -1};
    static unsigned char buf[70000];
    long n;
    while ((n = ipk_recv(c, buf, sizeof buf, 0)) >= 0)
        record(buf, (size_t)n, last, 1);
    if (n != -EAGAIN)
        note(&S->unexpected, "file: final reader: %s", ipk_errmsg());
    ipk_close(c);
}

static int setup_urls(const soak_cfg *cfg, ipk_chan **owner)
{
    const tdef *td = &tdefs[S->t];
    int pid = (int)getpid();
    static unsigned n;
    n++;
    char *rx = S->url_rx, *tx = S->url_tx;
    size_t cap = sizeof S->url_rx;
    const char *d = cfg->dir;
    *owner = NULL;
    if (strcmp(td->name, "mq") == 0) {
        snprintf(rx, cap, "mq:/ipksoak-%d-%u", pid, n);
    } else if (strcmp(td->name, "sysv") == 0) {
        snprintf(S->path, sizeof S->path, "%s/sysv-key-%u", d, n);
        int fd = open(S->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        close(fd);
        snprintf(rx, cap, "sysv:%s", S->path);
    } else if (strncmp(td->name, "shm", 3) == 0) {
        snprintf(rx, cap, "shm:/ipksoak-%d-%u", pid, n);
    } else if (strcmp(td->name, "file") == 0) {
        snprintf(rx, cap, "file:%s/soak-%u.log", d, n);
    } else if (strcmp(td->name, "fifo") == 0) {
        snprintf(rx, cap, "fifo:%s/soak-%u.fifo?persist=1", d, n);
        snprintf(tx, cap, "fifo:%s/soak-%u.fifo?atomic=1", d, n);
        return 0;
    } else if (strcmp(td->name, "tcp") == 0 || strcmp(td->name, "udp") == 0) {
        /* A free port: bound once here, then reused by every consumer incarnation. */
        ipk_chan *p;
        char u[64];
        snprintf(u, sizeof u, "%s://127.0.0.1:0", td->name);
        if (ipk_listen(&p, u, NULL) != 0)
            return -1;
        snprintf(rx, cap, "%s", ipk_addr(p));
        ipk_close(p);
    } else if (td->kind == K_STREAM || td->kind == K_DGRAM) {
        snprintf(rx, cap, "%s:%s/soak-%u.sock", td->name, d, n);
    } else if (td->kind == K_EXEC) {
        snprintf(S->path, sizeof S->path, "%s", cfg->self);
        /* (rx is set by soak_run: it names the shared file) */
    }
    snprintf(tx, cap, "%s", rx);
    /* unix: and tcp: coalesce small sends, and what a sender still buffers goes with it when it
     * is killed (ipckit(3), "Send coalescing"): their producers write through, so that a send
     * that returned 0 is in the kernel, which is what this run holds them to. */
    if (strcmp(td->name, "unix") == 0 || strcmp(td->name, "tcp") == 0)
        strncat(tx, "?flush=0", cap - strlen(tx) - 1);
    if (td->kind == K_QUEUE || td->kind == K_FILE) {
        char u[1400];
        snprintf(u, sizeof u, "%s%s", rx,
                 strcmp(td->name, "shm") == 0         ? "?size=64k"
                 : strcmp(td->name, "shm-multi") == 0 ? "?size=64k&multi=1"
                 : strcmp(td->name, "mq") == 0        ? "?maxmsg=10&msgsize=128"
                                                      : "");
        if (ipk_listen(owner, u, NULL) != 0)
            return -1;
        if (td->kind == K_FILE)
            strncat(rx, "?from=start", cap - strlen(rx) - 1);
    }
    return 0;
}

/* Whether a consumer incarnation in [lo, hi] was killed. */
static int killed_in(uint32_t lo, uint32_t hi)
{
    for (uint32_t i = lo; i <= hi && i < MAXINC; i++)
        if (S->killed_inc[i])
            return 1;
    return 0;
}

/* mq, sysv (one producer): whether q is the first committed message after the last record of
 * a consumer killed inside its receive, and not yet excused. */
static int taken_by_killed(uint64_t q)
{
    if (strncmp(tdefs[S->t].name, "shm", 3) == 0)
        return 0; /* peek, record, release: nothing is taken unrecorded */
    for (int k = 0; k < n_taken; k++) {
        if (taken[k] == INT64_MIN || (int64_t)q <= taken[k])
            continue;
        uint64_t first = (uint64_t)(taken[k] + 1);
        while (first < q && !(atomic_load(&STATE(0, first)) & ST_COMMIT))
            first++;
        if (first == q) {
            taken[k] = INT64_MIN;
            return 1;
        }
    }
    return 0;
}

int soak_clean(const soak_result *r)
{
    return r->lost == 0 && r->duplicated == 0 && r->reordered == 0 && r->corrupt == 0 &&
           r->unexpected == 0;
}

int soak_run(const soak_cfg *cfg, soak_result *res)
{
    memset(res, 0, sizeof *res);
    n_taken = 0;
    int t = -1;
    for (size_t i = 0; i < NT; i++)
        if (strcmp(tdefs[i].name, cfg->transport) == 0)
            t = (int)i;
    if (t < 0)
        return -1;
    const tdef *td = &tdefs[t];
    uint64_t per_slot = (cfg->messages + (uint64_t)td->nprod - 1) / (uint64_t)td->nprod;
    if (td->kind == K_SIGNAL && per_slot >= (1u << 24))
        return -1;
    char shpath[256];
    snprintf(shpath, sizeof shpath, "%s/soak-%d-%s.shared", cfg->dir, (int)getpid(), td->name);
    int fd = open(shpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t sz = shared_size(per_slot);
    if (fd < 0 || ftruncate(fd, (off_t)sz) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    S = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (S == MAP_FAILED)
        return -1;
    S->t = t;
    S->per_slot = per_slot;
    S->pace_us = cfg->pace_us;
    shared_arrays();
    ipk_chan *owner = NULL;
    if (setup_urls(cfg, &owner) != 0) {
        snprintf(res->first_error, sizeof res->first_error, "setup: %s", ipk_errmsg());
        munmap(S, sz);
        unlink(shpath);
        return -1;
    }
    if (td->kind == K_EXEC) {
        snprintf(S->url_rx, sizeof S->url_rx, "exec:%s --exec-child %s", cfg->self, shpath);
        snprintf(S->url_tx, sizeof S->url_tx, "%s", S->url_rx);
    }
    /* The workers catch the storm's signal from their first instruction: they inherit it. */
    struct sigaction storm_sa, old_sa;
    memset(&storm_sa, 0, sizeof storm_sa);
    storm_sa.sa_handler = on_storm;
    sigaction(SIGUSR2, &storm_sa, &old_sa);
    double t0 = now_s();
    pid_t cons[SLOTS] = {0, 0}, prod[SLOTS] = {0, 0}, st = 0;
    for (int i = 0; i < td->ncons; i++) {
        cons[i] = spawn(consumer, i);
        atomic_store(&S->cons_pid[i], cons[i]);
    }
    /* Producers of a socket or signal wait for their consumer (they dial it). */
    for (int i = 0; i < td->nprod && td->kind != K_EXEC; i++) {
        prod[i] = spawn(producer, i);
        atomic_store(&S->prod_pid[i], prod[i]);
    }
    if (cfg->storm) {
        st = fork();
        if (st == 0)
            storm();
    }
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    int kills_done = 0, in_recv_kills = 0;
    uint64_t total = per_slot * (uint64_t)td->nprod;
    uint64_t progress = 0;
    double last_progress = now_s();
    for (;;) {
        nap_ms(1);
        int all_done = 1;
        for (int i = 0; i < td->nprod; i++)
            all_done &= atomic_load(&S->done[i]) || atomic_load(&S->next[i]) >= per_slot;
        int ws;
        if (td->kind != K_EXEC)
            for (int i = 0; i < td->nprod; i++)
                if (prod[i] > 0 && waitpid(prod[i], &ws, WNOHANG) == prod[i]) {
                    atomic_store(&S->prod_pid[i], 0);
                    prod[i] = 0;
                    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
                        note(&S->unexpected, "%s: producer %d died (status 0x%x)", td->name, i,
                             (unsigned)ws);
                }
        for (int i = 0; i < td->ncons; i++)
            if (waitpid(cons[i], &ws, WNOHANG) == cons[i]) {
                note(&S->unexpected, "%s: consumer %d died (status 0x%x)", td->name, i,
                     (unsigned)ws);
                cons[i] = spawn(consumer, i);
                atomic_store(&S->cons_pid[i], cons[i]);
            }
        int prod_alive = 0;
        for (int i = 0; i < td->nprod; i++)
            prod_alive |= prod[i] > 0;
        if (all_done && !prod_alive)
            break;
        uint64_t at = 0;
        for (int i = 0; i < td->nprod; i++)
            at += atomic_load(&S->next[i]);
        uint64_t now_prog = atomic_load(&S->committed) + atomic_load(&S->received);
        if (now_prog != progress) {
            progress = now_prog;
            last_progress = now_s();
        } else if (now_s() - last_progress > 60) {
            note(&S->unexpected, "%s: no progress for 60 s (%llu of %llu attempted)", td->name,
                 (unsigned long long)at, (unsigned long long)total);
            break;
        }
        /* The next kill, when the run crosses its share (half sent and half received: a
         * producer may be far ahead of its consumer on a socket's buffers). */
        uint64_t mid = td->kind == K_FILE ? at : (at + atomic_load(&S->received)) / 2;
        if (kills_done < cfg->kills &&
            mid >= total * (uint64_t)(kills_done + 1) / (uint64_t)(cfg->kills + 1)) {
            int alive = 0;
            for (int i = 0; i < td->nprod; i++)
                alive |= td->kind == K_EXEC ? atomic_load(&S->prod_pid[0]) > 0 : prod[i] > 0;
            int can_p = td->kill_prod && alive, can_c = td->kill_cons;
            int victim_c = can_c && (!can_p || rand_r(&seed) % 2);
            if (victim_c) {
                int ci = rand_r(&seed) % td->ncons;
                in_recv_kills += kill_consumer(ci, cons);
                res->kills_cons++;
            } else if (can_p) {
                int slot = rand_r(&seed) % td->nprod;
                if (td->kind == K_EXEC || prod[slot] > 0) {
                    kill_producer(slot, prod);
                    res->kills_prod++;
                }
            }
            kills_done++;
            /* a random moment: not always right at the threshold */
            nap_ms(rand_r(&seed) % 3);
        }
    }
    /* Let the consumers drain, then stop them. */
    for (;;) {
        uint64_t r0 = atomic_load(&S->received);
        nap_ms(1000);
        if (atomic_load(&S->received) == r0)
            break;
    }
    atomic_store(&S->stop_cons, 1);
    for (int i = 0; i < td->ncons; i++) {
        for (int w = 0; w < 500 && waitpid(cons[i], NULL, WNOHANG) == 0; w++)
            nap_ms(10);
        if (kill(cons[i], SIGKILL) == 0)
            waitpid(cons[i], NULL, 0);
        atomic_store(&S->cons_pid[i], 0);
    }
    for (int i = 0; i < td->nprod; i++)
        if (prod[i] > 0) {
            kill(prod[i], SIGKILL);
            waitpid(prod[i], NULL, 0);
        }
    if (st > 0)
        waitpid(st, NULL, 0);
    if (td->kind == K_FILE)
        file_final();
    res->wall_s = now_s() - t0;
    /* The verdict. */
    uint64_t unrecorded = 0, redeliverable = 0;
    for (int s = 0; s < td->nprod; s++)
        for (uint64_t q = 0; q < per_slot; q++) {
            unsigned stt = atomic_load(&STATE(s, q)), g = atomic_load(&GOT(s, q));
            if (stt & ST_ATTEMPT)
                res->attempted++;
            if (g > 1) {
                if (td->kind == K_QUEUE && strncmp(td->name, "shm", 3) == 0 &&
                    redeliverable < (uint64_t)in_recv_kills) {
                    redeliverable++;
                    res->redelivered += g - 1;
                } else {
                    res->duplicated += g - 1;
                    note(NULL, "%s: producer %d sequence %llu received %u times", td->name, s,
                         (unsigned long long)q, g);
                }
            }
            if (!(stt & ST_COMMIT) || g > 0)
                continue;
            uint32_t tg = atomic_load(&TAG(s, q));
            if (td->lossy)
                res->excused++;
            else if ((td->kind == K_STREAM || td->kind == K_DGRAM || td->kind == K_SIGNAL ||
                      td->kind == K_EXEC) &&
                     killed_in(tg & 0xffff, tg >> 16))
                res->excused++;
            else if (td->kind == K_QUEUE && taken_by_killed(q)) {
                unrecorded++;
                res->excused++;
            } else {
                res->lost++;
                note(NULL,
                     "%s: producer %d sequence %llu (sent to consumer %u..%u) committed, never "
                     "received",
                     td->name, s, (unsigned long long)q, tg & 0xffff, tg >> 16);
            }
        }
    res->committed = atomic_load(&S->committed);
    res->received = atomic_load(&S->received);
    res->reordered = atomic_load(&S->reordered);
    res->corrupt = atomic_load(&S->corrupt);
    res->unexpected = atomic_load(&S->unexpected);
    res->signals = atomic_load(&S->signals);
    snprintf(res->first_error, sizeof res->first_error, "%s", S->first_error);
    if (td->lossy)
        res->reordered = 0; /* udp promises no order: counted as seen, not as a failure */
    sigaction(SIGUSR2, &old_sa, NULL);
    if (owner)
        ipk_close(owner);
    if (td->kind == K_FIFO || td->kind == K_STREAM || td->kind == K_DGRAM) {
        const char *p = strchr(S->url_rx, ':');
        char f[512];
        snprintf(f, sizeof f, "%s", p ? p + 1 : "");
        char *q = strchr(f, '?');
        if (q)
            *q = '\0';
        if (f[0] == '/')
            unlink(f);
    }
    if (td->kind == K_FILE) {
        char f[512];
        snprintf(f, sizeof f, "%s", S->url_rx + 5);
        char *q = strchr(f, '?');
        if (q)
            *q = '\0';
        unlink(f);
    }
    if (S->path[0] && td->kind != K_EXEC)
        unlink(S->path);
    munmap(S, sz);
    S = NULL;
    unlink(shpath);
    return 0;
}
