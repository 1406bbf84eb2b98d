/*
 * indep.c - an independent raw benchmark: each kernel mechanism driven by plain blocking
 * system calls, written apart from bench/engine (it shares no code, header or build target
 * with it) so that the engine's floors can be checked against it in the same run
 * (`ipckit bench` runs it beside its own floors and prints engine floor / this).
 *
 *   ipckit-bench-indep MECH SIZE MODE CPU_A CPU_B COUNT [count|check]
 *
 * MECH: pipe fifo unix unixpacket unixpacket-cred unixgram unixgram-pair tcp udp udp-pair mq sysv
 *   unixgram is the listener's topology: A's socket is bound and unconnected and receives from
 *   a client (B's socket, bound and connected to A's path); A answers with sendto() to the
 *   address recvfrom() gave. unixgram-pair is a connected socketpair(), which the kernel
 *   exempts from net.unix.max_dgram_qlen.
 *   udp is the topology of ipckit's udp: row (bench/engine/ipk.c, "pair": each side listens on
 *   its own address and dials the other's): each side receives on a bound, unconnected socket
 *   with recvfrom() and the sender's address, as ipckit's listener does, and sends on a second
 *   socket connected to the other side's; four sockets. udp-pair is two sockets bound and
 *   connected to each other (the engine's "raw udp" floor). Both udp receives carry a 5 s
 *   SO_RCVTIMEO, as the engine's floor does and as ipckit's row waits 5 s (a lost datagram ends
 *   the run instead of hanging it); the kernel arms a timer in each receive that sleeps.
 *   unixpacket-cred (not one of the engine's rows; run it by hand) is unixpacket with what
 *   ipckit's unixpacket: does to tell a zero-length packet from the end of the connection:
 *   SO_PASSCRED on both sockets (the kernel attaches the sender's credentials to each packet)
 *   and recvmsg() with no control buffer (MSG_CTRUNC marks a packet).
 * MODE: latency (B times each round trip: send, receive the echo), message (B sends COUNT
 *   messages one call each; A receives, streams in 256 KiB reads, messages one per call) or
 *   batch (B sends up to 256 messages, at most 1 MiB, per call: one write() of contiguous
 *   messages on a byte stream, sendmmsg() on a datagram or seqpacket socket; A receives with
 *   recvmmsg() or 256 KiB reads).
 * CPU_A, CPU_B: the CPUs each process is pinned to (-1: not pinned).
 * count (the default) or check, for message and batch: with count, B sends the same bytes
 *   every time and A only counts them (bytes on a stream, messages elsewhere); with check, B
 *   stamps a sequence number into the first 8 bytes of every message (fewer when it is
 *   shorter) before each call, and A splits what it receives into messages, adds up every
 *   message's bytes as little-endian 64-bit words and checks both the number and the sum,
 *   which is the work the engine's receiver does (written apart from it; see verify()).
 *
 * Prints one line of key=value pairs on standard output ("ok=1 ..." or "ok=0 err=..."); every
 * figure is in nanoseconds or per second. Buffers are allocated before the timed loop; every
 * call blocks (no poll, no O_NONBLOCK).
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXBATCH 256
#define RDBUF    (256 << 10)

enum { M_LAT, M_MSG, M_BATCH };

static const char *mech;
static size_t size;
static int mode, check;
static long count, warm;

/* What the two processes share: B's samples (latency) or A's clock (throughput). */
struct shared {
    char err[200];
    int64_t t0, t1;
    long got;
    int64_t samples[];
};
static struct shared *sh;

/* One direction of a ping-pong, or both on a socket. */
struct end {
    int rfd, wfd;
    struct sockaddr_un peer; /* unixgram listener: whom to answer */
    socklen_t peerlen;
    int is_server; /* unixgram listener side */
    int named;     /* udp: receives with the sender's address (an unconnected socket) */
    struct sockaddr_in from;
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void die(const char *what)
{
    if (sh && !sh->err[0])
        snprintf(sh->err, sizeof sh->err, "%s %s: %s", mech, what, strerror(errno));
    _exit(1);
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s) != 0)
        die("sched_setaffinity");
}

static int is(const char *m)
{
    return strcmp(mech, m) == 0;
}

static int bytestream(void)
{
    return is("pipe") || is("fifo") || is("unix") || is("tcp");
}

/* ---- moving one message ---- */

