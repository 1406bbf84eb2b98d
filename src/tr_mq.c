/*
 * tr_mq.c - the mq: transport (POSIX message queue). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_mq, "mq", "POSIX message queue");
