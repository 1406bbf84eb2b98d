/*
 * test_bench.c - `ipckit bench` end to end with tiny counts: the structure and the invariants
 * of what it reports (every planned row present, counts as asked, percentiles ordered,
 * checksums verified, JSON that parses, CSV with one line per row, an SVG that parses), never
 * a timing. python3 reads the JSON and the SVG, as a user's script would.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define IPKT_TOOL  IPKT_BIN_DIR "/ipckit"
#define IPKT_PEERS IPKT_BIN_DIR "/bench/peers/ipckit-bench-peers"

/* Every transport but signal: and mq:, whose budgets (pending real-time signals, message-queue
 * bytes) are per user: the suite runs test binaries in parallel, and test_signal and test_mq
 * fill those budgets on purpose. The engine runs them by the same code as the others. */
#define IPKT_MOST "unix: unixpacket: unixgram: tcp: udp: fifo: exec: sysv: shm: file:"

/* Runs a shell command with its stdout in a new file `out` under ipkt_dir() and its stderr in
 * out.err; returns the exit code. */
static int run(const char *cmd, char *out, size_t cap)
{
    char err[600], line[4096];
    ipkt_path(out, cap, "out");
    snprintf(err, sizeof err, "%s.err", out);
    snprintf(line, sizeof line, "%s >%s 2>%s", cmd, out, err);
    int st = system(line);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0) {
        snprintf(line, sizeof line, "cat %s %s >&2", out, err);
        if (system(line) != 0)
            print_error("cannot show the output\n");
    }
    return WEXITSTATUS(st);
}

/* A python3 check over the JSON in file `json`: every row ok (or "not built" for ipckit), the
 * latency invariants, the throughput invariants; prints what is wrong and exits 1. */
static const char py_check[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "count, modes, want_impls = int(sys.argv[2]), sys.argv[3].split(','), sys.argv[4].split(',')\n"
    "rows = d['results']\n"
    "assert d['tool'] == 'ipckit bench' and d['cpus'] >= 1, d\n"
    "assert rows, 'no rows'\n"
    "seen = set()\n"
    "for r in rows:\n"
    "    seen.add(r['impl'])\n"
    "    assert r['mode'] in modes, r\n"
    "    if not r['ok']:\n"
    "        assert 'n/a' in r['error'] or (r['impl'] == 'ipckit' and 'not built' in r['error']), "
    "r\n"
    "        continue\n"
    "    assert r['cpus_a'] and r['cpus_b'], r\n"
    "    if r['mode'] == 'latency':\n"
    "        t = r['round_trip_ns']\n"
    "        assert r['round_trips'] == count, r\n"
    "        assert 0 < t['min'] <= t['p50'] <= t['p90'] <= t['p99'] <= t['p99.9'] <= t['max'], r\n"
    "        assert r['round_trips_per_s'] > 0, r\n"
    "    else:\n"
    "        c = r['checksum']\n"
    "        assert c['ok'], r\n"
    "        assert r['impl'] == 'indep' or c['got'] == c['want'], r\n"
    "        assert r['messages'] == count and r['received'] > count, r\n"
    "        assert r['messages_per_s'] > 0 and r['mb_per_s'] > 0, r\n"
    "    for k, v in r['ratios'].items():\n"
    "        assert (r['impl'] == 'ipckit' or (r['impl'] == 'raw' and k == 'indep')) and v > 0, r\n"
    "for i in want_impls:\n"
    "    assert i in seen, (i, seen)\n"
    "print(len(rows))\n";

static void check_json(const char *file, int count, const char *modes, const char *impls)
{
    char py[512], cmd[2048], out[512];
    ipkt_path(py, sizeof py, "check.py");
    FILE *f = fopen(py, "w");
    assert_non_null(f);
    fputs(py_check, f);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "python3 %s %s %d %s %s", py, file, count, modes, impls);
    assert_int_equal(run(cmd, out, sizeof out), 0);
}

static void t_latency(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(run(IPKT_TOOL
                         " bench -q -n 40 --size 64,1000 --mode latency --json " IPKT_MOST,
                         out, sizeof out),
                     0);
    check_json(out, 40, "latency", "raw");
}

static void t_throughput(void **state)
{
    (void)state;
    char out[512];
    /* Sizes that are not a multiple of 8 exercise the checksum's padding. */
    assert_int_equal(run(IPKT_TOOL " bench -q -n 300 --size 100,4099 --mode throughput --cpu "
                                   "same --json " IPKT_MOST,
                         out, sizeof out),
                     0);
    check_json(out, 300, "throughput", "raw");
}

