/*
 * cmd_ls.c - ipckit ls. Not built in this version yet.
 */
#include <stdio.h>

#include "cli.h"

int cmd_ls(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ipckit ls: not built in this version\n");
    return CLI_FAIL;
}
