/*
 * unix.c - Unix domain sockets: unix: (stream, framed by stream.c), unixpacket: (seqpacket,
 * one message per packet) and unixgram: (datagram, one message per datagram).
 *
 * Names are paths or, written "@name", abstract names (no file; gone with the last socket).
 * A listener on a path owns the socket file: an existing socket file of ours is probed with
 * connect() first - refused means stale, so it is replaced; answered means a live process owns
 * it, so listen fails with -EADDRINUSE; another user's socket file (-EEXIST), a symbolic link
 * (-ELOOP) and a path that is not a socket (-EEXIST) are never touched. The
 * file gets mode c->perm before anyone can connect, and on close the owner removes it only
 * if it is still the inode it bound, and only from the process that bound it (a forked child
 * closing its copy leaves the file alone).
 *
 * unixpacket and unixgram sockets have SO_PASSCRED on: every message arrives with the sender's
 * credentials (ipk_msginfo pid/uid), and that is also how a zero-length packet is told from
 * end-of-stream - both make recvmsg() return 0, but only a real packet carries credentials.
 */
#include "objects.h"
#include "sock.h"
#include "transport.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t ipk__unix_sa(const ipk__addr *a, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (a->u.un.abstract) {
        memcpy(sun->sun_path + 1, a->u.un.path, a->u.un.len);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + a->u.un.len);
    }
    memcpy(sun->sun_path, a->u.un.path, a->u.un.len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + a->u.un.len + 1);
}

static int ipk__unix_name(ipk_chan *c)
{
    const ipk__addr *a = &c->addr;
    return ipk__set_name(c, "%s:%s%s", a->scheme_name, a->u.un.abstract ? "@" : "", a->u.un.path);
}

/* Whether a socket answers at sun: 1 live, 0 stale (refused), or -errno. */
static int ipk__unix_probe(const struct sockaddr_un *sun, socklen_t len, int type)
{
    int fd = ipk__sys_socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int r = ipk__sys_connect(fd, (const struct sockaddr *)sun, len) == 0 ? 0 : errno;
    ipk__close_fd(fd);
    if (r == 0 || r == EAGAIN || r == EPROTOTYPE)
        return 1; /* connected, backlog full, or a live socket of another type */
    return r == ECONNREFUSED ? 0 : -r;
}

/* Binds c->rfd to the address, replacing a stale socket file (see the top of the file). */
static int ipk__unix_bind(ipk_chan *c, int type, const struct sockaddr_un *sun, socklen_t len)
{
    const char *path = c->addr.u.un.path;
    if (ipk__sys_bind(c->rfd, (const struct sockaddr *)sun, len) == 0)
        return 0;
    int e = errno;
    if (e == EADDRINUSE && c->addr.u.un.abstract)
        return ipk__err(-EADDRINUSE, "%s: the abstract name is in use by a live socket", c->name);
    if (e != EADDRINUSE)
        return ipk__errsys(-e, "%s: bind", c->name);
    struct stat st;
    if (ipk__sys_lstat(path, &st) != 0) /* removed since: try once more */
        return ipk__sys_bind(c->rfd, (const struct sockaddr *)sun, len) == 0
                   ? 0
                   : ipk__errsys(-errno, "%s: bind", c->name);
    if (S_ISLNK(st.st_mode))
        return ipk__err(-ELOOP, "%s: %s is a symbolic link; refused, it was left alone", c->name,
                        path);
    if (!S_ISSOCK(st.st_mode))
        return ipk__err(-EEXIST, "%s: %s exists and is not a socket; it was left alone", c->name,
                        path);
    /* Another user's socket file, even a stale one, is theirs to remove (ipk__listen_adopt). */
    if (st.st_uid != geteuid())
        return ipk__listen_adopt(c->name, st.st_uid, st.st_mode, c->perm);
    int live = ipk__unix_probe(sun, len, type);
    if (live < 0)
        return ipk__errsys(live, "%s: a socket file exists and probing it failed", c->name);
    if (live)
        return ipk__err(-EADDRINUSE,
                        "%s: a live process owns this socket (it accepted a probe connection); "
                        "it was left alone",
                        c->name);
    if (ipk__sys_unlink(path) != 0 && errno != ENOENT)
        return ipk__errsys(-errno, "%s: removing the stale socket file", c->name);
    if (ipk__sys_bind(c->rfd, (const struct sockaddr *)sun, len) != 0)
        return ipk__errsys(-errno, "%s: bind after removing the stale socket file", c->name);
    return 0;
}

