/*
 * sock.c - socket helpers shared by unix:, unixgram:, unixpacket:, tcp: and udp: (see sock.h).
 *
 * Every socket is SOCK_CLOEXEC. Stream sockets and listening sockets are SOCK_NONBLOCK: stream.c
 * and accept/connect wait by polling with the deadline, so a timeout is kept across EINTR and never
 * depends on SO_RCVTIMEO/SO_SNDTIMEO.
 *
 * Datagram and connected seqpacket sockets are left blocking, and the mode is chosen per call:
 * a call with a deadline passes MSG_DONTWAIT and polls on EAGAIN; a call that waits forever
 * passes no flag and lets the kernel block, one system call per message like a plain program.
 * Nothing is switched on the descriptor, whose O_NONBLOCK flag lives in the open file description
 * and is shared across fork(): a flip made for one caller could make another process's timed
 * call block forever. (Should someone set O_NONBLOCK on it anyway, a forever call that gets
 * EAGAIN still falls back to polling.)
 *
 * A timed receive would still be receive-poll-receive. So a datagram socket carries a fixed
 * SO_RCVTIMEO of IPK__SLICE_MS, the same value in every process (nothing to go stale across
 * fork), set by the first receive that can use it, one with at least a slice to wait: such a
 * receive blocks in the kernel for up to a slice, and only if that ends with EAGAIN does it poll
 * for the rest of its deadline with the exact time left. A receive with less than a slice left
 * polls at once. The slice is not set at open because a socket with SO_RCVTIMEO arms and
 * cancels a kernel timer in every receive that sleeps, which costs a ping-pong that only ever
 * waits forever about 2.5% of its round trip; a receive that waits forever handles the slice's
 * EAGAIN (another process sharing the socket may have set it) by polling. (An application that
 * changes SO_RCVTIMEO itself changes how long that first attempt can take.)
 *
 * Datagram receive: when the caller's buffer might be too small for the next message, the
 * message is first sized with MSG_PEEK|MSG_TRUNC (no copy), so that a message larger than cap
 * is reported with its size (c->need) and stays queued. When cap >= c->max (or, for UDP, cap is
 * larger than any datagram), one recvmsg() does: anything larger than that would be discarded
 * anyway, because a message above the channel's maximum is never delivered.
 */
#include "sock.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IPK__UDP4_MAX  65507u /* 65535 - 20 (IPv4 header) - 8 (UDP header) */
#define IPK__UDP6_MAX  65527u /* 65535 - 8 (UDP header); the IPv6 header is not in the length */
#define IPK__UNIX_SLOP 32     /* af_unix refuses a datagram above sk_sndbuf - 32 */
#define IPK__BATCH     256    /* messages per sendmmsg() */
#define IPK__MAX_FDS   16     /* SCM_RIGHTS descriptors received by mistake, then closed */
#define IPK__SLICE_MS  20     /* SO_RCVTIMEO of datagram sockets: see the top of the file */

int ipk__sock_setint(ipk_chan *c, int level, int opt, int val, const char *name)
{
    if (ipk__sys_setsockopt(c->rfd, level, opt, &val, sizeof val) != 0)
        return ipk__errsys(-errno, "%s: setsockopt %s=%d", c->name, name, val);
    return 0;
}

/* The largest datagram the kernel takes on this socket, checked before sending. */
static void ipk__sock_limit(ipk_chan *c, ipk__sock *s)
{
    s->limit = SIZE_MAX;
    if (s->type == SOCK_STREAM)
        return;
    if (s->family == AF_INET) {
        s->limit = IPK__UDP4_MAX;
        s->limit_why = "the UDP/IPv4 payload limit";
    } else if (s->family == AF_INET6) {
        s->limit = IPK__UDP6_MAX;
        s->limit_why = "the UDP/IPv6 payload limit";
    } else {
        int sb = 0;
        socklen_t l = sizeof sb;
        if (ipk__sys_getsockopt(c->rfd, SOL_SOCKET, SO_SNDBUF, &sb, &l) == 0 &&
            sb > IPK__UNIX_SLOP) {
            s->limit = (size_t)sb - IPK__UNIX_SLOP;
            s->limit_why = "this socket's largest datagram (SO_SNDBUF minus 32; "
                           "/proc/sys/net/core/wmem_default)";
        }
    }
}

