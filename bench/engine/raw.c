/*
 * raw.c - the floors: each kernel mechanism driven with plain blocking system calls, the
 * same message sizes, no framing, no library. Every mechanism has two throughput floors: one
 * call per message (beside ipckit's rows that send one message per call), and batched (beside
 * ipckit's batched rows): a batch of contiguous messages goes in one write() on a byte stream,
 * one sendmmsg() on a datagram or seqpacket socket (received with recvmmsg()), and one call per
 * message on a queue, which has no batch call. A byte stream is read in 256 KiB reads when
 * streaming; a ping-pong reads exactly one message's bytes. unixgram's floor has the
 * listener's topology (A's socket bound and unconnected, replying with sendto() to whoever
 * sent, B's bound and connected to it): that is what ipk_listen makes, and such a receiver is
 * held to net.unix.max_dgram_qlen; the connected socketpair, which the kernel exempts from
 * that limit, runs beside it as "raw unix dgram pair". The independent program in bench/indep
 * checks every floor in the same run (indep_run.c). Pipes and FIFOs have ipckit's default pipe size
 * (see raw_pipe_size). This is what a careful programmer would write by hand, so an ipckit figure
 * divided by it is the price (or the gain) of the library.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum raw_mech {
    RAW_PIPE,
    RAW_FIFO,
    RAW_UNIX,
    RAW_UNIXGRAM,
    RAW_UNIXPACKET,
    RAW_TCP,
    RAW_UDP,
    RAW_MQ,
    RAW_SYSV,
    RAW_SIGNAL,
    RAW_UNIXGRAM_PAIR,
    RAW_COUNT
};

static const struct raw_def {
    const char *label, *mech;
    size_t maxsize;
    int lossy;
} raw_defs[RAW_COUNT] = {
    [RAW_PIPE] = {"raw pipe", "pipe", 0, 0},
    [RAW_FIFO] = {"raw fifo", "fifo", 0, 0},
    [RAW_UNIX] = {"raw unix stream", "unix", 0, 0},
    [RAW_UNIXGRAM] = {"raw unix dgram", "unixgram", 0, 0},
    [RAW_UNIXPACKET] = {"raw unix seqpacket", "unixpacket", 0, 0},
    [RAW_TCP] = {"raw tcp", "tcp", 0, 0},
    [RAW_UDP] = {"raw udp pair", "udp", 65507, 1},
    [RAW_MQ] = {"raw posix mq", "mq", 0, 0},
    [RAW_SYSV] = {"raw sysv msg", "sysv", 0, 0},
    [RAW_SIGNAL] = {"raw sigqueue", "signal", 8, 0},
    [RAW_UNIXGRAM_PAIR] = {"raw unix dgram pair", "unixgram", 0, 0},
};

#define RAW_SIG (SIGRTMIN + 1)

#define RAW_MMSG BENCH_BATCH /* datagrams per recvmmsg() in a batched stream */

typedef struct raw_st {
    int rfd, wfd, lfd;
    int qin, qout; /* sysv queue ids */
    pid_t peer;
    struct msgbuf *mb;
    int server; /* unixgram side A: answers whoever sent last */
    struct sockaddr_un from;
    socklen_t fromlen;
    /* batched datagram receive: what one recvmmsg() brought, handed out one at a time */
    struct mmsghdr *mm;
    struct iovec *iov;
    unsigned char *slots;
    size_t slot;
    int have, next;
} raw_st;

static int raw_sysfail(bench_side *sd, const char *what)
{
    return bench_fail(sd, "%s: %s: %s", sd->spec->label, what, strerror(errno));
}

static void raw_path(const bench_spec *s, int which, char *out, size_t cap)
{
    snprintf(out, cap, "%s/raw-%d-%d", s->tmpdir, s->topo, which);
}

/* Pipes and FIFOs get the size ipckit's fifo: and exec: give theirs by default (pipesz=: 1 MiB,
 * capped by pipe-max-size), so that the floor is measured with the same pipe: a 64 KiB message
 * fits whole in both, and the ratio is the price of the library, not of the pipe's size. */
