/*
 * cli.h - what the subcommands of the ipckit tool share.
 *
 * Exit codes: 0 success; 1 failure of the operation (the peer, the object, a timeout);
 * 2 usage error (bad option, bad address).
 */
#ifndef IPK_CLI_H
#define IPK_CLI_H

#include "ipckit.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_cmd;

int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tour(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Prints "ipckit <cmd>: <what>: <ipk_strerror> (<ipk_errmsg>)" to stderr; returns CLI_FAIL, or
 * CLI_USAGE for address and option errors. */
int cli_fail(const char *cmd, const char *what, int err);
/* Parses a timeout in milliseconds ("-1" forever); returns -1 on error. */
int cli_parse_ms(const char *s, int *out);

#endif
