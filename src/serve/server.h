/*
 * server.h - what the parts of the server component share: the configuration (the ipk_server
 * object, built in the master and inherited by every worker through fork), the listeners, the
 * log, and the entry points of master.c, worker.c and exec.c.
 */
#ifndef IPK_SERVE_SERVER_H
#define IPK_SERVE_SERVER_H

#define _GNU_SOURCE 1
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "ipckit/serve.h"

#define SRV_ALLOW_MAX 16 /* ids in one allow_uid= or allow_gid= list */

/* What a listener hands the workers. */
enum srv_kind {
    SRV_ACCEPT, /* a listening stream or seqpacket socket: connections */
    SRV_DGRAM,  /* a bound datagram socket: one message per datagram, replies to the sender */
    SRV_QUEUE,  /* a queue object: every worker opens it and takes messages */
};

typedef struct srv_listener {
    enum srv_kind kind;
    int fd;          /* SRV_ACCEPT, SRV_DGRAM: the socket, shared by every worker */
    int seqpacket;   /* SRV_ACCEPT: one message per packet, no framing */
    int unix_family; /* AF_UNIX: peer credentials exist */
    enum ipk__framing framing;
    size_t max;      /* the channel's max= */
    ipk_chan *chan;  /* what ipk_listen() made (NULL for an adopted descriptor) */
    char *url;       /* as given (NULL for an adopted descriptor) */
    ipk_opts *opts;  /* as given, for the workers' ipk_dial() of a queue */
    char *addr;      /* resolved, for the log */
    char *sock_path; /* taken over in a binary upgrade: the unix socket file this master
                        removes at its final exit (the one that bound it is gone) */
    int stale;       /* during a reload: not named again (closed after the reload) */
    int timed;       /* SRV_QUEUE: nothing wakes a poller for it (IPK__PS_TIMED): tried on a tick */
    int eof_waits;   /* SRV_QUEUE: end of stream only means no producer now (an shm ring) */
    /* A unix listener's peer allow-list (allow_uid=, allow_gid=): a peer whose uid or gid is
     * listed is served, any other is closed at accept. Both empty: everyone. */
    uid_t allow_uid[SRV_ALLOW_MAX];
    gid_t allow_gid[SRV_ALLOW_MAX];
    int n_uid, n_gid;
} srv_listener;

/* Live counters of one worker slot, in memory shared by the master and every worker (mapped
 * before the first fork). A worker adds to its own slot with relaxed atomic adds (no syscall,
 * no fence; a retiring worker and its successor may share a slot for a moment during a reload,
 * hence adds rather than plain stores); workers balance accepting on `conns`; the status
 * address (status.c) and the log at exit show them. A slot is two cache lines of its own: the
 * first holds what the other workers read on every wake-up (`conns`, which changes only at an
 * accept or a close) and what the master writes, the second the counters a worker adds to on
 * every request, so that on separate CPUs a worker's requests do not make the others' reads of
 * its `conns` miss. */
typedef struct srv_stats {
    _Alignas(64) _Atomic long conns; /* connections open now */
    _Atomic long respawns;           /* written by the master: workers started again in this slot */
    _Atomic long pid;                /* written by the master: the slot's worker, 0 while none */
    _Alignas(64) _Atomic long conns_total; /* connections accepted (and kept past the checks) */
    _Atomic long msgs_in;                  /* messages handed to the handler */
    _Atomic long msgs_out;                 /* replies sent (ipk_conn_send() that succeeded) */
    _Atomic long errs;     /* handler failures, bad or cut frames, replies refused */
    _Atomic long refused;  /* peers not on a unix listener's allow-list, closed at accept */
    _Atomic long timeouts; /* connections closed by idle_timeout or read_timeout */
    _Atomic long emfile;   /* accepts that failed for want of descriptors */
} srv_stats;
#define SRV_MAX_WORKERS 1024

struct ipk_server {
    /* settings */
    int workers, max_conn, idle_ms, read_ms, shutdown_ms, kill_ms, exec_ms;
    size_t max_frame;
    int exec_framing; /* -1: as the first connection listener */
    char *log_path, *pid_file, *name, *exec_cmd;
    char *status_url;    /* the status address (status.c), or NULL */
    srv_listener status; /* its socket, opened by the master (fd -1 before, or none) */
    ipk_serve_handlers h;
    void *arg;
    int (*reload)(ipk_server *s, void *arg);
    void *reload_arg;
    /* listeners */
    srv_listener *l;
    size_t nl, capl;
    int in_reload;
    char errmsg[512];
    pid_t master_pid;
    srv_stats *stats; /* SRV_MAX_WORKERS slots, shared */
    int balance_fd;   /* an eventfd every worker watches (edge): "look at your share again" */
};

/* ---- log.c ---- */
/* The log's process name and file; (re)opens the file (0 or -errno, the old log kept). */
void srv_log_name(const char *name);
int srv_log_open(const char *path);
/* 0 when fd is a regular file of this user, else -EPERM (or fstat's -errno): the log and the
 * pid file are written only into such a file. */
int srv_own_file(int fd);
/* Why srv_log_open failed with errno e (EPERM: another user's file or not a regular one). */
const char *srv_log_strerror(int e);
void srv_log_close(void);
double srv_now_ms(void);

