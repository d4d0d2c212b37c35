#!/bin/sh
# demo.sh — what `make run` runs after building: three tcplb-backend
# processes (web1..web3 on 127.0.0.1:9001-9003, http mode) and tcplb in
# front of them with conf/demo.ini. It stops only the processes it started,
# however it ends (tcplb exits, Ctrl-C, SIGTERM). BUILD=dir picks the binaries.
set -u

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
CONF=conf/demo.ini
BACKEND=$BUILD/tcplb-backend
TCPLB=$BUILD/tcplb
# Must match the server lines of conf/demo.ini.
BACKENDS="web1:9001 web2:9002 web3:9003"
# Read from the config so that the hints below cannot drift from it.
LISTEN=$(sed -n 's/^bind *= *\([^ ;]*\).*/\1/p' "$CONF" | head -n 1)
SOCK=$(sed -n 's/^stats_socket *= *\([^ ;]*\).*/\1/p' "$CONF" | head -n 1)
PAGE=$(sed -n 's/^stats_http *= *\([^ ;]*\).*/\1/p' "$CONF" | head -n 1)

backend_pids=""
tcplb_pid=""
tmp=""

# shellcheck disable=SC2317  # reached through the traps below
demo_stop() {
    # Runs once, whichever of EXIT, INT or TERM comes first.
    trap - EXIT INT TERM
    if [ -n "$tcplb_pid" ]; then
        kill -TERM "$tcplb_pid" 2>/dev/null
        wait "$tcplb_pid" 2>/dev/null
    fi
    for pid in $backend_pids; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $backend_pids; do
        wait "$pid" 2>/dev/null
    done
    if [ -n "$tmp" ]; then
        rm -rf "$tmp"
    fi
}
trap 'demo_stop' EXIT
trap 'demo_stop; exit 130' INT
trap 'demo_stop; exit 143' TERM

demo_die() {
    echo "demo: $*" >&2
    exit 1
}

# 0 when nothing listens on 127.0.0.1:$1. SO_REUSEADDR, as tcplb and the
# backends use it, so that TIME_WAIT leftovers do not count as "in use".
demo_port_free() {
    command -v python3 >/dev/null 2>&1 || return 0
    python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}

demo_port_check() {
    demo_port_free "$1" && return 0
    echo "demo: port $1 on 127.0.0.1 is already in use (another demo still running?)" >&2
    if command -v ss >/dev/null 2>&1; then
        echo "demo: see who holds it with: ss -ltnp 'sport = :$1'" >&2
    fi
    exit 1
}

# Starts backend $1 on port $2 and waits for its "listening" line.
demo_start_backend() {
    out="$tmp/$1.out"
    "$BACKEND" --name "$1" --listen "127.0.0.1:$2" --mode http >"$out" 2>"$tmp/$1.err" &
    pid=$!
    backend_pids="$backend_pids $pid"
    tries=0
    while ! grep -q '^listening ' "$out" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            demo_die "$1 could not start on 127.0.0.1:$2: $(cat "$tmp/$1.err")"
        fi
        tries=$((tries + 1))
        [ "$tries" -ge 50 ] && demo_die "$1 did not start on 127.0.0.1:$2 within 5s"
        sleep 0.1
    done
}

{ [ -n "$LISTEN" ] && [ -n "$SOCK" ] && [ -n "$PAGE" ]; } ||
    demo_die "$CONF has no bind, stats_socket or stats_http line"
[ -x "$BACKEND" ] || demo_die "$BACKEND is missing; run 'make' first"
[ -x "$TCPLB" ] || demo_die "$TCPLB is missing; run 'make' first"
"$TCPLB" -c -f "$CONF" || demo_die "$CONF is refused by $TCPLB -c"

for b in $BACKENDS; do
    demo_port_check "${b#*:}"
done
demo_port_check "${LISTEN##*:}"
demo_port_check "${PAGE##*:}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tcplb-demo.XXXXXX") || demo_die "cannot create a temp dir"
for b in $BACKENDS; do
    demo_start_backend "${b%%:*}" "${b#*:}"
done

if command -v socat >/dev/null 2>&1; then
    stat_cmd="echo 'show stat' | socat - UNIX-CONNECT:$SOCK"
else
    stat_cmd="python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"$SOCK\"); s.sendall(b\"show stat\\n\"); s.shutdown(socket.SHUT_WR); print(s.makefile().read(), end=\"\")'"
fi

cat <<EOF

tcplb demo
  backends  web1 127.0.0.1:9001, web2 127.0.0.1:9002, web3 127.0.0.1:9003 (weight 2)
  tcplb     http://$LISTEN/   (config $CONF, round robin)
  live page http://$PAGE/   (open it in a browser: servers, shares, response times,
            the verdict on the pool; also /metrics, /stats.json, /health)

Try from another terminal:
  curl -s http://$LISTEN/                  # run it a few times: web1, web2, web3 answer in turn
  for i in 1 2 3 4 5 6 7 8; do curl -s http://$LISTEN/; done
  $stat_cmd
  (the same with 'show stat json', 'show info', 'explain demo', 'help')
  $BUILD/skewload -t $LISTEN -n 3000 -c 20 -d 30   # load to watch on the page

Press Ctrl-C here to stop tcplb and the three backends.

EOF

# In the background and waited for, so that a SIGTERM to this script runs
# its trap at once instead of after tcplb has exited by itself.
"$TCPLB" -f "$CONF" &
tcplb_pid=$!
wait "$tcplb_pid"
rc=$?
tcplb_pid=""
exit "$rc"
