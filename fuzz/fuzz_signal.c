/*
 * fuzz_signal.c - what a hostile sender can make a signal: listener read.
 *
 * A sender that may signal us at all chooses the signal, how it is sent (kill, sigqueue,
 * tgkill) and, with rt_sigqueueinfo(2), the whole siginfo: si_code (any negative value),
 * si_pid, si_uid and the 8-byte si_value. This target listens on signal:self and sends itself
 * such signals, built from the input, with rt_sigqueueinfo, then receives them through
 * ipk_recv, mixed with ipk_send from a dialer (the real encoder) and receives into buffers of
 * every size.
 *
 * Input: byte 0 picks the options (the signal: RTMIN+1, RTMIN+2, RTMAX or USR1; raw=1;
 * allow_uid=any); the rest is a schedule: send a forged siginfo, send a message with ipk_send,
 * receive, ask pending, close and listen again.
 *
 * Checked: no fault, no sanitizer report, no hang; a receive returns at most its buffer and
 * at most 8 bytes (7 without raw=1); a message that ipk_send sent comes back intact when the
 * queue holds nothing forged before it.
 */
#define _GNU_SOURCE 1
#include "input.h"
#include "ipckit.h"

#include <assert.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* si_code values a process may set (the kernel refuses >= 0 and SI_TKILL from another
 * process; to itself it allows them, which covers what any sender can do). */
static const int codes[] = {SI_QUEUE, SI_USER,  SI_TKILL,   SI_MESGQ, SI_ASYNCIO,
                            SI_TIMER, SI_SIGIO, SI_ASYNCNL, -60,      1};

static int forge(int signo, rd *r)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = signo;
    si.si_code = codes[rd8(r) % (sizeof codes / sizeof codes[0])];
    unsigned who = rd8(r);
    si.si_pid = who & 1 ? (pid_t)rdn(r, 4) : getpid();
    si.si_uid = who & 2 ? (uid_t)rdn(r, 4) : getuid();
    si.si_value.sival_ptr = (void *)(uintptr_t)rdn(r, 8);
    return (int)syscall(SYS_rt_sigqueueinfo, getpid(), signo, &si);
}

static void ignore(int signo)
{
    (void)signo;
}

/* The threads of this process: a listener blocks its signal in the calling thread only, and a
 * process-directed signal may go to another thread that does not block it (signal.md says
 * every thread must block it). libFuzzer runs an RSS thread unless -rss_limit_mb=0: then the
 * handler below takes such a signal instead of its default action, and what ipk_send sent is
 * not checked (it may have gone to that thread). */
static int threads(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[128];
    int n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return n;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static int alone = -1;
    if (alone < 0) {
        alone = threads() == 1;
        struct sigaction sa = {.sa_handler = ignore};
        sigaction(SIGRTMIN + 1, &sa, NULL);
        sigaction(SIGRTMIN + 2, &sa, NULL);
        sigaction(SIGRTMAX, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
    }
    if (size < 1 || size > 4096)
        return 0;
    rd r = {data, size};
    unsigned b = rd8(&r);
    static const char *const sigs[] = {"RTMIN+1", "RTMIN+2", "RTMAX", "USR1"};
    const char *sig = sigs[b % 4];
    int signo = b % 4 == 0   ? SIGRTMIN + 1
                : b % 4 == 1 ? SIGRTMIN + 2
                : b % 4 == 2 ? SIGRTMAX
                             : SIGUSR1;
    int raw = (b & 4) != 0;
    char url[96];
    snprintf(url, sizeof url, "signal:self?sig=%s%s%s", sig, raw ? "&raw=1" : "",
             b & 8 ? "&allow_uid=any" : "");
    ipk_chan *rx = NULL, *tx = NULL;
    if (ipk_listen(&rx, url, NULL) != 0)
        return 0;
    (void)ipk_dial(&tx, url, NULL);
    /* What ipk_send sent, in order, since the last forged signal (only then is it checked). */
    unsigned char sent[64][8];
    size_t sent_len[64], nsent = 0, first = 0;
    int forged = 0;
    for (unsigned steps = 0; r.n > 0 && steps < 64; steps++) {
        unsigned op = rd8(&r);
        switch (op % 6) {
        case 0:
        case 1:
            if (rx != NULL && forge(signo, &r) == 0)
                forged = 1;
            break;
        case 2: {
            size_t len = rd8(&r) % 10;
            unsigned char m[10];
            for (size_t i = 0; i < len; i++)
                m[i] = (unsigned char)rd8(&r);
            if (tx != NULL && rx != NULL && ipk_send(tx, m, len, 0) == 0 && nsent < 64) {
                memcpy(sent[nsent], m, len < 8 ? len : 8);
                sent_len[nsent++] = len;
            }
            break;
        }
        case 3:
        case 4: {
            unsigned char buf[16];
            size_t cap = op % 6 == 3 ? sizeof buf : rd8(&r) % 10;
            if (rx == NULL)
                break;
            long n = ipk_recv(rx, buf, cap, 0);
            assert(n < 0 || ((size_t)n <= cap && (size_t)n <= (raw ? 8u : 7u)));
            /* Standard signals coalesce: only real-time ones keep every message. */
            if (n >= 0 && alone && !forged && first < nsent && b % 4 != 3) {
                size_t want = raw ? 8 : sent_len[first];
                assert((size_t)n == want);
                if (!raw)
                    assert(memcmp(buf, sent[first], want) == 0);
                first++;
            }
            break;
        }
        default:
            if (rx != NULL) {
                (void)ipk_pending(rx);
                if (op & 0x80) {
                    (void)ipk_close(rx);
                    rx = NULL;
                    forged = 0;
                    nsent = first = 0;
                    (void)ipk_listen(&rx, url, NULL);
                }
            }
            break;
        }
    }
    if (tx != NULL)
        (void)ipk_close(tx);
    if (rx != NULL)
        (void)ipk_close(rx);
    return 0;
}
