/*
 * test_poller.c - ipk_poller between real processes: every scheme in one poller made ready in
 * random orders by other processes, write-readiness of full queues, rings and sockets, 10,000
 * channels, registrations changed from another thread during a wait, peers that close or
 * objects removed while waited on, an EINTR storm, nesting through the poller's descriptor,
 * and the CPU an idle poller uses.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- addresses ---- */

static const char *u_mq(char *b, size_t n, const char *q)
{
    char name[64];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("mq", name);
    snprintf(b, n, "mq:%s%s", name, q);
    return b;
}

static const char *u_shm(char *b, size_t n, const char *q)
{
    char name[64];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("shm", name);
    snprintf(b, n, "shm:%s%s", name, q);
    return b;
}

static const char *u_path(char *b, size_t n, const char *scheme, const char *stem, const char *q)
{
    char path[300];
    ipkt_path(path, sizeof path, stem);
    ipkt_journal("path", path);
    snprintf(b, n, "%s:%s%s", scheme, path, q);
    return b;
}

/* A System V queue keyed by a fresh file; its id is journalled after listen. */
static const char *u_sysv(char *b, size_t n, const char *q)
{
    char path[300];
    ipkt_path(path, sizeof path, "sysv.key");
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    ipkt_journal("path", path);
    snprintf(b, n, "sysv:%s?proj=7%s", path, q);
    return b;
}

static void journal_sysv(const ipk_chan *c)
{
    unsigned key;
    assert_int_equal(sscanf(ipk_addr(c), "sysv:0x%x", &key), 1);
    ipkt_journal_id("msqid", msgget((key_t)key, 0));
}

static ipk_chan *listen_ok(const char *url)
{
    ipk_chan *c = NULL;
    ipkt_ok(ipk_listen(&c, url, NULL));
    return c;
}

/* ---- every scheme at once ---- */

enum { N_SCHEMES = 12, PER_SCHEME = 3 };

typedef struct {
    const char *scheme;
    char url[400];  /* where the sender dials (the listener's resolved address) */
    ipk_chan *lis;  /* the listener in the parent */
    int got;        /* messages received so far */
    int conns;      /* accepted connections (accept schemes) */
    pid_t exec_pid; /* exec: the child that answers SIGUSR1 with a line */
} slot;

static slot g_slots[N_SCHEMES];
static unsigned g_seed;

/* The sender: one message "SCHEME:K" at a time to each scheme, in a random order, each sent
 * with its own dial (a connection-oriented scheme: a fresh connection per message). */
