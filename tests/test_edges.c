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
#include <sys/socket.h>
#include <sys/un.h>
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

/* ---- 3. a standard output that fails ends the command at once ---- */

/* Reads one line from fd (unbuffered, so that nothing after it is taken). */
static void read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
        n++;
    buf[n] = '\0';
}

static void t_stdout_reader_gone(void **state)
{
    (void)state;
    char name[64], url[128], fifo[256], errf[256], line[64];
    mq_fresh(name, sizeof name, url, sizeof url);
    ipkt_path(fifo, sizeof fifo, "stdout");
    ipkt_path(errf, sizeof errf, "err");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* ipckit recv URL | head -n1 */
    pid_t pid = start(NULL, fifo, errf, (const char *const[]){"recv", url, NULL});
    int rd = open(fifo, O_RDONLY | O_CLOEXEC);
    assert_true(rd >= 0);
    wait_mq(name);
    run r;
    assert_int_equal(CLI(&r, NULL, "send", url, "first"), 0);
    read_line(rd, line, sizeof line);
    assert_string_equal(line, "first");
    close(rd);
    /* It ends by itself, without taking a message it could not deliver. */
    run rr;
    assert_int_equal(finish(&rr, pid, "/dev/null", errf), 1);
    has(rr.err, "standard output: Broken pipe");
    assert_int_equal(CLI(&r, NULL, "send", url, "second"), 0);
    assert_int_equal(mq_depth(name), 1);
}

static void t_stdout_full(void **state)
{
    (void)state;
    char name[64], url[128];
    mq_fresh(name, sizeof name, url, sizeof url);
    run r;
    assert_int_equal(CLI(&r, NULL, "send", url, "one", "two", "three"), 0);
    char errf[256];
    ipkt_path(errf, sizeof errf, "err");
    pid_t pid = start(NULL, "/dev/full", errf, (const char *const[]){"recv", url, NULL});
    assert_int_equal(finish(&r, pid, "/dev/null", errf), 1);
    has(r.err, "standard output: No space left on device");
    /* Only the message being written is lost; the others stay in the queue. */
    assert_int_equal(mq_depth(name), 2);
}

/* ---- 4. INT/TERM/HUP close the channels as a normal end would, then exit 128 + signal ---- */

static void t_signal_closes_socket(void **state)
{
    (void)state;
    char path[256], url[300];
    path_url(path, sizeof path, url, sizeof url, "unix", "sock");
    bg b;
    run r;
    BG(&b, NULL, "recv", url);
    wait_path(path);
    kill(b.pid, SIGTERM);
    assert_int_equal(bg_finish(&b, &r), 128 + SIGTERM);
    struct stat st;
    assert_int_equal(stat(path, &st), -1); /* the socket file went, as socat's does */
    /* send -l waiting for its peer: HUP. */
    BG(&b, NULL, "send", "-l", url, "hello");
    wait_path(path);
    kill(b.pid, SIGHUP);
    assert_int_equal(bg_finish(&b, &r), 128 + SIGHUP);
    assert_int_equal(stat(path, &st), -1);
}

static void t_signal_closes_fifo_and_relay(void **state)
{
    (void)state;
    char path[256], url[300], sock[256], surl[300];
    path_url(path, sizeof path, url, sizeof url, "fifo", "fifo");
    bg b;
    run r;
    BG(&b, NULL, "recv", url);
    wait_path(path);
    kill(b.pid, SIGINT);
    assert_int_equal(bg_finish(&b, &r), 128 + SIGINT);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    /* A relay from a listening socket into a queue: both ends close. */
    char name[64], qurl[128];
    mq_fresh(name, sizeof name, qurl, sizeof qurl);
    path_url(sock, sizeof sock, surl, sizeof surl, "unixpacket", "relay");
    BG(&b, NULL, "relay", "-2", "listen", surl, qurl);
    wait_path(sock);
    kill(b.pid, SIGTERM);
    assert_int_equal(bg_finish(&b, &r), 128 + SIGTERM);
    assert_int_equal(stat(sock, &st), -1);
    assert_int_equal(mq_depth(name), -1); /* empty: its owner removed it */
}

/* A signal to a send that owns a full queue and waits for room: it ends through its close, which
 * leaves the queue with the message it holds (and says so), rather than dying on the spot. */
static void t_signal_ends_blocked_send(void **state)
{
    (void)state;
    char name[64], url[128], full[160];
    mq_fresh(name, sizeof name, url, sizeof url);
    snprintf(full, sizeof full, "%s?maxmsg=1&msgsize=64", url);
    bg b;
    run r;
    BG(&b, NULL, "send", "-l", full, "one", "two");
    for (int i = 0; i < 1000 && mq_depth(name) != 1; i++)
        ipkt_msleep(5);
    assert_int_equal(mq_depth(name), 1); /* "one" is in; "two" waits for room */
    kill(b.pid, SIGTERM);
    assert_int_equal(bg_finish(&b, &r), 128 + SIGTERM);
    has(r.err, "it stays");
    assert_int_equal(mq_depth(name), 1);
}