/* Opens a socket of `type` with the options every unix channel shares. */
static int ipk__unix_open(ipk_chan *c, int type)
{
    int r = ipk__unix_name(c);
    if (r == 0)
        r = ipk__sock_open(c, AF_UNIX, type);
    if (r == 0 && type != SOCK_STREAM) {
        r = ipk__sock_setint(c, SOL_SOCKET, SO_PASSCRED, 1, "SO_PASSCRED");
        ((ipk__sock *)c->tp)->passcred = r == 0;
    }
    return r;
}

extern const ipk__transport ipk__tr_unix, ipk__tr_unixgram, ipk__tr_unixpacket;

/* The socket type of the channel's scheme. */
static int ipk__unix_type(const ipk_chan *c)
{
    return c->addr.tr == &ipk__tr_unixgram     ? SOCK_DGRAM
           : c->addr.tr == &ipk__tr_unixpacket ? SOCK_SEQPACKET
                                               : SOCK_STREAM;
}

static int ipk__unix_listen(ipk_chan *c)
{
    int type = ipk__unix_type(c);
    long backlog;
    int r = ipk__opt_long(c, "backlog", 1, INT_MAX, SOMAXCONN, &backlog);
    if (r != 0 || (r = ipk__unix_open(c, type)) != 0)
        goto fail;
    ipk__sock *s = c->tp;
    struct sockaddr_un sun;
    socklen_t len = ipk__unix_sa(&c->addr, &sun);
    /* bind() creates the file with the socket inode's mode less the umask: set it first, so
     * the file is never, even for an instant, more open than perm. */
    if (!c->addr.u.un.abstract && ipk__sys_fchmod(c->rfd, (mode_t)c->perm) != 0) {
        r = ipk__errsys(-errno, "%s: fchmod", c->name);
        goto fail;
    }
    if ((r = ipk__unix_bind(c, type, &sun, len)) != 0)
        goto fail;
    c->owner = 1;
    if (!c->addr.u.un.abstract) {
        struct stat st;
        s->bound_path = 1;
        /* Without its identity close could not tell our file from a replacement. */
        if (ipk__sys_lstat(c->addr.u.un.path, &st) != 0) {
            r = ipk__errsys(-errno, "%s: stat after bind", c->name);
            goto fail_unlink;
        }
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->pid = getpid();
        /* The umask may have taken bits perm asks for; connect() needs write permission, and
         * no one can connect before listen(), so the final mode is set here. */
        if (ipk__sys_chmod(c->addr.u.un.path, (mode_t)c->perm) != 0) {
            r = ipk__errsys(-errno, "%s: chmod %o", c->name, (unsigned)c->perm);
            goto fail_unlink;
        }
    }
    if (type != SOCK_DGRAM && ipk__sys_listen(c->rfd, (int)backlog) != 0) {
        r = ipk__errsys(-errno, "%s: listen", c->name);
        goto fail_unlink;
    }
    return 0;
fail_unlink:
    if (s->bound_path)
        ipk__sys_unlink(c->addr.u.un.path);
fail:
    ipk__sock_close(c);
    return r;
}

static int ipk__unix_dial(ipk_chan *c)
{
    int type = ipk__unix_type(c);
    int r = ipk__unix_open(c, type);
    if (r != 0)
        goto fail;
    /* A datagram dialer needs an address of its own for the listener to reply to: bind()
     * with only the family autobinds a unique abstract name. */
    struct sockaddr_un self = {.sun_family = AF_UNIX}; /* zeroed: valgrind reads sun_path */
    if (type == SOCK_DGRAM &&
        ipk__sys_bind(c->rfd, (const struct sockaddr *)&self, sizeof(sa_family_t)) != 0) {
        r = ipk__errsys(-errno, "%s: autobind", c->name);
        goto fail;
    }
    struct sockaddr_un sun;
    socklen_t len = ipk__unix_sa(&c->addr, &sun);
    if ((r = ipk__sock_connect(c, (struct sockaddr *)&sun, len, "the socket", IPK__DL_FOREVER)) !=
        0)
        goto fail;
    if (type != SOCK_DGRAM)
        ipk__sock_peercred(c);
    return 0;
fail:
    ipk__sock_close(c);
    return r;
}

