/*
 * tr_signal.c - the signal: transport (signals carrying data). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_signal, "signal", "signals carrying data");
