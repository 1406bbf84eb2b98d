/*
 * tr_exec.c - the exec: transport (unnamed pipes to a child process). Not built in this version
 * yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_exec, "exec", "unnamed pipes to a child process");
