/*
 * report.c - the results as a table for people, JSON and CSV for programs, and an SVG
 * chart (written by hand: no plotting library): one panel per mode and size on a logarithmic
 * axis, round-trip p50 with a whisker to p99 in µs, messages per second with batched sends
 * hatched, and a legend of only what ran.
 *
 * Every ipckit row carries its ratio to each other implementation of the same mechanism in the
 * same run ("1.03x raw"): absolute times on a shared machine are noise, ratios taken side by
 * side are what a reader can trust.
 */
#include "bench.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static const char *bench_cpu_name(enum bench_cpu c)
{
    return c == BENCH_CPU_SAME ? "same" : c == BENCH_CPU_CROSS ? "cross" : "none";
}

/* ipckit row a against row b: > 1 means ipckit takes longer (latency) or moves more (stream). */
static double bench_ratio(const bench_result *a, const bench_result *b)
{
    if (!a->ok || !b->ok)
        return 0;
    if (a->mode == BENCH_LATENCY)
        return b->p50 > 0 ? a->p50 / b->p50 : 0;
    return b->mps > 0 ? a->mps / b->mps : 0;
}

/* Rows compared: the same mechanism, mode and size, the same topology (key), and in a stream
 * the same kind of sending: one call per message beside one call per message, batches beside
 * batches. */
static int bench_same_group(const bench_result *a, const bench_result *b)
{
    return a->mode == b->mode && a->size == b->size && strcmp(a->mech, b->mech) == 0 &&
           strcmp(a->key, b->key) == 0 && strcmp(a->impl, b->impl) != 0 &&
           (a->mode == BENCH_LATENCY || strcmp(a->mech, "shm") == 0 ||
            (a->batch > 1) == (b->batch > 1));
}

/* Whether row a carries ratios to row b: an ipckit row to every other implementation; an
 * engine floor to the independent program's figure (the check of the floor). */
static int bench_compares(const bench_result *a, const bench_result *b)
{
    if (!bench_same_group(a, b))
        return 0;
    if (strcmp(a->impl, "ipckit") == 0)
        return 1;
    return strcmp(a->impl, "raw") == 0 && strcmp(b->impl, "indep") == 0;
}

/* "1.03x raw  0.45x zmq" for an ipckit row; "floor" for a raw one. */
static void bench_ratios_text(const bench_report *rep, size_t i, char *out, size_t cap)
{
    const bench_result *a = &rep->r[i];
    size_t o = 0;
    out[0] = '\0';
    if (strcmp(a->impl, "indep") == 0) {
        snprintf(out, cap, "(independent)");
        return;
    }
    if (strcmp(a->impl, "raw") == 0)
        o = (size_t)snprintf(out, cap, "(floor)");
    if (!a->ok)
        return;
    for (size_t j = 0; j < rep->n && o + 24 < cap; j++) {
        double x = bench_compares(a, &rep->r[j]) ? bench_ratio(a, &rep->r[j]) : 0;
        if (x > 0)
            o += (size_t)snprintf(out + o, cap - o, "%s%.2fx %s", o ? "  " : "", x, rep->r[j].impl);
    }
}

static void bench_us(char *out, size_t cap, double ns)
{
    if (ns >= 1e6)
        snprintf(out, cap, "%.0f", ns / 1e3);
    else
        snprintf(out, cap, "%.1f", ns / 1e3);
}

static void bench_header(FILE *f, const bench_report *rep, const bench_result *r)
{
    fprintf(f, "\n%s, %zu-byte messages, cpu %s",
            r->mode == BENCH_LATENCY ? "LATENCY (round trip, microseconds)"
                                     : "THROUGHPUT (one way, checked)",
            r->size, bench_cpu_name(r->cpu));
    fprintf(f, "  [%d CPUs]\n", rep->ncpu);
    if (r->mode == BENCH_LATENCY)
        fprintf(f, "%-24s %-7s %8s %8s %8s %8s %9s %8s %11s %-9s %s\n", "transport", "impl",
                "rt min", "rt p50", "rt p90", "rt p99", "rt p99.9", "rt max", "round trip/s",
                "cpu A/B", "rt p50 ratio");
    else
        fprintf(f, "%-24s %-7s %12s %10s %10s %5s %-9s %s\n", "transport", "impl", "msgs/s", "MB/s",
                "checked", "batch", "cpu A/B", "msgs/s ratio");
}

