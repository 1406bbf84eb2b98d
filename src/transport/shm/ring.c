/*
 * ring.c - the ring core of shm: variable-length records in a shared power-of-two buffer.
 *
 * Memory ordering, the whole of it:
 * - Commit word. A record is {len, tag} then its bytes; tag 0 means "nothing here yet". The
 *   producer writes the bytes and len with plain stores, zeroes the header of the NEXT record
 *   position, then stores tag (DATA or PAD) with release: that store is the commit. The consumer
 *   loads the tag at its read index with acquire; non-zero means the record is whole and the
 *   next header was zeroed before it, so "0 at my read index" always means "not yet" (never a
 *   leftover of an older lap). The consumer polls the record it wants, so the fast path of a
 *   round trip moves the record's own cache line(s) and nothing else. head (the committed write
 *   index) is stored after each commit, for the producers' bookkeeping, EOF and info.
 * - The consumer copies a record out, then stores tail with release; a producer loads tail with
 *   acquire before it overwrites bytes below tail + cap, keeping 8 bytes free for the zeroed
 *   next header. So a producer never overwrites a record that is still being read.
 * - The producer caches tail privately (a lower bound: indices only grow) and reloads it only
 *   when the ring looks full, so it writes the data and its own line only.
 * - Sleeping (Dekker): a waiter increments the sleepers count, then re-reads the word, then
 *   FUTEX_WAITs on it (the kernel re-compares it, so a change between the re-read and the sleep
 *   is not lost). The consumer sleeps on the tag of the record it waits for; the producer on the
 *   low 32 bits of tail. A publisher stores the word, then reads the sleepers count and calls
 *   FUTEX_WAKE only when it counts a futex waiter (armed pollers count apart, ring.h). The
 *   store->load pair on each side needs a full barrier. The waiter's is its seq_cst increment;
 *   the publisher's would be a fence on every message, so instead the waiter forces one on
 *   every running peer with
 *   membarrier(GLOBAL_EXPEDITED) before it re-reads (the asymmetric-fence technique). Where
 *   membarrier is missing, every attached process publishes with a seq_cst fence instead
 *   (IPK__SHM_F_FENCE in the header tells the others).
 * - duplex=1, the mailbox (one line in header 0, for messages of up to 48 bytes). A sender
 *   takes it with a CAS from EMPTY to BUSY(end), writes at (its ring head), len and the bytes,
 *   and stores FULL(end) with release. A sender that finds it taken uses its ring. The receiver
 *   copies the message out and then HOLDS the mailbox, still FULL(peer), which only it may
 *   change now (the peer writes only an EMPTY one): its next send takes the line over with
 *   plain stores (BUSY(end), the message, FULL(end)), so a request/reply exchange writes the
 *   line once per message, right after reading it; a receiver about to wait gives it back
 *   (EMPTY, release) so that the peer can use it again. BUSY lets the successor of a killed
 *   writer drop a half-written message (ipk__ring_duplex). Order: the
 *   mailbox message goes right before ring record `at`, so the receiver takes it when it is
 *   FULL(peer) and at equals its read index. The receiver loads the ring's tag FIRST and the
 *   mailbox second: a ring record sent after a mailbox message was published after it, so a
 *   receiver that sees the record also sees the mailbox message that precedes it (the other
 *   order could see the record and miss the message). A sleeping duplex consumer cannot futex-
 *   wait on two words, so it sleeps on its ring's bell: it reads the bell after announcing
 *   itself and before its last check, and a publisher that sees it asleep bumps the bell
 *   before waking it, so no message slips between that check and the sleep.
 * - multi=1: producers serialise on one lock, consumers on another ("locks" below). The lock
 *   orders the holders among themselves; commit words and tail still order producers vs
 *   consumers. A holder that dies mid-record never stored its tag, so the record does not
 *   exist; the next holder (which took the lock over from the dead one) starts from head, first
 * rolling head forward over a record whose tag was stored but head not yet (killed in between), and
 *   overwrites whatever half record lies there.
 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The per-message helpers are small and on every fast path: keep them inline. */
#define IPK__HOT static inline __attribute__((always_inline))

int ipk__shm_die_at;
int ipk__shm_force_fence;

/* A record header. tag is the commit word (0: nothing yet; DATA; PAD). */
typedef struct ipk__rec {
    uint32_t len;
    _Atomic uint32_t tag;
} ipk__rec;

static inline uint64_t ipk__rec_size(uint64_t len)
{
    return (IPK__SHM_RECHDR + len + 7) & ~(uint64_t)7;
}

static inline ipk__rec *ipk__rec_at(const ipk__ring *r, uint64_t i)
{
    return (ipk__rec *)(r->data + (i & r->mask));
}

/* Whether an index read from the segment may be used: records start at multiples of 8, so a
 * header at any aligned index lies inside the data area. Another process that can write the
 * segment can store anything there; an index that fails this is never dereferenced. */
static inline int ipk__index_ok(uint64_t i)
{
    return (i & 7) == 0;
}

static int ipk__bad_indices(const ipk__ring *r, uint64_t head, uint64_t tail)
{
    return ipk__err(IPK_EPROTO, "%s: corrupt header: head %llu, tail %llu, capacity %llu", r->name,
                    (unsigned long long)head, (unsigned long long)tail, (unsigned long long)r->cap);
}

static inline void ipk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The producer sleeps on the low half of the 64-bit tail (32-bit accesses to half of a 64-bit
 * atomic: fine on every Linux target, and the futex word must be 32 bits). */
static inline _Atomic uint32_t *ipk__lo32(_Atomic uint64_t *w)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (_Atomic uint32_t *)w + 1;
#else
    return (_Atomic uint32_t *)w;
#endif
}

/* ---- membarrier registration (per process; a forked child registers again) ---- */

static _Atomic pid_t ipk__mb_pid;
static _Atomic int ipk__mb_ok;

