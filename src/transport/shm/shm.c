/*
 * shm.c - the shm: transport. Two modes over a POSIX shared-memory segment:
 *   ring (default)  a versioned ring of variable-length records (ring.c): lock-free SPSC,
 *                   biased pid locks for multi=1, futex waits, zero-copy reserve/commit and
 *                   peek/release;
 *   segment         the guide's plain protocol: the writer fills the segment with a
 *                   NUL-terminated text and posts a named semaphore; the reader waits on it and
 *                   reads, so programs written the guide's way (memwriter/memreader) interoperate.
 * listen creates and owns the segment (removed on close when no message waits in it; keep=1
 * never, keep=0 always); dial opens it.
 * A ring is one-way (whoever sends first is the producer), unless created with duplex=1: then
 * the segment holds two rings and a mailbox line, and the listener and one dialer each send and
 * receive on their channel, like the two ends of a socket.
 */
#include "objects.h"
#include "ring.h"
#include "transport.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define IPK__SHM_DEFAULT_SIZE ((size_t)1 << 20) /* ring data capacity */
#define IPK__SHM_SEGMENT_SIZE ((size_t)4096)    /* segment mode: the guide uses 512 */
#define IPK__SHM_MAX_SIZE     ((size_t)1 << 34)
#define IPK__SHM_DEFAULT_SPIN 50000L /* ns */

typedef struct ipk__shm {
    ipk__ring ring[2];  /* ring[1]: duplex=1 only */
    ipk__ring *tx, *rx; /* the ring this end sends on and the one it receives from */
    void *map;
    size_t map_len;
    int segment; /* mode=segment */
    sem_t *sem;
    char sem_name[NAME_MAX + 1];
    int sem_own;       /* the listener made or adopted the semaphore: its close removes it */
    int pw_fd;         /* in a poller: the abstract socket the rings' publishers wake, else -1 */
    int pw_efd;        /* and the eventfd handed to publishers that ask for it (ring.c) */
    unsigned pw_skips; /* wake-ups by the eventfd that left the socket undrained */
    /* duplex=1 in a poller: an epoll set holding a pidfd of the other end (pw_peer), so that
     * its death wakes the poller; pw_dead: it died (the poller reports IPK_POLLHUP) */
    int pw_pe, pw_pidfd;
    int32_t pw_peer;
    int pw_dead;
    /* The files of the segment and the semaphore this listener made (or adopted), so that its
     * close removes only those and not another user's object put at the name since. */
    int seg_known, sem_known;
    dev_t seg_dev, sem_dev;
    ino_t seg_ino, sem_ino;
} ipk__shm;

static const char *const ipk__shm_keys[] = {"size", "multi", "mode",   "sem",    "perm", "keep",
                                            "spin", "stale", "duplex", "create", NULL};

static const char *ipk__shm_name(const ipk_chan *c)
{
    return c->addr.u.posix.name;
}

/* ---- options ---- */

static int ipk__shm_mode(ipk_chan *c, ipk__shm *s)
{
    const char *m = ipk__opt(c, "mode");
    if (m == NULL || strcmp(m, "ring") == 0)
        s->segment = 0;
    else if (strcmp(m, "segment") == 0)
        s->segment = 1;
    else
        return ipk__err(IPK_EOPTION, "%s: mode=%s: expected ring or segment", c->name, m);
    const char *sem = ipk__opt(c, "sem");
    if (s->segment && sem == NULL)
        return ipk__err(IPK_EOPTION, "%s: mode=segment needs sem=NAME (the named semaphore)",
                        c->name);
    if (!s->segment && sem != NULL)
        return ipk__err(IPK_EOPTION, "%s: sem=%s applies to mode=segment only", c->name, sem);
    if (s->segment && ipk__opt(c, "duplex") != NULL)
        return ipk__err(IPK_EOPTION, "%s: duplex= applies to mode=ring only", c->name);
    if (sem) {
        const char *b = sem[0] == '/' ? sem + 1 : sem;
        if (*b == '\0' || strchr(b, '/') || strlen(b) > NAME_MAX - 5)
            return ipk__err(IPK_EOPTION, "%s: sem=%s: expected NAME or /NAME, no other '/'",
                            c->name, sem);
        snprintf(s->sem_name, sizeof s->sem_name, "/%s", b);
    }
    return 0;
}

/* Ring capacity: size rounded up to a power of two, at least one page. */
static int ipk__shm_capacity(ipk_chan *c, size_t *cap)
{
    size_t sz;
    int r = ipk__opt_size(c, "size", IPK__SHM_DEFAULT_SIZE, &sz);
    if (r)
        return r;
    if (sz < 4096 || sz > IPK__SHM_MAX_SIZE)
        return ipk__err(IPK_EOPTION, "%s: size=%zu: expected 4k..16g", c->name, sz);
    size_t p = 4096;
    while (p < sz)
        p <<= 1;
    *cap = p;
    return 0;
}

/* ---- mapping ---- */

static int ipk__shm_map(ipk_chan *c, ipk__shm *s, int fd, size_t len)
{
    void *m = ipk__sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return ipk__errsys(-errno, "%s: mmap of %zu bytes", c->name, len);
    s->map = m;
    s->map_len = len;
    return 0;
}

/* The file of a segment or of a named semaphore (glibc keeps both in /dev/shm). */
static const char *ipk__shm_path(char *buf, size_t cap, const char *prefix, const char *name)
{
    snprintf(buf, cap, "/dev/shm/%s%s", prefix, name + 1);
    return buf;
}

static int ipk__shm_open_err(ipk_chan *c, int e)
{
    if (e == -ENOENT)
        return ipk__err(-ENOENT, "%s: no such segment (/dev/shm%s); is a listener running?",
                        c->name, ipk__shm_name(c));
    if (e == -ELOOP) /* shm_open() opens with O_NOFOLLOW */
        return ipk__err(-ELOOP, "%s: /dev/shm%s is a symbolic link; refused, left untouched",
                        c->name, ipk__shm_name(c));
    return ipk__errsys(e, "%s: shm_open", c->name);
}

/* Creates the segment exclusively with exactly c->perm (not reduced by the umask) and
 * allocates its pages now: on a full /dev/shm that is ENOSPC here, not SIGBUS later. Returns
 * -EEXIST without a message (the caller decides), any other error with one. */
static int ipk__shm_create(ipk_chan *c, size_t len, int *fdp)
{
    int fd = ipk__sys_shm_open(ipk__shm_name(c), O_RDWR | O_CREAT | O_EXCL, (mode_t)c->perm);
    if (fd < 0)
        return errno == EEXIST ? -EEXIST : ipk__shm_open_err(c, -errno);
    int e = 0;
    ipk__shm *s = c->tp;
    struct stat st;
    if (ipk__sys_fchmod(fd, (mode_t)c->perm) != 0)
        e = ipk__errsys(-errno, "%s: fchmod %o", c->name, (unsigned)c->perm);
    else if (ipk__sys_fstat(fd, &st) != 0)
        e = ipk__errsys(-errno, "%s: fstat", c->name);
    else if ((e = ipk__sys_posix_fallocate(fd, 0, (off_t)len)) != 0) {
        struct statvfs v;
        unsigned long long avail =
            statvfs("/dev/shm", &v) == 0 ? (unsigned long long)v.f_bavail * v.f_frsize : 0;
        e = ipk__errsys(-e, "%s: allocating %zu bytes in /dev/shm (%llu free)", c->name, len,
                        avail);
    }
    if (e) {
        close(fd);
        ipk__sys_shm_unlink(ipk__shm_name(c));
        return e;
    }
    s->seg_known = 1;
    s->seg_dev = st.st_dev;
    s->seg_ino = st.st_ino;
    *fdp = fd;
    return 0;
}

/* ---- stale segments ---- */

/* Whether a ring's owner died without closing (a segment kept with keep=1 is not stale). */
static int ipk__hdr_stale(const struct ipk__shm_hdr *h, pid_t *pid)
{
    *pid = atomic_load(&h->owner_pid);
    if (atomic_load(&h->flags) & IPK__SHM_F_RELEASED)
        return 0;
    return *pid > 0 && !ipk__pid_alive(*pid, h->owner_start);
}