int ipk__sock_open(ipk_chan *c, int family, int type)
{
    ipk__sock *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    /* A datagram socket never blocks in connect() (unix or UDP): blocking from the start. */
    int fd =
        ipk__sys_socket(family, type | SOCK_CLOEXEC | (type == SOCK_DGRAM ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) {
        int e = errno;
        free(s);
        return ipk__errsys(-e, "%s: socket", c->name);
    }
    s->type = type;
    s->family = family;
    c->tp = s;
    c->rfd = c->wfd = fd;
    c->wkind = IPK__W_SOCK;
    ipk__sock_limit(c, s);
    return 0;
}

int ipk__sock_close(ipk_chan *c)
{
    free(c->tp);
    c->tp = NULL;
    int r = ipk__close_fd(c->rfd);
    c->rfd = c->wfd = -1;
    return r;
}

static int ipk__sock_connect1(ipk_chan *c, const struct sockaddr *sa, socklen_t len,
                              const char *what, int64_t dl)
{
    unsigned step = 0; /* ipk__backoff: a backlog or queue that cannot be polled */
    for (;;) {
        if (ipk__sys_connect(c->rfd, sa, len) == 0)
            return 0;
        int e = errno;
        if (e == EINPROGRESS || (e == EINTR && sa->sa_family != AF_UNIX)) {
            /* TCP: the handshake goes on; its outcome is SO_ERROR once the socket polls. */
            int w = ipk__wait_fd(c->rfd, POLLOUT, dl);
            if (w < 0)
                return ipk__err(w, "%s: connect to %s: no answer before the deadline", c->name,
                                what);
            socklen_t l = sizeof e;
            if (ipk__sys_getsockopt(c->rfd, SOL_SOCKET, SO_ERROR, &e, &l) != 0)
                e = errno;
            if (e == 0)
                return 0;
        } else if (e == EAGAIN && sa->sa_family == AF_UNIX) {
            /* The listener's backlog is full; such a socket never polls writable. */
            int w = ipk__backoff(dl, &step);
            if (w == 0)
                continue;
            return ipk__err(w, "%s: connect to %s: the listener's backlog stayed full", c->name,
                            what);
        } else if (e == EINTR) {
            continue;
        }
        if (e == EPROTOTYPE)
            return ipk__errsys(-e, "%s: connect to %s: the socket there is of another type",
                               c->name, what);
        return ipk__errsys(-e, "%s: connect to %s", c->name, what);
    }
}

/* A connected seqpacket socket goes blocking (see the top of the file); a fresh descriptor that
 * no other process shares yet, so the flip is safe. */
static int ipk__sock_settle(ipk_chan *c)
{
    const ipk__sock *s = c->tp;
    if (s->type != SOCK_SEQPACKET)
        return 0;
    int fl = ipk__sys_fcntl(c->rfd, F_GETFL);
    if (fl < 0 || ipk__sys_fcntl(c->rfd, F_SETFL, fl & ~O_NONBLOCK) != 0)
        return ipk__errsys(-errno, "%s: fcntl O_NONBLOCK", c->name);
    return 0;
}

int ipk__sock_connect(ipk_chan *c, const struct sockaddr *sa, socklen_t len, const char *what,
                      int64_t dl)
{
    int r = ipk__sock_connect1(c, sa, len, what, dl);
    return r == 0 ? ipk__sock_settle(c) : r;
}

int ipk__sock_accept(ipk_chan *l, ipk_chan *p, int64_t dl)
{
    const ipk__sock *ls = l->tp;
    ipk__sock *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    for (;;) {
        int fd = ipk__sys_accept4(l->rfd, NULL, NULL,
                                  SOCK_CLOEXEC | (ls->type == SOCK_SEQPACKET ? 0 : SOCK_NONBLOCK));
        if (fd >= 0) {
            s->type = ls->type;
            s->family = ls->family;
            s->limit = ls->limit;
            s->limit_why = ls->limit_why;
            s->passcred = ls->passcred;
            p->tp = s;
            p->rfd = p->wfd = fd;
            p->wkind = IPK__W_SOCK;
            return 0;
        }
        int e = errno;
        /* accept(2): errors of a connection that died in the queue mean "try the next one". */
        if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT ||
            e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == ENETUNREACH)
            continue;
        if (e == EAGAIN) {
            int w = ipk__wait_fd(l->rfd, POLLIN, dl);
            if (w > 0)
                continue;
            free(s);
            return ipk__err(w, "%s: accept: no connection %s", l->name,
                            w == -EAGAIN ? "is waiting" : "came before the deadline");
        }
        free(s);
        return ipk__errsys(-e, "%s: accept", l->name);
    }
}