static int ipk__mb_register(void)
{
    pid_t me = getpid();
    if (atomic_load(&ipk__mb_pid) == me)
        return atomic_load(&ipk__mb_ok);
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    int ok = q >= 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
             (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
             syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
    atomic_store(&ipk__mb_ok, ok);
    atomic_store(&ipk__mb_pid, me);
    return ok;
}

/* The waiter's half of the asymmetric fence: every running registered thread passes a full
 * barrier before this returns. Without membarrier the publishers fence themselves. */
static void ipk__peer_barrier(const ipk__ring *r)
{
    if (!r->fence)
        syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

static int ipk__ncpu(void)
{
    static int n;
    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (int)v : 1;
    }
    return n;
}

/* ---- process identity, for stale owners and SPSC claims ---- */

static uint64_t ipk__pid_start_read(pid_t pid);

/* The calling process's own start time is read once per process (a forked child has another
 * pid, so it reads its own): every multi=1 attach and every segment made asks for it. */
uint64_t ipk__pid_start(pid_t pid)
{
    static _Atomic pid_t self_pid;
    static _Atomic uint64_t self_start;
    if (pid != getpid())
        return ipk__pid_start_read(pid);
    if (atomic_load_explicit(&self_pid, memory_order_acquire) == pid)
        return atomic_load_explicit(&self_start, memory_order_relaxed);
    uint64_t start = ipk__pid_start_read(pid);
    if (start != 0 && start != UINT64_MAX) { /* two threads racing store the same value */
        atomic_store_explicit(&self_start, start, memory_order_relaxed);
        atomic_store_explicit(&self_pid, pid, memory_order_release);
    }
    return start;
}

static uint64_t ipk__pid_start_read(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    unsigned long long start = 0;
    char state = 0;
    if (s == NULL || sscanf(s + 1,
                            " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                            "%*d %*d %*d %llu",
                            &state, &start) != 2)
        return 0;
    /* A zombie has died: it only waits to be reaped. */
    return (state == 'Z' || state == 'X') ? UINT64_MAX : start;
}

int ipk__pid_alive(pid_t pid, uint64_t start)
{
    if (pid <= 0)
        return 0;
    if (ipk__sys_kill(pid, 0) != 0 && errno != EPERM)
        return 0;
    uint64_t now = ipk__pid_start(pid);
    if (now == UINT64_MAX)
        return 0;
    return start == 0 || now == 0 || now == start;
}

/* ---- waiting ---- */

static int ipk__futex_wait(_Atomic uint32_t *w, uint32_t val, int64_t dl)
{
    struct timespec ts = ipk__dl_ts(dl);
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so EINTR keeps it as is.
     * Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
    if (ipk__sys_futex_wait(w, val, dl == IPK__DL_FOREVER ? NULL : &ts) == 0)
        return 0;
    return -errno;
}

static void ipk__futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void ipk__publish_cpu(_Atomic uint32_t *slot)
{
    int cpu = sched_getcpu();
    if (cpu >= 0 && atomic_load_explicit(slot, memory_order_relaxed) != (uint32_t)cpu)
        atomic_store_explicit(slot, (uint32_t)cpu, memory_order_relaxed);
}

/* What a waiter waits for: *w to leave `seen`, or *w2 to reach want2 when w2 is set (a duplex
 * consumer: the mailbox to hold the peer's message; its other states are not worth a wake-up).
 * It sleeps on bell when there is one (duplex consumers), else on w itself. */
typedef struct ipk__watch {
    _Atomic uint32_t *w, *w2, *bell;
    uint32_t seen, want2;
    _Atomic uint32_t *sleepers, *mine, *peer; /* who sleeps; this side's and the peer's CPU */
    /* duplex=1: the other end's claim. Asleep, the waiter looks every IPK__SHM_LIVENESS_NS
     * whether that process still lives; if not, the wait ends with dead_code (nobody else can
     * ever answer a conversation). */
    _Atomic int32_t *peer_pid;
    int dead_code;
} ipk__watch;

#define IPK__SHM_LIVENESS_NS 200000000LL

IPK__HOT int ipk__watch_changed(const ipk__watch *x, memory_order mo)
{
    return atomic_load_explicit(x->w, mo) != x->seen ||
           (x->w2 && atomic_load_explicit(x->w2, mo) == x->want2);
}

/*
 * Waits until the watched words change or dl passes. Returns 0 (the caller re-checks its
 * condition; a wake-up may be spurious) or the expiry code. Spins first, for at most spin_ns,
 * only when the peer last ran on another CPU: spinning against a peer that shares our CPU only
 * delays it.
 */
static int ipk__ring_wait(const ipk__ring *r, const ipk__watch *x, int64_t dl)
{
    if (dl == IPK__DL_NOW)
        return -EAGAIN;
    int cpu = sched_getcpu();
    if (cpu >= 0 && atomic_load_explicit(x->mine, memory_order_relaxed) != (uint32_t)cpu)
        atomic_store_explicit(x->mine, (uint32_t)cpu, memory_order_relaxed);
    int shared = ipk__ncpu() == 1 ||
                 (cpu >= 0 && atomic_load_explicit(x->peer, memory_order_relaxed) == (uint32_t)cpu);
    if (shared && r->spin_ns > 0) {
        /* The peer needs our CPU to make progress: hand it over once before sleeping. A
         * runnable peer then runs a whole slice (a stream fills or drains the ring, a reply is
         * written) without a futex wake per message, and each side finds the other's work done
         * when it comes back; a peer that is not runnable costs one system call. */
        sched_yield();
        if (ipk__watch_changed(x, memory_order_acquire))
            return 0;
    } else if (r->spin_ns > 0 && cpu >= 0) {
        int64_t until = ipk__now() + r->spin_ns;
        if (dl < until)
            until = dl;
        for (unsigned i = 1;; i++) {
            if (ipk__watch_changed(x, memory_order_acquire))
                return 0;
            ipk__cpu_relax();
            if ((i & 63) == 0 && ipk__now() >= until)
                break;
        }
    }
    for (;;) {
        atomic_fetch_add_explicit(x->sleepers, 1, memory_order_seq_cst);
        ipk__peer_barrier(r);
        /* The bell is read before the last look at the words: a publisher that stored after
         * that look saw us asleep and bumps the bell after its store, so the futex sees it. */
        _Atomic uint32_t *fw = x->bell ? x->bell : x->w;
        uint32_t fv = x->bell ? atomic_load_explicit(x->bell, memory_order_seq_cst) : x->seen;
        int64_t until = dl;
        if (x->peer_pid && (until = ipk__now() + IPK__SHM_LIVENESS_NS) > dl)
            until = dl;
        int e = ipk__watch_changed(x, memory_order_seq_cst) ? 0 : ipk__futex_wait(fw, fv, until);
        atomic_fetch_sub_explicit(x->sleepers, 1, memory_order_relaxed);
        if (e == 0 || e == -EAGAIN)
            return 0;
        if (e == -ETIMEDOUT && until != dl) { /* a slice ended: is the other end still there? */
            int32_t pid = atomic_load_explicit(x->peer_pid, memory_order_relaxed);
            /* What it published before dying is delivered first: look once more. */
            if (pid != 0 && !ipk__pid_alive(pid, 0) && !ipk__watch_changed(x, memory_order_seq_cst))
                return ipk__err(x->dead_code, "%s: the other end (pid %d) died without closing",
                                r->name, (int)pid);
            continue;
        }
        if (e == -ETIMEDOUT || (e == -EINTR && dl != IPK__DL_FOREVER && ipk__now() >= dl))
            return IPK_ETIMEDOUT;
        if (e != -EINTR)
            return ipk__errsys(e, "%s: futex wait", r->name);
    }
}

/* ---- waking pollers ----
 *
 * A poller's wake-up line names its abstract datagram socket. The first wake-up is one datagram
 * (the byte IPK__PW_ASK) sent from a socket with SO_PASSCRED, which is autobound so the waiter
 * can answer: it sends back its eventfd with SCM_RIGHTS (shm.c). From then on this publisher
 * writes that eventfd, one write instead of a sendto through the socket layer, until the line
 * names another waiter (pid, id or gen changed: the descriptor is dropped).
 *
 * What is accepted, since anyone who can write the segment can name any socket in the line: a
 * reply from the socket bound to exactly the name in the line, sent by the process the line
 * names (SCM_CREDENTIALS pid, checked by the kernel) of this process's own user (who could stop
 * this process with a signal anyway, so a descriptor it hands over gives it no new power, not
 * even that of making a write block), carrying one descriptor that is an eventfd
 * (/proc/self/fd/N reads "anon_inode:[eventfd]") opened O_NONBLOCK. Writing an eventfd only
 * wakes whoever holds it. Anything else is closed and the line keeps the datagram; a waiter of
 * another user is never asked again. */
struct ipk__pw_stats ipk__shm_pw_stats;

static int ipk__pw_name(char *buf, size_t cap, int32_t pid, uint32_t id)
{
    return snprintf(buf, cap, "ipk-shm-poll-%d-%u", (int)pid, (unsigned)id);
}

static int ipk__is_eventfd(int fd)
{
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0)
        return 0;
    link[n] = '\0';
    int fl = fcntl(fd, F_GETFL);
    return strcmp(link, "anon_inode:[eventfd]") == 0 && fl >= 0 && (fl & O_NONBLOCK);
}

/* Takes the waiters' answers queued on our socket (a few at most: one per request). */
static void ipk__pw_collect(ipk__ring *r)
{
    for (int k = 0; k < 2 * IPK__SHM_POLLW; k++) {
        char byte;
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        struct sockaddr_un from;
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
        } cm;
        struct msghdr m = {.msg_name = &from,
                           .msg_namelen = sizeof from,
                           .msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = cm.buf,
                           .msg_controllen = sizeof cm.buf};
        if (recvmsg(r->pw_txfd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
            return;
        int fd = -1, ok = !(m.msg_flags & (MSG_CTRUNC | MSG_TRUNC));
        struct ucred cr = {0};
        int have_cr = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_SOCKET)
                continue;
            if (c->cmsg_type == SCM_RIGHTS) {
                size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < nfd; i++) {
                    int f;
                    memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
                    if (fd < 0)
                        fd = f;
                    else {
                        close(f);
                        ok = 0;
                    }
                }
            } else if (c->cmsg_type == SCM_CREDENTIALS &&
                       c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                memcpy(&cr, CMSG_DATA(c), sizeof cr);
                have_cr = 1;
            }
        }
        if (fd < 0)
            continue;
        /* Which line's waiter answered: the one whose name is the sender's. */
        struct ipk__pw_peer *pp = NULL;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if (m.msg_namelen > off + 1 && from.sun_path[0] == '\0') {
            size_t len = m.msg_namelen - off - 1;
            for (int i = 0; i < IPK__SHM_POLLW && pp == NULL; i++) {
                struct ipk__pw_peer *q = &r->pw_peer[i];
                char want[sizeof from.sun_path];
                int n = ipk__pw_name(want, sizeof want, q->pid, q->id);
                if (q->pid != 0 && q->efd < 0 && q->asks != 0 && q->asks != IPK__PW_NOASK &&
                    (size_t)n == len && memcmp(want, from.sun_path + 1, len) == 0)
                    pp = q;
            }
        }
        if (pp != NULL && ok && have_cr && cr.pid == pp->pid && cr.uid == getuid() &&
            ipk__is_eventfd(fd)) {
            pp->efd = fd;
            ipk__shm_pw_stats.efd_taken++;
            continue;
        }
        close(fd);
        if (pp != NULL) { /* (an answer to a line refused already names no line) */
            ipk__shm_pw_stats.efd_refused++;
            pp->asks = IPK__PW_NOASK;
        }
    }
}

