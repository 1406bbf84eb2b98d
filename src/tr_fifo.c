/*
 * tr_fifo.c - the fifo: transport (named pipe). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_fifo, "fifo", "named pipe");
