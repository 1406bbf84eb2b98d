/*
 * tr_unix.c - Unix domain sockets: unix: (stream), unixgram: (datagram), unixpacket: (seqpacket).
 * Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_unix, "unix", "Unix domain stream socket");
IPK__NOT_BUILT(ipk__tr_unixgram, "unixgram", "Unix domain datagram socket");
IPK__NOT_BUILT(ipk__tr_unixpacket, "unixpacket", "Unix domain seqpacket socket");
