#!/usr/bin/env bash
# Serverless benchmarks, side by side with wrk, interleaved repeats, medians:
#
#  1. watchdog overhead: `vaccel watchdog` serving the in-process `echo`
#     function vs a bare hyper hello-world server (same runtime settings);
#  2. classify: the Rust function behind `vaccel watchdog` (in-process,
#     ONNX Runtime plugin) and behind `vaccel up` (remote plugin -> agent over
#     a Unix socket) vs the Python peer (onnxruntime + Pillow behind a
#     pre-forked Python HTTP server), same model, same image, same number of
#     workers and ONNX Runtime threads.
#
# Usage: scripts/bench-serverless.sh [--duration SECONDS] [--repeats N]
#                                    [--only overhead|classify]
# Needs: wrk (apt-get install wrk), python3 with venv; builds in release.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=5
REPEATS=5
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

python3 scripts/setup_models.py >&2
cargo build --quiet --release -p vaccel-cli --bin vaccel >&2
cargo build --quiet --release -p vaccel-watchdog --example hello >&2
VACCEL=target/release/vaccel
HELLO=target/release/examples/hello
OUT=target/bench-serverless
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { # port
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2; return 1
}

# wrk requests/s (and errors) against URL; extra args go to wrk.
rps() { # url args...
  local url="$1"; shift
  local out
  out=$(wrk "$@" -d "${DURATION}s" --latency "$url" 2>&1)
  local r e
  r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  e=$(awk '/Non-2xx or 3xx responses:/ {print $NF} /Socket errors:/ {print "sock"}' <<<"$out" | tr '\n' ' ')
  if [ -n "$e" ]; then echo "wrk reported errors against $url: $e" >&2; echo "$out" >&2; fi
  echo "${r:-0}"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Interleave A and B for REPEATS rounds (order alternating), print medians and ratio A/B.
compare() { # label urlA urlB wrk-args...
  local label="$1" a="$2" b="$3"; shift 3
  local ra=() rb=()
  for i in $(seq 1 "$REPEATS"); do
    if [ $((i % 2)) -eq 1 ]; then
      ra+=("$(rps "$a" "$@")"); rb+=("$(rps "$b" "$@")")
    else
      rb+=("$(rps "$b" "$@")"); ra+=("$(rps "$a" "$@")")
    fi
  done
  local ma mb
  ma=$(printf '%s\n' "${ra[@]}" | median)
  mb=$(printf '%s\n' "${rb[@]}" | median)
  printf '| %s | %.0f | %.0f | %.2f× | %s / %s |\n' "$label" "$ma" "$mb" \
    "$(awk -v x="$ma" -v y="$mb" 'BEGIN {print (y > 0 ? x / y : 0)}')" \
    "$(IFS=,; echo "${ra[*]}")" "$(IFS=,; echo "${rb[*]}")"
}

echo "machine: $(nproc) CPUs, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}'); ${REPEATS} interleaved repeats of ${DURATION} s, medians"
echo

if [ -z "$ONLY" ] || [ "$ONLY" = overhead ]; then
  "$HELLO" 18190 >/dev/null & PIDS+=($!)
  port=18191 metrics_port=0 "$VACCEL" watchdog --function echo --bind 127.0.0.1 >/dev/null 2>&1 & PIDS+=($!)
  wait_port 18190; wait_port 18191
  echo "## watchdog overhead (requests/s; wrk -t2 -c64, GET, keep-alive)"
  echo "| path | vaccel watchdog (echo, in-process) | bare hyper hello-world | ratio | per-repeat |"
  echo "|---|---|---|---|---|"
  compare "loopback" http://127.0.0.1:18191/ http://127.0.0.1:18190/ -t2 -c64
  echo
  cleanup; PIDS=()
fi

if [ -z "$ONLY" ] || [ "$ONLY" = classify ]; then
  VENV=target/bench-venv
  if ! "$VENV/bin/python" -c 'import onnxruntime, PIL, numpy' 2>/dev/null; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet onnxruntime==1.22.1 Pillow==11.3.0 numpy==2.2.6 >&2
  fi
  WORKERS=2
  export VACCEL_ONNX_THREADS=1
  cat > "$OUT/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "image/jpeg"
f:close()
EOF
  export BODY=test-data/images/dog.jpg
  "$VENV/bin/python" scripts/bench/py_classify_function.py --port 18290 --workers "$WORKERS" --threads 1 >/dev/null & PIDS+=($!)
  port=18291 metrics_port=0 max_inflight=0 "$VACCEL" watchdog --function classify --bind 127.0.0.1 >/dev/null 2>&1 & PIDS+=($!)
  "$VACCEL" up --port 18292 >/dev/null 2>&1 & PIDS+=($!)
  wait_port 18290; wait_port 18291; wait_port 18292
  # Warm up all three (model load, first inference).
  for u in http://127.0.0.1:18290/ http://127.0.0.1:18291/ http://127.0.0.1:18292/function/classify; do
    curl -sf --data-binary @"$BODY" "$u" >/dev/null
  done
  echo "## classify (requests/s; test-data/images/dog.jpg, wrk -t2 -c${WORKERS}, ${WORKERS} workers × 1 ONNX Runtime thread on each side)"
  echo "| path | Rust | Python (onnxruntime + Pillow) | ratio | per-repeat |"
  echo "|---|---|---|---|---|"
  compare "vaccel watchdog, in-process" http://127.0.0.1:18291/ http://127.0.0.1:18290/ -t2 "-c${WORKERS}" -s "$OUT/post.lua"
  compare "vaccel up (remote plugin → agent)" http://127.0.0.1:18292/function/classify http://127.0.0.1:18290/ -t2 "-c${WORKERS}" -s "$OUT/post.lua"
  echo
fi