static int sender(void *arg)
{
    (void)arg;
    int order[N_SCHEMES * PER_SCHEME];
    for (int i = 0; i < N_SCHEMES * PER_SCHEME; i++)
        order[i] = i;
    srand(g_seed);
    for (int i = N_SCHEMES * PER_SCHEME - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int seq[N_SCHEMES] = {0};
    for (int i = 0; i < N_SCHEMES * PER_SCHEME; i++) {
        slot *s = &g_slots[order[i] % N_SCHEMES];
        int k = seq[order[i] % N_SCHEMES]++;
        if (strcmp(s->scheme, "exec") == 0) { /* the command answers a signal with a line */
            IPKT_CHECK(kill(s->exec_pid, SIGUSR1) == 0);
            ipkt_msleep(20); /* one signal per line: let the shell run its trap */
            continue;
        }
        char m[64]; /* short: a signal carries 7 bytes */
        int n = snprintf(m, sizeof m, "%c:%d", 'a' + order[i] % N_SCHEMES, k);
        ipk_chan *c;
        IPKT_CHECK(ipk_dial(&c, s->url, NULL) == 0);
        IPKT_CHECK(ipk_send(c, m, (size_t)n, 5000) == 0);
        if (rand() % 2)
            ipkt_msleep(1);
        IPKT_CHECK(ipk_close(c) == 0);
    }
    return 0;
}

static void add(ipk_poller *p, ipk_chan *c, unsigned ev, void *user)
{
    ipkt_ok(ipk_poller_add(p, c, ev, user));
}

static void t_every_scheme(void **state)
{
    (void)state;
    static const char *const schemes[N_SCHEMES] = {"file",       "shm",  "exec", "fifo",
                                                   "mq",         "sysv", "unix", "unixgram",
                                                   "unixpacket", "tcp",  "udp",  "signal"};
    /* The signal transport takes its signal out of normal delivery; SIGUSR1 is for exec's
     * child, and the parent must not die of it. */
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    char u[400];
    for (int i = 0; i < N_SCHEMES; i++) {
        slot *s = &g_slots[i];
        memset(s, 0, sizeof *s);
        s->scheme = schemes[i];
        const char *sc = schemes[i];
        if (!strcmp(sc, "file"))
            u_path(u, sizeof u, "file", "log", "");
        else if (!strcmp(sc, "shm"))
            u_shm(u, sizeof u, "?size=64k&multi=1");
        else if (!strcmp(sc, "exec"))
            snprintf(u, sizeof u,
                     "exec:trap 'echo exec:line' USR1; echo ready; while :; do sleep 1 "
                     "& wait; done?framing=line");
        else if (!strcmp(sc, "fifo"))
            u_path(u, sizeof u, "fifo", "fifo", "?persist=1");
        else if (!strcmp(sc, "mq"))
            u_mq(u, sizeof u, "");
        else if (!strcmp(sc, "sysv"))
            u_sysv(u, sizeof u, "");
        else if (!strcmp(sc, "unix") || !strcmp(sc, "unixgram") || !strcmp(sc, "unixpacket"))
            u_path(u, sizeof u, sc, sc, "");
        else if (!strcmp(sc, "tcp") || !strcmp(sc, "udp"))
            snprintf(u, sizeof u, "%s://127.0.0.1:0", sc);
        else
            snprintf(u, sizeof u, "signal:self?sig=RTMIN+3");
        s->lis = listen_ok(u);
        if (!strcmp(sc, "sysv"))
            journal_sysv(s->lis);
        if (!strcmp(sc, "exec")) { /* the shell has set its trap once it says so */
            char line[16];
            assert_int_equal(ipk_recv(s->lis, line, sizeof line, 10000), 5);
            ipkt_ok(ipk_peer(s->lis, &s->exec_pid, NULL, NULL));
        }
        if (!strcmp(sc, "signal"))
            snprintf(s->url, sizeof s->url, "signal:%d?sig=RTMIN+3", (int)getpid());
        else
            snprintf(s->url, sizeof s->url, "%s", ipk_addr(s->lis));
        add(p, s->lis, IPK_POLLIN, s);
    }
    /* shm: reports end of stream whenever no producer is attached; the sender's producers come
     * and go, so the test stays attached as one more (the ring's documented EOF rule). */
    ipk_chan *keep_shm;
    ipkt_ok(ipk_dial(&keep_shm, g_slots[1].url, NULL));
    char one[4];
    ipkt_ok(ipk_send(keep_shm, "x", 1, 0)); /* a producer attaches at its first send */
    assert_int_equal(ipk_recv(g_slots[1].lis, one, sizeof one, 0), 1);
    g_seed = (unsigned)getpid();
    pid_t snd = ipkt_spawn(sender, NULL);
    int total = 0;
    ipk_pollev ev[8];
    while (total < N_SCHEMES * PER_SCHEME) {
        int n = ipk_poller_wait(p, ev, 8, 20000);
        if (n < 0) {
            print_error("wait: %s (%s) after %d messages\n", ipk_strerror(n), ipk_errmsg(), total);
            for (int i = 0; i < N_SCHEMES; i++)
                print_error("  %s: %d\n", g_slots[i].scheme, g_slots[i].got);
        }
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            slot *s = ev[i].user;
            ipk_chan *c = ev[i].chan;
            assert_true(ev[i].events & IPK_POLLIN);
            if (c == s->lis && (ipk_scheme_flags(s->scheme) & IPK_SCHEME_ACCEPT)) {
                ipk_chan *a;
                ipkt_ok(ipk_accept(c, &a, 0));
                add(p, a, IPK_POLLIN, s);
                s->conns++;
                continue;
            }
            char buf[128];
            long m = ipk_recv(c, buf, sizeof buf - 1, 0);
            if (m == IPK_EOF && c != s->lis) { /* a sender's connection ended */
                ipk_close(c);
                continue;
            }
            if (m == -EAGAIN)
                continue; /* a file-log writer's stamp or a spurious hint: nothing to take */
            if (m < 0)
                print_error("%s: recv %s (%s)\n", s->scheme, ipk_strerror((int)m), ipk_errmsg());
            assert_true(m >= 0);
            buf[m] = '\0';
            /* From the right channel, each message once and in order per scheme. */
            char want[64];
            if (!strcmp(s->scheme, "exec"))
                snprintf(want, sizeof want, "exec:line");
            else
                snprintf(want, sizeof want, "%c:%d", 'a' + (int)(s - g_slots), s->got);
            assert_string_equal(buf, want);
            s->got++;
            total++;
        }
    }
    assert_int_equal(ipkt_wait(snd), 0);
    for (int i = 0; i < N_SCHEMES; i++) {
        assert_int_equal(g_slots[i].got, PER_SCHEME);
        if (ipk_scheme_flags(g_slots[i].scheme) & IPK_SCHEME_ACCEPT)
            assert_int_equal(g_slots[i].conns, PER_SCHEME);
    }
    /* Nothing left anywhere: a wait that cannot block says so. */
    int n;
    while ((n = ipk_poller_wait(p, ev, 8, 0)) > 0)
        for (int i = 0; i < n; i++) {
            char buf[64];
            long m = ipk_recv(ev[i].chan, buf, sizeof buf, 0);
            assert_true(m == IPK_EOF || m == -EAGAIN);
            if (m == IPK_EOF)
                ipk_close(ev[i].chan);
        }
    assert_int_equal(n, -EAGAIN);
    ipk_close(keep_shm);
    for (int i = 0; i < N_SCHEMES; i++)
        ipk_close(g_slots[i].lis);
    ipk_poller_free(p);
}

