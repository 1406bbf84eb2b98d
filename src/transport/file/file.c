/*
 * file.c - the file: transport: a shared regular file guarded by record locks.
 *
 * mode=log (default): a durable append-only log of framed records. The file starts with a
 * 16-byte file header; each record is a 16-byte header {magic, length, CRC32C of the payload,
 * commit word} and the payload, little-endian. A writer takes an exclusive open-file-description
 * lock on [tail, end of all offsets), finds the true tail, repairs a torn tail left by a writer
 * that died, writes header (uncommitted) and payload, then the commit word. Committed records
 * never change, so headers are walked without a lock; each reader keeps its own offset, holds a
 * shared lock only on the record whose payload it is reading, and waits for more with inotify.
 *
 * mode=whole: the guide's producer/consumer. send replaces the whole file under an exclusive
 * lock on the whole file, recv reads it whole under a shared one. OFD locks conflict with
 * classic fcntl() locks of other processes exactly as classic ones do, so programs written the
 * guide's way interoperate; unlike classic locks they are not dropped when the process closes
 * another descriptor of the file, and two channels in one process exclude each other.
 *
 * docs/semantics/file.md describes the format, the lock protocol and the rules for torn records.
 */
#include "ipk.h"
#include "transport.h"

#include <endian.h>
#include <errno.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define FL_FILE_HDR  16 /* "IPKFLOG" + format version byte + 8 reserved zero bytes */
#define FL_REC_HDR   16
#define FL_REC_MAGIC 0x524b5049u /* "IPKR" on disk */
static const unsigned char fl_file_magic[8] = {'I', 'P', 'K', 'F', 'L', 'O', 'G', 1};

/* Timed lock waits poll F_OFD_SETLK (F_OFD_SETLKW cannot time out and the library may not
 * install a signal handler to interrupt it): naps double from 50 us to 10 ms. */
#define FL_NAP_MIN_NS 50000
#define FL_NAP_MAX_NS 10000000

/* Test hook (tests only): called with IPK__FH_* at fixed points so a test can stop or kill a
 * sender there. 1: a whole-mode send holds its lock; 2: an append has written half a record;
 * 3: an append has written all of its record but the commit word. */
void (*ipk__file_hook)(int point);
#define IPK__FH_LOCKED      1
#define IPK__FH_TORN        2
#define IPK__FH_UNCOMMITTED 3

typedef struct fl {
    int fd, ifd;
    int whole, fsync, from_end, created, readonly;
    off_t rd;  /* reader: offset of the next record */
    off_t wr;  /* writer: committed end known so far; 0 until the file header was checked */
    off_t cut; /* reader: a committed record cut short was reported at this offset (0: none) */
    int dirty; /* whole: the file changed since this channel last read it */
    rlim_t fsize_max;
    dev_t dev; /* the file this channel opened (ident: known), to remove only that one */
    ino_t ino;
    int ident;
} fl;

/* ---- CRC32C (Castagnoli), slicing by 8 ---- */

static uint32_t fl_crc_tab[8][256];
static pthread_once_t fl_crc_once = PTHREAD_ONCE_INIT;

static void fl_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        fl_crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            fl_crc_tab[t][i] =
                (fl_crc_tab[t - 1][i] >> 8) ^ fl_crc_tab[0][fl_crc_tab[t - 1][i] & 0xff];
}

static uint32_t fl_crc32c(const void *data, size_t n)
{
    pthread_once(&fl_crc_once, fl_crc_init);
    const unsigned char *p = data;
    uint32_t c = ~0u;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w = le64toh(w);
        uint32_t lo = (uint32_t)w ^ c, hi = (uint32_t)(w >> 32);
        c = fl_crc_tab[7][lo & 0xff] ^ fl_crc_tab[6][(lo >> 8) & 0xff] ^
            fl_crc_tab[5][(lo >> 16) & 0xff] ^ fl_crc_tab[4][lo >> 24] ^ fl_crc_tab[3][hi & 0xff] ^
            fl_crc_tab[2][(hi >> 8) & 0xff] ^ fl_crc_tab[1][(hi >> 16) & 0xff] ^
            fl_crc_tab[0][hi >> 24];
    }
    while (n--)
        c = fl_crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ---- small I/O helpers ---- */

static void fl_put32(unsigned char *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}

static uint32_t fl_get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

/* The commit word covers magic, length and payload CRC, so a header that is half written, or
 * bytes that only look like a header, never pass as committed. */
static uint32_t fl_commit_word(const unsigned char *h)
{
    return fl_crc32c(h, 12);
}