/* Wakes every poller's wake-up line armed for role (rare: only when the sleepers count said a
 * poller is armed). The acquire fence pairs with the waiter's seq_cst increment of that count,
 * which follows its store of armed. */
static void ipk__pollw_ring(ipk__ring *r, unsigned role)
{
    atomic_thread_fence(memory_order_acquire);
    int collected = 0;
    for (int i = 0; i < IPK__SHM_POLLW; i++) {
        struct ipk__shm_pollw *w = &r->h->pollw[i];
        if (!(atomic_load_explicit(&w->armed, memory_order_relaxed) & role))
            continue;
        int32_t pid = atomic_load_explicit(&w->pid, memory_order_relaxed);
        uint32_t id = atomic_load_explicit(&w->id, memory_order_relaxed);
        uint32_t gen = atomic_load_explicit(&w->gen, memory_order_relaxed);
        struct ipk__pw_peer *pp = &r->pw_peer[i];
        if (pp->pid != pid || pp->id != id || pp->gen != gen) { /* another waiter */
            if (pp->efd >= 0) {
                close(pp->efd);
                ipk__shm_pw_stats.efd_dropped++;
            }
            *pp = (struct ipk__pw_peer){.efd = -1, .pid = pid, .id = id, .gen = gen};
        }
        if (pp->efd < 0 && pp->asks != 0 && pp->asks != IPK__PW_NOASK && !collected &&
            r->pw_txfd >= 0) {
            ipk__pw_collect(r);
            collected = 1;
        }
        if (pp->efd >= 0) {
            /* EAGAIN: the count is at its ceiling, so a wake-up is pending already. */
            uint64_t one = 1;
            if (write(pp->efd, &one, sizeof one) == (ssize_t)sizeof one || errno == EAGAIN) {
                ipk__shm_pw_stats.efd_writes++;
                continue;
            }
            close(pp->efd);
            pp->efd = -1;
            pp->asks = IPK__PW_NOASK;
        }
        if (r->pw_txfd < 0) {
            int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            int on = 1;
            /* SO_PASSCRED: autobound at the first send (the waiter answers to that name), and
             * the answers carry their sender's credentials. */
            if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
                close(fd);
                fd = -1;
            }
            r->pw_txfd = fd;
        }
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        int n = ipk__pw_name(a.sun_path + 1, sizeof a.sun_path - 1, pid, id);
        static const char ask[1] = {IPK__PW_ASK};
        const char *what = "";
        if (pp->asks < 8) { /* a waiter that never answers (an older ipckit) is asked 8 times */
            what = ask;
            pp->asks++;
        }
        /* A full socket buffer means a wake-up is already on its way; a vanished poller is
         * nobody to wake. Either way there is nothing more to do. */
        if (r->pw_txfd >= 0) {
            (void)sendto(r->pw_txfd, what, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n));
            ipk__shm_pw_stats.datagrams++;
        }
    }
}

/* The publisher's half, right after the store that a waiter may sleep on (w, or the bell that
 * stands for it). role: whom it may wake in a poller (records for consumers, space for
 * producers). */
IPK__HOT void ipk__wake_if(ipk__ring *r, _Atomic uint32_t *w, _Atomic uint32_t *sleepers,
                           _Atomic uint32_t *bell, unsigned role)
{
    if (r->fence || (atomic_load_explicit(&r->h->flags, memory_order_relaxed) & IPK__SHM_F_FENCE))
        atomic_thread_fence(memory_order_seq_cst);
    uint32_t s = atomic_load_explicit(sleepers, memory_order_relaxed);
    if (s != 0) {
        if (s & IPK__SLEEP_FUTEX) {
            if (bell) {
                atomic_fetch_add_explicit(bell, 1, memory_order_seq_cst);
                w = bell;
            }
            ipk__futex_wake(w);
        }
        if (s >= IPK__SLEEP_POLLER)
            ipk__pollw_ring(r, role);
    }
}

/* Wakes this ring's consumer if it sleeps, after a record or a mailbox message is published. */
IPK__HOT void ipk__wake_consumer(ipk__ring *r, _Atomic uint32_t *tag)
{
    ipk__wake_if(r, tag, &r->h->cons_sleepers, r->mb ? &r->h->bell : NULL, IPK__PW_RECORDS);
}

/* ---- locks (multi=1) ----
 *
 * Producers serialise on one lock, consumers on another. Taking a free lock is one CAS of the
 * lock word from 0 to our pid; giving it back is a plain release store of 0 and a load of the
 * lock's sleeper count, with a FUTEX_WAKE only when it is non-zero: the same asymmetric Dekker
 * as the ring's sleepers (see the top), the waiter paying the membarrier.
 *
 * Biased: a CAS is a full barrier, and on the hot path it waits for the stores before it (the
 * tail or the record just published, which the other side is polling) to leave the core: with
 * one producer and one consumer, multi=1 ran at half the speed of multi=0 for that alone. So the
 * first holder of a lock that nobody has contended keeps it (the word becomes its pid with
 * IPK__LK_BIASED) and afterwards only marks itself inside with plain stores: busy = 1, then a look
 * at revoke, and busy = 0 on the way out. A contender stores revoke = 1, runs membarrier (which
 * puts a full barrier into the owner wherever it runs, so either the owner sees revoke or the
 * contender sees busy), waits for busy == 0, and takes the word over from the owner's pid with a
 * CAS; revoke stays set, and the lock is an ordinary one for the rest of the ring's life. An
 * owner that sees revoke gives its hold up (a CAS of the biased word to 0, which only one
 * of it and the contender wins) and locks like everyone else. Without membarrier (the fence
 * flag) nothing is biased.
 *
 * What the robust mutex gave, a holder killed inside, a waiter finds out itself: before each
 * sleep and after every slice of IPK__SHM_LIVENESS_NS asleep it looks whether the holder's pid
 * still lives (a zombie is dead; the start time tells a reused pid apart), and if not takes the
 * word over from that exact value with a CAS (so two waiters never both take it, and a lock
 * given back and taken again meanwhile is not taken from its new holder). The new holder counts
 * a recovery (a biased owner only when it died inside), and begin() re-reads head and rolls it
 * forward (see the top). */

static void ipk__lock_take(const ipk__ring *r, struct ipk__shm_lock *lk)
{
    atomic_store_explicit(&lk->start,
                          ((uint64_t)(uint32_t)r->pid << 32) | (r->pid_start & 0xffffffffu),
                          memory_order_relaxed);
}

/* Whether the holder in lock word w is gone: its pid dead, a zombie, or reused by a process that
 * started at another time. Costs a kill() and a read of /proc: only when the lock is contended
 * and we are about to sleep, or a slice of sleep ended. */
static int ipk__lock_holder_dead(struct ipk__shm_lock *lk, uint32_t w)
{
    /* start holds the pid it belongs to beside it (a holder writes it just after its CAS, so it
     * may still be a previous holder's): only the one of pid w is compared. Its low 32 bits
     * suffice (clock ticks since boot: two starts of one pid that many ticks apart do not
     * happen). */
    uint64_t st = atomic_load_explicit(&lk->start, memory_order_relaxed);
    w &= IPK__LK_PID;
    pid_t pid = (pid_t)w;
    if (pid <= 0 || (ipk__sys_kill(pid, 0) != 0 && errno != EPERM))
        return 1;
    uint64_t now = ipk__pid_start(pid);
    if (now == UINT64_MAX) /* a zombie */
        return 1;
    return (uint32_t)(st >> 32) == w && now != 0 && (uint32_t)st != (uint32_t)now;
}

IPK__HOT int ipk__lock_try(const ipk__ring *r, struct ipk__shm_lock *lk)
{
    uint32_t w = 0;
    if (!atomic_compare_exchange_strong_explicit(&lk->word, &w, (uint32_t)r->pid,
                                                 memory_order_acquire, memory_order_relaxed))
        return 0;
    ipk__lock_take(r, lk);
    return 1;
}