/* ---- write-readiness ---- */

static char g_url[400];

static int drain_one(void *arg)
{
    (void)arg;
    ipkt_msleep(50);
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    char buf[4096];
    IPKT_CHECK(ipk_recv(c, buf, sizeof buf, 5000) >= 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* Fills the channel with non-blocking sends until it refuses, checks that the poller does not
 * call it writable, lets another process take one message, and waits for writability. */
static void full_then_writable(ipk_chan *snd, size_t msg)
{
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    add(p, snd, IPK_POLLOUT, NULL);
    ipk_pollev ev[2];
    assert_int_equal(ipk_poller_wait(p, ev, 2, 0), 1);
    assert_true(ev[0].events & IPK_POLLOUT);
    char *buf = calloc(1, msg);
    int sent = 0, r;
    while ((r = ipk_send(snd, buf, msg, 0)) == 0)
        sent++;
    assert_int_equal(r, -EAGAIN);
    assert_true(sent > 0);
    ipkt_expect(ipk_poller_wait(p, ev, 2, 0), -EAGAIN);
    pid_t d = ipkt_spawn(drain_one, NULL);
    /* The drained message may leave less room than a poller calls writable (a ring wants a
     * quarter or 4 KiB): drain until it says so. */
    int n = ipk_poller_wait(p, ev, 2, 10000);
    assert_int_equal(n, 1);
    assert_ptr_equal(ev[0].chan, snd);
    assert_true(ev[0].events & IPK_POLLOUT);
    assert_int_equal(ipkt_wait(d), 0);
    free(buf);
    ipk_poller_free(p);
}

static void t_writable_mq(void **state)
{
    (void)state;
    ipk_chan *l = listen_ok(u_mq(g_url, sizeof g_url, "?maxmsg=2&msgsize=64"));
    full_then_writable(l, 64);
    ipk_close(l);
}

static void t_writable_sysv(void **state)
{
    (void)state;
    ipk_chan *l = listen_ok(u_sysv(g_url, sizeof g_url, ""));
    journal_sysv(l);
    /* A small queue: msg_qbytes lowered (the owner may lower it). */
    unsigned key;
    sscanf(ipk_addr(l), "sysv:0x%x", &key);
    int id = msgget((key_t)key, 0);
    struct msqid_ds ds;
    assert_int_equal(msgctl(id, IPC_STAT, &ds), 0);
    ds.msg_qbytes = 1024;
    assert_int_equal(msgctl(id, IPC_SET, &ds), 0);
    full_then_writable(l, 256);
    ipk_close(l);
}

static void t_writable_shm(void **state)
{
    (void)state;
    ipk_chan *l = listen_ok(u_shm(g_url, sizeof g_url, "?size=16k"));
    ipk_chan *d;
    ipkt_ok(ipk_dial(&d, g_url, NULL));
    /* Messages of 4 KiB: one taken frees a quarter of the ring. */
    full_then_writable(d, 4000);
    ipk_close(d);
    ipk_close(l);
}

static int drain_unix(void *arg)
{
    ipk_chan *a = arg;
    ipkt_msleep(50);
    char buf[65536];
    int got = 0;
    while (ipk_recv(a, buf, sizeof buf, got ? 500 : 5000) >= 0)
        got++;
    IPKT_CHECK(got > 0);
    return 0;
}

static void t_writable_unix(void **state)
{
    (void)state;
    ipk_chan *l = listen_ok(u_path(g_url, sizeof g_url, "unix", "s", ""));
    ipk_chan *d, *a;
    ipkt_ok(ipk_dial(&d, ipk_addr(l), NULL));
    ipkt_ok(ipk_accept(l, &a, 5000));
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    add(p, d, IPK_POLLOUT, NULL);
    char buf[16384] = {0};
    int r;
    while ((r = ipk_send(d, buf, sizeof buf, 0)) == 0)
        ;
    assert_int_equal(r, -EAGAIN);
    ipk_pollev ev[1];
    /* A timed-out frame is finished first by the next call; until the socket drains the
     * poller must not call it writable. */
    ipkt_expect(ipk_poller_wait(p, ev, 1, 0), -EAGAIN);
    pid_t k = ipkt_spawn(drain_unix, a);
    assert_int_equal(ipk_poller_wait(p, ev, 1, 10000), 1);
    assert_true(ev[0].events & IPK_POLLOUT);
    assert_int_equal(ipkt_wait(k), 0);
    ipk_poller_free(p);
    ipk_close(d);
    ipk_close(a);
    ipk_close(l);
}

/* ---- 10,000 channels ---- */

enum { MANY = 10000 };
static char g_many_url[128];

static int poke_one(void *arg)
{
    (void)arg;
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_many_url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "poke", 4, 5000) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

static void t_ten_thousand(void **state)
{
    (void)state;
    /* Raise the soft limit only when it is short, and never lower the hard one: valgrind
     * refuses any setrlimit(RLIMIT_NOFILE) that changes the hard limit. */
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    int short_of = rl.rlim_cur < MANY + 256;
    if (short_of) {
        rl.rlim_cur = MANY + 256;
        if (rl.rlim_max < rl.rlim_cur)
            rl.rlim_max = rl.rlim_cur;
    }
    if (short_of && setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        print_error("RLIMIT_NOFILE %llu: cannot raise it to %d\n", (unsigned long long)rl.rlim_max,
                    MANY + 256);
        fail();
    }
    ipk_chan **c = calloc(MANY, sizeof *c);
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    char tag[64];
    ipkt_name(tag, sizeof tag, "");
    for (int i = 0; i < MANY; i++) {
        char u[128];
        snprintf(u, sizeof u, "unixgram:@%s-%d", tag, i);
        c[i] = listen_ok(u);
        add(p, c[i], IPK_POLLIN, (void *)(intptr_t)i);
    }
    ipk_pollev ev[16];
    ipkt_expect(ipk_poller_wait(p, ev, 16, 0), -EAGAIN);
    int pick[3] = {MANY - 1, 0, 4242};
    for (int k = 0; k < 3; k++) {
        snprintf(g_many_url, sizeof g_many_url, "unixgram:@%s-%d", tag, pick[k]);
        assert_int_equal(ipkt_wait(ipkt_spawn(poke_one, NULL)), 0);
        assert_int_equal(ipk_poller_wait(p, ev, 16, 5000), 1);
        assert_int_equal((int)(intptr_t)ev[0].user, pick[k]);
        assert_ptr_equal(ev[0].chan, c[pick[k]]);
        char buf[8];
        assert_int_equal(ipk_recv(c[pick[k]], buf, sizeof buf, 0), 4);
    }
    /* Removing half of them, by deletion and by close, leaves the rest working. */
    for (int i = 0; i < MANY; i += 2) {
        if (i % 4)
            ipkt_ok(ipk_poller_del(p, c[i]));
        ipk_close(c[i]);
        c[i] = NULL;
    }
    snprintf(g_many_url, sizeof g_many_url, "unixgram:@%s-%d", tag, 9999);
    assert_int_equal(ipkt_wait(ipkt_spawn(poke_one, NULL)), 0);
    assert_int_equal(ipk_poller_wait(p, ev, 16, 5000), 1);
    assert_ptr_equal(ev[0].chan, c[9999]);
    ipk_poller_free(p);
    for (int i = 0; i < MANY; i++)
        ipk_close(c[i]);
    free(c);
}

/* ---- registrations changed by another thread during a wait ---- */

typedef struct {
    ipk_poller *p;
    ipk_chan *add, *del;
} racer;

static void *racer_main(void *arg)
{
    racer *r = arg;
    ipkt_msleep(100);
    ipk_poller_del(r->p, r->del); /* removed while the other thread waits: never reported */
    ipkt_msleep(50);
    ipk_poller_add(r->p, r->add, IPK_POLLIN, r->add); /* ready already: the wait returns it */
    return NULL;
}

static void t_other_thread(void **state)
{
    (void)state;
    char u1[400], u2[400];
    /* shm: a checked channel that must be armed by the waiting thread once it appears. */
    ipk_chan *ready = listen_ok(u_shm(u1, sizeof u1, "?size=16k"));
    ipk_chan *w;
    ipkt_ok(ipk_dial(&w, u1, NULL));
    ipkt_ok(ipk_send(w, "here", 4, 0));
    ipk_chan *gone = listen_ok(u_mq(u2, sizeof u2, ""));
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    add(p, gone, IPK_POLLIN, gone);
    racer r = {p, ready, gone};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, racer_main, &r), 0);
    ipk_pollev ev[4];
    int n = ipk_poller_wait(p, ev, 4, 10000);
    pthread_join(t, NULL);
    assert_int_equal(n, 1);
    assert_ptr_equal(ev[0].chan, ready);
    assert_ptr_equal(ev[0].user, ready);
    /* A second waiter at the same time is refused, not corrupted. */
    ipkt_expect(ipk_poller_del(p, gone), -ENOENT);
    ipk_close(w);
    ipk_close(ready); /* closing a channel that is in a poller takes it out */
    ipkt_expect(ipk_poller_wait(p, ev, 4, 0), -EAGAIN);
    ipk_poller_free(p);
    ipk_close(gone);
}

