/*
 * serve_all.c - the guide's closing chapter: one process serving every mechanism at once. A
 * FIFO, a POSIX message queue, a System V queue, a Unix socket with as many clients as connect,
 * a shared-memory ring and SIGTERM all wait in one ipk_poller, the select/poll/epoll of the
 * guide over channels of any kind (shm: and sysv: included, which have no descriptor).
 *
 * Every message is printed on standard output as "[SOURCE] MESSAGE"; a socket client's message
 * is also echoed back to it. SIGTERM (taken as a message: signal:self, a signalfd, no handler)
 * ends it gracefully: every channel is closed, so the objects it created are removed - except a
 * queue that still holds messages nobody received (ipk_close() never destroys those; it says so).
 *
 * Run: ./serve_all [URL...]   (default: the six below)
 *      echo hi | ipckit send mq:/serve_all;   ipckit send unix:/tmp/serve_all.sock hello
 *      kill %1
 * Any address the library knows works: a connection listener (tcp:, unix:) has its clients
 * echoed, anything else is read from.
 */
#define _DEFAULT_SOURCE 1
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

static const char *const defaults[] = {
    "fifo:/tmp/serve_all.fifo", "mq:/serve_all",          "sysv:0x5e7a11",
    "unix:/tmp/serve_all.sock", "shm:/serve_all?multi=1", "signal:self?sig=TERM",
};

#define ECHO_MS 1000 /* a client that does not read its echo within this is dropped */
#define PARK_MS 100  /* a ring without producers is looked at this often (see park) */

enum kind { READ, LISTENER, CLIENT, STOP };

/* One channel in the poller; its address is the user pointer's name. */
typedef struct source {
    ipk_chan *c;
    enum kind kind;
    int parked;
    char name[300];
    struct source *next;
} source;

static source *sources;
static ipk_poller *poller;
static unsigned char *buf;
static size_t cap = 64 << 10;

static source *add(ipk_chan *c, enum kind kind, const char *name)
{
    source *s = calloc(1, sizeof *s);
    if (s == NULL) {
        fputs("serve_all: out of memory\n", stderr);
        exit(EXIT_FAILURE);
    }
    s->c = c;
    s->kind = kind;
    size_t n = strlen(name); /* kept for messages: a longer name is shown cut short */
    if (n >= sizeof s->name)
        n = sizeof s->name - 1;
    memcpy(s->name, name, n);
    s->name[n] = '\0';
    check(ipk_poller_add(poller, c, IPK_POLLIN, s), s->name);
    s->next = sources;
    sources = s;
    return s;
}

/* Closes the channel (which also takes it out of the poller) and forgets it. */
static void drop(source *s)
{
    source **p = &sources;
    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
    long waiting = ipk_undelivered(s->c);
    int r = ipk_close(s->c);
    if (waiting > 0)
        fprintf(stderr, "serve_all: %s: %ld message(s) still wait: left in place\n", s->name,
                waiting);
    else if (r < 0)
        fprintf(stderr, "serve_all: %s: close: %s\n", s->name, ipk_strerror(r));
    free(s);
}

/* A listener and what it listens on: a connection listener (echo), a signal (stop), or a
 * channel to read from. */
static void open_source(const char *url)
{
    ipk_opts *o = ipk_opts_new();
    if (o == NULL) {
        fputs("serve_all: out of memory\n", stderr);
        exit(EXIT_FAILURE);
    }
    if (strncmp(url, "fifo:", 5) == 0)
        check(ipk_opts_set(o, "persist", "1"), url);
    ipk_chan *c;
    check(ipk_listen(&c, url, o), url);
    ipk_opts_free(o);
    unsigned f = ipk_scheme_flags(ipk_scheme(c));
    add(c, (f & IPK_SCHEME_ACCEPT) ? LISTENER : (f & IPK_SCHEME_SIGNAL) ? STOP : READ, ipk_addr(c));
}

/* Receives one message into buf (grown when one does not fit): its length, or a code. */
static long receive(source *s, ipk_msginfo *mi)
{
    for (;;) {
        long n = ipk_recvx(s->c, buf, cap, mi, 0);
        if (n != IPK_EMSGSIZE)
            return n;
        size_t need = ipk_needed(s->c) > cap ? ipk_needed(s->c) : cap * 2;
        unsigned char *b = realloc(buf, need);
        if (b == NULL)
            return -ENOMEM;
        buf = b;
        cap = need;
    }
}

