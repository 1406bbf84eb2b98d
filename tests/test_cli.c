/*
 * test_cli.c - the ipckit command-line tool end to end: the built binary run as real processes,
 * its exit codes (0 ok, 1 failure, 2 usage), standard output for data and standard error for
 * diagnostics, ls/rm against real kernel objects, and the tour leaving nothing behind.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"

/* ---- tests ---- */

static void t_help_and_version(void **state)
{
    (void)state;
    static const char *const cmds[] = {"send", "recv", "relay", "ls", "rm", "info", "tour"};
    run r;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(CLI(&r, NULL, cmds[i], "--help"), 0);
        char want[64];
        snprintf(want, sizeof want, "usage: ipckit %s", cmds[i]);
        has(r.out, want);
        assert_string_equal(r.err, "");
    }
    assert_int_equal(CLI(&r, NULL, "--version"), 0);
    has(r.out, "ipckit " IPK_VERSION_STRING);
    assert_int_equal(CLI(&r, NULL, "--help"), 0);
    has(r.out, "tour");
    assert_int_equal(CLI(&r, NULL, "frobnicate"), 2);
    has(r.err, "unknown command 'frobnicate'");
    assert_int_equal(CLI(&r, NULL, "ls", "--bogus"), 2);
    assert_int_equal(CLI(&r, NULL, "send"), 2);
    has(r.err, "missing URL");
}

static void t_bad_url_is_usage_error(void **state)
{
    (void)state;
    run r;
    assert_int_equal(CLI(&r, NULL, "send", "nosuch", "hello"), 2);
    has(r.err, "missing scheme");
    assert_string_equal(r.out, "");
    assert_int_equal(CLI(&r, NULL, "recv", "tcp://127.0.0.1"), 2);
    has(r.err, "missing ':PORT'");
    assert_int_equal(CLI(&r, NULL, "info", "gopher:x"), 2);
    has(r.err, "unknown scheme 'gopher'");
    assert_int_equal(CLI(&r, NULL, "relay", "unix:/tmp/a", "mq:bad"), 2);
    has(r.err, "must be /NAME");
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "0", "unix:/tmp/x"), 2);
    has(r.err, "--count 0");
    assert_int_equal(CLI(&r, NULL, "send", "-o", "nokey", "unix:/tmp/x", "m"), 2);
    has(r.err, "KEY=VALUE");
    assert_int_equal(CLI(&r, NULL, "rm", "gopher:/x"), 2);
    has(r.err, "names nothing rm can remove");
}

static void t_info(void **state)
{
    (void)state;
    run r;
    assert_int_equal(CLI(&r, NULL, "info"), 0);
    has(r.out, "SCHEME");
    has(r.out, "unixpacket");
    has(r.out, "signal");
    assert_int_equal(CLI(&r, NULL, "info", "mq:/jobs", "unix:/tmp/x.sock"), 0);
    has(r.out, "mq");
    has(r.out, "unix");
}

static void t_send_recv_unix(void **state)
{
    (void)state;
    char p[200], url[220];
    snprintf(url, sizeof url, "unix:%s", ipkt_path(p, sizeof p, "sr"));
    ipkt_journal("path", p);
    bg b;
    run r, rr;
    BG(&b, NULL, "recv", "-n", "4", "-t", "10000", url);
    wait_path(p);
    assert_int_equal(CLI(&r, NULL, "send", url, "hello", "", "two words"), 0);
    assert_string_equal(r.err, "");
    assert_int_equal(CLI(&r, "from stdin\n", "send", url), 0);
    assert_int_equal(bg_finish(&b, &rr), 0);
    assert_string_equal(rr.out, "hello\n\ntwo words\nfrom stdin\n");

    /* JSON and hex formats; framed standard input keeps binary messages whole. */
    BG(&b, NULL, "recv", "-n", "2", "-f", "json", "-t", "10000", url);
    wait_path(p);
    assert_int_equal(CLI(&r, "say \"hi\"\n\001\n", "send", url), 0);
    assert_int_equal(bg_finish(&b, &rr), 0);
    has(rr.out, "{\"len\":8,");
    has(rr.out, "\"data\":\"say \\\"hi\\\"\"}");
    has(rr.out, "\"data\":\"\\u0001\"}");
    BG(&b, NULL, "recv", "-n", "2", "-f", "hex", "-t", "10000", url);
    wait_path(p);
    static const char framed[] = "\0\0\0\3a\nb\0\0\0\0";
    char in[sizeof framed];
    memcpy(in, framed, sizeof framed);
    /* start() writes the input with fputs: give send a file instead for the NUL bytes. */
    char fp[200];
    FILE *f = fopen(ipkt_path(fp, sizeof fp, "framed"), "we");
    assert_non_null(f);
    fwrite(framed, 1, sizeof framed - 1, f);
    fclose(f);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s send --stdin framed %s < %s", BIN, url, fp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(bg_finish(&b, &rr), 0);
    assert_string_equal(rr.out, "610a62\n\n");
}