void bench_print_table(FILE *f, const bench_report *rep)
{
    const bench_result *prev = NULL;
    for (size_t i = 0; i < rep->n; i++) {
        const bench_result *r = &rep->r[i];
        if (prev == NULL || prev->mode != r->mode || prev->size != r->size)
            bench_header(f, rep, r);
        prev = r;
        char cpus[40], ratio[160];
        snprintf(cpus, sizeof cpus, "%s/%s", r->cpus[0][0] ? r->cpus[0] : "-",
                 r->cpus[1][0] ? r->cpus[1] : "-");
        bench_ratios_text(rep, i, ratio, sizeof ratio);
        if (!r->ok) {
            fprintf(f, "%-24s %-7s %s\n", r->label, r->impl, r->err);
            continue;
        }
        if (r->mode == BENCH_LATENCY) {
            char v[6][24];
            double x[6] = {r->min, r->p50, r->p90, r->p99, r->p999, r->max};
            for (int k = 0; k < 6; k++)
                bench_us(v[k], sizeof v[k], x[k]);
            fprintf(f, "%-24s %-7s %8s %8s %8s %8s %9s %8s %11.0f %-9s %s\n", r->label, r->impl,
                    v[0], v[1], v[2], v[3], v[4], v[5], r->rtps, cpus, ratio);
        } else {
            fprintf(f, "%-24s %-7s %12.0f %10.1f %10s %5ld %-9s %s\n", r->label, r->impl, r->mps,
                    r->mbps, r->csum_ok ? "yes" : "NO", r->batch, cpus, ratio);
        }
    }
    fprintf(f, "\nround trip = one message there and back between two processes; ratio = ipckit "
               "divided by the other implementation\nof the same mechanism in this run (latency: "
               "lower is better; msgs/s: higher is better); a raw row's ratio is the\nengine's "
               "floor divided by the independent program (bench/indep) on the same row. batch = "
               "messages per send\ncall: 1-per-call rows are compared with 1-per-call floors, "
               "batched rows with batched floors (a batch of\ncontiguous messages in one write(), "
               "or one sendmmsg()). \"pair\": the unixgram socketpair, exempt from\n"
               "net.unix.max_dgram_qlen; every other unixgram row has the listener's topology. "
               "udp \"pair\": two sockets\nconnected to each other; ipckit's udp row and "
               "'indep udp' receive on an unconnected socket and send on\nanother (four "
               "sockets); every udp receive waits at most 5 s.\n");
}

/* One "key": number per entry of a latency summary, in nanoseconds. */
static void bench_json_ns(json_w *w, const bench_result *r)
{
    static const char *const keys[] = {"min", "p50", "p90", "p99", "p99.9", "max"};
    const double v[] = {r->min, r->p50, r->p90, r->p99, r->p999, r->max};
    json_obj(w);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_key(w, keys[i]);
        json_num(w, v[i], 0);
    }
    json_end(w);
}

static void bench_json_result(json_w *w, const bench_report *rep, const bench_result *r)
{
    char got[24], want[24];
    json_obj(w);
    json_key(w, "transport");
    json_str(w, r->label);
    json_key(w, "impl");
    json_str(w, r->impl);
    json_key(w, "mechanism");
    json_str(w, r->mech);
    json_key(w, "mode");
    json_str(w, r->mode == BENCH_LATENCY ? "latency" : "throughput");
    json_key(w, "size");
    json_uint(w, r->size);
    json_key(w, "cpu");
    json_str(w, bench_cpu_name(r->cpu));
    json_key(w, "cpus_a");
    json_str(w, r->cpus[0]);
    json_key(w, "cpus_b");
    json_str(w, r->cpus[1]);
    json_key(w, "ok");
    json_bool(w, r->ok);
    if (!r->ok) {
        json_key(w, "error");
        json_str(w, r->err);
    } else if (r->mode == BENCH_LATENCY) {
        json_key(w, "round_trips");
        json_int(w, r->n);
        json_key(w, "round_trip_ns");
        bench_json_ns(w, r);
        json_key(w, "round_trips_per_s");
        json_num(w, r->rtps, 1);
    } else {
        json_key(w, "messages");
        json_int(w, r->n);
        json_key(w, "received");
        json_int(w, r->received);
        json_key(w, "seconds");
        json_num(w, r->secs, 6);
        json_key(w, "messages_per_s");
        json_num(w, r->mps, 1);
        json_key(w, "mb_per_s");
        json_num(w, r->mbps, 3);
        json_key(w, "batch");
        json_int(w, r->batch);
        snprintf(got, sizeof got, "%016llx", (unsigned long long)r->csum_got);
        snprintf(want, sizeof want, "%016llx", (unsigned long long)r->csum_want);
        json_key(w, "checksum");
        if (strcmp(r->impl, "indep") == 0) { /* it checks message by message: no totals */
            json_obj(w);
            json_key(w, "ok");
            json_bool(w, r->csum_ok);
            json_end(w);
        } else {
            json_obj(w);
            json_key(w, "got");
            json_str(w, got);
            json_key(w, "want");
            json_str(w, want);
            json_key(w, "ok");
            json_bool(w, r->csum_ok);
            json_end(w);
        }
    }
    json_key(w, "ratios");
    json_obj(w);
    for (size_t j = 0; j < rep->n; j++) {
        double x = bench_compares(r, &rep->r[j]) ? bench_ratio(r, &rep->r[j]) : 0;
        if (x > 0) {
            json_key(w, rep->r[j].impl);
            json_num(w, x, 4);
        }
    }
    json_end(w);
    json_end(w);
}

