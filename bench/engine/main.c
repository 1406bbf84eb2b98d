/*
 * main.c - the command line of `ipckit bench` (and of the peer driver, which adds
 * ZeroMQ and nng targets): which targets, sizes, modes and CPUs; runs them in an order that
 * keeps each ipckit target beside its floor in time (a noisy machine drifts); repeats and keeps
 * the median; prints the table, JSON, CSV and the chart.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipckit.h"

typedef struct bench_opts {
    size_t sizes[16];
    int nsizes;
    long count;
    double duration;
    enum bench_cpu cpu;
    unsigned modes;
    int repeat, raw, peers, quiet;
    const char *json, *csv, *chart;
    int json_stdout, csv_stdout;
} bench_opts;

static volatile sig_atomic_t bench_stop;

static void bench_on_signal(int sig)
{
    (void)sig;
    bench_stop = 1;
}

static void bench_usage(const char *prog, FILE *f)
{
    fprintf(
        f,
        "usage: %s [OPTIONS] [URL...]\n"
        "Measures round-trip latency and one-way throughput between two processes, for each\n"
        "URL (default: every transport, on temporary addresses; a bare scheme such as 'mq:'\n"
        "is that transport on a temporary address, with options if any: 'shm:?duplex=1')\n"
        "and, beside it, the same mechanism driven with plain system calls (the floor; for\n"
        "shm: a raw cache-line ping-pong and a raw fixed-slot ring, on two CPUs), each floor\n"
        "checked in the same run against an independent raw program (ipckit-bench-indep,\n"
        "rows 'indep'; $IPKBENCH_INDEP names it; for throughput it checks every message's\n"
        "sequence number and bytes, as the engine's receiver does). Throughput has two\n"
        "floors per mechanism: one call per message (beside ipckit's '1/call' rows, one\n"
        "ipk_send each) and batched (beside ipckit's ipk_sendv rows: contiguous messages in\n"
        "one write, or sendmmsg).\n"
        "unixgram's floor has the listener's topology; 'raw unix dgram pair' is a socketpair.\n"
        "udp: 'indep udp' has the topology of ipckit's row (four sockets); 'raw udp pair' and\n"
        "'indep udp pair' are two sockets connected to each other.\n"
        "With no URL shm: runs twice: 'shm' is two one-way rings, one each way; 'shm duplex'\n"
        "is one duplex=1 segment, the listener and the dialer each sending and receiving on\n"
        "their channel (a URL with duplex=1 selects it). Both have the same floors.\n\n"
        "  -s, --size LIST      message sizes in bytes (default 64,1024,65536; k/m suffixes)\n"
        "  -n, --count N        round trips or messages per run\n"
        "  -d, --duration S     seconds per run, the count calibrated by a probe (default 0.4)\n"
        "  -c, --cpu MODE       same: both processes on one CPU; cross: on two (default when\n"
        "                       there are two); none: leave it to the scheduler\n"
        "  -m, --mode MODE      latency, throughput or both (default)\n"
        "  -r, --repeat N       run everything N times, interleaved, and report the median\n"
        "      --no-raw         leave out the system-call floors and the independent program\n"
        "      --peers          ipckit beside ZeroMQ and nng (ipc and tcp), with ratios; ipckit\n"
        "                       sends one message per call (coalescing, and flush=0) as\n"
        "                       they do, and 256 per ipk_sendv (throughput only)\n"
        "      --json[=FILE]    JSON (to FILE, or instead of the table)\n"
        "      --csv[=FILE]     CSV (to FILE, or instead of the table)\n"
        "      --chart FILE     an SVG bar chart of round-trip p50 and messages/s\n"
        "  -q, --quiet          no progress line\n"
        "  -h, --help\n",
        prog);
}

static int bench_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno)
        return -1;
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    if (*end != '\0' || v == 0 || v > (16u << 20))
        return -1;
    *out = (size_t)v;
    return 0;
}

static int bench_parse_opts(const char *prog, bench_opts *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"size", required_argument, NULL, 's'},     {"count", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'}, {"cpu", required_argument, NULL, 'c'},
        {"mode", required_argument, NULL, 'm'},     {"repeat", required_argument, NULL, 'r'},
        {"no-raw", no_argument, NULL, 'R'},         {"peers", no_argument, NULL, 'P'},
        {"json", optional_argument, NULL, 'J'},     {"csv", optional_argument, NULL, 'C'},
        {"chart", required_argument, NULL, 'G'},    {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int ch;
    char *end;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:n:d:c:m:r:qh", lo, NULL)) != -1) {
        switch (ch) {
        case 's': {
            o->nsizes = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o->nsizes == 16 || bench_parse_size(t, &o->sizes[o->nsizes]) != 0) {
                    fprintf(stderr, "%s: --size %s: expected up to 16 sizes from 1 to 16m\n", prog,
                            optarg);
                    return -1;
                }
                o->nsizes++;
            }
            break;
        }
        case 'n':
            o->count = strtol(optarg, &end, 10);
            if (*end || o->count < 1 || o->count > 100000000) {
                fprintf(stderr, "%s: --count %s: expected 1 to 100000000\n", prog, optarg);
                return -1;
            }
            break;
        case 'd':
            o->duration = strtod(optarg, &end);
            if (*end || !(o->duration > 0 && o->duration <= 3600)) {
                fprintf(stderr, "%s: --duration %s: expected seconds, up to 3600\n", prog, optarg);
                return -1;
            }
            break;
        case 'c':
            if (!strcmp(optarg, "same"))
                o->cpu = BENCH_CPU_SAME;
            else if (!strcmp(optarg, "cross"))
                o->cpu = BENCH_CPU_CROSS;
            else if (!strcmp(optarg, "none"))
                o->cpu = BENCH_CPU_NONE;
            else {
                fprintf(stderr, "%s: --cpu %s: expected same, cross or none\n", prog, optarg);
                return -1;
            }
            break;
        case 'm':
            if (!strcmp(optarg, "latency"))
                o->modes = BENCH_LATENCY;
            else if (!strcmp(optarg, "throughput"))
                o->modes = BENCH_THROUGHPUT;
            else if (!strcmp(optarg, "both"))
                o->modes = BENCH_LATENCY | BENCH_THROUGHPUT;
            else {
                fprintf(stderr, "%s: --mode %s: expected latency, throughput or both\n", prog,
                        optarg);
                return -1;
            }
            break;
        case 'r':
            o->repeat = (int)strtol(optarg, &end, 10);
            if (*end || o->repeat < 1 || o->repeat > 99) {
                fprintf(stderr, "%s: --repeat %s: expected 1 to 99\n", prog, optarg);
                return -1;
            }
            break;
        case 'R':
            o->raw = 0;
            break;
        case 'P':
            o->peers = 1;
            break;
        case 'J':
            o->json = optarg;
            o->json_stdout = optarg == NULL;
            break;
        case 'C':
            o->csv = optarg;
            o->csv_stdout = optarg == NULL;
            break;
        case 'G':
            o->chart = optarg;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            bench_usage(prog, stdout);
            return 1;
        default:
            bench_usage(prog, stderr);
            return -1;
        }
    }
    if (o->json_stdout && o->csv_stdout) {
        fprintf(stderr, "%s: --json and --csv cannot both take standard output; give one a FILE\n",
                prog);
        return -1;
    }
    return 0;
}

/* Removes the temporary directory and what the runs left in it (sockets, FIFOs, files). */
static void bench_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char p[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int bench_targets(const bench_opts *o, bench_list *l, int nurl, char **urls,
                         const char *tmpdir, bench_add_fn peers)
{
    if (o->peers) {
        static const char *const peer_schemes[] = {"unix", "tcp"};
        /* ZeroMQ and nng send one message per call: ipckit does too ("send": its default,
         * coalescing; "send flush=0": written through, one write per message), beside ipckit's
         * batches ("sendv": 256 messages per ipk_sendv, throughput only). */
        static const struct {
            const char *name, *query;
            int permsg;
            unsigned modes;
        } rows[] = {{"send", "", 1, 0},
                    {"send flush=0", "?flush=0", 1, 0},
                    {"sendv", "", 0, BENCH_THROUGHPUT}};
        for (int i = 0; i < 2; i++) {
            for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
                char u[600], label[48];
                if (!strcmp(peer_schemes[i], "unix"))
                    snprintf(u, sizeof u, "unix:%s/peers-unix-%zu.sock%s", tmpdir, k,
                             rows[k].query);
                else
                    snprintf(u, sizeof u, "tcp://127.0.0.1:0%s", rows[k].query);
                snprintf(label, sizeof label, "%s %s", peer_schemes[i], rows[k].name);
                if (bench_ipk_add_as(l, u, label, rows[k].permsg, rows[k].modes) != 0)
                    return -1;
            }
            if (o->raw && bench_raw_all(l, peer_schemes[i]) != 0)
                return -1;
        }
        return peers(l, tmpdir);
    }
    if (nurl == 0) {
        if (bench_ipk_add(l, NULL, tmpdir) != 0)
            return -1;
    }
    for (int i = 0; i < nurl; i++)
        if (bench_ipk_add(l, urls[i], tmpdir) != 0)
            return -1;
    if (!o->raw)
        return 0;
    /* Each floor right after its ipckit target, so that the two run close together in time. */
    bench_list out = {0};
    for (size_t i = 0; i < l->n; i++) {
        bench_spec *s = bench_list_add(&out, l->v[i].ops, l->v[i].label, l->v[i].mech);
        if (s == NULL)
            return -1;
        *s = l->v[i];
        if (s->ops == &bench_ops_ipckit && !s->modes && !s->solo && strcmp(s->mech, "shm") != 0) {
            /* Beside the batched stream (ipk_sendv), one ipk_send per message (shm: has one
             * floor, a ring with no batch call, for both). */
            bench_spec *p = bench_list_add(&out, s->ops, "", s->mech);
            if (p == NULL)
                return -1;
            *p = l->v[i];
            snprintf(p->label, sizeof p->label, "%.30s 1/call", l->v[i].label);
            p->modes = BENCH_THROUGHPUT;
            p->permsg = 1;
        }
        if (bench_raw_all(&out, l->v[i].mech) != 0)
            return -1;
    }
    if (nurl == 0 && bench_raw_all(&out, NULL) != 0) /* every floor, even without a target */
        return -1;
    free(l->v);
    *l = out;
    return 0;
}

