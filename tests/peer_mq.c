/*
 * peer_mq.c - a plain POSIX message queue program, written against mq_send/mq_receive only,
 * for interoperability tests.
 *
 *   peer_mq send NAME PRIO PAYLOAD   sends one message of strlen(PAYLOAD) bytes
 *   peer_mq recv NAME                receives one message and prints "PRIO LENGTH PAYLOAD\n"
 */
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: peer_mq send NAME PRIO PAYLOAD | recv NAME\n");
        return 2;
    }
    mqd_t q = mq_open(argv[2], O_RDWR);
    if (q == (mqd_t)-1) {
        perror("mq_open");
        return 1;
    }
    if (strcmp(argv[1], "send") == 0 && argc == 5) {
        if (mq_send(q, argv[4], strlen(argv[4]), (unsigned)strtoul(argv[3], NULL, 0)) < 0) {
            perror("mq_send");
            return 1;
        }
        return 0;
    }
    struct mq_attr at;
    if (mq_getattr(q, &at) < 0) {
        perror("mq_getattr");
        return 1;
    }
    char *buf = malloc((size_t)at.mq_msgsize);
    unsigned prio;
    ssize_t n = buf ? mq_receive(q, buf, (size_t)at.mq_msgsize, &prio) : -1;
    if (n < 0) {
        perror("mq_receive");
        return 1;
    }
    printf("%u %zd %.*s\n", prio, n, (int)n, buf);
    free(buf);
    return 0;
}