/* ---- peers that leave, objects removed ---- */

/* A Unix listener, a child running peer() that dials it (g_url), the accepted channel, and a
 * poller waiting on that channel; returns the child's pid. */
static pid_t unix_peer(int (*peer)(void *), ipk_chan **l, ipk_chan **a, ipk_poller **p)
{
    *l = listen_ok(u_path(g_url, sizeof g_url, "unix", "s", ""));
    snprintf(g_url, sizeof g_url, "%s", ipk_addr(*l));
    pid_t k = ipkt_spawn(peer, NULL);
    ipkt_ok(ipk_accept(*l, a, 5000));
    ipkt_ok(ipk_poller_new(p));
    add(*p, *a, IPK_POLLIN, NULL);
    return k;
}

static int close_soon(void *arg)
{
    (void)arg;
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "last", 4, 1000) == 0);
    ipkt_msleep(100);
    return ipk_close(c) == 0 ? 0 : 1;
}

static int rmid_soon(void *arg)
{
    (void)arg;
    ipkt_msleep(100);
    unsigned key;
    IPKT_CHECK(sscanf(g_url, "sysv:0x%x", &key) == 1);
    IPKT_CHECK(msgctl(msgget((key_t)key, 0), IPC_RMID, NULL) == 0);
    return 0;
}

