/*
 * server.c - the ipk_server object: settings, listeners, handlers. Everything here runs in the
 * master before (or, for a reload, between) generations of workers; the workers inherit the
 * object through fork.
 *
 * The listeners are made with ipk_listen(), so address syntax, stale Unix socket files and port
 * 0 are the library's; the server reads the channel's framing and max from the channel object
 * (this component is built in-tree with the library, src/core/ipk.h).
 */
#include "ipk.h"
#include "server.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

int srv_err(ipk_server *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

const char *ipk_server_errmsg(const ipk_server *s)
{
    return s ? s->errmsg : "";
}

size_t srv_max(const ipk_server *s, const srv_listener *l)
{
    return s->max_frame ? s->max_frame : l->max;
}

int ipk_server_new(ipk_server **out)
{
    if (out == NULL)
        return -EINVAL;
    ipk_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    s->workers = cpus < 1 ? 1 : cpus > 1024 ? 1024 : (int)cpus;
    s->idle_ms = 60000;
    s->read_ms = 10000;
    s->shutdown_ms = 10000;
    s->kill_ms = 3000;
    s->exec_ms = 10000;
    s->exec_framing = -1;
    s->status.fd = -1;
    *out = s;
    return 0;
}

static void listener_free(srv_listener *l)
{
    if (l->chan)
        ipk_close(l->chan);
    else if (l->fd >= 0)
        close(l->fd);
    ipk_opts_free(l->opts);
    free(l->url);
    free(l->addr);
    free(l->sock_path);
    memset(l, 0, sizeof *l);
    l->fd = -1;
}

void ipk_server_free(ipk_server *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nl; i++)
        listener_free(&s->l[i]);
    free(s->l);
    listener_free(&s->status);
    free(s->status_url);
    free(s->log_path);
    free(s->pid_file);
    free(s->name);
    free(s->exec_cmd);
    free(s);
}

/* A copy of opts (NULL stays NULL), for the workers' own ipk_dial() of a queue. */
static ipk_opts *opts_copy(const ipk_opts *o)
{
    ipk_opts *c = ipk_opts_new();
    if (c == NULL || o == NULL)
        return c;
    for (const ipk__kv *kv = o->kv; kv; kv = kv->next)
        if (ipk_opts_set(c, kv->key, kv->val) != 0) {
            ipk_opts_free(c);
            return NULL;
        }
    return c;
}

static int set_str(char **dst, const char *v)
{
    char *p = v ? strdup(v) : NULL;
    if (v && p == NULL)
        return -ENOMEM;
    free(*dst);
    *dst = p;
    return 0;
}

/* A size such as 1048576, 64k, 16m. */
static int parse_size(const char *v, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || errno || *v == '-')
        return -1;
    unsigned shift = *end == 'k' ? 10 : *end == 'm' ? 20 : *end == 'g' ? 30 : 0;
    if (shift)
        end++;
    if (*end || n > (1ull << 31) >> shift)
        return -1;
    *out = (size_t)(n << shift);
    return 0;
}