static int ipk__unix_accept(ipk_chan *l, ipk_chan *p, int64_t dl)
{
    int r = ipk__sock_accept(l, p, dl);
    if (r == 0)
        ipk__sock_peercred(p);
    return r;
}

static int ipk__unix_close(ipk_chan *c)
{
    ipk__sock *s = c->tp;
    int r = 0;
    struct stat st;
    if (s && s->bound_path && c->owner && !c->keep && s->pid == getpid()) {
        if (ipk__sys_lstat(c->addr.u.un.path, &st) != 0) {
            if (errno != ENOENT) /* cannot tell whether it is ours: left, and said */
                r = ipk__errsys(-errno, "%s: stat of the socket file", c->name);
        } else if (S_ISSOCK(st.st_mode) && st.st_dev == s->dev && st.st_ino == s->ino &&
                   ipk__sys_unlink(c->addr.u.un.path) != 0 && errno != ENOENT) {
            r = ipk__errsys(-errno, "%s: removing the socket file", c->name);
        }
    }
    int t = ipk__sock_close(c);
    return r != 0 ? r : t;
}

/* A stream channel has one peer: its credentials are every message's sender. */
static long ipk__unix_stream_recv(ipk_chan *c, void *buf, size_t cap, ipk_msginfo *mi, int64_t dl)
{
    long r = ipk__stream_recv(c, buf, cap, mi, dl);
    if (r >= 0 && mi) {
        mi->pid = c->peer_pid;
        mi->uid = c->peer_uid;
    }
    return r;
}

static const char *const ipk__unix_files[] = {"/proc/sys/net/core/somaxconn",
                                              "/proc/sys/net/core/rmem_default",
                                              "/proc/sys/net/core/rmem_max",
                                              "/proc/sys/net/core/wmem_default",
                                              "/proc/sys/net/core/wmem_max",
                                              "/proc/sys/net/unix/max_dgram_qlen",
                                              NULL};

static long ipk__unix_info(const ipk__addr *a, char *buf, size_t cap)
{
    const char *text;
    if (a->tr == &ipk__tr_unixgram)
        text = "unixgram: Unix domain datagram socket. One message = one datagram, reliable and "
               "in order on one host; a message is at most SO_SNDBUF - 32 bytes (wmem_default). "
               "A listener's socket is bound and unconnected, so the kernel holds it to the "
               "sysctl net.unix.max_dgram_qlen (below): it queues at most that many datagrams, "
               "then a sender waits (a timed send backs off and retries) until the receiver "
               "takes one; a one-way stream then moves in bursts of that many, each a wake-up of "
               "both sides, and runs below a connected socketpair (exempt from the limit): "
               "raise it (sysctl -w net.unix.max_dgram_qlen=512) for a fast stream. The "
               "listener replies to the sender of the last datagram; each message carries the "
               "sender's pid and uid. Options: perm, keep, max.";
    else if (a->tr == &ipk__tr_unixpacket)
        text = "unixpacket: Unix domain seqpacket socket. Connection-oriented (accept), one "
               "message = one packet, at most SO_SNDBUF - 32 bytes (wmem_default); zero-length "
               "messages are told from end-of-stream; peer credentials (SO_PEERCRED). Options: "
               "perm, keep, backlog, max.";
    else
        text = "unix: Unix domain stream socket. Connection-oriented (accept), messages framed "
               "(4-byte length, or framing=raw|line), any size up to max; peer credentials "
               "(SO_PEERCRED); a stale socket file is replaced, a live one never. Options: "
               "framing, perm, keep, backlog, max.";
    return ipk__sock_info(buf, cap, text, ipk__unix_files);
}

/* ---- the sockets on this machine (ipk_objects_scan) ---- */