/* Sleeps on *word while it holds val, for one liveness slice at most; *announced: whether we
 * counted ourselves in the lock's sleepers (the first call does, and returns at once so that
 * the caller looks again before sleeping). Returns 0 or the error that ends the wait. */
static int ipk__lock_sleep(const ipk__ring *r, struct ipk__shm_lock *lk, _Atomic uint32_t *word,
                           uint32_t val, int64_t dl, int *announced, const char *who, uint32_t w)
{
    if (dl == IPK__DL_NOW)
        return -EAGAIN;
    if (!*announced) {
        atomic_fetch_add_explicit(&lk->sleepers, 1, memory_order_seq_cst);
        ipk__peer_barrier(r);
        *announced = 1;
        return 0;
    }
    int64_t until = ipk__now() + IPK__SHM_LIVENESS_NS;
    if (until > dl)
        until = dl;
    int f = ipk__futex_wait(word, val, until);
    if ((f == -ETIMEDOUT && until == dl) ||
        (f == -EINTR && dl != IPK__DL_FOREVER && ipk__now() >= dl))
        return ipk__err(IPK_ETIMEDOUT,
                        "%s: another %s (pid %u) held the ring's lock until the deadline", r->name,
                        who, (unsigned)(w & IPK__LK_PID));
    if (f != 0 && f != -EAGAIN && f != -EINTR && f != -ETIMEDOUT)
        return ipk__errsys(f, "%s: futex wait on the %ss' lock", r->name, who);
    return 0;
}

static int ipk__lock_wait(const ipk__ring *r, struct ipk__shm_lock *lk, int64_t dl)
{
    /* Spin a little first when another CPU may give it back soon. */
    if (dl != IPK__DL_NOW && r->spin_ns > 0 && ipk__ncpu() > 1) {
        int64_t until = ipk__now() + (r->spin_ns < 10000 ? r->spin_ns : 10000);
        for (unsigned i = 1;; i++) {
            if (atomic_load_explicit(&lk->word, memory_order_relaxed) == 0 && ipk__lock_try(r, lk))
                return 0;
            if (atomic_load_explicit(&lk->word, memory_order_relaxed) & IPK__LK_BIASED)
                break;
            ipk__cpu_relax();
            if ((i & 63) == 0 && ipk__now() >= until)
                break;
        }
    }
    const char *who = lk == &r->h->plk ? "producer" : "consumer";
    int announced = 0, e = 0;
    for (;;) {
        uint32_t w = atomic_load_explicit(&lk->word, memory_order_seq_cst);
        if (w == 0) {
            if (ipk__lock_try(r, lk))
                break;
            continue;
        }
        /* (our own pid too: here this channel holds no bias, so it is another channel of
         * this process, on another thread) */
        int biased = (w & IPK__LK_BIASED) != 0;
        if (biased) {
            /* Every contender passes the membarrier after revoke is set, not only the one that
             * set it: until then the owner may not have seen revoke, and a busy of 0 would mean
             * nothing. */
            if (!atomic_load_explicit(&lk->revoke, memory_order_relaxed))
                atomic_store_explicit(&lk->revoke, 1, memory_order_seq_cst);
            ipk__peer_barrier(r);
        }
        int inside = biased && atomic_load_explicit(&lk->busy, memory_order_acquire);
        if (biased && !inside) {
            /* Revoked and outside (after the membarrier, a busy of 0 is the owner's last word:
             * its next entry sees revoke). The CAS is from the biased word: an owner that gave
             * its hold up and locked again normally meanwhile holds a word without the bit. */
            if (atomic_compare_exchange_strong_explicit(
                    &lk->word, &w, (uint32_t)r->pid, memory_order_acquire, memory_order_relaxed)) {
                ipk__lock_take(r, lk);
                break;
            }
            continue;
        }
        if (ipk__lock_holder_dead(lk, w)) {
            if (!atomic_compare_exchange_strong_explicit(
                    &lk->word, &w, (uint32_t)r->pid, memory_order_acquire, memory_order_relaxed))
                continue;
            if (!biased || inside)
                atomic_fetch_add_explicit(&r->h->recovered, 1, memory_order_relaxed);
            atomic_store_explicit(&lk->busy, 0, memory_order_relaxed);
            ipk__lock_take(r, lk);
            break;
        }
        if ((e = inside ? ipk__lock_sleep(r, lk, &lk->busy, 1, dl, &announced, who, w)
                        : ipk__lock_sleep(r, lk, &lk->word, w, dl, &announced, who, w)) != 0)
            break;
    }
    if (announced)
        atomic_fetch_sub_explicit(&lk->sleepers, 1, memory_order_relaxed);
    return e;
}

/* The release half of the asymmetric Dekker: store, then look for sleepers on that word. */
IPK__HOT void ipk__lock_post(const ipk__ring *r, struct ipk__shm_lock *lk, _Atomic uint32_t *word)
{
    atomic_store_explicit(word, 0, memory_order_release);
    if (r->fence || (atomic_load_explicit(&r->h->flags, memory_order_relaxed) & IPK__SHM_F_FENCE))
        atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&lk->sleepers, memory_order_relaxed) != 0)
        ipk__futex_wake(word);
}

/* Takes lk; *bias: whether this process holds it biased (then only busy is set). */
IPK__HOT int ipk__ring_lock(const ipk__ring *r, struct ipk__shm_lock *lk, int *bias, int64_t dl)
{
    if (*bias) {
        atomic_store_explicit(&lk->busy, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the contender's membarrier does the rest */
        if (!atomic_load_explicit(&lk->revoke, memory_order_relaxed))
            return 0;
        /* Revoked: leave, give the hold up (unless the contender took it already), and lock
         * like everyone else. */
        *bias = 0;
        ipk__lock_post(r, lk, &lk->busy);
        uint32_t me = (uint32_t)r->pid | IPK__LK_BIASED;
        if (atomic_compare_exchange_strong_explicit(&lk->word, &me, 0, memory_order_release,
                                                    memory_order_relaxed))
            ipk__lock_post(r, lk, &lk->word);
    }
    return ipk__lock_try(r, lk) ? 0 : ipk__lock_wait(r, lk, dl);
}

IPK__HOT void ipk__ring_unlock(const ipk__ring *r, struct ipk__shm_lock *lk, int *bias)
{
    if (*bias) {
        ipk__lock_post(r, lk, &lk->busy);
        return;
    }
    /* Never contended, no membarrier needed by anyone: keep it, biased. */
    if (!r->fence &&
        !(atomic_load_explicit(&r->h->flags, memory_order_relaxed) & IPK__SHM_F_FENCE) &&
        !atomic_load_explicit(&lk->revoke, memory_order_relaxed) &&
        atomic_load_explicit(&lk->sleepers, memory_order_relaxed) == 0) {
        atomic_store_explicit(&lk->word, (uint32_t)r->pid | IPK__LK_BIASED, memory_order_release);
        atomic_thread_fence(memory_order_seq_cst); /* once: bias before the look at sleepers */
        if (atomic_load_explicit(&lk->sleepers, memory_order_relaxed) != 0)
            ipk__futex_wake(&lk->word); /* one who saw no bias yet: it revokes now */
        *bias = 1;
        return;
    }
    ipk__lock_post(r, lk, &lk->word);
}

/* A biased holder closing: gives the lock back for good. */
static void ipk__lock_unbias(const ipk__ring *r, struct ipk__shm_lock *lk, int *bias)
{
    if (!*bias)
        return;
    *bias = 0;
    uint32_t me = (uint32_t)r->pid | IPK__LK_BIASED;
    ipk__lock_post(r, lk, &lk->busy);
    atomic_store_explicit(&lk->start, 0, memory_order_relaxed);
    if (atomic_compare_exchange_strong_explicit(&lk->word, &me, 0, memory_order_release,
                                                memory_order_relaxed))
        ipk__lock_post(r, lk, &lk->word);
}

/* ---- layout ---- */

size_t ipk__shm_seg_size(uint64_t cap)
{
    return IPK__SHM_HDR + (size_t)cap;
}

int ipk__shm_init(struct ipk__shm_hdr *h, uint64_t cap, size_t seg_size, uint32_t flags)
{
    _Static_assert(sizeof(struct ipk__shm_hdr) <= IPK__SHM_HDR, "header fits its page");
    /* The data area is zero (a new segment): the first header reads "nothing yet". */
    h->version = IPK__SHM_VERSION;
    h->capacity = cap;
    h->seg_size = seg_size;
    atomic_store_explicit(&h->owner_pid, (int32_t)getpid(), memory_order_relaxed);
    h->owner_start = ipk__pid_start(getpid());
    atomic_store_explicit(&h->flags, flags, memory_order_relaxed);
    atomic_store_explicit(&h->prod_cpu, UINT32_MAX, memory_order_relaxed);
    atomic_store_explicit(&h->cons_cpu, UINT32_MAX, memory_order_relaxed);
    /* Last, with release: a dialer that sees the magic sees everything above. */
    atomic_store_explicit(&h->magic, IPK__SHM_MAGIC, memory_order_release);
    return 0;
}

int ipk__ring_attach(ipk__ring *r, void *map, size_t map_len, const char *name)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->pw_slot = -1;
    r->pw_txfd = -1;
    for (int i = 0; i < IPK__SHM_POLLW; i++)
        r->pw_peer[i].efd = -1;
    struct ipk__shm_hdr *h = map;
    if (map_len < IPK__SHM_HDR)
        return ipk__err(IPK_EPROTO, "%s: segment of %zu bytes is too small for an ipckit ring",
                        name, map_len);
    uint32_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
    if (magic != IPK__SHM_MAGIC)
        return ipk__err(IPK_EPROTO, "%s: not an ipckit ring (magic 0x%08x, expected 0x%08x)", name,
                        magic, IPK__SHM_MAGIC);
    if (h->version != IPK__SHM_VERSION)
        return ipk__err(IPK_EPROTO, "%s: ring layout version %u; this ipckit speaks version %u",
                        name, h->version, IPK__SHM_VERSION);
    uint32_t fl = atomic_load(&h->flags);
    if (fl & ~IPK__SHM_F_KNOWN)
        return ipk__err(IPK_EPROTO, "%s: ring flags 0x%x include some this ipckit does not know",
                        name, fl);
    uint64_t cap = h->capacity;
    if (cap < 64 || (cap & (cap - 1)) != 0 || cap > map_len - IPK__SHM_HDR)
        return ipk__err(IPK_EPROTO, "%s: corrupt header: capacity %llu in a segment of %zu bytes",
                        name, (unsigned long long)cap, map_len);
    /* Only what cannot change under us is checked: live peers move head and tail meanwhile. */
    uint64_t hd = atomic_load(&h->head), tl = atomic_load(&h->tail);
    r->cap = cap;
    if (!ipk__index_ok(hd) || !ipk__index_ok(tl))
        return ipk__bad_indices(r, hd, tl);
    r->h = h;
    r->data = (unsigned char *)map + IPK__SHM_HDR;
    r->cap = cap;
    r->mask = cap - 1;
    r->map_len = map_len;
    r->multi = (atomic_load(&h->flags) & IPK__SHM_F_MULTI) != 0;
    r->pid = (int32_t)getpid();
    if (r->multi)
        r->pid_start = ipk__pid_start(r->pid);
    r->fence = ipk__shm_force_fence || !ipk__mb_register();
    if (r->fence)
        atomic_fetch_or(&h->flags, IPK__SHM_F_FENCE);
    return 0;
}

