/*
 * cmd_relay.c - ipckit relay URL1 URL2: moves messages between two addresses, keeping message
 * boundaries whatever the two transports are (a POSIX queue into a framed TCP stream, a UDP
 * datagram into a Unix seqpacket socket). Both directions when both ends are conversations
 * (sockets, exec:); one way, URL1 to URL2, when an end is a shared object (queue, FIFO, segment,
 * file, signal), since there the relay could not tell its own messages from its peer's.
 *
 * One thread, poll(2) on the descriptors of both ends. A message the channel has already
 * buffered does not make its descriptor readable, so ipk_pending() is asked first; ends without
 * a descriptor (shm:, sysv:) are tried every few milliseconds.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define RELAY_TICK_MS 5  /* how often ends without a descriptor are tried */
#define RELAY_BATCH   64 /* messages moved from one end before the other gets a turn */

static void relay_usage(FILE *f)
{
    fprintf(f, "usage: ipckit relay [OPTIONS] URL1 URL2\n"
               "Moves messages from URL1 to URL2, and from URL2 back to URL1 when both are\n"
               "conversations (tcp, unix, unixpacket, unixgram, udp, exec, shm: with duplex=1).\n"
               "One message in is one message out: boundaries are kept across any two\n"
               "transports. Priority (mq) and type (sysv) are carried when both ends are of the\n"
               "same kind, and across nats: (as message headers). Options may come before or\n"
               "after the URLs; '--' ends them.\n\n"
               "  -1, --first listen|dial   role at URL1 (default listen)\n"
               "  -2, --second listen|dial  role at URL2 (default dial)\n"
               "  -u, --one-way             only URL1 -> URL2\n"
               "      --once                end when the first peer goes (a listening end\n"
               "                            otherwise accepts the next connection)\n"
               "  -n, --count N             end after N messages\n"
               "  -t, --timeout MS          end when no message moves for MS ms: status 0 when\n"
               "                            some moved before, 1 when none did (-1: wait)\n"
               "  -v, --verbose             a line on standard error per message\n"
               "  -h, --help\n\n"
               "Exit status: 0 done (count reached, or an end closed), 1 failure or timeout,\n"
               "2 usage error.\n"
               "Example: ipckit relay mq:/jobs tcp://127.0.0.1:9000\n");
}

typedef struct side {
    const char *url;
    int listen;
    ipk_chan *l, *c;
    int duplex; /* each end of the conversation is its own: replies can go back */
} side;

typedef struct relay {
    side s[2];
    int both_ways, once, verbose, timeout;
    int rc;
    long count, total; /* messages to move (-1: no end), messages moved */
    double shown_at;   /* when the progress line was last drawn */
    cli_buf buf;
} relay;

/* Called once the end is open. A shm: ring is a conversation when it was created with
 * duplex=1, which a dialer need not repeat: the segment's header says (ipk_info shows it). */
static int is_duplex(const char *url)
{
    static const char *const conv[] = {
        "tcp:", "unix:", "unixpacket:", "unixgram:", "udp:", "exec:"};
    for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++)
        if (strncmp(url, conv[i], strlen(conv[i])) == 0)
            return 1;
    char info[2048];
    return strncmp(url, "shm:", 4) == 0 && ipk_info(url, info, sizeof info) > 0 &&
           strstr(info, " duplex=1\n") != NULL;
}

static int peer_gone(long r)
{
    return r == IPK_EOF || r == -EPIPE || r == -ECONNRESET || r == IPK_ECLOSED;
}

/* What a step of the relay leads to; on STEP_FAIL the exit code is in R->rc. */
enum step { STEP_ON, STEP_END, STEP_FAIL };

static enum step fail(relay *R, const char *what, int err)
{
    R->rc = cli_fail("relay", what, err);
    return STEP_FAIL;
}

/* Waits for the next peer on a listening end. */
static enum step side_accept(relay *R, side *s)
{
    int r = cli_accept("relay", s->l, &s->c, R->timeout);
    if (r == CLI_ESTOP) {
        R->rc = cli_stop_status();
        return STEP_FAIL;
    }
    if (r != 0)
        return fail(R, s->url, r);
    if (R->verbose)
        fprintf(stderr, "ipckit relay: %s: peer connected\n", ipk_addr(s->c));
    return STEP_ON;
}

