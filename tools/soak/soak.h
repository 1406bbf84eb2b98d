/*
 * soak.h - the soak-and-kill engine (tools/soak/soak.c): sends numbered, checksummed messages
 * through one transport while its producers and consumers are killed with SIGKILL at random
 * moments (where the transport promises to survive it) and a storm of signals, caught by a
 * handler installed without SA_RESTART, interrupts every call; then checks that no committed
 * message was lost, duplicated or reordered. Used by tools/soak/main.c (the long run,
 * ipckit-soak) and tests/test_soak.c (the short one).
 */
#ifndef IPK_SOAK_H
#define IPK_SOAK_H

#include <stdint.h>

typedef struct soak_cfg {
    const char *transport; /* a name of soak_transports(): "mq", "shm-multi", ... */
    uint64_t messages;     /* messages to attempt, over all producers */
    int kills;             /* SIGKILLs spread over the run (0: none) */
    int storm;             /* send SIGUSR2 to the workers at random moments */
    int pace_us;           /* producers nap this long every 100 messages (0: never), so that a
                              short run lasts long enough for its kills */
    const char *dir;       /* where files and sockets go (a private directory) */
    const char *self;      /* this program's path, for exec: children (argv[0] is not enough) */
    int verbose;
} soak_cfg;

typedef struct soak_result {
    uint64_t attempted;   /* sends made */
    uint64_t committed;   /* sends that returned 0 */
    uint64_t received;    /* messages received (each copy counted) */
    uint64_t lost;        /* committed, never received, and not excused: a defect */
    uint64_t excused;     /* committed, never received, where the transport does not promise it:
                             in a killed consumer's socket or pipe, taken by a consumer killed
                             inside its receive, or a lossy transport (udp) */
    uint64_t duplicated;  /* received more than once, beyond what the transport allows */
    uint64_t redelivered; /* received twice, as the transport allows (shm: a consumer killed
                             inside a receive may leave that message to be delivered again) */
    uint64_t reordered;   /* a consumer saw a producer's sequence go back */
    uint64_t corrupt;     /* a message whose checksum or layout was wrong */
    uint64_t unexpected;  /* errors no rule of the transport explains */
    uint64_t kills_prod, kills_cons, signals;
    double wall_s;
    char first_error[256];
} soak_result;

/* The transports, NULL-terminated. */
const char *const *soak_transports(void);
/* Runs one soak; 0 when it ran (res says what it found), -1 when it could not run. */
int soak_run(const soak_cfg *cfg, soak_result *res);
/* Whether res is clean: nothing lost, duplicated, reordered, corrupt or unexpected. */
int soak_clean(const soak_result *res);
/* The exec: child (the producer behind exec:): main() calls it for argv[1] "--exec-child". */
int soak_exec_child(int argc, char **argv);

#endif