int ipk_server_set(ipk_server *s, const char *key, const char *value)
{
    if (s == NULL || key == NULL || value == NULL)
        return -EINVAL;
    static const struct {
        const char *key;
        size_t off;
        long min, max;
    } ints[] = {
        {"workers", offsetof(ipk_server, workers), 1, 1024},
        {"max_conn", offsetof(ipk_server, max_conn), 0, 100000000},
        {"idle_timeout", offsetof(ipk_server, idle_ms), 1, 86400000},
        {"read_timeout", offsetof(ipk_server, read_ms), 1, 86400000},
        {"shutdown_timeout", offsetof(ipk_server, shutdown_ms), 1, 86400000},
        {"kill_timeout", offsetof(ipk_server, kill_ms), 1, 86400000},
        {"exec_timeout", offsetof(ipk_server, exec_ms), 1, 86400000},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(key, ints[i].key) != 0)
            continue;
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || v < ints[i].min || v > ints[i].max)
            return srv_err(s, IPK_EOPTION, "%s=%s: expected %ld to %ld", key, value, ints[i].min,
                           ints[i].max);
        *(int *)((char *)s + ints[i].off) = (int)v;
        return 0;
    }
    if (strcmp(key, "max_frame") == 0) {
        size_t v;
        if (parse_size(value, &v) != 0)
            return srv_err(s, IPK_EOPTION, "max_frame=%s: expected a size up to 2g", value);
        s->max_frame = v;
        return 0;
    }
    if (strcmp(key, "exec_framing") == 0) {
        if (strcmp(value, "len") != 0 && strcmp(value, "line") != 0)
            return srv_err(s, IPK_EOPTION, "exec_framing=%s: expected len or line", value);
        s->exec_framing = strcmp(value, "len") == 0 ? IPK__FR_LEN : IPK__FR_LINE;
        return 0;
    }
    if (strcmp(key, "status") == 0) {
        /* Opened by the master at start and kept for its life: a reload does not move it (an
         * upgrade, which starts a new master, does). */
        if (s->in_reload)
            return 0;
        char scheme[32];
        size_t n = strcspn(value, ":");
        snprintf(scheme, sizeof scheme, "%.*s", (int)(n < 31 ? n : 31), value);
        if (*value && (value[n] != ':' || !(ipk_scheme_flags(scheme) & IPK_SCHEME_ACCEPT)))
            return srv_err(s, IPK_EOPTION,
                           "status=%s: expected a listening address (unix:PATH, tcp://HOST:PORT)",
                           value);
        return set_str(&s->status_url, *value ? value : NULL);
    }
    char **str = strcmp(key, "log") == 0        ? &s->log_path
                 : strcmp(key, "pid_file") == 0 ? &s->pid_file
                 : strcmp(key, "name") == 0     ? &s->name
                                                : NULL;
    if (str == NULL)
        return srv_err(s, IPK_EOPTION, "%s: unknown server setting", key);
    return set_str(str, *value ? value : NULL);
}

static srv_listener *listener_add(ipk_server *s)
{
    if (s->nl == s->capl) {
        size_t cap = s->capl ? s->capl * 2 : 4;
        srv_listener *p = realloc(s->l, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        s->l = p;
        s->capl = cap;
    }
    srv_listener *l = &s->l[s->nl];
    memset(l, 0, sizeof *l);
    l->fd = -1;
    return l;
}

/* The scheme of url, checked before anything is created: ipk_listen() of a scheme the server
 * cannot serve (a fifo, a signal) would otherwise make that object. */
static int servable(ipk_server *s, const char *url, enum srv_kind *kind)
{
    char scheme[32];
    size_t n = strcspn(url, ":");
    if (url[n] != ':' || n >= sizeof scheme)
        return srv_err(s, IPK_EADDR, "%s: not an address (scheme:...)", url);
    memcpy(scheme, url, n);
    scheme[n] = '\0';
    unsigned f = ipk_scheme_flags(scheme);
    if (f & IPK_SCHEME_ACCEPT)
        *kind = SRV_ACCEPT;
    else if (f & IPK_SCHEME_DGRAM)
        *kind = SRV_DGRAM;
    else if (f & IPK_SCHEME_QUEUE)
        *kind = SRV_QUEUE;
    else
        return srv_err(s, IPK_ENOTSUP,
                       "%s: the server takes connection listeners (tcp, unix, unixpacket), "
                       "datagram sockets (udp, unixgram) or queues (mq, sysv, shm, file)",
                       url);
    return 0;
}

/* ---- peer allow-lists of unix listeners ---- */

int srv_allowed(const srv_listener *l, uid_t uid, gid_t gid)
{
    if (l->n_uid == 0 && l->n_gid == 0)
        return 1;
    for (int i = 0; i < l->n_uid; i++)
        if (l->allow_uid[i] == uid)
            return 1;
    for (int i = 0; i < l->n_gid; i++)
        if (l->allow_gid[i] == gid)
            return 1;
    return 0;
}

/* One allow_uid= or allow_gid= value: ids or names, separated by commas. */
static int allow_parse(ipk_server *s, srv_listener *l, const char *key, const char *v)
{
    int gid = strcmp(key, "allow_gid") == 0;
    int *n = gid ? &l->n_gid : &l->n_uid;
    char item[256];
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || *n >= SRV_ALLOW_MAX)
            return srv_err(s, IPK_EOPTION, "%s=%s: expected up to %d ids or names, comma-separated",
                           key, v, SRV_ALLOW_MAX);
        memcpy(item, p, len);
        item[len] = '\0';
        p += len + (p[len] == ',');
        char *end;
        errno = 0;
        unsigned long id = strtoul(item, &end, 10);
        if (*end || errno || item[0] == '-' || id > 0xfffffffeul) {
            struct passwd *pw = gid ? NULL : getpwnam(item);
            struct group *gr = gid ? getgrnam(item) : NULL;
            if (pw == NULL && gr == NULL)
                return srv_err(s, IPK_EOPTION, "%s=%s: no %s '%s'", key, v, gid ? "group" : "user",
                               item);
            id = pw ? pw->pw_uid : gr->gr_gid;
        }
        if (gid)
            l->allow_gid[(*n)++] = (gid_t)id;
        else
            l->allow_uid[(*n)++] = (uid_t)id;
    }
    return 0;
}

