/*
 * log.c - the server's event log: one line per event, "<UTC time> <name>[<pid>]: <text>",
 * written with one write() so that O_APPEND keeps the lines of the master and every worker
 * whole. Standard error unless a file is given; USR1 reopens the file (log rotation).
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static char log_name[64] = "ipk_server";

double srv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void srv_log_name(const char *name)
{
    snprintf(log_name, sizeof log_name, "%s", name);
}

void ipk_serve_log(const char *fmt, ...)
{
    char line[512];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, " %s[%d]: ", log_name, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = k < 0 ? n : n + k > (int)sizeof line - 2 ? (int)sizeof line - 2 : n + k;
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w; /* nowhere to report a failing log */
}

int srv_own_file(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    return S_ISREG(st.st_mode) && st.st_uid == geteuid() ? 0 : -EPERM;
}

/* A server often runs as root in a directory others may write (/tmp): a link planted at the
 * log's path would make it append wherever the link points, and a file another user made there
 * would hand that user the log. So the log is opened without following a link (O_NONBLOCK: a
 * FIFO planted there must not block) and must be a regular file of this user, or a character
 * device of root's (/dev/null: only root can make one, so nobody can plant it). */
int srv_log_open(const char *path)
{
    int fd = open(
        path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0)
        return -errno;
    struct stat st;
    int e = fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_uid == 0 ? 0 : srv_own_file(fd);
    if (e != 0) {
        close(fd);
        errno = -e;
        return e;
    }
    if (log_fd != 2)
        close(log_fd);
    log_fd = fd;
    return 0;
}

const char *srv_log_strerror(int e)
{
    return e == EPERM   ? "not a regular file of this user; refused"
           : e == ELOOP ? "a symbolic link; refused"
                        : strerror(e);
}

void srv_log_close(void)
{
    if (log_fd != 2)
        close(log_fd);
    log_fd = 2;
}
