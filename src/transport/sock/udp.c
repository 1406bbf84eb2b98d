/*
 * udp.c - the udp: transport: one message is one UDP datagram.
 *
 * A message larger than the path allows (65507 bytes over IPv4, 65527 over IPv6, or what the
 * kernel refuses with EMSGSIZE) is IPK_EMSGSIZE before anything is sent. UDP is lossy by
 * contract: a datagram the receiver has no buffer for is dropped by the kernel, silently.
 *
 * The listener binds and replies to the sender of the last datagram it received
 * (-EDESTADDRREQ before any). The dialer connects its socket, so only the listener's datagrams
 * reach it, and an ICMP port-unreachable for an earlier datagram surfaces as -ECONNREFUSED on a
 * later send or recv. Addresses resolve as for tcp: (empty host = IPv4 loopback, "*" = every
 * interface for listen, port 0 = a free port, reported by ipk_addr()).
 */
#include "sock.h"
#include "transport.h"

#include <errno.h>
#include <netinet/in.h>

/* Opens a socket for ai and binds (listener) or connects (dialer) it. */
static int ipk__udp_open(ipk_chan *c, const struct addrinfo *ai, int listener)
{
    int r = ipk__sock_open(c, ai->ai_family, SOCK_DGRAM);
    if (r == 0 && listener && ai->ai_family == AF_INET6 && c->addr.u.inet.any)
        r = ipk__sock_setint(c, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
    if (r == 0 && listener && ipk__sys_bind(c->rfd, ai->ai_addr, ai->ai_addrlen) != 0)
        r = ipk__errsys(-errno, "%s: bind", c->name);
    if (r == 0 && !listener && ipk__sys_connect(c->rfd, ai->ai_addr, ai->ai_addrlen) != 0)
        r = ipk__errsys(-errno, "%s: connect", c->name);
    if (r == 0)
        r = ipk__sock_name(c, "udp", listener);
    if (r != 0 && c->tp)
        ipk__sock_close(c);
    return r;
}

static int ipk__udp_start(ipk_chan *c, int listener)
{
    struct addrinfo *ai;
    int r = ipk__set_name(c, "udp:%s", c->addr.body);
    if (r != 0 || (r = ipk__sock_resolve(c, SOCK_DGRAM, listener, &ai)) != 0)
        return r;
    for (const struct addrinfo *p = ai; p; p = p->ai_next)
        if ((r = ipk__udp_open(c, p, listener)) == 0)
            break;
    freeaddrinfo(ai);
    return r;
}

static int ipk__udp_listen(ipk_chan *c)
{
    return ipk__udp_start(c, 1);
}

static int ipk__udp_dial(ipk_chan *c)
{
    return ipk__udp_start(c, 0);
}

static const char *const ipk__udp_files[] = {"/proc/sys/net/core/rmem_default",
                                             "/proc/sys/net/core/rmem_max",
                                             "/proc/sys/net/core/wmem_default",
                                             "/proc/sys/net/core/wmem_max",
                                             "/proc/sys/net/ipv4/udp_mem",
                                             "/proc/sys/net/ipv4/ip_local_port_range",
                                             NULL};

static long ipk__udp_info(const ipk__addr *a, char *buf, size_t cap)
{
    (void)a;
    return ipk__sock_info(
        buf, cap,
        "udp: UDP datagrams, IPv4 and IPv6. One message = one datagram, at most 65507 bytes "
        "(IPv4) or 65527 (IPv6); lossy and unordered by contract (a full receive buffer drops "
        "datagrams silently: rmem_default / rmem_max). The listener replies to the last "
        "sender; the dialer is connected, so ICMP port-unreachable shows as -ECONNREFUSED on a "
        "later call. Options: max.",
        ipk__udp_files);
}

const ipk__transport ipk__tr_udp = {
    .scheme = "udp",
    .parse = ipk__addr_inet,
    .flags = IPK_SCHEME_DGRAM,
    .usage = "udp://HOST:PORT",
    .summary = "UDP datagrams (one message per datagram, IPv4 and IPv6)",
    .listen = ipk__udp_listen,
    .dial = ipk__udp_dial,
    .send = ipk__dgram_send,
    .sendv = ipk__dgram_sendv,
    .recv = ipk__dgram_recv,
    .close = ipk__sock_close,
    .info = ipk__udp_info,
};