static int is_allow_key(const char *k, size_t n)
{
    return (n == 9 && (strncmp(k, "allow_uid", 9) == 0 || strncmp(k, "allow_gid", 9) == 0));
}

/*
 * Takes allow_uid= and allow_gid= out of url's query (into l) and returns the rest of the
 * address in out, for ipk_listen(), which does not know them: they are the server's.
 */
static int allow_from_url(ipk_server *s, srv_listener *l, const char *url, char *out, size_t cap)
{
    size_t ul = strlen(url);
    if (ul >= cap)
        return srv_err(s, IPK_EADDR, "%s: address too long", url);
    const char *q = strchr(url, '?');
    size_t n = q ? (size_t)(q - url) : ul;
    memcpy(out, url, n);
    out[n] = '\0';
    char sep = '?';
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        size_t len = strcspn(p, "&"), klen = strcspn(p, "=");
        if (klen < len && is_allow_key(p, klen)) {
            char key[16], val[512];
            size_t vl = len - klen - 1;
            if (vl >= sizeof val)
                return srv_err(s, IPK_EOPTION, "%s: allow-list too long", url);
            memcpy(key, p, klen);
            key[klen] = '\0';
            memcpy(val, p + klen + 1, vl);
            val[vl] = '\0';
            int r = allow_parse(s, l, key, val);
            if (r != 0)
                return r;
        } else {
            out[n++] = sep;
            memcpy(out + n, p, len);
            n += len;
            out[n] = '\0';
            sep = '&';
        }
        p += len + (p[len] == '&');
    }
    return 0;
}

/* The same from opts: the allow-lists go into l, the other keys into *rest (a new copy). */
static int allow_from_opts(ipk_server *s, srv_listener *l, const ipk_opts *o, ipk_opts **rest)
{
    *rest = ipk_opts_new();
    if (*rest == NULL)
        return srv_err(s, -ENOMEM, "out of memory");
    for (const ipk__kv *kv = o ? o->kv : NULL; kv; kv = kv->next) {
        int r = is_allow_key(kv->key, strlen(kv->key)) ? allow_parse(s, l, kv->key, kv->val)
                                                       : ipk_opts_set(*rest, kv->key, kv->val);
        if (r != 0) {
            ipk_opts_free(*rest);
            *rest = NULL;
            return r;
        }
    }
    return 0;
}

/* Whether nothing wakes a poller for the queue c (a System V queue, an shm segment): the
 * transport says so in what it gives a poller to watch (IPK__PS_TIMED), so the workers try it on
 * their tick instead (loop.c). Asking may make a wake-up descriptor, released at once. */
static int chan_timed(ipk_chan *c)
{
    if (c->tr->poll_src == NULL)
        return 0;
    ipk__pollsrc src = {{-1, -1}, {0, 0}, 0};
    int r = c->tr->poll_src(c, IPK_POLLIN, &src);
    if (c->tr->poll_end)
        c->tr->poll_end(c);
    return r == 0 && (src.flags & IPK__PS_TIMED) != 0;
}

/* A nodelay= value: 1 or 0, -1 when it is neither (the words ipk_listen() takes). */
static int nodelay_word(const char *v)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
        return 1;
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
        return 0;
    return -1;
}

/*
 * The workers accept with accept4(), not ipk_accept(), so what the library's accept would set on
 * a TCP connection (TCP_NODELAY unless nodelay=0: a reply leaves at once, not after the
 * client's delayed ACK) is set once on the listening socket, which every accepted connection
 * inherits (Linux copies it at accept): for a socket of ipk_server_listen() (whose value
 * ipk_listen() checked) and one adopted by ipk_server_listen_fd() alike. 0 for a socket that
 * is not TCP, or a negative errno.
 */