static void t_recv_timeout_and_missing_peer(void **state)
{
    (void)state;
    char p[200], url[220];
    snprintf(url, sizeof url, "unix:%s", ipkt_path(p, sizeof p, "to"));
    ipkt_journal("path", p);
    run r;
    assert_int_equal(CLI(&r, NULL, "recv", "-t", "200", url), 1);
    has(r.err, "ipckit recv: ");
    has(r.err, "timed out");
    assert_string_equal(r.out, "");
    /* Nobody listens: the dial fails and says which address. */
    assert_int_equal(CLI(&r, NULL, "send", url, "x"), 1);
    has(r.err, p);
    assert_int_equal(CLI(&r, NULL, "rm", "mq:/ipkt-no-such-queue"), 1);
    has(r.err, "mq:/ipkt-no-such-queue: no such object");
}

static void t_relay_unix_to_unix(void **state)
{
    (void)state;
    char pa[200], pb[200], ua[220], ub[220];
    snprintf(ua, sizeof ua, "unix:%s", ipkt_path(pa, sizeof pa, "ra"));
    snprintf(ub, sizeof ub, "unix:%s", ipkt_path(pb, sizeof pb, "rb"));
    ipkt_journal("path", pa);
    ipkt_journal("path", pb);
    bg rcv, rel;
    run r, rr, rl;
    BG(&rcv, NULL, "recv", "-n", "3", "-t", "10000", ub);
    wait_path(pb);
    BG(&rel, NULL, "relay", "-n", "3", "-t", "10000", ua, ub);
    wait_path(pa);
    assert_int_equal(CLI(&r, NULL, "send", ua, "one", "", "three"), 0);
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    assert_string_equal(rr.out, "one\n\nthree\n");
    assert_int_equal(bg_finish(&rel, &rl), 0);
    /* A listening end takes the next peer after one leaves; with --once the relay ends. */
    BG(&rcv, NULL, "recv", "-n", "2", "-t", "10000", ub);
    wait_path(pb);
    BG(&rel, NULL, "relay", "-n", "2", "-t", "10000", ua, ub);
    wait_path(pa);
    assert_int_equal(CLI(&r, NULL, "send", ua, "first peer"), 0);
    assert_int_equal(CLI(&r, NULL, "send", ua, "second peer"), 0);
    assert_int_equal(bg_finish(&rel, &rl), 0);
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    assert_string_equal(rr.out, "first peer\nsecond peer\n");
    BG(&rcv, NULL, "recv", "-n", "1", "-t", "10000", ub);
    wait_path(pb);
    BG(&rel, NULL, "relay", "--once", "-t", "10000", ua, ub);
    wait_path(pa);
    assert_int_equal(CLI(&r, NULL, "send", ua, "only"), 0);
    assert_int_equal(bg_finish(&rel, &rl), 0); /* its peer left: done, no count needed */
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    assert_string_equal(rr.out, "only\n");
    /* Idle relay: the timeout fails it. */
    BG(&rel, NULL, "relay", "--one-way", "-t", "300", ua, ub);
    wait_path(pa);
    BG(&rcv, NULL, "recv", "-t", "5000", ub); /* relay dials ub: give it a listener */
    assert_int_equal(bg_finish(&rel, &rl), 1);
    kill(rcv.pid, SIGTERM);
    bg_finish(&rcv, &rr);
}