void ipk__sock_peercred(ipk_chan *c)
{
    struct ucred uc;
    socklen_t l = sizeof uc;
    if (ipk__sys_getsockopt(c->rfd, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0 && uc.pid > 0) {
        c->peer_pid = uc.pid;
        c->peer_uid = uc.uid;
        c->peer_gid = uc.gid;
    }
}

/* ---- names ---- */

static int ipk__gai_err(const ipk_chan *c, const char *host, int r)
{
    switch (r) {
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
        return ipk__err(IPK_EADDR, "%s: host '%s' not found (%s)", c->name, host, gai_strerror(r));
    case EAI_AGAIN:
        return ipk__err(-EAGAIN, "%s: resolving '%s' failed for now (%s)", c->name, host,
                        gai_strerror(r));
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return ipk__errsys(-errno, "%s: resolving '%s'", c->name, host);
    default:
        return ipk__err(IPK_EADDR, "%s: resolving '%s': %s", c->name, host, gai_strerror(r));
    }
}

int ipk__sock_resolve(const ipk_chan *c, int socktype, int passive, struct addrinfo **out)
{
    const char *host = c->addr.u.inet.host;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->addr.u.inet.port);
    struct addrinfo hints = {.ai_socktype = socktype, .ai_flags = AI_NUMERICSERV};
    if (c->addr.u.inet.any) {
        if (!passive)
            return ipk__err(IPK_EADDR, "%s: '*' (every interface) is for listen; dial a host",
                            c->name);
        host = NULL;
        hints.ai_flags |= AI_PASSIVE;
    } else if (host[0] == '\0') {
        host = "127.0.0.1"; /* an empty host is the loopback, never every interface */
    }
    if (!passive && c->addr.u.inet.port == 0)
        return ipk__err(IPK_EADDR, "%s: port 0 is for listen (the kernel picks a free port)",
                        c->name);
    int r = getaddrinfo(host, port, &hints, out);
    if (r != 0)
        return ipk__gai_err(c, host ? host : "*", r);
    if (c->addr.u.inet.any) {
        /* Prefer the IPv6 wildcard: with IPV6_V6ONLY off it also takes IPv4. */
        struct addrinfo **pp = out;
        for (; *pp; pp = &(*pp)->ai_next)
            if ((*pp)->ai_family == AF_INET6 && pp != out) {
                struct addrinfo *six = *pp;
                *pp = six->ai_next;
                six->ai_next = *out;
                *out = six;
                break;
            }
    }
    return 0;
}

