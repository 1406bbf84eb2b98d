/*
 * cmd_recv.c - ipckit recv URL: prints received messages.
 */
#define _GNU_SOURCE 1
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void recv_usage(FILE *f)
{
    fprintf(f, "usage: ipckit recv [OPTIONS] URL\n"
               "Receives messages and writes them to standard output.\n\n"
               "  -n, --count N             exit after N messages (default: until end of stream)\n"
               "  -t, --timeout MS          give up when no message comes for MS ms (-1: wait)\n"
               "  -f, --format FMT          text (one line per message, default), hex, json, or\n"
               "                            raw (the bytes as they are, no separator)\n"
               "  -o, --option KEY=VALUE    a transport option (same as ?KEY=VALUE in the URL)\n"
               "  -l, --listen | -d, --dial dial URL instead of listening on it (default: listen)\n"
               "  -h, --help\n");
}

static void print_msg(const char *fmt, const unsigned char *p, size_t n, const ipk_msginfo *mi)
{
    if (strcmp(fmt, "raw") == 0) {
        fwrite(p, 1, n, stdout);
    } else if (strcmp(fmt, "hex") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%02x", p[i]);
        putchar('\n');
    } else if (strcmp(fmt, "json") == 0) {
        printf("{\"len\":%zu,\"prio\":%u,\"type\":%ld,\"pid\":%d,\"data\":\"", n, mi->prio,
               mi->type, (int)mi->pid);
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '"' || p[i] == '\\')
                printf("\\%c", p[i]);
            else if (p[i] < 0x20 || p[i] >= 0x7f)
                printf("\\u%04x", p[i]);
            else
                putchar(p[i]);
        }
        printf("\"}\n");
    } else {
        fwrite(p, 1, n, stdout);
        putchar('\n');
    }
    fflush(stdout);
}

int cmd_recv(int argc, char **argv)
{
    static const struct option lo[] = {
        {"count", required_argument, 0, 'n'},  {"timeout", required_argument, 0, 't'},
        {"format", required_argument, 0, 'f'}, {"option", required_argument, 0, 'o'},
        {"listen", no_argument, 0, 'l'},       {"dial", no_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    long count = -1;
    int timeout = -1, listen = 1, opt;
    const char *fmt = "text";
    ipk_opts *o = ipk_opts_new();
    optind = 1;
    while ((opt = getopt_long(argc, argv, "n:t:f:o:ldh", lo, NULL)) != -1) {
        char *eq;
        switch (opt) {
        case 'n':
            count = strtol(optarg, NULL, 10);
            if (count < 1)
                goto usage;
            break;
        case 't':
            if (cli_parse_ms(optarg, &timeout) != 0)
                goto usage;
            break;
        case 'f':
            fmt = optarg;
            if (strcmp(fmt, "text") && strcmp(fmt, "hex") && strcmp(fmt, "json") &&
                strcmp(fmt, "raw"))
                goto usage;
            break;
        case 'o':
            eq = strchr(optarg, '=');
            if (eq == NULL)
                goto usage;
            *eq = '\0';
            if (ipk_opts_set(o, optarg, eq + 1) != 0) {
                ipk_opts_free(o);
                return cli_fail("recv", optarg, IPK_EOPTION);
            }
            break;
        case 'l':
            listen = 1;
            break;
        case 'd':
            listen = 0;
            break;
        case 'h':
            recv_usage(stdout);
            ipk_opts_free(o);
            return CLI_OK;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1)
        goto usage;
    const char *url = argv[optind];
    ipk_chan *l = NULL, *c = NULL;
    int r = listen ? ipk_listen(&l, url, o) : ipk_dial(&c, url, o);
    ipk_opts_free(o);
    if (r != 0)
        return cli_fail("recv", url, r);
    size_t cap = 1 << 16;
    unsigned char *buf = malloc(cap);
    int rc = CLI_OK;
    long got = 0;
    while (buf && (count < 0 || got < count)) {
        if (c == NULL) {
            r = ipk_accept(l, &c, timeout);
            if (r == IPK_ENOTSUP) {
                c = l;
                l = NULL;
            } else if (r != 0) {
                rc = cli_fail("recv", url, r);
                break;
            }
        }
        ipk_msginfo mi;
        long n = ipk_recvx(c, buf, cap, &mi, timeout);
        if (n == IPK_EMSGSIZE && ipk_needed(c) > cap) {
            unsigned char *nb = realloc(buf, cap = ipk_needed(c));
            if (nb == NULL)
                break;
            buf = nb;
            continue;
        }
        if (n == IPK_EOF && l != NULL) { /* this connection is done; take the next */
            ipk_close(c);
            c = NULL;
            continue;
        }
        if (n == IPK_EOF)
            break;
        if (n < 0) {
            rc = cli_fail("recv", url, (int)n);
            break;
        }
        print_msg(fmt, buf, (size_t)n, &mi);
        got++;
    }
    if (buf == NULL) {
        fprintf(stderr, "ipckit recv: out of memory\n");
        rc = CLI_FAIL;
    }
    free(buf);
    ipk_close(c);
    ipk_close(l);
    return rc;
usage:
    ipk_opts_free(o);
    recv_usage(stderr);
    return CLI_USAGE;
}
