/*
 * test_tcp.c - what is specific to tcp: (the generic stream suite runs over it in
 * test_stream.c): port 0 and ipk_addr(), the empty host and "*", IPv6, names resolved with
 * getaddrinfo, refused connections, TCP_NODELAY and SO_REUSEADDR, backlog, accept timeouts,
 * and the exact error of every bad address or option.
 */
#include "sock_suite.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

typedef struct peer_arg {
    char url[128];
    char want_name[128]; /* what ipk_addr() of the dialer must say, or "" */
} peer_arg;

/* Dials, sends its pid, expects it back. */
static int echo_child(void *arg)
{
    peer_arg *a = arg;
    ipk_chan *c = NULL;
    CK(ipk_dial(&c, a->url, NULL) == 0);
    if (a->want_name[0])
        CK(strcmp(ipk_addr(c), a->want_name) == 0);
    pid_t me = getpid(), back = 0;
    CK(ipk_send(c, &me, sizeof me, -1) == 0);
    CK(ipk_recv(c, &back, sizeof back, -1) == (long)sizeof back);
    CK(back == me);
    char b[4];
    CK(ipk_recv(c, b, sizeof b, -1) == IPK_EOF);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* A child dials url; the parent accepts on l, echoes, and checks the accepted channel. */
static void echo_with(ipk_chan *l, const char *url, const char *peer_prefix)
{
    peer_arg a;
    snprintf(a.url, sizeof a.url, "%s", url);
    snprintf(a.want_name, sizeof a.want_name, "%s",
             strncmp(url, ipk_addr(l), strlen(url)) == 0 ? ipk_addr(l) : "");
    pid_t pid = ipkt_spawn(echo_child, &a);
    ipk_chan *p = NULL;
    ipkt_ok(ipk_accept(l, &p, -1));
    /* An accepted connection is named by its remote end. */
    assert_true(strncmp(ipk_addr(p), peer_prefix, strlen(peer_prefix)) == 0);
    assert_string_not_equal(ipk_addr(p), ipk_addr(l));
    ipkt_expect(ipk_peer(p, NULL, NULL, NULL), IPK_ENOTSUP);
    pid_t who = 0;
    ipkt_expect(ipk_recv(p, &who, sizeof who, -1), sizeof who);
    assert_int_equal(who, pid);
    ipkt_ok(ipk_send(p, &who, sizeof who, -1));
    ipkt_ok(ipk_close(p));
    assert_int_equal(ipkt_wait(pid), 0);
}

static const char *port_of(const ipk_chan *l)
{
    return strrchr(ipk_addr(l), ':') + 1;
}

static void t_port0_ipv4(void **s)
{
    (void)s;
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://127.0.0.1:0", NULL));
    const char *a = ipk_addr(l);
    assert_true(strncmp(a, "tcp://127.0.0.1:", 16) == 0);
    assert_true(atoi(port_of(l)) > 0);
    echo_with(l, a, "tcp://127.0.0.1:");
    ipkt_ok(ipk_close(l));
}

/* An empty host is the loopback, for listen and for dial. */
static void t_empty_host(void **s)
{
    (void)s;
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://:0", NULL));
    assert_true(strncmp(ipk_addr(l), "tcp://127.0.0.1:", 16) == 0);
    char url[64];
    snprintf(url, sizeof url, "tcp://:%s", port_of(l));
    echo_with(l, url, "tcp://127.0.0.1:");
    ipkt_ok(ipk_close(l));
}

static void t_ipv6(void **s)
{
    (void)s;
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://[::1]:0", NULL));
    assert_true(strncmp(ipk_addr(l), "tcp://[::1]:", 12) == 0);
    echo_with(l, ipk_addr(l), "tcp://[::1]:");
    ipkt_ok(ipk_close(l));
}

/* "*": every interface, IPv4 and IPv6 on one socket. */
static void t_any(void **s)
{
    (void)s;
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://*:0", NULL));
    assert_true(strncmp(ipk_addr(l), "tcp://*:", 8) == 0);
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%s", port_of(l));
    echo_with(l, url, "tcp://127.0.0.1:"); /* an IPv4-mapped peer is shown as IPv4 */
    snprintf(url, sizeof url, "tcp://[::1]:%s", port_of(l));
    echo_with(l, url, "tcp://[::1]:");
    ipkt_ok(ipk_close(l));
}

/* Names go through getaddrinfo. */
static void t_names(void **s)
{
    (void)s;
    ipk_chan *l = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://localhost:0", NULL));
    assert_true(strncmp(ipk_addr(l), "tcp://127.0.0.1:", 16) == 0);
    char url[64];
    snprintf(url, sizeof url, "tcp://localhost:%s", port_of(l));
    echo_with(l, url, "tcp://127.0.0.1:");
    ipkt_ok(ipk_close(l));
}

static void t_refused(void **s)
{
    (void)s;
    ipk_chan *l = NULL, *c = (ipk_chan *)0x1;
    ipkt_ok(ipk_listen(&l, "tcp://127.0.0.1:0", NULL));
    char url[64];
    snprintf(url, sizeof url, "%s", ipk_addr(l));
    ipkt_ok(ipk_close(l));
    ipkt_expect(ipk_dial(&c, url, NULL), -ECONNREFUSED);
    ipkt_errmsg_has("connect to 127.0.0.1:");
    ipkt_errmsg_has("Connection refused");
    assert_null(c);
}

static void t_bad_addresses(void **s)
{
    (void)s;
    ipk_chan *c = (ipk_chan *)0x1;
    ipkt_expect(ipk_dial(&c, "tcp://nosuch.invalid:80", NULL), IPK_EADDR);
    ipkt_errmsg_has("host 'nosuch.invalid' not found");
    ipkt_expect(ipk_listen(&c, "tcp://nosuch.invalid:0", NULL), IPK_EADDR);
    ipkt_errmsg_has("host 'nosuch.invalid' not found");
    ipkt_expect(ipk_dial(&c, "tcp://127.0.0.1:0", NULL), IPK_EADDR);
    ipkt_errmsg_has("port 0 is for listen");
    ipkt_expect(ipk_dial(&c, "tcp://*:80", NULL), IPK_EADDR);
    ipkt_errmsg_has("'*' (every interface) is for listen");
    /* An address this host does not have (TEST-NET-1, RFC 5737). */
    ipkt_expect(ipk_listen(&c, "tcp://192.0.2.1:0", NULL), -EADDRNOTAVAIL);
    ipkt_errmsg_has("tcp://192.0.2.1:0: bind");
    assert_null(c);
}

static void t_in_use_and_reuse(void **s)
{
    (void)s;
    ipk_chan *l = NULL, *c = (ipk_chan *)0x1, *d = NULL, *p = NULL;
    ipkt_ok(ipk_listen(&l, "tcp://127.0.0.1:0", NULL));
    char url[64];
    snprintf(url, sizeof url, "%s", ipk_addr(l));
    ipkt_expect(ipk_listen(&c, url, NULL), -EADDRINUSE);
    ipkt_errmsg_has("bind");
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(ipk_fd(l), SOL_SOCKET, SO_REUSEADDR, &on, &len), 0);
    assert_int_equal(on, 1);
    /* The server closes first, so its end waits in TIME_WAIT; SO_REUSEADDR lets a new
     * listener have the port at once. */
    ipkt_ok(ipk_dial(&d, url, NULL));
    ipkt_ok(ipk_accept(l, &p, -1));
    ipkt_ok(ipk_close(p));
    char b[4];
    ipkt_expect(ipk_recv(d, b, sizeof b, -1), IPK_EOF);
    ipkt_ok(ipk_close(d));
    ipkt_ok(ipk_close(l));
    ipkt_ok(ipk_listen(&l, url, NULL));
    assert_string_equal(ipk_addr(l), url);
    ipkt_ok(ipk_close(l));
}

