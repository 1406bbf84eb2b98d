/*
 * pipe.c - the guide's pipeUN: a parent writes into an unnamed pipe, its child reads. Here the
 * library makes the pipes and the child (exec:): the child is cat, which reads the pipe and
 * writes what it read to its standard output - the second pipe, back to the parent, which
 * prints it. Closing sends EOF, reaps the child and returns its exit status: no zombie, no
 * SIGCHLD handler.
 * Run: ./pipe
 */
#include <string.h>
#include <sys/wait.h>

#include "common.h"

int main(void)
{
    static const char msg[] = "Nature's first green is gold";
    ipk_chan *c;
    char buf[128];
    check(ipk_dial(&c, "exec:cat", NULL), "exec:cat");
    check(ipk_send(c, msg, strlen(msg), 5000), "write");
    long n = check(ipk_recv(c, buf, sizeof buf, 5000), "read");
    printf("%.*s\n", (int)n, buf);
    int status = (int)check(ipk_close(c), "close");
    printf("child exited with status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}
