/*
 * harness.h - what every ipckit test shares: each test runs in its own forked process group
 * with a time limit (a hang or a crash fails that test only), unique object names, and a
 * cleanup journal that the parent replays after the children are gone, so kernel objects are
 * removed even when a test dies half-way.
 */
#ifndef IPKT_HARNESS_H
#define IPKT_HARNESS_H

#define _GNU_SOURCE 1
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <cmocka.h>

#include "ipckit.h"

/* The test runner: call from main(). argv[1], if given, is a cmocka filter pattern. */
int ipkt_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n);
#define IPKT_MAIN(...)                                                                             \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const struct CMUnitTest t_[] = {__VA_ARGS__};                                       \
        return ipkt_main(argc, argv, t_, sizeof t_ / sizeof t_[0]);                                \
    }

/* A private directory for this test binary, removed (with everything in it) at the end. */
const char *ipkt_dir(void);
/* A unique name "<prefix>ipkt-<runner pid>-<n>" (prefix may be "/" for mq/shm names). */
const char *ipkt_name(char *buf, size_t cap, const char *prefix);
/* A unique path inside ipkt_dir(). */
const char *ipkt_path(char *buf, size_t cap, const char *stem);

/* Cleanup journal, replayed by the runner after the test process is gone. */
void ipkt_journal(const char *kind, const char *what); /* kind: path mq shm sem msqid pid netns */
void ipkt_journal_id(const char *kind, long id);

/* Runs fn(arg) in a child process (journalled, killed if it outlives the test); the child exits
 * 0 when fn returns 0. Returns the pid. */
pid_t ipkt_spawn(int (*fn)(void *), void *arg);
/* Waits for pid; returns its exit code, or 128 + signal. */
int ipkt_wait(pid_t pid);

/* In a child: become the unprivileged user "nobody". Returns 0, or -1 when not root. */
int ipkt_become_nobody(void);

/* For code running in a child process (where cmocka's asserts do not reach the runner): when
 * cond is false, says which check failed, with ipk_errmsg(), and returns 1 from the function. */
#define IPKT_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s failed [%s]\n", __FILE__, __LINE__, #cond, ipk_errmsg());   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* Reads a whole (small) file into buf, NUL-terminated; "" when it cannot be read. */
void ipkt_slurp(const char *path, char *buf, size_t cap);

/* Asserts that an ipckit call returned `want`, printing ipk_errmsg() when it did not. */
#define ipkt_expect(call, want)                                                                    \
    do {                                                                                           \
        long got_ = (long)(call);                                                                  \
        long want_ = (long)(want);                                                                 \
        if (got_ != want_)                                                                         \
            print_error("%s = %ld (%s) [%s], expected %ld (%s)\n", #call, got_,                    \
                        ipk_strerror((int)got_), ipk_errmsg(), want_, ipk_strerror((int)want_));   \
        assert_int_equal(got_, want_);                                                             \
    } while (0)
#define ipkt_ok(call) ipkt_expect(call, 0)
/* Asserts that ipk_errmsg() contains every given substring. */
void ipkt_errmsg_has(const char *needle);

/* Asserts that ipk_info(url) works, fits, starts with the scheme (which is built) and mentions
 * every string of the NULL-terminated needles. */
void ipkt_info_has(const char *url, const char *const *needles);

/* Runs a shell command and reads the first line it prints into line (NUL-terminated, "" when
 * none); returns its exit status as system() does. */
int ipkt_run_line(const char *cmd, char *line, size_t cap);

/* Whether the suite runs under a slow checker (valgrind): set IPKT_SLOW=1. Tests may then widen
 * intervals that would otherwise starve the process (signal storms), never their assertions. */
int ipkt_slow(void);

/* Sleeps ms milliseconds, whole (signals do not cut it short). */
void ipkt_msleep(int ms);
/* Pins the calling process (and the children it forks afterwards) to the first CPU it may run
 * on; returns that CPU, or -1. */
int ipkt_pin_one_cpu(void);

/* Fills buf with a pattern derived from seed; ipkt_check() verifies it. */
void ipkt_fill(void *buf, size_t n, uint32_t seed);
int ipkt_check(const void *buf, size_t n, uint32_t seed);

#endif
