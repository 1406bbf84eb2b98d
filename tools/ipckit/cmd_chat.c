/*
 * cmd_chat.c - ipckit chat URL: a conversation from a shell, as socat's STDIO. Lines (or frames)
 * from standard input are sent as messages; every message that comes back is written to
 * standard output as it arrives. For the conversational transports: unix, unixpacket,
 * unixgram, tcp, udp, exec, shm with duplex=1.
 *
 * One thread, poll(2) on standard input and the channel's descriptor (a channel without one,
 * shm:, is tried every tick). When standard input ends, the sending direction is shut down
 * where the transport has one (a stream: exec:cat sees its end of input), and replies are
 * still taken until none came for --linger MS, or until the peer closes.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CHAT_NOFD_TICK_MS 5 /* how often a channel without a descriptor is tried */

static void chat_usage(FILE *f)
{
    fprintf(f, "usage: ipckit chat [OPTIONS] URL\n"
               "A conversation from a shell (as socat STDIO): each line of standard input is sent\n"
               "as one message, and every message received is written to standard output.\n"
               "For unix, unixpacket, unixgram, tcp, udp, exec and shm: with duplex=1.\n"
               "Options may come before or after URL; '--' ends them.\n\n"
               "  -s, --stdin lines|framed|whole\n"
               "                            one message per line (default), 4-byte big-endian\n"
               "                            length-prefixed frames, or all of the input as one\n"
               "  -f, --format FMT          how replies are written: text (default), hex, json,\n"
               "                            raw or framed (as recv --format)\n"
               "  -w, --linger MS           after standard input ends, end when no reply came for\n"
               "                            MS (default 500; -1: only when the peer closes)\n"
               "  -o, --option KEY=VALUE    a transport option (same as ?KEY=VALUE in the URL)\n"
               "  -l, --listen              listen on URL and talk with the first peer\n"
               "  -d, --dial                dial URL (default)\n"
               "  -h, --help\n\n"
               "Exit status: 0 done (input ended, or the peer closed), 1 failure, 2 usage error,\n"
               "128+N ended by signal N.\n"
               "Example: printf 'hello\\nworld\\n' | ipckit chat 'exec:cat'\n");
}

typedef struct chat {
    ipk_chan *c;
    cli_in in;
    cli_buf b;
    enum cli_fmt fmt;
    int linger;
    double quiet_end; /* after input ended: when to stop waiting for replies (0: not yet) */
} chat;