void bench_print_json(FILE *f, const bench_report *rep)
{
    struct utsname u;
    uname(&u);
    json_w w;
    json_init(&w, f);
    json_obj(&w);
    json_key(&w, "tool");
    json_str(&w, "ipckit bench");
    json_key(&w, "command");
    json_str(&w, rep->cmdline ? rep->cmdline : "");
    json_key(&w, "cpus");
    json_int(&w, rep->ncpu);
    json_key(&w, "kernel");
    json_str(&w, u.release);
    json_key(&w, "results");
    json_arr(&w);
    for (size_t i = 0; i < rep->n; i++) {
        json_nl(&w);
        bench_json_result(&w, rep, &rep->r[i]);
    }
    json_nl(&w);
    json_end(&w);
    json_end(&w);
    json_nl(&w);
}

void bench_print_csv(FILE *f, const bench_report *rep)
{
    fprintf(f, "transport,impl,mechanism,mode,size,cpu,cpus_a,cpus_b,ok,count,rt_min_ns,rt_p50_ns,"
               "rt_p90_ns,rt_p99_ns,rt_p999_ns,rt_max_ns,round_trips_per_s,messages_per_s,mb_per_s,"
               "checksum_ok,error\n");
    for (size_t i = 0; i < rep->n; i++) {
        const bench_result *r = &rep->r[i];
        char err[sizeof r->err];
        snprintf(err, sizeof err, "%s", r->err);
        for (char *p = err; *p; p++)
            if (*p == ',' || *p == '"')
                *p = ';';
        int lat = r->mode == BENCH_LATENCY;
        fprintf(f, "%s,%s,%s,%s,%zu,%s,%s,%s,%d,%ld,", r->label, r->impl, r->mech,
                lat ? "latency" : "throughput", r->size, bench_cpu_name(r->cpu), r->cpus[0],
                r->cpus[1], r->ok, r->n);
        if (r->ok && lat)
            fprintf(f, "%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.1f,,,,", r->min, r->p50, r->p90, r->p99,
                    r->p999, r->max, r->rtps);
        else if (r->ok)
            fprintf(f, ",,,,,,,%.1f,%.3f,%d,", r->mps, r->mbps, r->csum_ok);
        else
            fprintf(f, ",,,,,,,,,,");
        fprintf(f, "%s\n", err);
    }
}

/* ---- SVG ---- */

static const char *bench_color(const char *impl)
{
    if (strcmp(impl, "ipckit") == 0)
        return "#2b6cb0";
    if (strcmp(impl, "raw") == 0)
        return "#a0aec0";
    if (strcmp(impl, "zmq") == 0)
        return "#dd6b20";
    return "#38a169";
}

#define SVG_W      1000
#define SVG_ROW    20
#define SVG_LABEL  230 /* x where the axis and the bars start */
#define SVG_BARMAX 520 /* the axis' length */

static void bench_svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

/* A (mode, size) panel's rows: the results that ran, in the report's order. */
static int bench_svg_in(const bench_result *r, enum bench_mode mode, size_t size)
{
    return r->ok && r->mode == mode && r->size == size;
}

/* The value a bar shows: round-trip p50 in ns, or messages per second. */
static double bench_svg_value(const bench_result *r)
{
    return r->mode == BENCH_LATENCY ? r->p50 : r->mps;
}

/* A logarithmic axis from 10^lo to 10^hi (whole decades around the panel's values), so that a
 * mechanism a thousand times slower than another leaves both bars readable. */
typedef struct svg_axis {
    int lo, hi;
} svg_axis;