static int nodelay_of(const ipk_chan *c)
{
    int on = -1;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(ipk_fd(c), IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    return on;
}

static void t_nodelay(void **s)
{
    (void)s;
    const char *q[] = {"", "?nodelay=0"};
    for (int i = 0; i < 2; i++) {
        ipk_chan *l = NULL, *d = NULL, *p = NULL;
        char url[96];
        snprintf(url, sizeof url, "tcp://127.0.0.1:0%s", q[i]);
        ipkt_ok(ipk_listen(&l, url, NULL));
        snprintf(url, sizeof url, "%s%s", ipk_addr(l), q[i]);
        ipkt_ok(ipk_dial(&d, url, NULL));
        ipkt_ok(ipk_accept(l, &p, -1));
        assert_int_equal(nodelay_of(d) != 0, i == 0);
        assert_int_equal(nodelay_of(p) != 0, i == 0);
        ipkt_ok(ipk_close(p));
        ipkt_ok(ipk_close(d));
        ipkt_ok(ipk_close(l));
    }
}

static void t_options(void **s)
{
    (void)s;
    ipk_chan *c = (ipk_chan *)0x1;
    ipkt_expect(ipk_listen(&c, "tcp://127.0.0.1:0?nodelay=maybe", NULL), IPK_EOPTION);
    ipkt_errmsg_has("nodelay=maybe: expected 1 or 0");
    ipkt_expect(ipk_dial(&c, "tcp://127.0.0.1:9?nodelay=2", NULL), IPK_EOPTION);
    ipkt_errmsg_has("nodelay=2");
    ipkt_expect(ipk_listen(&c, "tcp://127.0.0.1:0?backlog=0", NULL), IPK_EOPTION);
    ipkt_errmsg_has("backlog=0: expected an integer in 1..");
    ipkt_expect(ipk_listen(&c, "tcp://127.0.0.1:0?perm=0600", NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'perm' for tcp:");
    ipkt_expect(ipk_dial(&c, "tcp://127.0.0.1:9?keep=1", NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'keep' for tcp:");
    ipkt_expect(ipk_listen(&c, "tcp://127.0.0.1:0?framing=xml", NULL), IPK_EOPTION);
    ipkt_errmsg_has("framing=xml");
    assert_null(c);
    /* Valid ones are taken. */
    ipkt_ok(ipk_listen(&c, "tcp://127.0.0.1:0?backlog=1&framing=line&max=1k", NULL));
    ipkt_ok(ipk_close(c));
}

static void t_accept_timeouts(void **s)
{
    (void)s;
    ipk_chan *l = NULL, *p = (ipk_chan *)0x1;
    ipkt_ok(ipk_listen(&l, "tcp://127.0.0.1:0", NULL));
    ipkt_expect(ipk_accept(l, &p, 0), -EAGAIN);
    ipkt_errmsg_has("no connection is waiting");
    ipkt_expect(ipk_accept(l, &p, 20), IPK_ETIMEDOUT);
    ipkt_errmsg_has("no connection came before the deadline");
    assert_null(p);
    char b[4];
    ipkt_expect(ipk_recv(l, b, sizeof b, 0), IPK_ENOTSUP);
    ipkt_ok(ipk_close(l));
}

static void t_info(void **s)
{
    (void)s;
    char b[4096];
    long n = ipk_info("tcp://127.0.0.1:9", b, sizeof b);
    assert_true(n > 0 && (size_t)n < sizeof b);
    assert_non_null(strstr(b, "TCP_NODELAY"));
    assert_non_null(strstr(b, "/proc/sys/net/core/somaxconn"));
    /* A buffer too small gets what fits and the length it would need. */
    char small[16];
    assert_int_equal(ipk_info("tcp://127.0.0.1:9", small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(ipk_scheme_built("tcp"), 1);
}

IPKT_MAIN(cmocka_unit_test(t_port0_ipv4), cmocka_unit_test(t_empty_host), cmocka_unit_test(t_ipv6),
          cmocka_unit_test(t_any), cmocka_unit_test(t_names), cmocka_unit_test(t_refused),
          cmocka_unit_test(t_bad_addresses), cmocka_unit_test(t_in_use_and_reuse),
          cmocka_unit_test(t_nodelay), cmocka_unit_test(t_options),
          cmocka_unit_test(t_accept_timeouts), cmocka_unit_test(t_info))