/* Sends every complete message standard input holds. CLI_OK, or an exit status. */
static int chat_send(chat *t)
{
    const char *p;
    size_t n;
    int k;
    while ((k = cli_in_next(&t->in, &p, &n)) == 1) {
        int r = cli_send("chat", t->c, p, n, NULL, -1);
        if (r == CLI_ESTOP)
            return cli_stop_status();
        if (r != 0)
            return cli_fail("chat", ipk_addr(t->c), r);
    }
    if (k == CLI_IN_CUT) {
        fprintf(stderr, "ipckit chat: %s\n", cli_in_cut_msg(&t->in));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Reads standard input once. At its end, closes the sending direction where there is one. */
static int chat_input(chat *t)
{
    int r = cli_in_fill(&t->in);
    if (r < 0 && r != -EINTR && r != -EAGAIN)
        return cli_fail("chat", "standard input", r);
    if ((r = chat_send(t)) != CLI_OK || !t->in.eof)
        return r;
    int s = ipk_shutdown(t->c, 1000);
    if (s != 0 && s != IPK_ENOTSUP)
        return cli_fail("chat", ipk_addr(t->c), s);
    t->quiet_end = t->linger < 0 ? -1 : cli_now_us() + t->linger * 1000.0;
    return CLI_OK;
}

/* Writes every message already there. -1 when the peer has closed, else CLI_OK or a status. */
static int chat_replies(chat *t)
{
    for (;;) {
        ipk_msginfo mi;
        long n = cli_recv(t->c, &t->b, &mi, 0);
        if (n == -EAGAIN)
            return CLI_OK;
        if (n == IPK_EOF)
            return -1;
        if (n < 0)
            return cli_fail("chat", ipk_addr(t->c), (int)n);
        if (t->quiet_end > 0) /* input has ended: wait --linger again after each reply */
            t->quiet_end = cli_now_us() + t->linger * 1000.0;
        cli_print_msg(t->fmt, t->b.p, (size_t)n, &mi, NULL);
        int r = cli_out_flush("chat");
        if (r != CLI_OK)
            return r;
    }
}

static int chat_loop(chat *t)
{
    for (;;) {
        if (cli_stopped("chat"))
            return cli_stop_status();
        struct pollfd p[2];
        int np = 0, fd = ipk_fd(t->c), wait = CLI_TICK_MS;
        if (!t->in.eof)
            p[np++] = (struct pollfd){.fd = t->in.fd, .events = POLLIN};
        if (fd >= 0)
            p[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
        else
            wait = CHAT_NOFD_TICK_MS;
        if (ipk_pending(t->c))
            wait = 0;
        if (poll(p, (nfds_t)np, wait) < 0 && errno != EINTR)
            return cli_fail("chat", "poll", -errno);
        int r;
        if (!t->in.eof && p[0].revents && (r = chat_input(t)) != CLI_OK)
            return r;
        if ((r = chat_replies(t)) != CLI_OK)
            return r < 0 ? CLI_OK : r;
        if (t->quiet_end > 0 && cli_now_us() >= t->quiet_end)
            return CLI_OK;
    }
}

int cmd_chat(int argc, char **argv)
{
    static const struct option lo[] = {
        {"stdin", required_argument, 0, 's'},  {"format", required_argument, 0, 'f'},
        {"linger", required_argument, 0, 'w'}, {"option", required_argument, 0, 'o'},
        {"listen", no_argument, 0, 'l'},       {"dial", no_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    chat t = {.fmt = CLI_FMT_TEXT, .linger = 500};
    enum cli_in_mode mode = CLI_IN_LINES;
    int listen = 0, opt, rc = CLI_USAGE;
    ipk_opts *o = ipk_opts_new();
    if (o == NULL)
        return cli_fail("chat", "options", -ENOMEM);
    cli_signals_catch();
    optind = 1;
    while ((opt = getopt_long(argc, argv, "s:f:w:o:ldh", lo, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (cli_parse_in_mode(optarg, &mode) != 0) {
                rc = cli_usage_err("chat", "--stdin %s: expected lines, framed or whole", optarg);
                goto out;
            }
            break;
        case 'f':
            if (cli_parse_fmt(optarg, &t.fmt) != 0) {
                rc = cli_usage_err("chat", "--format %s: expected text, hex, json, raw or framed",
                                   optarg);
                goto out;
            }
            break;
        case 'w':
            if (cli_parse_ms(optarg, &t.linger) != 0) {
                rc = cli_usage_err("chat", "--linger %s: expected milliseconds or -1", optarg);
                goto out;
            }
            break;
        case 'h':
            chat_usage(stdout);
            rc = CLI_OK;
            goto out;
        default:
            if ((rc = cli_chan_opt("chat", opt, optarg, o, &listen)) > 0)
                goto out;
            if (rc < 0) {
                chat_usage(stderr);
                rc = CLI_USAGE;
                goto out;
            }
            rc = CLI_USAGE;
        }
    }
    if (optind != argc - 1) {
        rc = cli_usage_err("chat", optind >= argc ? "missing URL" : "one URL only");
        goto out;
    }
    const char *url = argv[optind];
    ipk_chan *l = NULL;
    cli_out_watch();
    int r = cli_open(url, o, listen, &l, &t.c);
    if (r == 0 && t.c == NULL && (r = cli_accept("chat", l, &t.c, -1)) == CLI_ESTOP) {
        rc = cli_stop_status();
    } else if (r != 0) {
        rc = cli_fail("chat", url, r);
    } else {
        cli_in_init(&t.in, STDIN_FILENO, mode);
        rc = chat_loop(&t);
        cli_in_free(&t.in);
    }
    cli_buf_free(&t.b);
    if ((r = cli_close("chat", t.c)) != CLI_OK && rc == CLI_OK)
        rc = r;
    if ((r = cli_close("chat", l)) != CLI_OK && rc == CLI_OK)
        rc = r;
out:
    ipk_opts_free(o);
    return rc;
}