static int bench_svg_x(const svg_axis *ax, double v)
{
    if (v <= 0)
        return SVG_LABEL;
    double t = (log10(v) - ax->lo) / (ax->hi - ax->lo);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return SVG_LABEL + (int)(t * SVG_BARMAX + 0.5);
}

/* "250 ns", "12 µs", "3.4 ms" for a latency; "500/s", "20k/s", "1.2M/s" for a rate. */
static void bench_svg_fmt(char *out, size_t cap, enum bench_mode mode, double v)
{
    if (mode == BENCH_LATENCY) {
        const char *unit = v >= 1e6 ? "ms" : v >= 1e3 ? "\xc2\xb5s" : "ns";
        double x = v >= 1e6 ? v / 1e6 : v >= 1e3 ? v / 1e3 : v;
        snprintf(out, cap, x < 10 ? "%.2g %s" : "%.0f %s", x, unit);
    } else {
        const char *unit = v >= 1e6 ? "M" : v >= 1e3 ? "k" : "";
        double x = v >= 1e6 ? v / 1e6 : v >= 1e3 ? v / 1e3 : v;
        snprintf(out, cap, x < 10 ? "%.2g%s/s" : "%.0f%s/s", x, unit);
    }
}

/* The axis: a gridline and a label at every decade. */
static void bench_svg_axis(FILE *f, const svg_axis *ax, enum bench_mode mode, int top, int bottom)
{
    fprintf(f, "<g class=\"axis\" stroke=\"#cbd5e0\">\n");
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#4a5568\"/>\n", SVG_LABEL,
            bottom, SVG_LABEL + SVG_BARMAX, bottom);
    for (int d = ax->lo; d <= ax->hi; d++) {
        int x = bench_svg_x(ax, pow(10, d));
        char t[32];
        bench_svg_fmt(t, sizeof t, mode, pow(10, d));
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
                "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" stroke=\"none\" "
                "fill=\"#4a5568\" font-size=\"11\">%s</text>\n",
                x, top, x, bottom + 4, x, bottom + 16, t);
    }
    fprintf(f, "</g>\n");
}

/* One panel: the rows of one (mode, size) on their own axis; returns the y below it. */
static int bench_svg_panel(FILE *f, const bench_report *rep, enum bench_mode mode, size_t size,
                           int y)
{
    double lo = 0, hi = 0;
    int rows = 0;
    for (size_t i = 0; i < rep->n; i++) {
        const bench_result *r = &rep->r[i];
        if (!bench_svg_in(r, mode, size))
            continue;
        double v = bench_svg_value(r), top = mode == BENCH_LATENCY && r->p99 > v ? r->p99 : v;
        if (v > 0 && (lo == 0 || v < lo))
            lo = v;
        if (top > hi)
            hi = top;
        rows++;
    }
    if (rows == 0)
        return y;
    /* One decade below the smallest value, so that its bar has a length. */
    svg_axis ax = {(int)floor(log10(lo > 0 ? lo : 1)) - 1, (int)ceil(log10(hi > 1 ? hi : 10))};
    if (ax.hi <= ax.lo + 1)
        ax.hi = ax.lo + 2;
    fprintf(f,
            "<text class=\"panel\" x=\"10\" y=\"%d\" font-weight=\"bold\" font-size=\"15\">%s, "
            "%zu-byte messages</text>\n"
            "<text x=\"10\" y=\"%d\" fill=\"#4a5568\">%s</text>\n",
            y + 14, mode == BENCH_LATENCY ? "Round-trip latency" : "One-way throughput", size,
            y + 30,
            mode == BENCH_LATENCY
                ? "bar: p50, whisker to p99; log scale, shorter is better"
                : "messages per second; log scale, longer is better; hatched: batched sends");
    y += 40;
    /* The grid first, so that the bars are drawn over it. */
    bench_svg_axis(f, &ax, mode, y, y + rows * SVG_ROW + 2);
    for (size_t i = 0; i < rep->n; i++) {
        const bench_result *r = &rep->r[i];
        if (!bench_svg_in(r, mode, size))
            continue;
        double v = bench_svg_value(r);
        int x = bench_svg_x(&ax, v), w = x - SVG_LABEL > 1 ? x - SVG_LABEL : 1;
        char t[32], t99[32] = "";
        bench_svg_fmt(t, sizeof t, mode, v);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", SVG_LABEL - 8, y + 14);
        bench_svg_text(f, r->label);
        fprintf(f, " (%s)</text>\n", strcmp(r->impl, "raw") == 0 ? "raw syscalls" : r->impl);
        fprintf(f,
                "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n",
                SVG_LABEL, y + 3, w, SVG_ROW - 6, bench_color(r->impl));
        int end = x;
        if (mode == BENCH_LATENCY && r->p99 > 0) { /* the whisker: from p50 to p99 */
            int x99 = bench_svg_x(&ax, r->p99);
            fprintf(f,
                    "<g class=\"p99\" stroke=\"#1a202c\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" "
                    "y2=\"%d\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/></g>\n",
                    x, y + SVG_ROW / 2, x99, y + SVG_ROW / 2, x99, y + 4, x99, y + SVG_ROW - 4);
            bench_svg_fmt(t99, sizeof t99, mode, r->p99);
            end = x99 > end ? x99 : end;
        }
        if (r->batch > 1)
            fprintf(f,
                    "<rect class=\"batched\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                    "fill=\"url(#hatch)\"/>\n",
                    SVG_LABEL, y + 3, w, SVG_ROW - 6);
        fprintf(f, "<text x=\"%d\" y=\"%d\">%s", end + 6, y + 14, t);
        if (t99[0])
            fprintf(f, " (p99 %s)", t99);
        if (mode == BENCH_THROUGHPUT)
            fprintf(f, ", %.1f MB/s, %s", r->mbps,
                    r->batch > 1 ? "batched: up to " : "one call per message");
        if (mode == BENCH_THROUGHPUT && r->batch > 1)
            fprintf(f, "%ld per call", r->batch);
        fprintf(f, "</text>\n");
        y += SVG_ROW;
    }
    return y + 34;
}

