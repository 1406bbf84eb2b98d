/*
 * ipckit/serve.h - the prefork server component: a master that supervises N worker processes
 * (the nginx model) and workers that run your code for every message.
 *
 * Link with -lipckit_serve -lipckit (CMake: ipckit::ipckit_serve). It is a library of its own
 * because a server does what libipckit promises never to do behind its caller's back: it forks,
 * blocks and takes signals, writes a log and ends worker processes.
 *
 *     static int upper(ipk_conn *c, const void *req, size_t len, void *arg)
 *     {
 *         char out[4096];
 *         ... uppercase req into out ...
 *         return ipk_conn_send(c, out, len);
 *     }
 *     ipk_server *s;
 *     ipk_server_new(&s);
 *     ipk_server_set(s, "workers", "4");
 *     ipk_server_listen(s, "tcp://127.0.0.1:7000", NULL);
 *     ipk_serve_handlers h = {.on_msg = upper};
 *     ipk_server_handlers(s, &h, NULL);
 *     return ipk_server_run(s) == 0 ? 0 : 1;   // until TERM, INT or QUIT
 *
 * What it serves (one server may mix them):
 * - connection listeners (tcp, unix, unixpacket): each connection's bytes are cut into messages
 *   by the address's framing (len, line, raw; the codec of the library), the handler is called
 *   per message and its replies go back on the same connection, framed the same way;
 * - datagram sockets (udp, unixgram): one datagram is one message, replies go to its sender;
 * - queues (mq, sysv, shm with multi=1, file): every worker takes messages from the queue and
 *   calls the handler: N processes draining a job queue. A queue has no way back, so replies are
 *   refused (IPK_ENOTSUP). A file: log has no consumer groups (every reader reads every record),
 *   so only worker 1 serves it.
 *
 * Signals to the master: TERM/INT fast shutdown (workers get TERM, KILL after kill_timeout);
 * QUIT graceful (workers stop taking new work, finish what is in flight, bounded by
 * shutdown_timeout); HUP reload (the reload callback re-reads the configuration, then a new
 * worker starts for every slot before the old ones retire gracefully); USR1 reopen the log; USR2
 * binary upgrade (the program is exec'd again with the same arguments and its listening sockets
 * in IPK_SERVE_FDS; ipk_server_listen() of the same URL there takes the inherited socket instead
 * of binding; once the new master's workers run it sends QUIT to the old one, which retires
 * gracefully; if it fails to start, the old one serves on: ipckit-serve(3)). A
 * worker that dies is respawned, with a delay that doubles while it keeps dying young. A worker
 * whose master dies is ended too (PR_SET_PDEATHSIG).
 *
 * A worker waits in one epoll set with the library's poller nested in it (ipk_poller_fd), so
 * queues of every kind wait beside the sockets without a tick (System V queues: every 5 ms).
 *
 * Handlers run in the worker processes, one call at a time per worker; they may block (the
 * worker's other clients wait). All calls return 0 or a negative ipckit code, as ipckit.h.
 */
#ifndef IPCKIT_SERVE_H
#define IPCKIT_SERVE_H

#include <ipckit.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ipk_server ipk_server;
/* One client as a handler sees it: a connection, the sender of a datagram, or a queue. */
typedef struct ipk_conn ipk_conn;

typedef struct ipk_serve_handlers {
    /* Every message. Reply with ipk_conn_send(), zero or more times. Return 0 to go on with the
     * client, a negative value to close its connection once the replies sent so far are out.
     * NULL: echo (every message is sent back as it came). */
    int (*on_msg)(ipk_conn *c, const void *msg, size_t len, void *arg);
    /* Optional: a connection was accepted (return < 0 to close it at once; what on_open sends
     * with ipk_conn_send() is written at once, a greeting), or is closing. */
    int (*on_open)(ipk_conn *c, void *arg);
    void (*on_close)(ipk_conn *c, void *arg);
    /* Optional: in a new worker process (1-based id) before it serves (return < 0: the worker
     * exits, and is respawned with back-off), and when it stops. */
    int (*on_worker_start)(int worker, void *arg);
    void (*on_worker_stop)(int worker, void *arg);
} ipk_serve_handlers;

IPK_API int ipk_server_new(ipk_server **out);
/* Closes the listeners (removing what they own) and frees the server. */
IPK_API void ipk_server_free(ipk_server *s);