static void t_peer_gone(void **state)
{
    (void)state;
    ipk_chan *l, *a;
    ipk_poller *p;
    pid_t k = unix_peer(close_soon, &l, &a, &p);
    ipk_pollev ev[1];
    char buf[16];
    assert_int_equal(ipk_poller_wait(p, ev, 1, 5000), 1);
    assert_int_equal(ipk_recv(a, buf, sizeof buf, 0), 4);
    /* Then the close: reported readable (and hang-up), and the receive says end of stream. */
    assert_int_equal(ipk_poller_wait(p, ev, 1, 5000), 1);
    assert_true(ev[0].events & IPK_POLLIN);
    ipkt_expect(ipk_recv(a, buf, sizeof buf, 0), IPK_EOF);
    assert_int_equal(ipkt_wait(k), 0);
    ipk_close(a);
    ipk_close(l);

    /* A System V queue removed under the poller: reported, and the receive says why. */
    ipk_chan *q = listen_ok(u_sysv(g_url, sizeof g_url, "&keep=1"));
    journal_sysv(q);
    snprintf(g_url, sizeof g_url, "%s", ipk_addr(q));
    add(p, q, IPK_POLLIN, NULL);
    k = ipkt_spawn(rmid_soon, NULL);
    assert_int_equal(ipk_poller_wait(p, ev, 1, 5000), 1);
    assert_ptr_equal(ev[0].chan, q);
    assert_true(ev[0].events & IPK_POLLHUP);
    ipkt_expect(ipk_recv(q, buf, sizeof buf, 0), IPK_EOF);
    assert_int_equal(ipkt_wait(k), 0);
    ipk_close(q);
    ipk_poller_free(p);
}

