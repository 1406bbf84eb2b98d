/*
 * cmd_info.c - ipckit info [URL...]: a mechanism's semantics and the live kernel limits that
 * apply, as the library describes them (ipk_info); without URL, which schemes this build has.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const info_schemes[] = {"file",       "shm",  "exec", "fifo",
                                           "mq",         "sysv", "unix", "unixgram",
                                           "unixpacket", "tcp",  "udp",  "signal"};
static const char *const info_examples[] = {"file:data.dat",
                                            "shm:/ring",
                                            "exec:sort -n",
                                            "fifo:/tmp/chan",
                                            "mq:/jobs",
                                            "sysv:queue.h",
                                            "unix:/tmp/app.sock",
                                            "unixgram:/tmp/app.dg",
                                            "unixpacket:@app",
                                            "tcp://127.0.0.1:9000",
                                            "udp://127.0.0.1:9000",
                                            "signal:self"};

static void info_usage(FILE *f)
{
    fprintf(f,
            "usage: ipckit info [URL...]\n"
            "Prints the semantics of each URL's mechanism and the live kernel limits that apply.\n"
            "Without URL, lists the schemes and whether this build has them.\n\n"
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

int cmd_info(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        if (opt == 'h') {
            info_usage(stdout);
            return CLI_OK;
        }
        info_usage(stderr);
        return CLI_USAGE;
    }
    if (optind == argc) {
        char a[64];
        printf("%-11s %-10s %s\n", "SCHEME", "BUILT", "EXAMPLE");
        for (size_t i = 0; i < sizeof info_schemes / sizeof info_schemes[0]; i++) {
            int built = ipk_scheme_built(info_schemes[i]);
            const char *w = built ? "yes" : "no";
            printf("%-11s %s%*s %s\n", info_schemes[i],
                   cli_paint(stdout, built ? "32" : "33", w, a, sizeof a), (int)(10 - strlen(w)),
                   "", info_examples[i]);
        }
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
