/*
 * pipe.h - helpers shared by the pipe transports (exec:, fifo:).
 */
#ifndef IPK_PIPE_H
#define IPK_PIPE_H

#include "ipk.h"

/* Applies option pipesz= to the pipe fd. 0 or a negative code. */
int ipk__pipe_size(ipk_chan *c, int fd);

#endif