static void raw_pipe_size(int fd)
{
    size_t most = bench_proc_limit("/proc/sys/fs/pipe-max-size");
    size_t want = (size_t)1 << 20;
    if (most && most < want)
        want = most;
    if (fcntl(fd, F_GETPIPE_SZ) < (int)want)
        fcntl(fd, F_SETPIPE_SZ, (int)want); /* best effort, as ipckit's default */
}

static int raw_prepare(bench_spec *s)
{
    bench_side sd = {.spec = s};
    char p[4096];
    switch (s->topo) {
    case RAW_PIPE:
        if (pipe2(s->fd, O_CLOEXEC) != 0 || pipe2(s->fd + 2, O_CLOEXEC) != 0)
            return raw_sysfail(&sd, "pipe");
        raw_pipe_size(s->fd[0]);
        raw_pipe_size(s->fd[2]);
        return 0;
    case RAW_FIFO:
        for (int i = 0; i < 2; i++) {
            raw_path(s, i, p, sizeof p);
            unlink(p);
            if (mkfifo(p, 0600) != 0)
                return raw_sysfail(&sd, "mkfifo");
        }
        return 0;
    case RAW_MQ:
        for (int i = 0; i < 2; i++) {
            struct mq_attr a = {.mq_maxmsg = 10, .mq_msgsize = (long)(s->size ? s->size : 1)};
            snprintf(s->name[i], sizeof s->name[i], "/ipkbench-%d-raw-%d", (int)getpid(), i);
            mq_unlink(s->name[i]);
            s->fd[i] = mq_open(s->name[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
            if (s->fd[i] < 0)
                return raw_sysfail(&sd, "mq_open (msgsize = message size, maxmsg 10)");
        }
        return 0;
    case RAW_SYSV:
        for (int i = 0; i < 2; i++)
            if ((s->id[i] = msgget(IPC_PRIVATE, IPC_CREAT | 0600)) < 0)
                return raw_sysfail(&sd, "msgget");
        return 0;
    case RAW_UNIXGRAM_PAIR:
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s->fd) != 0)
            return raw_sysfail(&sd, "socketpair");
        return 0;
    }
    return 0;
}

static void raw_cleanup(bench_spec *s)
{
    char p[4096];
    for (int i = 0; i < 8; i++)
        if (s->fd[i] >= 0) {
            close(s->fd[i]);
            s->fd[i] = -1;
        }
    for (int i = 0; i < 2; i++) {
        raw_path(s, i, p, sizeof p);
        unlink(p);
        if (s->topo == RAW_MQ && s->name[i][0])
            mq_unlink(s->name[i]);
        if (s->topo == RAW_SYSV && s->id[i] > 0)
            msgctl((int)s->id[i], IPC_RMID, NULL);
    }
}

static int raw_socket(bench_side *sd, int domain, int type)
{
    int fd = socket(domain, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return raw_sysfail(sd, "socket");
    if (domain == AF_INET && type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (type == SOCK_DGRAM && domain == AF_INET) {
        /* A lost datagram ends the run with a message instead of a hang. */
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return fd;
}

static int raw_unix_addr(const bench_spec *s, int which, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    raw_path(s, which, a->sun_path, sizeof a->sun_path);
    return 0;
}

static int raw_inet_bind(bench_side *sd, int fd, char *name, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        return raw_sysfail(sd, "bind 127.0.0.1:0");
    snprintf(name, cap, "%u", ntohs(a.sin_port));
    return 0;
}

static int raw_inet_connect(bench_side *sd, int fd, const char *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)atoi(port))};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return raw_sysfail(sd, "connect");
    return 0;
}

