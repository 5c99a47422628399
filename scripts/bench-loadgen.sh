#!/usr/bin/env bash
# The load generator itself, measured: `vaccel bench` against `wrk` on a
# loopback no-op endpoint (the watchdog crate's bare hyper `hello` example).
#
#   1. max rate: wrk and vaccel bench interleaved, REPEATS times each, same
#      connections (CONNS) and threads (THREADS); prints each run and the
#      ratio of the medians (target: >= 0.8). vaccel bench runs twice per
#      repeat: with the per-request JTL (default) and with --no-jtl.
#   2. rate accuracy: the open model at each of RATES; achieved vs target
#      (target: within 1 %).
#   3. memory: peak RSS (VmHWM) of vaccel bench at max rate for RSS_DURATION
#      seconds (the target is < 64 MiB over a 10-minute run: RSS_DURATION=600).
#
# Environment (defaults in brackets):
#   DURATION [10]   seconds per max-rate and rate-accuracy run
#   REPEATS [3]     interleaved repeats of the max-rate comparison
#   CONNS [64]      connections (wrk -c, vaccel bench --threads)
#   THREADS [2]     generator threads (wrk -t, vaccel bench --workers)
#   RATES ["1000 10000 50000"]  target rates for the accuracy check
#   RSS_DURATION [60]  seconds of the memory run (600 for the 10-minute target)
#   RSS_JTL [0]     1: the memory run also writes the JTL (disk: ~100 bytes per request)
#   PORT [38090]    port of the hello server (must be free)
#   PIN [0]         1: pin the server to CPU 0 and the generators to the others (taskset)
#   NO_BUILD [0]    1: use the binaries already in target/release
#   PARTS ["max rate memory"]  which of the three parts to run
#
# Usage: scripts/bench-loadgen.sh            (about 3 minutes with the defaults)
#        DURATION=30 REPEATS=5 RSS_DURATION=600 scripts/bench-loadgen.sh
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
RATES=${RATES:-"1000 10000 50000"}
RSS_DURATION=${RSS_DURATION:-60}
RSS_JTL=${RSS_JTL:-0}
PORT=${PORT:-38090}
PIN=${PIN:-0}
PARTS=${PARTS:-"max rate memory"}
want() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed to read the JSON summaries" >&2; exit 1; }

if [ "${NO_BUILD:-0}" != 1 ]; then
    cargo build --release -q -p vaccel-cli
    cargo build --release -q -p vaccel-watchdog --example hello
fi
VACCEL=target/release/vaccel
HELLO=target/release/examples/hello
URL="http://127.0.0.1:$PORT/"

SERVER_PIN=()
GEN_PIN=()
if [ "$PIN" = 1 ]; then
    n=$(nproc)
    SERVER_PIN=(taskset -c 0)
    GEN_PIN=(taskset -c "1-$((n - 1))")
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then
    echo "port $PORT is in use: set PORT to a free one" >&2
    exit 1
fi
"${SERVER_PIN[@]}" "$HELLO" "$PORT" >/dev/null &
SERVER_PID=$!
for _ in $(seq 50); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then break; fi
    sleep 0.1
done

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $HELLO (hyper 1, keep-alive), $URL"
echo "connections $CONNS, generator threads $THREADS, $DURATION s per run, $REPEATS repeats"
echo

# Requests per second from a summaries JSON array (first configuration).
rps_of() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))[0]; print("%.1f" % s["throughput_rps"])' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

run_bench() { # out-json, extra args...
    local json=$1; shift
    rm -rf "$WORK/out"
    "${GEN_PIN[@]}" "$VACCEL" bench "$URL" --threads "$CONNS" --workers "$THREADS" \
        --duration "${DURATION}s" --json --quiet --out "$WORK/out" "$@" >"$json"
}

if want max; then
echo "== max rate (requests/s) =="
wrk_r=(); ours_r=(); ours_nojtl_r=()
for i in $(seq "$REPEATS"); do
    w=$("${GEN_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$URL" | awk '/^Requests\/sec:/ {print $2}')
    wrk_r+=("$w")
    run_bench "$WORK/a.json"
    a=$(rps_of "$WORK/a.json")
    ours_r+=("$a")
    run_bench "$WORK/b.json" --no-jtl
    b=$(rps_of "$WORK/b.json")
    ours_nojtl_r+=("$b")
    echo "repeat $i: wrk $w   vaccel bench $a (JTL)   $b (--no-jtl)"
done
mw=$(median "${wrk_r[@]}"); ma=$(median "${ours_r[@]}"); mb=$(median "${ours_nojtl_r[@]}")
echo "median: wrk $mw   vaccel bench $ma (JTL)   $mb (--no-jtl)"
python3 -c 'import sys; w,a,b=map(float,sys.argv[1:]); print("ratio vaccel/wrk: %.2f (JTL)  %.2f (--no-jtl)   target >= 0.80" % (a/w, b/w))' "$mw" "$ma" "$mb"
echo
fi

if want rate; then
echo "== rate accuracy (open model, $DURATION s each) =="
for r in $RATES; do
    run_bench "$WORK/r.json" --rate "$r" --no-jtl
    python3 - "$WORK/r.json" "$r" "$DURATION" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))[0]
target = float(sys.argv[2])
# Requests sent over the schedule's length (the summary's duration_s also
# covers the last responses).
achieved = s["count"] / float(sys.argv[3])
err = (achieved - target) / target * 100
print("target %8.0f/s  achieved %9.1f/s  (%+.2f %%)  late %d  dropped %d  p50 %.3f ms  p99 %.3f ms  corrected p99 %.3f ms" % (
    target, achieved, err, s["late"], s["dropped"], s["rtt_ms"]["median"], s["rtt_ms"]["p99"],
    s["rtt_corrected_ms"]["p99"]))
EOF
done
echo
fi

if want memory; then
echo "== memory: peak RSS at max rate for $RSS_DURATION s (target < 64 MiB over 600 s) =="
rm -rf "$WORK/out"
jtl_flag=(--no-jtl)
[ "$RSS_JTL" = 1 ] && jtl_flag=()
"${GEN_PIN[@]}" "$VACCEL" bench "$URL" --threads "$CONNS" --workers "$THREADS" \
    --duration "${RSS_DURATION}s" --json --quiet --out "$WORK/out" "${jtl_flag[@]}" >"$WORK/m.json" &
pid=$!
hwm=0
while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
    sleep 1
done
wait "$pid"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))[0]; print("requests %d at %.0f/s" % (s["count"], s["throughput_rps"]))' "$WORK/m.json"
echo "VmHWM ${hwm} kB ($((hwm / 1024)) MiB)$([ "$RSS_JTL" = 1 ] && echo ', with JTL' || echo ', --no-jtl')"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