/* The count for a run of about o->duration seconds, from a short probe. */
static long bench_calibrate(const bench_opts *o, bench_spec *s)
{
    if (o->count > 0)
        return o->count;
    bench_result r;
    long probe = s->mode == BENCH_LATENCY ? 200 : (long)(4 << 20) / (long)s->size;
    if (probe < 100)
        probe = 100;
    if (probe > 20000)
        probe = 20000;
    s->count = probe;
    bench_run(s, &r);
    double per = 0;
    if (r.ok)
        per = s->mode == BENCH_LATENCY ? (r.rtps > 0 ? 1.0 / r.rtps : 0)
                                       : (r.mps > 0 ? 1.0 / r.mps : 0);
    if (per <= 0)
        return probe; /* the real run will say what is wrong */
    double n = o->duration / per;
    long lo = 200, hi = s->mode == BENCH_LATENCY ? 2000000 : 50000000;
    return n < lo ? lo : n > hi ? hi : (long)n;
}

static int bench_key_cmp_p50(const void *a, const void *b)
{
    const bench_result *x = a, *y = b;
    double u = x->mode == BENCH_LATENCY ? x->p50 : -x->mps;
    double v = y->mode == BENCH_LATENCY ? y->p50 : -y->mps;
    if (!x->ok || !y->ok)
        return y->ok - x->ok;
    return (u > v) - (u < v);
}