/* One address, both modes, every output at once: table on stdout, JSON, CSV and chart. */
static void t_outputs(void **state)
{
    (void)state;
    char out[512], json[512], csv[512], svg[512], cmd[2048];
    ipkt_path(json, sizeof json, "r.json");
    ipkt_path(csv, sizeof csv, "r.csv");
    ipkt_path(svg, sizeof svg, "r.svg");
    snprintf(cmd, sizeof cmd,
             IPKT_TOOL " bench -q -n 50 --size 64 --cpu none --json=%s --csv=%s --chart %s "
                       "tcp://127.0.0.1:0",
             json, csv, svg);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    check_json(json, 50, "latency,throughput", "ipckit,raw");
    /* The table names its columns as round trips. */
    snprintf(cmd, sizeof cmd, "grep -q 'rt p50' %s && grep -q 'raw tcp' %s", out, out);
    assert_int_equal(system(cmd), 0);
    /* CSV: a header and one line per row: latency ipckit, raw and indep; throughput ipckit
     * batched and one call per message, raw and indep each per message and batched. */
    snprintf(cmd, sizeof cmd, "test $(wc -l <%s) -eq 10 && head -1 %s | grep -q '^transport,impl'",
             csv, csv);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); "
             "assert d.documentElement.tagName == 'svg'; "
             "assert len(d.getElementsByTagName('rect')) >= 3\" %s",
             svg);
    assert_int_equal(run(cmd, out, sizeof out), 0);
}

/* shm: in both modes, on two CPUs, one CPU and unpinned, as two rings ('shm:') and as one
 * duplex=1 conversation ('shm:?duplex=1', the 'shm duplex' row): each mode has exactly one raw
 * floor of its own (the cache-line ping-pong for round trips, the fixed-slot ring for the
 * stream), shared by both rows; it passes the same checks as every row, and each shm row
 * carries its ratio to it; on one CPU the spinning floors say why they do not run, and no ratio
 * is printed. */
static const char py_shm[] =
    "import json, sys\n"
    "rows = json.load(open(sys.argv[1]))['results']\n"
    "same = sys.argv[2] == 'same'\n"
    "want = {'latency': 'raw shm cacheline', 'throughput': 'raw shm slot ring'}\n"
    "for mode, floor in want.items():\n"
    "    for size in (8, 64, 1000):\n"
    "        g = [r for r in rows if r['mode'] == mode and r['size'] == size]\n"
    "        raw = [r for r in g if r['impl'] == 'raw']\n"
    "        ipk = [r for r in g if r['impl'] == 'ipckit']\n"
    "        assert [r['transport'] for r in raw] == [floor], (mode, size, g)\n"
    "        assert raw[0]['mechanism'] == 'shm' and raw[0]['ok'] != same, raw\n"
    "        assert [r['transport'] for r in ipk] == ['shm', 'shm duplex'], ipk\n"
    "        for r in ipk:\n"
    "            assert r['ok'] and r['mechanism'] == 'shm', r\n"
    "            if same:\n"
    "                assert 'needs two CPUs' in raw[0]['error'] and not r['ratios'], g\n"
    "            else:\n"
    "                assert list(r['ratios']) == ['raw'] and r['ratios']['raw'] > 0, r\n";

static void t_shm_floors(void **state)
{
    (void)state;
    char out[512], py[512], cmd[2048], res[512];
    ipkt_path(py, sizeof py, "shm.py");
    FILE *f = fopen(py, "w");
    assert_non_null(f);
    fputs(py_shm, f);
    assert_int_equal(fclose(f), 0);
    static const char *const cpu[] = {"cross", "same", "none"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd,
                 IPKT_TOOL " bench -q -n 200 --size 8,64,1000 --cpu %s --json shm: 'shm:?duplex=1'",
                 cpu[i]);
        assert_int_equal(run(cmd, out, sizeof out), 0);
        check_json(out, 200, "latency,throughput", "ipckit,raw");
        snprintf(cmd, sizeof cmd, "python3 %s %s %s", py, out, cpu[i]);
        assert_int_equal(run(cmd, res, sizeof res), 0);
    }
}

/* The table: a URL of the user's with duplex=yes is the 'shm duplex' row (with its ratio to the
 * floor, a round trip at each size), 'shm:?duplex=0' a temporary address with that option, so
 * the two-ring 'shm' row; the user's segment is gone afterwards. A failed duplex run reports
 * the side that failed first. */