static void t_send_recv_mq(void **state)
{
    (void)state;
    char q[64], url[80];
    snprintf(url, sizeof url, "mq:%s", ipkt_name(q, sizeof q, "/"));
    ipkt_journal("mq", q);
    bg b;
    run r, rr;
    /* recv listens: it creates the queue; wait until it exists before sending. */
    BG(&b, NULL, "recv", "-n", "3", "-f", "json", "-t", "10000", url);
    wait_mq(q);
    assert_int_equal(CLI(&r, NULL, "send", "--prio", "7", url, "high"), 0);
    assert_int_equal(CLI(&r, "low one\nlow two\n", "send", url), 0);
    assert_int_equal(bg_finish(&b, &rr), 0);
    has(rr.out, "\"prio\":7,");
    has(rr.out, "\"data\":\"high\"}");
    has(rr.out, "\"data\":\"low two\"}");
    /* Nobody sends: the receive times out, exit 1, the address and the timeout on stderr. */
    assert_int_equal(CLI(&r, NULL, "recv", "-t", "200", url), 1);
    has(r.err, url);
    has(r.err, "timed out");
    assert_string_equal(r.out, "");
    /* A queue nobody created, and send asked not to create it: exit 1, and it says so. */
    char missing[100];
    snprintf(missing, sizeof missing, "mq:%s-none?create=0", q);
    assert_int_equal(CLI(&r, NULL, "send", missing, "x"), 1);
    has(r.err, missing);
    assert_int_equal(CLI(&r, NULL, "send", "--prio", "x", url, "m"), 2);
    has(r.err, "--prio x");
}

static void t_relay_mq_keeps_boundaries_and_priority(void **state)
{
    (void)state;
    char qa[64], qb[64], ua[80], ub[80];
    snprintf(ua, sizeof ua, "mq:%s", ipkt_name(qa, sizeof qa, "/"));
    snprintf(ub, sizeof ub, "mq:%s", ipkt_name(qb, sizeof qb, "/"));
    ipkt_journal("mq", qa);
    ipkt_journal("mq", qb);
    bg rcv, rel;
    run r, rr, rl;
    BG(&rcv, NULL, "recv", "-n", "2", "-f", "json", "-t", "10000", ub);
    wait_mq(qb);
    BG(&rel, NULL, "relay", "-n", "2", "-t", "10000", ua, ub);
    wait_mq(qa);
    assert_int_equal(CLI(&r, NULL, "send", "-p", "4", ua, "a b c", ""), 0);
    assert_int_equal(bg_finish(&rel, &rl), 0);
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    has(rr.out, "{\"len\":5,\"prio\":4,");
    has(rr.out, "{\"len\":0,\"prio\":4,");
}

/* Both ways between two conversations: a unix client's messages go to cat and come back. */
static void t_relay_both_ways(void **state)
{
    (void)state;
    char p[200], url[220];
    snprintf(url, sizeof url, "unix:%s", ipkt_path(p, sizeof p, "echo"));
    ipkt_journal("path", p);
    bg rel;
    run rl;
    BG(&rel, NULL, "relay", "-n", "4", "-t", "10000", url, "exec:cat");
    wait_path(p);
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, url, NULL));
    char buf[64];
    ipkt_ok(ipk_send(c, "ping", 4, 5000));
    ipkt_ok(ipk_send(c, "", 0, 5000));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), 4);
    assert_memory_equal(buf, "ping", 4);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), 0);
    assert_int_equal(bg_finish(&rel, &rl), 0);
    ipkt_ok(ipk_close(c));
}

/* shm: with duplex=1 is a conversation too; a dialer that leaves duplex=1 out gets the same
 * ring (the header says), and the relay sees that it can answer. */
