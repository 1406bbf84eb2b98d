/*
 * test_edges.c - the edges of the ipckit tool a new user meets first (issue 10), end to end with
 * the built binary as real processes: queues that keep undelivered messages and producers that
 * come first, standard output that goes away, signals, options anywhere, JSON, conversations
 * from a shell, exit statuses.
 */
#include "cli_run.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Messages waiting in a POSIX queue; -1 when it does not exist. */
static long mq_depth(const char *name)
{
    mqd_t q = mq_open(name, O_RDONLY | O_CLOEXEC);
    if (q == (mqd_t)-1)
        return -1;
    struct mq_attr at;
    long n = mq_getattr(q, &at) == 0 ? at.mq_curmsgs : -1;
    mq_close(q);
    return n;
}

static const char *mq_fresh(char *name, size_t ncap, char *url, size_t ucap)
{
    ipkt_name(name, ncap, "/");
    ipkt_journal("mq", name);
    snprintf(url, ucap, "mq:%s", name);
    return url;
}

/* ---- 1. an owner never destroys undelivered messages; a producer may come first ---- */

static void t_owner_leaves_undelivered(void **state)
{
    (void)state;
    char name[64], url[128], kurl[160];
    run r;
    mq_fresh(name, sizeof name, url, sizeof url);
    assert_int_equal(CLI(&r, NULL, "send", "-l", url, "j1", "j2"), 0);
    has(r.err, "still holds messages nobody has received; it stays");
    assert_int_equal(mq_depth(name), 2);
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "2", url), 0);
    assert_string_equal(r.out, "j1\nj2\n");
    assert_int_equal(mq_depth(name), -1); /* drained: its owner removed it */

    snprintf(kurl, sizeof kurl, "%s?keep=1", url);
    assert_int_equal(CLI(&r, NULL, "send", "-l", kurl, "j1", "j2", "j3"), 0);
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "1", url), 0);
    assert_string_equal(r.out, "j1\n");
    has(r.err, "it stays");
    assert_int_equal(mq_depth(name), 2);
    /* keep=0 is the explicit way to throw them away. */
    snprintf(kurl, sizeof kurl, "%s?keep=0", url);
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "1", kurl), 0);
    assert_int_equal(mq_depth(name), -1);
}

static void t_producer_first(void **state)
{
    (void)state;
    char name[64], url[128];
    run r;
    mq_fresh(name, sizeof name, url, sizeof url);
    assert_int_equal(CLI(&r, NULL, "send", url, "job"), 0);
    assert_int_equal(mq_depth(name), 1);
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "1", url), 0);
    assert_string_equal(r.out, "job\n");
    assert_int_equal(mq_depth(name), -1);
    /* ?create=0 asks for the old refusal. */
    char curl[160];
    snprintf(curl, sizeof curl, "%s?create=0", url);
    assert_int_equal(CLI(&r, NULL, "send", curl, "job"), 1);
    has(r.err, "no such queue");
}

IPKT_MAIN(cmocka_unit_test(t_owner_leaves_undelivered), cmocka_unit_test(t_producer_first))
