/*
 * cmd_rm.c - ipckit rm. Not built in this version yet.
 */
#include <stdio.h>

#include "cli.h"

int cmd_rm(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ipckit rm: not built in this version\n");
    return CLI_FAIL;
}
