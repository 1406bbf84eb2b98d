/*
 * main.c - ipckit-soak: the long soak-and-kill run (soak.h), one table row per transport.
 *
 *   ipckit-soak [-n MESSAGES] [-k KILLS] [-p PACE_US] [--no-storm] [-d DIR] [TRANSPORT...]
 *
 * Defaults: 1,000,000 messages and 20 kills per transport, the signal storm on, no pacing
 * (-p: producers nap PACE_US every 100 messages), every transport. IPK_SOAK_DEBUG=1 in the
 * environment prints each kill and each connection a consumer saw end. Exits 1 when any transport
 * lost, duplicated, reordered or corrupted a message or met an error its rules do not explain.
 * docs/RELIABILITY.md has the figures of a run.
 */
#define _GNU_SOURCE 1
#include "soak.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--exec-child") == 0)
        return soak_exec_child(argc, argv);
    soak_cfg cfg = {.messages = 1000000, .kills = 20, .storm = 1};
    char self[PATH_MAX], dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 2;
    self[n] = '\0';
    cfg.self = self;
    snprintf(dir, sizeof dir, "%s/ipksoak-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            cfg.messages = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-k") == 0 && i + 1 < argc)
            cfg.kills = atoi(argv[++i]);
        else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            cfg.pace_us = atoi(argv[++i]);
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
            snprintf(dir, sizeof dir, "%s", argv[++i]);
        else if (strcmp(argv[i], "--no-storm") == 0)
            cfg.storm = 0;
        else {
            fprintf(stderr,
                    "usage: %s [-n MESSAGES] [-k KILLS] [-p PACE_US] [--no-storm] [-d DIR] "
                    "[TRANSPORT...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0) {
        perror(dir);
        return 2;
    }
    cfg.dir = dir;
    const char *const *all = soak_transports();
    int bad = 0;
    printf("| transport | messages | committed | kills (producer + consumer) | signals | lost | "
           "duplicated | reordered | excused | redelivered | wall time |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    for (size_t t = 0; all[t] != NULL; t++) {
        int want = i >= argc;
        for (int j = i; j < argc; j++)
            want |= strcmp(argv[j], all[t]) == 0;
        if (!want)
            continue;
        cfg.transport = all[t];
        soak_result r;
        if (soak_run(&cfg, &r) != 0) {
            printf("| %s | could not run: %s |\n", all[t], r.first_error);
            bad = 1;
            continue;
        }
        printf("| %s | %llu | %llu | %llu + %llu | %llu | %llu | %llu | %llu | %llu | %llu | "
               "%.1f s |\n",
               all[t], (unsigned long long)r.attempted, (unsigned long long)r.committed,
               (unsigned long long)r.kills_prod, (unsigned long long)r.kills_cons,
               (unsigned long long)r.signals, (unsigned long long)r.lost,
               (unsigned long long)r.duplicated, (unsigned long long)r.reordered,
               (unsigned long long)r.excused, (unsigned long long)r.redelivered, r.wall_s);
        if (!soak_clean(&r)) {
            printf("%s: %llu corrupt, %llu unexpected errors; first: %s\n", all[t],
                   (unsigned long long)r.corrupt, (unsigned long long)r.unexpected, r.first_error);
            bad = 1;
        }
        fflush(stdout);
    }
    rmdir(dir);
    return bad;
}
