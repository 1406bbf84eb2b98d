/*
 * cmd_relay.c - ipckit relay. Not built in this version yet.
 */
#include <stdio.h>

#include "cli.h"

int cmd_relay(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ipckit relay: not built in this version\n");
    return CLI_FAIL;
}
