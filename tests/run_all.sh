#!/bin/sh
# Runs the unit tests, the integration tests, then the chaos tests against
# BUILD_DIR and prints one closing line: "N passed, N failed" over all three.
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

passed=0 failed=0
for line in $(grep -E '^(unit|integration|chaos): [0-9]+ passed, [0-9]+ failed' "$out" |
              sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed.*/\1:\2/'); do
    passed=$((passed + ${line%%:*}))
    failed=$((failed + ${line##*:}))
done
[ "$failed" -eq 0 ] || status=1
echo "$build: $passed passed, $failed failed"
exit $status