static void put(struct end *e, const void *p, size_t n)
{
    if (bytestream()) {
        const char *c = p;
        while (n > 0) {
            ssize_t w = write(e->wfd, c, n);
            if (w < 0)
                die("write");
            c += w;
            n -= (size_t)w;
        }
    } else if (is("mq")) {
        if (mq_send(e->wfd, p, n, 0) != 0)
            die("mq_send");
    } else if (is("sysv")) {
        /* p points 8 bytes into a buffer whose first long is the type. */
        if (msgsnd(e->wfd, (const char *)p - sizeof(long), n, 0) != 0)
            die("msgsnd");
    } else if (e->is_server) {
        if (sendto(e->wfd, p, n, 0, (struct sockaddr *)&e->peer, e->peerlen) < 0)
            die("sendto");
    } else if (send(e->wfd, p, n, 0) < 0) {
        die("send");
    }
}

/* One message (a stream: exactly `size` bytes) into p; returns its length. */
static size_t get(struct end *e, void *p, size_t cap)
{
    ssize_t r;
    if (bytestream()) {
        size_t got = 0;
        while (got < size) {
            r = read(e->rfd, (char *)p + got, size - got);
            if (r <= 0)
                die(r == 0 ? "read: end of stream" : "read");
            got += (size_t)r;
        }
        return got;
    }
    if (is("mq"))
        r = mq_receive(e->rfd, p, cap, NULL);
    else if (is("sysv"))
        r = msgrcv(e->rfd, (char *)p - sizeof(long), cap, 0, 0);
    else if (e->named) {
        socklen_t l = sizeof e->from;
        r = recvfrom(e->rfd, p, cap, 0, (struct sockaddr *)&e->from, &l);
    } else if (is("unixpacket-cred")) {
        struct iovec iov = {p, cap};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        r = recvmsg(e->rfd, &mh, 0);
        if (r == 0 && !(mh.msg_flags & MSG_CTRUNC)) /* no credentials: the end, not a packet */
            die("recvmsg: end of connection");
    } else if (e->is_server) {
        e->peerlen = sizeof e->peer;
        r = recvfrom(e->rfd, p, cap, 0, (struct sockaddr *)&e->peer, &e->peerlen);
    } else
        r = recv(e->rfd, p, cap, 0);
    if (r < 0)
        die("receive");
    return (size_t)r;
}

/* ---- the runs ---- */

static void latency_a(struct end *e, char *buf, size_t cap)
{
    for (long i = 0; i < warm + count; i++)
        put(e, buf, get(e, buf, cap));
}

static void latency_b(struct end *e, char *buf, size_t cap)
{
    for (long i = 0; i < warm + count; i++) {
        memcpy(buf, &i, sizeof i < size ? sizeof i : size);
        int64_t t0 = now_ns();
        put(e, buf, size);
        size_t n = get(e, buf, cap);
        int64_t t1 = now_ns();
        if (n != size || memcmp(buf, &i, sizeof i < size ? sizeof i : size) != 0) {
            snprintf(sh->err, sizeof sh->err, "%s: round trip %ld came back wrong", mech, i);
            _exit(1);
        }
        if (i >= warm)
            sh->samples[i - warm] = t1 - t0;
    }
}

/* Messages per batch: up to 256, 1 MiB at most. */
static long batch_of(void)
{
    long b = (long)((1 << 20) / size);
    return b < 1 ? 1 : b > MAXBATCH ? MAXBATCH : b;
}

/* n message headers over buf, one slot of `each` bytes apiece. */
static void slots(struct mmsghdr *mm, struct iovec *iov, long n, char *buf, size_t each)
{
    for (long j = 0; j < n; j++) {
        iov[j] = (struct iovec){buf + (size_t)j * each, each};
        memset(&mm[j], 0, sizeof mm[j]);
        mm[j].msg_hdr.msg_iov = &iov[j];
        mm[j].msg_hdr.msg_iovlen = 1;
    }
}

/* ---- check mode: stamping and verifying every message ---- */

/* The sequence number as a message carries it: the low min(8, size) bytes, little-endian. */
static uint64_t seq_bits(long i)
{
    return size >= 8 ? (uint64_t)i : (uint64_t)i & ((UINT64_C(1) << (8 * size)) - 1);
}

static void stamp(char *msg, long i)
{
    uint64_t v = seq_bits(i);
    for (size_t k = 0; k < size && k < 8; k++)
        msg[k] = (char)(v >> (8 * k));
}

