/*
 * signame.h - what the signal transport offers beyond its table: its signal-name parser (for the
 * address fuzzer).
 */
#ifndef IPK_SIGNAME_H
#define IPK_SIGNAME_H

/* Parses a signal name or number ("RTMIN+1", "USR1", "SIGUSR2", "34"); refuses the real-time
 * signals reserved by the C library and signals that cannot carry data (KILL, STOP). 0 with
 * *signo set, or IPK_EOPTION with a message. */
int ipk__parse_signal(const char *s, int *signo);

#endif