/* A socket file with a socket bound to it is in use; one without is stale when a connect is
 * refused (a process in another network name space may hold it: it would answer). */
static void ipk__unix_obj_settle(ipk__obj *o, const ipk__objset *s)
{
    (void)s;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int live = 1;
    if (o->sock_ino == 0 && strlen(o->name) < sizeof sun.sun_path) {
        strcpy(sun.sun_path, o->name);
        live = ipk__unix_probe(&sun, sizeof sun, SOCK_STREAM);
    }
    o->owner_gone = live > 0 ? 0 : live == 0 ? 1 : -1;
    o->why = o->sock_ino ? "a socket is bound to it"
             : live > 0  ? "a process answers on it"
             : live == 0 ? "nobody is bound to it (connect refused)"
                         : "not bound here, but connect was not refused";
}

static void ipk__unix_abstract_settle(ipk__obj *o, const ipk__objset *s)
{
    (void)s;
    o->owner_gone = 0;
    o->why = "abstract sockets vanish with their owner";
}

static int ipk__unix_abstract_remove(const ipk__obj *o, unsigned flags)
{
    (void)flags;
    return ipk__err(IPK_ENOTSUP, "%s: an abstract socket has no file; it goes with its owner",
                    o->url);
}

static const ipk__objkind ipk__unix_kind = {"unix-socket", 0, ipk__unix_obj_settle,
                                            ipk__obj_unlink};
static const ipk__objkind ipk__unix_abstract_kind = {"unix-abstract", 0, ipk__unix_abstract_settle,
                                                     ipk__unix_abstract_remove};
static const ipk__objkind *const ipk__unix_kinds[] = {&ipk__unix_kind, &ipk__unix_abstract_kind,
                                                      NULL};

/* Whether a bound socket path (as the binder wrote it, maybe relative to its own working
 * directory) may be the file at name. A relative one is matched by its last component: taking a
 * live socket for stale is the mistake to avoid. */
static int ipk__unix_same(const char *name, const char *bound)
{
    if (bound[0] == '/' || bound[0] == '@')
        return strcmp(name, bound) == 0;
    const char *b = strrchr(bound, '/') ? strrchr(bound, '/') + 1 : bound;
    const char *n = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    return strcmp(b, n) == 0;
}

static const char *ipk__unix_scheme(int type)
{
    return type == SOCK_DGRAM ? "unixgram" : type == SOCK_SEQPACKET ? "unixpacket" : "unix";
}

typedef struct ipk__unix_rows {
    ipk__objset *s;
    int add; /* add bound sockets not found under the directories (abstract ones, absolute) */
} ipk__unix_rows;

/* A row of /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path. Only sockets bound
 * to a name and not connected count (listeners and datagram sockets; accepted connections
 * repeat the listener's path). */
static void ipk__unix_row(void *arg, const char *line)
{
    ipk__unix_rows *x = arg;
    unsigned long flags, ino;
    unsigned type, st;
    char path[256] = "";
    if (sscanf(line, "%*s %*s %*s %lx %x %x %lu %255s", &flags, &type, &st, &ino, path) < 5 ||
        st != 1)
        return;
    int found = 0;
    for (size_t i = 0; i < x->s->n; i++) {
        ipk__obj *o = x->s->v[i];
        if ((o->kind == &ipk__unix_kind || o->kind == &ipk__unix_abstract_kind) &&
            ipk__unix_same(o->name, path)) {
            o->sock_ino = ino;
            o->sock_type = (int)type;
            found = 1;
        }
    }
    struct stat sb;
    ipk__obj *o = NULL;
    if (found || !x->add)
        return;
    if (path[0] == '@')
        o = ipk__obj_add(x->s, &ipk__unix_abstract_kind, path, "%s:%s", ipk__unix_scheme(type),
                         path);
    else if (path[0] == '/' && lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode) &&
             (o = ipk__obj_add(x->s, &ipk__unix_kind, path, "%s:%s", ipk__unix_scheme(type),
                               path)) != NULL)
        ipk__obj_stat(o, &sb);
    if (o != NULL) {
        o->sock_ino = ino;
        o->sock_type = (int)type;
    }
}