static int tcp_nodelay(int fd, int on)
{
    int proto = 0;
    socklen_t sl = sizeof proto;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &sl) != 0 || proto != IPPROTO_TCP)
        return 0;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0 ? 0 : -errno;
}

static int chan_nodelay(const srv_listener *l)
{
    int on = 1;
    for (const ipk__kv *kv = l->chan->opts; kv; kv = kv->next)
        if (strcmp(kv->key, "nodelay") == 0)
            on = nodelay_word(kv->val) != 0;
    return tcp_nodelay(l->fd, on);
}

/* ---- binary upgrade: the sockets an old master passed (IPK_SERVE_FDS, see server.h) ---- */

#define INHERIT_MAX 64
static struct inherited {
    int fd; /* -1 once a listener took it */
    enum ipk__framing framing;
    size_t max;
    char *addr, *key;
} inh[INHERIT_MAX];
static int n_inh, inh_loaded;
static pid_t inh_from;

/* Reads IPK_SERVE_FDS once, and only when the old master it names is this process's parent
 * (a stale variable in a grandchild means nothing). The variable is removed, so workers and
 * --exec programs do not see it. */
static void inherit_load(void)
{
    if (inh_loaded)
        return;
    inh_loaded = 1;
    const char *v = getenv("IPK_SERVE_FDS");
    char *copy = v ? strdup(v) : NULL;
    unsetenv("IPK_SERVE_FDS");
    if (copy == NULL)
        return;
    char *save = NULL, *line = strtok_r(copy, "\n", &save);
    long pid = line ? atol(line) : 0;
    if (pid <= 0 || (pid_t)pid != getppid()) {
        free(copy);
        return;
    }
    inh_from = (pid_t)pid;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL && n_inh < INHERIT_MAX) {
        char *f[5], *fs = NULL;
        int k = 0;
        for (char *t = strtok_r(line, "\t", &fs); t && k < 5; t = strtok_r(NULL, "\t", &fs))
            f[k++] = t;
        int fd = k == 5 ? atoi(f[0]) : -1;
        if (fd < 0 || fcntl(fd, F_GETFD) < 0)
            continue;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        inh[n_inh] =
            (struct inherited){fd, (enum ipk__framing)atoi(f[1]), (size_t)strtoull(f[2], NULL, 10),
                               strdup(f[3]), strdup(f[4])};
        if (inh[n_inh].addr == NULL || inh[n_inh].key == NULL) {
            close(fd);
            free(inh[n_inh].addr);
            free(inh[n_inh].key);
            continue;
        }
        n_inh++;
    }
    free(copy);
}

/* The inherited socket passed for key (a URL as given, or "fd:N"), or NULL. */
static struct inherited *inherit_find(const char *key)
{
    inherit_load();
    for (int i = 0; i < n_inh; i++)
        if (inh[i].fd >= 0 && strcmp(inh[i].key, key) == 0)
            return &inh[i];
    return NULL;
}

pid_t srv_upgrade_taken(void)
{
    inherit_load();
    for (int i = 0; i < n_inh; i++) {
        if (inh[i].fd >= 0)
            close(inh[i].fd); /* not named again: the old master's copy goes with it */
        free(inh[i].addr);
        free(inh[i].key);
    }
    n_inh = 0;
    pid_t from = inh_from;
    inh_from = 0;
    return from;
}

char *srv_upgrade_env(const ipk_server *s)
{
    size_t cap = 32;
    for (size_t i = 0; i < s->nl; i++)
        cap += 96 + strlen(s->l[i].addr) + (s->l[i].url ? strlen(s->l[i].url) : 0);
    if (s->status.fd >= 0)
        cap += 96 + strlen(s->status.addr) + strlen(s->status_url);
    char *e = malloc(cap);
    if (e == NULL)
        return NULL;
    size_t n = (size_t)snprintf(e, cap, "%d\n", (int)getpid());
    for (size_t i = 0; i < s->nl; i++) {
        const srv_listener *l = &s->l[i];
        char key[32];
        snprintf(key, sizeof key, "fd:%d", l->fd);
        const char *k = l->url ? l->url : key;
        /* A tab or newline in an address would break the format: that one is not passed. */
        if (l->kind == SRV_QUEUE || l->fd < 0 || strpbrk(k, "\t\n") || strpbrk(l->addr, "\t\n"))
            continue;
        n += (size_t)snprintf(e + n, cap - n, "%d\t%d\t%zu\t%s\t%s\n", l->fd, (int)l->framing,
                              l->max, l->addr, k);
    }
    /* The status socket, keyed "status=URL" so that no listener takes it by mistake. */
    const srv_listener *st = &s->status;
    if (st->fd >= 0 && !strpbrk(s->status_url, "\t\n") && !strpbrk(st->addr, "\t\n"))
        snprintf(e + n, cap - n, "%d\t%d\t%zu\t%s\tstatus=%s\n", st->fd, 0, (size_t)0, st->addr,
                 s->status_url);
    return e;
}

