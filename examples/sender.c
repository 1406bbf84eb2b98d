/*
 * sender.c - the guide's sender: six messages of types 1,1,2,2,3,3 into a System V queue keyed
 * by ftok("queue.h", 123). The queue outlives the sender (keep=1) until the receiver removes it.
 * Run: touch queue.h; ./sender; ./receiver
 */
#include <string.h>

#include "common.h"

#define URL "sysv:queue.h?proj=123&keep=1"

int main(void)
{
    static const char *const payloads[] = {"msg1", "msg2", "msg3", "msg4", "msg5", "msg6"};
    static const long types[] = {1, 1, 2, 2, 3, 3};
    ipk_chan *c;
    check(ipk_listen(&c, URL, NULL), URL);
    for (int i = 0; i < 6; i++) {
        ipk_msginfo mi = {.type = types[i]};
        check(ipk_sendx(c, payloads[i], strlen(payloads[i]), &mi, 0), "send");
        printf("%s sent as type %ld\n", payloads[i], types[i]);
    }
    check(ipk_close(c), "close");
    return 0;
}
