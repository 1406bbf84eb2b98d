/*
 * main.c - the ipckit command-line tool: dispatch to one subcommand per file.
 */
#define _GNU_SOURCE 1
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_cmd cli_cmds[] = {
    {"send", "send messages to an address", cmd_send},
    {"recv", "receive messages from an address", cmd_recv},
    {"relay", "move messages between two addresses, both ways", cmd_relay},
    {"chat", "a conversation from a shell: stdin lines out, replies to stdout", cmd_chat},
    {"ls", "list the IPC objects on this machine", cmd_ls},
    {"rm", "remove IPC objects (named, or stale)", cmd_rm},
    {"info", "semantics and live kernel limits of a mechanism", cmd_info},
    {"tour", "run every mechanism of the guide between real processes", cmd_tour},
    {"bench", "measure latency and throughput of every mechanism", cmd_bench},
    {"serve", "prefork echo server: a master and worker processes", cmd_serve},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ipckit COMMAND [OPTIONS] [ARGS]\n"
               "       ipckit --version\n\n"
               "New here? Run 'ipckit tour'.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++)
        fprintf(f, "  %-8s %s\n", cli_cmds[i].name, cli_cmds[i].summary);
    fprintf(f, "\nAddresses: file:PATH shm:/NAME exec:CMD fifo:PATH mq:/NAME sysv:KEY|PATH\n"
               "unix:PATH|@NAME unixgram: unixpacket: tcp://HOST:PORT udp://HOST:PORT signal:PID\n"
               "nats://HOST:PORT[,HOST:PORT...]/SUBJECT (when built with libnats)\n"
               "(ipckit-transports(7)). Exit status: 0 ok, 1 failure, 2 usage error, 128+N ended\n"
               "by signal N (INT, TERM, HUP close the channels first).\n"
               "'ipckit COMMAND --help' describes a command; ipckit(1) describes them all.\n");
}

int main(int argc, char **argv)
{
    /* The tool is the application: it may choose to ignore SIGPIPE, which also lets the library
     * take its one-system-call path for pipe writes. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ipckit %s\n", ipk_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof cli_cmds / sizeof cli_cmds[0]; i++)
        if (strcmp(argv[1], cli_cmds[i].name) == 0) {
            int rc = cli_cmds[i].run(argc - 1, argv + 1);
            /* INT/TERM/HUP ended the command after it closed its channels: the shell's way of
             * saying so (send, recv and relay catch them; see cli.h). */
            return cli_signal_caught() ? 128 + cli_signal_caught() : rc;
        }
    fprintf(stderr, "ipckit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
}
