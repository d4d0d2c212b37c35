#!/bin/sh
# Runs the unit tests, the integration tests, the relay's integration tests
# again on epoll, the chaos tests, the scale tests, then replays the fuzz corpus against BUILD_DIR and prints one
# closing line: "N passed, N failed" over all of them.
set -u
build=${1:-build}
cd "$(dirname "$0")/.."

out=$(mktemp)
rc=$(mktemp)
trap 'rm -f "$out" "$rc"' EXIT
status=0

# Runs one suite with its output shown and kept in $out. A pipe into tee
# would report tee's exit status, so the suite's own is passed through a
# file; a suite fails when it exits non-zero or never prints its closing
# "LABEL: " line.
suite() {
    label=$1
    shift
    { "$@" 2>&1; echo $? >"$rc"; } | tee -a "$out"
    [ "$(cat "$rc")" = 0 ] || status=1
    grep -q "^$label: " "$out" || status=1
}

suite unit sh tests/run_unit.sh "$build"
# two processes: the tests wait on sockets and timers far more than they
# compute (run.py -j; the lab and keepalived tests still run alone)
suite integration python3 tests/integration/run.py --build "$build" -j 2
# io = io_uring is the default: the relay tests once more with io = epoll,
# the fallback wherever the kernel refuses io_uring (harness.py: TCPLB_TEST_IO)
suite epoll env TCPLB_TEST_IO=epoll python3 tests/integration/run.py --build "$build" \
    --label epoll -k test_relay. -k test_splice. -k test_requests. -k test_timeouts. \
    -k test_proxy. -k test_retries.
suite chaos python3 tests/integration/run.py --build "$build" --dir tests/chaos
# tests/scale: 9,000 connections and a 60 s soak (about 80 s)
suite scale python3 tests/integration/run.py --build "$build" --dir tests/scale
# the fuzz corpus (tests/fuzz/corpus/), each input once through the targets
# built for this build's flags (inherited from `make test`)
suite fuzz make --no-print-directory -s BUILD="$build" fuzz-replay

passed=0 failed=0
for line in $(grep -E '^(unit|integration|epoll|chaos|scale|fuzz): [0-9]+ passed, [0-9]+ failed' "$out" |
              sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed.*/\1:\2/'); do
    passed=$((passed + ${line%%:*}))
    failed=$((failed + ${line##*:}))
done
[ "$failed" -eq 0 ] || status=1
echo "$build: $passed passed, $failed failed"
exit $status