/* ---- EINTR ---- */

static void on_usr2(int sig)
{
    (void)sig;
}

static int storm(void *arg)
{
    pid_t target = *(pid_t *)arg;
    struct timespec ts = {0, ipkt_slow() ? 2000000 : 50000};
    for (int i = 0; i < (ipkt_slow() ? 200 : 4000); i++) {
        kill(target, SIGUSR2);
        nanosleep(&ts, NULL);
    }
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "after", 5, 1000) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

static void t_eintr_storm(void **state)
{
    (void)state;
    struct sigaction sa = {.sa_handler = on_usr2}; /* no SA_RESTART: every call is cut */
    sigaction(SIGUSR2, &sa, NULL);
    char u[400];
    ipk_chan *q = listen_ok(u_mq(u, sizeof u, ""));
    ipk_chan *s = listen_ok(u_shm(g_url, sizeof g_url, "?size=16k"));
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    add(p, q, IPK_POLLIN, NULL);
    add(p, s, IPK_POLLIN, NULL);
    pid_t me = getpid();
    pid_t k = ipkt_spawn(storm, &me);
    ipk_pollev ev[2];
    /* Interrupted thousands of times, the wait neither returns EINTR nor misses the message. */
    int n = ipk_poller_wait(p, ev, 2, 30000);
    assert_int_equal(n, 1);
    assert_ptr_equal(ev[0].chan, s);
    char buf[8];
    assert_int_equal(ipk_recv(s, buf, sizeof buf, 0), 5);
    assert_int_equal(ipkt_wait(k), 0);
    ipk_poller_free(p);
    ipk_close(s);
    ipk_close(q);
}

/* ---- nesting in a foreign loop ---- */

static int send_two(void *arg)
{
    (void)arg;
    ipkt_msleep(50);
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    IPKT_CHECK(ipk_send(c, "one", 3, 1000) == 0);
    IPKT_CHECK(ipk_send(c, "two", 3, 1000) == 0);
    return ipk_close(c) == 0 ? 0 : 1;
}

/* A foreign loop (plain poll(2) here) sleeps on the poller's descriptor: it becomes readable
 * when a shm: message arrives (no descriptor of its own), stays readable while something is
 * ready, and goes quiet after the wait that says -EAGAIN. */
static void t_nested(void **state)
{
    (void)state;
    ipk_chan *s = listen_ok(u_shm(g_url, sizeof g_url, "?size=16k"));
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    add(p, s, IPK_POLLIN, NULL);
    int fd = ipk_poller_fd(p);
    assert_true(fd >= 0);
    ipk_pollev ev[1];
    ipkt_expect(ipk_poller_wait(p, ev, 1, 0), -EAGAIN); /* arms */
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 0), 0);
    pid_t k = ipkt_spawn(send_two, NULL);
    int got = 0;
    while (got < 2) {
        assert_int_equal(poll(&pf, 1, 10000), 1);
        int n;
        while ((n = ipk_poller_wait(p, ev, 1, 0)) > 0) {
            char buf[8];
            long m = ipk_recv(s, buf, sizeof buf, 0);
            if (m >= 0)
                got++;
            else if (m == IPK_EOF) /* the sender closed: end of stream is news too */
                ipkt_ok(ipk_poller_del(p, s));
            else
                assert_int_equal(m, -EAGAIN);
        }
        assert_int_equal(n, -EAGAIN);
    }
    assert_int_equal(ipkt_wait(k), 0);
    /* The sender has gone: its close is news too, unless the loop above saw it already. */
    int n;
    while ((n = ipk_poller_wait(p, ev, 1, 0)) > 0) {
        char buf[8];
        assert_int_equal(ipk_recv(s, buf, sizeof buf, 0), IPK_EOF);
        ipkt_ok(ipk_poller_del(p, s));
    }
    assert_int_equal(n, -EAGAIN);
    /* Everything taken: after the -EAGAIN the descriptor is quiet. */
    assert_int_equal(poll(&pf, 1, 0), 0);
    /* A System V queue has no wake-up line: the descriptor must still become readable when a
     * message arrives there (the poller's timer runs while it is armed for a foreign loop). */
    char su[400];
    ipk_chan *q = listen_ok(u_sysv(su, sizeof su, ""));
    journal_sysv(q);
    add(p, q, IPK_POLLIN, NULL);
    ipkt_expect(ipk_poller_wait(p, ev, 1, 0), -EAGAIN);
    ipk_chan *qs;
    ipkt_ok(ipk_dial(&qs, ipk_addr(q), NULL));
    ipkt_ok(ipk_send(qs, "late", 4, 0));
    assert_int_equal(poll(&pf, 1, 10000), 1);
    assert_int_equal(ipk_poller_wait(p, ev, 1, 0), 1);
    assert_ptr_equal(ev[0].chan, q);
    ipk_close(qs);
    ipk_close(q);
    ipk_poller_free(p);
    ipk_close(s);
}