/* ---- producer ---- */

/* SPSC: one producer and one consumer at a time; a second live one is refused, a dead one's
 * claim is taken over. multi=1 needs no claim. */
static int ipk__ring_claim(ipk__ring *r, _Atomic int32_t *slot, const char *role)
{
    if (r->multi)
        return 0;
    int32_t me = (int32_t)getpid(), cur = atomic_load(slot);
    while (cur != me) {
        if (cur != 0 && ipk__pid_alive(cur, 0)) {
            if (r->mb)
                return ipk__err(-EBUSY,
                                "%s: this end of the duplex ring is taken (pid %d): a duplex "
                                "ring is a conversation of one listener and one dialer",
                                r->name, (int)cur);
            return ipk__err(-EBUSY,
                            "%s: the ring already has a %s (pid %d); create it with multi=1 to "
                            "have several",
                            r->name, role, (int)cur);
        }
        if (atomic_compare_exchange_weak(slot, &cur, me))
            break;
    }
    return 0;
}

/* Gives an SPSC claim back (an attach that failed after claiming). */
static void ipk__ring_unclaim(const ipk__ring *r, _Atomic int32_t *slot)
{
    int32_t me = (int32_t)getpid();
    if (!r->multi)
        atomic_compare_exchange_strong(slot, &me, 0);
}

IPK__HOT void ipk__prod_end(ipk__ring *r);
IPK__HOT void ipk__cons_end(ipk__ring *r);

/* Takes the write index over from head. A producer killed between storing a tag and storing
 * head left a committed record at head: keep it (roll forward). Anything else at head has no
 * tag and is overwritten. Head and tail are checked first (IPK_EPROTO): they come from the
 * segment, which any process that can write it may have set to anything. Once rolled forward,
 * head is at most a capacity ahead of tail and never behind it. */
static int ipk__prod_sync(ipk__ring *r)
{
    struct ipk__shm_hdr *h = r->h;
    r->p_head = atomic_load_explicit(&h->head, memory_order_relaxed);
    /* Tail is the consumers' line: a load of it on every multi=1 send would take that line
     * from the consumer each time. The cached copy is a lower bound (indices only grow), so
     * every check below that it passes holds for the real tail; it is reloaded only when one
     * fails, and the check decided on the real value. */
    uint64_t tail = r->p_tail;
    int fresh = 0;
    if (!ipk__index_ok(r->p_head))
        return ipk__bad_indices(r, r->p_head, tail);
    for (;;) {
        if (!fresh && (r->p_head - tail > r->cap || !ipk__index_ok(tail))) {
            tail = r->p_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
            fresh = 1;
        }
        if (!ipk__index_ok(tail) || r->p_head - tail > r->cap)
            return ipk__bad_indices(r, r->p_head, tail);
        const ipk__rec *rec = ipk__rec_at(r, r->p_head);
        uint64_t size = ipk__rec_size(rec->len);
        if (atomic_load_explicit(&rec->tag, memory_order_acquire) == 0 ||
            size > r->cap - (r->p_head & r->mask))
            break;
        if (r->p_head + size - tail > r->cap) {
            if (fresh)
                break;
            tail = r->p_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
            fresh = 1;
            continue;
        }
        r->p_head += size;
        atomic_store_explicit(&h->head, r->p_head, memory_order_release);
    }
    return 0;
}

static int ipk__prod_attach(ipk__ring *r)
{
    struct ipk__shm_hdr *h = r->h;
    int e = ipk__ring_claim(r, &h->prod_pid, "producer");
    if (e)
        return e;
    if (!r->multi && (e = ipk__prod_sync(r)) != 0) {
        ipk__ring_unclaim(r, &h->prod_pid);
        return e;
    }
    /* SPSC: this is the one producer, even if a killed one never counted itself out. */
    if (r->multi)
        atomic_fetch_add(&h->nprod, 1);
    else
        atomic_store(&h->nprod, 1);
    atomic_store(&h->everprod, 1);
    r->p_attached = 1;
    r->p_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    ipk__publish_cpu(&h->prod_cpu);
    return 0;
}

IPK__HOT int ipk__prod_begin(ipk__ring *r, int64_t dl)
{
    struct ipk__shm_hdr *h = r->h;
    if (!r->p_attached) {
        int e = ipk__prod_attach(r);
        if (e)
            return e;
    }
    if (r->multi && !r->p_locked) {
        int e = ipk__ring_lock(r, &h->plk, &r->p_bias, dl);
        if (e)
            return e;
        r->p_locked = 1;
        if ((e = ipk__prod_sync(r)) != 0) { /* the mutex made the last holder's stores visible */
            ipk__prod_end(r);
            return e;
        }
    }
    return 0;
}

IPK__HOT void ipk__prod_end(ipk__ring *r)
{
    if (r->p_locked && !r->p_batch) {
        r->p_locked = 0;
        ipk__ring_unlock(r, &r->h->plk, &r->p_bias);
    }
}

/* Commits the record at index i (bytes and len already written) with tag: zero the next
 * header, store the tag (release), wake a sleeping consumer, then move head. */
IPK__HOT void ipk__commit_at(ipk__ring *r, uint64_t i, uint64_t size, uint32_t tag)
{
    ipk__rec *next = ipk__rec_at(r, i + size);
    next->len = 0;
    atomic_store_explicit(&next->tag, 0, memory_order_relaxed);
    ipk__rec *rec = ipk__rec_at(r, i);
    atomic_store_explicit(&rec->tag, tag, memory_order_release);
    ipk__wake_consumer(r, &rec->tag);
    r->p_head = i + size;
    atomic_store_explicit(&r->h->head, r->p_head, memory_order_release);
}

