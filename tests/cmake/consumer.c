/* consumer.c - a program of another project using ipckit: one message over a Unix datagram
 * socket in the abstract namespace, there and back. */
#include <ipckit.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char url[64], buf[8];
    ipk_chan *l = NULL, *d = NULL;
    snprintf(url, sizeof url, "unixgram:@ipkt-consumer-%d", (int)getpid());
    if (ipk_listen(&l, url, NULL) != 0 || ipk_dial(&d, url, NULL) != 0 ||
        ipk_send(d, "hi", 2, 1000) != 0 || ipk_recv(l, buf, sizeof buf, 1000) != 2 ||
        memcmp(buf, "hi", 2) != 0) {
        fprintf(stderr, "consumer: %s\n", ipk_errmsg());
        return 1;
    }
    ipk_close(d);
    ipk_close(l);
    printf("ipckit %s ok\n", ipk_version());
    return 0;
}
