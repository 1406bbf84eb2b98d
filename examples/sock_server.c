/*
 * sock_server.c - the guide's iterative echo server: accepts one client at a time and echoes
 * each message back. Messages keep their boundaries (4-byte length frames), so a title is never
 * split or merged with the next one. Stop it with Ctrl-C.
 * Run: ./sock_server [URL] & ./sock_client [URL]   (default tcp://127.0.0.1:9876;
 * unix:/tmp/books.sock works the same)
 */
#include <errno.h>

#include "common.h"

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "tcp://127.0.0.1:9876";
    ipk_chan *l;
    check(ipk_listen(&l, url, NULL), url);
    fprintf(stderr, "Listening on %s for clients...\n", ipk_addr(l));
    for (;;) {
        ipk_chan *c;
        int r = ipk_accept(l, &c, -1);
        if (r != 0) {
            check(r == -ECONNABORTED ? 0 : r, "accept");
            continue;
        }
        char buf[4096];
        long n;
        while ((n = ipk_recv(c, buf, sizeof buf, 10000)) >= 0) {
            printf("%.*s\n", (int)n, buf);
            fflush(stdout);
            if (ipk_send(c, buf, (size_t)n, 10000) != 0)
                break;
        }
        if (n != IPK_EOF)
            fprintf(stderr, "client: %s\n", ipk_strerror((int)n));
        ipk_close(c);
    }
}
