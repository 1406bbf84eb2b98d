/*
 * ipk.c - ipckit itself, through the public API only, for any address.
 *
 * How the two sides meet depends on the mechanism:
 * - connection (unix, unixpacket, tcp): A listens and accepts, B dials; one duplex channel.
 * - pair (every one-way or datagram mechanism): each side listens on its own inbound address
 *   and dials the other's, so a ping-pong has one object per direction, as a program using a
 *   queue or a FIFO each way would. For an address given by the user, B's inbound address is
 *   derived from it ("-b" appended to the name, port 0, the next literal key).
 * - exec: B runs `cat` through exec: and the round trip goes through it; A stays idle.
 * - duplex (shm: with duplex=1): A listens, B dials, and each side sends and receives on that
 *   one channel; the listening channel itself is A's end of the conversation (no accept).
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipckit.h"

enum ipk_topo { TOPO_CONN, TOPO_PAIR, TOPO_EXEC, TOPO_DUPLEX };

typedef struct ipk_st {
    ipk_chan *l, *in, *out; /* listener; channel read from; channel written to */
    ipk_iov iov[BENCH_BATCH];
} ipk_st;

static int ipk_fail(bench_side *sd, const char *what, int err)
{
    const char *m = ipk_errmsg(); /* names the address already */
    if (m[0])
        return bench_fail(sd, "%s", m);
    return bench_fail(sd, "%s: %s", what, ipk_strerror(err));
}

/* The query of a URL ("?..." or ""), for exec: the last '?' (see addr.c). */
static const char *ipk_query(const char *url)
{
    const char *q = strchr(url, '?');
    return q ? q : "";
}

/*
 * Per-size options: mq: queue attributes that match the raw baseline (maxmsg 10, msgsize = the
 * message size); datagram sockets: max = the message size, which lets a receive buffer of at
 * least max take the datagram in one recvmsg() (a smaller one is sized first with MSG_PEEK).
 * Both are what a program that knows its message size would set; options already in the
 * address win.
 */
static void ipk_url_for_size(const bench_spec *s, const char *url, char *out, size_t cap)
{
    char sep = strchr(url, '?') ? '&' : '?';
    if (strncmp(url, "mq:", 3) == 0 && strstr(url, "msgsize=") == NULL)
        snprintf(out, cap, "%s%cmaxmsg=10&msgsize=%zu", url, sep, s->size);
    else if ((!strncmp(url, "unixgram:", 9) || !strncmp(url, "unixpacket:", 11) ||
              !strncmp(url, "udp:", 4)) &&
             strstr(url, "max=") == NULL)
        snprintf(out, cap, "%s%cmax=%zu", url, sep, s->size);
    else
        snprintf(out, cap, "%s", url);
}

/* The file behind a temporary address (one the bench made in its directory), or NULL. */
static const char *ipk_temp_file(const bench_spec *s, int i, char *p, size_t cap)
{
    const char *u = i ? s->url2 : s->url;
    const char *body = strchr(u, ':');
    if (body == NULL || strncmp(body + 1, s->tmpdir, strlen(s->tmpdir)) != 0)
        return NULL;
    snprintf(p, cap, "%.*s", (int)strcspn(body + 1, "?"), body + 1);
    return p;
}

static int ipk_prepare(bench_spec *s)
{
    char p[600];
    for (int i = 0; i < 2; i++) /* ftok() needs the file to exist */
        if (strncmp(s->url, "sysv:", 5) == 0 && ipk_temp_file(s, i, p, sizeof p)) {
            int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            if (fd >= 0)
                close(fd);
        }
    return 0;
}

static int ipk_listen_side(bench_side *sd, char *name, size_t cap)
{
    const bench_spec *s = sd->spec;
    ipk_st *st = bench_side_state(sd, sizeof *st);
    if (st == NULL)
        return -1;
    if (s->topo == TOPO_EXEC || (s->topo != TOPO_PAIR && sd->side == BENCH_B))
        return 0;
    char url[600];
    ipk_url_for_size(s, sd->side == BENCH_A ? s->url : s->url2, url, sizeof url);
    int r = ipk_listen(&st->l, url, NULL);
    if (r < 0)
        return ipk_fail(sd, url, r);
    if (strncmp(url, "signal:", 7) == 0) /* signal:self is dialled as signal:PID */
        snprintf(name, cap, "signal:%d%s", (int)getpid(), ipk_query(url));
    else if (strchr(ipk_addr(st->l), '?') == NULL)
        snprintf(name, cap, "%s%s", ipk_addr(st->l), ipk_query(url));
    else
        snprintf(name, cap, "%s", ipk_addr(st->l));
    return 0;
}

