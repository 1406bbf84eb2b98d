/*
 * test_chart.c - the bench chart (bench/engine/report.c) over a fabricated results set, so that
 * no benchmark runs: only what ran is in the legend, p50 bars carry a p99 whisker, times are in
 * µs, each panel has an axis, the log scale keeps a 0.3 µs bar readable beside a 5 ms one, and
 * batched sends are marked.
 */
#include "bench.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static bench_result lat(const char *label, const char *impl, size_t size, double p50, double p99)
{
    bench_result r = {.impl = impl,
                      .size = size,
                      .mode = BENCH_LATENCY,
                      .ok = 1,
                      .n = 1000,
                      .p50 = p50,
                      .p99 = p99,
                      .batch = 1};
    snprintf(r.label, sizeof r.label, "%s", label);
    snprintf(r.mech, sizeof r.mech, "%s", label);
    return r;
}

static bench_result thr(const char *label, const char *impl, size_t size, double mps, long batch)
{
    bench_result r = {.impl = impl,
                      .size = size,
                      .mode = BENCH_THROUGHPUT,
                      .ok = 1,
                      .n = 1000,
                      .mps = mps,
                      .mbps = mps * (double)size / 1e6,
                      .batch = batch};
    snprintf(r.label, sizeof r.label, "%s", label);
    snprintf(r.mech, sizeof r.mech, "%s", label);
    return r;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* The width of the bar drawn after the text `label`. */
static int bar_after(const char *svg, const char *label)
{
    const char *p = strstr(svg, label);
    assert_non_null(p);
    p = strstr(p, "class=\"bar\"");
    assert_non_null(p);
    int w = 0;
    assert_int_equal(sscanf(strstr(p, "width=\"") + 7, "%d", &w), 1);
    return w;
}

static void t_chart(void **state)
{
    (void)state;
    bench_result r[] = {
        lat("shm", "ipckit", 64, 300, 900),    lat("shm", "raw", 64, 250, 600),
        lat("file", "ipckit", 64, 5e6, 9e6),   lat("unix", "ipckit", 64, 12000, 40000),
        lat("unix", "raw", 64, 11000, 30000),  lat("tcp", "ipckit", 1024, 25000, 80000),
        thr("unix", "ipckit", 64, 2.4e6, 256), thr("unix", "raw", 64, 1e5, 1),
        thr("tcp", "ipckit", 1024, 8e5, 256),
    };
    bench_result failed = lat("udp", "zmq", 64, 1, 1);
    failed.ok = 0; /* a peer that did not run: not in the chart, not in the legend */
    bench_result all[sizeof r / sizeof r[0] + 1];
    memcpy(all, r, sizeof r);
    all[sizeof r / sizeof r[0]] = failed;
    bench_report rep = {all, sizeof all / sizeof all[0], "ipckit bench --fabricated", 2};
    char path[256];
    ipkt_path(path, sizeof path, "chart.svg");
    assert_int_equal(bench_write_svg(&rep, path), 0);
    static char svg[1 << 16];
    ipkt_slurp(path, svg, sizeof svg);
    assert_true(strncmp(svg, "<svg ", 5) == 0);
    assert_non_null(strstr(svg, "</svg>\n"));

    /* Only what ran: ipckit and the floor; no zmq or nng. */
    assert_int_equal(count(svg, "class=\"legend\""), 3); /* ipckit, raw, the batching mark */
    assert_non_null(strstr(svg, ">ipckit</text>"));
    assert_non_null(strstr(svg, ">raw syscalls (the floor)</text>"));
    assert_null(strstr(svg, "zmq"));
    assert_null(strstr(svg, "nng"));
    assert_null(strstr(svg, "udp"));
    /* One panel per mode and size, each with its axis. */
    assert_int_equal(count(svg, "class=\"panel\""), 4);
    assert_int_equal(count(svg, "class=\"axis\""), 4);
    assert_true(count(svg, "class=\"tick\"") >= 4 * 3);
    /* p50 bars with a p99 whisker on every latency row; times in µs, never "us". */
    assert_int_equal(count(svg, "class=\"p99\""), 6);
    assert_non_null(strstr(svg, "12 \xc2\xb5s (p99 40 \xc2\xb5s)"));
    assert_non_null(strstr(svg, ">5 ms (p99 9 ms)"));
    assert_null(strstr(svg, " us"));
    /* Log scale: a 0.3 µs bar stays readable beside a 5 ms one (linear: 1/16667 of it). */
    int fast = bar_after(svg, "shm (ipckit)"), slow = bar_after(svg, "file (ipckit)");
    assert_true(fast * 4 > slow);
    assert_true(fast < slow);
    /* Batching is visible: the two batched rows are hatched and say so; the floor is not. */
    assert_int_equal(count(svg, "class=\"batched\""), 2);
    assert_non_null(strstr(svg, "batched: up to 256 per call"));
    assert_int_equal(count(svg, "MB/s, one call per message</text>"), 1);
}

IPKT_MAIN(cmocka_unit_test(t_chart))
