/*
 * cmd_recv.c - ipckit recv URL...: receives messages from one or more addresses at once (one
 * ipk_poller over all of them, hub.c) and writes them to standard output.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hub.h"

static void recv_usage(FILE *f)
{
    fprintf(f,
            "usage: ipckit recv [OPTIONS] URL...\n"
            "Receives messages from every URL at once and writes them to standard output.\n"
            "With several URLs each message says where it came from: a text or hex line\n"
            "starts with \"[URL] \", a JSON object has \"source\". Options may come before or\n"
            "after the URLs; '--' ends them.\n\n"
            "  -n, --count N             exit after N messages (default: until every URL has\n"
            "                            reached its end of stream)\n"
            "  -t, --timeout MS          end when no message comes for MS ms: status 0 when\n"
            "                            some came before, 1 when none did (-1: wait, default)\n"
            "  -f, --format FMT          text (one line per message, default), hex, json (one\n"
            "                            object per line, with priority/type/sender; \"data\" as\n"
            "                            UTF-8 text, or \"data_base64\" when it is not UTF-8), or\n"
            "                            raw (the bytes as they are, no separator), or framed\n"
            "                            (a 4-byte big-endian length, then the bytes: what\n"
            "                            'send -s framed' reads, so boundaries survive a pipe)\n"
            "  -o, --option KEY=VALUE    a transport option (same as ?KEY=VALUE in the URL)\n"
            "  -l, --listen              listen on the URLs (default); a connection-oriented\n"
            "                            listener takes every peer that connects\n"
            "  -d, --dial                dial URL instead of listening on it\n"
            "  -h, --help\n\n"
            "Exit status: 0 done (count reached or end of stream), 1 failure or timeout, or\n"
            "standard output failed (at most the message being written is lost), 2 usage error.\n"
            "Examples: ipckit recv -n 1 --format json mq:/jobs\n"
            "          ipckit recv fifo:/tmp/f mq:/jobs 'shm:/ring' unix:/tmp/s.sock\n");
}

int cmd_recv(int argc, char **argv)
{
    static const struct option lo[] = {
        {"count", required_argument, 0, 'n'},  {"timeout", required_argument, 0, 't'},
        {"format", required_argument, 0, 'f'}, {"option", required_argument, 0, 'o'},
        {"listen", no_argument, 0, 'l'},       {"dial", no_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    long count = -1;
    int timeout = -1, listen = 1, opt, rc = CLI_USAGE;
    enum cli_fmt fmt = CLI_FMT_TEXT;
    ipk_opts *o = ipk_opts_new();
    if (o == NULL)
        return cli_fail("recv", "options", -ENOMEM);
    cli_signals_catch();
    optind = 1;
    while ((opt = getopt_long(argc, argv, "n:t:f:o:ldh", lo, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (cli_parse_long(optarg, 1, 2000000000L, &count) != 0) {
                rc = cli_usage_err("recv", "--count %s: expected a number >= 1", optarg);
                goto out;
            }
            break;
        case 't':
            if (cli_parse_ms(optarg, &timeout) != 0) {
                rc = cli_usage_err("recv", "--timeout %s: expected milliseconds or -1", optarg);
                goto out;
            }
            break;
        case 'f':
            if (cli_parse_fmt(optarg, &fmt) != 0) {
                rc = cli_usage_err("recv", "--format %s: expected text, hex, json, raw or framed",
                                   optarg);
                goto out;
            }
            break;
        case 'h':
            recv_usage(stdout);
            rc = CLI_OK;
            goto out;
        default:
            if ((rc = cli_chan_opt("recv", opt, optarg, o, &listen)) > 0)
                goto out;
            if (rc < 0) {
                recv_usage(stderr);
                rc = CLI_USAGE;
                goto out;
            }
            rc = CLI_USAGE;
        }
    }
    int nurl = argc - optind;
    if (nurl < 1) {
        rc = cli_usage_err("recv", "missing URL");
        goto out;
    }
    if (nurl > 1 && (fmt == CLI_FMT_RAW || fmt == CLI_FMT_FRAMED)) {
        rc = cli_usage_err("recv", "--format raw or framed cannot say which URL a message came "
                                   "from; use one URL, or text, hex or json");
        goto out;
    }
    cli_out_watch();
    hub h;
    int r = hub_open(&h, "recv", argv + optind, nurl, o, listen);
    if (r != 0) {
        rc = cli_fail("recv", h.bad ? h.bad : "poller", r);
        hub_close(&h);
        goto out;
    }
    cli_buf b = {0};
    long got = 0;
    rc = CLI_OK;
    while (count < 0 || got < count) {
        ipk_msginfo mi;
        int end;
        ipk_chan *from;
        long n = hub_next(&h, &b, &mi, &end, &from, timeout);
        if (n == CLI_ESTOP) {
            rc = cli_stop_status();
            break;
        }
        if (n == IPK_EOF && count < 0)
            break;
        if (n == IPK_ETIMEDOUT && got > 0) /* idle after data: a normal end, as socat -T */
            break;
        if (n < 0) {
            rc = cli_fail("recv", nurl == 1 ? argv[optind] : "recv", (int)n);
            break;
        }
        cli_print_msg(fmt, b.p, (size_t)n, &mi, nurl > 1 ? h.end[end].url : NULL);
        if ((rc = cli_out_flush("recv")) != CLI_OK)
            break;
        got++;
    }
    cli_buf_free(&b);
    if ((r = hub_close(&h)) != CLI_OK && rc == CLI_OK)
        rc = r;
out:
    ipk_opts_free(o);
    return rc;
}
