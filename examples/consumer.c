/*
 * consumer.c - the guide's consumer: reads data.dat whole under a shared lock.
 * Run after ./producer: ./consumer [URL]   (default file:data.dat?mode=whole)
 */
#include "common.h"

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "file:data.dat?mode=whole";
    ipk_chan *c;
    char buf[4096];
    check(ipk_dial(&c, url, NULL), url);
    long n = ipk_recv(c, buf, sizeof buf, 5000);
    if (n == IPK_EMSGSIZE)
        fprintf(stderr, "the file holds %zu bytes; this buffer holds %zu\n", ipk_needed(c),
                sizeof buf);
    check(n, "read");
    fwrite(buf, 1, (size_t)n, stdout);
    check(ipk_close(c), "close");
    return 0;
}