/* listen found the name taken: a ring whose owner died is replaced, anything else is refused. */
static int ipk__shm_taken(ipk_chan *c)
{
    int fd = ipk__sys_shm_open(ipk__shm_name(c), O_RDONLY, 0);
    struct stat st;
    int stale = 0;
    pid_t pid = 0;
    if (fd < 0 && errno == ELOOP)
        return ipk__shm_open_err(c, -ELOOP);
    /* Another user's segment, stale or not, is never replaced: it is theirs to remove. */
    int known = fd >= 0 && ipk__sys_fstat(fd, &st) == 0;
    if (known && st.st_uid != geteuid()) {
        close(fd);
        return ipk__listen_adopt(c->name, st.st_uid, st.st_mode, c->perm);
    }
    if (known && (size_t)st.st_size >= IPK__SHM_HDR) {
        void *m = ipk__sys_mmap(NULL, IPK__SHM_HDR, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            const struct ipk__shm_hdr *h = m;
            stale = atomic_load(&h->magic) == IPK__SHM_MAGIC && ipk__hdr_stale(h, &pid);
            munmap(m, IPK__SHM_HDR);
        }
    }
    if (fd >= 0)
        close(fd);
    if (stale && ipk__sys_shm_unlink(ipk__shm_name(c)) == 0)
        return 0;
    if (pid > 0)
        return ipk__err(-EEXIST, "%s: the segment exists and its owner (pid %d) is alive", c->name,
                        (int)pid);
    return ipk__err(-EEXIST, "%s: the segment exists (/dev/shm%s); remove it or dial it", c->name,
                    ipk__shm_name(c));
}

/* Creates the segment for a listener; a name taken by a stale ring of ours is taken over. */
static int ipk__shm_create_new(ipk_chan *c, size_t len, int *fdp)
{
    int r = ipk__shm_create(c, len, fdp);
    if (r == -EEXIST && (r = ipk__shm_taken(c)) == 0) /* a stale ring was removed */
        r = ipk__shm_create(c, len, fdp);
    return r == -EEXIST ? ipk__shm_taken(c) : r;
}

/* ---- ring mode ---- */

/* Attaches the ring(s) of a mapped segment and gives this end its tx and rx. */
static int ipk__shm_attach(ipk_chan *c, ipk__shm *s, int listen)
{
    s->tx = s->rx = &s->ring[0];
    const struct ipk__shm_hdr *h = s->map;
    if (!(atomic_load(&h->flags) & IPK__SHM_F_DUPLEX)) /* dial has attached it to validate */
        return s->ring[0].h ? 0 : ipk__ring_attach(&s->ring[0], s->map, s->map_len, c->name);
    /* Two halves of seg_size(capacity) bytes each; the header's capacity says how large. */
    uint64_t cap = h->capacity;
    size_t half = cap <= IPK__SHM_MAX_SIZE ? ipk__shm_seg_size(cap) : 0;
    if (half == 0 || s->map_len < 2 * half)
        return ipk__err(IPK_EPROTO,
                        "%s: corrupt header: a duplex ring of capacity %llu in a segment of %zu "
                        "bytes",
                        c->name, (unsigned long long)cap, s->map_len);
    int r = ipk__ring_attach(&s->ring[0], s->map, half, c->name);
    if (r == 0)
        r = ipk__ring_attach(&s->ring[1], (unsigned char *)s->map + half, half, c->name);
    if (r)
        return r;
    if (s->ring[1].cap != cap || s->ring[0].multi || s->ring[1].multi)
        return ipk__err(IPK_EPROTO, "%s: corrupt header: the two rings of a duplex ring differ",
                        c->name);
    int end = listen ? 0 : 1;
    s->tx = &s->ring[end];
    s->rx = &s->ring[1 - end];
    return ipk__ring_duplex(s->tx, s->rx, &((struct ipk__shm_hdr *)s->map)->mbox, end);
}

/* listen found the name taken by a ring an owner left behind (closed with keep=1, or with
 * messages nobody had received yet: the flag RELEASED, no owner). The listener adopts it when it
 * is ours and its mode is within perm (ipk__listen_adopt, as mq: and file: do), keeping what
 * waits, and owns it from then on: its close removes it once drained. Returns 1 (with no
 * message) when the segment is no such ring, so that the caller's -EEXIST stands. duplex=1 is
 * not adopted: what was sent to the old listener's end was for it alone. */
static int ipk__shm_adopt(ipk_chan *c, ipk__shm *s, size_t cap, int multi, int duplex)
{
    int fd = ipk__sys_shm_open(ipk__shm_name(c), O_RDWR, 0);
    struct stat st;
    if (fd < 0)
        return 1;
    int r = 1;
    if (ipk__sys_fstat(fd, &st) != 0 || st.st_uid != geteuid() ||
        (size_t)st.st_size < IPK__SHM_HDR) {
        close(fd);
        return 1;
    }
    void *m = ipk__sys_mmap(NULL, IPK__SHM_HDR, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
        const struct ipk__shm_hdr *h = m;
        uint32_t fl = atomic_load(&h->flags);
        if (atomic_load(&h->magic) == IPK__SHM_MAGIC && h->version == IPK__SHM_VERSION &&
            (fl & IPK__SHM_F_RELEASED) && !(fl & IPK__SHM_F_DUPLEX) &&
            atomic_load(&h->owner_pid) == 0)
            r = 0;
        munmap(m, IPK__SHM_HDR);
    }
    if (r == 0)
        r = ipk__listen_adopt(c->name, st.st_uid, st.st_mode, c->perm);
    if (r == 0)
        r = ipk__shm_map(c, s, fd, (size_t)st.st_size);
    close(fd);
    if (r != 0)
        return r;
    if ((r = ipk__ring_attach(&s->ring[0], s->map, s->map_len, c->name)) != 0)
        return r;
    struct ipk__shm_hdr *h = s->map;
    int was_multi = (atomic_load(&h->flags) & IPK__SHM_F_MULTI) != 0;
    if (ipk__opt(c, "multi") != NULL && multi != was_multi)
        return ipk__err(IPK_EOPTION,
                        "%s: multi=%d, but the ownerless ring left at the name (adopted with what "
                        "waits in it) was created with multi=%d",
                        c->name, multi, was_multi);
    if (duplex)
        return ipk__err(IPK_EOPTION,
                        "%s: duplex=1, but the ownerless ring left at the name is one-way",
                        c->name);
    if (ipk__opt(c, "size") != NULL && s->ring[0].cap != cap)
        return ipk__err(IPK_EOPTION,
                        "%s: size=%zu, but the ownerless ring left at the name holds %llu bytes "
                        "(leave size out to adopt it with what waits in it, or remove it)",
                        c->name, cap, (unsigned long long)s->ring[0].cap);
    /* Two listeners adopting at once: one wins the owner word. The start time is written before
     * RELEASED is cleared, so that nobody takes the new owner for a dead one in between. */
    int32_t none = 0, me = (int32_t)getpid();
    if (!atomic_compare_exchange_strong(&h->owner_pid, &none, me))
        return ipk__err(-EEXIST, "%s: the segment exists and its owner (pid %d) is alive", c->name,
                        (int)none);
    h->owner_start = ipk__pid_start(me);
    atomic_fetch_and(&h->flags, ~IPK__SHM_F_RELEASED);
    c->owner = 1;
    s->seg_known = 1;
    s->seg_dev = st.st_dev;
    s->seg_ino = st.st_ino;
    return ipk__shm_attach(c, s, 1);
}

static int ipk__shm_ring_opts(ipk_chan *c, ipk__shm *s)
{
    long spin;
    int r = ipk__opt_long(c, "spin", 0, 1000000000L, IPK__SHM_DEFAULT_SPIN, &spin);
    if (r == 0)
        s->ring[0].spin_ns = s->ring[1].spin_ns = spin;
    return r;
}