void ipk__sock_fmt(const struct sockaddr *sa, char *buf, size_t cap)
{
    char h[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, h, sizeof h);
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            snprintf(buf, cap, "*:%u", ntohs(in->sin_port));
        else
            snprintf(buf, cap, "%s:%u", h, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, h, sizeof h);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) /* an IPv4 peer of a dual-stack socket */
            inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, h, sizeof h);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
            snprintf(buf, cap, "*:%u", ntohs(in6->sin6_port));
        else
            snprintf(buf, cap, IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? "%s:%u" : "[%s]:%u", h,
                     ntohs(in6->sin6_port));
    } else {
        snprintf(buf, cap, "(address family %d)", sa->sa_family);
    }
}

int ipk__sock_name(ipk_chan *c, const char *scheme, int own)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    int r = own ? ipk__sys_getsockname(c->rfd, (struct sockaddr *)&ss, &l)
                : ipk__sys_getpeername(c->rfd, (struct sockaddr *)&ss, &l);
    if (r != 0)
        return ipk__errsys(-errno, "%s: %s", c->name, own ? "getsockname" : "getpeername");
    char a[INET6_ADDRSTRLEN + 16];
    ipk__sock_fmt((struct sockaddr *)&ss, a, sizeof a);
    return ipk__set_name(c, "%s://%s", scheme, a);
}

/* ---- datagrams ---- */

/* MSG_DONTWAIT for a receive with less than a slice to wait (see the top of the file), else 0
 * once the socket has its slice (set here the first time one is needed); or a negative code.
 * now: the clock when it is known (c->t_call at the start of a receive), else 0. */