/* Makes room for rec contiguous bytes at p_head, plus the 8 bytes of the next header; first
 * fills the end of the buffer with a PAD record when rec would not fit before it. */
IPK__HOT int ipk__ring_room(ipk__ring *r, uint64_t rec, int64_t dl)
{
    struct ipk__shm_hdr *h = r->h;
    for (;;) {
        uint64_t pos = r->p_head & r->mask;
        int wrap = pos + rec > r->cap;
        uint64_t need = (wrap ? r->cap - pos : rec) + IPK__SHM_RECHDR;
        if (r->p_head + need - r->p_tail > r->cap) {
            r->p_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
            if (r->p_head + need - r->p_tail > r->cap) {
                ipk__watch x = {.w = ipk__lo32(&h->tail),
                                .seen = (uint32_t)r->p_tail,
                                .sleepers = &h->prod_sleepers,
                                .mine = &h->prod_cpu,
                                .peer = &h->cons_cpu,
                                .peer_pid = r->mb ? &h->cons_pid : NULL,
                                .dead_code = -EPIPE};
                int e = ipk__ring_wait(r, &x, dl);
                if (e == IPK_ETIMEDOUT)
                    return ipk__err(e,
                                    "%s: the ring is full: no room for %llu bytes before the "
                                    "deadline (%llu of %llu bytes queued)",
                                    r->name, (unsigned long long)need,
                                    (unsigned long long)(r->p_head - r->p_tail),
                                    (unsigned long long)r->cap);
                if (e)
                    return e;
                r->p_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
                continue;
            }
        }
        if (!wrap)
            return 0;
        ipk__rec_at(r, r->p_head)->len = (uint32_t)(r->cap - pos - IPK__SHM_RECHDR);
        ipk__commit_at(r, r->p_head, r->cap - pos, IPK__SHM_TAG_PAD);
    }
}

int ipk__ring_reserve(ipk__ring *r, void **p, size_t len, int64_t dl)
{
    if (r->p_reserved)
        return ipk__err(-EINVAL, "%s: reserve: a reservation is open; commit it first", r->name);
    uint64_t rec = ipk__rec_size(len);
    if (rec + IPK__SHM_RECHDR > r->cap)
        return ipk__err(IPK_EMSGSIZE,
                        "%s: message of %zu bytes can never fit the ring of %llu bytes (largest "
                        "message %llu bytes)",
                        r->name, len, (unsigned long long)r->cap,
                        (unsigned long long)(r->cap - 2 * IPK__SHM_RECHDR));
    int e = ipk__prod_begin(r, dl);
    if (e)
        return e;
    if ((e = ipk__ring_room(r, rec, dl)) != 0) {
        ipk__prod_end(r);
        return e;
    }
    /* The tag at p_head is 0 (zeroed by the previous commit): the record does not exist until
     * commit stores it. */
    r->res_pos = r->p_head;
    r->res_len = len;
    r->p_reserved = 1;
    *p = r->data + (r->p_head & r->mask) + IPK__SHM_RECHDR;
    return 0;
}

int ipk__ring_commit(ipk__ring *r, size_t len)
{
    if (!r->p_reserved)
        return ipk__err(-EINVAL, "%s: commit without a reservation", r->name);
    if (len > r->res_len)
        return ipk__err(-EINVAL, "%s: commit of %zu bytes exceeds the %zu reserved", r->name, len,
                        r->res_len);
    ipk__rec_at(r, r->res_pos)->len = (uint32_t)len;
    r->p_reserved = 0;
    ipk__commit_at(r, r->res_pos, ipk__rec_size(len), IPK__SHM_TAG_DATA);
    ipk__prod_end(r);
    if ((++r->ops & 255) == 0)
        ipk__publish_cpu(&r->h->prod_cpu);
    return 0;
}

/* duplex=1: sends through the mailbox when it is free; 0 when it is taken (use the ring). */
IPK__HOT int ipk__mbox_send(ipk__ring *r, const void *msg, size_t len)
{
    struct ipk__shm_mbox *mb = r->mb;
    if (r->twin->mb_held) { /* ours alone: see the top */
        r->twin->mb_held = 0;
        atomic_store_explicit(&mb->state, IPK__MB_BUSY(r->end), memory_order_relaxed);
        /* BUSY before any byte of the new message (free on x86; a barrier where stores may
         * pass stores): a successor must never find them under the old FULL(peer). */
        atomic_thread_fence(memory_order_release);
    } else {
        uint32_t st = atomic_load_explicit(&mb->state, memory_order_relaxed);
        if (st != IPK__MB_EMPTY ||
            !atomic_compare_exchange_strong_explicit(&mb->state, &st, IPK__MB_BUSY(r->end),
                                                     memory_order_acquire, memory_order_relaxed))
            return 0;
    }
    mb->at = r->p_head;
    mb->len = (uint32_t)len;
    if (len)
        memcpy(mb->data, msg, len);
    atomic_store_explicit(&mb->state, IPK__MB_FULL(r->end), memory_order_release);
    ipk__wake_consumer(r, &mb->state);
    return 1;
}

int ipk__ring_send(ipk__ring *r, const void *msg, size_t len, int64_t dl)
{
    /* p_attached: a duplex end attached at open; the die hook tests the ring. */
    if (r->mb && len <= IPK__SHM_MBOX_MAX && !r->p_reserved && r->p_attached &&
        ipk__shm_die_at <= 0 && ipk__mbox_send(r, msg, len))
        return 0;
    void *p;
    int e = ipk__ring_reserve(r, &p, len, dl);
    if (e)
        return e;
    if (ipk__shm_die_at > 0 && --ipk__shm_die_at == 0) {
        /* Test hook: die with half a record written (and the mutex held, with multi=1). */
        ipk__rec_at(r, r->res_pos)->len = (uint32_t)len;
        memcpy(p, msg, len / 2);
        raise(SIGKILL);
    }
    if (len)
        memcpy(p, msg, len);
    return ipk__ring_commit(r, len);
}

long ipk__ring_sendv(ipk__ring *r, const ipk_iov *msgs, size_t n, int64_t dl)
{
    size_t i = 0;
    int e = 0;
    /* multi=1: the producers' lock is kept from the first message to the last, one lock and one
     * unlock for the batch, which lies contiguous in the ring as if there were one producer */
    if (r->multi && n > 1 && ipk__shm_die_at <= 0) {
        if ((e = ipk__prod_begin(r, dl)) != 0)
            return e;
        r->p_batch = 1;
    }
    for (; i < n; i++)
        if ((e = ipk__ring_send(r, msgs[i].base, msgs[i].len, i == 0 ? dl : IPK__DL_NOW)) != 0)
            break;
    if (r->p_batch) {
        r->p_batch = 0;
        ipk__prod_end(r);
    }
    return i > 0 ? (long)i : e;
}

/* ---- consumer ---- */

static int ipk__cons_attach(ipk__ring *r)
{
    struct ipk__shm_hdr *h = r->h;
    int e = ipk__ring_claim(r, &h->cons_pid, "consumer");
    if (e)
        return e;
    r->c_tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
    if (!ipk__index_ok(r->c_tail)) {
        ipk__ring_unclaim(r, &h->cons_pid);
        return ipk__bad_indices(r, atomic_load(&h->head), r->c_tail);
    }
    r->c_attached = 1;
    ipk__publish_cpu(&h->cons_cpu);
    return 0;
}

IPK__HOT int ipk__cons_begin(ipk__ring *r, int64_t dl)
{
    struct ipk__shm_hdr *h = r->h;
    if (!r->c_attached) {
        int e = ipk__cons_attach(r);
        if (e)
            return e;
    }
    if (r->multi) {
        int e = ipk__ring_lock(r, &h->clk, &r->c_bias, dl);
        if (e)
            return e;
        r->c_locked = 1;
        r->c_tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
        if (!ipk__index_ok(r->c_tail)) {
            ipk__cons_end(r);
            return ipk__bad_indices(r, atomic_load(&h->head), r->c_tail);
        }
    }
    return 0;
}

IPK__HOT void ipk__cons_end(ipk__ring *r)
{
    if (r->c_locked) {
        r->c_locked = 0;
        ipk__ring_unlock(r, &r->h->clk, &r->c_bias);
    }
}

IPK__HOT void ipk__consume(ipk__ring *r, uint64_t next)
{
    struct ipk__shm_hdr *h = r->h;
    r->c_tail = next;
    atomic_store_explicit(&h->tail, next, memory_order_release);
    ipk__wake_if(r, ipk__lo32(&h->tail), &h->prod_sleepers, NULL, IPK__PW_SPACE);
    if ((++r->ops & 255) == 0)
        ipk__publish_cpu(&h->cons_cpu);
}