static int ipk__shm_ring_listen(ipk_chan *c, ipk__shm *s)
{
    size_t cap = 0;
    int multi = 0, duplex = 0, r, fd = -1;
    if ((r = ipk__shm_capacity(c, &cap)) || (r = ipk__opt_bool(c, "multi", 0, &multi)) ||
        (r = ipk__opt_bool(c, "duplex", 0, &duplex)))
        return r;
    if (multi && duplex)
        return ipk__err(IPK_EOPTION,
                        "%s: duplex=1 is a conversation of two ends; it cannot be multi=1",
                        c->name);
    size_t half = ipk__shm_seg_size(cap), len = duplex ? 2 * half : half;
    if ((r = ipk__shm_create_new(c, len, &fd)) == -EEXIST) {
        /* Keep create's message unless the name holds an ownerless ring of ours to adopt. */
        char msg[512];
        ipk__strlcpy(msg, ipk_errmsg(), sizeof msg);
        int a = ipk__shm_adopt(c, s, cap, multi, duplex);
        if (a == 1)
            ipk__err(r, "%s", msg);
        return a == 1 ? r : a;
    }
    if (r < 0)
        return r;
    c->owner = 1;
    r = ipk__shm_map(c, s, fd, len);
    close(fd);
    if (r)
        return r;
    /* The second ring first: a dialer waits for the magic of the first. */
    if (duplex && (r = ipk__shm_init((void *)((unsigned char *)s->map + half), cap, half,
                                     IPK__SHM_F_DUPLEX)) != 0)
        return r;
    uint32_t fl = (multi ? IPK__SHM_F_MULTI : 0u) | (duplex ? IPK__SHM_F_DUPLEX : 0u);
    if ((r = ipk__shm_init(s->map, cap, len, fl)) == 0)
        r = ipk__shm_attach(c, s, 1);
    return r;
}

/* dial with create=1 found no ring: a producer may come first. It makes the ring a listener
 * would (size=, multi=, perm=), then lets go of it at once - the flag RELEASED, no owner -, so
 * that the consumer's listener adopts it with what waits in it (ipk__shm_adopt) and owns it from
 * then on; this end never removes it. A one-way ring only: the ends of a duplex ring are a
 * listener's and a dialer's. */
static int ipk__shm_ring_create(ipk_chan *c, ipk__shm *s)
{
    int duplex, r = ipk__opt_bool(c, "duplex", 0, &duplex);
    if (r != 0)
        return r;
    if (duplex)
        return ipk__err(IPK_EOPTION,
                        "%s: no such segment; create=1 makes a one-way ring, not a duplex=1 one "
                        "(its listener creates that)",
                        c->name);
    if ((r = ipk__shm_ring_listen(c, s)) != 0)
        return r;
    struct ipk__shm_hdr *h = s->map;
    atomic_fetch_or(&h->flags, IPK__SHM_F_RELEASED);
    atomic_store(&h->owner_pid, 0);
    c->owner = 0;
    return 0;
}