IPK__HOTPATH static int ipk__sock_dontwait(ipk_chan *c, int64_t dl, int64_t now)
{
    if (dl == IPK__DL_FOREVER)
        return 0;
    if (dl == IPK__DL_NOW || dl - (now ? now : ipk__now()) < (int64_t)IPK__SLICE_MS * 1000000)
        return MSG_DONTWAIT;
    ipk__sock *s = c->tp;
    if (!s->sliced) {
        struct timeval tv = {0, IPK__SLICE_MS * 1000};
        if (ipk__sys_setsockopt(c->rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
            return ipk__errsys(-errno, "%s: recv: setsockopt SO_RCVTIMEO", c->name);
        s->sliced = 1;
    }
    return 0;
}

/* The error of a failed datagram send or receive, with the message set. */
static int ipk__dgram_err(ipk_chan *c, int e, const char *op)
{
    ipk__sock *s = c->tp;
    if (e == ECONNREFUSED && s->family != AF_UNIX)
        return ipk__errsys(-e,
                           "%s: %s: nobody listens at the peer (ICMP port unreachable for an "
                           "earlier datagram)",
                           c->name, op);
    if (e == ECONNREFUSED)
        return ipk__errsys(-e, "%s: %s: the peer socket is gone", c->name, op);
    if (e == EMSGSIZE)
        return ipk__err(IPK_EMSGSIZE, "%s: %s: the kernel refused the datagram as too large (%s)",
                        c->name, op, strerror(e));
    return ipk__errsys(-e, "%s: %s", c->name, op);
}

/* Whether send() has somewhere to go; -EDESTADDRREQ for a listener that has heard no one. */
IPK__HOTPATH static int ipk__dgram_dest(ipk_chan *c, struct msghdr *mh)
{
    ipk__sock *s = c->tp;
    if (c->role != IPK__LISTENER)
        return 0;
    if (s->tolen == 0)
        return ipk__err(-EDESTADDRREQ,
                        "%s: send: a listener replies to the sender of the last datagram it "
                        "received, and there is none (or it had no address)",
                        c->name);
    mh->msg_name = &s->to;
    mh->msg_namelen = s->tolen;
    return 0;
}

/* One sendmmsg() of msgs[0..k), k <= IPK__BATCH, each with proto's destination. */
static int ipk__dgram_batch(int fd, const struct msghdr *proto, const ipk_iov *msgs, size_t k,
                            int flags)
{
    struct mmsghdr mm[IPK__BATCH];
    struct iovec iov[IPK__BATCH];
    for (size_t i = 0; i < k; i++) {
        iov[i] = (struct iovec){(void *)msgs[i].base, msgs[i].len};
        mm[i].msg_hdr = *proto;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_len = 0;
    }
    return ipk__sys_sendmmsg(fd, mm, (unsigned)k, flags);
}

IPK__HOTPATH long ipk__dgram_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl)
{
    ipk__sock *s = c->tp;
    size_t ok = 0; /* messages that pass the size check, all sent before the one that fails */
    while (ok < n && msgs[ok].len <= s->limit)
        ok++;
    if (ok < n && s->family == AF_UNIX) { /* SO_SNDBUF may have been raised since */
        ipk__sock_limit(c, s);
        while (ok < n && msgs[ok].len <= s->limit)
            ok++;
    }
    if (ok == 0)
        return ipk__err(IPK_EMSGSIZE,
                        "%s: message of %zu bytes exceeds %s of %zu bytes; nothing "
                        "was sent",
                        c->name, msgs[0].len, s->limit_why, s->limit);
    struct msghdr proto = {0};
    int r = ipk__dgram_dest(c, &proto);
    if (r != 0)
        return r;
    size_t done = 0;
    unsigned step = 0; /* ipk__backoff: a backlog or queue that cannot be polled */
    int fl = MSG_NOSIGNAL | (dl == IPK__DL_FOREVER ? 0 : MSG_DONTWAIT); /* no SO_SNDTIMEO */
    while (done < ok) {
        size_t k = ok - done < IPK__BATCH ? ok - done : IPK__BATCH;
        int m;
        if (k == 1) { /* one message: send/sendto copy no header arrays in */
            const ipk_iov *v = &msgs[done];
            ssize_t b = proto.msg_name ? ipk__sys_sendto(c->wfd, v->base, v->len, fl,
                                                         proto.msg_name, proto.msg_namelen)
                                       : ipk__sys_send(c->wfd, v->base, v->len, fl);
            m = b >= 0 ? 1 : -1;
        } else {
            m = ipk__dgram_batch(c->wfd, &proto, msgs + done, k, fl);
        }
        if (m > 0) {
            done += (size_t)m;
            continue;
        }
        int e = m < 0 ? errno : EAGAIN;
        if (e == EINTR)
            continue;
        if (done > 0)
            break; /* report what went; the error shows again on the next call */
        if (e != EAGAIN && e != ENOBUFS)
            return ipk__dgram_err(c, e, "send");
        /* Full: a connected socket polls writable when its peer has room; an unconnected
         * unix socket's poll says nothing about the receiver's queue, so back off instead. */
        int w = (c->role == IPK__LISTENER && s->family == AF_UNIX) || e == ENOBUFS
                    ? ipk__backoff(dl, &step)
                    : ipk__wait_fd(c->wfd, POLLOUT, dl);
        if (w < 0)
            return ipk__err(w, "%s: send: the receiver's queue is full%s", c->name,
                            w == -EAGAIN ? "" : " until the deadline");
    }
    return (long)done;
}

IPK__HOTPATH int ipk__dgram_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi,
                                 int64_t dl)
{
    (void)mi;
    const ipk__sock *s = c->tp;
    if (dl == IPK__DL_FOREVER && c->role != IPK__LISTENER && len <= s->limit) {
        /* The common case, a connected socket and no deadline: one send(), none of sendv's
         * steps. Only a full queue (or EINTR) goes on to sendv, which sends it again and
         * waits; any other error is its error, reported as sendv reports it. */
        if (ipk__sys_send(c->wfd, msg, len, MSG_NOSIGNAL) >= 0)
            return 0;
        int e = errno;
        if (e != EINTR && e != EAGAIN && e != ENOBUFS)
            return ipk__dgram_err(c, e, "send");
    }
    ipk_iov one = {msg, len};
    long r = ipk__dgram_sendv(c, &one, 1, dl);
    return r == 1 ? 0 : (int)r;
}