static void t_relay_shm_duplex_both_ways(void **state)
{
    (void)state;
    char name[64], url[200], plain[200];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("shm", name);
    snprintf(url, sizeof url, "shm:%s?duplex=1", name);
    snprintf(plain, sizeof plain, "shm:%s", name);
    bg rel;
    run rl;
    BG(&rel, NULL, "relay", "-n", "4", "-t", "10000", url, "exec:cat");
    ipk_chan *c = NULL;
    int r;
    for (int i = 0; (r = ipk_dial(&c, plain, NULL)) == -ENOENT && i < 1000; i++)
        ipkt_msleep(10); /* the relay has not created it yet */
    ipkt_ok(r);
    char buf[64];
    ipkt_ok(ipk_send(c, "ping", 4, 5000));
    ipkt_ok(ipk_send(c, "a longer message that goes through the ring, not the mailbox", 61, 5000));
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), 4);
    assert_memory_equal(buf, "ping", 4);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), 61);
    assert_memory_equal(buf, "a longer", 8);
    ipkt_ok(ipk_close(c));
    assert_int_equal(bg_finish(&rel, &rl), 0);
}

/* recv URL URL URL: one poller over a POSIX queue, a FIFO and a shared-memory ring (which has
 * no descriptor); each line says its source, every message arrives once. */
static void t_recv_many(void **state)
{
    (void)state;
    char q[64], s[64], f[200], uq[80], us[80], uf[220];
    snprintf(uq, sizeof uq, "mq:%s", ipkt_name(q, sizeof q, "/"));
    snprintf(us, sizeof us, "shm:%s", ipkt_name(s, sizeof s, "/"));
    snprintf(uf, sizeof uf, "fifo:%s", ipkt_path(f, sizeof f, "f"));
    ipkt_journal("mq", q);
    ipkt_journal("shm", s);
    ipkt_journal("path", f);
    bg rcv;
    run r, rr;
    BG(&rcv, NULL, "recv", "-n", "6", "-t", "10000", uq, uf, us);
    wait_mq(q);
    wait_path(f);
    char shm_path[100];
    snprintf(shm_path, sizeof shm_path, "/dev/shm%s", s);
    wait_path(shm_path);
    assert_int_equal(CLI(&r, NULL, "send", us, "ring-1", "ring-2"), 0);
    assert_int_equal(CLI(&r, NULL, "send", uq, "queue-1"), 0);
    assert_int_equal(CLI(&r, NULL, "send", uf, "fifo-1", "fifo-2"), 0);
    assert_int_equal(CLI(&r, NULL, "send", uq, "queue-2"), 0);
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    const char *want[][2] = {{us, "ring-1"},  {us, "ring-2"}, {uq, "queue-1"},
                             {uq, "queue-2"}, {uf, "fifo-1"}, {uf, "fifo-2"}};
    for (size_t i = 0; i < 6; i++) {
        char line[300];
        snprintf(line, sizeof line, "[%s] %s\n", want[i][0], want[i][1]);
        if (strstr(rr.out, line) == NULL)
            print_error("missing '%s' in:\n%s", line, rr.out);
        assert_non_null(strstr(rr.out, line));
    }
    /* In order within each source. */
    assert_true(strstr(rr.out, "ring-1") < strstr(rr.out, "ring-2"));
    assert_true(strstr(rr.out, "queue-1") < strstr(rr.out, "queue-2"));
    assert_true(strstr(rr.out, "fifo-1") < strstr(rr.out, "fifo-2"));
    /* JSON names the source; raw output cannot, so several URLs refuse it. */
    assert_int_equal(CLI(&r, NULL, "recv", "-f", "raw", uq, us), 2);
    assert_non_null(strstr(r.err, "cannot say which URL"));
}

/* relay SRC SRC SINK: two sources of different kinds (a System V queue with no descriptor, a
 * Unix socket listener with two peers) into one POSIX queue. */