static int ipk__shm_ring_dial(ipk_chan *c, ipk__shm *s)
{
    int fd = ipk__sys_shm_open(ipk__shm_name(c), O_RDWR, 0);
    if (fd < 0) {
        int e = errno, create = 0, r = e == ENOENT ? ipk__opt_bool(c, "create", 0, &create) : 0;
        if (r != 0)
            return r;
        if (!create)
            return ipk__shm_open_err(c, -e);
        if ((r = ipk__shm_ring_create(c, s)) != -EEXIST)
            return r;
        /* Made meanwhile by someone else (a listener, or another producer): dial that. */
        if (s->map != NULL) {
            munmap(s->map, s->map_len);
            s->map = NULL;
        }
        memset(&s->ring[0], 0, sizeof s->ring[0]);
        s->seg_known = 0;
        if ((fd = ipk__sys_shm_open(ipk__shm_name(c), O_RDWR, 0)) < 0)
            return ipk__shm_open_err(c, -errno);
    }
    /* A listener may be between shm_open and publishing the magic: give it a moment. */
    struct stat st;
    int r = 0;
    for (int tries = 0;; tries++) {
        if (ipk__sys_fstat(fd, &st) != 0) {
            r = ipk__errsys(-errno, "%s: fstat", c->name);
            break;
        }
        if ((size_t)st.st_size >= IPK__SHM_HDR) {
            if (s->map == NULL && (r = ipk__shm_map(c, s, fd, (size_t)st.st_size)) != 0)
                break;
            if (atomic_load_explicit(&((struct ipk__shm_hdr *)s->map)->magic,
                                     memory_order_acquire) == IPK__SHM_MAGIC ||
                tries >= 100)
                break;
        } else if (tries >= 100) {
            break;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    close(fd);
    if (r)
        return r;
    if (s->map == NULL)
        return ipk__err(IPK_EPROTO, "%s: segment of %lld bytes is too small for an ipckit ring",
                        c->name, (long long)st.st_size);
    /* Validates magic, version and sizes before the options are compared with the header. */
    if ((r = ipk__ring_attach(&s->ring[0], s->map, s->map_len, c->name)) != 0)
        return r;
    const struct ipk__shm_hdr *h = s->map;
    uint32_t fl = atomic_load(&h->flags);
    int multi, duplex, stale_ok, was_multi = (fl & IPK__SHM_F_MULTI) != 0,
                                 was_duplex = (fl & IPK__SHM_F_DUPLEX) != 0;
    if ((r = ipk__opt_bool(c, "multi", was_multi, &multi)) ||
        (r = ipk__opt_bool(c, "duplex", was_duplex, &duplex)) ||
        (r = ipk__opt_bool(c, "stale", 0, &stale_ok)))
        return r;
    if (multi != was_multi)
        return ipk__err(IPK_EOPTION, "%s: multi=%d, but the ring was created with multi=%d",
                        c->name, multi, was_multi);
    if (duplex != was_duplex)
        return ipk__err(IPK_EOPTION, "%s: duplex=%d, but the ring was created with duplex=%d",
                        c->name, duplex, was_duplex);
    pid_t pid;
    if (!stale_ok && ipk__hdr_stale(h, &pid))
        return ipk__err(-EOWNERDEAD,
                        "%s: stale segment: its owner (pid %d) died without closing it; dial "
                        "with stale=1 to use it anyway, or remove it (ipckit rm)",
                        c->name, (int)pid);
    /* Checked before attaching: a duplex dialer takes its end of the rings when it attaches. */
    return ipk__shm_attach(c, s, 0);
}

/* ---- segment mode (the guide's protocol) ---- */

/* The listener owns the semaphore as it owns the segment: one it creates gets exactly perm
 * (sem_open filters the mode by the umask); one that exists is used only when it is ours and no
 * more open than perm (ipk__listen_adopt), since its owner could post or take the wake-ups and
 * the listener's close removes it. glibc keeps a named semaphore in /dev/shm as sem.NAME. */
static int ipk__shm_sem_own(ipk_chan *c, ipk__shm *s, int tries)
{
    char path[NAME_MAX + 16];
    struct stat st;
    ipk__shm_path(path, sizeof path, "sem.", s->sem_name);
    s->sem = sem_open(s->sem_name, O_CREAT | O_EXCL, (mode_t)c->perm, 0);
    int made = s->sem != SEM_FAILED, r = 0;
    if (!made) {
        s->sem = NULL;
        if (errno != EEXIST)
            return ipk__errsys(-errno, "%s: sem_open %s", c->name, s->sem_name);
    }
    s->sem_own = made; /* from here on its close removes what it made */
    if (made && ipk__sys_chmod(path, (mode_t)c->perm) != 0)
        return ipk__errsys(-errno, "%s: chmod %s %04o", c->name, path, (unsigned)c->perm);
    if (ipk__sys_lstat(path, &st) != 0) {
        if (errno == ENOENT && !made && tries < 3) /* removed in between: create it after all */
            return ipk__shm_sem_own(c, s, tries + 1);
        return ipk__errsys(-errno, "%s: stat %s", c->name, path);
    }
    if (S_ISLNK(st.st_mode))
        return ipk__err(-ELOOP, "%s: %s is a symbolic link; refused, left untouched", c->name,
                        path);
    if (!made && (r = ipk__listen_adopt(path, st.st_uid, st.st_mode, c->perm)) != 0)
        return r;
    s->sem_own = s->sem_known = 1;
    s->sem_dev = st.st_dev;
    s->sem_ino = st.st_ino;
    return 0;
}

static int ipk__shm_sem_open(ipk_chan *c, ipk__shm *s, int listen)
{
    int r = listen ? ipk__shm_sem_own(c, s, 0) : 0;
    if (r != 0 || s->sem != NULL)
        return r;
    /* Like the guide's programs, both sides create the semaphore if it is not there yet, with
     * the value 0: the writer posts after writing. */
    s->sem = sem_open(s->sem_name, O_CREAT, (mode_t)c->perm, 0);
    if (s->sem == SEM_FAILED) {
        s->sem = NULL;
        return ipk__errsys(-errno, "%s: sem_open %s", c->name, s->sem_name);
    }
    return 0;
}

static int ipk__shm_seg_listen(ipk_chan *c, ipk__shm *s)
{
    size_t len;
    int fd = -1, r = ipk__opt_size(c, "size", IPK__SHM_SEGMENT_SIZE, &len);
    if (r)
        return r;
    if (len < 2 || len > IPK__SHM_MAX_SIZE)
        return ipk__err(IPK_EOPTION, "%s: size=%zu: expected 2..16g", c->name, len);
    if ((r = ipk__shm_create_new(c, len, &fd)) < 0)
        return r;
    c->owner = 1;
    r = ipk__shm_map(c, s, fd, len);
    close(fd);
    return r ? r : ipk__shm_sem_open(c, s, 1);
}

static int ipk__shm_seg_dial(ipk_chan *c, ipk__shm *s)
{
    int fd = ipk__sys_shm_open(ipk__shm_name(c), O_RDWR, 0);
    if (fd < 0)
        return ipk__shm_open_err(c, -errno);
    struct stat st;
    int r = ipk__sys_fstat(fd, &st) == 0 ? 0 : ipk__errsys(-errno, "%s: fstat", c->name);
    if (r == 0 && st.st_size < 2)
        r = ipk__err(IPK_EPROTO, "%s: segment of %lld bytes is too small", c->name,
                     (long long)st.st_size);
    if (r == 0)
        r = ipk__shm_map(c, s, fd, (size_t)st.st_size);
    close(fd);
    return r ? r : ipk__shm_sem_open(c, s, 0);
}

static int ipk__shm_seg_send(ipk_chan *c, ipk__shm *s, const void *msg, size_t len)
{
    if (len >= s->map_len)
        return ipk__err(IPK_EMSGSIZE,
                        "%s: message of %zu bytes does not fit the %zu-byte segment (text plus "
                        "NUL: at most %zu bytes)",
                        c->name, len, s->map_len, s->map_len - 1);
    const char *nul = len ? memchr(msg, '\0', len) : NULL;
    if (nul)
        return ipk__err(-EINVAL, "%s: mode=segment carries text; the message has a NUL at byte %zu",
                        c->name, (size_t)(nul - (const char *)msg));
    if (len)
        memcpy(s->map, msg, len);
    ((char *)s->map)[len] = '\0';
    if (sem_post(s->sem) != 0)
        return ipk__errsys(-errno, "%s: sem_post %s", c->name, s->sem_name);
    return 0;
}

static int ipk__sem_wait(ipk_chan *c, sem_t *sem, int64_t dl)
{
    for (;;) {
        int r;
        if (dl == IPK__DL_NOW) {
            r = sem_trywait(sem);
        } else if (dl == IPK__DL_FOREVER) {
            r = sem_wait(sem);
        } else {
            struct timespec ts = ipk__dl_ts(dl);
            r = sem_clockwait(sem, CLOCK_MONOTONIC, &ts); /* absolute: EINTR keeps the deadline */
        }
        if (r == 0)
            return 0;
        if (errno == EAGAIN)
            return -EAGAIN;
        if (errno == ETIMEDOUT)
            return IPK_ETIMEDOUT;
        if (errno != EINTR)
            return ipk__errsys(-errno, "%s: waiting on the semaphore", c->name);
    }
}

static long ipk__shm_seg_recv(ipk_chan *c, ipk__shm *s, void *buf, size_t cap, int64_t dl)
{
    int r = ipk__sem_wait(c, s->sem, dl);
    if (r)
        return r;
    size_t len = strnlen(s->map, s->map_len);
    if (len > cap) {
        c->need = len;
        sem_post(s->sem); /* leave the message for a larger buffer */
        return ipk__err(IPK_EMSGSIZE, "%s: message of %zu bytes does not fit the buffer of %zu",
                        c->name, len, cap);
    }
    memcpy(buf, s->map, len);
    return (long)len;
}

/* ---- the operations ---- */

static int ipk__shm_open(ipk_chan *c, int listen)
{
    ipk__shm *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->pw_fd = -1;
    s->pw_efd = -1;
    s->pw_pe = s->pw_pidfd = -1;
    c->tp = s;
    int r = ipk__set_name(c, "shm:%s", ipk__shm_name(c));
    if (r == 0)
        r = ipk__shm_mode(c, s);
    if (r == 0 && !s->segment)
        r = ipk__shm_ring_opts(c, s);
    if (r == 0) {
        int64_t spin = s->ring[0].spin_ns;
        if (s->segment)
            r = listen ? ipk__shm_seg_listen(c, s) : ipk__shm_seg_dial(c, s);
        else
            r = listen ? ipk__shm_ring_listen(c, s) : ipk__shm_ring_dial(c, s);
        s->ring[0].spin_ns = s->ring[1].spin_ns = spin; /* attach cleared it */
    }
    if (r != 0) {
        /* Keep the message of the failure: closing must not overwrite it. */
        char msg[512];
        ipk__strlcpy(msg, ipk_errmsg(), sizeof msg);
        c->tr->close(c);
        ipk__err(r, "%s", msg);
    }
    return r;
}

static int ipk__shm_listen(ipk_chan *c)
{
    return ipk__shm_open(c, 1);
}

static int ipk__shm_dial(ipk_chan *c)
{
    return ipk__shm_open(c, 0);
}

/* Messages in the segment that a later process could still receive: records in the ring (a
 * later dialer consumes them), or with mode=segment a text posted and not yet read. duplex=1:
 * records this end sent that the other end has not taken (a later dialer takes over its end);
 * not what was sent to this end, which nobody else may receive, nor the mailbox line, whose
 * state cannot tell a message taken from one waiting (and an attached peer reads it from its
 * mapping after the name is gone). */
static long ipk__shm_undelivered(const ipk_chan *c)
{
    const ipk__shm *s = c->tp;
    if (s->segment) {
        int v = 0;
        if (s->sem == NULL || sem_getvalue(s->sem, &v) != 0)
            return -EINVAL;
        return v > 0;
    }
    if (s->tx == NULL || s->tx->h == NULL)
        return 0;
    ipk__ring records = *s->tx; /* the ring's records only: the mailbox is left out above */
    records.mb = NULL;
    return ipk__ring_pending(&records);
}

static int ipk__shm_close(ipk_chan *c)
{
    ipk__shm *s = c->tp;
    if (s == NULL)
        return 0;
    int r = 0;
    for (int i = 0; i < 2 && !s->segment; i++)
        ipk__ring_detach(&s->ring[i]);
    if (c->owner && c->keep && !s->segment && s->ring[0].h) {
        atomic_fetch_or(&s->ring[0].h->flags, IPK__SHM_F_RELEASED);
        atomic_store(&s->ring[0].h->owner_pid, 0);
    }
    if (c->owner && !c->keep) {
        /* Only what this listener made: a name removed and taken by someone else since is
         * theirs. */
        char path[NAME_MAX + 16];
        int ours =
            !s->seg_known
                ? 1
                : ipk__still_ours(c->name, ipk__shm_path(path, sizeof path, "", ipk__shm_name(c)),
                                  s->seg_dev, s->seg_ino);
        if (ours < 0)
            r = ours;
        else if (ours && ipk__sys_shm_unlink(ipk__shm_name(c)) != 0 && errno != ENOENT)
            r = ipk__errsys(-errno, "%s: shm_unlink", c->name);
        ours = !s->sem_known
                   ? s->sem_own
                   : ipk__still_ours(c->name, ipk__shm_path(path, sizeof path, "sem.", s->sem_name),
                                     s->sem_dev, s->sem_ino);
        if (ours < 0 && r == 0)
            r = ours;
        else if (s->segment && ours > 0 && sem_unlink(s->sem_name) != 0 && errno != ENOENT &&
                 r == 0)
            r = ipk__errsys(-errno, "%s: sem_unlink %s", c->name, s->sem_name);
    }
    if (s->sem)
        sem_close(s->sem);
    if (s->map)
        munmap(s->map, s->map_len);
    free(s);
    c->tp = NULL;
    return r;
}

static int ipk__shm_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                         int64_t dl)
{
    (void)mi;
    ipk__shm *s = c->tp;
    if (s->segment)
        return ipk__shm_seg_send(c, s, msg, len);
    return ipk__ring_send(s->tx, msg, len, dl);
}

static long ipk__shm_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl)
{
    ipk__shm *s = c->tp;
    if (s->segment) { /* one slot: one message at a time */
        int r = ipk__shm_seg_send(c, s, msgs[0].base, msgs[0].len);
        return r ? r : 1;
    }
    return ipk__ring_sendv(s->tx, msgs, n, dl);
}