/* What one recvmsg() learned besides the length. */
typedef struct ipk__rx {
    struct sockaddr_storage from;
    socklen_t fromlen;
    int cred; /* SCM_CREDENTIALS came with it */
    int real; /* a message, not a seqpacket's end: SCM_CREDENTIALS came, or would have come
               * (MSG_CTRUNC: SO_PASSCRED is on and no control buffer was given) */
    int name; /* the sender's address is wanted (a listener replies to it) */
    int ctl;  /* the credentials are wanted (ipk_msginfo): a control buffer, whose cmsg the
               * kernel fills at a price (~3% of a unix ping-pong); without one it drops them
               * and descriptors sent by mistake (closed, never installed) */
    struct ucred uc;
} ipk__rx;

/* One receive into buf[0..cap) (flags: MSG_PEEK, MSG_DONTWAIT); returns the datagram's real
 * length (MSG_TRUNC) or -errno. */
IPK__HOTPATH static long ipk__rx_once(ipk_chan *c, void *buf, size_t cap, int flags, ipk__rx *rx)
{
    ssize_t n;
    /* A datagram wanting no credentials takes recvfrom(), which copies no message header in or
     * out (~2% of a unix round trip), and has no control messages to look at; a seqpacket needs
     * recvmsg()'s flags to tell its end. */
    if (!rx->ctl && ((ipk__sock *)c->tp)->type == SOCK_DGRAM) {
        socklen_t len = sizeof rx->from;
        /* EINTR goes back to the caller from a call that may block: it has a deadline to check. */
        do
            n = ipk__sys_recvfrom(c->rfd, buf, cap, flags | MSG_TRUNC,
                                  rx->name ? (struct sockaddr *)&rx->from : NULL,
                                  rx->name ? &len : NULL);
        while (n < 0 && errno == EINTR && (flags & MSG_DONTWAIT));
        if (n < 0)
            return -errno;
        rx->fromlen = rx->name ? len : 0;
        rx->cred = rx->real = 0;
        return n;
    }
    union {
        char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * IPK__MAX_FDS)];
        struct cmsghdr align;
    } cb;
    struct iovec iov = {buf, cap};
    struct msghdr mh = {.msg_name = rx->name ? &rx->from : NULL,
                        .msg_namelen = rx->name ? sizeof rx->from : 0,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = rx->ctl ? cb.b : NULL,
                        .msg_controllen = rx->ctl ? sizeof cb.b : 0};
    do
        n = ipk__sys_recvmsg(c->rfd, &mh, flags | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR && (flags & MSG_DONTWAIT));
    if (n < 0)
        return -errno;
    rx->fromlen = mh.msg_namelen;
    rx->cred = 0;
    rx->real = (mh.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET)
            continue;
        if (cm->cmsg_type == SCM_CREDENTIALS) {
            memcpy(&rx->uc, CMSG_DATA(cm), sizeof rx->uc);
            rx->cred = rx->real = 1;
        } else if (cm->cmsg_type == SCM_RIGHTS) {
            /* Nobody asked for descriptors: close them rather than leak them. */
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof fd, sizeof fd);
                ipk__close_fd(fd);
            }
        }
    }
    return n;
}

