/*
 * memwriter.c - the guide's memwriter: creates a 512-byte shared segment, writes a string into
 * it and posts a named semaphore; keeps the segment for 12 seconds, then removes it.
 * Run: ./memwriter & ./memreader
 */
#include <string.h>
#include <unistd.h>

#include "common.h"

#define URL "shm:/shMemEx?mode=segment&sem=/shMemExSem&size=512"

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : URL;
    static const char contents[] = "This is the way the world ends...\n";
    ipk_chan *c;
    check(ipk_listen(&c, url, NULL), url); /* creates the segment and the semaphore (0600) */
    check(ipk_send(c, contents, strlen(contents), 5000), "write"); /* copies, then sem_post */
    fprintf(stderr, "wrote %zu bytes to %s; the reader has 12 seconds\n", strlen(contents),
            ipk_addr(c));
    sleep(12);
    check(ipk_close(c), "close"); /* the owner unlinks the segment and the semaphore */
    return 0;
}