/* The legend: only the implementations that ran; the marks the panels use. */
static void bench_svg_legend(FILE *f, const bench_report *rep, int y)
{
    static const char *const impls[] = {"ipckit", "raw", "zmq", "nng"};
    int x = 10, batched = 0;
    for (size_t i = 0; i < rep->n; i++)
        batched |= rep->r[i].ok && rep->r[i].batch > 1;
    for (int k = 0; k < 4; k++) {
        int ran = 0;
        for (size_t i = 0; i < rep->n && !ran; i++)
            ran = rep->r[i].ok && strcmp(rep->r[i].impl, impls[k]) == 0;
        if (!ran)
            continue;
        fprintf(f,
                "<g class=\"legend\"><rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
                "fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text></g>\n",
                x, y, bench_color(impls[k]), x + 18, y + 11,
                k == 1 ? "raw syscalls (the floor)" : impls[k]);
        x += k == 1 ? 190 : 90;
    }
    if (batched)
        fprintf(f,
                "<g class=\"legend\"><rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
                "fill=\"#4a5568\"/><rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
                "fill=\"url(#hatch)\"/><text x=\"%d\" y=\"%d\">batched: several messages per "
                "system call (sendv); unhatched: one call per message</text></g>\n",
                x, y, x, y, x + 18, y + 11);
}

/* Whether result i is the first of its (mode, size): a panel is drawn once, wherever its rows
 * are in the report. */
static int bench_svg_first(const bench_report *rep, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (rep->r[j].mode == rep->r[i].mode && rep->r[j].size == rep->r[i].size)
            return 0;
    return 1;
}

int bench_write_svg(const bench_report *rep, const char *path)
{
    /* Height: a title and the legend, then per panel its headings, rows and axis. */
    int rows = 0, panels = 0;
    for (size_t i = 0; i < rep->n; i++) {
        rows += rep->r[i].ok;
        panels += bench_svg_first(rep, i);
    }
    int h = 80 + rows * SVG_ROW + panels * 76;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
            "patternTransform=\"rotate(45)\"><rect width=\"2\" height=\"6\" fill=\"white\" "
            "fill-opacity=\"0.6\"/></pattern></defs>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"10\" y=\"22\" font-size=\"18\" font-weight=\"bold\">ipckit bench</text>\n"
            "<text x=\"140\" y=\"22\" font-size=\"12\" fill=\"#4a5568\">",
            SVG_W, h);
    bench_svg_text(f, rep->cmdline ? rep->cmdline : "");
    fprintf(f, " (%d CPUs, cpu %s)</text>\n", rep->ncpu,
            rep->n ? bench_cpu_name(rep->r[0].cpu) : "none");
    bench_svg_legend(f, rep, 34);
    int y = 60;
    for (size_t i = 0; i < rep->n; i++)
        if (bench_svg_first(rep, i))
            y = bench_svg_panel(f, rep, rep->r[i].mode, rep->r[i].size, y);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}
