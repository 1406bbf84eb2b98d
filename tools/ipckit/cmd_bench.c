/*
 * cmd_bench.c - ipckit bench [URL...]: latency and throughput of every mechanism on this
 * machine, beside the plain system calls (the engine is in bench_*.c). --peers hands over to
 * the peer driver, a separate program because it links ZeroMQ and nng, which the tool itself
 * must not depend on.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define BENCH_PEERS_BIN "ipckit-bench-peers"

/* Where the peer driver is: $IPKBENCH_PEERS, beside this program in a build tree
 * (bench/peers/), in an installed libexec, or on PATH. */
static void bench_exec_peers(char **argv)
{
    char self[PATH_MAX], cand[PATH_MAX + 64];
    const char *env = getenv("IPKBENCH_PEERS");
    if (env && *env)
        execv(env, argv);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        const char *dir = dirname(self);
        static const char *const rel[] = {"bench/peers/", "../libexec/ipckit/"};
        for (int i = 0; i < 2; i++) {
            snprintf(cand, sizeof cand, "%s/%s" BENCH_PEERS_BIN, dir, rel[i]);
            if (access(cand, X_OK) == 0)
                execv(cand, argv);
        }
    }
    execvp(BENCH_PEERS_BIN, argv);
}

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--peers") == 0) {
            char *av[argc + 1];
            av[0] = BENCH_PEERS_BIN;
            for (int k = 1; k < argc; k++)
                av[k] = argv[k];
            av[argc] = NULL;
            bench_exec_peers(av);
            fprintf(stderr,
                    "ipckit bench: --peers: %s not found (it is built when libzmq and "
                    "nng are installed; set IPKBENCH_PEERS to its path)\n",
                    BENCH_PEERS_BIN);
            return CLI_FAIL;
        }
    return bench_main("ipckit bench", argc, argv, NULL);
}