/* Pins the calling process to `cpu` (when >= 0). */
static void ipk_pin_self(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int ipk_open_side(bench_side *sd, const char *peer)
{
    const bench_spec *s = sd->spec;
    ipk_st *st = sd->st;
    int r;
    switch (s->topo) {
    case TOPO_EXEC:
        if (sd->side == BENCH_A)
            return 0;
        /* The child (cat) inherits the affinity it is spawned with: side A's CPU. */
        ipk_pin_self(bench_cpu_of(s, BENCH_A));
        r = ipk_dial(&st->out, s->url, NULL);
        ipk_pin_self(bench_cpu_of(s, BENCH_B));
        if (r < 0)
            return ipk_fail(sd, s->url, r);
        st->in = st->out;
        return 0;
    case TOPO_DUPLEX:
        if (sd->side == BENCH_A)
            st->out = st->l;
        else if ((r = ipk_dial(&st->out, peer, NULL)) < 0)
            return ipk_fail(sd, peer, r);
        st->in = st->out;
        return 0;
    case TOPO_CONN:
        if (sd->side == BENCH_A)
            r = ipk_accept(st->l, &st->out, -1);
        else
            r = ipk_dial(&st->out, peer, NULL);
        if (r < 0)
            return ipk_fail(sd, sd->side == BENCH_A ? "accept" : peer, r);
        st->in = st->out;
        return 0;
    }
    if ((r = ipk_dial(&st->out, peer, NULL)) < 0)
        return ipk_fail(sd, peer, r);
    st->in = st->l;
    return 0;
}

static int ipk_send_one(bench_side *sd, const void *buf, size_t len)
{
    ipk_st *st = sd->st;
    int r = ipk_send(st->out, buf, len, -1);
    return r < 0 ? ipk_fail(sd, "send", r) : 0;
}

static long ipk_send_many(bench_side *sd, void *const *bufs, size_t n, size_t len)
{
    ipk_st *st = sd->st;
    if (n > BENCH_BATCH)
        n = BENCH_BATCH;
    for (size_t i = 0; i < n; i++)
        st->iov[i] = (ipk_iov){bufs[i], len};
    long r = ipk_sendv(st->out, st->iov, n, -1);
    return r < 0 ? ipk_fail(sd, "sendv", (int)r) : r;
}

static long ipk_recv_one(bench_side *sd, void *buf, size_t cap)
{
    ipk_st *st = sd->st;
    /* Where datagrams can be lost, a loss ends the run with a message instead of a hang. */
    long r = ipk_recv(st->in, buf, cap, sd->spec->lossy ? 5000 : -1);
    if (r == IPK_ETIMEDOUT)
        return bench_fail(sd, "nothing for 5 s: datagrams lost");
    return r < 0 ? ipk_fail(sd, "recv", (int)r) : r;
}

static void ipk_close_side(bench_side *sd)
{
    ipk_st *st = sd->st;
    if (st == NULL)
        return;
    if (st->out && st->out != st->l)
        ipk_close(st->out);
    if (st->l)
        ipk_close(st->l);
    free(st);
    sd->st = NULL;
}

static void ipk_cleanup(bench_spec *s)
{
    char p[600], mine[64];
    /* Each run starts afresh: a file: log is kept by default, and must not feed the next run
     * the records of this one. */
    for (int i = 0; i < 2; i++)
        if (ipk_temp_file(s, i, p, sizeof p))
            unlink(p);
    /* A side that outlives a failed peer is killed before it closes: the segments and queues of
     * the temporary addresses (named after this process) go here, ENOENT when closed. */
    int n = snprintf(mine, sizeof mine, "/ipkbench-%d-", (int)getpid());
    for (int i = 0; i < 2; i++) {
        const char *u = i ? s->url2 : s->url, *body = strchr(u, ':');
        if (body == NULL || strncmp(body + 1, mine, (size_t)n) != 0)
            continue;
        snprintf(p, sizeof p, "%.*s", (int)strcspn(body + 1, "?"), body + 1);
        if (strncmp(u, "shm:", 4) == 0)
            shm_unlink(p);
        else if (strncmp(u, "mq:", 3) == 0)
            mq_unlink(p);
    }
}

const bench_ops bench_ops_ipckit = {
    .impl = "ipckit",
    .prepare = ipk_prepare,
    .listen = ipk_listen_side,
    .open = ipk_open_side,
    .send = ipk_send_one,
    .sendv = ipk_send_many,
    .recv = ipk_recv_one,
    .close = ipk_close_side,
    .cleanup = ipk_cleanup,
};

/* ---- targets ---- */

/* The default list, in order. Two rows share a scheme: shm: as two one-way rings (pair) and
 * shm: duplex=1 (one conversation), both compared with the shm floors. */
static const struct ipk_def {
    const char *scheme, *label, *mech;
    int topo;
    size_t maxsize;
    int lossy;
} ipk_defs[] = {
    {"unix", "unix", "unix", TOPO_CONN, 0, 0},
    {"unixpacket", "unixpacket", "unixpacket", TOPO_CONN, 0, 0},
    {"unixgram", "unixgram", "unixgram", TOPO_PAIR, 0, 0},
    {"tcp", "tcp", "tcp", TOPO_CONN, 0, 0},
    {"udp", "udp", "udp", TOPO_PAIR, 65507, 1},
    {"fifo", "fifo", "fifo", TOPO_PAIR, 0, 0},
    {"exec", "exec", "pipe", TOPO_EXEC, 0, 0},
    {"mq", "mq", "mq", TOPO_PAIR, 0, 0},
    {"sysv", "sysv", "sysv", TOPO_PAIR, 0, 0},
    {"signal", "signal", "signal", TOPO_PAIR, 8, 0},
    {"shm", "shm", "shm", TOPO_PAIR, 0, 0},
    {"shm", "shm duplex", "shm", TOPO_DUPLEX, 0, 0},
    {"file", "file", "file", TOPO_PAIR, 0, 0},
};
#define IPK_NDEFS (sizeof ipk_defs / sizeof ipk_defs[0])

/* B's inbound address for a one-way scheme, derived from A's. */
static int ipk_derive(const char *scheme, const char *url, char *out, size_t cap)
{
    const char *q = ipk_query(url);
    size_t blen = (size_t)(q - url);
    if (strcmp(scheme, "signal") == 0) {
        snprintf(out, cap, "signal:self%s", q);
        return 0;
    }
    if (strcmp(scheme, "udp") == 0) {
        const char *colon = NULL;
        for (const char *p = url; p < q; p++)
            if (*p == ':')
                colon = p;
        if (colon == NULL || colon < url + 6)
            return -1;
        snprintf(out, cap, "%.*s:0%s", (int)(colon - url), url, q);
        return 0;
    }
    if (strcmp(scheme, "sysv") == 0) {
        char *end;
        long key = strtol(url + 5, &end, 0);
        if (end == q && end != url + 5) {
            snprintf(out, cap, "sysv:%#lx%s", key + 1, q);
            return 0;
        }
    }
    snprintf(out, cap, "%.*s-b%s", (int)blen, url, q);
    return 0;
}

/* Whether the query of `url` sets boolean `key` true (the values the library takes as true). */
static int ipk_query_true(const char *url, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = ipk_query(url); *p; p += strcspn(p, "&")) {
        p++; /* past '?' or '&' */
        if (strncmp(p, key, kl) != 0 || p[kl] != '=')
            continue;
        size_t vl = strcspn(p + kl + 1, "&");
        static const char *const yes[] = {"1", "true", "yes"};
        for (int i = 0; i < 3; i++)
            if (strlen(yes[i]) == vl && strncmp(p + kl + 1, yes[i], vl) == 0)
                return 1;
    }
    return 0;
}

