/*
 * cmd_send.c - ipckit send URL [MSG...]: messages from the arguments, or from standard input
 * (one per line, the whole input as one message, or 4-byte big-endian length-prefixed frames).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void send_usage(FILE *f)
{
    fprintf(f,
            "usage: ipckit send [OPTIONS] URL [MSG...]\n"
            "Sends each MSG as one message; without MSG, reads standard input.\n"
            "Options may come anywhere; '--' ends them, so that a MSG may start with '-'.\n\n"
            "  -s, --stdin lines|whole|framed\n"
            "                            one message per line (default), all of the input as\n"
            "                            one message, or 4-byte big-endian length-prefixed frames\n"
            "  -c, --count N             send the MSG arguments N times (default 1)\n"
            "  -i, --interval MS         pause between messages\n"
            "  -t, --timeout MS          give up on a message after MS ms (-1: wait, default)\n"
            "  -p, --prio N              mq: priority of the messages\n"
            "  -T, --type N              sysv: message type (> 0)\n"
            "  -o, --option KEY=VALUE    a transport option (same as ?KEY=VALUE in the URL)\n"
            "  -l, --listen              listen on URL (accept one peer) instead of dialling it\n"
            "  -d, --dial                dial URL (default); a queue (mq:, sysv:), file log\n"
            "                            (file:) or shm: ring that does not exist yet is\n"
            "                            created (?create=1), and stays for its consumer\n"
            "  -h, --help\n\n"
            "Exit status: 0 all sent, 1 failure or timeout, 2 usage error.\n"
            "Example: ipckit send mq:/jobs 'first job' 'second job'\n");
}

struct send_ctx {
    ipk_chan *c;
    ipk_msginfo mi;
    const ipk_msginfo *mip;
    int timeout;
    long interval_ms;
    long sent;
};

static int send_one(struct send_ctx *s, const void *p, size_t n)
{
    if (s->sent > 0 && s->interval_ms > 0) {
        struct timespec ts = {s->interval_ms / 1000, (s->interval_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !cli_stopped("send"))
            ;
    }
    int r = cli_send("send", s->c, p, n, s->mip, s->timeout);
    if (r == CLI_ESTOP)
        return cli_stop_status();
    if (r != 0)
        return cli_fail("send", ipk_addr(s->c), r);
    s->sent++;
    return 0;
}

/* Standard input, cut into messages as mode says, each sent as it is complete. */
static int send_stdin(struct send_ctx *s, enum cli_in_mode mode)
{
    cli_in in;
    cli_in_init(&in, 0, mode);
    int rc = 0;
    while (rc == 0) {
        const char *p;
        size_t n;
        int k = cli_in_next(&in, &p, &n);
        if (k == 1) {
            rc = send_one(s, p, n);
        } else if (k == CLI_IN_CUT) {
            fprintf(stderr, "ipckit send: %s\n", cli_in_cut_msg(&in));
            rc = CLI_FAIL;
        } else if (in.eof) {
            break;
        } else if ((k = cli_in_fill(&in)) < 0 && k != -EINTR) {
            rc = cli_fail("send", "standard input", k);
        } else if (cli_stopped("send")) {
            rc = cli_stop_status();
        }
    }
    cli_in_free(&in);
    return rc;
}

