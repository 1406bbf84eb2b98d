/*
 * test_registry.c - the transport registry as the public API shows it: every scheme listed once
 * with a usage, a summary and flags that agree with what its channels do; a scheme switched off
 * in the build (-DIPK_TRANSPORT_<NAME>=OFF) answers IPK_ENOTBUILT. IPKT_EXPECT_OFF="shm signal"
 * names the schemes the build under test switched off (build.sh builds one such configuration).
 */
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int expected_off(const char *scheme)
{
    const char *list = getenv("IPKT_EXPECT_OFF");
    if (list == NULL)
        return 0;
    size_t n = strlen(scheme);
    for (const char *p = list; (p = strstr(p, scheme)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' '))
            return 1;
    return 0;
}

static void t_every_scheme_described(void **state)
{
    (void)state;
    size_t n = 0;
    for (const char *s; (s = ipk_scheme_at(n)) != NULL; n++) {
        unsigned f = ipk_scheme_flags(s);
        assert_non_null(ipk_scheme_usage(s));
        assert_true(strncmp(ipk_scheme_usage(s), s, strlen(s)) == 0);
        assert_non_null(ipk_scheme_summary(s));
        assert_int_equal(ipk_scheme_built(s), (f & IPK_SCHEME_BUILT) != 0);
        assert_int_equal((f & IPK_SCHEME_BUILT) == 0, expected_off(s));
        for (size_t j = 0; j < n; j++)
            assert_string_not_equal(ipk_scheme_at(j), s);
        /* Exactly one family for a built scheme. */
        if (f & IPK_SCHEME_BUILT) {
            unsigned fam =
                f & (IPK_SCHEME_STREAM | IPK_SCHEME_DGRAM | IPK_SCHEME_QUEUE | IPK_SCHEME_SIGNAL);
            assert_true(fam != 0 && (fam & (fam - 1)) == 0);
        }
    }
    assert_true(n >= 12);
    assert_int_equal(ipk_scheme_flags("gopher"), 0);
    assert_null(ipk_scheme_usage("gopher"));
    assert_null(ipk_scheme_usage(NULL));
    assert_int_equal(ipk_scheme_flags(NULL), 0);
}

static void t_flags_match_behaviour(void **state)
{
    (void)state;
    if (ipk_scheme_built("unix"))
        assert_int_equal(ipk_scheme_flags("unix"),
                         IPK_SCHEME_BUILT | IPK_SCHEME_STREAM | IPK_SCHEME_ACCEPT);
    if (ipk_scheme_built("mq"))
        assert_int_equal(ipk_scheme_flags("mq"), IPK_SCHEME_BUILT | IPK_SCHEME_QUEUE);
    if (ipk_scheme_built("unixpacket"))
        assert_int_equal(ipk_scheme_flags("unixpacket"),
                         IPK_SCHEME_BUILT | IPK_SCHEME_DGRAM | IPK_SCHEME_ACCEPT);
    /* Option keys: listed ones are accepted, the list ends with NULL. */
    if (ipk_scheme_built("mq")) {
        int saw_prio = 0;
        size_t i = 0;
        for (const char *k; (k = ipk_scheme_option("mq", i)) != NULL; i++)
            saw_prio |= strcmp(k, "prio") == 0;
        assert_true(saw_prio);
        assert_null(ipk_scheme_option("mq", i + 1));
    }
}

static void t_not_built(void **state)
{
    (void)state;
    for (size_t i = 0; ipk_scheme_at(i) != NULL; i++) {
        const char *s = ipk_scheme_at(i);
        if (ipk_scheme_built(s))
            continue;
        char url[64];
        snprintf(url, sizeof url, "%s:/whatever", s);
        ipk_chan *c = NULL;
        ipkt_expect(ipk_listen(&c, url, NULL), IPK_ENOTBUILT);
        assert_null(c);
        ipkt_errmsg_has("not built");
        ipkt_expect(ipk_dial(&c, url, NULL), IPK_ENOTBUILT);
        char buf[256];
        assert_true(ipk_info(url, buf, sizeof buf) > 0);
        assert_non_null(strstr(buf, "not built"));
    }
}

/* The detail of a failure stays with its channel when another channel fails later. */
static void t_chan_errmsg(void **state)
{
    (void)state;
    char a[64], b[64];
    ipk_chan *qa, *qb;
    ipkt_name(a, sizeof a, "/");
    ipkt_name(b, sizeof b, "/");
    char ua[96], ub[96];
    snprintf(ua, sizeof ua, "mq:%s?maxmsg=1&msgsize=16", a);
    snprintf(ub, sizeof ub, "mq:%s?maxmsg=1&msgsize=16", b);
    ipkt_journal("mq", a);
    ipkt_journal("mq", b);
    ipkt_ok(ipk_listen(&qa, ua, NULL));
    ipkt_ok(ipk_listen(&qb, ub, NULL));
    assert_string_equal(ipk_chan_errmsg(qa), "");
    char big[64] = {0};
    ipkt_expect(ipk_send(qa, big, sizeof big, 0), IPK_EMSGSIZE);
    char keep[256];
    snprintf(keep, sizeof keep, "%s", ipk_chan_errmsg(qa));
    assert_true(keep[0] != '\0');
    char small[1];
    ipkt_expect(ipk_recv(qb, small, sizeof small, 0), -EAGAIN);
    ipkt_ok(ipk_send(qb, "x", 1, 0));
    ipkt_expect(ipk_recv(qb, small, 0, 0), IPK_EMSGSIZE);
    assert_string_not_equal(ipk_errmsg(), keep);
    assert_string_equal(ipk_chan_errmsg(qa), keep);
    assert_string_equal(ipk_chan_errmsg(qb), ipk_errmsg());
    assert_string_equal(ipk_chan_errmsg(NULL), "");
    ipk_close(qa);
    ipk_close(qb);
}

IPKT_MAIN(cmocka_unit_test(t_every_scheme_described), cmocka_unit_test(t_flags_match_behaviour),
          cmocka_unit_test(t_not_built), cmocka_unit_test(t_chan_errmsg))
