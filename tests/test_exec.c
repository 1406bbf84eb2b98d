/*
 * test_exec.c - the exec: transport against real child processes (/bin/sh -c CMD): echo through
 * cat, line framing through sort, exit statuses (also 127 for a missing command), EOF and a
 * child killed mid-frame, the bounded close that escalates to SIGTERM and SIGKILL, SIGPIPE
 * kept away from the caller, and what the child inherits (signals, descriptors).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static ipk_chan *open_exec(const char *url, int listen)
{
    ipk_chan *c = NULL;
    ipkt_ok(listen ? ipk_listen(&c, url, NULL) : ipk_dial(&c, url, NULL));
    assert_non_null(c);
    return c;
}

/* Receives exactly n raw bytes (framing=raw returns what has arrived). */
static void recv_raw(ipk_chan *c, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        long r = ipk_recv(c, buf + got, n - got, 5000);
        if (r <= 0)
            ipkt_expect(r, 1);
        got += (size_t)r;
    }
}

static void echo_round_trip(int listen)
{
    ipk_chan *c = open_exec("exec:cat", listen);
    static const size_t sizes[] = {0, 1, 100, 4096, 70000};
    char *out = malloc(70000), *in = malloc(70000);
    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ipkt_fill(out, sizes[i], (uint32_t)i);
        ipkt_ok(ipk_send(c, out, sizes[i], 5000));
        ipkt_expect(ipk_recv(c, in, 70000, 5000), sizes[i]);
        assert_true(ipkt_check(in, sizes[i], (uint32_t)i));
    }
    pid_t pid;
    uid_t uid;
    gid_t gid;
    ipkt_ok(ipk_peer(c, &pid, &uid, &gid));
    assert_true(pid > 0 && pid != getpid());
    assert_int_equal(uid, geteuid());
    assert_int_equal(gid, getegid());
    assert_true(ipk_fd(c) > 2);
    int st = ipk_close(c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(kill(pid, 0), -1); /* reaped: the pid is gone */
    free(out);
    free(in);
}

static void t_dial_cat(void **state)
{
    (void)state;
    echo_round_trip(0);
}

static void t_listen_cat(void **state)
{
    (void)state;
    echo_round_trip(1);
}

/* A 1 MiB message echoed through cat with send-then-recv in one thread: while the send waits
 * for room, the transport takes in what cat writes back, so neither side blocks the other. */
static void t_cat_1mib(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *out = malloc(n), *in = malloc(n);
    assert_non_null(out);
    assert_non_null(in);
    ipk_chan *c = open_exec("exec:cat", 0);
    for (uint32_t i = 0; i < 3; i++) {
        ipkt_fill(out, n, i);
        ipkt_ok(ipk_send(c, out, n, 10000));
        ipkt_expect(ipk_recv(c, in, n, 10000), n);
        assert_true(ipkt_check(in, n, i));
    }
    ipk_iov v[4] = {{out, n}, {out, 10}, {out, n}, {out, 0}};
    ipkt_expect(ipk_sendv(c, v, 4, 10000), 4);
    for (int i = 0; i < 4; i++) {
        ipkt_expect(ipk_recv(c, in, n, 10000), v[i].len);
        assert_memory_equal(in, out, v[i].len);
    }
    ipkt_expect(ipk_close(c), 0);
    free(out);
    free(in);
}

/* Line framing through sort -n; head -n 5 ends sort's input after five lines (there is no
 * half-close in the API: ipk_close ends the input and the output together). */
static void t_line_sort(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:head -n 5 | sort -n?framing=line", 0);
    static const char *const in[] = {"10", "9", "100", "-3", "1"};
    static const char *const want[] = {"-3", "1", "9", "10", "100"};
    for (int i = 0; i < 5; i++)
        ipkt_ok(ipk_send(c, in[i], strlen(in[i]), 5000));
    char buf[64];
    for (int i = 0; i < 5; i++) {
        long n = ipk_recv(c, buf, sizeof buf, 5000);
        ipkt_expect(n, strlen(want[i]));
        assert_memory_equal(buf, want[i], (size_t)n);
    }
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_errmsg_has("end of stream");
    ipkt_expect(ipk_close(c), 0);
}