static long ipk__shm_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    (void)mi;
    ipk__shm *s = c->tp;
    if (s->segment)
        return ipk__shm_seg_recv(c, s, buf, cap, dl);
    return ipk__ring_recv(s->rx, buf, cap, &c->need, dl);
}

static int ipk__shm_fd(const ipk_chan *c)
{
    return ipk__err(IPK_ENOTSUP,
                    "%s: shm: has no pollable descriptor of its own (it waits on a futex); put "
                    "it in an ipk_poller, whose descriptor is",
                    c->name);
}

static int ipk__shm_pending(const ipk_chan *c)
{
    const ipk__shm *s = c->tp;
    return s->segment ? 0 : ipk__ring_pending(s->rx);
}

static int ipk__shm_zc(ipk_chan *c, const char *op)
{
    const ipk__shm *s = c->tp;
    if (s->segment)
        return ipk__err(IPK_ENOTSUP, "%s: %s: zero-copy needs the ring (mode=ring)", c->name, op);
    return 0;
}

static int ipk__shm_reserve(ipk_chan *c, void **p, size_t len, int64_t dl)
{
    int r = ipk__shm_zc(c, "reserve");
    return r ? r : ipk__ring_reserve(((ipk__shm *)c->tp)->tx, p, len, dl);
}

static int ipk__shm_commit(ipk_chan *c, size_t len)
{
    int r = ipk__shm_zc(c, "commit");
    return r ? r : ipk__ring_commit(((ipk__shm *)c->tp)->tx, len);
}

static long ipk__shm_peek(ipk_chan *c, const void **p, int64_t dl)
{
    int r = ipk__shm_zc(c, "peek");
    return r ? r : ipk__ring_peek(((ipk__shm *)c->tp)->rx, p, dl);
}

static int ipk__shm_release(ipk_chan *c)
{
    int r = ipk__shm_zc(c, "release");
    return r ? r : ipk__ring_release(((ipk__shm *)c->tp)->rx);
}

/* ---- info ---- */

#define IPK__PUT(...)                                                                              \
    do {                                                                                           \
        int k_ = snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__);          \
        if (k_ > 0)                                                                                \
            n += (size_t)k_;                                                                       \
    } while (0)

static const char *ipk__shm_end_name(uint32_t st)
{
    return (st & 1) ? "listener" : "dialer"; /* BUSY(0)=1, FULL(0)=3 */
}

/* duplex=1: both rings and the mailbox; h1 is the second header (NULL: not mapped). */
static size_t ipk__shm_info_duplex(const struct ipk__shm_hdr *h, const struct ipk__shm_hdr *h1,
                                   char *buf, size_t cap, size_t n)
{
    const struct ipk__shm_hdr *r[2] = {h, h1};
    for (int i = 0; i < 2; i++) {
        if (r[i] == NULL) {
            IPK__PUT("duplex: %s: second ring header not readable\n",
                     i ? "dialer -> listener" : "listener -> dialer");
            continue;
        }
        uint64_t hd = atomic_load(&r[i]->head), tl = atomic_load(&r[i]->tail);
        IPK__PUT("duplex: %s ring: head %llu, tail %llu: %llu B queued; %s attached: %s; "
                 "asleep: reader %u, writer %u\n",
                 i ? "dialer -> listener" : "listener -> dialer", (unsigned long long)hd,
                 (unsigned long long)tl, (unsigned long long)(hd - tl), i ? "dialer" : "listener",
                 atomic_load(&r[i]->nprod) ? "yes" : "no",
                 IPK__SLEEPERS(atomic_load(&r[i]->cons_sleepers)),
                 IPK__SLEEPERS(atomic_load(&r[i]->prod_sleepers)));
    }
    uint32_t st = atomic_load(&h->mbox.state);
    if (st == IPK__MB_EMPTY)
        IPK__PUT("mailbox: empty (messages up to %d B ride it)\n", IPK__SHM_MBOX_MAX);
    else if (st == IPK__MB_BUSY(0) || st == IPK__MB_BUSY(1))
        IPK__PUT("mailbox: being written by the %s\n", ipk__shm_end_name(st));
    else if (st == IPK__MB_FULL(0) || st == IPK__MB_FULL(1))
        IPK__PUT("mailbox: a message of %u B from the %s (received, or waiting to be)\n",
                 h->mbox.len, ipk__shm_end_name(st));
    else
        IPK__PUT("mailbox: corrupt state %u\n", st);
    return n;
}

