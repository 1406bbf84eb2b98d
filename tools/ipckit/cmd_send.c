/*
 * cmd_send.c - ipckit send URL [MSG...]: messages from the arguments, or from standard input.
 */
#define _GNU_SOURCE 1
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>

#include "cli.h"

static void send_usage(FILE *f)
{
    fprintf(f,
            "usage: ipckit send [OPTIONS] URL [MSG...]\n"
            "Sends each MSG as one message; without MSG, reads standard input.\n\n"
            "  --stdin=lines|whole|framed  one message per line (default), all of the input as\n"
            "                            one message, or 4-byte big-endian length-prefixed frames\n"
            "  -c, --count N             send the messages N times (default 1)\n"
            "  -i, --interval MS         pause between messages\n"
            "  -t, --timeout MS          give up on a message after MS ms (-1: wait, default)\n"
            "  -p, --prio N              mq: priority;  --type N  sysv: message type\n"
            "  -o, --option KEY=VALUE    a transport option (same as ?KEY=VALUE in the URL)\n"
            "  -l, --listen | -d, --dial listen on URL instead of dialling it (default: dial)\n"
            "  -h, --help\n");
}

struct send_ctx {
    ipk_chan *c;
    ipk_msginfo mi;
    int timeout;
    long interval_ms;
};

static int send_one(struct send_ctx *s, const void *p, size_t n)
{
    int r = ipk_sendx(s->c, p, n, &s->mi, s->timeout);
    if (r != 0)
        return cli_fail("send", ipk_addr(s->c), r);
    if (s->interval_ms > 0) {
        struct timespec ts = {s->interval_ms / 1000, (s->interval_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    return 0;
}

static int send_stdin(struct send_ctx *s, const char *mode)
{
    if (strcmp(mode, "whole") == 0) {
        size_t cap = 1 << 16, len = 0;
        char *buf = malloc(cap);
        size_t k;
        while (buf && (k = fread(buf + len, 1, cap - len, stdin)) > 0) {
            len += k;
            if (len == cap) {
                char *nb = realloc(buf, cap *= 2);
                if (nb == NULL) {
                    free(buf);
                    buf = NULL;
                }
                buf = nb;
            }
        }
        if (buf == NULL) {
            fprintf(stderr, "ipckit send: out of memory\n");
            return CLI_FAIL;
        }
        int r = send_one(s, buf, len);
        free(buf);
        return r;
    }
    if (strcmp(mode, "framed") == 0) {
        unsigned char h[4];
        while (fread(h, 1, 4, stdin) == 4) {
            size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
            char *buf = malloc(n ? n : 1);
            if (buf == NULL || fread(buf, 1, n, stdin) != n) {
                free(buf);
                fprintf(stderr, "ipckit send: standard input ended inside a frame\n");
                return CLI_FAIL;
            }
            int r = send_one(s, buf, n);
            free(buf);
            if (r)
                return r;
        }
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int r = 0;
    while (r == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        r = send_one(s, line, (size_t)n);
    }
    free(line);
    return r;
}

int cmd_send(int argc, char **argv)
{
    static const struct option lo[] = {{"stdin", required_argument, 0, 'S'},
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
    const char *mode = "lines";
    long count = 1;
    int listen = 0, opt;
    ipk_opts *o = ipk_opts_new();
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:i:t:p:o:ldh", lo, NULL)) != -1) {
        char *eq;
        switch (opt) {
        case 'S':
            mode = optarg;
            if (strcmp(mode, "lines") && strcmp(mode, "whole") && strcmp(mode, "framed")) {
                fprintf(stderr, "ipckit send: --stdin=%s: expected lines, whole or framed\n", mode);
                goto usage;
            }
            break;
        case 'c':
            count = strtol(optarg, NULL, 10);
            if (count < 1)
                goto usage;
            break;
        case 'i':
            s.interval_ms = strtol(optarg, NULL, 10);
            break;
        case 't':
            if (cli_parse_ms(optarg, &s.timeout) != 0)
                goto usage;
            break;
        case 'p':
            s.mi.prio = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'T':
            s.mi.type = strtol(optarg, NULL, 10);
            break;
        case 'o':
            eq = strchr(optarg, '=');
            if (eq == NULL)
                goto usage;
            *eq = '\0';
            if (ipk_opts_set(o, optarg, eq + 1) != 0) {
                ipk_opts_free(o);
                return cli_fail("send", optarg, IPK_EOPTION);
            }
            break;
        case 'l':
            listen = 1;
            break;
        case 'd':
            listen = 0;
            break;
        case 'h':
            send_usage(stdout);
            ipk_opts_free(o);
            return CLI_OK;
        default:
            goto usage;
        }
    }
    if (optind >= argc)
        goto usage;
    const char *url = argv[optind++];
    ipk_chan *l = NULL;
    int r = listen ? ipk_listen(&l, url, o) : ipk_dial(&s.c, url, o);
    ipk_opts_free(o);
    if (r != 0)
        return cli_fail("send", url, r);
    if (listen) {
        r = ipk_accept(l, &s.c, -1);
        if (r == IPK_ENOTSUP) {
            s.c = l;
            l = NULL;
        } else if (r != 0) {
            ipk_close(l);
            return cli_fail("send", url, r);
        }
    }
    int rc = 0;
    for (long k = 0; k < count && rc == 0; k++) {
        if (optind < argc)
            for (int i = optind; i < argc && rc == 0; i++)
                rc = send_one(&s, argv[i], strlen(argv[i]));
        else
            rc = send_stdin(&s, mode);
    }
    r = ipk_close(s.c);
    if (r < 0 && rc == 0)
        rc = cli_fail("send", url, r);
    ipk_close(l);
    return rc;
usage:
    ipk_opts_free(o);
    send_usage(stderr);
    return CLI_USAGE;
}
