/*
 * memreader.c - the guide's memreader: waits on the named semaphore, then reads the segment.
 * Run within 12 seconds of ./memwriter: ./memreader [URL]
 */
#include "common.h"

#define URL "shm:/shMemEx?mode=segment&sem=/shMemExSem&size=512"

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : URL;
    ipk_chan *c;
    char buf[512];
    check(ipk_dial(&c, url, NULL), url);
    long n = check(ipk_recv(c, buf, sizeof buf, 15000), "read"); /* sem_wait, then copy */
    fwrite(buf, 1, (size_t)n, stdout);
    check(ipk_close(c), "close");
    return 0;
}