static size_t ipk__shm_info_ring(const struct ipk__shm_hdr *h, const struct ipk__shm_hdr *h1,
                                 char *buf, size_t cap, size_t n)
{
    uint64_t hd = atomic_load(&h->head), tl = atomic_load(&h->tail);
    uint32_t fl = atomic_load(&h->flags);
    IPK__PUT("layout: ipckit ring version %u; header %d B, data %llu B (largest message %llu B); "
             "multi=%d duplex=%d\n",
             h->version, IPK__SHM_HDR, (unsigned long long)h->capacity,
             (unsigned long long)(h->capacity - 2 * IPK__SHM_RECHDR), (fl & IPK__SHM_F_MULTI) != 0,
             (fl & IPK__SHM_F_DUPLEX) != 0);
    if (fl & IPK__SHM_F_DUPLEX)
        n = ipk__shm_info_duplex(h, h1, buf, cap, n);
    else
        IPK__PUT("indices: head %llu, tail %llu: %llu B queued\n", (unsigned long long)hd,
                 (unsigned long long)tl, (unsigned long long)(hd - tl));
    pid_t pid;
    int stale = ipk__hdr_stale(h, &pid);
    if (fl & IPK__SHM_F_RELEASED)
        IPK__PUT("owner: none (the owner closed it with keep=1)\n");
    else
        IPK__PUT("owner: pid %d, %s\n", (int)pid,
                 stale ? "DEAD: stale segment (dial needs stale=1; remove it with ipckit rm)"
                       : "alive");
    if (!(fl & IPK__SHM_F_DUPLEX)) /* duplex: per direction above */
        IPK__PUT("producers attached: %u; consumers/producers asleep: %u/%u; mutex recoveries: "
                 "%u\n",
                 atomic_load(&h->nprod), IPK__SLEEPERS(atomic_load(&h->cons_sleepers)),
                 IPK__SLEEPERS(atomic_load(&h->prod_sleepers)), atomic_load(&h->recovered));
    if (fl & IPK__SHM_F_MULTI) { /* who holds the locks, and how (ring.c, "locks") */
        const struct ipk__shm_lock *lk[2] = {&h->plk, &h->clk};
        char who[2][96];
        for (int k = 0; k < 2; k++) {
            uint32_t w = atomic_load(&lk[k]->word);
            if (w == 0)
                snprintf(who[k], sizeof who[k], "free");
            else
                snprintf(who[k], sizeof who[k], "pid %u%s", (unsigned)(w & IPK__LK_PID),
                         !(w & IPK__LK_BIASED)       ? ""
                         : atomic_load(&lk[k]->busy) ? " (biased, inside)"
                                                     : " (biased)");
            if (atomic_load(&lk[k]->revoke))
                snprintf(who[k] + strlen(who[k]), sizeof who[k] - strlen(who[k]), ", bias revoked");
        }
        IPK__PUT("locks: producers %s; consumers %s\n", who[0], who[1]);
    } else { /* SPSC: who holds the producer and consumer claims */
        const struct ipk__shm_hdr *r[2] = {h, (fl & IPK__SHM_F_DUPLEX) ? h1 : NULL};
        for (int i = 0; i < 2; i++) {
            if (r[i] == NULL)
                continue;
            char who[2][64];
            int32_t pid2[2] = {atomic_load(&r[i]->prod_pid), atomic_load(&r[i]->cons_pid)};
            for (int k = 0; k < 2; k++)
                if (pid2[k] == 0)
                    snprintf(who[k], sizeof who[k], "none");
                else
                    snprintf(who[k], sizeof who[k], "pid %d (%s)", (int)pid2[k],
                             ipk__pid_alive(pid2[k], 0) ? "alive" : "DEAD: killed without closing");
            IPK__PUT("%sclaims: producer %s, consumer %s\n",
                     !(fl & IPK__SHM_F_DUPLEX) ? ""
                     : i                       ? "dialer -> listener "
                                               : "listener -> dialer ",
                     who[0], who[1]);
        }
    }
    IPK__PUT("publish fence: %s\n",
             (fl & IPK__SHM_F_FENCE) ? "seq_cst fence" : "none (membarrier)");
    return n;
}

static long ipk__shm_info(const ipk__addr *a, char *buf, size_t cap)
{
    size_t n = 0;
    IPK__PUT("shm: POSIX shared-memory ring (variable-length records; SPSC lock-free, multi=1 "
             "biased locks; futex waits; zero-copy); duplex=1: a listener and one dialer "
             "talking both ways (two rings and a mailbox line); mode=segment&sem=NAME: the "
             "guide's segment + named semaphore\n"
             "options: size (ring data bytes, power of two, default 1m), multi, duplex, mode, "
             "sem, perm, keep, spin (max spin ns, default %ld), stale (dial a segment whose "
             "owner died)\n"
             "no pollable descriptor (ipk_fd: not supported)\n",
             IPK__SHM_DEFAULT_SPIN);
    int fd = ipk__sys_shm_open(a->u.posix.name, O_RDONLY, 0);
    struct stat st;
    if (fd < 0) {
        IPK__PUT("segment /dev/shm%s: %s\n", a->u.posix.name, strerror(errno));
    } else if (ipk__sys_fstat(fd, &st) == 0) {
        IPK__PUT("segment /dev/shm%s: %lld bytes, mode %04o, uid %u\n", a->u.posix.name,
                 (long long)st.st_size, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        void *m = (size_t)st.st_size >= IPK__SHM_HDR
                      ? ipk__sys_mmap(NULL, IPK__SHM_HDR, PROT_READ, MAP_SHARED, fd, 0)
                      : MAP_FAILED;
        const struct ipk__shm_hdr *h = m;
        if (m != MAP_FAILED && atomic_load(&h->magic) == IPK__SHM_MAGIC) {
            /* duplex=1: the second header starts half-way, at a page boundary. */
            void *m1 = MAP_FAILED;
            size_t half = h->capacity <= IPK__SHM_MAX_SIZE ? ipk__shm_seg_size(h->capacity) : 0;
            if ((atomic_load(&h->flags) & IPK__SHM_F_DUPLEX) && half &&
                (size_t)st.st_size >= 2 * half)
                m1 = ipk__sys_mmap(NULL, IPK__SHM_HDR, PROT_READ, MAP_SHARED, fd, (off_t)half);
            n = ipk__shm_info_ring(h, m1 == MAP_FAILED ? NULL : m1, buf, cap, n);
            if (m1 != MAP_FAILED)
                munmap(m1, IPK__SHM_HDR);
        } else {
            IPK__PUT("layout: not an ipckit ring (a plain segment, as mode=segment uses)\n");
        }
        if (m != MAP_FAILED)
            munmap(m, IPK__SHM_HDR);
    }
    if (fd >= 0)
        close(fd);
    struct statvfs v;
    if (statvfs("/dev/shm", &v) == 0)
        IPK__PUT("limits: /dev/shm %llu of %llu bytes free\n",
                 (unsigned long long)v.f_bavail * v.f_frsize,
                 (unsigned long long)v.f_blocks * v.f_frsize);
    return (long)n;
}

/* ---- the segments on this machine (ipk_objects_scan) ---- */

/* Counts the committed messages of one ring from its header, as a reader of a segment that
 * another process writes: every index and length is checked against the ring before use, and
 * the walk ends after one lap. 0, or -1 when the ring does not add up. */
static int ipk__shm_obj_ring(const struct ipk__shm_hdr *h, const unsigned char *data, size_t room,
                             long long *msgs, long long *bytes)
{
    uint64_t cap = h->capacity, head = atomic_load(&h->head), t = atomic_load(&h->tail);
    if (cap < 2 * IPK__SHM_RECHDR || (cap & (cap - 1)) || cap > room || head - t > cap)
        return -1;
    for (uint64_t steps = 0; t < head && steps < cap / IPK__SHM_RECHDR; steps++) {
        uint64_t pos = t & (cap - 1);
        uint32_t len, tag;
        if ((t & 7) != 0 || pos > cap - IPK__SHM_RECHDR)
            return -1;
        memcpy(&len, data + pos, 4);
        tag = atomic_load((const _Atomic uint32_t *)(const void *)(data + pos + 4));
        uint64_t size = (IPK__SHM_RECHDR + (uint64_t)len + 7) & ~(uint64_t)7;
        if (size > cap - pos || (tag != IPK__SHM_TAG_DATA && tag != IPK__SHM_TAG_PAD))
            return -1;
        if (tag == IPK__SHM_TAG_DATA) {
            ++*msgs;
            *bytes += len;
        }
        t += size;
    }
    return 0;
}

/* Reads a segment: its identity, and for an ipckit ring what waits in it (both rings and the
 * mailbox of duplex=1). *ring: 1 when it is one. */
static int ipk__shm_obj_read(const char *name, struct stat *st, int *ring, long long *msgs,
                             long long *bytes)
{
    *ring = 0;
    *msgs = *bytes = 0;
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r = fstat(fd, st) == 0 ? 0 : -errno;
    size_t len = r == 0 ? (size_t)st->st_size : 0;
    const unsigned char *m = len >= IPK__SHM_HDR && len <= IPK__SHM_MAX_SIZE * 2 + 2 * IPK__SHM_HDR
                                 ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)
                                 : MAP_FAILED;
    close(fd);
    const struct ipk__shm_hdr *h = (const void *)m;
    if (m == MAP_FAILED || atomic_load(&h->magic) != IPK__SHM_MAGIC) {
        if (m != MAP_FAILED)
            munmap((void *)m, len);
        return r;
    }
    *ring = 1;
    size_t half = len;
    if (atomic_load(&h->flags) & IPK__SHM_F_DUPLEX) {
        half = h->capacity <= IPK__SHM_MAX_SIZE ? ipk__shm_seg_size(h->capacity) : 0;
        uint32_t mb = atomic_load(&h->mbox.state);
        if (mb == IPK__MB_FULL(0) || mb == IPK__MB_FULL(1)) {
            ++*msgs;
            *bytes += h->mbox.len;
        }
    }
    for (size_t i = 0; i < 2 && r == 0; i++) {
        if (i == 1 && half == len)
            break;
        if (half < IPK__SHM_HDR || (i + 1) * half > len ||
            ipk__shm_obj_ring((const void *)(m + i * half), m + i * half + IPK__SHM_HDR,
                              half - IPK__SHM_HDR, msgs, bytes) != 0)
            *msgs = *bytes = -1, r = 1; /* a ring that does not add up: depth unknown */
    }
    munmap((void *)m, len);
    return r > 0 ? 0 : r;
}