/*
 * A's view of the incoming bytes in check mode. A message's sum is that of its little-endian
 * 64-bit words (the last zero-padded): the same as the sum over its bytes of byte << 8 * (offset
 * mod 8), modulo 2^64, which is how pieces that split a message anywhere are added up. `rest` is
 * the sum of the bytes every message shares (all but the sequence number), taken from B's
 * buffer before the run.
 */
static struct {
    size_t off;         /* bytes of the current message seen */
    uint64_t sum, head; /* its sum so far; its first min(8, size) bytes as a number */
    uint64_t rest;
    long msgs;
} vr;

static uint64_t bytes_sum(const unsigned char *p, size_t n, size_t off)
{
    uint64_t s = 0;
    while (n > 0 && off % 8 != 0) {
        s += (uint64_t)*p++ << (8 * (off++ % 8));
        n--;
    }
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* x86-64 and arm64: little-endian */
        s += w;
    }
    for (size_t k = 0; k < n; k++)
        s += (uint64_t)p[k] << (8 * k);
    return s;
}

static void verify_end(void)
{
    if (vr.head != seq_bits(vr.msgs) || vr.sum != vr.rest + vr.head) {
        snprintf(sh->err, sizeof sh->err, "%s: message %ld is not what was sent", mech, vr.msgs);
        _exit(1);
    }
    vr.msgs++;
    vr.off = 0;
    vr.sum = vr.head = 0;
}

/* Feeds n received bytes (any split) to the check. */
static void verify(const char *buf, size_t n)
{
    const unsigned char *p = (const unsigned char *)buf;
    if (size >= 8) /* whole messages at a boundary, the usual case: one pass each, no bytes */
        for (; vr.off == 0 && n >= size; p += size, n -= size) {
            memcpy(&vr.head, p, 8);
            vr.sum = bytes_sum(p, size, 0);
            verify_end();
        }
    while (n > 0) {
        size_t take = size - vr.off < n ? size - vr.off : n;
        for (size_t k = vr.off; k < 8 && k < vr.off + take; k++)
            vr.head |= (uint64_t)p[k - vr.off] << (8 * k);
        vr.sum += bytes_sum(p, take, vr.off);
        vr.off += take;
        p += take;
        n -= take;
        if (vr.off == size)
            verify_end();
    }
}

/* One whole message (a datagram or a queue's): its size, then its bytes. */
static void checked(const char *msg, size_t n, long i)
{
    if (n != size) {
        snprintf(sh->err, sizeof sh->err, "%s: message %ld has %zu bytes, sent %zu", mech, i, n,
                 size);
        _exit(1);
    }
    verify(msg, n);
}

/* The sum of a message's bytes past its sequence number. Both sides' buffers start as the
 * same bytes (main fills them alike), so A takes it from its own before the first receive. */
static void verify_init(const char *msg)
{
    vr.rest = bytes_sum((const unsigned char *)msg, size, 0);
    uint64_t head = 0;
    for (size_t k = 0; k < size && k < 8; k++)
        head |= (uint64_t)(unsigned char)msg[k] << (8 * k);
    vr.rest -= head;
}

/* Check mode: the sequence numbers of messages i.. into the k contiguous slots of buf. */
static void stamp_all(char *buf, long i, long k)
{
    for (long j = 0; check && j < k; j++)
        stamp(buf + (size_t)j * size, i + j);
}

static void stream_b(struct end *e, char *buf)
{
    long total = warm + count, b = mode == M_BATCH ? batch_of() : 1;
    if (mode == M_BATCH && bytestream()) {
        for (long i = 0; i < total; i += b) {
            long k = total - i < b ? total - i : b;
            stamp_all(buf, i, k);
            put(e, buf, (size_t)k * size); /* contiguous messages, one write */
        }
        return;
    }
    if (mode == M_BATCH && !is("mq") && !is("sysv")) {
        struct mmsghdr mm[MAXBATCH];
        struct iovec iov[MAXBATCH];
        slots(mm, iov, b, buf, size);
        for (long i = 0; i < total;) {
            long k = total - i < b ? total - i : b;
            stamp_all(buf, i, k);
            int m = sendmmsg(e->wfd, mm, (unsigned)k, 0);
            if (m < 0)
                die("sendmmsg");
            i += m; /* check mode: what did not go is stamped again from slot 0 */
        }
        return;
    }
    for (long i = 0; i < total; i++) {
        stamp_all(buf, i, 1);
        put(e, buf, size);
    }
}