IPK__HOTPATH long ipk__dgram_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    ipk__sock *s = c->tp;
    int whole = cap >= c->max || (s->family != AF_UNIX && cap >= IPK__UDP6_MAX);
    ipk__rx rx;
    /* A seqpacket receive tells EOF from a zero-length packet by the credentials every packet
     * carries (SO_PASSCRED): in the control buffer when one is given, else by the MSG_CTRUNC the
     * kernel sets for the credentials it had no room for; the end carries none. */
    rx.name = c->role == IPK__LISTENER;
    rx.ctl = mi != NULL;
    int wait = ipk__sock_dontwait(c, dl, c->t_call);
    if (wait < 0)
        return wait;
    for (;;) {
        long n = ipk__rx_once(c, buf, whole ? cap : 0, wait | (whole ? 0 : MSG_PEEK), &rx);
        if (n == -EINTR) { /* a new slice only while a whole one is left */
            if ((wait = ipk__sock_dontwait(c, dl, 0)) < 0)
                return wait;
            continue;
        }
        if (n == -EAGAIN) {
            wait = MSG_DONTWAIT; /* the slice, or all of the wait when O_NONBLOCK is set */
            int w = ipk__wait_fd(c->rfd, POLLIN, dl);
            if (w > 0)
                continue;
            return ipk__err(w, "%s: recv: no message %s", c->name,
                            w == -EAGAIN ? "is waiting" : "came before the deadline");
        }
        if (n < 0)
            return ipk__dgram_err(c, (int)-n, "recv");
        if (n == 0 && s->type == SOCK_SEQPACKET && !rx.real)
            return ipk__err(IPK_EOF, "%s: the peer closed the connection", c->name);
        if ((size_t)n > c->max) {
            if (!whole)
                ipk__rx_once(c, NULL, 0, MSG_DONTWAIT,
                             &rx); /* drop it: above max is never delivered */
            return ipk__err(IPK_EMSGSIZE,
                            "%s: a message of %ld bytes exceeds max=%zu; it was "
                            "discarded",
                            c->name, n, c->max);
        }
        if ((size_t)n > cap) {
            c->need = (size_t)n;
            return ipk__err(IPK_EMSGSIZE,
                            "%s: message of %ld bytes does not fit a %zu-byte "
                            "buffer; it is still queued",
                            c->name, n, cap);
        }
        if (!whole) {
            long m = ipk__rx_once(c, buf, cap, MSG_DONTWAIT, &rx);
            if (m == -EAGAIN)
                continue; /* another process sharing the socket took it */
            if (m < 0)
                return ipk__dgram_err(c, (int)-m, "recv");
            if ((size_t)m > cap) {
                c->need = (size_t)m;
                return ipk__err(IPK_EMSGSIZE,
                                "%s: a message of %ld bytes replaced the one "
                                "sized (another reader shares the socket); it was "
                                "cut to %zu bytes",
                                c->name, m, cap);
            }
            n = m;
        }
        if (c->role == IPK__LISTENER) {
            /* An unbound sender has only the family in its address: nowhere to reply. */
            s->tolen = rx.fromlen > sizeof(sa_family_t) ? rx.fromlen : 0;
            if (s->tolen)
                memcpy(&s->to, &rx.from, rx.fromlen);
        }
        if (mi && rx.cred) {
            mi->pid = rx.uc.pid;
            mi->uid = rx.uc.uid;
        }
        return n;
    }
}

/* ---- info ---- */

long ipk__sock_info(char *buf, size_t cap, const char *text, const char *const *files)
{
    size_t len = 0;
#define IPK__PUT(...)                                                                              \
    do {                                                                                           \
        int k_ = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, __VA_ARGS__);   \
        if (k_ > 0)                                                                                \
            len += (size_t)k_;                                                                     \
    } while (0)
    IPK__PUT("%s\nlive limits:\n", text);
    for (const char *const *f = files; *f; f++) {
        char v[128] = "(unavailable)";
        int fd = ipk__sys_open(*f, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = ipk__read(fd, v, sizeof v - 1);
            v[n > 0 ? n : 0] = '\0';
            v[strcspn(v, "\n")] = '\0';
            for (char *t = v; *t; t++)
                if (*t == '\t')
                    *t = ' ';
            ipk__close_fd(fd);
        }
        IPK__PUT("  %-42s %s\n", *f, v);
    }
#undef IPK__PUT
    return (long)len;
}

/* ---- address bodies: //HOST:PORT for tcp and udp, PATH or @NAME for the unix sockets ---- */

