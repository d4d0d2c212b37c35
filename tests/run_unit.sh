#!/bin/sh
# Runs every unit test binary BUILD_DIR/tests/test_*, prints one result line
# per binary (and its whole output when it failed), then exactly one closing
# line "unit: N passed, N failed" counting cmocka test cases. A binary that
# exits non-zero without reporting a failed case (a crash, a sanitizer report
# at exit, a timeout) counts as one failed case, so the closing line never
# reads 0 failed while the exit status says otherwise.
# Exit status: 0 only if every binary exited 0 and no case failed.
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1

out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
trap 'exit 130' INT TERM

# A hung test must not hang `make test`.
limit=
if command -v timeout >/dev/null 2>&1; then
    limit="timeout 600"
fi

# Sums the N of every "[  WORD  ] N test(s)" line of $out.
count() {
    sed -n "s/^\[  *$1  *\] \([0-9][0-9]*\) test(s).*/\1/p" "$out" |
        awk '{ n += $1 } END { print n + 0 }'
}

passed=0 failed=0 status=0 nbins=0
for bin in "$build"/tests/test_*; do
    if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
        continue
    fi
    nbins=$((nbins + 1))
    name=${bin##*/}

    CMOCKA_MESSAGE_OUTPUT=stdout $limit "$bin" >"$out" 2>&1
    rc=$?
    p=$(count PASSED)
    f=$(count FAILED)
    s=$(count SKIPPED)
    note=
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        note=" (exit $rc with no failed case reported: counted as one failure)"
    elif ! grep -q '^\[  PASSED  \]' "$out" && [ "$f" -eq 0 ]; then
        f=1
        note=" (no cmocka summary: counted as one failure)"
    fi
    passed=$((passed + p))
    failed=$((failed + f))

    skipped=
    [ "$s" -gt 0 ] && skipped=", $s skipped"
    if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "PASS $name: $p passed$skipped"
    else
        status=1
        echo "FAIL $name: $p passed, $f failed$skipped, exit $rc$note"
        sed 's/^/    /' "$out"
    fi
done

if [ "$nbins" -eq 0 ]; then
    echo "no unit test binaries in $build/tests (build them with: make unit)"
    failed=$((failed + 1))
    status=1
fi
echo "unit: $passed passed, $failed failed"
exit $status