static void stream_a(struct end *e, char *buf, size_t cap)
{
    long total = warm + count, msgs = 0;
    verify_init(buf);
    if (bytestream()) {
        uint64_t bytes = 0, want = (uint64_t)total * size, mark = (uint64_t)warm * size;
        while (bytes < want) {
            uint64_t left = want - bytes;
            ssize_t r = read(e->rfd, buf, left < RDBUF ? left : RDBUF);
            if (r <= 0)
                die(r == 0 ? "read: end of stream" : "read");
            if (check)
                verify(buf, (size_t)r);
            if (bytes < mark && bytes + (uint64_t)r >= mark)
                sh->t0 = now_ns();
            bytes += (uint64_t)r;
        }
        sh->t1 = now_ns();
        sh->got = check ? vr.msgs : total;
        return;
    }
    if (mode == M_BATCH && !is("mq") && !is("sysv")) {
        struct mmsghdr mm[MAXBATCH];
        struct iovec iov[MAXBATCH];
        slots(mm, iov, MAXBATCH, buf, cap);
        while (msgs < total) {
            long want = total - msgs < MAXBATCH ? total - msgs : MAXBATCH;
            int m = recvmmsg(e->rfd, mm, (unsigned)want, MSG_WAITFORONE, NULL);
            if (m <= 0)
                die("recvmmsg");
            for (int j = 0; check && j < m; j++)
                checked(iov[j].iov_base, mm[j].msg_len, msgs + j);
            if (msgs < warm && msgs + m >= warm)
                sh->t0 = now_ns();
            msgs += m;
        }
    } else {
        while (msgs < total) {
            size_t n = get(e, buf, cap);
            if (check)
                checked(buf, n, msgs);
            else if (n != size) {
                snprintf(sh->err, sizeof sh->err, "%s: message %ld has the wrong size", mech, msgs);
                _exit(1);
            }
            if (++msgs == warm)
                sh->t0 = now_ns();
        }
    }
    sh->t1 = now_ns();
    sh->got = msgs;
}

/* ---- setting up ---- */

static char dir[64];

static void unix_path(struct sockaddr_un *a, const char *leaf)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, leaf);
}