/* ---- a stream frame buffered in user space ---- */

static int two_frames(void *arg)
{
    (void)arg;
    ipk_chan *c;
    IPKT_CHECK(ipk_dial(&c, g_url, NULL) == 0);
    ipk_iov m[2] = {{"first", 5}, {"second", 6}};
    IPKT_CHECK(ipk_sendv(c, m, 2, 1000) == 2); /* one write: both frames arrive together */
    ipkt_msleep(200);
    return ipk_close(c) == 0 ? 0 : 1;
}

static void t_pending_in_user_space(void **state)
{
    (void)state;
    ipk_chan *l, *a;
    ipk_poller *p;
    pid_t k = unix_peer(two_frames, &l, &a, &p);
    ipk_pollev ev[1];
    char buf[16];
    assert_int_equal(ipk_poller_wait(p, ev, 1, 5000), 1);
    /* One writev of two small frames is one segment on a Unix stream socket: the first
     * receive reads both into the channel's buffer. */
    assert_int_equal(ipk_recv(a, buf, sizeof buf, 0), 5);
    /* The second frame is in the channel's buffer, not the socket: still readable. */
    assert_true(ipk_pending(a));
    assert_int_equal(ipk_poller_wait(p, ev, 1, 0), 1);
    assert_int_equal(ipk_recv(a, buf, sizeof buf, 0), 6);
    assert_int_equal(ipkt_wait(k), 0);
    ipk_poller_free(p);
    ipk_close(a);
    ipk_close(l);
}

/* ---- idle ---- */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Times this process went to sleep of its own accord: each is one wake-up of an idle poller. A
 * count, unlike CPU time, does not grow when another process loads the machine (a preempted
 * process is switched involuntarily; a late timer fires fewer times, not more). */
static long voluntary_switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_nvcsw;
}

static long ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* The most wake-ups the documented back-off allows in ms milliseconds: the look at a System V
 * queue starts 50 us after activity and doubles up to one every 5 ms (7 steps to get there),
 * with 10% for timer rounding. A poller stuck at its first step would wake 100 times as often. */
static long max_idle_wakes(long ms)
{
    return ms / 5 + ms / 50 + 7;
}

/* A poller over shm, sysv, mq and unix channels with nothing arriving for 3 s sleeps between
 * looks at the System V queue, which back off to one every 5 ms: at most ~200 wake-ups a
 * second, blocking in ipk_poller_wait or nested in a foreign loop. (CPU time is printed, not
 * asserted: on a shared two-CPU machine another process's burst changes it.) */
