/*
 * receiver.c - the guide's receiver: asks for types 3,1,2,1,3,2 and so gets msg5, msg1, msg3,
 * msg2, msg6, msg4 - a queue is not bound to FIFO order. One channel per type asked for (the
 * type to receive is a channel option). Then it removes the queue the sender left.
 * Run after ./sender: ./receiver
 */
#define _DEFAULT_SOURCE 1 /* usleep, sigaction and friends under -std=c11 */
#include <sys/ipc.h>
#include <sys/msg.h>

#include "common.h"

int main(void)
{
    static const long ask[] = {3, 1, 2, 1, 3, 2};
    ipk_chan *by_type[4];
    for (int t = 1; t <= 3; t++) {
        char url[64];
        snprintf(url, sizeof url, "sysv:queue.h?proj=123&type=%d", t);
        check(ipk_dial(&by_type[t], url, NULL), url);
    }
    for (int i = 0; i < 6; i++) {
        char buf[16];
        ipk_msginfo mi;
        long n = check(ipk_recvx(by_type[ask[i]], buf, sizeof buf, &mi, 0), "receive");
        printf("%.*s received as type %ld\n", (int)n, buf, mi.type);
    }
    for (int t = 1; t <= 3; t++)
        check(ipk_close(by_type[t]), "close");
    /* The library removes only what a channel created; the sender's queue is removed the
     * guide's way. */
    int id = msgget(ftok("queue.h", 123), 0);
    if (id < 0 || msgctl(id, IPC_RMID, NULL) < 0)
        perror("removing the queue");
    return 0;
}
