/*
 * tr_udp.c - the udp: transport (UDP datagrams). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_udp, "udp", "UDP datagrams");
