/*
 * cli_run.c - see cli_run.h.
 */
#include "cli_run.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
/* Starts the tool with argv (NULL-terminated, without the program name); stdin from `in` (NULL:
 * /dev/null), stdout and stderr into files. */
pid_t start(const char *in, const char *outf, const char *errf, const char *const *argv)
{
    char inf[256];
    if (in != NULL) {
        ipkt_path(inf, sizeof inf, "stdin");
        FILE *f = fopen(inf, "we");
        assert_non_null(f);
        fputs(in, f);
        fclose(f);
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int i = open(in ? inf : "/dev/null", O_RDONLY);
        int o = open(outf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0)
            _exit(99);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        const char *args[32] = {BIN};
        for (int k = 0; argv[k] && k < 30; k++)
            args[k + 1] = argv[k];
        execv(BIN, (char *const *)args);
        _exit(98);
    }
    return pid;
}

int finish(run *r, pid_t pid, const char *outf, const char *errf)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    ipkt_slurp(outf, r->out, sizeof r->out);
    ipkt_slurp(errf, r->err, sizeof r->err);
    return r->rc;
}

void bg_start(bg *b, const char *in, const char *const *argv)
{
    ipkt_path(b->outf, sizeof b->outf, "out");
    ipkt_path(b->errf, sizeof b->errf, "err");
    b->pid = start(in, b->outf, b->errf, argv);
}

int bg_finish(bg *b, run *r)
{
    return finish(r, b->pid, b->outf, b->errf);
}

/* Runs the tool to completion; returns its exit code. */
int cli(run *r, const char *in, const char *const *argv)
{
    bg b;
    bg_start(&b, in, argv);
    int rc = bg_finish(&b, r);
    if (getenv("IPKT_VERBOSE"))
        print_message("ipckit %s -> %d\n[out]\n%s[err]\n%s", argv[0], rc, r->out, r->err);
    return rc;
}

void has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        print_error("expected \"%s\" in:\n%s\n", needle, hay);
    assert_non_null(strstr(hay, needle));
}

/* Waits until path exists (a listener is ready). */
/* Whether the Unix socket bound at path accepts connections yet: a listener binds, then calls
 * listen(), and a connect in between is refused. /proc/net/unix shows the listening flag
 * (__SO_ACCEPTCON, 0x10000) of stream and seqpacket sockets; a datagram socket needs none. */
int unix_ready(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (f == NULL)
        return 1; /* cannot tell: the stat() has to do */
    char line[512];
    int ready = 0;
    size_t pl = strlen(path);
    while (!ready && fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\n");
        line[n] = '\0';
        unsigned flags, type;
        if (n < pl + 1 || strcmp(line + n - pl, path) != 0 || line[n - pl - 1] != ' ' ||
            sscanf(line, "%*s %*s %*s %x %x", &flags, &type) != 2)
            continue;
        ready = type == 2 /* SOCK_DGRAM */ || (flags & 0x10000) != 0;
    }
    fclose(f);
    return ready;
}

/* Waits until path exists and, for a Unix socket, until it can be connected to. */
void wait_path(const char *path)
{
    struct stat st;
    for (int i = 0; i < 1000; i++) {
        if (stat(path, &st) == 0 && (!S_ISSOCK(st.st_mode) || unix_ready(path)))
            return;
        ipkt_msleep(5);
    }
    assert_int_equal(stat(path, &st), 0);
    assert_true(!S_ISSOCK(st.st_mode) || unix_ready(path));
}

/* Waits until a POSIX queue exists (a listener created it). */
void wait_mq(const char *name)
{
    for (int i = 0; i < 1000; i++) {
        mqd_t m = mq_open(name, O_RDONLY | O_CLOEXEC);
        if (m != (mqd_t)-1) {
            mq_close(m);
            return;
        }
        ipkt_msleep(5);
    }
    fail_msg("queue %s never appeared", name);
}

/* Waits until a file (a background command's standard error) contains text. */
void wait_text(const char *path, const char *text)
{
    char buf[4096];
    for (int i = 0; i < 1000; i++) {
        ipkt_slurp(path, buf, sizeof buf);
        if (strstr(buf, text))
            return;
        ipkt_msleep(5);
    }
    has(buf, text);
}

int unix_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ipkt_journal("path", path);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

const char *path_url(char *path, size_t pcap, char *url, size_t ucap, const char *scheme,
                     const char *stem)
{
    ipkt_path(path, pcap, stem);
    ipkt_journal("path", path);
    snprintf(url, ucap, "%s:%s", scheme, path);
    return url;
}