static int ipk__unix_objects(ipk__objset *s)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        const ipk__objfile *f = &s->files[i];
        ipk__obj *o = S_ISSOCK(f->st.st_mode)
                          ? ipk__obj_add(s, &ipk__unix_kind, f->path, "unix:%s", f->path)
                          : NULL;
        if (o != NULL)
            ipk__obj_stat(o, &f->st);
    }
    ipk__unix_rows x = {s, 1};
    if (ipk__obj_lines("/proc/net/unix", ipk__unix_row, &x) != 0)
        ipk__obj_note(s, "/proc/net/unix: %s: bound sockets not matched", strerror(errno));
    return 0;
}

static int ipk__unix_resolve(const ipk_chan *c, ipk__objset *s)
{
    const ipk__addr *a = &c->addr;
    if (a->u.un.abstract)
        return ipk__err(IPK_ENOTSUP,
                        "%s:@%s: an abstract socket has no file; it vanishes when its owner "
                        "closes it",
                        a->scheme_name, a->u.un.path);
    size_t before = s->n;
    int r = ipk__obj_path(s, &ipk__unix_kind, S_IFSOCK, a->scheme_name, a->u.un.path);
    if (r == 0 && s->n > before) {
        ipk__unix_rows x = {s, 0};
        ipk__obj_lines("/proc/net/unix", ipk__unix_row, &x);
    }
    return r;
}

static const char *const ipk__unix_keys[] = {"framing", "perm", "keep", "backlog", "flush", NULL};
static const char *const ipk__unixpacket_keys[] = {"perm", "keep", "backlog", NULL};
static const char *const ipk__unixgram_keys[] = {"perm", "keep", NULL};

const ipk__transport ipk__tr_unix = {
    .scheme = "unix",
    .parse = ipk__addr_unix,
    .flags = IPK_SCHEME_STREAM | IPK_SCHEME_ACCEPT,
    .usage = "unix:PATH or unix:@NAME",
    .keys = ipk__unix_keys,
    .summary = "Unix domain stream socket (framed messages, peer credentials)",
    .listen = ipk__unix_listen,
    .dial = ipk__unix_dial,
    .accept = ipk__unix_accept,
    .send = ipk__stream_send,
    .sendv = ipk__stream_sendv,
    .recv = ipk__unix_stream_recv,
    .peek = ipk__stream_peek,
    .release = ipk__stream_release,
    .close = ipk__unix_close,
    .info = ipk__unix_info,
    .kinds = ipk__unix_kinds,
    .objects = ipk__unix_objects,
    .resolve = ipk__unix_resolve,
};

const ipk__transport ipk__tr_unixpacket = {
    .scheme = "unixpacket",
    .parse = ipk__addr_unix,
    .flags = IPK_SCHEME_DGRAM | IPK_SCHEME_ACCEPT,
    .usage = "unixpacket:PATH or unixpacket:@NAME",
    .keys = ipk__unixpacket_keys,
    .summary = "Unix domain seqpacket socket (one message per packet, connection-oriented)",
    .listen = ipk__unix_listen,
    .dial = ipk__unix_dial,
    .accept = ipk__unix_accept,
    .send = ipk__dgram_send,
    .sendv = ipk__dgram_sendv,
    .recv = ipk__dgram_recv,
    .close = ipk__unix_close,
    .info = ipk__unix_info,
    .kinds = ipk__unix_kinds,
    .resolve = ipk__unix_resolve,
};

const ipk__transport ipk__tr_unixgram = {
    .scheme = "unixgram",
    .parse = ipk__addr_unix,
    .flags = IPK_SCHEME_DGRAM,
    .usage = "unixgram:PATH or unixgram:@NAME",
    .keys = ipk__unixgram_keys,
    .summary = "Unix domain datagram socket (one message per datagram, sender credentials)",
    .listen = ipk__unix_listen,
    .dial = ipk__unix_dial,
    .send = ipk__dgram_send,
    .sendv = ipk__dgram_sendv,
    .recv = ipk__dgram_recv,
    .close = ipk__unix_close,
    .info = ipk__unix_info,
    .kinds = ipk__unix_kinds,
    .resolve = ipk__unix_resolve,
};