/* ---- 5. options anywhere (GNU order); -- ends them ---- */

static void t_options_anywhere(void **state)
{
    (void)state;
    char name[64], url[128];
    mq_fresh(name, sizeof name, url, sizeof url);
    run r;
    assert_int_equal(CLI(&r, NULL, "send", url, "hi", "-p", "9"), 0);
    assert_int_equal(mq_depth(name), 1); /* one message, not three */
    assert_int_equal(CLI(&r, NULL, "send", url, "-p", "3", "--", "-p", "--"), 0);
    assert_int_equal(CLI(&r, NULL, "recv", url, "-f", "json", "-n", "3"), 0);
    has(r.out, "\"prio\":9,");
    has(r.out, "\"data\":\"hi\"}");
    has(r.out, "\"prio\":3,");
    has(r.out, "\"data\":\"-p\"}");
    has(r.out, "\"data\":\"--\"}");
    assert_int_equal(mq_depth(name), -1);
    /* An option after the URLs of relay, and a bad one still a usage error wherever it is. */
    assert_int_equal(CLI(&r, NULL, "relay", url, url, "--count"), 2);
    assert_int_equal(CLI(&r, NULL, "recv", url, "--no-such-option"), 2);
    /* rm and info too (ls takes no argument): options after their arguments. */
    assert_int_equal(CLI(&r, NULL, "info", "mq:/x", "--help"), 0);
    has(r.out, "usage: ipckit info");
    assert_int_equal(CLI(&r, NULL, "serve", "tcp://127.0.0.1:0", "--help"), 0);
    has(r.out, "usage: ipckit serve");
    assert_int_equal(CLI(&r, NULL, "send", url, "stays"), 0);
    assert_int_equal(CLI(&r, NULL, "rm", url), 1); /* a message waits in it */
    assert_int_equal(CLI(&r, NULL, "rm", url, "--force"), 0);
    assert_int_equal(mq_depth(name), -1);
}

/* ---- 6. JSON keeps UTF-8, and binary goes base64 ---- */

static void t_json_utf8_and_binary(void **state)
{
    (void)state;
    char name[64], url[128];
    mq_fresh(name, sizeof name, url, sizeof url);
    run r;
    assert_int_equal(CLI(&r, NULL, "send", url, "h\xc3\xa9llo"), 0);
    assert_int_equal(CLI(&r,
                         "a\xff\x01"
                         "b",
                         "send", "-s", "whole", url),
                     0);
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "2", "-f", "json", url), 0);
    has(r.out, "\"len\":6,");
    has(r.out, "\"data\":\"h\xc3\xa9llo\"}\n");
    has(r.out, "\"len\":4,");
    has(r.out, "\"data_base64\":\"Yf8BYg==\"}\n");
}

/* ---- 7. a conversation from a shell; framed output keeps boundaries through a pipe ---- */

static void t_chat_stream_and_packets(void **state)
{
    (void)state;
    run r;
    /* exec: a stream; the end of input reaches cat, whose end ends the chat. */
    assert_int_equal(CLI(&r, "hello\nworld\n", "chat", "exec:cat"), 0);
    assert_string_equal(r.out, "hello\nworld\n");
    /* unixpacket and shm duplex=1, each echoed by a relay to exec:cat. */
    char path[256], urls[2][300], name[64];
    ipkt_path(path, sizeof path, "pkt");
    ipkt_journal("path", path);
    snprintf(urls[0], sizeof urls[0], "unixpacket:%s", path);
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("shm", name);
    snprintf(urls[1], sizeof urls[1], "shm:%s?duplex=1", name);
    for (int i = 0; i < 2; i++) {
        bg b;
        run rr;
        BG(&b, NULL, "relay", "--once", urls[i], "exec:cat");
        if (i == 0) {
            wait_path(path);
        } else {
            char dev[128];
            snprintf(dev, sizeof dev, "/dev/shm%s", name);
            wait_path(dev);
        }
        /* A message transport has no end of input to pass on, and the peer stays: the chat
         * waits for replies until it is told to stop (-w -1). */
        bg c;
        BG(&c, "one\ntwo\n", "chat", "-w", "-1", "-f", "json", urls[i]);
        wait_text(c.outf, "\"data\":\"two\"}\n");
        kill(c.pid, SIGINT);
        assert_int_equal(bg_finish(&c, &r), 128 + SIGINT);
        has(r.out, "\"data\":\"one\"}\n");
        kill(b.pid, SIGTERM);
        bg_finish(&b, &rr);
    }
}