static void t_relay_many_into_one(void **state)
{
    (void)state;
    char q[64], key[200], sock[200], uq[80], uk[220], uu[220];
    snprintf(uq, sizeof uq, "mq:%s", ipkt_name(q, sizeof q, "/"));
    ipkt_path(key, sizeof key, "key");
    FILE *kf = fopen(key, "we");
    assert_non_null(kf);
    fclose(kf);
    ipkt_journal("path", key);
    snprintf(uk, sizeof uk, "sysv:%s?proj=9", key);
    snprintf(uu, sizeof uu, "unix:%s", ipkt_path(sock, sizeof sock, "s"));
    ipkt_journal("path", sock);
    ipkt_journal("mq", q);
    bg rel, rcv;
    run r, rl, rr;
    BG(&rcv, NULL, "recv", "-n", "4", "-t", "10000", uq);
    wait_mq(q);
    BG(&rel, NULL, "relay", "-n", "4", "-t", "10000", uk, uu, uq);
    wait_path(sock);
    assert_int_equal(CLI(&r, NULL, "send", uu, "sock-a"), 0);
    assert_int_equal(CLI(&r, NULL, "send", uk, "sysv-a", "sysv-b"), 0);
    assert_int_equal(CLI(&r, NULL, "send", uu, "sock-b"), 0);
    assert_int_equal(bg_finish(&rel, &rl), 0);
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    static const char *const want[] = {"sock-a\n", "sysv-a\n", "sysv-b\n", "sock-b\n"};
    for (size_t i = 0; i < 4; i++)
        assert_non_null(strstr(rr.out, want[i]));
    assert_true(strstr(rr.out, "sysv-a") < strstr(rr.out, "sysv-b"));
}

/* A fresh POSIX queue's address (uq, 80 bytes) and a Unix socket path's (us, 220 bytes), both
 * journalled; returns the socket's path. */
static const char *queue_and_socket(char *uq, char *us, const char *stem)
{
    static char q[64], sock[200];
    snprintf(uq, 80, "mq:%s", ipkt_name(q, sizeof q, "/"));
    ipkt_journal("mq", q);
    snprintf(us, 220, "unix:%s", ipkt_path(sock, sizeof sock, stem));
    ipkt_journal("path", sock);
    return sock;
}

/* A sink that cannot be reached costs no message: the relay opens it before it takes one from
 * the source, so what waits in the queue is still there when the relay gives up. */
static void t_relay_unreachable_sink_loses_nothing(void **state)
{
    (void)state;
    char uq[80], us[220];
    queue_and_socket(uq, us, "nobody-listens");
    run r;
    assert_int_equal(CLI(&r, NULL, "send", uq, "keep me"), 0);
    assert_int_equal(CLI(&r, NULL, "relay", "-t", "2000", uq, us), 1);
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "1", "-t", "2000", uq), 0);
    assert_string_equal(r.out, "keep me\n");
}

static int count_text(const char *path, const char *text)
{
    static char buf[1 << 14];
    ipkt_slurp(path, buf, sizeof buf);
    int n = 0;
    for (const char *p = buf; (p = strstr(p, text)) != NULL; p += strlen(text))
        n++;
    return n;
}

/* A dialled sink that goes away mid-stream: the relay has taken the next message from the
 * queue, so it holds it and dials again until a sink is back, which then gets it. Stopped
 * while it holds one, it says which message it could not deliver. */
static void t_relay_sink_restart_loses_nothing(void **state)
{
    (void)state;
    char uq[80], us[220];
    const char *sock = queue_and_socket(uq, us, "sink");
    bg rel, rcv;
    run r, rl, rr;
    BG(&rcv, NULL, "recv", "-l", "-n", "1", "-t", "10000", us);
    wait_path(sock);
    BG(&rel, NULL, "relay", "-v", "-t", "20000", uq, us);
    assert_int_equal(CLI(&r, NULL, "send", uq, "first"), 0);
    assert_int_equal(bg_finish(&rcv, &rr), 0); /* the sink took one and left */
    assert_string_equal(rr.out, "first\n");
    assert_int_equal(CLI(&r, NULL, "send", uq, "second"), 0);
    wait_text(rel.errf, "dialling again");
    BG(&rcv, NULL, "recv", "-l", "-n", "1", "-t", "10000", us);
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    assert_string_equal(rr.out, "second\n");
    /* Gone again with "third" taken: TERM while the relay holds it. */
    assert_int_equal(CLI(&r, NULL, "send", uq, "third"), 0);
    for (int i = 0; count_text(rel.errf, "dialling again") < 2; i++) {
        assert_true(i < 2000);
        ipkt_msleep(5);
    }
    assert_int_equal(kill(rel.pid, SIGTERM), 0);
    assert_int_equal(bg_finish(&rel, &rl), 128 + SIGTERM);
    has(rl.err, "the message of 5 bytes taken from mq:");
    has(rl.err, "was not delivered");
}

