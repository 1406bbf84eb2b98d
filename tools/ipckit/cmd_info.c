/*
 * cmd_info.c - ipckit info [URL...]: a mechanism's semantics and the live kernel limits that
 * apply, as the library describes them (ipk_info); without URL, the schemes of the library's
 * registry and whether this build has them. Hidden lists for the bash completion: --schemes,
 * --options SCHEME, --kinds.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void info_usage(FILE *f)
{
    fprintf(f,
            "usage: ipckit info [URL...]\n"
            "       ipckit info --status ADDR\n"
            "Prints the semantics of each URL's mechanism and the live kernel limits that apply.\n"
            "Without URL, lists the schemes, whether this build has them, and how to write\n"
            "their addresses.\n\n"
            "  --schemes          one address form a line (mq:/NAME, unix:PATH, ...)\n"
            "  --options SCHEME   the option keys of SCHEME's addresses, one a line\n"
            "  --kinds            the kinds of object ls and rm know, one a line\n"
            "  --status ADDR      the live counters of a running ipckit serve (its --status\n"
            "                     address): one JSON object, per worker and in total\n"
            "  -h, --help\n\n"
            "Exit status: 0 printed, 1 failure, 2 bad address.\n"
            "Example: ipckit info mq:/jobs\n");
}

static int info_one(const char *url)
{
    size_t cap = 4096;
    for (;;) {
        char *buf = malloc(cap);
        if (buf == NULL)
            return cli_fail("info", url, -ENOMEM);
        long n = ipk_info(url, buf, cap);
        if (n < 0) {
            free(buf);
            return cli_fail("info", url, (int)n);
        }
        if ((size_t)n < cap) {
            fwrite(buf, 1, (size_t)n, stdout);
            if (n > 0 && buf[n - 1] != '\n')
                putchar('\n');
            free(buf);
            return CLI_OK;
        }
        free(buf);
        cap = (size_t)n + 1;
    }
}

/* --status: a server's status address answers one JSON snapshot, then closes. */
static int info_status(const char *addr)
{
    ipk_opts *o = ipk_opts_new();
    ipk_chan *c = NULL;
    int r = o ? ipk_opts_set(o, "framing", "raw") : -ENOMEM;
    if (r == 0)
        r = ipk_dial(&c, addr, o);
    ipk_opts_free(o);
    if (r != 0)
        return cli_fail("info", addr, r);
    char buf[65536];
    long n;
    while ((n = ipk_recv(c, buf, sizeof buf, 5000)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    ipk_close(c);
    if (n != IPK_EOF)
        return cli_fail("info", addr, (int)n);
    return CLI_OK;
}

/* --schemes: each address form of each built scheme ("unix:PATH or unix:@NAME": two). */
static void info_forms(void)
{
    for (size_t i = 0; ipk_scheme_at(i); i++) {
        const char *u = ipk_scheme_usage(ipk_scheme_at(i));
        if (!ipk_scheme_built(ipk_scheme_at(i)) || u == NULL)
            continue;
        for (const char *p = u; *p;) {
            const char * or = strstr(p, " or ");
            int n = or ? (int)(or -p) : (int)strlen(p);
            printf("%.*s\n", n, p);
            p += n + (or ? 4 : 0);
        }
    }
}

static int info_options(const char *scheme)
{
    if (ipk_scheme_usage(scheme) == NULL)
        return cli_usage_err("info", "--options %s: no such scheme", scheme);
    printf("max\n");
    for (size_t i = 0; ipk_scheme_option(scheme, i); i++)
        printf("%s\n", ipk_scheme_option(scheme, i));
    return CLI_OK;
}

static void info_schemes(void)
{
    char a[64];
    printf("%-11s %-10s %s\n", "SCHEME", "BUILT", "ADDRESS");
    for (size_t i = 0; ipk_scheme_at(i); i++) {
        const char *sc = ipk_scheme_at(i);
        int built = ipk_scheme_built(sc);
        const char *w = built ? "yes" : "no";
        printf("%-11s %s%*s %s\n", sc, cli_paint(stdout, built ? "32" : "33", w, a, sizeof a),
               (int)(10 - strlen(w)), "", ipk_scheme_usage(sc));
    }
}

int cmd_info(int argc, char **argv)
{
    static const struct option lo[] = {
        {"help", no_argument, 0, 'h'},          {"schemes", no_argument, 0, 'S'},
        {"options", required_argument, 0, 'O'}, {"kinds", no_argument, 0, 'K'},
        {"status", required_argument, 0, 'T'},  {0, 0, 0, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (opt) {
        case 'h':
            info_usage(stdout);
            return CLI_OK;
        case 'S':
            info_forms();
            return CLI_OK;
        case 'O':
            return info_options(optarg);
        case 'T':
            return info_status(optarg);
        case 'K':
            for (size_t i = 0; ipk_object_kind_at(i); i++)
                printf("%s\n", ipk_object_kind_at(i));
            return CLI_OK;
        default:
            info_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind == argc) {
        info_schemes();
        return CLI_OK;
    }
    int rc = CLI_OK;
    for (int i = optind; i < argc; i++) {
        if (i > optind)
            putchar('\n');
        int r = info_one(argv[i]);
        if (r > rc)
            rc = r;
    }
    return rc;
}
