/*
 * tr_tcp.c - the tcp: transport (TCP stream). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_tcp, "tcp", "TCP stream");