/* The definition for a URL: its scheme's first, or its duplex one when the query asks for
 * duplex=1 and the scheme has one (otherwise the transport judges the option). */
static const struct ipk_def *ipk_def_of(const char *url)
{
    size_t n = strcspn(url, ":");
    const struct ipk_def *d = NULL;
    int duplex = ipk_query_true(url, "duplex");
    for (size_t i = 0; i < IPK_NDEFS; i++) {
        if (strlen(ipk_defs[i].scheme) != n || strncmp(url, ipk_defs[i].scheme, n) != 0)
            continue;
        if (d == NULL)
            d = &ipk_defs[i];
        if (duplex && ipk_defs[i].topo == TOPO_DUPLEX)
            return &ipk_defs[i];
    }
    return d;
}

/* A temporary address (side B's when b) with the query q ("?..."), or, when q is NULL or
 * empty, the definition's own: raw=1 for signal:, duplex=1 for the duplex row. */
static void ipk_temp_url(const struct ipk_def *d, const char *tmpdir, int b, const char *q,
                         char *out, size_t cap)
{
    const char *sfx = d->topo == TOPO_DUPLEX ? "d" : b ? "b" : "a";
    const char *sch = d->scheme;
    char base[400];
    if (q == NULL || strlen(q) < 2)
        q = !strcmp(sch, "signal") ? "?raw=1" : d->topo == TOPO_DUPLEX ? "?duplex=1" : "";
    if (d->topo == TOPO_CONN && !strcmp(sch, "tcp"))
        snprintf(base, sizeof base, "tcp://127.0.0.1:0");
    else if (!strcmp(sch, "udp"))
        snprintf(base, sizeof base, "udp://127.0.0.1:0");
    else if (!strcmp(sch, "mq") || !strcmp(sch, "shm"))
        snprintf(base, sizeof base, "%s:/ipkbench-%d-%s", sch, (int)getpid(), sfx);
    else if (!strcmp(sch, "signal"))
        snprintf(base, sizeof base, "signal:self");
    else if (!strcmp(sch, "exec"))
        snprintf(base, sizeof base, "exec:cat");
    else
        snprintf(base, sizeof base, "%s:%s/%s-%s", sch, tmpdir, sch, sfx);
    snprintf(out, cap, "%s%s", base, q);
}

