/*
 * cmd_tour.c - ipckit tour. Not built in this version yet.
 */
#include <stdio.h>

#include "cli.h"

int cmd_tour(int argc, char **argv)
{
    (void)argc, (void)argv;
    fprintf(stderr, "ipckit tour: not built in this version\n");
    return CLI_FAIL;
}