static int ipk__shm_obj_remove(const ipk__obj *o, unsigned flags)
{
    struct stat st;
    int ring;
    long long msgs, bytes;
    int r = ipk__shm_obj_read(o->name, &st, &ring, &msgs, &bytes);
    if (r != 0)
        return ipk__errsys(r, "%s", o->url);
    if (st.st_ino != o->ino || st.st_dev != o->dev)
        return ipk__err(-ESTALE, "%s: replaced since it was inspected; left alone", o->url);
    if (!(flags & IPK_OBJ_FORCE) && (msgs > 0 || bytes > 0))
        return ipk__err(-ENOTEMPTY, "%s: %lld messages wait in it now; not removed", o->url, msgs);
    return shm_unlink(o->name) == 0 ? 0 : ipk__errsys(-errno, "%s: shm_unlink", o->url);
}

static const ipk__objkind ipk__shm_kind = {"posix-shm", 0, NULL, ipk__shm_obj_remove};
static const ipk__objkind *const ipk__shm_kinds[] = {&ipk__shm_kind, NULL};

static int ipk__shm_obj_add(ipk__objset *s, const char *name)
{
    struct stat st;
    int ring;
    long long msgs, bytes;
    int r = ipk__shm_obj_read(name, &st, &ring, &msgs, &bytes);
    if (r != 0)
        return r == -ENOENT ? r : ipk__errsys(r, "shm:%s", name);
    if (!S_ISREG(st.st_mode))
        return -ENOENT;
    ipk__obj *o = ipk__obj_add(s, &ipk__shm_kind, name, "shm:%s", name);
    if (o == NULL)
        return -ENOMEM;
    ipk__obj_stat(o, &st);
    o->size = st.st_size;
    if (ring) { /* a ring holds messages; a plain segment (mode=segment) is only memory */
        o->carries = 1;
        o->msgs = msgs;
        o->bytes = bytes;
    }
    return 0;
}

/* Every segment in /dev/shm but the named semaphores (sem.NAME, the core's). */
static int ipk__shm_objects(ipk__objset *s)
{
    DIR *d = opendir("/dev/shm");
    if (d == NULL) {
        ipk__obj_note(s, "/dev/shm: %s: POSIX shared memory not listed", strerror(errno));
        return 0;
    }
    struct dirent *e;
    int r = 0;
    while (r != -ENOMEM && (e = readdir(d)) != NULL) {
        char name[NAME_MAX + 2];
        if (e->d_name[0] != '.' && strncmp(e->d_name, "sem.", 4) != 0) {
            snprintf(name, sizeof name, "/%s", e->d_name);
            r = ipk__shm_obj_add(s, name);
        }
    }
    closedir(d);
    return r == -ENOMEM ? r : 0;
}

static int ipk__shm_resolve(const ipk_chan *c, ipk__objset *s)
{
    return ipk__shm_obj_add(s, ipk__shm_name(c));
}

/* ---- pollers ---- */

/* The rings this end waits on for interest: rx for records, tx for space. */
static ipk__ring *ipk__shm_role_ring(ipk__shm *s, unsigned role)
{
    return role == IPK__PW_RECORDS ? s->rx : s->tx;
}

static unsigned ipk__shm_roles(unsigned interest)
{
    return ((interest & IPK_POLLIN) ? IPK__PW_RECORDS : 0) |
           ((interest & IPK_POLLOUT) ? IPK__PW_SPACE : 0);
}

static void ipk__shm_poll_end(ipk_chan *c)
{
    ipk__shm *s = c->tp;
    if (s == NULL || s->pw_fd < 0)
        return;
    ipk__ring_poll_detach(s->rx);
    if (s->tx != s->rx)
        ipk__ring_poll_detach(s->tx);
    close(s->pw_fd);
    s->pw_fd = -1;
    if (s->pw_efd >= 0)
        close(s->pw_efd);
    s->pw_efd = -1;
    if (s->pw_pidfd >= 0)
        close(s->pw_pidfd);
    if (s->pw_pe >= 0)
        close(s->pw_pe);
    s->pw_pe = s->pw_pidfd = -1;
    s->pw_peer = 0;
    s->pw_dead = 0;
}

/* duplex=1: watches the process at the other end (the producer of the ring this end receives
 * from), which a new dialer may replace: its pidfd goes into this end's own epoll set, which the
 * poller watches, so that the death of the other end wakes the poller. System calls only when the
 * other end changed. Without pidfd_open (Linux < 5.3) the death is noticed by the next receive,
 * as before. */
static void ipk__shm_pw_peer(ipk__shm *s)
{
    if (s->pw_pe < 0)
        return;
    int32_t peer = atomic_load_explicit(&s->rx->h->prod_pid, memory_order_acquire);
    if (peer == s->pw_peer)
        return;
    if (s->pw_pidfd >= 0)
        close(s->pw_pidfd); /* which takes it out of pw_pe */
    s->pw_pidfd = -1;
    s->pw_peer = peer;
    s->pw_dead = 0;
    if (peer <= 0)
        return;
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)peer, 0);
    if (fd < 0) {
        s->pw_dead = errno == ESRCH;
        return;
    }
    struct epoll_event e = {.events = EPOLLIN};
    if (epoll_ctl(s->pw_pe, EPOLL_CTL_ADD, fd, &e) != 0) {
        close(fd);
        return;
    }
    s->pw_pidfd = fd;
#endif
}

/* Whether the other end died (its pidfd is readable), looked at only when nothing else is
 * ready: one poll() on the rare wake-up that found nothing. */
static int ipk__shm_pw_gone(ipk__shm *s)
{
    if (s->pw_pe < 0)
        return 0;
    if (atomic_load_explicit(&s->rx->h->prod_pid, memory_order_acquire) != s->pw_peer)
        ipk__shm_pw_peer(s); /* another end now: watch that one */
    if (!s->pw_dead && s->pw_pidfd >= 0) {
        struct pollfd p = {.fd = s->pw_pidfd, .events = POLLIN};
        s->pw_dead = poll(&p, 1, 0) == 1;
    }
    return s->pw_dead;
}

/* Binds this end's wake-up socket to "ipk-shm-poll-PID-ID" (abstract: it vanishes with the
 * process) and names it in the rings' wake-up lines; makes the eventfd that publishers of our
 * own user are handed when they ask (see ipk__shm_pw_answer). Both are watched. */
