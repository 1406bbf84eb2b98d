/*
 * common.h - the one helper every example shares: report a failed ipckit call and exit.
 */
#ifndef EXAMPLES_COMMON_H
#define EXAMPLES_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "ipckit.h"

/* Every ipckit call returns 0 (or a length) or a negative code; ipk_errmsg() says which object
 * and which limit. */
static inline long check(long r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "%s: %s (%s)\n", what, ipk_strerror((int)r), ipk_errmsg());
        exit(EXIT_FAILURE);
    }
    return r;
}

#endif
