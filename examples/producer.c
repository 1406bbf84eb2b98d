/*
 * producer.c - the guide's producer: replaces data.dat under an exclusive lock.
 * Run: ./producer [URL]   (default file:data.dat?mode=whole&keep=1), then ./consumer.
 */
#include <string.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
    /* The listener creates the file; keep=1 leaves it for the consumer, as the guide's does. */
    const char *url = argc > 1 ? argv[1] : "file:data.dat?mode=whole&keep=1";
    static const char data[] = "Now is the winter of our discontent\n"
                               "Made glorious summer by this sun of York\n";
    ipk_chan *c;
    check(ipk_listen(&c, url, NULL), url);
    /* mode=whole: one send replaces the whole file while holding the write lock. */
    check(ipk_send(c, data, strlen(data), 5000), "write");
    fprintf(stderr, "Process %d has written to data file...\n", (int)getpid());
    check(ipk_close(c), "close");
    return 0;
}