int ipk__addr_inet(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (strncmp(b, "//", 2) != 0)
        return ipk__err(IPK_EADDR, "%s: write %s://HOST:PORT", url, a->scheme_name);
    b += 2;
    const char *port;
    if (*b == '[') {
        const char *close = strchr(b, ']');
        if (close == NULL)
            return ipk__err(IPK_EADDR, "%s: '[' without ']' around the IPv6 address", url);
        size_t n = (size_t)(close - b - 1);
        if (n == 0 || n >= sizeof a->u.inet.host)
            return ipk__err(IPK_EADDR, "%s: empty or overlong IPv6 address", url);
        memcpy(a->u.inet.host, b + 1, n);
        a->u.inet.host[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (!(isxdigit((unsigned char)a->u.inet.host[i]) || a->u.inet.host[i] == ':' ||
                  a->u.inet.host[i] == '.' || a->u.inet.host[i] == '%'))
                return ipk__err(IPK_EADDR, "%s: '%s' is not an IPv6 address", url, a->u.inet.host);
        if (close[1] != ':')
            return ipk__err(IPK_EADDR, "%s: missing ':PORT' after ']'", url);
        port = close + 2;
    } else {
        const char *colon = strrchr(b, ':');
        if (colon == NULL)
            return ipk__err(IPK_EADDR, "%s: missing ':PORT'", url);
        size_t n = (size_t)(colon - b);
        if (memchr(b, ':', n) != NULL)
            return ipk__err(IPK_EADDR, "%s: IPv6 addresses go in brackets: %s://[::1]:PORT", url,
                            a->scheme_name);
        if (n >= sizeof a->u.inet.host)
            return ipk__err(IPK_EADDR, "%s: host name longer than 255 bytes", url);
        memcpy(a->u.inet.host, b, n);
        a->u.inet.host[n] = '\0';
        if (strcmp(a->u.inet.host, "*") == 0) {
            a->u.inet.any = 1;
            a->u.inet.host[0] = '\0';
        } else {
            for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)a->u.inet.host[i];
                if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_'))
                    return ipk__err(IPK_EADDR, "%s: bad character '%c' in host name", url, ch);
            }
        }
        port = colon + 1;
    }
    long p;
    if (*port == '\0')
        return ipk__err(IPK_EADDR, "%s: missing port number", url);
    for (const char *q = port; *q; q++)
        if (!isdigit((unsigned char)*q))
            return ipk__err(IPK_EADDR, "%s: port '%s' is not a number", url, port);
    if (ipk__parse_long(port, 0, 65535, &p) != 0 || strlen(port) > 5)
        return ipk__err(IPK_EADDR, "%s: port %s out of range 0-65535", url, port);
    a->u.inet.port = (uint16_t)p;
    return 0;
}

int ipk__addr_unix(ipk__addr *a, const char *url)
{
    const char *b = a->body;
    if (*b == '\0')
        return ipk__err(IPK_EADDR, "%s: missing socket path (or @name for the abstract namespace)",
                        url);
    if (*b == '@') {
        size_t n = strlen(b + 1);
        if (n == 0)
            return ipk__err(IPK_EADDR, "%s: empty abstract socket name", url);
        if (n > sizeof a->u.un.path - 1)
            return ipk__err(IPK_EADDR, "%s: abstract name is %zu bytes; the limit is %zu", url, n,
                            sizeof a->u.un.path - 1);
        a->u.un.abstract = 1;
        memcpy(a->u.un.path, b + 1, n);
        a->u.un.len = n;
        return 0;
    }
    size_t n = strlen(b);
    if (n > sizeof a->u.un.path - 1)
        return ipk__err(IPK_EADDR, "%s: socket path is %zu bytes; sun_path holds %zu", url, n,
                        sizeof a->u.un.path - 1);
    memcpy(a->u.un.path, b, n + 1);
    a->u.un.len = n;
    return 0;
}
