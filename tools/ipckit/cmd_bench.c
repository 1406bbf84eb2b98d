/*
 * cmd_bench.c - ipckit bench. Not built in this version yet.
 */
#include <stdio.h>

#include "cli.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ipckit bench: not built in this version\n");
    return CLI_FAIL;
}
