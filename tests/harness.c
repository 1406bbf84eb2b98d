/*
 * harness.c - the test runner and its helpers (see harness.h).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ftw.h>
#include <mqueue.h>
#include <pwd.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char ipkt_dirbuf[256];
static pid_t ipkt_runner;
static unsigned ipkt_counter;

const char *ipkt_dir(void)
{
    return ipkt_dirbuf;
}

const char *ipkt_name(char *buf, size_t cap, const char *prefix)
{
    /* The counter is per process; the pid of the test process keeps siblings apart. */
    snprintf(buf, cap, "%sipkt-%d-%d-%u", prefix, (int)ipkt_runner, (int)getpid(), ++ipkt_counter);
    return buf;
}

const char *ipkt_path(char *buf, size_t cap, const char *stem)
{
    snprintf(buf, cap, "%s/%s-%d-%u", ipkt_dirbuf, stem, (int)getpid(), ++ipkt_counter);
    return buf;
}

void ipkt_journal(const char *kind, const char *what)
{
    char p[300];
    snprintf(p, sizeof p, "%s/.journal", ipkt_dirbuf);
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[600];
    int n = snprintf(line, sizeof line, "%s %s\n", kind, what);
    if (n > 0 && write(fd, line, (size_t)n) < 0) {
        /* nothing more to do: the journal is best effort */
    }
    close(fd);
}

void ipkt_journal_id(const char *kind, long id)
{
    char s[32];
    snprintf(s, sizeof s, "%ld", id);
    ipkt_journal(kind, s);
}

static void ipkt_replay(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s/.journal", ipkt_dirbuf);
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return;
    char kind[16], what[512];
    while (fscanf(f, "%15s %511[^\n]", kind, what) == 2) {
        if (strcmp(kind, "path") == 0)
            unlink(what);
        else if (strcmp(kind, "mq") == 0)
            mq_unlink(what);
        else if (strcmp(kind, "shm") == 0)
            shm_unlink(what);
        else if (strcmp(kind, "sem") == 0)
            sem_unlink(what);
        else if (strcmp(kind, "msqid") == 0)
            msgctl(atoi(what), IPC_RMID, NULL);
        else if (strcmp(kind, "netns") == 0) {
            /* A network namespace a test made (test_hosts): every process in it, then it. */
            char cmd[1200];
            snprintf(cmd, sizeof cmd,
                     "ip netns pids '%s' 2>/dev/null | xargs -r kill -9; "
                     "ip netns delete '%s' 2>/dev/null",
                     what, what);
            if (system(cmd) != 0) {
                /* already gone */
            }
        } else if (strcmp(kind, "pid") == 0) {
            pid_t pid = (pid_t)atoi(what);
            if (pid > 0 && kill(pid, SIGKILL) == 0)
                waitpid(pid, NULL, 0);
        }
    }
    fclose(f);
    unlink(p);
}

static int ipkt_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Removes /dev/shm and /dev/mqueue entries a crashed test left under this runner's prefix. */
static void ipkt_sweep(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ipkt-%d-", (int)ipkt_runner);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, prefix) != NULL) {
            char p[600];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

pid_t ipkt_spawn(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg) == 0 ? 0 : 1);
    if (pid > 0)
        ipkt_journal_id("pid", pid);
    return pid;
}

int ipkt_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int ipkt_become_nobody(void)
{
    if (geteuid() != 0)
        return -1;
    struct passwd *pw = getpwnam("nobody");
    uid_t uid = pw ? pw->pw_uid : 65534;
    gid_t gid = pw ? pw->pw_gid : 65534;
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        return -1;
    return 0;
}

void ipkt_errmsg_has(const char *needle)
{
    const char *m = ipk_errmsg();
    if (strstr(m, needle) == NULL) {
        print_error("ipk_errmsg() = \"%s\" lacks \"%s\"\n", m, needle);
        fail();
    }
}

void ipkt_info_has(const char *url, const char *const *needles)
{
    char b[4096];
    long n = ipk_info(url, b, sizeof b);
    if (n <= 0 || (size_t)n >= sizeof b)
        fail_msg("ipk_info(%s) = %ld (%s)", url, n, ipk_errmsg());
    for (; *needles; needles++)
        if (strstr(b, *needles) == NULL)
            fail_msg("ipk_info(%s) lacks \"%s\":\n%s", url, *needles, b);
    char scheme[16];
    snprintf(scheme, sizeof scheme, "%.*s", (int)strcspn(url, ":"), url);
    assert_int_equal(ipk_scheme_built(scheme), 1);
    assert_true(strncmp(b, scheme, strlen(scheme)) == 0);
}

