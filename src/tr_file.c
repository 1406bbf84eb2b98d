/*
 * tr_file.c - the file: transport (shared file with record locks). Not built in this version yet.
 */
#include "transport.h"

IPK__NOT_BUILT(ipk__tr_file, "file", "shared file with record locks");