static void t_framed_pipe_keeps_boundaries(void **state)
{
    (void)state;
    char n1[64], u1[128], n2[64], u2[128];
    mq_fresh(n1, sizeof n1, u1, sizeof u1);
    mq_fresh(n2, sizeof n2, u2, sizeof u2);
    run r;
    assert_int_equal(CLI(&r, "a\nb\tc", "send", "-s", "whole", u1), 0);
    assert_int_equal(CLI(&r, NULL, "send", u1, ""), 0);
    /* ipckit recv -f framed ... > frames; ipckit send -s framed ... < frames */
    char frames[256], errf[256];
    ipkt_path(frames, sizeof frames, "frames");
    ipkt_path(errf, sizeof errf, "err");
    pid_t pid = start(NULL, frames, errf,
                      (const char *const[]){"recv", "-n", "2", "-f", "framed", u1, NULL});
    assert_int_equal(finish(&r, pid, "/dev/null", errf), 0);
    struct stat st;
    assert_int_equal(stat(frames, &st), 0);
    assert_int_equal(st.st_size, 4 + 5 + 4); /* two frames: 5 bytes and 0 bytes */
    pid = fork();
    if (pid == 0) {
        int fd = open(frames, O_RDONLY);
        dup2(fd, 0);
        execv(BIN, (char *[]){BIN, "send", "-s", "framed", u2, NULL});
        _exit(98);
    }
    assert_int_equal(ipkt_wait(pid), 0);
    assert_int_equal(mq_depth(n2), 2);
    assert_int_equal(CLI(&r, NULL, "recv", "-n", "2", "-f", "json", u2), 0);
    has(r.out, "\"len\":5,");
    has(r.out, "\"data\":\"a\\nb\\tc\"}\n");
    has(r.out, "\"len\":0,");
}

static void t_framed_meets_raw_peer(void **state)
{
    (void)state;
    char path[256], url[300];
    path_url(path, sizeof path, url, sizeof url, "unix", "raw");
    bg b;
    run r;
    BG(&b, NULL, "recv", url);
    wait_path(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", path);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    /* The listener drops this peer and waits for the next: end it. */
    char buf[8];
    assert_int_equal(read(fd, buf, sizeof buf), 0);
    close(fd);
    kill(b.pid, SIGTERM);
    bg_finish(&b, &r);
    has(r.err, "those 4 header bytes are ASCII text");
    has(r.err, "?framing=raw");
}

/* ---- 8. exit statuses ---- */

static void t_exit_statuses(void **state)
{
    (void)state;
    run r;
    /* exec: the child's status is the command's. */
    assert_int_equal(CLI(&r, NULL, "send", "exec:false", "x"), 1);
    has(r.err, "exec:false: exited with status 1");
    assert_int_equal(CLI(&r, NULL, "send", "exec:no-such-command-ipkt", "x"), 1);
    has(r.err, "exited with status 127 (command not found)");
    assert_int_equal(CLI(&r, NULL, "send", "exec:cat >/dev/null", "x"), 0);
    assert_int_equal(CLI(&r, "a\n", "chat", "exec:cat; exit 3"), 1);
    has(r.err, "exited with status 3");
    /* An idle timeout after data is a normal end; before any, a failure. */
    char name[64], url[128];
    mq_fresh(name, sizeof name, url, sizeof url);
    assert_int_equal(CLI(&r, NULL, "send", url, "a", "b"), 0);
    assert_int_equal(CLI(&r, NULL, "recv", "-t", "200", url), 0);
    assert_string_equal(r.out, "a\nb\n");
    assert_int_equal(CLI(&r, NULL, "recv", "-t", "200", url), 1);
    has(r.err, "timed out");
    /* The same for relay: messages moved, then nothing for the timeout. */
    char n2[64], u2[128];
    mq_fresh(n2, sizeof n2, u2, sizeof u2);
    assert_int_equal(CLI(&r, NULL, "send", url, "c"), 0);
    assert_int_equal(CLI(&r, NULL, "relay", "-t", "200", "-2", "listen", url, u2), 0);
    /* A host that does not resolve is a failure (1); an address that does not parse, usage. */
    assert_int_equal(CLI(&r, NULL, "send", "tcp://no-such-host.invalid:9", "x"), 1);
    has(r.err, "no-such-host.invalid");
    assert_int_equal(CLI(&r, NULL, "send", "tcp://::", "x"), 2);
}

IPKT_MAIN(cmocka_unit_test(t_owner_leaves_undelivered), cmocka_unit_test(t_producer_first),
          cmocka_unit_test(t_stdout_reader_gone), cmocka_unit_test(t_stdout_full),
          cmocka_unit_test(t_signal_closes_socket),
          cmocka_unit_test(t_signal_closes_fifo_and_relay),
          cmocka_unit_test(t_signal_ends_blocked_send), cmocka_unit_test(t_options_anywhere),
          cmocka_unit_test(t_json_utf8_and_binary), cmocka_unit_test(t_chat_stream_and_packets),
          cmocka_unit_test(t_framed_pipe_keeps_boundaries),
          cmocka_unit_test(t_framed_meets_raw_peer), cmocka_unit_test(t_exit_statuses))