static bench_spec *ipk_add_def(bench_list *l, const struct ipk_def *d, const char *url,
                               const char *url2)
{
    bench_spec *s = bench_list_add(l, &bench_ops_ipckit, d->label, d->mech);
    if (s == NULL)
        return NULL;
    snprintf(s->url, sizeof s->url, "%s", url);
    snprintf(s->url2, sizeof s->url2, "%s", url2);
    s->topo = d->topo;
    s->lossy = d->lossy;
    s->maxsize = d->maxsize;
    if (!strcmp(d->scheme, "mq"))
        s->maxsize = bench_proc_limit(BENCH_MQ_MSGSIZE_MAX);
    if (!strcmp(d->scheme, "sysv"))
        s->maxsize = bench_proc_limit(BENCH_SYSV_MSGMAX);
    if (!strcmp(d->scheme, "signal") && strstr(url, "raw=1") == NULL)
        s->maxsize = 7; /* the length byte takes one of the sigval's eight */
    if (d->topo == TOPO_EXEC) {
        s->solo = 1;
        s->modes = BENCH_LATENCY; /* cat cannot check a count or a checksum */
    }
    if (!ipk_scheme_built(d->scheme))
        s->skip = "not built in this version";
    return s;
}

int bench_ipk_add(bench_list *l, const char *url, const char *tmpdir)
{
    char a[512], b[512];
    if (url == NULL) {
        for (size_t i = 0; i < IPK_NDEFS; i++) {
            ipk_temp_url(&ipk_defs[i], tmpdir, 0, NULL, a, sizeof a);
            ipk_temp_url(&ipk_defs[i], tmpdir, 1, NULL, b, sizeof b);
            if (ipk_add_def(l, &ipk_defs[i], a, b) == NULL)
                return -1;
        }
        return 0;
    }
    const struct ipk_def *d = ipk_def_of(url);
    if (d == NULL || strlen(url) >= sizeof a) {
        fprintf(stderr, "ipckit bench: %s: not an address of a known scheme\n", url);
        return -1;
    }
    const char *rest = url + strlen(d->scheme);
    if (rest[0] == ':' && (rest[1] == '\0' || rest[1] == '?')) {
        /* "mq:", "shm:?duplex=1": a temporary address, with the options given */
        ipk_temp_url(d, tmpdir, 0, rest + 1, a, sizeof a);
        ipk_temp_url(d, tmpdir, 1, rest + 1, b, sizeof b);
        return ipk_add_def(l, d, a, b) ? 0 : -1;
    }
    snprintf(a, sizeof a, "%s", url);
    if (!strcmp(d->scheme, "signal"))
        snprintf(a, sizeof a, "signal:self%s", ipk_query(url));
    b[0] = '\0';
    if (d->topo == TOPO_PAIR && ipk_derive(d->scheme, url, b, sizeof b) != 0) {
        fprintf(stderr, "ipckit bench: %s: cannot derive a second address from it\n", url);
        return -1;
    }
    return ipk_add_def(l, d, a, b) ? 0 : -1;
}

int bench_ipk_add_as(bench_list *l, const char *url, const char *label, int permsg, unsigned modes)
{
    const struct ipk_def *d = ipk_def_of(url);
    if (d == NULL || d->topo != TOPO_CONN) {
        fprintf(stderr, "ipckit bench: %s: not a connected stream address\n", url);
        return -1;
    }
    bench_spec *s = ipk_add_def(l, d, url, "");
    if (s == NULL)
        return -1;
    s->permsg = permsg;
    snprintf(s->label, sizeof s->label, "%s", label);
    s->modes = modes;
    return 0;
}
