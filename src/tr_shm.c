/*
 * tr_shm.c - the shm: transport (POSIX shared-memory ring). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_shm, "shm", "POSIX shared-memory ring");