static int raw_listen(bench_side *sd, char *name, size_t cap)
{
    const bench_spec *s = sd->spec;
    raw_st *st = bench_side_state(sd, sizeof *st);
    if (st == NULL)
        return -1;
    st->rfd = st->wfd = st->lfd = -1;
    struct sockaddr_un un;
    int a = sd->side == BENCH_A;
    switch (s->topo) {
    case RAW_UNIX:
    case RAW_UNIXPACKET:
        if (!a)
            return 0;
        raw_unix_addr(s, 0, &un);
        unlink(un.sun_path);
        st->lfd = raw_socket(sd, AF_UNIX, s->topo == RAW_UNIX ? SOCK_STREAM : SOCK_SEQPACKET);
        if (st->lfd < 0 || bind(st->lfd, (struct sockaddr *)&un, sizeof un) != 0 ||
            listen(st->lfd, 4) != 0)
            return raw_sysfail(sd, "bind/listen");
        return 0;
    case RAW_UNIXGRAM:
        raw_unix_addr(s, sd->side, &un);
        unlink(un.sun_path);
        st->rfd = st->wfd = raw_socket(sd, AF_UNIX, SOCK_DGRAM);
        if (st->rfd < 0 || bind(st->rfd, (struct sockaddr *)&un, sizeof un) != 0)
            return raw_sysfail(sd, "bind");
        st->server = a;
        return 0;
    case RAW_TCP:
        if (!a)
            return 0;
        st->lfd = raw_socket(sd, AF_INET, SOCK_STREAM);
        if (st->lfd < 0 || raw_inet_bind(sd, st->lfd, name, cap) < 0)
            return -1;
        if (listen(st->lfd, 4) != 0)
            return raw_sysfail(sd, "listen");
        return 0;
    case RAW_UDP:
        st->rfd = st->wfd = raw_socket(sd, AF_INET, SOCK_DGRAM);
        if (st->rfd < 0)
            return -1;
        return raw_inet_bind(sd, st->rfd, name, cap);
    case RAW_SIGNAL: {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, RAW_SIG);
        if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
            return raw_sysfail(sd, "sigprocmask");
        snprintf(name, cap, "%d", (int)getpid());
        return 0;
    }
    }
    return 0;
}

