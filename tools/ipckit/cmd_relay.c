/*
 * cmd_relay.c - ipckit relay SRC... SINK: moves messages from one or more sources into one
 * sink, keeping message boundaries whatever the transports are (a POSIX queue into a framed TCP
 * stream, a UDP datagram into a Unix seqpacket socket). With two addresses that are both
 * conversations (sockets, exec:, a duplex shm: ring), replies go back too; with a shared object
 * at either end (queue, FIFO, segment, file, signal) it goes one way, since there the relay
 * could not tell its own messages from its peer's.
 *
 * One thread, one ipk_poller (hub.c) over every source, and over the sink when replies come
 * back: no per-transport case, shm: and sysv: included.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hub.h"

static void relay_usage(FILE *f)
{
    fprintf(f, "usage: ipckit relay [OPTIONS] URL1 [URL...] SINK\n"
               "Moves messages from every URL into SINK (the last address), and with one URL\n"
               "from SINK back to it when both are conversations (stream and datagram sockets,\n"
               "exec, shm: with duplex=1).\n"
               "One message in is one message out: boundaries are kept across any two\n"
               "transports. Priority (mq) and type (sysv) are carried when both ends are of the\n"
               "same kind, and across nats: (as message headers). Options may come before or\n"
               "after the URLs; '--' ends them.\n\n"
               "  -1, --first listen|dial   role at the URLs (default listen)\n"
               "  -2, --second listen|dial  role at SINK (default dial)\n"
               "  -u, --one-way             only into SINK\n"
               "      --once                end when the first peer goes (a listening end\n"
               "                            otherwise takes every peer that connects)\n"
               "  -n, --count N             end after N messages\n"
               "  -t, --timeout MS          end when no message moves for MS ms: status 0 when\n"
               "                            some moved before, 1 when none did (-1: wait);\n"
               "                            also how long a message taken is held for a\n"
               "                            dialled SINK that went away (-1: until it is back)\n"
               "  -v, --verbose             a line on standard error per message\n"
               "  -h, --help\n\n"
               "Exit status: 0 done (count reached, or every source ended), 1 failure or\n"
               "timeout, 2 usage error.\n"
               "Examples: ipckit relay mq:/jobs tcp://127.0.0.1:9000\n"
               "          ipckit relay fifo:/tmp/in sysv:/etc/hosts 'shm:/ring' mq:/all\n");
}

typedef struct relay {
    hub h; /* the sources (ends 0..nsrc-1), and SINK as end nsrc when replies return */
    int nsrc;
    const char *sink_url;
    int sink_listen;
    ipk_chan *sl, *sc; /* SINK: its listener (or NULL) and the channel messages go to */
    ipk_chan *reply;   /* both ways: the source channel that spoke last, where replies go */
    int both_ways, once, verbose, timeout;
    int rc;
    int sink_err;        /* why SINK could not be dialled (sink_accept) */
    ipk_opts *sink_opts; /* flush=0 where SINK would coalesce: see cmd_relay */
    long count, total;   /* messages to move (-1: no end), messages moved */
    double shown_at;     /* when the progress line was last drawn */
    cli_buf buf;
} relay;

/* Whether url names a conversation: each end of it is its own, so replies can go back. A shm:
 * ring is one when it was created with duplex=1, which a dialer need not repeat: the segment's
 * header says (ipk_info shows it). */
static int is_conversation(const char *url)
{
    char scheme[32], info[2048];
    size_t n = strcspn(url, ":");
    if (n >= sizeof scheme)
        return 0;
    memcpy(scheme, url, n);
    scheme[n] = '\0';
    if (ipk_scheme_flags(scheme) & (IPK_SCHEME_STREAM | IPK_SCHEME_DGRAM))
        return 1;
    return (ipk_scheme_flags(scheme) & IPK_SCHEME_QUEUE) && ipk_info(url, info, sizeof info) > 0 &&
           strstr(info, " duplex=1\n") != NULL;
}

static int peer_gone(long r)
{
    return r == IPK_EOF || r == -EPIPE || r == -ECONNRESET || r == IPK_ECLOSED;
}

/* Takes SINK's next peer (a listening SINK whose peer is gone, or that has none yet), or
 * dials SINK (a dialing SINK is dialed when the first message is there for it, as socat does:
 * a relay waiting for its first source does not hold a connection open meanwhile). */