static void disown(srv_listener *l)
{
    if (l->chan)
        l->chan->keep = 1;
    free(l->sock_path);
    l->sock_path = NULL;
}

void srv_disown(ipk_server *s)
{
    for (size_t i = 0; i < s->nl; i++)
        disown(&s->l[i]);
    disown(&s->status);
}

/* The unix socket file of an inherited socket, which this master removes at its final exit. */
static int inherited_path(srv_listener *l, const char *addr)
{
    const char *colon = strchr(addr, ':');
    if (l->unix_family && colon && colon[1] != '@' && (l->sock_path = strdup(colon + 1)) == NULL)
        return -ENOMEM;
    return 0;
}

/* l (its allow-lists parsed) takes the inherited socket in for url. */
static int adopt_inherited(ipk_server *s, srv_listener *l, enum srv_kind kind, const char *url,
                           const ipk_opts *opts, struct inherited *in)
{
    int type = 0, domain = 0;
    socklen_t sl = sizeof type;
    getsockopt(in->fd, SOL_SOCKET, SO_TYPE, &type, &sl);
    sl = sizeof domain;
    getsockopt(in->fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl);
    l->kind = kind;
    l->fd = in->fd;
    l->framing = in->framing;
    l->max = in->max ? in->max : IPK__DEFAULT_MAX;
    l->seqpacket = type == SOCK_SEQPACKET;
    l->unix_family = domain == AF_UNIX;
    l->url = strdup(url);
    l->addr = strdup(in->addr);
    l->opts = opts_copy(opts);
    inherited_path(l, in->addr);
    if (l->url == NULL || l->addr == NULL || l->opts == NULL) {
        free(l->sock_path);
        l->sock_path = NULL;
        l->fd = -1; /* stays in the table, closed by srv_upgrade_taken() */
        listener_free(l);
        return srv_err(s, -ENOMEM, "%s: cannot set up the listener", url);
    }
    in->fd = -1;
    s->nl++;
    return 0;
}