/* ---- server.c ---- */
int srv_err(ipk_server *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The largest request a listener accepts: max_frame when set, else the channel's max. */
size_t srv_max(const ipk_server *s, const srv_listener *l);
/* Whether a peer with these credentials may be served on l (its allow-lists). */
int srv_allowed(const srv_listener *l, uid_t uid, gid_t gid);

/* ---- binary upgrade (USR2), server.c ----
 * The old master passes its sockets to the program it execs in IPK_SERVE_FDS:
 *   "<old master pid>\n" then per socket "<fd>\t<framing>\t<max>\t<addr>\t<url or fd:N>\n".
 * srv_upgrade_env() builds that value (malloc'd; NULL when out of memory); in the new process
 * ipk_server_listen() of the same URL (or ipk_server_listen_fd() of the same descriptor) takes
 * the inherited socket instead of binding. */
char *srv_upgrade_env(const ipk_server *s);
/* In the new master once it serves: closes inherited sockets no listener took and returns the
 * pid of the old master to tell (0 when this process was not started by an upgrade). */
pid_t srv_upgrade_taken(void);
/* The old master retires for its successor: closing its listeners must not remove what they
 * created (a unix socket file, a queue): the new master serves them now. */
void srv_disown(ipk_server *s);

/* ---- loop.c: the worker's wait: epoll for its own descriptors, the poller for channels ---- */
#define SRV_IN   0x1u
#define SRV_OUT  0x2u
#define SRV_EXCL 0x4u /* a shared listening socket: wake one worker, not all */
#define SRV_EDGE 0x8u /* edge-triggered: every new write wakes every watcher once */
typedef struct srv_event {
    void *ptr;
    unsigned events; /* SRV_IN, SRV_OUT; an error or hang-up reads as SRV_IN */
} srv_event;
typedef struct srv_loop {
    int ep;        /* the epoll set */
    ipk_poller *p; /* the channels, nested in ep through its descriptor */
    int pfd;       /* that descriptor, once a channel joined (-1 before) */
    int fresh;     /* a channel joined since the poller was last asked */
} srv_loop;
int srv_loop_new(srv_loop *l); /* 0 or a negative code */
void srv_loop_free(srv_loop *l);
int srv_loop_add(srv_loop *l, int fd, unsigned events, void *ptr);
int srv_loop_mod(srv_loop *l, int fd, unsigned events, void *ptr);
int srv_loop_del(srv_loop *l, int fd);
/* A channel to receive from (SRV_IN) or send to (SRV_OUT), one that wakes a poller (not sysv:
 * see loop.c); 0 or an ipckit code (-EBUSY: an shm ring already has as many waiting pollers as
 * it takes). */
int srv_loop_add_chan(srv_loop *l, ipk_chan *c, unsigned events, void *ptr);
int srv_loop_del_chan(srv_loop *l, ipk_chan *c);
/* Waits up to timeout_ms (-1 forever) and fills ev[0..n) with descriptors' and channels' events:
 * the number of events, 0 on timeout or EINTR, or a negative code. */
int srv_loop_wait(srv_loop *l, srv_event *ev, int n, int timeout_ms);

/* ---- status.c: the status address, served by the master ---- */
/* Listens on s->status_url (taking the inherited socket after a binary upgrade): 0 (also with
 * no status address) or a negative code, s->errmsg saying why. server.c. */
int srv_status_open(ipk_server *s);
/* A client is waiting on s->status.fd: accept it, write the JSON snapshot, close. */
void srv_status_serve(ipk_server *s);
/* The snapshot as JSON into b (cap bytes, NUL-terminated when it fits): the length it needs. */
size_t srv_status_json(const ipk_server *s, char *b, size_t cap);

/* ---- master.c ---- */
int srv_master_run(ipk_server *s);

/* ---- worker.c ---- */
/* Runs worker id (1-based) in a forked child; never returns. */
void srv_worker(ipk_server *s, int id) __attribute__((noreturn));

/* ---- worker.c: what a handler that answers later (exec.c) uses ----
 * Internal for now: a deferred-reply API for C users would be these, made public with tests of
 * their own (ipk_conn_hold/release), see docs/ARCHITECTURE.md. All in the worker process only. */
/* A descriptor (srv_watch_fd) or channel (srv_watch_chan, through the poller) the worker watches
 * beside its connections: fn(arg, SRV_IN / SRV_OUT) runs when it is ready, within the batch; a
 * spurious call must be harmless. Returns the watch (>= 0) for srv_unwatch, or a negative code. */
typedef void srv_watch_fn(void *arg, unsigned events);
int srv_watch_fd(int fd, unsigned events, srv_watch_fn *fn, void *arg);
int srv_watch_chan(ipk_chan *c, unsigned events, srv_watch_fn *fn, void *arg);
void srv_unwatch(int watch);
/* In on_msg: the reply to this request comes later. 0, or IPK_ENOTSUP for a datagram's sender
 * or a queue (reply now, or not at all). Until the matching srv_conn_release the connection
 * stays open for that reply (also after its client's EOF, also during a graceful stop) and its
 * memory stays valid (also after it closed: sends then fail with IPK_ECLOSED). */
int srv_conn_hold(ipk_conn *c);
/* The reply (zero or more ipk_conn_send) is queued: the connection is written after the batch.
 * ok = 0: the request failed; the connection closes once the replies before it are out. */
void srv_conn_release(ipk_conn *c, int ok);
/* on: connections are not read (no new request is taken) until it is called with 0. */
void srv_throttle(int on);
/* The worker's clock (ms, srv_now_ms) as read at the start of the current batch. */
double srv_worker_now(void);

/* ---- exec.c: the coprocess handlers behind ipk_server_exec() ---- */
int srv_exec_start(int worker, void *arg);
void srv_exec_stop(int worker, void *arg);
int srv_exec_msg(ipk_conn *c, const void *msg, size_t len, void *arg);
/* Called by every worker (no-ops without --exec): after each batch of events (requests taken
 * go to the coprocess), and on the sweep's tick (a coprocess that has not answered in time). */
void srv_exec_flush(void);
void srv_exec_sweep(double now);

#endif