/* The peer of s went away: a listening end takes the next one unless --once. */
static enum step side_lost(relay *R, side *s)
{
    if (R->verbose)
        fprintf(stderr, "ipckit relay: %s: peer gone\n", s->url);
    ipk_close(s->c);
    s->c = NULL;
    if (s->l == NULL || R->once)
        return STEP_END;
    return side_accept(R, s);
}

/* Sends one message to side d; a listening end that lost its peer takes the next one and the
 * message goes to it. */
static enum step forward(relay *R, side *d, long n, const ipk_msginfo *mi)
{
    for (int attempt = 0;; attempt++) {
        int r = cli_send("relay", d->c, R->buf.p, (size_t)n, mi, -1);
        if (r == 0)
            return STEP_ON;
        if (r == CLI_ESTOP) {
            R->rc = cli_stop_status();
            return STEP_FAIL;
        }
        if (r == -EDESTADDRREQ) {
            /* A datagram listener answers the sender of the last datagram it received; before
             * the first one there is nobody to answer. */
            fprintf(stderr, "ipckit relay: %s: no peer to reply to yet; %ld bytes dropped\n",
                    d->url, n);
            return STEP_ON;
        }
        if (d == &R->s[0] && (r == IPK_ENOTSUP || r == -ENOTCONN)) {
            /* This end cannot answer its peers: the relay goes on one way. */
            fprintf(stderr, "ipckit relay: %s: replies cannot go back (%s); relaying one way\n",
                    d->url, ipk_strerror(r));
            R->both_ways = 0;
            return STEP_ON;
        }
        if (!peer_gone(r) || attempt > 0)
            return fail(R, d->url, r);
        enum step st = side_lost(R, d);
        if (st != STEP_ON)
            return st;
    }
}

/* Moves up to RELAY_BATCH messages from side i to the other; counts them in *moved. */
static enum step pump(relay *R, int i, int *moved)
{
    side *s = &R->s[i], *d = &R->s[!i];
    /* nats: carries priority and type as headers, so they cross it from any kind. */
    int same = strcmp(ipk_scheme(s->c), ipk_scheme(d->c)) == 0 ||
               strcmp(ipk_scheme(s->c), "nats") == 0 || strcmp(ipk_scheme(d->c), "nats") == 0;
    for (int k = 0; k < RELAY_BATCH; k++) {
        ipk_msginfo mi;
        long n = cli_recv(s->c, &R->buf, &mi, 0);
        if (n == -EAGAIN)
            return STEP_ON;
        if (peer_gone(n))
            return side_lost(R, s);
        if (n < 0)
            return fail(R, s->url, (int)n);
        enum step st = forward(R, d, n, same ? &mi : NULL);
        if (st != STEP_ON)
            return st;
        if (R->verbose)
            fprintf(stderr, "ipckit relay: %s -> %s: %ld bytes\n", s->url, d->url, n);
        (*moved)++;
        R->total++;
        if (R->count > 0 && R->total >= R->count)
            return STEP_END;
    }
    return STEP_ON;
}

/* The poll timeout: 0 when a message is already buffered, a short tick when an end has no
 * descriptor, else the idle timeout. */