int ipk_server_listen(ipk_server *s, const char *url, const ipk_opts *opts)
{
    if (s == NULL || url == NULL)
        return -EINVAL;
    if (s->in_reload)
        for (size_t i = 0; i < s->nl; i++)
            if (s->l[i].url && strcmp(s->l[i].url, url) == 0 && s->l[i].stale) {
                s->l[i].stale = 0; /* the same address again: its socket stays */
                return 0;
            }
    enum srv_kind kind = SRV_ACCEPT;
    int r = servable(s, url, &kind);
    if (r != 0)
        return r;
    srv_listener *l = listener_add(s);
    if (l == NULL)
        return srv_err(s, -ENOMEM, "out of memory");
    char bare[4096];
    ipk_opts *rest = NULL;
    if ((r = allow_from_url(s, l, url, bare, sizeof bare)) != 0 ||
        (r = allow_from_opts(s, l, opts, &rest)) != 0)
        return r;
    int allow = l->n_uid || l->n_gid;
    if (allow && (kind != SRV_ACCEPT || strncmp(url, "unix", 4) != 0)) {
        ipk_opts_free(rest);
        return srv_err(s, IPK_EOPTION,
                       "%s: allow_uid= and allow_gid= are for unix and unixpacket listeners", url);
    }
    struct inherited *in = kind == SRV_QUEUE ? NULL : inherit_find(url);
    if (in) { /* a binary upgrade: the old master's socket, not a new bind */
        ipk_opts_free(rest);
        return adopt_inherited(s, l, kind, url, opts, in);
    }
    r = ipk_listen(&l->chan, bare, rest);
    ipk_opts_free(rest);
    if (r != 0)
        return srv_err(s, r, "%s", ipk_errmsg());
    l->kind = kind;
    l->framing = l->chan->framing;
    l->max = l->chan->max;
    l->url = strdup(url);
    l->addr = strdup(ipk_addr(l->chan));
    l->opts = opts_copy(opts);
    l->timed = kind == SRV_QUEUE && chan_timed(l->chan);
    /* A ring's end of stream: no producer now, not the end of the jobs (worker.c parks it). */
    l->eof_waits = kind == SRV_QUEUE && (l->chan->tr->flags & IPK__TF_EOF_WAITS) != 0;
    if (kind != SRV_QUEUE) {
        l->fd = ipk_fd(l->chan);
        /* What the socket is, from the socket itself (as for an inherited one): no scheme
         * names here. */
        int type = 0, domain = 0;
        socklen_t tl = sizeof type, dl = sizeof domain;
        if (getsockopt(l->fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
            getsockopt(l->fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == 0) {
            l->seqpacket = type == SOCK_SEQPACKET;
            l->unix_family = domain == AF_UNIX;
        }
        /* Shared by every worker: O_NONBLOCK is on the open file, so a worker that loses the
         * race for a connection gets EAGAIN instead of sleeping in accept(). */
        int fl = fcntl(l->fd, F_GETFL);
        if (fl < 0 || fcntl(l->fd, F_SETFL, fl | O_NONBLOCK) != 0)
            r = -errno;
        else if (kind == SRV_ACCEPT)
            r = chan_nodelay(l);
    }
    if (r != 0 || l->url == NULL || l->addr == NULL || l->opts == NULL) {
        listener_free(l);
        return srv_err(s, r ? r : -ENOMEM, "%s: cannot set up the listener", url);
    }
    s->nl++;
    return 0;
}

int ipk_server_listen_fd(ipk_server *s, int fd, const ipk_opts *opts)
{
    if (s == NULL || fd < 0)
        return -EINVAL;
    int type, listening = 0, domain;
    socklen_t sl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) != 0)
        return srv_err(s, -errno, "descriptor %d: not a socket", fd);
    sl = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl);
    sl = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl) != 0)
        return srv_err(s, -errno, "descriptor %d: SO_DOMAIN", fd);
    enum srv_kind kind = listening ? SRV_ACCEPT : SRV_DGRAM;
    if ((listening && type == SOCK_DGRAM) || (!listening && type != SOCK_DGRAM))
        return srv_err(s, -EINVAL, "descriptor %d: neither listening nor a datagram socket", fd);
    enum ipk__framing framing = IPK__FR_LEN;
    size_t max = IPK__DEFAULT_MAX;
    int nodelay = -1;      /* not given: on for a listening TCP socket */
    srv_listener al = {0}; /* the allow-lists */
    for (const ipk__kv *kv = opts ? opts->kv : NULL; kv; kv = kv->next) {
        if (is_allow_key(kv->key, strlen(kv->key))) {
            int r = allow_parse(s, &al, kv->key, kv->val);
            if (r != 0)
                return r;
            if (domain != AF_UNIX || !listening)
                return srv_err(s, IPK_EOPTION,
                               "descriptor %d: allow_uid= and allow_gid= are for listening "
                               "unix sockets",
                               fd);
        } else if (strcmp(kv->key, "nodelay") == 0) {
            if ((nodelay = nodelay_word(kv->val)) < 0 || !listening ||
                (domain != AF_INET && domain != AF_INET6))
                return srv_err(s, IPK_EOPTION,
                               "descriptor %d: nodelay=%s: 1 or 0, for a listening tcp socket", fd,
                               kv->val);
        } else if (strcmp(kv->key, "framing") == 0 && strcmp(kv->val, "len") == 0)
            framing = IPK__FR_LEN;
        else if (strcmp(kv->key, "framing") == 0 && strcmp(kv->val, "line") == 0)
            framing = IPK__FR_LINE;
        else if (strcmp(kv->key, "framing") == 0 && strcmp(kv->val, "raw") == 0)
            framing = IPK__FR_RAW;
        else if (strcmp(kv->key, "max") != 0 || parse_size(kv->val, &max) != 0 || max == 0)
            return srv_err(s, IPK_EOPTION, "descriptor %d: %s=%s: not an option here", fd, kv->key,
                           kv->val);
    }
    srv_listener *l = listener_add(s);
    if (l == NULL)
        return srv_err(s, -ENOMEM, "out of memory");
    char addr[64];
    snprintf(addr, sizeof addr, "fd:%d", fd);
    *l = (srv_listener){.kind = kind,
                        .fd = fd,
                        .seqpacket = type == SOCK_SEQPACKET,
                        .unix_family = domain == AF_UNIX,
                        .framing = framing,
                        .max = max,
                        .addr = strdup(addr)};
    memcpy(l->allow_uid, al.allow_uid, sizeof al.allow_uid);
    memcpy(l->allow_gid, al.allow_gid, sizeof al.allow_gid);
    l->n_uid = al.n_uid;
    l->n_gid = al.n_gid;
    int fl = fcntl(fd, F_GETFL), r = 0;
    if (l->addr == NULL || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        (listening && (r = tcp_nodelay(fd, nodelay != 0)) != 0)) {
        free(l->addr);
        return srv_err(s, r ? r : -ENOMEM, "descriptor %d: cannot set it up", fd);
    }
    char key[32];
    snprintf(key, sizeof key, "fd:%d", fd);
    struct inherited *in = inherit_find(key);
    if (in && in->fd == fd) /* the same descriptor again after an upgrade */
        in->fd = -1;
    s->nl++;
    return 0;
}

