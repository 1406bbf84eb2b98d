/*
 * cli.h - what the subcommands of the ipckit tool share.
 *
 * Exit codes: 0 success; 1 failure of the operation (the peer, the object, a timeout, a step of
 * the tour); 2 usage error (bad option, bad address); 130 interrupted by Ctrl-C (tour).
 * Data goes to standard output, diagnostics to standard error.
 */
#ifndef IPK_CLI_H
#define IPK_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "ipckit.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2
#define CLI_INTR  130

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_cmd;

int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tour(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Prints "ipckit <cmd>: <what>: <ipk_errmsg or ipk_strerror>" to stderr; returns CLI_FAIL, or
 * CLI_USAGE for address and option errors. */
int cli_fail(const char *cmd, const char *what, int err);
/* Prints "ipckit <cmd>: <message>" to stderr, then "try 'ipckit <cmd> --help'"; returns CLI_USAGE.
 */
int cli_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a timeout in milliseconds ("-1" forever); returns -1 on error. */
int cli_parse_ms(const char *s, int *out);
/* Parses a whole number in [min, max]; returns -1 on error. */
int cli_parse_long(const char *s, long min, long max, long *out);
/* Applies "-o KEY=VALUE" to o; returns 0 or a CLI exit code (message printed). */
int cli_opt_kv(const char *cmd, ipk_opts *o, char *kv);

/* Opens url as listener (listen != 0) or dialer. A listener of a connection-oriented transport
 * is returned as is in *l with *c NULL; otherwise *c is the channel and *l NULL. */
int cli_open(const char *url, const ipk_opts *o, int listen, ipk_chan **l, ipk_chan **c);

/* Receives one message into a buffer that grows as needed (up to the channel's maximum). */
typedef struct cli_buf {
    unsigned char *p;
    size_t cap;
} cli_buf;
long cli_recv(ipk_chan *c, cli_buf *b, ipk_msginfo *mi, int timeout_ms);
void cli_buf_free(cli_buf *b);

/* Terminal niceties: colour only on a terminal and when NO_COLOR is unset or empty. */
int cli_color(FILE *f);
const char *cli_paint(FILE *f, const char *sgr, const char *text, char *buf, size_t cap);
/* A progress line on standard error when it is a terminal: cli_progress("%d/%d", ...) redraws
 * it, cli_progress_done() clears it. Nothing at all when standard error is not a terminal. */
void cli_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_progress_done(void);
double cli_now_us(void);

/* ---- IPC objects on this machine, for ls and rm (objects.c; the library finds them) ---- */

/* Where ls and rm look (-D DIR; none: the library's defaults) and which kinds they keep (-k). */
#define OBJ_MAX_DIRS 32
typedef struct obj_where {
    const char *dirs[OBJ_MAX_DIRS + 1];
    int ndirs;
    const char *kinds; /* "fifo,posix-mq" as given, NULL: every kind */
} obj_where;
void obj_where_init(obj_where *w);
/* Takes -D and -k for command cmd: 0 when taken, CLI_USAGE (message printed) when bad. */
int obj_where_opt(obj_where *w, const char *cmd, int opt, const char *arg);
/* Whether o is of a kind that -k asked for. */
int obj_wanted(const obj_where *w, const ipk_object *o);
/* Scans the objects under w: CLI_OK, or CLI_FAIL with a message. */
int obj_scan(const obj_where *w, const char *cmd, ipk_objects **out);
/* "in-use", "stale", "undelivered", "?". */
const char *obj_state_word(int state);
/* The owner's user name, or the uid as a number. */
const char *obj_owner(uid_t uid, char *buf, size_t cap);

#endif
