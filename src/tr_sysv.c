/*
 * tr_sysv.c - the sysv: transport (System V message queue). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_sysv, "sysv", "System V message queue");
