/*
 * cli.h - what the subcommands of the ipckit tool share.
 *
 * Exit codes: 0 success; 1 failure of the operation (the peer, the object, a timeout, a step of
 * the tour, standard output); 2 usage error (bad option, bad address); 128 + N ended by signal N
 * after closing normally (send, recv, relay: INT, TERM, HUP); 130 interrupted by Ctrl-C (tour).
 * Data goes to standard output, diagnostics to standard error.
 */
#ifndef IPK_CLI_H
#define IPK_CLI_H

#include <errno.h>
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
int cmd_chat(int argc, char **argv);
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

/* The options send, recv and chat share: -o KEY=VALUE, -l, -d. 0 when opt was one of them and
 * was taken, CLI_USAGE (message printed) for a bad value, -1 when opt is none of them. */
int cli_chan_opt(const char *cmd, int opt, char *arg, ipk_opts *o, int *listen);

/* Opens url as listener (listen != 0) or dialer. A listener of a connection-oriented transport
 * is returned as is in *l with *c NULL; otherwise *c is the channel and *l NULL. */
int cli_open(const char *url, const ipk_opts *o, int listen, ipk_chan **l, ipk_chan **c);

/* Closes c (NULL: nothing). When c owned an object that keeps messages nobody has received yet,
 * the object stays (ipk_close) and this says so on stderr. Returns an exit status: CLI_OK, or
 * CLI_FAIL (reported) when the close failed or c was exec: and its child failed (a non-zero
 * exit status, or a signal other than the TERM/KILL of the close and PIPE). */
int cli_close(const char *cmd, ipk_chan *c);
/* Whether url's scheme takes option key, and whether url's query already sets it. */
int cli_scheme_takes(const char *url, const char *key);
int cli_url_sets(const char *url, const char *key);

/* ---- ending a command early: a signal, or a standard output that went away ----
 *
 * Waits that could last (receives, accepts, sends into a full queue) run in slices of
 * CLI_TICK_MS through cli_wait(); between slices it checks whether the command must stop, so
 * that the command ends through its normal close path (owned objects are removed as a close
 * would remove them). */
#define CLI_TICK_MS 100
/* What cli_wait() returns when the command must stop; the library never returns it. */
#define CLI_ESTOP (-EINTR)
/* INT, TERM and HUP: send, recv and relay catch them (cli_signals_catch). Until the command has
 * a channel open, a signal ends the process at once, as it would without a handler (nothing is
 * owned yet). From then on it is noted: the command stops at the next slice of a wait, closes
 * its channels as a normal end would (removing what it owns, leaving undelivered messages), and
 * main() exits with 128 + the signal. */
void cli_signals_catch(void);
/* The signal that ended the command, 0 when none. */
int cli_signal_caught(void);

/* A command that writes data to standard output calls this first: when standard output is a
 * pipe or a socket whose reader goes away, the command stops at the next slice of a wait,
 * before it takes another message it could not deliver. */
void cli_out_watch(void);
/* Flushes standard output after a message. 0, or CLI_FAIL when the write failed (EPIPE, ENOSPC,
 * EIO...): the error is reported once, and the command must stop. */
int cli_out_flush(const char *cmd);
/* Whether the command must stop now (reporting why, once); then the exit status it should end
 * with is cli_stop_status(). */
int cli_stopped(const char *cmd);
int cli_stop_status(void);
/* Runs op(arg, slice_ms) in slices until it returns anything but IPK_ETIMEDOUT, timeout_ms
 * (-1: forever) has passed, or the command must stop (CLI_ESTOP). */
typedef long (*cli_op)(void *arg, int slice_ms);
long cli_wait(const char *cmd, cli_op op, void *arg, int timeout_ms);
/* The waits the commands share, through cli_wait(). */
int cli_accept(const char *cmd, ipk_chan *l, ipk_chan **c, int timeout_ms);
int cli_send(const char *cmd, ipk_chan *c, const void *p, size_t n, const ipk_msginfo *mi,
             int timeout_ms);

/* Receives one message into a buffer that grows as needed (up to the channel's maximum). */
typedef struct cli_buf {
    unsigned char *p;
    size_t cap;
} cli_buf;
long cli_recv(ipk_chan *c, cli_buf *b, ipk_msginfo *mi, int timeout_ms);
/* The same through cli_wait(): CLI_ESTOP when the command must stop. */
long cli_recv_wait(const char *cmd, ipk_chan *c, cli_buf *b, ipk_msginfo *mi, int timeout_ms);
void cli_buf_free(cli_buf *b);

/* ---- messages in and out of the standard streams (msgio.c) ---- */

/* How a received message is written: a line, hex, a JSON object per line, the bytes as they
 * are, or a 4-byte big-endian length and the bytes (what send -s framed reads back). */
enum cli_fmt { CLI_FMT_TEXT, CLI_FMT_HEX, CLI_FMT_JSON, CLI_FMT_RAW, CLI_FMT_FRAMED };
int cli_parse_fmt(const char *s, enum cli_fmt *f);
void cli_print_msg(enum cli_fmt fmt, const unsigned char *p, size_t n, const ipk_msginfo *mi,
                   const char *src);

/* Standard input cut into messages: one per line, 4-byte big-endian length-prefixed frames, or
 * all of it as one. cli_in_fill() reads once (it blocks unless poll said readable): 1 bytes
 * came, 0 end of input, -errno. cli_in_next(): 1 with the next message in *p and *n (valid until
 * the next fill), 0 when more input is needed (or none is left at the end), CLI_IN_CUT when
 * the input ended inside a frame (cli_in_cut_msg() says where). */
enum cli_in_mode { CLI_IN_LINES, CLI_IN_WHOLE, CLI_IN_FRAMED };
#define CLI_IN_CUT (-1)
typedef struct cli_in {
    int fd;
    enum cli_in_mode mode;
    char *buf;
    size_t len, off, cap;
    int eof, done;
} cli_in;
int cli_parse_in_mode(const char *s, enum cli_in_mode *m);
void cli_in_init(cli_in *in, int fd, enum cli_in_mode mode);
int cli_in_fill(cli_in *in);
int cli_in_next(cli_in *in, const char **p, size_t *n);
const char *cli_in_cut_msg(const cli_in *in);
void cli_in_free(cli_in *in);

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
