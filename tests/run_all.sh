#!/bin/sh
# Runs the unit tests, the integration tests, the chaos tests, the scale
# tests, then replays the fuzz corpus against BUILD_DIR and prints one
# closing line: "N passed, N failed" over all of them.
set -u
build=${1:-build}
cd "$(dirname "$0")/.."

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
sh tests/run_unit.sh "$build" 2>&1 | tee "$out" || status=1
grep -q '^unit: ' "$out" || status=1
python3 tests/integration/run.py --build "$build" 2>&1 | tee -a "$out" || status=1
grep -q '^integration: ' "$out" || status=1
python3 tests/integration/run.py --build "$build" --dir tests/chaos 2>&1 | tee -a "$out" || status=1
grep -q '^chaos: ' "$out" || status=1
# tests/scale: 9,000 connections and a 60 s soak (about 80 s)
python3 tests/integration/run.py --build "$build" --dir tests/scale 2>&1 | tee -a "$out" || status=1
grep -q '^scale: ' "$out" || status=1
# the fuzz corpus (tests/fuzz/corpus/), each input once through the targets
# built for this build's flags (inherited from `make test`)
make --no-print-directory -s BUILD="$build" fuzz-replay 2>&1 | tee -a "$out" || status=1
grep -q '^fuzz: ' "$out" || status=1

passed=0 failed=0
for line in $(grep -E '^(unit|integration|chaos|scale|fuzz): [0-9]+ passed, [0-9]+ failed' "$out" |
              sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed.*/\1:\2/'); do
    passed=$((passed + ${line%%:*}))
    failed=$((failed + ${line##*:}))
done
[ "$failed" -eq 0 ] || status=1
echo "$build: $passed passed, $failed failed"
exit $status
