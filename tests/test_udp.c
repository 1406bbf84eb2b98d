/*
 * test_udp.c - the udp: transport between real processes: the datagram suite (sock_suite.h)
 * over IPv4, an IPv6 exchange with the IPv6 size limit, port 0, the empty host and "*",
 * replies to the last sender, ICMP port unreachable as -ECONNREFUSED, resolution errors.
 *
 * UDP is lossy by contract: the suite's sender is flow-controlled (the receiver acknowledges
 * every 64 messages, and raises its SO_RCVBUF), so no datagram is dropped on loopback.
 */
#include "sock_suite.h"

#define UDP_KIND                                                                                   \
    {                                                                                              \
        .listen = "udp://127.0.0.1:0", .lossy = 1                                                  \
    }

DG_SUITE(udp, UDP_KIND)

static void t_reply(void **s)
{
    dg_kind k = UDP_KIND;
    (void)s;
    dg_reply(&k);
}

static void t_gone(void **s)
{
    dg_kind k = UDP_KIND;
    (void)s;
    dg_gone(&k);
}

static void t_options(void **s)
{
    dg_kind k = UDP_KIND;
    (void)s;
    dg_options(&k, "nodelay");
    dg_options(&k, "perm");
}

/* IPv6: the address formats with brackets, and the payload limit is 65527. */
static void t_ipv6(void **s)
{
    dg_kind k = {.listen = "udp://[::1]:0", .lossy = 1};
    (void)s;
    dg_sizes(&k);
    assert_int_equal(k.largest, 65527);
    assert_true(strncmp(k.dial, "udp://[::1]:", 12) == 0);
}

static void t_addresses(void **s)
{
    (void)s;
    ipk_chan *l = NULL, *c = NULL;
    /* Port 0: the kernel picks one, and ipk_addr() says which. */
    ipkt_ok(ipk_listen(&l, "udp://:0", NULL));
    const char *a = ipk_addr(l);
    assert_true(strncmp(a, "udp://127.0.0.1:", 16) == 0);
    assert_true(atoi(a + 16) > 0);
    ipkt_ok(ipk_dial(&c, a, NULL));
    assert_string_equal(ipk_addr(c), a); /* a dialer is named by its peer */
    ipkt_ok(ipk_send(c, "hi", 2, -1));
    char b[8];
    ipkt_expect(ipk_recv(l, b, sizeof b, -1), 2);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(l));
    /* "*": every interface (dual stack), reachable over IPv4 and IPv6. */
    ipkt_ok(ipk_listen(&l, "udp://*:0", NULL));
    assert_true(strncmp(ipk_addr(l), "udp://*:", 8) == 0);
    char url[64];
    snprintf(url, sizeof url, "udp://[::1]:%s", ipk_addr(l) + 8);
    ipkt_ok(ipk_dial(&c, url, NULL));
    ipkt_ok(ipk_send(c, "six", 3, -1));
    ipkt_expect(ipk_recv(l, b, sizeof b, -1), 3);
    ipkt_ok(ipk_close(c));
    snprintf(url, sizeof url, "udp://localhost:%s", ipk_addr(l) + 8);
    ipkt_ok(ipk_dial(&c, url, NULL));
    ipkt_ok(ipk_send(c, "four", 4, -1));
    ipkt_expect(ipk_recv(l, b, sizeof b, -1), 4);
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_close(l));
}

static void t_bad_addresses(void **s)
{
    (void)s;
    ipk_chan *c = (ipk_chan *)0x1;
    open_fails(0, "udp://nosuch.invalid:9", IPK_EADDR, "host 'nosuch.invalid' not found");
    open_fails(0, "udp://127.0.0.1:0", IPK_EADDR, "port 0 is for listen");
    open_fails(0, "udp://*:9", IPK_EADDR, "'*' (every interface) is for listen");
    open_fails(1, "udp://192.0.2.1:0", -EADDRNOTAVAIL, "bind");
    /* The same port twice. */
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "udp://127.0.0.1:0", NULL));
    ipkt_expect(ipk_listen(&c, ipk_addr(l), NULL), -EADDRINUSE);
    ipkt_errmsg_has("bind");
    assert_null(c);
    ipk_chan *p = NULL;
    ipkt_expect(ipk_accept(l, &p, 0), IPK_ENOTSUP);
    ipkt_ok(ipk_close(l));
}

static void t_info(void **s)
{
    (void)s;
    ipkt_info_has("udp://127.0.0.1:9",
                  (const char *const[]){"65507", "/proc/sys/net/core/rmem_max", NULL});
}

IPKT_MAIN(DG_TESTS(udp), cmocka_unit_test(t_reply), cmocka_unit_test(t_gone),
          cmocka_unit_test(t_options), cmocka_unit_test(t_ipv6), cmocka_unit_test(t_addresses),
          cmocka_unit_test(t_bad_addresses), cmocka_unit_test(t_info))