/* A UDP datagram into a Unix seqpacket socket: one datagram, one packet, empty ones too. */
static void t_relay_udp_to_unixpacket(void **state)
{
    (void)state;
    char p[200], up[220];
    snprintf(up, sizeof up, "unixpacket:%s", ipkt_path(p, sizeof p, "pk"));
    ipkt_journal("path", p);
    ipk_chan *u;
    ipkt_ok(ipk_listen(&u, "udp://127.0.0.1:0", NULL));
    char udp[128];
    snprintf(udp, sizeof udp, "%s", ipk_addr(u));
    ipkt_ok(ipk_close(u)); /* the port is free again for the relay (a race we accept) */
    bg rcv, rel;
    run r, rr, rl;
    BG(&rcv, NULL, "recv", "-n", "3", "-f", "hex", "-t", "10000", up);
    wait_path(p);
    BG(&rel, NULL, "relay", "-v", "-n", "3", "-t", "10000", udp, up);
    wait_text(rel.errf, "listening on udp://"); /* bound: datagrams from now on arrive */
    assert_int_equal(CLI(&r, NULL, "send", udp, "ab", "", "c"), 0);
    assert_int_equal(bg_finish(&rel, &rl), 0);
    assert_int_equal(bg_finish(&rcv, &rr), 0);
    assert_string_equal(rr.out, "6162\n\n63\n");
}

static void t_rm_refuses_live_socket(void **state)
{
    (void)state;
    char p[200], url[220];
    snprintf(url, sizeof url, "unix:%s", ipkt_path(p, sizeof p, "live"));
    int fd = unix_listener(p);
    run r;
    struct stat st;
    assert_int_equal(CLI(&r, NULL, "rm", url), 1);
    has(r.err, "in use, not removed");
    assert_string_equal(r.out, "");
    assert_int_equal(stat(p, &st), 0);
    close(fd); /* now the file is left behind: stale */
    assert_int_equal(CLI(&r, NULL, "rm", "--dry-run", url), 0);
    has(r.out, "would remove");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(CLI(&r, NULL, "rm", url), 0);
    char want[260];
    snprintf(want, sizeof want, "removed %s\n", url);
    assert_string_equal(r.out, want);
    assert_int_equal(stat(p, &st), -1);
}

static void t_rm_stale_exactly(void **state)
{
    (void)state;
    char dir[200], live[260], dead[260], held[260], unheld[260];
    ipkt_path(dir, sizeof dir, "stale");
    assert_int_equal(mkdir(dir, 0700), 0);
    ipkt_journal("path", dir);
    snprintf(live, sizeof live, "%s/live.sock", dir);
    snprintf(dead, sizeof dead, "%s/dead.sock", dir);
    snprintf(held, sizeof held, "%s/held.fifo", dir);
    snprintf(unheld, sizeof unheld, "%s/unheld.fifo", dir);
    int lfd = unix_listener(live);
    close(unix_listener(dead));
    assert_int_equal(mkfifo(held, 0600), 0);
    ipkt_journal("path", held);
    assert_int_equal(mkfifo(unheld, 0600), 0);
    ipkt_journal("path", unheld);
    int hfd = open(held, O_RDWR | O_CLOEXEC);
    assert_true(hfd >= 0);
    run r;
    assert_int_equal(CLI(&r, NULL, "rm", "--stale", "-k", "fifo,unix-socket", "-D", dir), 0);
    has(r.out, dead);
    has(r.out, unheld);
    assert_null(strstr(r.out, live));
    assert_null(strstr(r.out, held));
    struct stat st;
    assert_int_equal(stat(live, &st), 0);
    assert_int_equal(stat(held, &st), 0);
    assert_int_equal(stat(dead, &st), -1);
    assert_int_equal(stat(unheld, &st), -1);
    close(lfd);
    close(hfd);
}