static void t_exit_status(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:exit 3", 0);
    int st = ipk_close(c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
}

static void t_command_not_found(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:ipkt-no-such-command-here", 1);
    char buf[8];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EOF);
    int st = ipk_close(c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 127);
}

/* A frame, then the child closes its stdout (and waits for its stdin to end): the frame arrives
 * whole, then IPK_EOF at the boundary, while the child still runs. */
static void t_eof_after_frame(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:printf '\\000\\000\\000\\003abc'; exec >&-; read x; exit 0", 0);
    char buf[8];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), 3);
    assert_memory_equal(buf, "abc", 3);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), IPK_EOF); /* and it stays so */
    pid_t pid;
    ipkt_ok(ipk_peer(c, &pid, NULL, NULL));
    siginfo_t si = {0};
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT), 0);
    assert_int_equal(si.si_pid, 0); /* not exited: it waits for its stdin to end */
    ipkt_expect(ipk_close(c), 0);
}

/* The child dies by SIGKILL after 3 of the 10 bytes it announced: IPK_EPROTO, the channel is
 * shut down, and close reports the signal. */
static void t_killed_mid_frame(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:printf '\\000\\000\\000\\012abc'; kill -KILL $$", 0);
    char buf[16];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EPROTO);
    ipkt_errmsg_has("stream ended inside a frame (3 of 10 bytes)");
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 0), IPK_ECLOSED);
    int st = ipk_close(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

/* A child that ignores EOF is sent SIGTERM once linger passes. */
static void t_linger_term(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:sleep 100?linger=200", 0);
    int st = ipk_close(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);

    /* With `exec`, the command itself is the child, so the signal reaches it (and not only
     * the shell, which may have forked it). */
    c = open_exec("exec:exec sleep 100?linger=0", 0);
    pid_t pid;
    ipkt_ok(ipk_peer(c, &pid, NULL, NULL));
    st = ipk_close(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_int_equal(kill(pid, 0), -1);
}

/* The name a process runs under (/proc/PID/comm), "" once it is gone. */
static void comm_of(pid_t pid, char *buf, size_t cap)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/comm", (int)pid);
    ipkt_slurp(p, buf, cap);
    buf[strcspn(buf, "\n")] = '\0';
}

/* Waits up to 5 s for pid to run under `name`; 1 when it does. */
static int becomes(pid_t pid, const char *name)
{
    char comm[64];
    for (int i = 0; i < 500; i++) {
        comm_of(pid, comm, sizeof comm);
        if (strcmp(comm, name) == 0)
            return 1;
        ipkt_msleep(10);
    }
    return 0;
}

/* A simple command is exec'd by the shell: the child is the command itself (its pid is the
 * peer's, close's SIGTERM reaches it). A list runs as written: the child is the shell. */
static void t_simple_command_is_the_child(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:sleep 100?linger=0", 0);
    pid_t pid;
    ipkt_ok(ipk_peer(c, &pid, NULL, NULL));
    assert_true(becomes(pid, "sleep"));
    int st = ipk_close(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_int_equal(kill(pid, 0), -1); /* the command itself is gone, not only a shell */

    /* With a redirection, still one command. */
    c = open_exec("exec:cat >/dev/null", 0);
    ipkt_ok(ipk_peer(c, &pid, NULL, NULL));
    assert_true(becomes(pid, "cat"));
    ipkt_ok(ipk_close(c));

    /* A list: the shell stays the child, and runs both commands. */
    c = open_exec("exec:sleep 100; true?linger=0", 0);
    ipkt_ok(ipk_peer(c, &pid, NULL, NULL));
    char p[96], kids[256] = "";
    snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    for (int i = 0; i < 500 && kids[0] == '\0'; i++) { /* until the shell has forked sleep */
        ipkt_slurp(p, kids, sizeof kids);
        if (kids[0] == '\0')
            ipkt_msleep(10);
    }
    assert_true(kids[0] != '\0');
    char comm[64];
    comm_of(pid, comm, sizeof comm);
    assert_string_equal(comm, "sh");
    st = ipk_close(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    kill((pid_t)atoi(kids), SIGKILL); /* the orphaned sleep, as documented */

    /* A builtin with no program of that name: as written (`exec exit` would fail). */
    c = open_exec("exec:exit 3", 0);
    st = ipk_close(c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
}

/* ... and SIGKILL one second later if SIGTERM did not end it. */
static void t_linger_kill(void **state)
{
    (void)state;
    ipk_chan *c = open_exec("exec:trap '' TERM; sleep 100?linger=100", 0);
    int st = ipk_close(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

/* SIGPIPE is at its default action (the harness sets it): writing to a child that exited
 * without reading must fail with -EPIPE, not kill us. */
static void t_no_sigpipe(void **state)
{
    (void)state;
    struct sigaction sa;
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_DFL);
    ipk_chan *c = open_exec("exec:exit 0", 0);
    pid_t pid;
    ipkt_ok(ipk_peer(c, &pid, NULL, NULL));
    /* Wait for the child's exit without reaping it: by then it has released its stdin, so
     * nobody reads the pipe any more. (EOF on its stdout alone is not enough: the kernel may
     * release fd 1 before fd 0.) */
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    ipkt_expect(ipk_send(c, "x", 1, 5000), -EPIPE);
    ipkt_errmsg_has("write");
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE)); /* consumed, not left for later */
    ipkt_expect(ipk_close(c), 0);

    /* The same with a frame far above the pipe's capacity: the child reads a little, leaves. */
    size_t n = 1 << 20;
    char *big = calloc(1, n);
    assert_non_null(big);
    c = open_exec("exec:head -c 10 >/dev/null", 0);
    ipkt_expect(ipk_send(c, big, n, 5000), -EPIPE);
    ipkt_expect(ipk_send(c, big, 1, 5000), IPK_ECLOSED); /* the frame was cut: shut down */
    ipkt_expect(ipk_close(c), 0);
    free(big);
}

/* exec: takes options from the text after the LAST '?', and only when it reads as options. */
static void t_query(void **state)
{
    (void)state;
    char buf[16];
    ipk_chan *c = open_exec("exec:cat?framing=raw", 0);
    ipkt_ok(ipk_send(c, "hello", 5, 5000));
    recv_raw(c, buf, 5);
    assert_memory_equal(buf, "hello", 5);
    ipkt_expect(ipk_close(c), 0);

    ipk_opts *o = ipk_opts_new();
    ipkt_ok(ipk_opts_set(o, "framing", "raw"));
    ipkt_ok(ipk_dial(&c, "exec:echo 'a?b'", o)); /* "b'" is not an option list */
    recv_raw(c, buf, 4);
    assert_memory_equal(buf, "a?b\n", 4);
    ipkt_expect(ipk_close(c), 0);
    ipk_opts_free(o);

    c = open_exec("exec:echo 'a?b'?framing=line", 0);
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), 3);
    assert_memory_equal(buf, "a?b", 3);
    ipkt_expect(ipk_close(c), 0);

    /* Unquoted, "?b" reads as the option b: refused, nothing is started. */
    c = (ipk_chan *)0x1;
    ipkt_expect(ipk_dial(&c, "exec:echo a?b", NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'b'");
    assert_null(c);
}

static void t_bad_options(void **state)
{
    (void)state;
    ipk_chan *c = NULL;
    ipkt_expect(ipk_dial(&c, "exec:cat?linger=-1", NULL), IPK_EOPTION);
    ipkt_errmsg_has("linger");
    ipkt_expect(ipk_dial(&c, "exec:cat?perm=0600", NULL), IPK_EOPTION);
    ipkt_errmsg_has("unknown option 'perm'");
    ipkt_expect(ipk_dial(&c, "exec:cat?framing=xml", NULL), IPK_EOPTION);
    ipkt_errmsg_has("framing=xml");
    ipkt_expect(ipk_dial(&c, "exec:  ", NULL), IPK_EADDR);
    ipkt_errmsg_has("missing command");
    assert_null(c);
}

/* The child starts clean whatever the caller did: empty signal mask, SIGPIPE at its default,
 * and no descriptor but 0, 1 and 2 (here: one the caller left without close-on-exec). */
static void t_child_inherits(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    int leak = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
    assert_true(leak > 2);
    /* ls lists the descriptors of the shell ($$), which has forked it and opened nothing. */
    ipk_chan *c =
        open_exec("exec:grep -E '^Sig(Blk|Ign)' /proc/self/status; ls /proc/$$/fd?framing=line", 0);
    char blk[128] = "", ign[128] = "", fds[128] = "", fd[16];
    ipkt_expect(ipk_recv(c, blk, sizeof blk - 1, 5000) > 0, 1);
    ipkt_expect(ipk_recv(c, ign, sizeof ign - 1, 5000) > 0, 1);
    long n;
    while ((n = ipk_recv(c, fd, sizeof fd - 1, 5000)) >= 0) {
        fd[n] = '\0';
        if (strlen(fds) + (size_t)n + 2 < sizeof fds)
            strcat(strcat(fds, fd), " ");
    }
    ipkt_expect(n, IPK_EOF);
    ipkt_expect(ipk_close(c), 0);
    assert_string_equal(blk, "SigBlk:\t0000000000000000");
    unsigned long long ignored = strtoull(ign + strlen("SigIgn:\t"), NULL, 16);
    assert_true((ignored & (1ull << (SIGPIPE - 1))) == 0);
    assert_string_equal(fds, "0 1 2 ");
    close(leak);
}

/* With SIGCHLD ignored the kernel reaps children itself: the status is lost, and close says so
 * instead of inventing one. */
static void t_sigchld_ignored(void **state)
{
    (void)state;
    signal(SIGCHLD, SIG_IGN);
    ipk_chan *c = open_exec("exec:exit 5", 0);
    char buf[4];
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_expect(ipk_close(c), -ECHILD);
    ipkt_errmsg_has("reaped elsewhere");
}

static void t_info(void **state)
{
    (void)state;
    char buf[1024];
    long n = ipk_info("exec:sort -n?linger=10", buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "/bin/sh -c 'sort -n'"));
    assert_true(strstr(buf, "reaping: pidfd (pidfd_open available)") != NULL ||
                strstr(buf, "reaping: waitpid(WNOHANG)") != NULL);
    assert_int_equal(ipk_scheme_built("exec"), 1);
}

/* ipk_shutdown ends the child's input and leaves its output readable: sort -n, the DESIGN's
 * example, sorts what it was sent. */
static void t_shutdown_sort(void **state)
{
    (void)state;
    ipk_chan *c;
    ipkt_ok(ipk_dial(&c, "exec:sort -n?framing=line", NULL));
    static const char *const in[] = {"30", "4", "200", "1"};
    for (int i = 0; i < 4; i++)
        ipkt_ok(ipk_send(c, in[i], strlen(in[i]), 5000));
    ipkt_ok(ipk_shutdown(c, 5000));
    ipkt_expect(ipk_send(c, "5", 1, 0), IPK_ENOTSUP);
    static const char *const out[] = {"1", "4", "30", "200"};
    char buf[16];
    for (int i = 0; i < 4; i++) {
        ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), (long)strlen(out[i]));
        assert_memory_equal(buf, out[i], strlen(out[i]));
    }
    ipkt_expect(ipk_recv(c, buf, sizeof buf, 5000), IPK_EOF);
    ipkt_expect(ipk_close(c), 0);
}

IPKT_MAIN(cmocka_unit_test(t_shutdown_sort), cmocka_unit_test(t_info), cmocka_unit_test(t_dial_cat),
          cmocka_unit_test(t_listen_cat), cmocka_unit_test(t_cat_1mib),
          cmocka_unit_test(t_line_sort), cmocka_unit_test(t_exit_status),
          cmocka_unit_test(t_command_not_found), cmocka_unit_test(t_eof_after_frame),
          cmocka_unit_test(t_killed_mid_frame), cmocka_unit_test(t_linger_term),
          cmocka_unit_test(t_simple_command_is_the_child), cmocka_unit_test(t_linger_kill),
          cmocka_unit_test(t_no_sigpipe), cmocka_unit_test(t_query),
          cmocka_unit_test(t_bad_options), cmocka_unit_test(t_child_inherits),
          cmocka_unit_test(t_sigchld_ignored))