/*
 * Settings, by name (IPK_EOPTION for an unknown key or a bad value):
 *   workers           worker processes (default: the number of CPUs)
 *   max_conn          connections per worker; more are closed at once (default 0: no cap but
 *                     the descriptor limit, RLIMIT_NOFILE)
 *   max_frame         largest request; a larger declared length closes the connection (default
 *                     0: the listener's max=, 16m unless the address says otherwise)
 *   idle_timeout      ms: a connection that moved no byte for this long is closed (60000)
 *   read_timeout      ms: a request begun this long ago and still incomplete, or a new
 *                     connection silent this long: closed (10000)
 *   shutdown_timeout  ms: QUIT, and retiring workers: time for work in flight, then KILL (10000)
 *   kill_timeout      ms: TERM: time before KILL (3000)
 *   exec_timeout      ms: --exec: a handler program that does not answer in time is restarted
 *                     and the client's connection closed (10000)
 *   exec_framing      len or line: how requests reach an exec handler (default: as the first
 *                     connection listener frames them; len for queues and datagrams)
 *   log               file for the event log (default: standard error); USR1 reopens it
 *   pid_file          the master's pid is written there, removed at exit
 *   name              the log's process name (default "ipk_server")
 *   status            a listening address (unix:PATH, tcp://HOST:PORT) where the master answers
 *                     every connection with a JSON snapshot of the live counters per worker
 *                     (connections, messages in and out, errors, timeouts, respawns), then
 *                     closes it; ipckit info --status ADDR prints it (ipckit-serve(3))
 */
IPK_API int ipk_server_set(ipk_server *s, const char *key, const char *value);

/* Adds what the workers serve: a listener (tcp, unix, unixpacket), a datagram socket (udp,
 * unixgram) or a queue (mq, sysv, shm, file), made now with ipk_listen(url, opts). A unix or
 * unixpacket listener also takes allow_uid=LIST and allow_gid=LIST (ids or names, comma-
 * separated, in url or opts): a peer whose uid or primary gid is not listed is closed at accept
 * and counted. */
IPK_API int ipk_server_listen(ipk_server *s, const char *url, const ipk_opts *opts);
/* Adopts an already listening or bound socket (socket activation, an inherited descriptor);
 * opts may give framing= and max= (and allow_uid=, allow_gid= for a unix listener, nodelay=
 * for a tcp one: TCP_NODELAY is set on it unless nodelay=0). The server closes it when freed. */
IPK_API int ipk_server_listen_fd(ipk_server *s, int fd, const ipk_opts *opts);
/* The listeners' resolved addresses, i = 0, 1, ... (NULL past the end). */
IPK_API const char *ipk_server_addr(const ipk_server *s, size_t i);

/* The handlers (copied) and their argument. */
IPK_API void ipk_server_handlers(ipk_server *s, const ipk_serve_handlers *h, void *arg);

/* Handlers that run a program: every worker starts `/bin/sh -c cmd` as a long-lived coprocess
 * and hands it each request on its standard input, framed as exec_framing says (len, or one
 * line per message), and its next message on standard output is the reply:
 * exactly one reply per request. A program that exits, breaks the framing or takes longer than
 * exec_timeout is restarted, and the client's connection is closed (an error, not silence). */
IPK_API int ipk_server_exec(ipk_server *s, const char *cmd);

/* Called in the master on HUP, before the new workers start: re-read the configuration and
 * apply it with ipk_server_set(), ipk_server_exec(), ipk_server_listen() (a URL the server
 * already listens on keeps its socket; one not given again is closed once the old workers have
 * retired). A negative return keeps the configuration as it was. */
IPK_API void ipk_server_on_reload(ipk_server *s, int (*reload)(ipk_server *s, void *arg),
                                  void *arg);

/* Runs the master until shutdown: returns 0 after TERM, INT or QUIT, a negative code when the
 * server could not start. The calling process must not reap children behind the server's
 * back (no SIGCHLD handler that calls wait). */
IPK_API int ipk_server_run(ipk_server *s);

/* The detail of the last failed ipk_server_* call on s ("" when none). */
IPK_API const char *ipk_server_errmsg(const ipk_server *s);

/* ---- in a handler ---- */

/* Sends a reply to the client: on a connection it is queued and written as the socket takes it
 * (framed like the request); to a datagram's sender it is sent at once. IPK_ECLOSED after the
 * connection closed, IPK_ENOTSUP for a queue, IPK_EMSGSIZE above max_frame. */
IPK_API int ipk_conn_send(ipk_conn *c, const void *msg, size_t len);
/* Closes the connection once the replies queued so far are written. */
IPK_API void ipk_conn_close(ipk_conn *c);
/* A pointer of the handler's own, per connection (NULL at first). */
IPK_API void ipk_conn_set_data(ipk_conn *c, void *data);
IPK_API void *ipk_conn_data(const ipk_conn *c);
/* Which listener (index in the order added) and which worker (1-based) the client came to. */
IPK_API int ipk_conn_listener(const ipk_conn *c);
IPK_API int ipk_conn_worker(const ipk_conn *c);
/* Credentials of a unix-socket peer (SO_PEERCRED); IPK_ENOTSUP for other clients. */
IPK_API int ipk_conn_peer(const ipk_conn *c, pid_t *pid, uid_t *uid, gid_t *gid);

/* One line to the server's log, "<time> <name>[<pid>]: <text>", written whole. */
IPK_API void ipk_serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif
#endif /* IPCKIT_SERVE_H */
