/*
 * peer_fcntl.c - a plain C program that shares a file the guide's way, with classic
 * (process-associated) fcntl record locks and no ipckit, so tests can check that file:'s
 * mode=whole interoperates and that OFD and classic locks conflict in both directions.
 *
 *   peer_fcntl produce FILE MESSAGE [HOLD_MS]  F_SETLKW F_WRLCK, replace the file with MESSAGE
 *   peer_fcntl consume FILE [HOLD_MS]          F_SETLKW F_RDLCK, copy the file to stdout
 *   peer_fcntl hold FILE rd|wr [MS]            F_SETLKW, print "locked", keep the lock MS ms
 *                                              (omitted or -1: until stdin reaches end of file)
 *   peer_fcntl trylock FILE rd|wr              F_SETLK once
 *
 * Locks cover the whole file (l_start 0, l_len 0), as in the guide. Exit status: 0 done,
 * 1 a system call failed, 2 usage, 3 the lock is held by someone else (EAGAIN or EACCES).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what)
{
    fprintf(stderr, "peer_fcntl: %s: %s\n", what, strerror(errno));
    return 1;
}

static int lock(int fd, short type, int wait)
{
    struct flock lk = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int r;
    while ((r = fcntl(fd, wait ? F_SETLKW : F_SETLK, &lk)) != 0 && errno == EINTR)
        ;
    return r;
}

/* Keeps whatever lock is held for ms milliseconds, or until stdin ends when ms < 0. */
static void hold(long ms)
{
    if (ms < 0) {
        char c;
        ssize_t r;
        while ((r = read(STDIN_FILENO, &c, 1)) != 0)
            if (r < 0 && errno != EINTR)
                break;
        return;
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static short kind(const char *s)
{
    return strcmp(s, "rd") == 0 ? F_RDLCK : strcmp(s, "wr") == 0 ? F_WRLCK : -1;
}

static int produce(const char *path, const char *msg, long ms)
{
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return fail("open");
    if (lock(fd, F_WRLCK, 1) != 0)
        return fail("F_SETLKW F_WRLCK");
    /* Truncate under the lock, not with O_TRUNC at open, which would race the lock. */
    size_t n = strlen(msg);
    if (ftruncate(fd, 0) != 0 || write(fd, msg, n) != (ssize_t)n)
        return fail("write");
    hold(ms);
    close(fd); /* releases the lock */
    return 0;
}

static int consume(const char *path, long ms)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return fail("open");
    if (lock(fd, F_RDLCK, 1) != 0)
        return fail("F_SETLKW F_RDLCK");
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(STDOUT_FILENO, buf, (size_t)n) != n)
            return fail("write stdout");
    if (n < 0)
        return fail("read");
    hold(ms);
    close(fd);
    return 0;
}

static int hold_lock(const char *path, short type, long ms, int wait)
{
    int fd = open(path, type == F_WRLCK ? O_RDWR : O_RDONLY);
    if (fd < 0)
        return fail("open");
    if (lock(fd, type, wait) != 0) {
        if (errno == EAGAIN || errno == EACCES)
            return 3;
        return fail("fcntl");
    }
    if (wait) {
        printf("locked\n");
        fflush(stdout);
        hold(ms);
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 2 ? argv[1] : "";
    long ms = 0;
    if (strcmp(mode, "produce") == 0 && (argc == 4 || argc == 5)) {
        ms = argc == 5 ? atol(argv[4]) : 0;
        return produce(argv[2], argv[3], ms);
    }
    if (strcmp(mode, "consume") == 0 && (argc == 3 || argc == 4)) {
        ms = argc == 4 ? atol(argv[3]) : 0;
        return consume(argv[2], ms);
    }
    if (strcmp(mode, "hold") == 0 && (argc == 4 || argc == 5) && kind(argv[3]) >= 0) {
        ms = argc == 5 ? atol(argv[4]) : -1;
        return hold_lock(argv[2], kind(argv[3]), ms, 1);
    }
    if (strcmp(mode, "trylock") == 0 && argc == 4 && kind(argv[3]) >= 0)
        return hold_lock(argv[2], kind(argv[3]), 0, 0);
    fprintf(stderr, "usage: peer_fcntl produce FILE MESSAGE [HOLD_MS] | consume FILE [HOLD_MS]\n"
                    "       | hold FILE rd|wr [MS] | trylock FILE rd|wr\n");
    return 2;
}
