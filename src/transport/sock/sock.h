/*
 * sock.h - socket helpers shared by the socket transports (unix.c, tcp.c, udp.c):
 * connect and accept with a deadline, name resolution, address formatting, and the datagram
 * send/receive path (one message per datagram or packet, sized with MSG_PEEK|MSG_TRUNC so that a
 * message larger than the caller's buffer stays queued).
 */
#ifndef IPK_SOCK_H
#define IPK_SOCK_H

#include "ipk.h"

#include <netdb.h>
#include <sys/socket.h>

/* Transport-private state of every socket channel (c->tp). */
typedef struct ipk__sock {
    int type;   /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
    int family; /* AF_UNIX, AF_INET, AF_INET6 */
    /* Datagram listener: where send() goes - the sender of the last datagram received. */
    struct sockaddr_storage to;
    socklen_t tolen; /* 0: nobody has sent yet */
    int passcred;    /* SO_PASSCRED is on: received messages carry the sender's credentials */
    int sliced;      /* SO_RCVTIMEO holds the receive slice (sock.c, set when first needed) */
    size_t limit;    /* largest message the kernel accepts on this socket, checked before send */
    const char *limit_why; /* where the limit comes from, for the error message */
    /* unix path listener: the inode it bound, removed on close only if still the same */
    dev_t dev;
    ino_t ino;
    pid_t pid; /* the process that bound it */
    int bound_path;
} ipk__sock;

/* Allocates c->tp and opens a SOCK_CLOEXEC socket into c->rfd = c->wfd: SOCK_NONBLOCK except
 * for SOCK_DGRAM (connected seqpacket sockets turn blocking after connect/accept; sock.c says
 * why); datagram and seqpacket sockets get the fixed SO_RCVTIMEO receive slice. */
int ipk__sock_open(ipk_chan *c, int family, int type);

/* Connects c->rfd to sa, waiting until dl. EAGAIN from a full unix backlog is retried with a
 * short back-off (such a socket never polls writable). The message names `what`. */
int ipk__sock_connect(ipk_chan *c, const struct sockaddr *sa, socklen_t len, const char *what,
                      int64_t dl);

/* Accepts the next connection on l->rfd into peer (tp allocated, rfd = wfd set). */
int ipk__sock_accept(ipk_chan *l, ipk_chan *peer, int64_t dl);

/* Fills c->peer_pid/uid/gid from SO_PEERCRED (unix stream and seqpacket). */
void ipk__sock_peercred(ipk_chan *c);

/* Resolves c->addr.u.inet for socktype: "" is the IPv4 loopback, "*" every interface (listen
 * only). getaddrinfo failures are mapped to ipckit codes with the host named. */
int ipk__sock_resolve(const ipk_chan *c, int socktype, int passive, struct addrinfo **out);

/* "127.0.0.1:80", "[::1]:80", or "*:80" for the unspecified address. */
void ipk__sock_fmt(const struct sockaddr *sa, char *buf, size_t cap);

/* Names the channel "scheme://" + the local (own = 1) or remote address of its socket. */
int ipk__sock_name(ipk_chan *c, const char *scheme, int own);

/* Sets an int socket option; -errno with the message set on failure. */
int ipk__sock_setint(ipk_chan *c, int level, int opt, int val, const char *name);

/* One datagram/packet each way (unixgram, unixpacket, udp). */
int ipk__dgram_send(ipk_chan *c, const void *msg, size_t len, const ipk_msginfo *mi, int64_t dl);
long ipk__dgram_sendv(ipk_chan *c, const ipk_iov *msgs, size_t n, int64_t dl);
long ipk__dgram_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl);
int ipk__sock_close(ipk_chan *c);

/* Writes a summary followed by the first line of each /proc/sys file named in files. */
long ipk__sock_info(char *buf, size_t cap, const char *text, const char *const *files);

/* Address bodies (the transports' parse members): "//HOST:PORT" (tcp, udp; "[v6]" and "*"
 * allowed) and "PATH" or "@NAME" (the unix sockets). 0, or IPK_EADDR with a message. */
int ipk__addr_inet(ipk__addr *a, const char *url);
int ipk__addr_unix(ipk__addr *a, const char *url);

#endif