/* duplex=1: whether the mailbox holds the peer's message that comes next (before ring record
 * c_tail); *st gets the state seen. Called after the ring's tag was loaded (see the top). */
IPK__HOT int ipk__mbox_next(const ipk__ring *r, uint32_t *st)
{
    struct ipk__shm_mbox *mb = r->mb;
    uint32_t full = IPK__MB_FULL(1 - r->end);
    *st = atomic_load_explicit(&mb->state, memory_order_acquire);
    if (*st != full || r->mb_held)
        return 0;
    uint64_t at = mb->at;
    if (at == r->c_tail)
        return 1;
    /* Our read index only passes `at` after the message was taken (it goes first), so one
     * behind us was consumed by a predecessor of this end killed before it gave the mailbox
     * back: give it back now (nobody else may), or the peer never uses it again and a waiter
     * would see it as news forever. */
    if ((int64_t)(at - r->c_tail) < 0)
        atomic_compare_exchange_strong_explicit(&mb->state, &full, IPK__MB_EMPTY,
                                                memory_order_release, memory_order_relaxed);
    return 0;
}

/* duplex=1: gives a held mailbox back, so that the peer can send through it again. */
static void ipk__mbox_unhold(ipk__ring *r)
{
    if (r->mb_held) {
        r->mb_held = 0;
        atomic_store_explicit(&r->mb->state, IPK__MB_EMPTY, memory_order_release);
    }
}

/* Finds the next DATA record at c_tail (skipping PADs), or with duplex=1 the mailbox message
 * that comes first (c_mbox set), waiting until dl; returns its length. */
IPK__HOT long ipk__ring_next(ipk__ring *r, int64_t dl)
{
    struct ipk__shm_hdr *h = r->h;
    /* PAD bytes skipped since the last look found nothing: a producer keeps 8 bytes free, so
     * a lap of them without a pause is not a ring a producer wrote (zero-length PADs all over,
     * or one that leads back to itself), and walking on would never end. */
    uint64_t padded = 0;
    for (;;) {
        ipk__rec *rec = ipk__rec_at(r, r->c_tail);
        uint32_t tag = atomic_load_explicit(&rec->tag, memory_order_acquire), st = 0;
        if (r->mb && ipk__mbox_next(r, &st)) {
            uint32_t len = r->mb->len;
            if (len > IPK__SHM_MBOX_MAX)
                return ipk__err(IPK_EPROTO, "%s: corrupt mailbox (length %u)", r->name, len);
            r->c_mbox = 1;
            return len;
        }
        if (tag == 0) {
            /* Empty. EOF once every producer that attached has closed; the tag (and the
             * mailbox) are read again after nprod, since a producer publishes before it
             * detaches. */
            if (atomic_load_explicit(&h->everprod, memory_order_acquire) &&
                atomic_load_explicit(&h->nprod, memory_order_acquire) == 0) {
                if (atomic_load_explicit(&rec->tag, memory_order_acquire) == 0 &&
                    !(r->mb && ipk__mbox_next(r, &st)))
                    return ipk__err(IPK_EOF, "%s: every producer has closed", r->name);
                continue;
            }
            ipk__mbox_unhold(r);
            /* The peer's message before a record `at` ahead of us: a peer publishes it after
             * the records before `at`, so one still missing here (read after the mailbox) is
             * no ring a peer wrote, and the full mailbox would end every wait at once. */
            if (r->mb &&
                atomic_load_explicit(&r->mb->state, memory_order_acquire) ==
                    IPK__MB_FULL(1 - r->end) &&
                (int64_t)(r->mb->at - r->c_tail) > 0 &&
                atomic_load_explicit(&rec->tag, memory_order_acquire) == 0)
                return ipk__err(IPK_EPROTO,
                                "%s: corrupt mailbox: its message goes before index %llu, but "
                                "there is no record at index %llu",
                                r->name, (unsigned long long)r->mb->at,
                                (unsigned long long)r->c_tail);
            ipk__watch x = {.w = &rec->tag,
                            .seen = 0,
                            .sleepers = &h->cons_sleepers,
                            .mine = &h->cons_cpu,
                            .peer = r->peer_cpu ? r->peer_cpu : &h->prod_cpu};
            if (r->mb) {
                x.w2 = &r->mb->state;
                x.want2 = IPK__MB_FULL(1 - r->end);
                x.bell = &h->bell;
                x.peer_pid = &h->prod_pid;
                x.dead_code = IPK_EOF;
            }
            int e = ipk__ring_wait(r, &x, dl);
            if (e == IPK_ETIMEDOUT)
                return ipk__err(e, "%s: no message before the deadline", r->name);
            if (e)
                return e;
            padded = 0;
            continue;
        }
        uint64_t pos = r->c_tail & r->mask;
        /* Read once: the checks below must hold for the length that is used. */
        uint32_t len = __atomic_load_n(&rec->len, __ATOMIC_RELAXED);
        uint64_t size = ipk__rec_size(len);
        if (size > r->cap - pos || (tag != IPK__SHM_TAG_DATA && tag != IPK__SHM_TAG_PAD))
            return ipk__err(IPK_EPROTO, "%s: corrupt record at index %llu (length %u, tag 0x%08x)",
                            r->name, (unsigned long long)r->c_tail, len, tag);
        if (tag == IPK__SHM_TAG_DATA)
            return len;
        if ((padded += size) >= r->cap)
            return ipk__err(IPK_EPROTO,
                            "%s: corrupt ring: a whole lap of filler records up to index %llu",
                            r->name, (unsigned long long)r->c_tail);
        ipk__consume(r, r->c_tail + size);
    }
}

long ipk__ring_recv(ipk__ring *r, void *buf, size_t cap, size_t *need, int64_t dl)
{
    if (r->c_peeked)
        return ipk__err(-EINVAL, "%s: recv while a peeked message is not released", r->name);
    int e = ipk__cons_begin(r, dl);
    if (e)
        return e;
    long len = ipk__ring_next(r, dl);
    if (len >= 0) {
        if ((size_t)len > cap) {
            r->c_mbox = 0;
            *need = (size_t)len;
            len = ipk__err(IPK_EMSGSIZE,
                           "%s: message of %ld bytes does not fit the buffer of %zu bytes", r->name,
                           len, cap);
        } else if (r->c_mbox) {
            r->c_mbox = 0;
            if (len)
                memcpy(buf, r->mb->data, (size_t)len);
            r->mb_held = 1;
        } else {
            if (len)
                memcpy(buf, r->data + (r->c_tail & r->mask) + IPK__SHM_RECHDR, (size_t)len);
            ipk__consume(r, r->c_tail + ipk__rec_size((uint64_t)len));
        }
    }
    ipk__cons_end(r);
    return len;
}

long ipk__ring_peek(ipk__ring *r, const void **p, int64_t dl)
{
    /* Peeking again before release gives the same message: c_tail has not moved. */
    if (!r->c_peeked) {
        int e = ipk__cons_begin(r, dl);
        if (e)
            return e;
    }
    long len = ipk__ring_next(r, dl);
    if (len < 0) {
        if (!r->c_peeked)
            ipk__cons_end(r);
        return len;
    }
    if (r->c_mbox) {
        *p = r->mb->data;
        r->peek_next = r->c_tail;
    } else {
        *p = r->data + (r->c_tail & r->mask) + IPK__SHM_RECHDR;
        r->peek_next = r->c_tail + ipk__rec_size((uint64_t)len);
    }
    r->c_peeked = 1; /* multi=1: the consumers' mutex stays held until release */
    return len;
}

int ipk__ring_release(ipk__ring *r)
{
    if (!r->c_peeked)
        return ipk__err(-EINVAL, "%s: release without a peeked message", r->name);
    r->c_peeked = 0;
    if (r->c_mbox) {
        r->c_mbox = 0;
        r->mb_held = 1;
    } else {
        ipk__consume(r, r->peek_next);
    }
    ipk__cons_end(r);
    return 0;
}