int cmd_send(int argc, char **argv)
{
    static const struct option lo[] = {{"stdin", required_argument, 0, 's'},
                                       {"count", required_argument, 0, 'c'},
                                       {"interval", required_argument, 0, 'i'},
                                       {"timeout", required_argument, 0, 't'},
                                       {"prio", required_argument, 0, 'p'},
                                       {"type", required_argument, 0, 'T'},
                                       {"option", required_argument, 0, 'o'},
                                       {"listen", no_argument, 0, 'l'},
                                       {"dial", no_argument, 0, 'd'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    struct send_ctx s = {.timeout = -1};
    enum cli_in_mode mode = CLI_IN_LINES;
    long count = 1, v;
    int listen = 0, user_create = 0, opt, rc = CLI_USAGE;
    ipk_opts *o = ipk_opts_new();
    if (o == NULL)
        return cli_fail("send", "options", -ENOMEM);
    cli_signals_catch();
    optind = 1;
    while ((opt = getopt_long(argc, argv, "s:c:i:t:p:T:o:ldh", lo, NULL)) != -1) {
        user_create |= opt == 'o' && strncmp(optarg, "create=", 7) == 0;
        switch (opt) {
        case 's':
            if (cli_parse_in_mode(optarg, &mode) != 0) {
                rc = cli_usage_err("send", "--stdin %s: expected lines, whole or framed", optarg);
                goto out;
            }
            break;
        case 'c':
            if (cli_parse_long(optarg, 1, 1000000000, &count) != 0) {
                rc = cli_usage_err("send", "--count %s: expected a number >= 1", optarg);
                goto out;
            }
            break;
        case 'i':
            if (cli_parse_long(optarg, 0, 86400000, &s.interval_ms) != 0) {
                rc = cli_usage_err("send", "--interval %s: expected milliseconds", optarg);
                goto out;
            }
            break;
        case 't':
            if (cli_parse_ms(optarg, &s.timeout) != 0) {
                rc = cli_usage_err("send", "--timeout %s: expected milliseconds or -1", optarg);
                goto out;
            }
            break;
        case 'p':
            if (cli_parse_long(optarg, 0, 32767, &v) != 0) {
                rc = cli_usage_err("send", "--prio %s: expected 0..32767", optarg);
                goto out;
            }
            s.mi.prio = (unsigned)v;
            s.mip = &s.mi;
            break;
        case 'T':
            if (cli_parse_long(optarg, 1, 2147483647L, &v) != 0) {
                rc = cli_usage_err("send", "--type %s: expected a number > 0", optarg);
                goto out;
            }
            s.mi.type = v;
            s.mip = &s.mi;
            break;
        case 'h':
            send_usage(stdout);
            rc = CLI_OK;
            goto out;
        default:
            if ((rc = cli_chan_opt("send", opt, optarg, o, &listen)) > 0)
                goto out;
            if (rc < 0) {
                send_usage(stderr);
                rc = CLI_USAGE;
                goto out;
            }
            rc = CLI_USAGE;
        }
    }
    if (optind >= argc) {
        rc = cli_usage_err("send", "missing URL");
        goto out;
    }
    const char *url = argv[optind++];
    /* A producer may start before any consumer: on a queue (mq:, sysv:) or a file log send
     * creates it when it is absent, without owning it, so it and its messages stay for the
     * consumer (whose listener then owns a queue and removes it once it is empty). */
    if (!listen && !user_create && cli_scheme_takes(url, "create") && !cli_url_sets(url, "create"))
        ipk_opts_set(o, "create", "1");
    ipk_chan *l = NULL;
    int r = cli_open(url, o, listen, &l, &s.c);
    if (r != 0) {
        rc = cli_fail("send", url, r);
        goto out;
    }
    if (s.c == NULL && (r = cli_accept("send", l, &s.c, s.timeout)) != 0) {
        rc = r == CLI_ESTOP ? cli_stop_status() : cli_fail("send", url, r);
        cli_close("send", l);
        goto out;
    }
    rc = 0;
    if (optind < argc) {
        for (long k = 0; k < count && rc == 0; k++)
            for (int i = optind; i < argc && rc == 0; i++)
                rc = send_one(&s, argv[i], strlen(argv[i]));
    } else {
        rc = send_stdin(&s, mode);
    }
    /* Closing flushes what is buffered (a failure there is a failure to send) and reaps an
     * exec: child, whose failure is the command's. */
    r = cli_close("send", s.c);
    if (rc == CLI_OK)
        rc = r;
    if ((r = cli_close("send", l)) != CLI_OK && rc == CLI_OK)
        rc = r;
out:
    ipk_opts_free(o);
    return rc;
}