/* Reads up to n bytes at off; short only at end of file. */
static ssize_t fl_pread(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = ipk__sys_pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Writes every byte of iov[0..n) at off, or fails. */
static int fl_pwrite(int fd, struct iovec *iov, int n, off_t off)
{
    while (n > 0) {
        ssize_t r = ipk__sys_pwritev(fd, iov, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        off += r;
        for (; n > 0 && (size_t)r >= iov->iov_len; iov++, n--)
            r -= (ssize_t)iov->iov_len;
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

static int fl_pwrite1(int fd, const void *p, size_t n, off_t off)
{
    struct iovec v = {.iov_base = (void *)p, .iov_len = n};
    return fl_pwrite(fd, &v, 1, off);
}

static int fl_size(int fd, off_t *size)
{
    struct stat st;
    if (ipk__sys_fstat(fd, &st) != 0)
        return -errno;
    *size = st.st_size;
    return 0;
}

/* ---- locks ---- */

/* Takes an OFD lock of `type` on [start, start+len) (len 0: to the end of all offsets) before
 * dl. The owner is this open file description, so a lock dies with its holder. */
static int fl_lock(int fd, short type, off_t start, off_t len, int64_t dl)
{
    struct flock lk = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (dl == IPK__DL_FOREVER) {
        while (ipk__sys_fcntl(fd, F_OFD_SETLKW, &lk) != 0)
            if (errno != EINTR)
                return -errno;
        return 0;
    }
    for (long nap = FL_NAP_MIN_NS;; nap = nap * 2 > FL_NAP_MAX_NS ? FL_NAP_MAX_NS : nap * 2) {
        if (ipk__sys_fcntl(fd, F_OFD_SETLK, &lk) == 0)
            return 0;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR)
            return -errno;
        if (dl == IPK__DL_NOW)
            return -EAGAIN;
        int64_t left = dl - ipk__now();
        if (left <= 0)
            return IPK_ETIMEDOUT;
        struct timespec ts = {0, left < nap ? (long)left : nap};
        nanosleep(&ts, NULL); /* EINTR: the next round recomputes what is left */
    }
}

static void fl_unlock(int fd, off_t start, off_t len)
{
    struct flock lk = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    fcntl(fd, F_OFD_SETLK, &lk);
}

static int fl_lock_err(const ipk_chan *c, int r, const char *what)
{
    if (r == -EAGAIN || r == IPK_ETIMEDOUT)
        return ipk__err(r, "%s: %s is locked by another process", c->name, what);
    return ipk__errsys(r, "%s: locking %s", c->name, what);
}

/* ---- inotify ---- */

/* Reads every queued event; returns the union of their masks (0: none). */
static uint32_t fl_drain(int ifd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    uint32_t mask = 0;
    for (;;) {
        ssize_t n = ipk__sys_read(ifd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return mask;
        }
        for (ssize_t i = 0; i < n;) {
            const struct inotify_event *e = (const struct inotify_event *)(buf + i);
            mask |= e->mask;
            i += (ssize_t)(sizeof *e + e->len);
        }
    }
}

/* A watch on the inode behind fd (through /proc, so a rename or a planted file cannot redirect
 * it), falling back to the path when /proc is not mounted. IN_ATTRIB reports an unlink. A log
 * channel makes it when it first waits or is asked for its fd (a writer never needs one: every
 * inotify instance counts against a per-user limit, 128 by default); a whole-mode channel
 * makes it at open, because it must see every change made after that. */
static int fl_watch(const ipk_chan *c, fl *f)
{
    if (f->ifd >= 0)
        return 0;
    int ifd = ipk__sys_inotify_init1(IN_CLOEXEC | IN_NONBLOCK), r;
    if (ifd < 0 && errno == EMFILE && (r = ipk__emfile_fds(c->name)) != 0)
        return r; /* EMFILE also says the descriptor table is full */
    if (ifd < 0)
        return errno == EMFILE ? ipk__errsys(-errno,
                                             "%s: inotify: too many instances for this user "
                                             "(/proc/sys/fs/inotify/max_user_instances)",
                                             c->name)
                               : ipk__errsys(-errno, "%s: inotify_init1", c->name);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
    if (ipk__sys_inotify_add_watch(ifd, proc, IN_MODIFY | IN_ATTRIB) < 0 &&
        ipk__sys_inotify_add_watch(ifd, c->addr.body, IN_MODIFY | IN_ATTRIB | IN_DONT_FOLLOW) < 0) {
        int e = errno;
        ipk__close_fd(ifd);
        return e == ENOSPC ? ipk__errsys(-e,
                                         "%s: inotify: too many watches for this user "
                                         "(/proc/sys/fs/inotify/max_user_watches)",
                                         c->name)
                           : ipk__errsys(-e, "%s: inotify_add_watch", c->name);
    }
    f->ifd = ifd;
    return 0;
}

/* Waits until the file changes; `what` says what did not happen by the deadline. Once the
 * file was removed (or renamed over) nobody can write it any more: IPK_EOF. */
static int fl_wait(const ipk_chan *c, const fl *f, int64_t dl, const char *what)
{
    struct stat st;
    if (ipk__sys_fstat(f->fd, &st) == 0 && st.st_nlink == 0)
        return ipk__err(IPK_EOF, "%s: the file was removed, and what it held was read", c->name);
    int w = ipk__wait_fd(f->ifd, POLLIN, dl);
    if (w == -EAGAIN || w == IPK_ETIMEDOUT)
        return ipk__err(w, "%s: %s", c->name, what);
    return w < 0 ? ipk__errsys(w, "%s: waiting on inotify", c->name) : 0;
}

/* ---- the log: headers and scanning ---- */

enum { FL_NONE, FL_PARTIAL, FL_COMMITTED };

/* Classifies what lies at off: nothing, something that is not (yet) a committed record header,
 * or a committed header (length and payload CRC returned). */
static int fl_head(int fd, off_t off, uint32_t *len, uint32_t *crc)
{
    unsigned char h[FL_REC_HDR];
    ssize_t n = fl_pread(fd, h, sizeof h, off);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return FL_NONE;
    if (n < FL_REC_HDR || fl_get32(h) != FL_REC_MAGIC || fl_get32(h + 12) != fl_commit_word(h))
        return FL_PARTIAL;
    *len = fl_get32(h + 4);
    *crc = fl_get32(h + 8);
    return FL_COMMITTED;
}

/* From the record boundary off, walks committed records that lie wholly below size; *end is
 * where the first that does not begins. */
static int fl_scan(int fd, off_t off, off_t size, off_t *end)
{
    uint32_t len = 0, crc = 0;
    while (off + FL_REC_HDR <= size) {
        int r = fl_head(fd, off, &len, &crc);
        if (r < 0)
            return r;
        if (r != FL_COMMITTED || off + FL_REC_HDR + (off_t)len > size)
            break;
        off += FL_REC_HDR + (off_t)len;
    }
    *end = off;
    return 0;
}

/* Checks the file header; a file shorter than it is accepted when what is there is its start
 * (a creator died while writing it, or has not written it yet). */
static int fl_check_magic(const ipk_chan *c, const fl *f, off_t size)
{
    unsigned char h[FL_FILE_HDR];
    size_t n = size < FL_FILE_HDR ? (size_t)size : FL_FILE_HDR;
    ssize_t got = fl_pread(f->fd, h, n, 0);
    if (got < 0)
        return ipk__errsys((int)got, "%s: reading the file header", c->name);
    size_t m = (size_t)got < sizeof fl_file_magic ? (size_t)got : sizeof fl_file_magic;
    if (memcmp(h, fl_file_magic, m) != 0)
        return ipk__err(IPK_EPROTO,
                        "%s: not an ipckit file log (bad magic in the first %zu bytes); "
                        "use mode=whole for a plain file",
                        c->name, m);
    return 0;
}

/* Writes the file header if the file has none; a writer calls it once, under the lock. */
static int fl_init_header(ipk_chan *c, fl *f, int64_t dl)
{
    int r = fl_lock(f->fd, F_WRLCK, 0, 0, dl);
    if (r != 0)
        return fl_lock_err(c, r, "the log");
    off_t size = 0;
    if ((r = fl_size(f->fd, &size)) != 0 || (r = fl_check_magic(c, f, size)) != 0)
        goto out;
    if (size < FL_FILE_HDR) {
        unsigned char h[FL_FILE_HDR] = {0};
        memcpy(h, fl_file_magic, sizeof fl_file_magic);
        if (ipk__sys_ftruncate(f->fd, 0) != 0)
            r = -errno;
        else
            r = fl_pwrite1(f->fd, h, sizeof h, 0);
        if (r == 0 && f->fsync && ipk__sys_fdatasync(f->fd) != 0)
            r = -errno;
        if (r != 0)
            r = ipk__errsys(r, "%s: writing the file header", c->name);
    }
    if (r == 0)
        f->wr = FL_FILE_HDR;
out:
    fl_unlock(f->fd, 0, 0);
    return r;
}

/* ---- the log: append ---- */

static int fl_write_record(ipk_chan *c, fl *f, off_t at, const void *msg, size_t len)
{
    unsigned char h[FL_REC_HDR];
    fl_put32(h, FL_REC_MAGIC);
    fl_put32(h + 4, (uint32_t)len);
    fl_put32(h + 8, fl_crc32c(msg, len));
    uint32_t commit = fl_commit_word(h);
    fl_put32(h + 12, ~commit); /* never mistaken for committed until overwritten */
    size_t first = ipk__file_hook ? len / 2 : len;
    struct iovec v[2] = {{h, sizeof h}, {(void *)msg, first}};
    int r = fl_pwrite(f->fd, v, 2, at);
    if (r == 0 && first < len) {
        ipk__file_hook(IPK__FH_TORN);
        r = fl_pwrite1(f->fd, (const char *)msg + first, len - first,
                       at + FL_REC_HDR + (off_t)first);
    }
    if (r == 0 && ipk__file_hook)
        ipk__file_hook(IPK__FH_UNCOMMITTED);
    /* With fsync=1 the payload is on disk before the commit word, and the commit word before
     * send returns: a committed record survives a system crash. */
    if (r == 0 && f->fsync && ipk__sys_fdatasync(f->fd) != 0)
        r = -errno;
    fl_put32(h + 12, commit);
    if (r == 0)
        r = fl_pwrite1(f->fd, h + 12, 4, at + 12);
    if (r == 0 && f->fsync && ipk__sys_fdatasync(f->fd) != 0)
        r = -errno;
    if (r != 0) {
        int t = ipk__sys_ftruncate(f->fd, at); /* take back what was written (ENOSPC, EIO) */
        (void)t;
        return ipk__errsys(r, "%s: appending a record of %zu bytes at offset %lld", c->name, len,
                           (long long)at);
    }
    return 0;
}

/* Whether the bytes [at, size) after the last committed record are what a writer that died in
 * the middle of an append leaves behind: less than a header; one uncommitted record (its header
 * carries the complemented commit word) no longer than its header says; or what a system crash
 * leaves: one committed record cut short by the end of the file (without fsync=1 the commit
 * word may reach the disk before the payload), or zeros (the file was extended and the data
 * lost). Anything else is damage that cutting the file would make worse. */
static int fl_is_torn(const ipk_chan *c, int fd, off_t at, off_t size)
{
    static const unsigned char zero[4096];
    unsigned char buf[sizeof zero];
    ssize_t n = fl_pread(fd, buf, FL_REC_HDR, at);
    if (n < FL_REC_HDR)
        return n < 0 ? (int)n : 1;
    uint32_t word = fl_get32(buf + 12), commit = fl_commit_word(buf);
    if (fl_get32(buf) == FL_REC_MAGIC && (word == ~commit || word == commit) &&
        size - at <= FL_REC_HDR + (off_t)fl_get32(buf + 4))
        return 1;
    if (size - at > FL_REC_HDR + (off_t)c->max)
        return 0;
    for (; at < size; at += n) {
        size_t want = size - at < (off_t)sizeof buf ? (size_t)(size - at) : sizeof buf;
        if ((n = fl_pread(fd, buf, want, at)) <= 0)
            return (int)n;
        if (memcmp(buf, zero, (size_t)n) != 0)
            return 0;
    }
    return 1;
}

/* Under the tail lock, so no live writer is appending: cuts a torn tail off, or refuses. */
static int fl_repair(ipk_chan *c, fl *f, off_t tail, off_t size)
{
    int r = fl_is_torn(c, f->fd, tail, size);
    if (r < 0)
        return ipk__errsys(r, "%s: reading the tail at offset %lld", c->name, (long long)tail);
    if (r == 0)
        return ipk__err(IPK_EPROTO,
                        "%s: the %lld bytes at offset %lld are neither records nor one torn "
                        "record: the log is damaged, and is left as it is",
                        c->name, (long long)(size - tail), (long long)tail);
    if (ipk__sys_ftruncate(f->fd, tail) != 0)
        return ipk__errsys(-errno, "%s: cutting a torn tail at offset %lld", c->name,
                           (long long)tail);
    return 0;
}

/* Takes the tail lock and finds the tail. On success the caller holds F_WRLCK on [*tail, end of
 * all offsets), and *tail is where the next record goes. */
static int fl_tail(ipk_chan *c, fl *f, int64_t dl, off_t *tail)
{
    for (;;) {
        int r;
        off_t size = 0, e;
        if (f->wr == 0 && (r = fl_init_header(c, f, dl)) != 0)
            return r;
        /* Catch up without a lock: committed records never change. */
        if ((r = fl_size(f->fd, &size)) != 0 ||
            (size > f->wr && (r = fl_scan(f->fd, f->wr, size, &f->wr)) != 0))
            return ipk__errsys(r, "%s: finding the tail", c->name);
        e = f->wr;
        /* Every writer locks [its idea of the tail, end of all offsets): any two such ranges
         * overlap, so writers exclude each other, and readers of records below never conflict.
         */
        if ((r = fl_lock(f->fd, F_WRLCK, e, 0, dl)) != 0)
            return fl_lock_err(c, r, "the log tail");
        if ((r = fl_size(f->fd, &size)) != 0 || (r = fl_scan(f->fd, e, size, tail)) != 0) {
            fl_unlock(f->fd, e, 0);
            return ipk__errsys(r, "%s: finding the tail", c->name);
        }
        if (size < e) { /* cut below what we knew, by something else: start over */
            fl_unlock(f->fd, e, 0);
            f->wr = 0;
            continue;
        }
        if (*tail > e)
            fl_unlock(f->fd, e, *tail - e); /* records committed meanwhile: let readers in */
        f->wr = *tail;
        /* Bytes past the last committed record while we hold the tail lock: a writer died in
         * the middle of an append (its lock died with it). */
        if (size > *tail && (r = fl_repair(c, f, *tail, size)) != 0) {
            fl_unlock(f->fd, *tail, 0);
            return r;
        }
        return 0;
    }
}

static int fl_append(ipk_chan *c, fl *f, const void *msg, size_t len, int64_t dl)
{
    if (f->readonly)
        return ipk__err(-EACCES, "%s: opened read-only (no write permission); cannot send",
                        c->name);
    off_t tail;
    int r = fl_tail(c, f, dl, &tail);
    if (r != 0)
        return r;
    if ((rlim_t)tail + FL_REC_HDR + len > f->fsize_max)
        r = ipk__err(-EFBIG,
                     "%s: a record of %zu bytes at offset %lld would pass RLIMIT_FSIZE (%llu)",
                     c->name, len, (long long)tail, (unsigned long long)f->fsize_max);
    else if ((r = fl_write_record(c, f, tail, msg, len)) == 0)
        f->wr = tail + FL_REC_HDR + (off_t)len;
    fl_unlock(f->fd, tail, 0);
    return r;
}

/* ---- the log: read ---- */

/* The next committed record into buf: its length, -EAGAIN when none is complete yet, or an
 * error. A committed record whose payload fails its CRC (possible only after a system crash
 * without fsync=1, or damage) is skipped with IPK_EPROTO. */
static long fl_read_one(ipk_chan *c, fl *f, void *buf, size_t cap, int64_t dl)
{
    uint32_t len = 0, crc = 0;
    int r = fl_head(f->fd, f->rd, &len, &crc);
    if (r < 0)
        return ipk__errsys(r, "%s: reading at offset %lld", c->name, (long long)f->rd);
    if (r != FL_COMMITTED)
        return -EAGAIN;
    if (len > cap || len > c->max) {
        c->need = len;
        return ipk__err(IPK_EMSGSIZE, "%s: record of %u bytes at offset %lld exceeds the %s (%zu)",
                        c->name, len, (long long)f->rd, len > c->max ? "maximum" : "buffer",
                        len > c->max ? c->max : cap);
    }
    off_t reclen = FL_REC_HDR + (off_t)len;
    if ((r = fl_lock(f->fd, F_RDLCK, f->rd, reclen, dl)) != 0)
        return fl_lock_err(c, r, "a record");
    ssize_t n = fl_pread(f->fd, buf, len, f->rd + FL_REC_HDR);
    /* Short: a writer that took its record back (ENOSPC, EIO) took the header too, which is
     * seen again under our lock; a committed header with a short payload no live writer
     * leaves (the commit word goes last): a system crash without fsync=1, or damage. */
    uint32_t len2, crc2;
    int cut = n >= 0 && (size_t)n < len && fl_head(f->fd, f->rd, &len2, &crc2) == FL_COMMITTED;
    fl_unlock(f->fd, f->rd, reclen);
    if (n < 0)
        return ipk__errsys((int)n, "%s: reading a record at offset %lld", c->name,
                           (long long)f->rd);
    if (cut && f->cut != f->rd) { /* said once; then it waits as for a torn record */
        f->cut = f->rd;
        return ipk__err(IPK_EPROTO,
                        "%s: record of %u bytes at offset %lld is cut short by the end of the "
                        "file (%zd bytes of it there): the log is damaged; the next writer cuts "
                        "it off and appends in its place",
                        c->name, len, (long long)f->rd, n);
    }
    if ((size_t)n < len)
        return -EAGAIN;
    off_t at = f->rd;
    f->rd += reclen;
    if (fl_crc32c(buf, len) != crc)
        return ipk__err(IPK_EPROTO,
                        "%s: record of %u bytes at offset %lld fails its checksum; "
                        "skipped",
                        c->name, len, (long long)at);
    return (long)len;
}

static long fl_log_recv(ipk_chan *c, fl *f, void *buf, size_t cap, int64_t dl)
{
    for (int drained = 0;;) {
        long r = fl_read_one(c, f, buf, cap, dl);
        if (r != -EAGAIN)
            return r;
        /* Drain before the last look: whatever changes after it wakes the wait below. */
        if (f->ifd < 0 && (r = fl_watch(c, f)) != 0)
            return r;
        if (!drained) {
            fl_drain(f->ifd);
            drained = 1;
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "no new record at offset %lld", (long long)f->rd);
        if ((r = fl_wait(c, f, dl, what)) != 0)
            return r;
        drained = 0;
    }
}

/* ---- mode=whole ---- */

static int fl_whole_send(ipk_chan *c, fl *f, const void *msg, size_t len, int64_t dl)
{
    if (f->readonly)
        return ipk__err(-EACCES, "%s: opened read-only (no write permission); cannot send",
                        c->name);
    int r = fl_lock(f->fd, F_WRLCK, 0, 0, dl);
    if (r != 0)
        return fl_lock_err(c, r, "the file");
    if (ipk__file_hook)
        ipk__file_hook(IPK__FH_LOCKED);
    /* Same inode, truncated and rewritten: the guide's consumer opens the file by name. */
    if (ipk__sys_ftruncate(f->fd, 0) != 0)
        r = -errno;
    if (r == 0)
        r = fl_pwrite1(f->fd, msg, len, 0);
    if (r == 0 && f->fsync && ipk__sys_fdatasync(f->fd) != 0)
        r = -errno;
    fl_unlock(f->fd, 0, 0);
    return r ? ipk__errsys(r, "%s: writing %zu bytes", c->name, len) : 0;
}

static long fl_whole_recv(ipk_chan *c, fl *f, void *buf, size_t cap, int64_t dl)
{
    int r;
    while (!f->dirty) {
        if (fl_drain(f->ifd) & IN_MODIFY) {
            f->dirty = 1;
            break;
        }
        if ((r = fl_wait(c, f, dl, "the file has not changed")) != 0)
            return r;
    }
    if ((r = fl_lock(f->fd, F_RDLCK, 0, 0, dl)) != 0)
        return fl_lock_err(c, r, "the file");
    off_t size = 0;
    long n;
    if ((r = fl_size(f->fd, &size)) != 0) {
        n = ipk__errsys(r, "%s: fstat", c->name);
    } else if ((size_t)size > cap || (size_t)size > c->max) {
        c->need = (size_t)size;
        n = ipk__err(IPK_EMSGSIZE, "%s: the file holds %lld bytes; the %s is %zu", c->name,
                     (long long)size, (size_t)size > c->max ? "maximum" : "buffer",
                     (size_t)size > c->max ? c->max : cap);
    } else if ((n = fl_pread(f->fd, buf, (size_t)size, 0)) < 0) {
        n = ipk__errsys((int)n, "%s: reading", c->name);
    } else {
        /* Every change queued so far is in what was just read (writers wait for our lock). */
        fl_drain(f->ifd);
        f->dirty = 0;
    }
    fl_unlock(f->fd, 0, 0);
    return n;
}

/* ---- the transport ---- */

static int fl_options(ipk_chan *c, fl *f)
{
    const char *m = ipk__opt(c, "mode"), *from = ipk__opt(c, "from");
    if (m && strcmp(m, "whole") == 0)
        f->whole = 1;
    else if (m && strcmp(m, "log") != 0)
        return ipk__err(IPK_EOPTION, "%s: mode=%s: expected log or whole", c->name, m);
    if (from && strcmp(from, "end") == 0)
        f->from_end = 1;
    else if (from && strcmp(from, "start") != 0)
        return ipk__err(IPK_EOPTION, "%s: from=%s: expected start or end", c->name, from);
    return ipk__opt_bool(c, "fsync", 0, &f->fsync);
}

static int fl_open_err(const ipk_chan *c, int e)
{
    const char *path = c->addr.body;
    switch (e) {
    case ENOENT:
        return ipk__err(-ENOENT,
                        "file:%s: no such file (a listener creates it, or dial with "
                        "create=1)",
                        path);
    case ELOOP:
        return ipk__err(-ELOOP, "file:%s: is a symbolic link; refused (O_NOFOLLOW)", path);
    case EACCES: {
        struct stat st;
        if (ipk__sys_stat(path, &st) != 0)
            return ipk__err(-EACCES, "file:%s: permission denied (on a directory of the path)",
                            path);
        return ipk__err(
            -EACCES, "file:%s: permission denied (mode %04o, owner uid %u; this is uid %u)", path,
            (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)geteuid());
    }
    default:
        return ipk__errsys(-e, "file:%s: open", path);
    }
}

/* Opens (listener: creates if absent) the regular file named by the address. */
static int fl_open_file(ipk_chan *c, fl *f, int create)
{
    const char *path = c->addr.body;
    int base = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK; /* O_NONBLOCK: a FIFO must not block open */
    if (create) {
        f->fd = ipk__sys_open(path, O_RDWR | O_CREAT | O_EXCL | base, c->perm);
        if (f->fd >= 0) {
            f->created = 1;
            if (ipk__sys_fchmod(f->fd, (mode_t)c->perm) != 0) /* exactly perm, whatever the umask */
                return ipk__errsys(-errno, "file:%s: fchmod %04o", path, (unsigned)c->perm);
        } else if (errno != EEXIST) {
            return fl_open_err(c, errno);
        }
    }
    if (f->fd < 0)
        f->fd = ipk__sys_open(path, O_RDWR | base);
    if (f->fd < 0 && (errno == EACCES || errno == EROFS)) {
        f->fd = ipk__sys_open(path, O_RDONLY | base); /* a reader needs no write permission */
        f->readonly = 1;
    }
    if (f->fd < 0)
        return fl_open_err(c, errno);
    struct stat st;
    if (ipk__sys_fstat(f->fd, &st) != 0)
        return ipk__errsys(-errno, "file:%s: fstat", path);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->ident = 1;
    if (!S_ISREG(st.st_mode))
        return ipk__err(-EINVAL, "file:%s: not a regular file (%s)", path,
                        S_ISFIFO(st.st_mode)  ? "a FIFO"
                        : S_ISCHR(st.st_mode) ? "a character device"
                        : S_ISBLK(st.st_mode) ? "a block device"
                        : S_ISDIR(st.st_mode) ? "a directory"
                                              : "a socket");
    /* A listener that did not create the file reads what others wrote into it as its own:
     * only a file of ours, no more open than perm (another user may have planted it). */
    if (c->role == IPK__LISTENER && !f->created &&
        ipk__listen_adopt(c->name, st.st_uid, st.st_mode, c->perm) != 0)
        return -EEXIST;
    int flags = ipk__sys_fcntl(f->fd, F_GETFL);
    if (flags < 0 || ipk__sys_fcntl(f->fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
        return ipk__errsys(-errno, "file:%s: fcntl", path);
    return 0;
}

/* Checks what the file holds and sets where a reader starts: the first record, or the end of
 * the committed ones. */
static int fl_start(ipk_chan *c, fl *f)
{
    off_t size = 0;
    int r = fl_size(f->fd, &size);
    if (r != 0)
        return ipk__errsys(r, "%s: fstat", c->name);
    if (f->whole) {
        f->dirty = !f->from_end && size > 0;
        return fl_watch(c, f);
    }
    if ((r = fl_check_magic(c, f, size)) != 0)
        return r;
    f->rd = FL_FILE_HDR;
    if (size >= FL_FILE_HDR)
        f->wr = FL_FILE_HDR; /* the header is there and right: no need to lock for it */
    if (f->from_end && (r = fl_scan(f->fd, FL_FILE_HDR, size, &f->rd)) != 0)
        return ipk__errsys(r, "%s: finding the end", c->name);
    /* A listener stamps an empty log now, so that it is recognisable before the first send;
     * if another process holds the lock, the first writer does it instead. */
    if (c->role == IPK__LISTENER && size == 0 && !f->readonly)
        fl_init_header(c, f, IPK__DL_NOW);
    ipk__err_clear();
    return 0;
}

/* A log is never consumed (each reader keeps its own offset): any record in it is still to be
 * delivered to a reader that comes later, so the core's close rule keeps a log that holds one,
 * and removes only an empty log this channel created. mode=whole: a file with content. */
static long fl_undelivered(const ipk_chan *c)
{
    const fl *f = c->tp;
    off_t size = 0;
    int r = fl_size(f->fd, &size);
    if (r != 0)
        return ipk__errsys(r, "%s: fstat", c->name);
    return size > (f->whole ? 0 : FL_FILE_HDR);
}

static int fl_close(ipk_chan *c)
{
    fl *f = c->tp;
    if (f == NULL)
        return 0;
    int r = 0;
    /* Only the file this channel created: a path replaced meanwhile is someone else's. One
     * whose identity was not read yet was made a moment ago by this failing open. */
    if (c->owner && f->created && !c->keep &&
        (!f->ident || (r = ipk__still_ours(c->name, c->addr.body, f->dev, f->ino)) > 0)) {
        r = 0;
        if (ipk__sys_unlink(c->addr.body) != 0 && errno != ENOENT)
            r = ipk__errsys(-errno, "%s: unlink", c->name);
    }
    ipk__close_fd(f->ifd);
    ipk__close_fd(f->fd);
    free(f);
    c->tp = NULL;
    return r;
}

/* create: 0 opens an existing file; 1 creates it when absent (a listener, or a dialer with
 * create=1). Only a listener owns what it created: a producer that came first leaves the log,
 * and what it appended, for the consumers that come later. */
static int fl_open(ipk_chan *c, int create)
{
    fl *f = calloc(1, sizeof *f);
    if (f == NULL || ipk__set_name(c, "file:%s", c->addr.body) != 0) {
        free(f);
        return -ENOMEM;
    }
    f->fd = f->ifd = -1;
    c->tp = f;
    int r = fl_options(c, f);
    if (r == 0)
        r = fl_open_file(c, f, create);
    c->owner = f->created && c->role == IPK__LISTENER;
    struct rlimit rl;
    f->fsize_max = getrlimit(RLIMIT_FSIZE, &rl) == 0 ? rl.rlim_cur : RLIM_INFINITY;
    if (r == 0)
        r = fl_start(c, f);
    if (r != 0) {
        c->owner = f->created; /* a file this call created goes again */
        c->keep = !f->created;
        fl_close(c);
    }
    return r;
}

static int fl_listen(ipk_chan *c)
{
    return fl_open(c, 1);
}

static int fl_dial(ipk_chan *c)
{
    int create, r = ipk__opt_bool(c, "create", 0, &create);
    return r != 0 ? r : fl_open(c, create);
}

static int fl_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi, int64_t dl)
{
    (void)mi;
    fl *f = c->tp;
    return f->whole ? fl_whole_send(c, f, msg, len, dl) : fl_append(c, f, msg, len, dl);
}

static long fl_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    (void)mi;
    fl *f = c->tp;
    return f->whole ? fl_whole_recv(c, f, buf, cap, dl) : fl_log_recv(c, f, buf, cap, dl);
}

static int fl_fd(const ipk_chan *c)
{
    fl *f = c->tp;
    int r = fl_watch(c, f);
    return r != 0 ? r : f->ifd;
}

static int fl_pending(const ipk_chan *c)
{
    fl *f = c->tp;
    if (f->whole) {
        if (!f->dirty && (fl_drain(f->ifd) & IN_MODIFY))
            f->dirty = 1; /* remembered: the events are gone, the change is not */
        return f->dirty;
    }
    uint32_t len = 0, crc = 0;
    off_t size = 0;
    return fl_head(f->fd, f->rd, &len, &crc) == FL_COMMITTED && fl_size(f->fd, &size) == 0 &&
           f->rd + FL_REC_HDR + (off_t)len <= size;
}

/* Appends to buf like snprintf, keeping the would-be total in *n. */
static void fl_cat(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fl_cat(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(*n < cap ? buf + *n : NULL, *n < cap ? cap - *n : 0, fmt, ap);
    va_end(ap);
    if (w > 0)
        *n += (size_t)w;
}

/* A number from a /proc/sys file, or -1. */
static long fl_proc_long(const char *path)
{
    long v = -1;
    FILE *pf = fopen(path, "re");
    if (pf != NULL) {
        if (fscanf(pf, "%ld", &v) != 1)
            v = -1;
        fclose(pf);
    }
    return v;
}

static long fl_info(const ipk__addr *a, char *buf, size_t cap)
{
    size_t n = 0;
    fl_cat(buf, cap, &n,
           "file:%s - shared file with record locks\n"
           "mode=log (default): append-only log. File header: 16 bytes, \"IPKFLOG\" + version 1.\n"
           "  Record: 16-byte header {magic \"IPKR\", u32 length, u32 CRC32C(payload),\n"
           "  u32 commit = CRC32C(first 12 header bytes)} + payload, little-endian.\n"
           "  Writers: F_OFD_SETLKW F_WRLCK on [tail, end of offsets); a torn tail is cut off.\n"
           "  Readers: F_OFD_SETLK F_RDLCK on the record being read; wait with inotify.\n"
           "mode=whole: send replaces the file under an F_OFD F_WRLCK on the whole file, recv\n"
           "  reads it under F_RDLCK; conflicts with classic fcntl locks of other programs.\n"
           "Timed lock waits poll F_OFD_SETLK, napping 50 us doubling to 10 ms.\n"
           "Options: mode=log|whole fsync=0|1 from=start|end perm=0600 keep=1 max=16m\n"
           "  create=1 (dial: create an absent file, not owned: a producer may come first)\n",
           a->body);
    struct stat st;
    if (ipk__sys_lstat(a->body, &st) == 0)
        fl_cat(buf, cap, &n, "file: %lld bytes, mode %04o, uid %u%s\n", (long long)st.st_size,
               (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
               S_ISREG(st.st_mode) ? "" : " (not a regular file: refused)");
    else
        fl_cat(buf, cap, &n, "file: absent (a listener creates it)\n");
    char dir[PATH_MAX];
    ipk__strlcpy(dir, a->body, sizeof dir);
    char *slash = strrchr(dir, '/'); /* free space where the file is, or would be */
    if (slash == NULL)
        ipk__strlcpy(dir, ".", sizeof dir);
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0)
        fl_cat(buf, cap, &n, "filesystem: %llu of %llu bytes free\n",
               (unsigned long long)vfs.f_bavail * vfs.f_frsize,
               (unsigned long long)vfs.f_blocks * vfs.f_frsize);
    fl_cat(buf, cap, &n,
           "inotify (one per waiting reader): max_user_instances %ld, max_user_watches %ld\n",
           fl_proc_long("/proc/sys/fs/inotify/max_user_instances"),
           fl_proc_long("/proc/sys/fs/inotify/max_user_watches"));
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0) {
        if (rl.rlim_cur == RLIM_INFINITY)
            fl_cat(buf, cap, &n, "RLIMIT_FSIZE: unlimited\n");
        else
            fl_cat(buf, cap, &n, "RLIMIT_FSIZE: %llu bytes\n", (unsigned long long)rl.rlim_cur);
    }
    return (long)n;
}

static const char *const fl_keys[] = {"mode", "fsync", "perm", "keep", "from", "create", NULL};

/* ---- pollers: the inotify descriptor says "look again"; fl_pending says whether a whole
 * record (or, mode=whole, a change) is there. Appending never waits for a reader. */

static int fl_poll_src(ipk_chan *c, unsigned interest, ipk__pollsrc *src)
{
    fl *f = c->tp;
    if (interest & IPK_POLLIN) {
        int r = fl_watch(c, f);
        if (r != 0)
            return r;
        src->fd[0] = f->ifd;
        src->ev[0] = EPOLLIN;
    }
    if ((interest & IPK_POLLOUT) && f->readonly)
        return ipk__err(IPK_ENOTSUP, "%s: opened read-only: this end does not send", c->name);
    src->flags = IPK__PS_CHECK;
    return 0;
}

static int fl_poll_check(ipk_chan *c, unsigned interest, int op)
{
    fl *f = c->tp;
    unsigned ready = interest & IPK_POLLOUT;
    if (interest & IPK_POLLIN) {
        /* Events are drained so the descriptor stops polling readable; mode=whole remembers a
         * modification the way fl_pending does. */
        if (op != IPK__PC_ARM && f->ifd >= 0 && !f->whole)
            fl_drain(f->ifd);
        if (fl_pending(c))
            ready |= IPK_POLLIN;
    }
    return (int)ready;
}

const ipk__transport ipk__tr_file = {
    .scheme = "file",
    .parse = ipk__addr_path,
    .flags = IPK_SCHEME_QUEUE,
    .usage = "file:PATH",
    .keys = fl_keys,
    .summary = "shared file with record locks: durable append-only log (or mode=whole)",
    .listen = fl_listen,
    .dial = fl_dial,
    .send = fl_send,
    .recv = fl_recv,
    .fd = fl_fd,
    .pending = fl_pending,
    .undelivered = fl_undelivered,
    .close = fl_close,
    .info = fl_info,
    .poll_src = fl_poll_src,
    .poll_check = fl_poll_check,
};