int ipk__ring_pending(const ipk__ring *r)
{
    /* The read index a receive would use: an SPSC consumer's own (the segment's copy is what
     * it stored, unless another process wrote there), else the segment's, which is checked
     * like every read of it. A PAD is no message: the filler before a wrap, or the one a
     * closing producer leaves. */
    uint64_t t = r->c_attached && !r->multi
                     ? r->c_tail
                     : atomic_load_explicit(&r->h->tail, memory_order_acquire);
    uint64_t end = t + r->cap;
    while (ipk__index_ok(t)) {
        const ipk__rec *rec = ipk__rec_at(r, t);
        uint32_t tag = atomic_load_explicit(&rec->tag, memory_order_acquire);
        if (tag != IPK__SHM_TAG_PAD) {
            if (tag != 0)
                return 1;
            break;
        }
        t += ipk__rec_size(__atomic_load_n(&rec->len, __ATOMIC_RELAXED));
        if (t >= end) /* only PADs, or a corrupt ring: nothing to receive either way */
            break;
    }
    return r->mb && !r->mb_held &&
           atomic_load_explicit(&r->mb->state, memory_order_acquire) == IPK__MB_FULL(1 - r->end);
}

int ipk__ring_duplex(ipk__ring *tx, ipk__ring *rx, struct ipk__shm_mbox *mb, int end)
{
    tx->mb = rx->mb = mb;
    tx->end = rx->end = end;
    tx->twin = rx;
    rx->twin = tx;
    /* The peer publishes its CPU as the consumer of our tx ring at every wait; as a producer
     * it may send only through the mailbox, which publishes nothing. */
    rx->peer_cpu = &tx->h->cons_cpu;
    /* The consumer side first: undoing its claim has no effect on the peer. */
    int e = ipk__cons_attach(rx);
    if (e)
        return e;
    if ((e = ipk__prod_attach(tx)) != 0) {
        int32_t me = (int32_t)getpid();
        atomic_compare_exchange_strong(&rx->h->cons_pid, &me, 0);
        rx->c_attached = 0;
        return e;
    }
    /* A process of this end that was killed while it wrote the mailbox left it BUSY: nobody
     * else may finish that message, so it is dropped (it was never delivered). */
    uint32_t busy = IPK__MB_BUSY(end);
    atomic_compare_exchange_strong(&mb->state, &busy, IPK__MB_EMPTY);
    return 0;
}

void ipk__ring_detach(ipk__ring *r)
{
    struct ipk__shm_hdr *h = r->h;
    if (h == NULL)
        return;
    ipk__ring_poll_detach(r);
    if (r->p_reserved) { /* never committed: the record does not exist */
        r->p_reserved = 0;
        ipk__prod_end(r);
    }
    if (r->c_peeked) { /* not released: the message stays for the next consumer */
        r->c_peeked = 0;
        r->c_mbox = 0;
        ipk__cons_end(r);
    }
    if (r->mb) /* a consumed message must not reach this end's successor again */
        ipk__mbox_unhold(r);
    if (r->p_attached) {
        atomic_fetch_sub(&h->nprod, 1);
        /* A consumer asleep on the empty ring sleeps on the tag at head: commit an empty PAD
         * there so it wakes and sees the EOF. With no room, no consumer is asleep on empty. */
        if (ipk__prod_begin(r, ipk__deadline(100)) == 0) {
            if (ipk__ring_room(r, IPK__SHM_RECHDR, IPK__DL_NOW) == 0) {
                ipk__rec_at(r, r->p_head)->len = 0;
                ipk__commit_at(r, r->p_head, IPK__SHM_RECHDR, IPK__SHM_TAG_PAD);
            }
            ipk__prod_end(r);
        }
        int32_t me = (int32_t)getpid();
        if (!r->multi)
            atomic_compare_exchange_strong(&h->prod_pid, &me, 0);
        r->p_attached = 0;
    }
    if (r->c_attached) {
        int32_t me = (int32_t)getpid();
        if (!r->multi)
            atomic_compare_exchange_strong(&h->cons_pid, &me, 0);
        r->c_attached = 0;
    }
    if (r->multi) {
        ipk__lock_unbias(r, &h->plk, &r->p_bias);
        ipk__lock_unbias(r, &h->clk, &r->c_bias);
    }
    if (r->pw_txfd >= 0) {
        close(r->pw_txfd);
        r->pw_txfd = -1;
    }
    for (int i = 0; i < IPK__SHM_POLLW; i++)
        if (r->pw_peer[i].efd >= 0) {
            close(r->pw_peer[i].efd);
            r->pw_peer[i].efd = -1;
        }
}

/* ---- pollers ---- */

int ipk__ring_poll_attach(ipk__ring *r, uint32_t id)
{
    if (r->pw_slot >= 0)
        return 0;
    int32_t me = (int32_t)getpid();
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < IPK__SHM_POLLW; i++) {
            struct ipk__shm_pollw *w = &r->h->pollw[i];
            int32_t pid = atomic_load_explicit(&w->pid, memory_order_acquire);
            /* First pass: free lines; second: lines of processes that died holding them. */
            if (pass == 0 ? pid != 0 : (pid == 0 || pid == me || ipk__pid_alive(pid, 0)))
                continue;
            if (!atomic_compare_exchange_strong(&w->pid, &pid, me))
                continue;
            atomic_store_explicit(&w->armed, 0, memory_order_relaxed);
            atomic_fetch_add_explicit(&w->gen, 1, memory_order_relaxed);
            atomic_store_explicit(&w->id, id, memory_order_release);
            r->pw_slot = i;
            return 0;
        }
    return ipk__err(-EBUSY, "%s: %d processes already wait on this ring in pollers", r->name,
                    IPK__SHM_POLLW);
}

void ipk__ring_poll_detach(ipk__ring *r)
{
    if (r->pw_slot < 0 || r->h == NULL)
        return;
    if (r->pw_armed)
        ipk__ring_poll_disarm(r, r->pw_armed);
    struct ipk__shm_pollw *w = &r->h->pollw[r->pw_slot];
    int32_t me = (int32_t)getpid();
    atomic_compare_exchange_strong(&w->pid, &me, 0);
    r->pw_slot = -1;
}

static _Atomic uint32_t *ipk__pw_sleepers(ipk__ring *r, unsigned role)
{
    return role == IPK__PW_RECORDS ? &r->h->cons_sleepers : &r->h->prod_sleepers;
}

int ipk__ring_poll_ready(ipk__ring *r, unsigned role)
{
    struct ipk__shm_hdr *h = r->h;
    if (role == IPK__PW_RECORDS) {
        if (ipk__ring_pending(r))
            return 1;
        /* End of stream is news too: the receive says IPK_EOF. */
        return atomic_load_explicit(&h->everprod, memory_order_acquire) &&
               atomic_load_explicit(&h->nprod, memory_order_acquire) == 0;
    }
    /* Room for a small message: a quarter of the ring or 4 KiB, whichever is less (or, with
     * duplex=1, an empty mailbox). */
    uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    uint64_t want = r->cap / 4 < 4096 ? r->cap / 4 : 4096;
    if (head - tail <= r->cap && r->cap - (head - tail) >= want)
        return 1;
    return r->mb && atomic_load_explicit(&r->mb->state, memory_order_acquire) == IPK__MB_EMPTY;
}

int ipk__ring_poll_arm(ipk__ring *r, unsigned role)
{
    if (r->pw_slot < 0)
        return ipk__err(-EINVAL, "%s: poll arm without a wake-up line", r->name);
    if (r->pw_armed & role)
        return 0;
    if (role == IPK__PW_RECORDS && r->mb) /* as a consumer about to sleep: see the top */
        ipk__mbox_unhold(r);
    struct ipk__shm_pollw *w = &r->h->pollw[r->pw_slot];
    atomic_fetch_or_explicit(&w->armed, role, memory_order_relaxed);
    /* Dekker, as ipk__ring_wait: announce, force a barrier on the publishers, look again. */
    atomic_fetch_add_explicit(ipk__pw_sleepers(r, role), IPK__SLEEP_POLLER, memory_order_seq_cst);
    ipk__peer_barrier(r);
    r->pw_armed |= role;
    if (ipk__ring_poll_ready(r, role)) {
        ipk__ring_poll_disarm(r, role);
        return 1;
    }
    return 0;
}

void ipk__ring_poll_disarm(ipk__ring *r, unsigned role)
{
    role &= r->pw_armed;
    for (unsigned b = IPK__PW_RECORDS; b <= IPK__PW_SPACE; b <<= 1) {
        if (!(role & b))
            continue;
        atomic_fetch_sub_explicit(ipk__pw_sleepers(r, b), IPK__SLEEP_POLLER, memory_order_relaxed);
        atomic_fetch_and_explicit(&r->h->pollw[r->pw_slot].armed, ~b, memory_order_relaxed);
        r->pw_armed &= ~b;
    }
}