static int raw_open(bench_side *sd, const char *peer)
{
    const bench_spec *s = sd->spec;
    raw_st *st = sd->st;
    int a = sd->side == BENCH_A;
    struct sockaddr_un un;
    char p[4096];
    switch (s->topo) {
    case RAW_PIPE:
        st->rfd = a ? s->fd[0] : s->fd[2];
        st->wfd = a ? s->fd[3] : s->fd[1];
        close(a ? s->fd[1] : s->fd[3]);
        close(a ? s->fd[2] : s->fd[0]);
        return 0;
    case RAW_FIFO:
        /* Both open fwd first, then back: the open that blocks for its peer never waits on
         * an open the peer has not reached. */
        raw_path(s, 0, p, sizeof p);
        if ((a ? (st->rfd = open(p, O_RDONLY | O_CLOEXEC))
               : (st->wfd = open(p, O_WRONLY | O_CLOEXEC))) < 0)
            return raw_sysfail(sd, "open fifo");
        raw_path(s, 1, p, sizeof p);
        if ((a ? (st->wfd = open(p, O_WRONLY | O_CLOEXEC))
               : (st->rfd = open(p, O_RDONLY | O_CLOEXEC))) < 0)
            return raw_sysfail(sd, "open fifo");
        raw_pipe_size(a ? st->rfd : st->wfd);
        raw_pipe_size(a ? st->wfd : st->rfd);
        return 0;
    case RAW_UNIX:
    case RAW_UNIXPACKET:
        if (a) {
            st->rfd = st->wfd = accept4(st->lfd, NULL, NULL, SOCK_CLOEXEC);
            return st->rfd < 0 ? raw_sysfail(sd, "accept") : 0;
        }
        raw_unix_addr(s, 0, &un);
        st->rfd = st->wfd =
            raw_socket(sd, AF_UNIX, s->topo == RAW_UNIX ? SOCK_STREAM : SOCK_SEQPACKET);
        if (st->rfd < 0 || connect(st->rfd, (struct sockaddr *)&un, sizeof un) != 0)
            return raw_sysfail(sd, "connect");
        return 0;
    case RAW_UNIXGRAM:
        if (a) /* the listener: bound, never connected */
            return 0;
        raw_unix_addr(s, BENCH_A, &un);
        if (connect(st->rfd, (struct sockaddr *)&un, sizeof un) != 0)
            return raw_sysfail(sd, "connect");
        return 0;
    case RAW_UNIXGRAM_PAIR:
        st->rfd = st->wfd = s->fd[a ? 0 : 1];
        close(s->fd[a ? 1 : 0]);
        return 0;
    case RAW_TCP:
        if (a) {
            st->rfd = st->wfd = accept4(st->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (st->rfd < 0)
                return raw_sysfail(sd, "accept");
            int one = 1;
            setsockopt(st->rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return 0;
        }
        st->rfd = st->wfd = raw_socket(sd, AF_INET, SOCK_STREAM);
        return st->rfd < 0 ? -1 : raw_inet_connect(sd, st->rfd, peer);
    case RAW_UDP:
        return raw_inet_connect(sd, st->rfd, peer);
    case RAW_MQ:
        st->rfd = s->fd[a ? 0 : 1];
        st->wfd = s->fd[a ? 1 : 0];
        return 0;
    case RAW_SYSV:
        st->qin = (int)s->id[a ? 0 : 1];
        st->qout = (int)s->id[a ? 1 : 0];
        if ((st->mb = malloc(sizeof(long) + s->size + 64)) == NULL)
            return bench_fail(sd, "out of memory");
        st->mb->mtype = 1;
        return 0;
    case RAW_SIGNAL:
        st->peer = (pid_t)atoi(peer);
        return 0;
    }
    return bench_fail(sd, "unknown raw mechanism");
}

static int raw_is_stream(const bench_spec *s)
{
    return s->topo == RAW_PIPE || s->topo == RAW_FIFO || s->topo == RAW_UNIX || s->topo == RAW_TCP;
}

static int raw_send(bench_side *sd, const void *buf, size_t len)
{
    const bench_spec *s = sd->spec;
    raw_st *st = sd->st;
    if (raw_is_stream(s)) {
        const char *p = buf;
        while (len > 0) {
            ssize_t w = write(st->wfd, p, len);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return raw_sysfail(sd, "write");
            p += w;
            len -= (size_t)w;
        }
        return 0;
    }
    int r;
    switch (s->topo) {
    case RAW_MQ:
        while ((r = mq_send(st->wfd, buf, len, 0)) != 0 && errno == EINTR)
            ;
        return r != 0 ? raw_sysfail(sd, "mq_send") : 0;
    case RAW_SYSV:
        memcpy(st->mb->mtext, buf, len);
        while ((r = msgsnd(st->qout, st->mb, len, 0)) != 0 && errno == EINTR)
            ;
        return r != 0 ? raw_sysfail(sd, "msgsnd") : 0;
    case RAW_SIGNAL: {
        union sigval v = {.sival_ptr = NULL};
        memcpy(&v, buf, len);
        /* The queue of pending real-time signals is bounded: wait for room. */
        while ((r = sigqueue(st->peer, RAW_SIG, v)) != 0 && (errno == EAGAIN || errno == EINTR))
            sched_yield();
        return r != 0 ? raw_sysfail(sd, "sigqueue") : 0;
    }
    }
    ssize_t w;
    if (st->server)
        while ((w = sendto(st->wfd, buf, len, 0, (struct sockaddr *)&st->from, st->fromlen)) < 0 &&
               errno == EINTR)
            ;
    else
        while ((w = send(st->wfd, buf, len, 0)) < 0 && errno == EINTR)
            ;
    return w < 0 ? raw_sysfail(sd, "send") : 0;
}

/* A batch: bufs are n contiguous messages (the engine lays a batch out in one block), written
 * with one write() on a byte stream; one sendmmsg() on a datagram or seqpacket socket; one call
 * each on a queue or a signal, which have no batch call. */
static long raw_sendv(bench_side *sd, void *const *bufs, size_t n, size_t len)
{
    const bench_spec *s = sd->spec;
    raw_st *st = sd->st;
    for (size_t i = 1; i < n; i++)
        if ((unsigned char *)bufs[i] != (unsigned char *)bufs[0] + i * len)
            return bench_fail(sd, "%s: a batch that is not contiguous", s->label);
    if (raw_is_stream(s))
        return raw_send(sd, bufs[0], n * len) < 0 ? -1 : (long)n;
    if (s->topo == RAW_MQ || s->topo == RAW_SYSV || s->topo == RAW_SIGNAL) {
        for (size_t i = 0; i < n; i++)
            if (raw_send(sd, bufs[i], len) < 0)
                return -1;
        return (long)n;
    }
    struct mmsghdr mm[BENCH_BATCH];
    struct iovec iov[BENCH_BATCH];
    if (n > BENCH_BATCH)
        n = BENCH_BATCH;
    for (size_t i = 0; i < n; i++) {
        iov[i] = (struct iovec){bufs[i], len};
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int m;
    while ((m = sendmmsg(st->wfd, mm, (unsigned)n, 0)) < 0 && errno == EINTR)
        ;
    return m < 1 ? raw_sysfail(sd, "sendmmsg") : m;
}

/* A batched datagram stream's receive: one recvmmsg() for what has arrived (up to RAW_MMSG),
 * then one message at a time from it. */
static long raw_recv_batched(bench_side *sd, void *buf, size_t cap)
{
    raw_st *st = sd->st;
    if (st->mm == NULL) {
        st->slot = sd->spec->size + 64;
        st->mm = calloc(RAW_MMSG, sizeof *st->mm);
        st->iov = calloc(RAW_MMSG, sizeof *st->iov);
        st->slots = malloc(RAW_MMSG * st->slot);
        if (st->mm == NULL || st->iov == NULL || st->slots == NULL)
            return bench_fail(sd, "out of memory");
        for (int i = 0; i < RAW_MMSG; i++) {
            st->iov[i] = (struct iovec){st->slots + (size_t)i * st->slot, st->slot};
            st->mm[i].msg_hdr.msg_iov = &st->iov[i];
            st->mm[i].msg_hdr.msg_iovlen = 1;
        }
    }
    if (st->next == st->have) {
        int m;
        while ((m = recvmmsg(st->rfd, st->mm, RAW_MMSG, MSG_WAITFORONE, NULL)) < 0 &&
               errno == EINTR)
            ;
        if (m < 0 && errno == EAGAIN)
            return bench_fail(sd, "%s: nothing for 5 s: datagrams lost", sd->spec->label);
        if (m < 1)
            return raw_sysfail(sd, "recvmmsg");
        st->have = m;
        st->next = 0;
    }
    size_t n = st->mm[st->next].msg_len;
    memcpy(buf, st->iov[st->next].iov_base, n < cap ? n : cap);
    st->next++;
    return (long)n;
}

static long raw_recv(bench_side *sd, void *buf, size_t cap)
{
    const bench_spec *s = sd->spec;
    raw_st *st = sd->st;
    ssize_t r;
    if (raw_is_stream(s)) {
        size_t got = 0;
        while (got < s->size) {
            r = read(st->rfd, (char *)buf + got, s->size - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return r == 0 ? bench_fail(sd, "%s: end of stream", s->label)
                              : raw_sysfail(sd, "read");
            got += (size_t)r;
        }
        return (long)got;
    }
    switch (s->topo) {
    case RAW_MQ:
        while ((r = mq_receive(st->rfd, buf, cap, NULL)) < 0 && errno == EINTR)
            ;
        return r < 0 ? raw_sysfail(sd, "mq_receive") : r;
    case RAW_SYSV:
        while ((r = msgrcv(st->qin, st->mb, cap, 0, 0)) < 0 && errno == EINTR)
            ;
        if (r < 0)
            return raw_sysfail(sd, "msgrcv");
        memcpy(buf, st->mb->mtext, (size_t)r);
        return r;
    case RAW_SIGNAL: {
        sigset_t set;
        siginfo_t si;
        sigemptyset(&set);
        sigaddset(&set, RAW_SIG);
        while (sigwaitinfo(&set, &si) < 0)
            if (errno != EINTR)
                return raw_sysfail(sd, "sigwaitinfo");
        memcpy(buf, &si.si_value, s->size);
        return (long)s->size;
    }
    }
    if (s->mode == BENCH_THROUGHPUT && !s->permsg)
        return raw_recv_batched(sd, buf, cap);
    if (st->server) {
        st->fromlen = sizeof st->from;
        while ((r = recvfrom(st->rfd, buf, cap, 0, (struct sockaddr *)&st->from, &st->fromlen)) <
                   0 &&
               errno == EINTR)
            ;
    } else
        while ((r = recv(st->rfd, buf, cap, 0)) < 0 && errno == EINTR)
            ;
    if (r < 0 && errno == EAGAIN)
        return bench_fail(sd, "%s: nothing for 5 s: datagrams lost", s->label);
    return r < 0 ? raw_sysfail(sd, "recv") : r;
}

static long raw_recv_bytes(bench_side *sd, void *buf, size_t cap)
{
    raw_st *st = sd->st;
    if (!raw_is_stream(sd->spec))
        return raw_recv(sd, buf, cap);
    for (;;) {
        ssize_t r = read(st->rfd, buf, cap);
        if (r > 0)
            return r;
        if (r < 0 && errno == EINTR)
            continue;
        return r == 0 ? bench_fail(sd, "%s: end of stream", sd->spec->label)
                      : raw_sysfail(sd, "read");
    }
}

static void raw_close(bench_side *sd)
{
    raw_st *st = sd->st;
    if (st == NULL)
        return;
    if (st->rfd >= 0)
        close(st->rfd);
    if (st->wfd >= 0 && st->wfd != st->rfd)
        close(st->wfd);
    if (st->lfd >= 0)
        close(st->lfd);
    free(st->mb);
    free(st->mm);
    free(st->iov);
    free(st->slots);
    free(st);
    sd->st = NULL;
}

/* Message-oriented mechanisms receive one message per call even in a stream; byte streams
 * read whatever has arrived (recv_bytes), so the floor is not held back by its reader. */
const bench_ops bench_ops_raw = {
    .impl = "raw",
    .prepare = raw_prepare,
    .listen = raw_listen,
    .open = raw_open,
    .send = raw_send,
    .sendv = raw_sendv,
    .recv = raw_recv,
    .recv_bytes = raw_recv_bytes,
    .close = raw_close,
    .cleanup = raw_cleanup,
};

bench_spec *bench_list_add(bench_list *l, const bench_ops *ops, const char *label, const char *mech)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        bench_spec *v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    bench_spec *s = &l->v[l->n++];
    memset(s, 0, sizeof *s);
    s->ops = ops;
    snprintf(s->label, sizeof s->label, "%s", label);
    snprintf(s->mech, sizeof s->mech, "%s", mech);
    return s;
}

size_t bench_proc_limit(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &v) != 1)
        v = 0;
    fclose(f);
    return v > 0 ? (size_t)v : 0;
}

int bench_floor_add(bench_list *l, const bench_ops *ops, int topo, int permsg, const char *label,
                    const char *mech, const char *key, bench_spec **out)
{
    *out = NULL;
    for (size_t i = 0; i < l->n; i++) /* each floor once */
        if (l->v[i].ops == ops && l->v[i].topo == topo && l->v[i].permsg == permsg)
            return 0;
    char name[48];
    snprintf(name, sizeof name, "%s%s", label, permsg ? "" : " batched");
    bench_spec *s = bench_list_add(l, ops, name, mech);
    if (s == NULL)
        return -1;
    s->topo = topo;
    s->permsg = permsg;
    if (!permsg) /* the batched floor is a throughput row only */
        s->modes = BENCH_THROUGHPUT;
    snprintf(s->key, sizeof s->key, "%s", key);
    *out = s;
    return 1;
}

int bench_raw_all(bench_list *l, const char *only_mech)
{
    for (int m = 0; m < RAW_COUNT; m++) {
        if (only_mech && strcmp(only_mech, raw_defs[m].mech) != 0)
            continue;
        for (int permsg = 1; permsg >= 0; permsg--) {
            bench_spec *s;
            int r =
                bench_floor_add(l, &bench_ops_raw, m, permsg, raw_defs[m].label, raw_defs[m].mech,
                                m == RAW_UNIXGRAM_PAIR || m == RAW_UDP ? "pair" : "", &s);
            if (r <= 0) {
                if (r < 0)
                    return -1;
                continue;
            }
            s->maxsize = raw_defs[m].maxsize;
            if (m == RAW_MQ)
                s->maxsize = bench_proc_limit(BENCH_MQ_MSGSIZE_MAX);
            if (m == RAW_SYSV)
                s->maxsize = bench_proc_limit(BENCH_SYSV_MSGMAX);
            s->lossy = raw_defs[m].lossy;
        }
    }
    if (bench_indep_all(l, only_mech) != 0)
        return -1;
    return bench_shm_all(l, only_mech);
}
