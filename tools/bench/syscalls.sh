#!/usr/bin/env bash
# syscalls.sh — system calls a balancer makes per proxied HTTP request: tcplb
# (and, with --haproxy, HAProxy for reference) in front of three local nginx
# backends, `strace -c -f` attached to the running balancer for one bounded
# wrk run with keep-alive and one with a connection per request. Syscall
# counts are divided by the requests wrk completed. Loopback only; every
# process is ours, stopped by PID; every wait is bounded.
#
#   tools/bench/syscalls.sh [--build DIR] [--duration S] [--io MODE] [--haproxy]
#       --build     where tcplb is (default build)
#       --duration  seconds per wrk run (default 2)
#       --io        tcplb's io: io_uring (the default) or epoll
#       --haproxy   also count HAProxy 2.6 (mode tcp, nbthread 2)
#
# Needs strace, wrk, nginx and ss (installed with apt-get when missing).
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=build
DURATION=2
WITH_HAPROXY=0
IO=io_uring
while [ $# -gt 0 ]; do
    case $1 in
        --io) IO=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --haproxy) WITH_HAPROXY=1; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "syscalls: unknown argument $1" >&2; exit 2 ;;
    esac
done
TCPLB=$BUILD/tcplb
export PATH=$PATH:/usr/sbin:/sbin

die() { echo "syscalls: $*" >&2; exit 1; }
[ -x "$TCPLB" ] || die "$TCPLB missing: run make first"

missing=""
for pair in strace:strace wrk:wrk nginx:nginx ss:iproute2; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
done
if [ "$WITH_HAPROXY" = 1 ] && ! command -v haproxy >/dev/null 2>&1; then
    missing="$missing haproxy"
fi
if [ -n "$missing" ]; then
    echo "syscalls: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq
    # shellcheck disable=SC2086
    timeout 900 apt-get install -y -qq --no-install-recommends $missing
fi

TMP=$(mktemp -d /tmp/tcplb-syscalls-XXXXXX)
chmod 755 "$TMP"      # nginx workers run as nobody and read files here
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A TCP port on 127.0.0.1 that nothing listens on, below the ephemeral range.
free_port() {
    python3 - <<'EOF'
import random, socket
while True:
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
EOF
}

wait_listening() {     # name port pid
    for _ in $(seq 100); do
        kill -0 "$3" 2>/dev/null || die "$1 exited at start: $(tail -5 "$TMP/$1.log")"
        ss -Hltn "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    die "$1 not listening on port $2 after 10 s"
}

# Three nginx backends, one worker each, as in bench.py.
SERVERS_INI=""
SERVERS_HAP=""
for i in 1 2 3; do
    d=$TMP/backend$i
    mkdir -p "$d/www" "$d/body"
    chmod 755 "$d" "$d/www"
    printf 'backend%d %s\n' "$i" "$(head -c 89 /dev/zero | tr '\0' '.')" > "$d/www/index.html"
    port=$(free_port)
    cat > "$d/nginx.conf" <<EOF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $d/body;
    server {
        listen 127.0.0.1:$port backlog=4096;
        root $d/www;
        location / { }
    }
}
EOF
    setsid nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;' \
        > "$TMP/backend$i.log" 2>&1 < /dev/null &
    PIDS+=($!)
    wait_listening "backend$i" "$port" $!
    SERVERS_INI+="server = backend$i 127.0.0.1:$port"$'\n'
    SERVERS_HAP+="    server backend$i 127.0.0.1:$port"$'\n'
done