static int sink_accept(relay *R)
{
    int r;
    R->sink_err = 0;
    if (R->sl == NULL) {
        ipk_chan *l = NULL;
        if ((r = cli_open(R->sink_url, R->sink_opts, 0, &l, &R->sc)) != 0) {
            R->sink_err = r;
            return cli_fail("relay", R->sink_url, r);
        }
        if (R->both_ways && (r = hub_adopt(&R->h, R->nsrc, R->sc)) != 0)
            return cli_fail("relay", R->sink_url, r);
        return CLI_OK;
    }
    r = cli_accept("relay", R->sl, &R->sc, R->timeout);
    if (r == CLI_ESTOP)
        return cli_stop_status();
    if (r != 0)
        return cli_fail("relay", R->sink_url, r);
    if (R->verbose)
        fprintf(stderr, "ipckit relay: %s: peer connected\n", ipk_addr(R->sc));
    if (R->both_ways && (r = hub_adopt(&R->h, R->nsrc, R->sc)) != 0)
        return cli_fail("relay", R->sink_url, r);
    return CLI_OK;
}

/* SINK's peer went away: the next message takes the next peer (or dials again) unless --once.
 * -1: go on. */
static int sink_lost(relay *R)
{
    if (R->verbose)
        fprintf(stderr, "ipckit relay: %s: peer gone\n", R->sink_url);
    if (R->both_ways)
        hub_release(&R->h, R->nsrc, R->sc);
    int rc = cli_close("relay", R->sc);
    R->sc = NULL;
    if (rc != CLI_OK)
        return rc;
    return R->once ? CLI_OK : -1;
}

/* Whether a failure to reach SINK may pass: nobody there now (a server restarting). */
static int sink_absent(int r)
{
    return peer_gone(r) || r == -ECONNREFUSED || r == -ENOENT || r == IPK_ETIMEDOUT;
}

/* SINK's peer went away while the relay holds a message taken from a source, and SINK cannot be
 * dialled again at once. The message exists nowhere else, so the relay keeps it and dials SINK
 * again, 100 ms apart doubling to 1 s, until it is there, a signal stops the relay, or
 * --timeout passes. CLI_OK: SINK is back. */
static int sink_retry(relay *R, const char *from_url)
{
    fprintf(stderr, "ipckit relay: %s: holding the message taken from %s; dialling again\n",
            R->sink_url, from_url);
    double give_up = R->timeout >= 0 ? cli_now_us() + R->timeout * 1000.0 : -1;
    for (int nap_ms = 100;; nap_ms = nap_ms < 500 ? nap_ms * 2 : 1000) {
        struct timespec ts = {0, nap_ms * 1000000L}; /* a signal cuts it short: checked below */
        nanosleep(&ts, NULL);
        if (cli_stopped("relay"))
            return cli_stop_status();
        if (give_up >= 0 && cli_now_us() >= give_up)
            return CLI_FAIL;
        ipk_chan *l = NULL;
        int r = cli_open(R->sink_url, R->sink_opts, 0, &l, &R->sc);
        if (r == 0)
            return R->both_ways && (r = hub_adopt(&R->h, R->nsrc, R->sc)) != 0
                       ? cli_fail("relay", R->sink_url, r)
                       : CLI_OK;
        if (!sink_absent(r))
            return cli_fail("relay", R->sink_url, r);
    }
}

/* Sends one message into SINK, taking SINK's next peer when it lost one. -1: sent (or dropped
 * with a message); else the exit status, and the message was not delivered (said on stderr). */