static int sock(int domain, int type)
{
    int fd = socket(domain, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    return fd;
}

static void big_pipe(int fd)
{
    fcntl(fd, F_SETPIPE_SZ, 1 << 20); /* best effort: the pipe-max-size may be lower */
}

/* Objects made before fork: fds[0..1] A's read and write, fds[2..3] B's. */
static int fds[4] = {-1, -1, -1, -1};
static int tcp_listener = -1;
static struct sockaddr_in tcp_addr;
static char mqname[2][64];
static int sysv_id[2] = {-1, -1};

static void setup(void)
{
    int p[2], q[2];
    if (is("pipe")) {
        if (pipe2(p, O_CLOEXEC) || pipe2(q, O_CLOEXEC))
            die("pipe");
        big_pipe(p[0]);
        big_pipe(q[0]);
        fds[0] = p[0], fds[3] = p[1]; /* B -> A */
        fds[2] = q[0], fds[1] = q[1]; /* A -> B */
    } else if (is("fifo")) {
        char a[128], b[128];
        snprintf(a, sizeof a, "%s/ab", dir);
        snprintf(b, sizeof b, "%s/ba", dir);
        if (mkfifo(a, 0600) || mkfifo(b, 0600))
            die("mkfifo");
    } else if (is("unix") || is("unixpacket") || is("unixpacket-cred") || is("unixgram-pair")) {
        int t = is("unix") ? SOCK_STREAM : is("unixgram-pair") ? SOCK_DGRAM : SOCK_SEQPACKET;
        if (socketpair(AF_UNIX, t | SOCK_CLOEXEC, 0, p) != 0)
            die("socketpair");
        int one = 1;
        if (is("unixpacket-cred") && (setsockopt(p[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) ||
                                      setsockopt(p[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one)))
            die("setsockopt SO_PASSCRED");
        fds[0] = fds[1] = p[0];
        fds[2] = fds[3] = p[1];
    } else if (is("unixgram")) {
        struct sockaddr_un sa, ca;
        unix_path(&sa, "server");
        unix_path(&ca, "client");
        int s = sock(AF_UNIX, SOCK_DGRAM), c = sock(AF_UNIX, SOCK_DGRAM);
        if (bind(s, (struct sockaddr *)&sa, sizeof sa) ||
            bind(c, (struct sockaddr *)&ca, sizeof ca))
            die("bind");
        if (connect(c, (struct sockaddr *)&sa, sizeof sa))
            die("connect");
        fds[0] = fds[1] = s;
        fds[2] = fds[3] = c;
    } else if (is("tcp")) {
        tcp_listener = sock(AF_INET, SOCK_STREAM);
        socklen_t l = sizeof tcp_addr;
        tcp_addr =
            (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(tcp_listener, (struct sockaddr *)&tcp_addr, sizeof tcp_addr) ||
            getsockname(tcp_listener, (struct sockaddr *)&tcp_addr, &l) || listen(tcp_listener, 1))
            die("tcp listen");
    } else if (is("udp") || is("udp-pair")) {
        /* udp: s[0], s[1] receive (bound, unconnected), s[2], s[3] send (connected to the
         * other side's receiving socket); udp-pair: s[0], s[1] bound and connected both ways. */
        int pair = is("udp-pair"), s[4];
        struct sockaddr_in a[2];
        struct timeval tv = {.tv_sec = 5};
        for (int i = 0; i < 2; i++) {
            socklen_t l = sizeof a[i];
            s[i] = sock(AF_INET, SOCK_DGRAM);
            a[i] = (struct sockaddr_in){.sin_family = AF_INET,
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (bind(s[i], (struct sockaddr *)&a[i], sizeof a[i]) ||
                getsockname(s[i], (struct sockaddr *)&a[i], &l))
                die("udp bind");
            if (setsockopt(s[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
                die("setsockopt SO_RCVTIMEO");
        }
        for (int i = 0; i < 2; i++) {
            s[2 + i] = pair ? s[i] : sock(AF_INET, SOCK_DGRAM);
            if (connect(s[2 + i], (struct sockaddr *)&a[1 - i], sizeof a[1 - i]))
                die("udp connect");
        }
        fds[0] = s[0], fds[1] = s[2];
        fds[2] = s[1], fds[3] = s[3];
    } else if (is("mq")) {
        struct mq_attr at = {.mq_maxmsg = 10, .mq_msgsize = (long)size};
        int m[2];
        for (int i = 0; i < 2; i++) {
            snprintf(mqname[i], sizeof mqname[i], "/ipkindep-%d-%d", (int)getpid(), i);
            if ((m[i] = mq_open(mqname[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &at)) < 0)
                die("mq_open");
        }
        fds[0] = m[0], fds[3] = m[0]; /* B -> A */
        fds[2] = m[1], fds[1] = m[1]; /* A -> B */
    } else if (is("sysv")) {
        for (int i = 0; i < 2; i++)
            if ((sysv_id[i] = msgget(IPC_PRIVATE, IPC_CREAT | 0600)) < 0)
                die("msgget");
        fds[0] = fds[3] = sysv_id[0];
        fds[2] = fds[1] = sysv_id[1];
    } else {
        snprintf(sh->err, sizeof sh->err, "unknown mechanism %s", mech);
        _exit(2);
    }
}

static void teardown(void)
{
    char p[128];
    for (const char *const *l = (const char *const[]){"ab", "ba", "server", "client", NULL}; *l;
         l++) {
        snprintf(p, sizeof p, "%s/%s", dir, *l);
        unlink(p);
    }
    rmdir(dir);
    for (int i = 0; i < 2; i++) {
        if (mqname[i][0])
            mq_unlink(mqname[i]);
        if (sysv_id[i] >= 0)
            msgctl(sysv_id[i], IPC_RMID, NULL);
    }
}

/* Side A (0) or B (1): its ends, opened after fork where the mechanism needs it. */
static void open_end(int side, struct end *e)
{
    e->rfd = fds[side * 2];
    e->wfd = fds[side * 2 + 1];
    e->is_server = side == 0 && is("unixgram");
    e->named = is("udp");
    if (is("fifo")) {
        char a[128], b[128];
        snprintf(a, sizeof a, "%s/ab", dir);
        snprintf(b, sizeof b, "%s/ba", dir);
        /* Both open ab first: neither waits on an open the other has not reached. */
        if (side == 0) {
            e->rfd = open(b, O_RDONLY | O_CLOEXEC);
            e->wfd = open(a, O_WRONLY | O_CLOEXEC);
        } else {
            e->wfd = open(b, O_WRONLY | O_CLOEXEC);
            e->rfd = open(a, O_RDONLY | O_CLOEXEC);
        }
        if (e->rfd < 0 || e->wfd < 0)
            die("open fifo");
        big_pipe(e->rfd);
        big_pipe(e->wfd);
    } else if (is("tcp")) {
        int one = 1, fd;
        if (side == 0)
            fd = accept4(tcp_listener, NULL, NULL, SOCK_CLOEXEC);
        else {
            fd = sock(AF_INET, SOCK_STREAM);
            if (connect(fd, (struct sockaddr *)&tcp_addr, sizeof tcp_addr) != 0)
                die("tcp connect");
        }
        if (fd < 0)
            die("accept");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        e->rfd = e->wfd = fd;
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double rank(const int64_t *v, long n, double q)
{
    long k = (long)(q * (double)n + 0.999999) - 1;
    return (double)v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) {
        fprintf(stderr,
                "usage: %s MECH SIZE latency|message|batch CPU_A CPU_B COUNT [count|check]\n",
                argv[0]);
        return 2;
    }
    check = argc == 8 && !strcmp(argv[7], "check");
    mech = argv[1];
    size = strtoul(argv[2], NULL, 10);
    mode = !strcmp(argv[3], "latency") ? M_LAT : !strcmp(argv[3], "message") ? M_MSG : M_BATCH;
    int cpu[2] = {atoi(argv[4]), atoi(argv[5])};
    count = atol(argv[6]);
    if (size < 1 || count < 1 || (mode == M_BATCH && strcmp(argv[3], "batch") != 0) ||
        (argc == 8 && !check && strcmp(argv[7], "count") != 0)) {
        printf("ok=0 err=bad arguments\n");
        return 2;
    }
    if (mode != M_LAT &&
        (!strcmp(mech, "udp") ||
         !strcmp(mech, "udp-pair"))) { /* it drops under load: needs flow control */
        printf("ok=0 err=n/a: udp streams are measured by the engine only\n");
        return 2;
    }
    warm = count / 10 < 10 ? 10 : count / 10 > 1000 ? 1000 : count / 10;
    size_t shsz = sizeof *sh + (mode == M_LAT ? (size_t)count * sizeof(int64_t) : 0);
    sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        printf("ok=0 err=mmap\n");
        return 1;
    }
    snprintf(dir, sizeof dir, "/tmp/ipkindep.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        printf("ok=0 err=mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    pid_t pid[2] = {0, 0};
    pid_t self = getpid();
    if (fork() == 0) { /* the objects are made in a child, so a failure still tears down */
        setup();
        fflush(NULL);
        for (int side = 0; side < 2; side++) {
            if ((pid[side] = fork()) == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                pin(cpu[side]);
                struct end e;
                open_end(side, &e);
                /* Buffers: a batch of receive slots (recvmmsg), or a 256 KiB stream read,
                 * or a batch of contiguous messages; the sysv type word in front. */
                size_t cap = size + 64, need = cap * MAXBATCH + RDBUF + size * MAXBATCH;
                char *mem = malloc(need + sizeof(long));
                if (mem == NULL)
                    die("malloc");
                memset(mem, 0x5a, need + sizeof(long));
                *(long *)mem = 1;
                char *buf = mem + sizeof(long);
                if (mode == M_LAT)
                    side == 0 ? latency_a(&e, buf, cap) : latency_b(&e, buf, cap);
                else
                    side == 0 ? stream_a(&e, buf, cap) : stream_b(&e, buf);
                _exit(0);
            }
        }
        int st, bad = 0;
        for (int i = 0; i < 2; i++) {
            pid_t w = wait(&st);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                bad = 1;
                kill(pid[w == pid[0] ? 1 : 0], SIGKILL);
            }
        }
        teardown();
        _exit(bad);
    }
    int st;
    wait(&st);
    (void)self;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("ok=0 err=%s\n", sh->err[0] ? sh->err : "a side failed");
        return 1;
    }
    if (mode == M_LAT) {
        qsort(sh->samples, (size_t)count, sizeof(int64_t), cmp64);
        double sum = 0;
        for (long i = 0; i < count; i++)
            sum += (double)sh->samples[i];
        printf("ok=1 n=%ld min=%.0f p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f rtps=%.1f\n",
               count, rank(sh->samples, count, 0), rank(sh->samples, count, 0.5),
               rank(sh->samples, count, 0.9), rank(sh->samples, count, 0.99),
               rank(sh->samples, count, 0.999), rank(sh->samples, count, 1), count * 1e9 / sum);
    } else {
        double secs = (double)(sh->t1 - sh->t0) / 1e9;
        printf("ok=1 n=%ld got=%ld secs=%.6f mps=%.1f batch=%ld checked=%d\n", count, sh->got, secs,
               secs > 0 ? (double)count / secs : 0, mode == M_BATCH ? batch_of() : 1, check);
    }
    return 0;
}