/*
 * A shared-memory ring says end of stream once every producer that attached has closed, and a
 * poller reports that as readable for as long as it lasts. A server outlives its producers, so
 * such a ring leaves the poller and is looked at every PARK_MS until a producer sends again.
 * (A FIFO has persist=1 for this; the other queues have no end of stream.)
 */
static double parked_at;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void park(source *s)
{
    check(ipk_poller_del(poller, s->c), s->name);
    s->parked = 1;
    parked_at = now_ms();
}

/* Back into the poller, which reports them at once if they are still at end of stream. */
static void unpark(void)
{
    for (source *s = sources; s; s = s->next)
        if (s->parked) {
            check(ipk_poller_add(poller, s->c, IPK_POLLIN, s), s->name);
            s->parked = 0;
        }
    parked_at = 0;
}

/* Whatever the source holds now (up to 64 messages, so that no source starves the others).
 * Returns 1 when the signal came. */
static int serve(source *s)
{
    static unsigned clients;
    for (int i = 0; i < 64; i++) {
        if (s->kind == LISTENER) {
            ipk_chan *peer;
            int r = ipk_accept(s->c, &peer, 0);
            if (r == -EAGAIN || r == -ECONNABORTED)
                return 0;
            check(r, s->name);
            char name[320];
            snprintf(name, sizeof name, "%s #%u", s->name, ++clients);
            add(peer, CLIENT, name);
            continue;
        }
        ipk_msginfo mi = IPK_MSGINFO_INIT;
        long n = receive(s, &mi);
        if (n == -EAGAIN)
            return 0;
        if (n < 0 && s->kind == CLIENT) { /* IPK_EOF: it left; anything else: it broke */
            if (n != IPK_EOF)
                fprintf(stderr, "serve_all: %s: %s\n", s->name, ipk_strerror((int)n));
            drop(s);
            return 0;
        }
        if (n == IPK_EOF && s->kind == READ) {
            park(s);
            return 0;
        }
        check(n, s->name);
        if (s->kind == STOP) {
            fprintf(stderr, "serve_all: signal %d from pid %d: closing\n", mi.signo, (int)mi.pid);
            return 1;
        }
        printf("[%s] %.*s\n", s->name, (int)n, (const char *)buf);
        if (s->kind == CLIENT && ipk_send(s->c, buf, (size_t)n, ECHO_MS) != 0) {
            fprintf(stderr, "serve_all: %s: echo: %s: dropped\n", s->name, ipk_errmsg());
            drop(s);
            return 0;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line per message, as it happens */
    buf = malloc(cap);
    check(buf ? ipk_poller_new(&poller) : -ENOMEM, "poller");
    size_t n = argc > 1 ? (size_t)argc - 1 : sizeof defaults / sizeof defaults[0];
    for (size_t i = 0; i < n; i++)
        open_source(argc > 1 ? argv[i + 1] : defaults[i]);
    fprintf(stderr, "serve_all: ready, %zu channels in one poller\n", n);
    for (int stop = 0; !stop;) {
        ipk_pollev ev[32];
        double left = parked_at > 0 ? parked_at + PARK_MS - now_ms() : -1;
        int k =
            ipk_poller_wait(poller, ev, 32, parked_at > 0 ? (left > 0 ? (int)left + 1 : 0) : -1);
        if (k == IPK_ETIMEDOUT || k == -EAGAIN)
            k = 0;
        check(k, "wait");
        if (parked_at > 0 && now_ms() >= parked_at + PARK_MS)
            unpark();
        for (int i = 0; i < k && !stop; i++)
            stop = serve(ev[i].user);
    }
    /* Graceful: clients first, then what this process created (removed unless messages wait
     * in it). */
    for (int pass = 0; pass < 2; pass++)
        for (source *s = sources, *nx; s; s = nx) {
            nx = s->next;
            if ((s->kind == CLIENT) == (pass == 0))
                drop(s);
        }
    ipk_poller_free(poller);
    free(buf);
    return 0;
}