static int bench_group_before(const bench_result *a, const bench_result *b)
{
    return a->mode < b->mode || (a->mode == b->mode && a->size < b->size);
}

static void bench_progress(const bench_opts *o, int done, int total, const bench_spec *s)
{
    if (o->quiet || !isatty(2))
        return;
    if (s == NULL) {
        fprintf(stderr, "\r\033[K");
        return;
    }
    fprintf(stderr, "\r\033[K[%d/%d] %s %s (%s), %zu bytes", done + 1, total,
            s->mode == BENCH_LATENCY ? "latency" : "throughput", s->label, s->ops->impl, s->size);
}

static void bench_cmdline(char *out, size_t cap, const char *prog, int argc, char **argv)
{
    size_t o = (size_t)snprintf(out, cap, "%s", prog);
    for (int i = 1; i < argc && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, " %s", argv[i]);
}

/* Plans every (mode, size, target) run; a mechanism that cannot carry a size runs once, at the
 * largest size it carries, in the group of the first size. */
static size_t bench_plan(const bench_opts *o, const bench_list *l, bench_spec *plan,
                         const char *tmpdir)
{
    size_t n = 0;
    for (unsigned m = BENCH_LATENCY; m <= BENCH_THROUGHPUT; m <<= 1) {
        if (!(o->modes & m))
            continue;
        for (int z = 0; z < o->nsizes; z++)
            for (size_t i = 0; i < l->n; i++) {
                bench_spec s = l->v[i];
                s.mode = (enum bench_mode)m;
                s.size = o->sizes[z];
                s.cpu = o->cpu;
                s.tmpdir = tmpdir;
                /* A floor of one mode only (the shm ping-pong, the shm ring) is no row of the
                 * other: the other mode has its own floor. */
                if (s.modes && !(s.modes & m) && (strcmp(s.ops->impl, "ipckit") != 0 || s.permsg))
                    continue;
                if (s.maxsize && s.size > s.maxsize) {
                    if (z != 0)
                        continue;
                    s.size = s.maxsize;
                }
                plan[n++] = s;
            }
    }
    return n;
}

