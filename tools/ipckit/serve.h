/*
 * serve.h - what the master (cmd_serve.c) and the workers (serve_worker.c) of ipckit serve share.
 */
#ifndef IPK_SERVE_H
#define IPK_SERVE_H

#include <stdint.h>

enum serve_proto { SERVE_ECHO, SERVE_RAW };

typedef struct serve_cfg {
    enum serve_proto proto;
    int lfd;         /* the listening (stream) or bound (datagram) socket, made by the master */
    int dgram;       /* lfd is a datagram socket (udp): raw echo per datagram */
    int max_conn;    /* per worker */
    int idle_ms;     /* no byte moved for this long: the connection is closed */
    int read_ms;     /* a frame started this long ago and still incomplete: closed */
    int shutdown_ms; /* QUIT: how long in-flight frames may take */
    uint32_t max_frame;
    const char *log_path; /* NULL: standard error */
    int master_pid;
} serve_cfg;

/* One line "ipckit serve[PID]: ..." to the log, written with one write() (O_APPEND keeps the
 * lines of master and workers whole). */
void serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* (Re)opens the log file; 0, or -errno with the old log kept. */
int serve_log_open(const char *path);
double serve_now_ms(void);

/* Runs worker number id (1-based) in a forked child; never returns. */
void serve_worker(const serve_cfg *cfg, int id) __attribute__((noreturn));

#endif