# count NAME PID PORT: strace attached to PID (every thread) over one wrk run
# per mode; prints "MODE REQUESTS" lines and leaves $TMP/NAME.MODE.strace.
count() {
    local name=$1 pid=$2 port=$3 mode hdr out reqs spid
    timeout 10 wrk -t1 -c50 -d1s "http://127.0.0.1:$port/" > /dev/null    # warm up
    for mode in keepalive close; do
        hdr=()
        [ "$mode" = close ] && hdr=(-H 'Connection: close')
        timeout $((DURATION + 30)) strace -c -f -p "$pid" -o "$TMP/$name.$mode.strace" \
            2> "$TMP/$name.$mode.attach" &
        spid=$!
        # strace names each thread it attaches to; wait for all of them.
        local nthreads
        nthreads=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)
        for _ in $(seq 50); do
            [ "$(grep -c attached "$TMP/$name.$mode.attach" 2>/dev/null)" -ge "$nthreads" ] && break
            sleep 0.1
        done
        out=$(timeout $((DURATION + 20)) wrk -t1 -c50 -d"${DURATION}s" "${hdr[@]}" \
            "http://127.0.0.1:$port/")
        kill -INT "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
        reqs=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
        if [ -z "$reqs" ] || [ "$reqs" -eq 0 ]; then
            die "$name $mode: wrk completed no request: $out"
        fi
        if printf '%s\n' "$out" | grep -q 'Socket errors\|Non-2xx'; then
            echo "syscalls: $name $mode: $(printf '%s\n' "$out" | grep 'Socket errors\|Non-2xx' | tr '\n' ' ')" >&2
        fi
        echo "$mode $reqs"
    done > "$TMP/$name.requests"
}

# table NAME LABEL: per-request counts, both modes side by side.
table() {
    local name=$1 label=$2 ka cl
    ka=$(awk '$1 == "keepalive" { print $2 }' "$TMP/$name.requests")
    cl=$(awk '$1 == "close" { print $2 }' "$TMP/$name.requests")
    echo
    echo "### $label: syscalls per request"
    echo
    echo "wrk -t1 -c50 -d${DURATION}s under strace -c -f: $ka requests with keep-alive," \
         "$cl with 'Connection: close'."
    echo
    echo "| syscall | keep-alive | connection per request |"
    echo "| --- | --- | --- |"
    # strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall
    # (an errors column appears only on rows with failed calls)
    awk -v ka="$ka" -v cl="$cl" '
        FNR == 1 { mode++ }
        /^------|^% time|^$/ { next }
        {
            name = $NF; calls = $4
            if (name == "total") { total[mode] = calls; next }
            seen[name] = 1
            n[name, mode] = calls
            e[name, mode] = NF == 6 ? $5 : 0
        }
        END {
            for (s in seen)
                printf "%s %.3f %.3f %.3f %.3f\n", s, n[s, 1] / ka, n[s, 2] / cl,
                       e[s, 1] / ka, e[s, 2] / cl
            printf "~total %.3f %.3f 0 0\n", total[1] / ka, total[2] / cl
        }' "$TMP/$name.keepalive.strace" "$TMP/$name.close.strace" |
        sort -k3,3gr -k2,2gr | awk '
        function cell(v, err) {
            return err >= 0.005 ? sprintf("%.2f (%.2f failed)", v, err) : sprintf("%.2f", v)
        }
        $1 == "~total" { t = $0; next }
        { printf "| %s | %s | %s |\n", $1, cell($2, $4), cell($3, $5) }
        END { split(t, f, " "); printf "| **total** | **%.2f** | **%.2f** |\n", f[2], f[3] }'
}

# tcplb as in bench.py: 2 workers, round robin over the 3, no log, no checks.
mkdir -p "$TMP/tcplb"
port=$(free_port)
cat > "$TMP/tcplb/tcplb.ini" <<EOF
[global]
workers = 2
io = $IO
log = off
shutdown_timeout = 1s

[listener bench]
bind = 127.0.0.1:$port
pool = backends

[pool backends]
scheduler = roundrobin
health = none
$SERVERS_INI
EOF
setsid "$TCPLB" -f "$TMP/tcplb/tcplb.ini" > "$TMP/tcplb.log" 2>&1 < /dev/null &
PIDS+=($!)
wait_listening tcplb "$port" $!
count tcplb $! "$port"
table tcplb "tcplb ($("$TCPLB" -V 2>&1 | head -1), workers = 2, io = $IO)"

if [ "$WITH_HAPROXY" = 1 ]; then
    mkdir -p "$TMP/haproxy"
    port=$(free_port)
    cat > "$TMP/haproxy/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend bench
    bind 127.0.0.1:$port
    default_backend backends
backend backends
    balance roundrobin
$SERVERS_HAP
EOF
    setsid haproxy -f "$TMP/haproxy/haproxy.cfg" -db > "$TMP/haproxy.log" 2>&1 < /dev/null &
    PIDS+=($!)
    wait_listening haproxy "$port" $!
    count haproxy $! "$port"
    table haproxy "$(haproxy -v | head -1 | cut -d' ' -f1-3) (mode tcp, nbthread 2)"
fi
