#!/usr/bin/env bash
# log_bench.sh — what the access log costs: HTTP requests per second through
# tcplb with `log = FILE` and with `log = off`, one new connection per
# request (so one log line per request), runs alternated A B A B ... to
# spread drift over both, medians compared. Loopback only; every wait is
# bounded. Installs wrk (Debian package) when it is missing.
#
#   tools/bench/log_bench.sh [BUILD_DIR]      default: build
#   env: REPS=3 (runs of each)  DURATION=5 (seconds per run)  CONNS=50
#        WORKERS=1 (tcplb workers)
#
# Prints a Markdown table of every run, the medians and file/off ratio.
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${1:-build}
REPS=${REPS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
WORKERS=${WORKERS:-1}
TCPLB=$BUILD/tcplb
BACKEND=$BUILD/tcplb-backend

die() { echo "log_bench: $*" >&2; exit 1; }

if [ ! -x "$TCPLB" ] || [ ! -x "$BACKEND" ]; then
    die "$TCPLB or $BACKEND missing: run make first"
fi
if ! command -v wrk >/dev/null 2>&1; then
    echo "log_bench: installing wrk" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
command -v wrk >/dev/null 2>&1 || die "wrk is not available"

TMP=$(mktemp -d /tmp/tcplb-logbench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# 0 once something listens on 127.0.0.1:$1 (from the kernel's table, so
# waiting adds no connection, and no log line).
listening() {
    local hex
    hex=$(printf '%04X' "$1")
    grep -qE "^ *[0-9]+: 0100007F:$hex [0-9A-F]{8}:[0-9A-F]{4} 0A " /proc/net/tcp
}

wait_for() {   # wait_for SECONDS CMD...: polls CMD every 50 ms
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stats() {   # stats SOCKET COMMAND: one stats socket answer
    python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b'\n')
s.shutdown(socket.SHUT_WR)
out = b''
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
print(out.decode(), end='')
EOF
}

# Two http backends on ports the kernel picks.
BPORTS=()
for name in web1 web2; do
    "$BACKEND" --name "$name" --listen 127.0.0.1:0 --mode http >"$TMP/$name.out" 2>&1 &
    PIDS+=($!)
    wait_for 5 grep -q '^listening' "$TMP/$name.out" || die "backend $name did not start"
    BPORTS+=("$(awk '/^listening/ { n = split($3, a, ":"); print a[n]; exit }' "$TMP/$name.out")")
done

PORT=$(free_port)
URL="http://127.0.0.1:$PORT/"

# run_one MODE: starts tcplb with log = file|off, runs wrk, stops tcplb;
# sets RPS, ACCEPTED (connections, warm-up included), LINES (access log
# lines), DROPPED (log_dropped) and ERRORS.
run_one() {
    local mode=$1 log sock="$TMP/stats.sock" out="$TMP/wrk.out" pid
    if [ "$mode" = file ]; then log="$TMP/access.log"; else log=off; fi
    rm -f "$TMP/access.log"
    cat >"$TMP/tcplb.ini" <<EOF
[global]
workers = $WORKERS
maxconn = 10000
stats_socket = $sock
log = $log
shutdown_timeout = 1s

[listener web]
bind = 127.0.0.1:$PORT
pool = p
mode = http

[pool p]
server = web1 127.0.0.1:${BPORTS[0]}
server = web2 127.0.0.1:${BPORTS[1]}
health = none
EOF
    "$TCPLB" -f "$TMP/tcplb.ini" >"$TMP/tcplb.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_for 5 listening "$PORT" || die "tcplb did not listen: $(tail -3 "$TMP/tcplb.out")"
    # a short warm-up, then the measured run
    timeout 30 wrk -t1 -c"$CONNS" -d1s -H 'Connection: close' "$URL" >/dev/null 2>&1 || true
    timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" \
        -H 'Connection: close' "$URL" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    [ -n "$RPS" ] || die "no Requests/sec in wrk output: $(cat "$out")"
    ERRORS=$(awk '/Socket errors|Non-2xx/ { sub(/^ +/, ""); printf "%s; ", $0 }' "$out")
    ERRORS=${ERRORS:-none}
    stats "$sock" 'show info' >"$TMP/info"
    DROPPED=$(awk -F': ' '$1 == "log_dropped" { print $2 }' "$TMP/info")
    ACCEPTED=$(awk -F': ' '$1 == "total" { print $2 }' "$TMP/info")
    LINES=0
    kill -TERM "$pid"
    wait_for 10 eval '! kill -0 '"$pid"' 2>/dev/null' || { kill -KILL "$pid"; }
    wait "$pid" 2>/dev/null || true
    if [ "$mode" = file ]; then
        LINES=$(wc -l <"$TMP/access.log")
    fi
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "log_bench: $REPS x (log = file, log = off), wrk -t1 -c$CONNS -d${DURATION}s," \
     "Connection: close, tcplb workers = $WORKERS, $(nproc) CPUs" >&2
FILE_RPS=() OFF_RPS=() ROWS=()
for i in $(seq 1 "$REPS"); do
    for mode in file off; do
        run_one "$mode"
        echo "log_bench: run $i log=$mode: $RPS req/s, $ACCEPTED accepted," \
             "$LINES log lines, log_dropped $DROPPED, wrk errors: $ERRORS" >&2
        ROWS+=("| $i | $mode | $RPS | $ACCEPTED | $LINES | $DROPPED | $ERRORS |")
        if [ "$mode" = file ]; then FILE_RPS+=("$RPS"); else OFF_RPS+=("$RPS"); fi
    done
done

file_med=$(printf '%s\n' "${FILE_RPS[@]}" | median)
off_med=$(printf '%s\n' "${OFF_RPS[@]}" | median)
ratio=$(awk -v a="$file_med" -v b="$off_med" 'BEGIN { printf "%.3f", a / b }')
diff=$(awk -v a="$file_med" -v b="$off_med" 'BEGIN { printf "%+.1f", (a / b - 1) * 100 }')

echo
echo "| run | log | req/s | accepted | log lines | log_dropped | wrk errors |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | --- |"
printf '%s\n' "${ROWS[@]}"
echo
echo "| | log = file | log = off | file / off |"
echo "| --- | ---: | ---: | ---: |"
echo "| median req/s | $file_med | $off_med | $ratio ($diff %) |"
