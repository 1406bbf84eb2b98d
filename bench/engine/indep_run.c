/*
 * indep_run.c - the independent raw benchmark (bench/indep/indep.c, a program that shares no
 * code with this engine) as rows of `ipckit bench`: each run execs it with the mechanism, the
 * size, the mode, the two CPUs and the count the engine chose, and reads its one line of
 * figures. The report divides each engine floor by the independent figure of the same row, so
 * a floor slower than plain code written apart shows in the same run. For throughput it runs
 * in its check mode: it verifies every message as the engine's receiver does (sequence number
 * and the sum of the bytes), so the two do the same work per byte.
 */
#include "bench.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_INDEP_BIN "ipckit-bench-indep"

/* The engine's mechanisms the program covers, with its name for each (and the key of the row:
 * "pair" is the unixgram socketpair, beside the listener's topology). */
static const struct indep_def {
    const char *mech, *name, *label, *key;
} indep_defs[] = {
    {"pipe", "pipe", "indep pipe", ""},
    {"fifo", "fifo", "indep fifo", ""},
    {"unix", "unix", "indep unix stream", ""},
    {"unixpacket", "unixpacket", "indep unix seqpacket", ""},
    {"unixgram", "unixgram", "indep unix dgram", ""},
    {"unixgram", "unixgram-pair", "indep unix dgram pair", "pair"},
    {"tcp", "tcp", "indep tcp", ""},
    {"udp", "udp", "indep udp", ""},
    {"udp", "udp-pair", "indep udp pair", "pair"},
    {"mq", "mq", "indep posix mq", ""},
    {"sysv", "sysv", "indep sysv msg", ""},
};

static char indep_prog[PATH_MAX];

/* $IPKBENCH_INDEP, beside this program in a build tree (bench/indep/, or ../indep/ from the
 * peer driver's directory), in an installed libexec; "" when none is found. */
static const char *indep_find(void)
{
    if (indep_prog[0])
        return indep_prog;
    const char *env = getenv("IPKBENCH_INDEP");
    if (env && *env && access(env, X_OK) == 0) {
        snprintf(indep_prog, sizeof indep_prog, "%s", env);
        return indep_prog;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return "";
    self[n] = '\0';
    const char *dir = dirname(self);
    static const char *const rel[] = {"bench/indep/", "../indep/", "../libexec/ipckit/"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof cand, "%s/%s" BENCH_INDEP_BIN, dir, rel[i]);
        size_t len = strlen(cand);
        if (access(cand, X_OK) == 0 && len < sizeof indep_prog) {
            memcpy(indep_prog, cand, len + 1); /* fits: checked just above */
            return indep_prog;
        }
    }
    return "";
}

/* The value of "key=" in the program's line, or 0. */
static double indep_num(const char *line, const char *key)
{
    char k[24];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = strstr(line, k);
    return p ? strtod(p + strlen(k), NULL) : 0;
}

static void indep_run(bench_spec *s, bench_result *r)
{
    const struct indep_def *d = &indep_defs[s->topo];
    char args[4][32];
    snprintf(args[0], sizeof args[0], "%zu", s->size);
    snprintf(args[1], sizeof args[1], "%d", bench_cpu_of(s, BENCH_A));
    snprintf(args[2], sizeof args[2], "%d", bench_cpu_of(s, BENCH_B));
    snprintf(args[3], sizeof args[3], "%ld", s->count);
    const char *mode = s->mode == BENCH_LATENCY ? "latency" : s->permsg ? "message" : "batch";
    int p[2];
    if (pipe(p) != 0) {
        snprintf(r->err, sizeof r->err, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        /* Throughput: "check", so that it does the engine receiver's work (every message's
         * sequence number and the sum of its bytes), not only counting. */
        execl(indep_prog, BENCH_INDEP_BIN, d->name, args[0], mode, args[1], args[2], args[3],
              s->mode == BENCH_LATENCY ? "count" : "check", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[512] = " ";
    size_t got = 1;
    ssize_t n;
    while (pid > 0 && got < sizeof line - 1 &&
           (n = read(p[0], line + got, sizeof line - 1 - got)) != 0)
        if (n > 0)
            got += (size_t)n;
        else if (errno != EINTR)
            break;
    line[got] = '\0';
    line[strcspn(line, "\n")] = '\0';
    close(p[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        snprintf(r->err, sizeof r->err, "cannot run %.200s", indep_prog);
        return;
    }
    if (indep_num(line, "ok") != 1) {
        const char *e = strstr(line, "err=");
        snprintf(r->err, sizeof r->err, "%s", e ? e + 4 : "the independent benchmark failed");
        return;
    }
    for (int i = 0; i < 2; i++) {
        int c = bench_cpu_of(s, i);
        snprintf(r->cpus[i], sizeof r->cpus[i], c < 0 ? "-" : "%d", c);
    }
    r->n = (long)indep_num(line, "n");
    if (s->mode == BENCH_LATENCY) {
        r->min = indep_num(line, "min");
        r->p50 = indep_num(line, "p50");
        r->p90 = indep_num(line, "p90");
        r->p99 = indep_num(line, "p99");
        r->p999 = indep_num(line, "p999");
        r->max = indep_num(line, "max");
        r->rtps = indep_num(line, "rtps");
    } else {
        r->secs = indep_num(line, "secs");
        r->mps = indep_num(line, "mps");
        r->mbps = r->mps * (double)s->size / 1e6;
        r->batch = (long)indep_num(line, "batch");
        r->received = (long)indep_num(line, "got");
        r->csum_ok = indep_num(line, "checked") == 1; /* it checked every message itself */
    }
    r->ok = 1;
}

const bench_ops bench_ops_indep = {
    .impl = "indep",
    .run = indep_run,
};

int bench_indep_all(bench_list *l, const char *only_mech)
{
    if (!indep_find()[0])
        return 0;
    for (size_t m = 0; m < sizeof indep_defs / sizeof indep_defs[0]; m++) {
        if (only_mech && strcmp(only_mech, indep_defs[m].mech) != 0)
            continue;
        int udp = !strcmp(indep_defs[m].mech, "udp"); /* drops under load: latency only */
        for (int permsg = 1; permsg >= udp; permsg--) {
            bench_spec *s;
            int r = bench_floor_add(l, &bench_ops_indep, (int)m, permsg, indep_defs[m].label,
                                    indep_defs[m].mech, indep_defs[m].key, &s);
            if (r <= 0) {
                if (r < 0)
                    return -1;
                continue;
            }
            if (udp) {
                s->maxsize = 65507;
                s->modes = BENCH_LATENCY;
            }
            if (!strcmp(indep_defs[m].mech, "mq"))
                s->maxsize = bench_proc_limit(BENCH_MQ_MSGSIZE_MAX);
            if (!strcmp(indep_defs[m].mech, "sysv"))
                s->maxsize = bench_proc_limit(BENCH_SYSV_MSGMAX);
        }
    }
    return 0;
}
