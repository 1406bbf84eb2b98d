/*
 * shutdown.c - the guide's graceful shutdown of a parent and its child by SIGTERM, with the
 * signal taken as a message (signal:self reads it through a signalfd) instead of in an
 * asynchronous handler: the child finishes its loop iteration and exits in ordinary code.
 * Run: ./shutdown
 */
#define _DEFAULT_SOURCE 1 /* usleep, sigaction and friends under -std=c11 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void child_code(void)
{
    ipk_chan *term;
    check(ipk_listen(&term, "signal:self?sig=TERM", NULL), "signal:self");
    for (;;) {
        char b[8];
        ipk_msginfo mi;
        long n = ipk_recvx(term, b, sizeof b, &mi, 1000); /* sleep(1), but woken by TERM */
        if (n >= 0) {
            printf("\tChild confirming received signal: %d (from pid %d)\n", mi.signo, (int)mi.pid);
            puts("\tChild about to terminate gracefully...");
            sleep(1);
            puts("\tChild terminating now...");
            fflush(stdout); /* _exit does not flush */
            ipk_close(term);
            _exit(0);
        }
        if (n != IPK_ETIMEDOUT)
            check(n, "waiting for SIGTERM");
        puts("\tChild just woke up, but going back to sleep.");
        fflush(stdout);
    }
}

int main(void)
{
    /* SIGTERM is blocked before the fork so that it waits for the child's channel, whatever
     * the scheduling; the parent unblocks it for itself. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        child_code();
    sigprocmask(SIG_SETMASK, &old, NULL);
    puts("Parent sleeping for a time...");
    fflush(stdout);
    sleep(5);
    char url[64];
    snprintf(url, sizeof url, "signal:%d?sig=TERM", (int)pid);
    ipk_chan *c;
    check(ipk_dial(&c, url, NULL), url);
    check(ipk_send(c, "", 0, 1000), "kill"); /* sigqueue(pid, SIGTERM) */
    ipk_close(c);
    wait(NULL);
    puts("My child terminated, about to exit myself...");
    return 0;
}