static int ipk__shm_poll_src(ipk_chan *c, unsigned interest, ipk__pollsrc *src)
{
    ipk__shm *s = c->tp;
    if (s->segment) { /* a semaphore tells nothing to a poller: look on a timer */
        src->flags = IPK__PS_CHECK | IPK__PS_TIMED;
        return 0;
    }
    if (s->pw_fd < 0) {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return ipk__errsys(-errno, "%s: poller: socket", c->name);
        int on = 1; /* the requests' credentials: only our own user is handed the eventfd */
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
            int e = -errno;
            close(fd);
            return ipk__errsys(e, "%s: poller: SO_PASSCRED on the wake-up socket", c->name);
        }
        uint32_t id = 0;
        int r = -EADDRINUSE;
        for (int tries = 0; tries < 8 && r == -EADDRINUSE; tries++) {
            id = (uint32_t)(ipk__now() ^ ((uint64_t)(uintptr_t)s >> 4)) + (uint32_t)tries * 7919u;
            struct sockaddr_un a = {.sun_family = AF_UNIX};
            int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "ipk-shm-poll-%d-%u",
                             (int)getpid(), (unsigned)id);
            r = bind(fd, (struct sockaddr *)&a,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) == 0
                    ? 0
                    : -errno;
        }
        if (r != 0) {
            close(fd);
            return ipk__errsys(r, "%s: poller: bind of the wake-up socket", c->name);
        }
        s->pw_fd = fd;
        if ((s->pw_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
            r = -errno;
            ipk__shm_poll_end(c);
            return ipk__errsys(r, "%s: poller: eventfd", c->name);
        }
        if ((r = ipk__ring_poll_attach(s->rx, id)) != 0 ||
            (s->tx != s->rx && (r = ipk__ring_poll_attach(s->tx, id)) != 0)) {
            ipk__shm_poll_end(c);
            return r;
        }
    }
    (void)interest;
    src->fd[0] = s->pw_fd;
    src->ev[0] = EPOLLIN;
    src->fd[1] = s->pw_efd;
    src->ev[1] = EPOLLIN;
    if (s->rx != s->tx && s->pw_pe < 0) { /* duplex=1: the other end's death is news */
        if ((s->pw_pe = epoll_create1(EPOLL_CLOEXEC)) < 0) {
            int e = -errno;
            ipk__shm_poll_end(c);
            return ipk__errsys(e, "%s: poller: epoll_create1", c->name);
        }
        ipk__shm_pw_peer(s);
    }
    src->fd[2] = s->pw_pe;
    src->ev[2] = EPOLLIN;
    src->flags = IPK__PS_CHECK;
    return 0;
}

/* Answers a publisher that asked for the eventfd (the byte IPK__PW_ASK from a named socket)
 * with it, when the request came from our own user: such a process could stop us with a signal
 * anyway, so holding our eventfd (and so being able to drain it or clear its O_NONBLOCK) gives
 * it nothing new. Everyone else keeps sending datagrams. */
static void ipk__shm_pw_answer(ipk__shm *s, const struct msghdr *m, const char *byte)
{
    const size_t off = offsetof(struct sockaddr_un, sun_path);
    if (*byte != IPK__PW_ASK || m->msg_namelen <= off + 1)
        return;
    const struct cmsghdr *ch = CMSG_FIRSTHDR(m);
    struct ucred cr;
    if (ch == NULL || ch->cmsg_level != SOL_SOCKET || ch->cmsg_type != SCM_CREDENTIALS ||
        ch->cmsg_len < CMSG_LEN(sizeof cr))
        return;
    memcpy(&cr, CMSG_DATA(ch), sizeof cr);
    if (cr.uid != getuid())
        return;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    char one = IPK__PW_ASK;
    struct iovec iov = {.iov_base = &one, .iov_len = 1};
    struct msghdr a = {.msg_name = m->msg_name,
                       .msg_namelen = m->msg_namelen,
                       .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = cm.buf,
                       .msg_controllen = sizeof cm.buf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&a);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &s->pw_efd, sizeof(int));
    (void)sendmsg(s->pw_fd, &a, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* After a sleep: the eventfd's count, and the wake-up datagrams (answering requests), up to 16
 * datagrams per recvmmsg, which stops at the first empty read. When the eventfd held a count the
 * socket is left for a later wake-up (one system call less on the common path): a datagram left
 * there keeps the socket readable, so the next wait returns at once and drains it, and every
 * 16th such wake-up drains it anyway, so that eventfd writes cannot keep it from being read. */
static void ipk__shm_pw_drain(ipk__shm *s)
{
    uint64_t v;
    if (read(s->pw_efd, &v, sizeof v) == (ssize_t)sizeof v && (++s->pw_skips & 15) != 0)
        return;
    enum { N = 16 };
    char junk[N];
    struct iovec iov[N];
    struct mmsghdr mm[N];
    struct sockaddr_un from[N];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } cm[N];
    int got;
    do {
        memset(mm, 0, sizeof mm);
        for (int i = 0; i < N; i++) {
            iov[i] = (struct iovec){.iov_base = &junk[i], .iov_len = 1};
            mm[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                            .msg_namelen = sizeof from[i],
                                            .msg_iov = &iov[i],
                                            .msg_iovlen = 1,
                                            .msg_control = cm[i].buf,
                                            .msg_controllen = sizeof cm[i].buf};
        }
        got = recvmmsg(s->pw_fd, mm, N, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
        for (int i = 0; i < got; i++)
            if (mm[i].msg_len == 1)
                ipk__shm_pw_answer(s, &mm[i].msg_hdr, &junk[i]);
    } while (got == N);
}

static int ipk__shm_poll_check(ipk_chan *c, unsigned interest, int op)
{
    ipk__shm *s = c->tp;
    if (s->segment) {
        int v = 0;
        if ((interest & IPK_POLLIN) && sem_getvalue(s->sem, &v) != 0)
            return ipk__errsys(-errno, "%s: sem_getvalue %s", c->name, s->sem_name);
        return (int)((v > 0 ? IPK_POLLIN : 0) | (interest & IPK_POLLOUT));
    }
    unsigned roles = ipk__shm_roles(interest), ready = 0;
    if (op == IPK__PC_ARM) {
        ipk__shm_pw_peer(s);
        if (s->pw_dead) /* already gone (no pidfd to wake us): look now instead */
            return -EPIPE;
        for (unsigned b = IPK__PW_RECORDS; b <= IPK__PW_SPACE; b <<= 1)
            if ((roles & b) && ipk__ring_poll_arm(ipk__shm_role_ring(s, b), b) != 0)
                ready |= b;
        if (ready) { /* not going to sleep after all */
            for (unsigned b = IPK__PW_RECORDS; b <= IPK__PW_SPACE; b <<= 1)
                if (roles & b)
                    ipk__ring_poll_disarm(ipk__shm_role_ring(s, b), b);
        }
    } else {
        if (op == IPK__PC_DISARM) {
            for (unsigned b = IPK__PW_RECORDS; b <= IPK__PW_SPACE; b <<= 1)
                if (roles & b)
                    ipk__ring_poll_disarm(ipk__shm_role_ring(s, b), b);
            ipk__shm_pw_drain(s);
        }
        for (unsigned b = IPK__PW_RECORDS; b <= IPK__PW_SPACE; b <<= 1)
            if ((roles & b) && ipk__ring_poll_ready(ipk__shm_role_ring(s, b), b))
                ready |= b;
    }
    if (op != IPK__PC_ARM && ready == 0 &&
        (op == IPK__PC_DISARM ? ipk__shm_pw_gone(s)
                              : s->pw_dead && s->pw_peer == atomic_load(&s->rx->h->prod_pid)))
        return ipk__err(-EPIPE, "%s: the other end (pid %d) died without closing", c->name,
                        (int)s->pw_peer);
    return (int)(((ready & IPK__PW_RECORDS) ? IPK_POLLIN : 0) |
                 ((ready & IPK__PW_SPACE) ? IPK_POLLOUT : 0));
}

const ipk__transport ipk__tr_shm = {
    .scheme = "shm",
    .parse = ipk__addr_posix_name,
    .flags = IPK_SCHEME_QUEUE | IPK__TF_EOF_WAITS,
    .usage = "shm:/NAME",
    .keys = ipk__shm_keys,
    .summary = "POSIX shared-memory ring",
    .listen = ipk__shm_listen,
    .dial = ipk__shm_dial,
    .send = ipk__shm_send,
    .sendv = ipk__shm_sendv,
    .recv = ipk__shm_recv,
    .fd = ipk__shm_fd,
    .pending = ipk__shm_pending,
    .undelivered = ipk__shm_undelivered,
    .close = ipk__shm_close,
    .info = ipk__shm_info,
    .reserve = ipk__shm_reserve,
    .commit = ipk__shm_commit,
    .peek = ipk__shm_peek,
    .release = ipk__shm_release,
    .kinds = ipk__shm_kinds,
    .objects = ipk__shm_objects,
    .resolve = ipk__shm_resolve,
    .poll_src = ipk__shm_poll_src,
    .poll_check = ipk__shm_poll_check,
    .poll_end = ipk__shm_poll_end,
};
