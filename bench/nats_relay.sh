#!/bin/sh
# nats_relay.sh - the guide's queue carried between two hosts by two relays, over nats: and over
# tcp: in the same run (issue 14, "Performance"): mq:/jobs on host A -> `ipckit relay` on A ->
# (nats: through a nats-server on each host, clustered across the link | tcp: straight to B) ->
# `ipckit relay` on B -> mq:/jobs on host B. The hosts are network namespaces joined by a veth
# pair, each with its own IPC namespace (as tests/test_hosts.c makes them); host A's processes
# (producer, relay, its nats-server) are pinned to one CPU, host B's to another.
#
# Each round runs, for nats then tcp (the order reversed every other round): a flood of
# FLOOD messages (messages per second, end to end) and PACED messages GAP_US apart (one-way
# latency p50 and p99, producer's time stamp to the consumer's receive). Printed: per round,
# then the median and range over the rounds of each figure, and the ratio nats/tcp per round.
#
# Needs root (namespaces). Run under the machine's benchmark lock:
#   flock /work/bench.lock sh bench/nats_relay.sh [BUILD_DIR] [ROUNDS]
# Environment: CPU_A, CPU_B (default 0, 1), FLOOD (20000), PACED (2000), GAP_US (500).
set -eu
B=${1:-build}
ROUNDS=${2:-5}
CPU_A=${CPU_A:-0}
CPU_B=${CPU_B:-1}
FLOOD=${FLOOD:-20000}
PACED=${PACED:-2000}
GAP_US=${GAP_US:-500}
IPK=$(readlink -f "$B/ipckit")
PROBE=$(readlink -f "$B/bench/relay_probe")
[ -x "$IPK" ] && [ -x "$PROBE" ] || { echo "build $B first (ipckit, bench/relay_probe)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "nats_relay.sh needs root (ip netns)" >&2; exit 2; }

TAG=nrb$$
NA=${TAG}a
NB=${TAG}b
XA=10.78.$(($$ % 250 + 1)).1
XB=10.78.$(($$ % 250 + 1)).2
DIR=$(mktemp -d /tmp/nats_relay.XXXXXX)

cleanup() {
    for ns in "$NA" "$NB"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

ip netns add "$NA"
ip netns add "$NB"
ip -n "$NA" link add veth0 type veth peer name veth1 netns "$NB"
ip -n "$NA" addr add "$XA/24" dev veth0
ip -n "$NB" addr add "$XB/24" dev veth1
ip -n "$NA" link set lo up
ip -n "$NA" link set veth0 up
ip -n "$NB" link set lo up
ip -n "$NB" link set veth1 up

# One nats-server per host, clustered across the veth; they live for the whole run.
for h in a b; do
    if [ $h = a ]; then me=$XA; other=$XB; ns=$NA; cpu=$CPU_A; else me=$XB; other=$XA; ns=$NB; cpu=$CPU_B; fi
    printf 'server_name: %s\nlisten: %s:4222\ncluster { name: nrb, listen: %s:6222, routes: [ nats-route://%s:6222 ] }\n' \
        "$h" "$me" "$me" "$other" >"$DIR/$h.conf"
    ip netns exec "$ns" taskset -c "$cpu" nats-server -c "$DIR/$h.conf" >"$DIR/$h.log" 2>&1 &
done
for ns_ip in "$NA $XA" "$NB $XB"; do
    set -- $ns_ip
    for i in $(seq 100); do
        ip netns exec "$1" "$IPK" info "nats://$2:4222/x" 2>/dev/null | grep -q live && break
        sleep 0.1
    done
done
sleep 1 # the route between the two
PORT=7000

# run KIND N GAP: one transfer, prints the consumer's line.
run() {
    kind=$1 n=$2 gap=$3
    rm -f "$DIR/ready"
    if [ "$kind" = nats ]; then
        src="nats://$XB:4222/jobs" dst="nats://$XA:4222/jobs"
    else
        PORT=$((PORT + 1))
        src="tcp://$XB:$PORT" dst="tcp://$XB:$PORT"
    fi
    # Host B: the consumer owns B's /jobs; the relay takes from nats:/tcp: and writes it.
    ip netns exec "$NB" unshare --ipc taskset -c "$CPU_B" sh -c "
        $PROBE consume mq:/jobs $n $DIR/ready >$DIR/out & c=\$!
        sleep 0.3
        $IPK relay $src mq:/jobs 2>>$DIR/relay-b.log & r=\$!
        wait \$c; s=\$?; kill \$r 2>/dev/null; wait \$r 2>/dev/null; exit \$s" &
    pb=$!
    sleep 0.6
    # Host A: the relay owns A's /jobs and carries it; the producer writes it.
    ip netns exec "$NA" unshare --ipc taskset -c "$CPU_A" sh -c "
        $IPK relay mq:/jobs $dst 2>>$DIR/relay-a.log & r=\$!
        $PROBE produce mq:/jobs $n $gap $DIR/ready; s=\$?
        wait \$r; exit \$s" &
    pa=$!
    wait "$pb" || { echo "host B failed ($kind):" >&2; cat "$DIR/relay-b.log" >&2; exit 1; }
    for p in $(ip netns pids "$NA"); do
        [ "$(cat /proc/$p/comm 2>/dev/null)" = ipckit ] && kill "$p" 2>/dev/null
    done
    wait "$pa" || { echo "host A failed ($kind):" >&2; cat "$DIR/relay-a.log" >&2; exit 1; }
    cat "$DIR/out"
}

echo "relay mq: -> nats:|tcp: -> mq: between two namespaces (host A on CPU $CPU_A, host B on CPU $CPU_B), 64-byte messages, $ROUNDS rounds"
: >"$DIR/results"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="nats tcp"; else order="tcp nats"; fi
    for k in $order; do
        f=$(run "$k" "$FLOOD" 0)
        p=$(run "$k" "$PACED" "$GAP_US")
        echo "round $r $k flood: $f | paced ${GAP_US}us: $p"
        echo "$r $k $(echo "$f" | awk '{print $2}') $(echo "$p" | awk '{print $4, $6}')" >>"$DIR/results"
    done
done
# Medians and ranges; ratio nats/tcp per round.
awk -v rounds="$ROUNDS" '
function med(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{ rate[$2,$1] = $3; p50[$2,$1] = $4; p99[$2,$1] = $5 }
END {
    split("nats tcp", kinds, " ")
    for (q = 1; q <= 2; q++) {
        k = kinds[q]
        for (r = 1; r <= rounds; r++) { a[r] = rate[k,r]; b[r] = p50[k,r]; c[r] = p99[k,r] }
        ma = med(a, rounds); mb = med(b, rounds); mc = med(c, rounds)
        printf "  %-4s  %8.0f msg/s [%.0f .. %.0f]   p50 %7.1f us [%.1f .. %.1f]   p99 %7.1f us [%.1f .. %.1f]\n", k, ma, a[1], a[rounds], mb, b[1], b[rounds], mc, c[1], c[rounds]
    }
    for (r = 1; r <= rounds; r++) { a[r] = rate["nats",r] / rate["tcp",r]; b[r] = p50["nats",r] / p50["tcp",r]; c[r] = p99["nats",r] / p99["tcp",r] }
    ma = med(a, rounds); mb = med(b, rounds); mc = med(c, rounds)
    printf "  ratio nats/tcp per round (median [range]): msg/s %.3f [%.3f .. %.3f]   p50 %.2f [%.2f .. %.2f]   p99 %.2f [%.2f .. %.2f]\n", ma, a[1], a[rounds], mb, b[1], b[rounds], mc, c[1], c[rounds]
}' "$DIR/results"
