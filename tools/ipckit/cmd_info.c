/*
 * cmd_info.c - ipckit info. Not built in this version yet.
 */
#include <stdio.h>

#include "cli.h"

int cmd_info(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ipckit info: not built in this version\n");
    return CLI_FAIL;
}