static void t_ls_json(void **state)
{
    (void)state;
    char dir[200], fifo[260], q[64];
    ipkt_path(dir, sizeof dir, "ls");
    assert_int_equal(mkdir(dir, 0700), 0);
    ipkt_journal("path", dir);
    snprintf(fifo, sizeof fifo, "%s/held.fifo", dir);
    assert_int_equal(mkfifo(fifo, 0640), 0);
    ipkt_journal("path", fifo);
    int fd = open(fifo, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    ipkt_name(q, sizeof q, "/");
    mqd_t mq = mq_open(q, O_CREAT | O_RDWR | O_CLOEXEC, 0600, NULL);
    assert_true(mq != (mqd_t)-1);
    ipkt_journal("mq", q);
    assert_int_equal(mq_send(mq, "abc", 3, 1), 0);
    assert_int_equal(mq_send(mq, "de", 2, 1), 0);
    char out[260], err[260];
    ipkt_path(out, sizeof out, "ls.json");
    ipkt_path(err, sizeof err, "ls.err");
    run r;
    pid_t pid = start(NULL, out, err, (const char *const[]){"ls", "--json", "-D", dir, NULL});
    assert_int_equal(finish(&r, pid, out, err), 0);
    /* Parsed by a real JSON parser, then checked: our FIFO, held by us, not stale; our queue
     * with two messages, held by us. */
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys\n"
             "d=json.load(open(sys.argv[1]))\n"
             "o={x[\"url\"]:x for x in d[\"objects\"]}\n"
             "f=o[\"fifo:%s\"]; m=o[\"mq:%s\"]\n"
             "assert f[\"kind\"]==\"fifo\" and f[\"mode\"]==\"0640\" and %d in f[\"pids\"] and "
             "f[\"stale\"] is False, f\n"
             "assert m[\"kind\"]==\"posix-mq\" and m[\"depth\"]==2 and %d in m[\"pids\"] and "
             "m[\"stale\"] is False, m\n' %s",
             fifo, q, (int)getpid(), (int)getpid(), out);
    assert_int_equal(system(cmd), 0);
    /* Once we let go of them, the FIFO is stale; the queue still holds two messages nobody
     * received: undelivered, and rm --stale leaves it (issue 10). Received, it is stale too. */
    close(fd);
    mq_close(mq);
    char qurl[80];
    snprintf(qurl, sizeof qurl, "mq:%s", q);
    pid = start(NULL, out, err, (const char *const[]){"ls", "--json", "-D", dir, NULL});
    assert_int_equal(finish(&r, pid, out, err), 0);
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys\n"
             "d=json.load(open(sys.argv[1]))\n"
             "m={x[\"url\"]:x for x in d[\"objects\"]}[\"mq:%s\"]\n"
             "assert m[\"state\"]==\"undelivered\" and m[\"owner_gone\"] is True and "
             "m[\"stale\"] is False and m[\"messages\"]==2, m\n' %s",
             q, out);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(CLI(&r, NULL, "rm", "--stale", qurl), 1);
    has(r.err, "2 messages wait to be delivered");
    mq = mq_open(q, O_RDWR | O_CLOEXEC);
    assert_true(mq != (mqd_t)-1);
    char msg[8192];
    assert_int_equal(mq_receive(mq, msg, sizeof msg, NULL), 3);
    assert_int_equal(mq_receive(mq, msg, sizeof msg, NULL), 2);
    mq_close(mq);
    pid = start(NULL, out, err, (const char *const[]){"ls", "--json", "--stale", "-D", dir, NULL});
    assert_int_equal(finish(&r, pid, out, err), 0);
    has(r.out, fifo);
    has(r.out, q);
    /* --stale only where nothing but ours can be (our directory, FIFOs): other tests running
     * now may hold queues for a moment nobody has open. Our queue goes by name. */
    assert_int_equal(CLI(&r, NULL, "rm", "--stale", "-D", dir, "-k", "fifo"), 0);
    char want[300];
    snprintf(want, sizeof want, "removed fifo:%s\n", fifo);
    assert_string_equal(r.out, want);
    assert_int_equal(CLI(&r, NULL, "rm", "--stale", qurl), 0);
    snprintf(want, sizeof want, "removed %s\n", qurl);
    assert_string_equal(r.out, want);
    assert_true(mq_unlink(q) == -1 && errno == ENOENT);
}

