/*
 * peer_sysv.c - a plain System V queue program in the guide's style (a long type, then the
 * payload), written against msgsnd/msgrcv only, for interoperability tests.
 *
 *   peer_sysv send KEY TYPE PAYLOAD   sends one message of strlen(PAYLOAD) bytes
 *   peer_sysv recv KEY TYPE           receives one message (msgrcv selector TYPE) and prints
 *                                     "TYPE LENGTH PAYLOAD\n"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

typedef struct {
    long type;
    char payload[8192];
} message;

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: peer_sysv send KEY TYPE PAYLOAD | recv KEY TYPE\n");
        return 2;
    }
    key_t key = (key_t)strtoul(argv[2], NULL, 0);
    int qid = msgget(key, 0);
    if (qid < 0) {
        perror("msgget");
        return 1;
    }
    message m;
    if (strcmp(argv[1], "send") == 0 && argc == 5) {
        m.type = strtol(argv[3], NULL, 0);
        size_t n = strlen(argv[4]);
        memcpy(m.payload, argv[4], n);
        if (msgsnd(qid, &m, n, 0) < 0) {
            perror("msgsnd");
            return 1;
        }
        return 0;
    }
    ssize_t n = msgrcv(qid, &m, sizeof m.payload, strtol(argv[3], NULL, 0), 0);
    if (n < 0) {
        perror("msgrcv");
        return 1;
    }
    printf("%ld %zd %.*s\n", m.type, n, (int)n, m.payload);
    return 0;
}
