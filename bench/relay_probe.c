/*
 * relay_probe.c - the two ends of bench/nats_relay.sh: a producer that writes time-stamped
 * messages into a local queue and a consumer that reads them from another host's queue and
 * prints messages per second and the one-way latency (p50, p99). Both hosts are network and
 * IPC namespaces of one machine, so CLOCK_MONOTONIC is one clock for both.
 *
 *   relay_probe produce URL N GAP_US READY   probes until the file READY exists (core NATS drops
 *                                            what is published before the far side subscribed),
 *                                            then N messages, GAP_US apart (0: as fast as the
 *                                            queue takes them)
 *   relay_probe consume URL N READY          owns URL; skips probes (making READY at the first);
 *                                            then N messages; prints
 *                                            "msgs/s R p50_us A p99_us B"
 */
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipckit.h"

#define RP_SIZE 64

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void check(long r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "relay_probe: %s: %s\n", what, ipk_errmsg());
        exit(1);
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int produce(const char *url, long n, long gap_us, const char *ready)
{
    ipk_chan *c;
    int r = -1;
    for (int i = 0; i < 500 && r != 0; i++)
        if ((r = ipk_dial(&c, url, NULL)) != 0)
            usleep(20000);
    check(r, "dial");
    while (access(ready, F_OK) != 0) {
        check(ipk_send(c, "probe", 5, 5000), "probe");
        usleep(20000);
    }
    char m[RP_SIZE];
    memset(m, '.', sizeof m);
    for (long i = 0; i < n; i++) {
        int64_t t = now_ns();
        memcpy(m, &t, sizeof t);
        memcpy(m + sizeof t, &i, sizeof i);
        check(ipk_send(c, m, RP_SIZE, 60000), "send");
        if (gap_us > 0)
            while (now_ns() - t < gap_us * 1000)
                usleep((useconds_t)(gap_us / 4 + 1));
    }
    check(ipk_close(c), "close");
    return 0;
}

static int consume(const char *url, long n, const char *ready)
{
    ipk_chan *c;
    char m[RP_SIZE + 16];
    check(ipk_listen(&c, url, NULL), "listen");
    int64_t *lat = malloc(sizeof *lat * (size_t)n), first = 0, last = 0;
    long got = 0, expect = 0;
    while (got < n) {
        long k = ipk_recv(c, m, sizeof m, 120000);
        check(k, "recv");
        if (k == 5) {
            if (access(ready, F_OK) != 0)
                close(open(ready, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
            continue;
        }
        int64_t t, now = now_ns();
        long seq;
        memcpy(&t, m, sizeof t);
        memcpy(&seq, m + sizeof t, sizeof seq);
        if (k != RP_SIZE || seq != expect) {
            fprintf(stderr, "relay_probe: message %ld out of order or damaged (expected %ld)\n",
                    seq, expect);
            return 1;
        }
        expect++;
        if (got == 0)
            first = t;
        last = now;
        lat[got++] = now - t;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp64);
    printf("msgs/s %.0f p50_us %.1f p99_us %.1f\n", n / ((double)(last - first) / 1e9),
           lat[n / 2] / 1000.0, lat[(n * 99) / 100] / 1000.0);
    check(ipk_close(c), "close");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "produce") == 0)
        return produce(argv[2], atol(argv[3]), atol(argv[4]), argv[5]);
    if (argc == 5 && strcmp(argv[1], "consume") == 0 && atol(argv[3]) > 0)
        return consume(argv[2], atol(argv[3]), argv[4]);
    fprintf(stderr, "usage: relay_probe produce URL N GAP_US READY | consume URL N READY\n");
    return 2;
}