const char *ipk_server_addr(const ipk_server *s, size_t i)
{
    return s && i < s->nl ? s->l[i].addr : NULL;
}

void ipk_server_handlers(ipk_server *s, const ipk_serve_handlers *h, void *arg)
{
    if (s == NULL)
        return;
    s->h = h ? *h : (ipk_serve_handlers){0};
    s->arg = arg;
    free(s->exec_cmd);
    s->exec_cmd = NULL;
}

int ipk_server_exec(ipk_server *s, const char *cmd)
{
    if (s == NULL || cmd == NULL || *cmd == '\0')
        return -EINVAL;
    char *c = strdup(cmd);
    if (c == NULL)
        return -ENOMEM;
    free(s->exec_cmd);
    s->exec_cmd = c;
    s->h = (ipk_serve_handlers){
        .on_msg = srv_exec_msg, .on_worker_start = srv_exec_start, .on_worker_stop = srv_exec_stop};
    s->arg = s;
    return 0;
}

void ipk_server_on_reload(ipk_server *s, int (*reload)(ipk_server *s, void *arg), void *arg)
{
    if (s == NULL)
        return;
    s->reload = reload;
    s->reload_arg = arg;
}

int ipk_server_run(ipk_server *s)
{
    if (s == NULL)
        return -EINVAL;
    if (s->nl == 0)
        return srv_err(s, -EINVAL, "nothing to serve: no listener was added");
    return srv_master_run(s);
}

int srv_status_open(ipk_server *s)
{
    srv_listener *l = &s->status;
    if (s->status_url == NULL || l->fd >= 0)
        return 0;
    size_t kl = strlen(s->status_url) + 8;
    char *key = malloc(kl);
    if (key == NULL)
        return srv_err(s, -ENOMEM, "out of memory");
    snprintf(key, kl, "status=%s", s->status_url);
    struct inherited *in = inherit_find(key);
    free(key);
    int r = 0;
    if (in) { /* a binary upgrade: the old master's status socket */
        int domain = 0;
        socklen_t dl = sizeof domain;
        getsockopt(in->fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl);
        l->unix_family = domain == AF_UNIX;
        l->fd = in->fd;
        in->fd = -1;
        l->addr = strdup(in->addr);
        if (l->addr == NULL || inherited_path(l, l->addr) != 0)
            r = -ENOMEM;
    } else {
        r = ipk_listen(&l->chan, s->status_url, NULL);
        if (r != 0)
            return srv_err(s, r, "status %s", ipk_errmsg());
        l->fd = ipk_fd(l->chan);
        if ((l->addr = strdup(ipk_addr(l->chan))) == NULL)
            r = -ENOMEM;
    }
    int fl = fcntl(l->fd, F_GETFL);
    if (r == 0 && (fl < 0 || fcntl(l->fd, F_SETFL, fl | O_NONBLOCK) != 0))
        r = -errno;
    if (r != 0) {
        listener_free(l);
        return srv_err(s, r, "status %s: cannot set up the listener", s->status_url);
    }
    return 0;
}