static int min_ms(int a, int b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static int relay_loop(relay *R)
{
    double idle_since = cli_now_us();
    for (;;) {
        if (cli_stopped("relay"))
            return cli_stop_status();
        struct pollfd p[2];
        /* A signal between the check above and poll() would not interrupt it: a tick bounds
         * how long it can go unnoticed. */
        int np = 0, wait = min_ms(R->timeout, CLI_TICK_MS);
        for (int i = 0; i < (R->both_ways ? 2 : 1); i++) {
            int fd = ipk_fd(R->s[i].c);
            if (ipk_pending(R->s[i].c))
                wait = 0;
            if (fd < 0)
                wait = min_ms(wait, RELAY_TICK_MS);
            else
                p[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
        if (poll(p, (nfds_t)np, wait) < 0 && errno != EINTR)
            return cli_fail("relay", "poll", -errno);
        int moved = 0;
        /* Every end is tried, whatever poll said: a recv with timeout 0 costs one system call
         * when there is nothing, and this covers buffered messages and ends without a
         * descriptor alike. */
        for (int i = 0; i < (R->both_ways ? 2 : 1); i++) {
            enum step st = pump(R, i, &moved);
            if (st == STEP_END)
                return CLI_OK;
            if (st == STEP_FAIL)
                return R->rc;
        }
        if (moved) {
            idle_since = cli_now_us();
            /* A progress line on a terminal, redrawn at most ten times a second. */
            if (!R->verbose && idle_since - R->shown_at > 100000) {
                cli_progress("ipckit relay: %ld messages", R->total);
                R->shown_at = idle_since;
            }
        } else if (R->timeout >= 0 && cli_now_us() - idle_since >= R->timeout * 1000.0) {
            if (R->total > 0) /* idle after moving messages: a normal end, as socat -T */
                return CLI_OK;
            fprintf(stderr, "ipckit relay: no message for %d ms\n", R->timeout);
            return CLI_FAIL;
        }
    }
}

static int parse_role(const char *s, int *listen)
{
    if (strcmp(s, "listen") == 0)
        *listen = 1;
    else if (strcmp(s, "dial") == 0)
        *listen = 0;
    else
        return -1;
    return 0;
}

int cmd_relay(int argc, char **argv)
{
    static const struct option lo[] = {{"first", required_argument, 0, '1'},
                                       {"second", required_argument, 0, '2'},
                                       {"one-way", no_argument, 0, 'u'},
                                       {"once", no_argument, 0, 'O'},
                                       {"count", required_argument, 0, 'n'},
                                       {"timeout", required_argument, 0, 't'},
                                       {"verbose", no_argument, 0, 'v'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    relay R = {.s = {{.listen = 1}, {.listen = 0}}, .timeout = -1, .count = -1};
    int one_way = 0, opt;
    cli_signals_catch();
    optind = 1;
    while ((opt = getopt_long(argc, argv, "1:2:un:t:vh", lo, NULL)) != -1) {
        switch (opt) {
        case '1':
        case '2':
            if (parse_role(optarg, &R.s[opt - '1'].listen) != 0)
                return cli_usage_err("relay", "%s: expected listen or dial", optarg);
            break;
        case 'u':
            one_way = 1;
            break;
        case 'O':
            R.once = 1;
            break;
        case 'n':
            if (cli_parse_long(optarg, 1, 2000000000L, &R.count) != 0)
                return cli_usage_err("relay", "--count %s: expected a number >= 1", optarg);
            break;
        case 't':
            if (cli_parse_ms(optarg, &R.timeout) != 0)
                return cli_usage_err("relay", "--timeout %s: expected milliseconds or -1", optarg);
            break;
        case 'v':
            R.verbose = 1;
            break;
        case 'h':
            relay_usage(stdout);
            return CLI_OK;
        default:
            relay_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (argc - optind != 2)
        return cli_usage_err("relay", "expected two URLs, got %d", argc - optind);
    /* Both addresses are checked before either end is opened: a typo in the second must not
     * leave the first listening. ipk_info parses without opening anything. */
    for (int i = 0; i < 2; i++) {
        char probe[1];
        long r = ipk_info(argv[optind + i], probe, sizeof probe);
        if (r < 0)
            return cli_fail("relay", argv[optind + i], (int)r);
    }
    int rc = CLI_OK;
    for (int i = 0; i < 2 && rc == CLI_OK; i++) {
        side *s = &R.s[i];
        s->url = argv[optind + i];
        int r = cli_open(s->url, NULL, s->listen, &s->l, &s->c);
        s->duplex = r == 0 && is_duplex(s->url);
        if (r == 0 && s->listen && R.verbose)
            fprintf(stderr, "ipckit relay: listening on %s\n", ipk_addr(s->l ? s->l : s->c));
        if (r != 0)
            rc = cli_fail("relay", s->url, r);
        else if (s->c == NULL && side_accept(&R, s) != STEP_ON)
            rc = R.rc;
    }
    R.both_ways = !one_way && R.s[0].duplex && R.s[1].duplex;
    if (rc == CLI_OK)
        rc = relay_loop(&R);
    cli_progress_done();
    cli_buf_free(&R.buf);
    for (int i = 0; i < 2; i++) {
        int r = cli_close("relay", R.s[i].c);
        if (r != CLI_OK && rc == CLI_OK)
            rc = r;
        if ((r = cli_close("relay", R.s[i].l)) != CLI_OK && rc == CLI_OK)
            rc = r;
    }
    return rc;
}