static int into_sink(relay *R, long n, const ipk_msginfo *mi, const ipk_chan *from,
                     const char *from_url)
{
    int rc = -1;
    for (int attempt = 0; rc == -1; attempt++) {
        if (R->sc == NULL) {
            rc = sink_accept(R);
            if (rc != CLI_OK && R->sl == NULL && !R->once && sink_absent(R->sink_err))
                rc = sink_retry(R, from_url);
            if (rc != CLI_OK)
                break;
            rc = -1;
        }
        /* Priority and type mean the same only between ends of one kind; nats: carries them
         * as message headers, so they cross it from and to any kind. */
        int same = strcmp(ipk_scheme(from), ipk_scheme(R->sc)) == 0 ||
                   strcmp(ipk_scheme(from), "nats") == 0 || strcmp(ipk_scheme(R->sc), "nats") == 0;
        int r = cli_send("relay", R->sc, R->buf.p, (size_t)n, same ? mi : NULL, -1);
        if (r == 0)
            return -1;
        if (r == CLI_ESTOP) {
            rc = cli_stop_status();
        } else if (r == -EDESTADDRREQ) {
            /* A datagram listener answers the sender of the last datagram it received; before
             * the first one there is nobody to answer. */
            fprintf(stderr, "ipckit relay: %s: no peer to reply to yet; %ld bytes dropped\n",
                    R->sink_url, n);
            return -1;
        } else if (!peer_gone(r) || attempt >= 4) {
            rc = cli_fail("relay", R->sink_url, r);
        } else {
            rc = sink_lost(R); /* -1: a new peer (or dial) to try the message on */
            if (rc == CLI_OK)  /* --once: no next peer */
                rc = CLI_FAIL;
        }
    }
    fprintf(stderr, "ipckit relay: %s: the message of %ld bytes taken from %s was not delivered\n",
            R->sink_url, n, from_url);
    return rc;
}

/* A reply from SINK goes back to the source channel that spoke last. -1: go on. */
static int back_to_source(relay *R, long n, const ipk_msginfo *mi)
{
    if (R->reply == NULL) {
        fprintf(stderr, "ipckit relay: %s: nobody has spoken yet; %ld bytes of reply dropped\n",
                R->h.end[0].url, n);
        return -1;
    }
    int r = cli_send("relay", R->reply, R->buf.p, (size_t)n, mi, -1);
    if (r == 0)
        return -1;
    if (r == CLI_ESTOP)
        return cli_stop_status();
    if (r == IPK_ENOTSUP || r == -ENOTCONN || r == -EDESTADDRREQ) {
        fprintf(stderr, "ipckit relay: %s: replies cannot go back (%s); relaying one way\n",
                R->h.end[0].url, ipk_strerror(r));
        R->both_ways = 0;
        hub_release(&R->h, R->nsrc, R->sc);
        return -1;
    }
    if (peer_gone(r)) { /* that peer is gone: its reply has nowhere to go */
        R->reply = NULL;
        return -1;
    }
    return cli_fail("relay", R->h.end[0].url, r);
}

/* Before a message is taken from a source: SINK must be there to take it (hub.h). Returns
 * RELAY_NO_SINK, with the exit status kept in R->rc, when it cannot be reached. */
#define RELAY_NO_SINK (-1000000L)
static long sink_ready(void *arg, int end)
{
    relay *R = arg;
    if (R->sc != NULL || (R->both_ways && end == R->nsrc))
        return 0;
    int rc = sink_accept(R);
    if (rc == CLI_OK)
        return 0;
    R->rc = rc;
    return RELAY_NO_SINK;
}