static void t_idle(void **state)
{
    (void)state;
    char u[4][400];
    ipk_chan *c[4];
    c[0] = listen_ok(u_shm(u[0], sizeof u[0], "?size=16k"));
    c[1] = listen_ok(u_sysv(u[1], sizeof u[1], ""));
    journal_sysv(c[1]);
    c[2] = listen_ok(u_mq(u[2], sizeof u[2], ""));
    c[3] = listen_ok(u_path(u[3], sizeof u[3], "unixgram", "g", ""));
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    for (int i = 0; i < 4; i++)
        add(p, c[i], IPK_POLLIN, NULL);
    ipk_pollev ev[4];
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    double t0 = cpu_seconds();
    long v0 = voluntary_switches();
    ipkt_expect(ipk_poller_wait(p, ev, 4, 3000), IPK_ETIMEDOUT);
    long wakes = voluntary_switches() - v0, ms = ms_since(&start);
    print_message("idle poller: %ld wake-ups in %ld ms, %.3f s of CPU\n", wakes, ms,
                  cpu_seconds() - t0);
    assert_true(wakes <= max_idle_wakes(ms));
    /* The same nested in a foreign loop: poll(2) on the descriptor of a fresh poller, and a
     * wait with timeout 0 whenever it is readable (the System V timer ticks there, from 50 us,
     * and must back off as in a blocking wait). */
    ipk_poller_free(p);
    ipkt_ok(ipk_poller_new(&p));
    for (int i = 0; i < 4; i++)
        add(p, c[i], IPK_POLLIN, NULL);
    int fd = ipk_poller_fd(p);
    ipkt_expect(ipk_poller_wait(p, ev, 4, 0), -EAGAIN);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    t0 = cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &start);
    long nested = 0;
    for (;;) {
        long left = 3000 - ms_since(&start);
        if (left <= 0)
            break;
        if (poll(&pf, 1, (int)left) == 1) {
            nested++;
            assert_int_equal(ipk_poller_wait(p, ev, 4, 0), -EAGAIN);
        }
    }
    ms = ms_since(&start);
    print_message("nested idle poller: %ld wake-ups in %ld ms, %.3f s of CPU\n", nested, ms,
                  cpu_seconds() - t0);
    assert_true(nested > 0); /* the timer does tick for the System V queue */
    assert_true(nested <= max_idle_wakes(ms));
    ipk_poller_free(p);
    for (int i = 0; i < 4; i++)
        ipk_close(c[i]);
}

/* ---- bad arguments ---- */

static void t_bad_args(void **state)
{
    (void)state;
    ipk_poller *p;
    ipkt_ok(ipk_poller_new(&p));
    char u[400];
    ipk_chan *q = listen_ok(u_mq(u, sizeof u, ""));
    ipkt_expect(ipk_poller_add(p, q, 0, NULL), -EINVAL);
    ipkt_expect(ipk_poller_add(p, q, 0x80, NULL), -EINVAL);
    ipkt_expect(ipk_poller_add(NULL, q, IPK_POLLIN, NULL), -EINVAL);
    ipkt_ok(ipk_poller_add(p, q, IPK_POLLIN, NULL));
    ipkt_expect(ipk_poller_add(p, q, IPK_POLLIN, NULL), -EEXIST);
    ipkt_ok(ipk_poller_mod(p, q, IPK_POLLIN | IPK_POLLOUT, q));
    ipk_pollev ev[1];
    assert_int_equal(ipk_poller_wait(p, ev, 1, 0), 1); /* an empty queue is writable */
    assert_int_equal(ev[0].events, IPK_POLLOUT);
    assert_ptr_equal(ev[0].user, q);
    ipkt_expect(ipk_poller_wait(p, ev, 0, 0), -EINVAL);
    ipkt_ok(ipk_poller_del(p, q));
    ipkt_expect(ipk_poller_del(p, q), -ENOENT);
    ipkt_expect(ipk_poller_mod(p, q, IPK_POLLIN, NULL), -ENOENT);
    /* A fifo writer does not receive; a listener of a connection scheme does not send. */
    ipk_chan *f = listen_ok(u_path(u, sizeof u, "fifo", "f", ""));
    ipk_chan *fw;
    ipkt_ok(ipk_dial(&fw, ipk_addr(f), NULL));
    ipkt_expect(ipk_poller_add(p, fw, IPK_POLLIN, NULL), IPK_ENOTSUP);
    ipk_chan *l = listen_ok(u_path(u, sizeof u, "unix", "s", ""));
    ipkt_expect(ipk_poller_add(p, l, IPK_POLLOUT, NULL), IPK_ENOTSUP);
    ipk_poller_free(p);
    ipk_close(q);
    ipk_close(fw);
    ipk_close(f);
    ipk_close(l);
}

IPKT_MAIN(cmocka_unit_test(t_every_scheme), cmocka_unit_test(t_writable_mq),
          cmocka_unit_test(t_writable_sysv), cmocka_unit_test(t_writable_shm),
          cmocka_unit_test(t_writable_unix), cmocka_unit_test(t_ten_thousand),
          cmocka_unit_test(t_other_thread), cmocka_unit_test(t_peer_gone),
          cmocka_unit_test(t_eintr_storm), cmocka_unit_test(t_nested),
          cmocka_unit_test(t_pending_in_user_space), cmocka_unit_test(t_idle),
          cmocka_unit_test(t_bad_args))
