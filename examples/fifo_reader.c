/*
 * fifo_reader.c - the guide's fifoReader: counts the primes among the ints fifo_writer sends.
 * Start it first (it creates the FIFO and removes it when done): ./fifo_reader & ./fifo_writer
 * It reads until the end of the stream, which comes when the writer closes.
 */
#include "common.h"

static unsigned is_prime(unsigned n)
{
    if (n <= 3)
        return n > 1;
    if (n % 2 == 0 || n % 3 == 0)
        return 0;
    for (unsigned i = 5; i * i <= n; i += 6)
        if (n % i == 0 || n % (i + 2) == 0)
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "fifo:./fifoChannel";
    ipk_chan *c;
    unsigned total = 0, primes = 0;
    check(ipk_listen(&c, url, NULL), url);
    for (;;) {
        int chunk[4];
        long n = ipk_recv(c, chunk, sizeof chunk, -1);
        if (n == IPK_EOF) /* the writer closed: end of stream */
            break;
        check(n, "read");
        for (long k = 0; k < n / (long)sizeof(int); k++, total++)
            primes += is_prime((unsigned)chunk[k]);
    }
    check(ipk_close(c), "close");
    printf("Received ints: %u, primes: %u\n", total, primes);
    return 0;
}