int bench_main(const char *prog, int argc, char **argv, bench_add_fn peers)
{
    bench_opts o = {.sizes = {64, 1024, 65536},
                    .nsizes = 3,
                    .duration = 0.4,
                    .modes = BENCH_LATENCY | BENCH_THROUGHPUT,
                    .repeat = 1,
                    .raw = 1};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.cpu = ncpu >= 2 ? BENCH_CPU_CROSS : BENCH_CPU_SAME;
    int r = bench_parse_opts(prog, &o, argc, argv);
    if (r != 0)
        return r > 0 ? 0 : 2;
    if (o.peers && peers == NULL) {
        fprintf(stderr,
                "%s: --peers needs the peer driver (ipckit-bench-peers), built when "
                "libzmq and nng are found\n",
                prog);
        return 1;
    }
    char tmpdir[] = "/tmp/ipkbench.XXXXXX";
    if (mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "%s: mkdtemp: %s\n", prog, strerror(errno));
        return 1;
    }
    bench_list l = {0};
    if (bench_targets(&o, &l, argc - optind, argv + optind, tmpdir, peers) != 0) {
        bench_rmtree(tmpdir);
        free(l.v);
        return 2;
    }
    bench_spec *plan = calloc(l.n * (size_t)o.nsizes * 2 + 1, sizeof *plan);
    size_t np = plan ? bench_plan(&o, &l, plan, tmpdir) : 0;
    bench_result *res = calloc(np * (size_t)o.repeat + 1, sizeof *res);
    bench_result *fin = calloc(np + 1, sizeof *fin);
    if (plan == NULL || res == NULL || fin == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        bench_rmtree(tmpdir);
        return 1;
    }
    struct sigaction sa = {.sa_handler = bench_on_signal}, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int total = (int)(np * (size_t)o.repeat), done = 0;
    for (int rep = 0; rep < o.repeat && !bench_stop; rep++)
        for (size_t i = 0; i < np && !bench_stop; i++, done++) {
            bench_progress(&o, done, total, &plan[i]);
            if (!plan[i].skip)
                plan[i].count = bench_calibrate(&o, &plan[i]);
            bench_run(&plan[i], &res[i * (size_t)o.repeat + (size_t)rep]);
        }
    bench_progress(&o, 0, 0, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    int reps = bench_stop ? 0 : o.repeat;
    size_t nfin = 0;
    for (size_t i = 0; i < np && reps > 0; i++) {
        bench_result *v = &res[i * (size_t)o.repeat];
        qsort(v, (size_t)reps, sizeof *v, bench_key_cmp_p50);
        int ok = 0;
        while (ok < reps && v[ok].ok)
            ok++;
        fin[nfin++] = ok ? v[(ok - 1) / 2] : v[0];
    }
    /* One table per (mode, size), in the order planned; insertion sort keeps that order. */
    for (size_t i = 1; i < nfin; i++)
        for (size_t j = i; j > 0 && bench_group_before(&fin[j], &fin[j - 1]); j--) {
            bench_result t = fin[j];
            fin[j] = fin[j - 1];
            fin[j - 1] = t;
        }
    if (bench_stop)
        fprintf(stderr, "%s: interrupted\n", prog);
    char cmd[1024];
    bench_cmdline(cmd, sizeof cmd, prog, argc, argv);
    bench_report rep = {.r = fin, .n = nfin, .cmdline = cmd, .ncpu = (int)ncpu};
    int rc = 0;
    if (o.json_stdout)
        bench_print_json(stdout, &rep);
    else if (o.csv_stdout)
        bench_print_csv(stdout, &rep);
    else
        bench_print_table(stdout, &rep);
    const char *files[2] = {o.json_stdout ? NULL : o.json, o.csv_stdout ? NULL : o.csv};
    for (int k = 0; k < 2; k++) {
        FILE *f = files[k] ? fopen(files[k], "w") : NULL;
        if (files[k] && f == NULL) {
            fprintf(stderr, "%s: %s: %s\n", prog, files[k], strerror(errno));
            rc = 1;
            continue;
        }
        if (f == NULL)
            continue;
        if (k == 0)
            bench_print_json(f, &rep);
        else
            bench_print_csv(f, &rep);
        if (fclose(f) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, files[k], strerror(errno));
            rc = 1;
        }
    }
    if (o.chart && bench_write_svg(&rep, o.chart) != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, o.chart, strerror(errno));
        rc = 1;
    }
    bench_rmtree(tmpdir);
    free(plan);
    free(res);
    free(fin);
    free(l.v);
    return bench_stop ? 130 : rc;
}
