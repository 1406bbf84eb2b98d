/*
 * cli_run.h - running the built ipckit tool as a real process in a test: argv in, exit code,
 * standard output and standard error out; waiting for the objects a background command makes.
 */
#ifndef IPKT_CLI_RUN_H
#define IPKT_CLI_RUN_H

#include "harness.h"

#include <sys/types.h>

#define BIN IPKT_BIN_DIR "/ipckit"

typedef struct run {
    int rc;
    char out[1 << 16];
    char err[1 << 13];
} run;

/* Starts the tool with argv (NULL-terminated, without the program name); stdin from `in` (NULL:
 * /dev/null), stdout and stderr into files. */
pid_t start(const char *in, const char *outf, const char *errf, const char *const *argv);
/* Waits for pid and fills r: exit code (128 + signal when killed), output and errors. */
int finish(run *r, pid_t pid, const char *outf, const char *errf);

typedef struct bg {
    pid_t pid;
    char outf[256], errf[256];
} bg;

void bg_start(bg *b, const char *in, const char *const *argv);
int bg_finish(bg *b, run *r);
/* Runs the tool to completion; returns its exit code. */
int cli(run *r, const char *in, const char *const *argv);

#define CLI(r, in, ...) cli(r, in, (const char *const[]){__VA_ARGS__, NULL})
#define BG(b, in, ...)  bg_start(b, in, (const char *const[]){__VA_ARGS__, NULL})

/* Asserts that hay contains needle. */
void has(const char *hay, const char *needle);
/* Whether the Unix socket bound at path accepts connections yet. */
int unix_ready(const char *path);
/* Waits until path exists and, for a Unix socket, until it can be connected to. */
void wait_path(const char *path);
/* Waits until a POSIX queue exists (a listener created it). */
void wait_mq(const char *name);
/* Waits until a file (a background command's standard error) contains text. */
void wait_text(const char *path, const char *text);
/* A fresh path (journalled, so removed after the test) and the address "SCHEME:PATH" for it. */
const char *path_url(char *path, size_t pcap, char *url, size_t ucap, const char *scheme,
                     const char *stem);
/* A listening Unix stream socket bound at path (journalled). */
int unix_listener(const char *path);

#endif