int ipkt_run_line(const char *cmd, char *line, size_t cap)
{
    line[0] = '\0';
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    if (fgets(line, (int)cap, p) == NULL)
        line[0] = '\0';
    return pclose(p);
}

void ipkt_slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

void ipkt_msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int ipkt_pin_one_cpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    int cpu = 0;
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? cpu : -1;
}

int ipkt_slow(void)
{
    const char *s = getenv("IPKT_SLOW");
    return s != NULL && s[0] == '1';
}

void ipkt_fill(void *buf, size_t n, uint32_t seed)
{
    unsigned char *p = buf;
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

int ipkt_check(const void *buf, size_t n, uint32_t seed)
{
    const unsigned char *p = buf;
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        if (p[i] != (unsigned char)x)
            return 0;
    }
    return 1;
}

static volatile sig_atomic_t ipkt_alarm;
static void ipkt_on_alarm(int sig)
{
    (void)sig;
    ipkt_alarm = 1;
}

static int ipkt_run_one(const struct CMUnitTest *t, int timeout_s)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        _exit(_cmocka_run_group_tests(t->name, t, 1, NULL, NULL) == 0 ? 0 : 1);
    }
    setpgid(pid, pid);
    struct sigaction sa = {.sa_handler = ipkt_on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    ipkt_alarm = 0;
    alarm((unsigned)timeout_s);
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR && !ipkt_alarm)
        ;
    alarm(0);
    int failed;
    if (w < 0) {
        fprintf(stderr, "[  TIMEOUT ] %s: no result after %d s; killing it\n", t->name, timeout_s);
        kill(-pid, SIGKILL);
        waitpid(pid, &st, 0);
        failed = 1;
    } else if (WIFSIGNALED(st)) {
        fprintf(stderr, "[  CRASHED ] %s: killed by signal %d\n", t->name, WTERMSIG(st));
        failed = 1;
    } else {
        failed = WEXITSTATUS(st) != 0;
    }
    kill(-pid, SIGKILL); /* anything the test left running */
    return failed;
}

static int ipkt_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncmp(p, name, n) == 0)
            return 1;
        p += k + (p[k] == ',');
    }
    return 0;
}

int ipkt_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n)
{
    ipkt_runner = getpid();
    signal(SIGPIPE, SIG_DFL); /* tests check that ipckit itself keeps SIGPIPE away */
    snprintf(ipkt_dirbuf, sizeof ipkt_dirbuf, "/tmp/ipkt-%d-XXXXXX", (int)ipkt_runner);
    if (mkdtemp(ipkt_dirbuf) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    chmod(ipkt_dirbuf, 0755); /* tests that drop to "nobody" must reach objects inside */
    int timeout_s = getenv("IPKT_TIMEOUT") ? atoi(getenv("IPKT_TIMEOUT")) : 300;
    const char *filter = argc > 1 ? argv[1] : NULL;
    /* IPKT_EXCLUDE=name,name: tests a checker cannot run faithfully (see build.sh), never to
     * hide a failure of the code. */
    const char *exclude = getenv("IPKT_EXCLUDE");
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (filter && strstr(tests[i].name, filter) == NULL)
            continue;
        if (exclude && ipkt_listed(exclude, tests[i].name)) {
            fprintf(stderr, "[ EXCLUDED ] %s (IPKT_EXCLUDE)\n", tests[i].name);
            continue;
        }
        ran++;
        if (ipkt_run_one(&tests[i], timeout_s)) {
            failed++;
            fprintf(stderr, "FAILED: %s\n", tests[i].name);
        }
        ipkt_replay();
    }
    ipkt_sweep("/dev/shm");
    ipkt_sweep("/dev/mqueue");
    nftw(ipkt_dirbuf, ipkt_rm, 16, FTW_DEPTH | FTW_PHYS);
    fprintf(stderr, "%s: %d of %d tests passed\n", argv[0], ran - failed, ran);
    return failed ? 1 : (ran == 0 ? 1 : 0);
}