/* Objects whose name says the tour made them, and tour directories. */
/* The tour's objects on the machine, one name a line ("ipckit-tour-PID-...", and its
 * directories /tmp/ipckit-tour.*). Another tour may be running or leave its own (a developer's,
 * another checkout's): a test compares sets, so only what this one leaves counts. */
static void tour_leftovers(char *out, size_t cap)
{
    run r;
    assert_int_equal(CLI(&r, NULL, "ls", "--json", "-D", "/tmp"), 0);
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = r.out; (p = strstr(p, "ipckit-tour")) != NULL; p++) {
        size_t k = strcspn(p, "\"");
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%.*s\n", (int)k, p);
    }
    glob_t g;
    if (glob("/tmp/ipckit-tour.*", 0, NULL, &g) == 0)
        for (size_t k = 0; k < g.gl_pathc; k++)
            n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s\n", g.gl_pathv[k]);
    globfree(&g);
}

/* Every leftover now was there before. */
static void no_new_leftovers(const char *before)
{
    char after[8192];
    tour_leftovers(after, sizeof after);
    for (const char *p = after; *p;) {
        size_t k = strcspn(p, "\n");
        char line[600];
        snprintf(line, sizeof line, "%.*s\n", (int)k, p);
        if (strstr(before, line) == NULL)
            print_error("the tour left %s", line);
        assert_non_null(strstr(before, line));
        p += k + (p[k] == '\n');
    }
}

static void t_tour_passes_and_cleans_up(void **state)
{
    (void)state;
    char before[8192];
    tour_leftovers(before, sizeof before);
    run r;
    int rc = CLI(&r, NULL, "tour");
    if (rc != 0)
        print_error("%s\n%s\n", r.out, r.err);
    assert_int_equal(rc, 0);
    has(r.out, "11 of 11 steps passed");
    has(r.out, "msg5 received as type 3");
    has(r.out, "Received ints: 768000");
    no_new_leftovers(before);
}

static void t_tour_ctrl_c_cleans_up(void **state)
{
    (void)state;
    char before[8192];
    tour_leftovers(before, sizeof before);
    bg b;
    run r;
    /* Interrupted in the middle of the FIFO step (768,000 ints): its FIFOs and directory exist
     * at that moment, and must be gone after. */
    BG(&b, NULL, "tour", "--step", "fifo", "--step", "shutdown");
    ipkt_msleep(300);
    kill(b.pid, SIGINT);
    assert_int_equal(bg_finish(&b, &r), 130);
    has(r.err, "interrupted");
    no_new_leftovers(before);
    assert_int_equal(CLI(&r, NULL, "tour", "--step", "nosuch"), 2);
    has(r.err, "no step 'nosuch'");
}

IPKT_MAIN(cmocka_unit_test(t_help_and_version), cmocka_unit_test(t_bad_url_is_usage_error),
          cmocka_unit_test(t_info), cmocka_unit_test(t_send_recv_unix),
          cmocka_unit_test(t_recv_timeout_and_missing_peer), cmocka_unit_test(t_relay_unix_to_unix),
          cmocka_unit_test(t_send_recv_mq),
          cmocka_unit_test(t_relay_mq_keeps_boundaries_and_priority),
          cmocka_unit_test(t_relay_both_ways), cmocka_unit_test(t_relay_shm_duplex_both_ways),
          cmocka_unit_test(t_relay_udp_to_unixpacket), cmocka_unit_test(t_recv_many),
          cmocka_unit_test(t_relay_many_into_one),
          cmocka_unit_test(t_relay_unreachable_sink_loses_nothing),
          cmocka_unit_test(t_relay_sink_restart_loses_nothing),
          cmocka_unit_test(t_rm_refuses_live_socket), cmocka_unit_test(t_rm_stale_exactly),
          cmocka_unit_test(t_ls_json), cmocka_unit_test(t_tour_passes_and_cleans_up),
          cmocka_unit_test(t_tour_ctrl_c_cleans_up))