static void t_shm_duplex_url(void **state)
{
    (void)state;
    char name[128], out[512], cmd[2048];
    ipkt_name(name, sizeof name, "/");
    ipkt_journal("shm", name);
    snprintf(cmd, sizeof cmd,
             IPKT_TOOL " bench -q -n 100 --size 8,64 --mode latency --cpu cross "
                       "'shm:%s?duplex=yes' 'shm:?duplex=0'",
             name);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd,
             "test $(grep -cE '^shm duplex +ipckit .* [0-9]+[.][0-9]+x raw$' %s) -eq 2 && "
             "test $(grep -cE '^shm +ipckit .* [0-9]+[.][0-9]+x raw$' %s) -eq 2 && "
             "test $(grep -c '^raw shm cacheline ' %s) -eq 2 && test ! -e /dev/shm%s",
             out, out, out, name);
    assert_int_equal(system(cmd), 0);
    /* A message too big for the ring: B's send fails, and A's receive then sees B gone; the
     * row names the cause, whichever side the parent reaps first, and the segment is gone
     * even when A was killed before it closed. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(IPKT_TOOL " bench -q -n 20 --size 1m --mode latency 'shm:?duplex=1'",
                             out, sizeof out),
                         0);
        snprintf(cmd, sizeof cmd,
                 "grep -qE '^shm duplex +ipckit +shm:/ipkbench-[0-9]+-d: .*can never fit' %s && "
                 "seg=$(grep -oE 'ipkbench-[0-9]+-d' %s | head -1) && test ! -e /dev/shm/$seg",
                 out, out);
        assert_int_equal(system(cmd), 0);
    }
}

static void t_peers(void **state)
{
    (void)state;
    char out[512];
    struct stat st;
    if (stat(IPKT_PEERS, &st) != 0) {
        /* Not built here (no libzmq/nng): the tool must say so, not pretend. */
        assert_int_equal(run(IPKT_TOOL " bench --peers -q -n 10", out, sizeof out), 1);
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "IPKBENCH_PEERS=%s " IPKT_TOOL " bench --peers -q -n 40 --size 64 --json", IPKT_PEERS);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    check_json(out, 40, "latency,throughput", "zmq,nng,raw");
}

/* The floors of issue 16: unixgram's in the listener's topology with the socketpair beside
 * it, a batched floor beside each batched row and a per-message one beside each one-call row,
 * and every engine floor checked against the independent program in the same run. */
static const char py_floors[] =
    "import json, sys\n"
    "rows = json.load(open(sys.argv[1]))['results']\n"
    "def row(mode, name):\n"
    "    got = [r for r in rows if r['mode'] == mode and r['transport'] == name]\n"
    "    assert len(got) == 1 and got[0]['ok'], (mode, name, got)\n"
    "    return got[0]\n"
    "for mode in ('latency', 'throughput'):\n"
    "    for f in ('raw unix dgram', 'raw unix dgram pair'):\n"
    "        assert list(row(mode, f)['ratios']) == ['indep'], row(mode, f)\n"
    "    assert set(row(mode, 'unixgram')['ratios']) == {'raw', 'indep'}, row(mode, 'unixgram')\n"
    "for f in ('raw unix dgram batched', 'raw unix dgram pair batched'):\n"
    "    r = row('throughput', f)\n"
    "    assert r['batch'] > 1 and list(r['ratios']) == ['indep'], r\n"
    "assert row('throughput', 'unixgram')['batch'] > 1\n"
    "assert row('throughput', 'unixgram 1/call')['batch'] == 1\n"
    "assert row('throughput', 'raw unix dgram')['batch'] == 1\n"
    "assert row('throughput', 'indep unix dgram pair batched')['checksum'] == {'ok': True}\n";

static void t_floors(void **state)
{
    (void)state;
    char out[512], py[512], cmd[2048];
    assert_int_equal(
        run(IPKT_TOOL " bench -q -n 60 --size 64 --cpu same --json unixgram:", out, sizeof out), 0);
    check_json(out, 60, "latency,throughput", "ipckit,raw,indep");
    ipkt_path(py, sizeof py, "floors.py");
    FILE *f = fopen(py, "w");
    assert_non_null(f);
    fputs(py_floors, f);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "python3 %s %s", py, out);
    char o2[512];
    assert_int_equal(run(cmd, o2, sizeof o2), 0);
}

static void t_bad_usage(void **state)
{
    (void)state;
    char out[512], cmd[1024];
    static const char *const bad[][2] = {
        {"--cpu bogus", "expected same, cross or none"},
        {"--size 0", "--size 0"},
        {"--mode sideways", "expected latency, throughput or both"},
        {"--count -3", "--count -3"},
        {"--json --csv", "cannot both take standard output"},
        {"gopher:x", "not an address of a known scheme"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, IPKT_TOOL " bench -q %s", bad[i][0]);
        assert_int_equal(run(cmd, out, sizeof out), 2);
        snprintf(cmd, sizeof cmd, "grep -qF -- '%s' %s.err", bad[i][1], out);
        assert_int_equal(system(cmd), 0);
    }
}

IPKT_MAIN(cmocka_unit_test(t_latency), cmocka_unit_test(t_throughput), cmocka_unit_test(t_outputs),
          cmocka_unit_test(t_shm_floors), cmocka_unit_test(t_shm_duplex_url),
          cmocka_unit_test(t_peers), cmocka_unit_test(t_floors), cmocka_unit_test(t_bad_usage))
