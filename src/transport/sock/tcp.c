/*
 * tcp.c - the tcp: transport: a TCP connection carrying framed messages (stream.c).
 *
 * Addresses: tcp://HOST:PORT, tcp://[IPv6]:PORT. An empty host is the IPv4 loopback for listen
 * and dial alike, "*" is every interface (listen only; a dual-stack IPv6 socket where the host
 * has IPv6). Names go through getaddrinfo(); the first address that works is used. Port 0 lets
 * the kernel pick a free port for a listener, and ipk_addr() reports the port it got.
 *
 * Listeners set SO_REUSEADDR (a restart is not refused because of TIME_WAIT connections);
 * connections set TCP_NODELAY unless nodelay=0, because every message is one write and should
 * leave at once. ipk_dial() has no timeout: it waits until the handshake succeeds or fails
 * (refused, or the kernel gives up after net.ipv4.tcp_syn_retries).
 */
#include "sock.h"
#include "transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

static int ipk__tcp_nodelay(ipk_chan *c)
{
    int on;
    int r = ipk__opt_bool(c, "nodelay", 1, &on);
    return r != 0 ? r : ipk__sock_setint(c, IPPROTO_TCP, TCP_NODELAY, on, "TCP_NODELAY");
}

static int ipk__tcp_bind(ipk_chan *c, const struct addrinfo *ai, int backlog)
{
    int r = ipk__sock_open(c, ai->ai_family, SOCK_STREAM);
    if (r == 0)
        r = ipk__sock_setint(c, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    if (r == 0 && ai->ai_family == AF_INET6 && c->addr.u.inet.any)
        r = ipk__sock_setint(c, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
    if (r == 0 && ipk__sys_bind(c->rfd, ai->ai_addr, ai->ai_addrlen) != 0)
        r = ipk__errsys(-errno, "%s: bind", c->name);
    if (r == 0 && ipk__sys_listen(c->rfd, backlog) != 0)
        r = ipk__errsys(-errno, "%s: listen", c->name);
    if (r != 0 && c->tp)
        ipk__sock_close(c);
    return r;
}

static int ipk__tcp_listen(ipk_chan *c)
{
    long backlog;
    int nodelay;
    struct addrinfo *ai;
    int r = ipk__opt_long(c, "backlog", 1, INT_MAX, SOMAXCONN, &backlog);
    if (r == 0)
        r = ipk__opt_bool(c, "nodelay", 1, &nodelay); /* checked now, applied on accept */
    (void)nodelay;
    if (r == 0)
        r = ipk__set_name(c, "tcp:%s", c->addr.body);
    if (r != 0 || (r = ipk__sock_resolve(c, SOCK_STREAM, 1, &ai)) != 0)
        return r;
    for (const struct addrinfo *p = ai; p; p = p->ai_next)
        if ((r = ipk__tcp_bind(c, p, (int)backlog)) == 0)
            break;
    freeaddrinfo(ai);
    if (r == 0 && (r = ipk__sock_name(c, "tcp", 1)) != 0)
        ipk__sock_close(c);
    return r;
}

static int ipk__tcp_dial(ipk_chan *c)
{
    int nodelay;
    struct addrinfo *ai;
    int r = ipk__opt_bool(c, "nodelay", 1, &nodelay); /* a bad value fails before connecting */
    (void)nodelay;
    if (r == 0)
        r = ipk__set_name(c, "tcp:%s", c->addr.body);
    if (r != 0 || (r = ipk__sock_resolve(c, SOCK_STREAM, 0, &ai)) != 0)
        return r;
    for (const struct addrinfo *p = ai; p; p = p->ai_next) {
        char a[INET6_ADDRSTRLEN + 16];
        ipk__sock_fmt(p->ai_addr, a, sizeof a);
        if ((r = ipk__sock_open(c, p->ai_family, SOCK_STREAM)) != 0)
            continue;
        if ((r = ipk__sock_connect(c, p->ai_addr, p->ai_addrlen, a, IPK__DL_FOREVER)) == 0)
            break;
        ipk__sock_close(c);
    }
    freeaddrinfo(ai);
    if (r == 0 && ((r = ipk__tcp_nodelay(c)) != 0 || (r = ipk__sock_name(c, "tcp", 0)) != 0))
        ipk__sock_close(c);
    return r;
}

static int ipk__tcp_accept(ipk_chan *l, ipk_chan *p, int64_t dl)
{
    int r = ipk__sock_accept(l, p, dl);
    if (r == 0 && ((r = ipk__tcp_nodelay(p)) != 0 || (r = ipk__sock_name(p, "tcp", 0)) != 0))
        ipk__sock_close(p);
    return r;
}

static const char *const ipk__tcp_files[] = {"/proc/sys/net/core/somaxconn",
                                             "/proc/sys/net/ipv4/tcp_max_syn_backlog",
                                             "/proc/sys/net/ipv4/tcp_rmem",
                                             "/proc/sys/net/ipv4/tcp_wmem",
                                             "/proc/sys/net/ipv4/ip_local_port_range",
                                             "/proc/sys/net/ipv4/tcp_syn_retries",
                                             "/proc/sys/net/ipv4/tcp_fin_timeout",
                                             NULL};

static long ipk__tcp_info(const ipk__addr *a, char *buf, size_t cap)
{
    (void)a;
    return ipk__sock_info(
        buf, cap,
        "tcp: TCP stream, IPv4 and IPv6. Messages framed (4-byte length, or framing=raw|line), "
        "any size up to max; TCP_NODELAY on unless nodelay=0; listeners use SO_REUSEADDR and "
        "listen on loopback unless a host or * is given; port 0 picks a free port. dial waits "
        "until connected or refused (no timeout). Options: framing, nodelay, backlog, max.",
        ipk__tcp_files);
}

static const char *const ipk__tcp_keys[] = {"framing", "nodelay", "backlog", "flush", NULL};

const ipk__transport ipk__tr_tcp = {
    .scheme = "tcp",
    .parse = ipk__addr_inet,
    .flags = IPK_SCHEME_STREAM | IPK_SCHEME_ACCEPT,
    .usage = "tcp://HOST:PORT",
    .keys = ipk__tcp_keys,
    .summary = "TCP stream (framed messages, IPv4 and IPv6, TCP_NODELAY)",
    .listen = ipk__tcp_listen,
    .dial = ipk__tcp_dial,
    .accept = ipk__tcp_accept,
    .send = ipk__stream_send,
    .sendv = ipk__stream_sendv,
    .recv = ipk__stream_recv,
    .peek = ipk__stream_peek,
    .release = ipk__stream_release,
    .close = ipk__sock_close,
    .info = ipk__tcp_info,
};
