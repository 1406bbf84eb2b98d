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
    IPKT_CHECK(ipk_dial(&c, a->url, NULL) == 0);
    if (a->want_name[0])
        IPKT_CHECK(strcmp(ipk_addr(c), a->want_name) == 0);
    pid_t me = getpid(), back = 0;
    IPKT_CHECK(ipk_send(c, &me, sizeof me, -1) == 0);
    IPKT_CHECK(ipk_recv(c, &back, sizeof back, -1) == (long)sizeof back);
    IPKT_CHECK(back == me);
    char b[4];
    IPKT_CHECK(ipk_recv(c, b, sizeof b, -1) == IPK_EOF);
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

/* Listen at an address, check the name ipk_addr() reports, then a child dials each of `dial`
 * ("%s" is the port the listener got) and the accepted end is named by its remote address. */
typedef struct addr_case {
    const char *listen, *named;
    const char *dial[2], *peer[2];
} addr_case;

static const addr_case addr_cases[] = {
    /* Port 0: the kernel picks one, and ipk_addr() says which. */
    {"tcp://127.0.0.1:0", "tcp://127.0.0.1:", {"tcp://127.0.0.1:%s"}, {"tcp://127.0.0.1:"}},
    /* An empty host is the loopback, for listen and for dial. */
    {"tcp://:0", "tcp://127.0.0.1:", {"tcp://:%s"}, {"tcp://127.0.0.1:"}},
    {"tcp://[::1]:0", "tcp://[::1]:", {"tcp://[::1]:%s"}, {"tcp://[::1]:"}},
    /* "*": every interface, IPv4 and IPv6 on one socket; an IPv4-mapped peer shows as IPv4. */
    {"tcp://*:0",
     "tcp://*:",
     {"tcp://127.0.0.1:%s", "tcp://[::1]:%s"},
     {"tcp://127.0.0.1:", "tcp://[::1]:"}},
    /* Names go through getaddrinfo; "localhost" may be 127.0.0.1 or ::1 first (NULL: the
     * listener's own host), and a dialer tries each address it resolves to. */
    {"tcp://localhost:0", NULL, {"tcp://localhost:%s"}, {NULL}},
};

static void t_addresses(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        const addr_case *t = &addr_cases[i];
        ipk_chan *l = NULL;
        ipkt_ok(ipk_listen(&l, t->listen, NULL));
        char host[64]; /* "tcp://HOST:" of the listener */
        snprintf(host, sizeof host, "%.*s", (int)(port_of(l) - ipk_addr(l)), ipk_addr(l));
        if (t->named)
            assert_string_equal(host, t->named);
        else
            assert_true(strcmp(host, "tcp://127.0.0.1:") == 0 || strcmp(host, "tcp://[::1]:") == 0);
        assert_true(atoi(port_of(l)) > 0);
        for (int j = 0; j < 2 && t->dial[j]; j++) {
            char url[64];
            snprintf(url, sizeof url, t->dial[j], port_of(l));
            echo_with(l, url, t->peer[j] ? t->peer[j] : host);
        }
        ipkt_ok(ipk_close(l));
    }
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
    open_fails(0, "tcp://nosuch.invalid:80", IPK_EADDR, "host 'nosuch.invalid' not found");
    open_fails(1, "tcp://nosuch.invalid:0", IPK_EADDR, "host 'nosuch.invalid' not found");
    open_fails(0, "tcp://127.0.0.1:0", IPK_EADDR, "port 0 is for listen");
    open_fails(0, "tcp://*:80", IPK_EADDR, "'*' (every interface) is for listen");
    /* An address this host does not have (TEST-NET-1, RFC 5737). */
    open_fails(1, "tcp://192.0.2.1:0", -EADDRNOTAVAIL, "tcp://192.0.2.1:0: bind");
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
    ipk_chan *c = NULL;
    open_fails(1, "tcp://127.0.0.1:0?nodelay=maybe", IPK_EOPTION, "nodelay=maybe: expected 1 or 0");
    open_fails(0, "tcp://127.0.0.1:9?nodelay=2", IPK_EOPTION, "nodelay=2");
    open_fails(1, "tcp://127.0.0.1:0?backlog=0", IPK_EOPTION,
               "backlog=0: expected an integer in 1..");
    open_fails(1, "tcp://127.0.0.1:0?perm=0600", IPK_EOPTION, "unknown option 'perm' for tcp:");
    open_fails(0, "tcp://127.0.0.1:9?keep=1", IPK_EOPTION, "unknown option 'keep' for tcp:");
    open_fails(1, "tcp://127.0.0.1:0?framing=xml", IPK_EOPTION, "framing=xml");
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
    ipkt_info_has("tcp://127.0.0.1:9",
                  (const char *const[]){"TCP_NODELAY", "/proc/sys/net/core/somaxconn", NULL});
    /* A buffer too small gets what fits and the length it would need. */
    char big[4096], small[16];
    long n = ipk_info("tcp://127.0.0.1:9", big, sizeof big);
    assert_int_equal(ipk_info("tcp://127.0.0.1:9", small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
}

IPKT_MAIN(cmocka_unit_test(t_addresses), cmocka_unit_test(t_refused),
          cmocka_unit_test(t_bad_addresses), cmocka_unit_test(t_in_use_and_reuse),
          cmocka_unit_test(t_nodelay), cmocka_unit_test(t_options),
          cmocka_unit_test(t_accept_timeouts), cmocka_unit_test(t_info))
