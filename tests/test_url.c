/*
 * test_url.c - the address parser: every malformed address gets IPK_EADDR and a message that
 * says what is wrong; schemes this build lacks say so instead of failing generically.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void bad(const char *url, int want, const char *says)
{
    ipk_chan *c = (ipk_chan *)0x1;
    ipkt_expect(ipk_dial(&c, url, NULL), want);
    assert_null(c);
    ipkt_errmsg_has(says);
}

static void t_malformed(void **state)
{
    (void)state;
    bad("", IPK_EADDR, "missing scheme");
    bad("nosuch", IPK_EADDR, "missing scheme");
    bad("gopher:x", IPK_EADDR, "unknown scheme 'gopher'");
    bad("tcp:127.0.0.1:80", IPK_EADDR, "tcp://HOST:PORT");
    bad("tcp://127.0.0.1", IPK_EADDR, "missing ':PORT'");
    bad("tcp://127.0.0.1:", IPK_EADDR, "missing port number");
    bad("tcp://127.0.0.1:http", IPK_EADDR, "is not a number");
    bad("tcp://127.0.0.1:65536", IPK_EADDR, "out of range");
    bad("tcp://127.0.0.1:-1", IPK_EADDR, "is not a number");
    bad("tcp://::1:80", IPK_EADDR, "brackets");
    bad("tcp://[::1:80", IPK_EADDR, "without ']'");
    bad("tcp://[::1]80", IPK_EADDR, "missing ':PORT' after ']'");
    bad("tcp://[zz]:80", IPK_EADDR, "not an IPv6 address");
    bad("udp://ho st:80", IPK_EADDR, "bad character ' '");
    bad("unix:", IPK_EADDR, "missing socket path");
    bad("unix:@", IPK_EADDR, "empty abstract");
    char longp[200];
    memset(longp, 'a', sizeof longp);
    memcpy(longp, "unix:/", 6);
    longp[sizeof longp - 1] = '\0';
    bad(longp, IPK_EADDR, "sun_path holds 107");
    bad("mq:jobs", IPK_EADDR, "must be /NAME");
    bad("mq:/", IPK_EADDR, "must be /NAME");
    bad("shm:/a/b", IPK_EADDR, "no '/' allowed");
    bad("sysv:", IPK_EADDR, "missing key or path");
    bad("sysv:0", IPK_EADDR, "IPC_PRIVATE");
    bad("sysv:12ab", IPK_EADDR, "is not a key");
    bad("signal:abc", IPK_EADDR, "signal:PID or signal:self");
    bad("signal:0", IPK_EADDR, "out of range");
    bad("fifo:", IPK_EADDR, "missing path");
    bad("file:", IPK_EADDR, "missing path");
    bad("exec:   ", IPK_EADDR, "missing command");
    bad("unix:/tmp/x?", IPK_EADDR, "empty query");
    bad("unix:/tmp/x?a=1&", IPK_EADDR, "trailing '&'");
    bad("unix:/tmp/x?Bad=1", IPK_EADDR, "bad option name 'Bad'");
    bad("unix:/tmp/x?a=1&a=2", IPK_EADDR, "given twice");
    bad(NULL, -EINVAL, "NULL");
}

/* Options every transport shares, checked before the transport opens anything. */
static void t_common_options(void **state)
{
    (void)state;
    char path[256], url[400];
    ipkt_path(path, sizeof path, "sock");
    ipkt_journal("path", path);
    bad("unix:/tmp/x?bogus=1", IPK_EOPTION, "unknown option 'bogus' for unix:");
    bad("unix:/tmp/x?max=lots", IPK_EOPTION, "expected a size such as 4096, 64k, 16m");
    bad("unix:/tmp/x?max=4g", IPK_EOPTION, "the largest supported is");
    bad("unix:/tmp/x?framing=xml", IPK_EOPTION, "expected len, raw or line");
    bad("unix:/tmp/x?perm=9", IPK_EOPTION, "expected an octal mode");
    bad("unix:/tmp/x?keep=maybe", IPK_EOPTION, "expected 1 or 0");
    bad("udp://127.0.0.1:9?framing=raw", IPK_EOPTION, "unknown option 'framing' for udp:");
    ipk_opts *o = ipk_opts_new();
    assert_non_null(o);
    ipkt_expect(ipk_opts_set(o, "Bad", "1"), IPK_EOPTION);
    ipkt_ok(ipk_opts_set(o, "perm", "640")); /* octal without the leading 0 */
    snprintf(url, sizeof url, "unix:%s?perm=0777", path);
    ipk_chan *c;
    ipkt_ok(ipk_listen(&c, url, o)); /* ipk_opts wins over the address */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    ipkt_ok(ipk_close(c));
    ipk_opts_free(o);
}

IPKT_MAIN(cmocka_unit_test(t_malformed), cmocka_unit_test(t_common_options))
