/*
 * sock_client.c - the guide's client: writes three book titles and prints each echo.
 * Run with ./sock_server running: ./sock_client [URL]
 */
#include <string.h>

#include "common.h"

int main(int argc, char **argv)
{
    static const char *const books[] = {"War and Peace", "Pride and Prejudice",
                                        "The Sound and the Fury"};
    const char *url = argc > 1 ? argv[1] : "tcp://127.0.0.1:9876";
    ipk_chan *c;
    check(ipk_dial(&c, url, NULL), url);
    puts("Connect to server, about to write some stuff...");
    for (int i = 0; i < 3; i++) {
        char buf[4096];
        check(ipk_send(c, books[i], strlen(books[i]), 5000), "write");
        long n = check(ipk_recv(c, buf, sizeof buf, 5000), "read");
        printf("%.*s\n", (int)n, buf);
    }
    puts("Client done, about to exit...");
    check(ipk_close(c), "close");
    return 0;
}