static int relay_loop(relay *R)
{
    for (;;) {
        ipk_msginfo mi;
        int end;
        ipk_chan *from;
        long dropped = R->h.dropped;
        long n = hub_next(&R->h, &R->buf, &mi, &end, &from, R->timeout);
        if (n == CLI_ESTOP)
            return cli_stop_status();
        if (n == IPK_ETIMEDOUT) {
            if (R->total > 0) /* idle after moving messages: a normal end, as socat -T */
                return CLI_OK;
            fprintf(stderr, "ipckit relay: no message for %d ms\n", R->timeout);
            return CLI_FAIL;
        }
        if (R->h.dropped > dropped) { /* channels that ended were closed by the hub */
            if (R->once)
                return CLI_OK;
            if (R->reply != NULL && !hub_has(&R->h, R->reply))
                R->reply = NULL;
            if (R->both_ways && R->sc != NULL && !hub_has(&R->h, R->sc))
                R->sc = NULL; /* SINK's peer is gone: the next message takes a new one */
        }
        if (n == IPK_EOF)
            return CLI_OK;
        if (n == RELAY_NO_SINK)
            return R->rc; /* reported; nothing was taken from the source */
        if (n < 0)
            return cli_fail("relay", "relay", (int)n);
        int rc;
        if (R->both_ways && end == R->nsrc) {
            rc = back_to_source(R, n, &mi);
        } else {
            R->reply = from;
            rc = into_sink(R, n, &mi, from, R->h.end[end].url);
        }
        if (rc != -1)
            return rc;
        if (R->verbose)
            fprintf(stderr, "ipckit relay: %s: %ld bytes\n", R->h.end[end].url, n);
        R->total++;
        if (R->count > 0 && R->total >= R->count)
            return CLI_OK;
        double now = cli_now_us();
        /* A progress line on a terminal, redrawn at most ten times a second. */
        if (!R->verbose && now - R->shown_at > 100000) {
            cli_progress("ipckit relay: %ld messages", R->total);
            R->shown_at = now;
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
    relay R = {.sink_listen = 0, .timeout = -1, .count = -1};
    int one_way = 0, opt, src_listen = 1;
    cli_signals_catch();
    optind = 1;
    while ((opt = getopt_long(argc, argv, "1:2:un:t:vh", lo, NULL)) != -1) {
        switch (opt) {
        case '1':
        case '2':
            if (parse_role(optarg, opt == '1' ? &src_listen : &R.sink_listen) != 0)
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
    int nurl = argc - optind;
    if (nurl < 2)
        return cli_usage_err("relay", "expected at least two URLs, got %d", nurl);
    /* Every address is checked before any end is opened: a typo in the last must not leave the
     * first listening. ipk_info parses without opening anything. */
    for (int i = 0; i < nurl; i++) {
        char probe[1];
        long r = ipk_info(argv[optind + i], probe, sizeof probe);
        if (r < 0)
            return cli_fail("relay", argv[optind + i], (int)r);
    }
    R.nsrc = nurl - 1;
    R.sink_url = argv[argc - 1];
    /* A message the relay has taken from a source counts as moved once SINK's kernel object
     * took it. A coalescing stream (unix:, tcp:) would report a send before writing it, and a
     * peer gone meanwhile would lose it after the relay had let go of it: written through. */
    if (cli_scheme_takes(R.sink_url, "flush") && !cli_url_sets(R.sink_url, "flush") &&
        ((R.sink_opts = ipk_opts_new()) == NULL || ipk_opts_set(R.sink_opts, "flush", "0") != 0))
        return cli_fail("relay", R.sink_url, -ENOMEM);
    int rc = CLI_OK, r = hub_init(&R.h, "relay", nurl);
    R.h.before_take = sink_ready;
    R.h.arg = &R;
    for (int i = 0; i < R.nsrc && r >= 0; i++)
        if ((r = hub_add(&R.h, argv[optind + i], NULL, src_listen)) >= 0 && src_listen && R.verbose)
            fprintf(stderr, "ipckit relay: listening on %s\n", argv[optind + i]);
    if (r < 0)
        rc = cli_fail("relay", R.h.bad ? R.h.bad : "poller", r);
    /* Asked once the source is open: a shm: ring it created says duplex=1 from then on. */
    R.both_ways = rc == CLI_OK && !one_way && nurl == 2 && is_conversation(argv[optind]) &&
                  is_conversation(R.sink_url);
    if (rc == CLI_OK && R.sink_listen &&
        (r = cli_open(R.sink_url, R.sink_opts, 1, &R.sl, &R.sc)) != 0)
        rc = cli_fail("relay", R.sink_url, r);
    if (rc == CLI_OK && R.both_ways) {
        /* SINK joins the poller as one more end, for its replies. */
        hub_end *e = &R.h.end[R.nsrc];
        e->url = R.sink_url;
        e->reg.end = R.nsrc;
        R.h.n++;
        R.h.live++;
        if (R.sc != NULL && (r = hub_adopt(&R.h, R.nsrc, R.sc)) != 0)
            rc = cli_fail("relay", R.sink_url, r);
    }
    if (rc == CLI_OK)
        rc = relay_loop(&R);
    cli_progress_done();
    cli_buf_free(&R.buf);
    /* SINK's channel is closed by the hub when it is one of its ends. */
    if (!R.both_ways && (r = cli_close("relay", R.sc)) != CLI_OK && rc == CLI_OK)
        rc = r;
    if ((r = hub_close(&R.h)) != CLI_OK && rc == CLI_OK)
        rc = r;
    if ((r = cli_close("relay", R.sl)) != CLI_OK && rc == CLI_OK)
        rc = r;
    ipk_opts_free(R.sink_opts);
    return rc;
}
