#!/bin/sh
# fuzz.sh — what `make fuzz` runs: builds the fuzz targets with clang's
# libFuzzer under ASan+UBSan in build/libfuzzer (installing clang with apt
# first if it is missing), runs each for FUZZ_SECONDS (default 60) on its kept
# corpus tests/fuzz/corpus/TARGET/ plus a scratch corpus that grows across
# runs, then keeps in tests/fuzz/corpus/TARGET/ the inputs that add the most
# coverage, at most FUZZ_CORPUS_MAX (default 50) files; seed-* and crash-*
# files always stay. A crash stops here with its input in
# build/libfuzzer/crashes/ (see tests/fuzz/README.md).
# Usage: sh tests/fuzz/fuzz.sh [TARGET...]   (default: all four)
set -eu
cd "$(dirname "$0")/../.."

seconds=${FUZZ_SECONDS:-60}
cap=${FUZZ_CORPUS_MAX:-50}
out=build/libfuzzer
targets=${*:-config stats proxy http_check}

if ! command -v clang >/dev/null 2>&1; then
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "fuzz: installing clang and its libFuzzer runtime with apt"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-rt-14-dev
fi

bins=
for t in $targets; do
    bins="$bins $out/fuzz/fuzz_$t"
done
# -fsanitize=fuzzer on every object instruments it; on the link it adds
# libFuzzer's main(), so the replay main is left out.
echo "fuzz: building$bins"
make --no-print-directory -s BUILD=$out CC=clang OPTFLAGS="-O1 -g" \
    SANFLAGS="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
    FUZZ_MAIN= $bins

mkdir -p $out/logs $out/crashes
status=0
for t in $targets; do
    bin=$out/fuzz/fuzz_$t
    kept=tests/fuzz/corpus/$t
    scratch=$out/corpus/$t
    log=$out/logs/$t.log
    mkdir -p "$scratch" "$kept"
    set -- -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$t-"
    [ -f tests/fuzz/$t.dict ] && set -- "$@" -dict=tests/fuzz/$t.dict
    # the stats target logs each weight change to stderr: keep that out of
    # the log (libFuzzer and the sanitizers still report)
    [ "$t" = stats ] && set -- "$@" -close_fd_mask=2
    echo "fuzz: $t for ${seconds}s (log: $log)"
    if ! "$bin" "$@" "$scratch" "$kept" >"$log" 2>&1; then
        echo "fuzz: $t FAILED; the end of $log:"
        tail -n 60 "$log"
        status=1
        continue
    fi
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: //p' "$log")
    echo "fuzz: $t: $execs runs, $rate exec/s, $(echo "$done_line" |
        sed -E 's/.*(cov: [0-9]+ ft: [0-9]+).*/\1/')"

    # Keep the best inputs: libFuzzer's merge lists, for each input, the
    # coverage features it adds to those before it (the kept ones first).
    work=$out/merge/$t
    rm -rf "$work"
    mkdir -p "$work/base"
    cp "$kept"/* "$work/base/" 2>/dev/null || true
    if ! "$bin" -merge=1 -max_len=4096 -timeout=10 -merge_control_file="$work/control" \
            "$work/base" "$scratch" >"$work/merge.log" 2>&1; then
        echo "fuzz: $t: merge failed; see $work/merge.log"
        status=1
        continue
    fi
    python3 tests/fuzz/corpus_cap.py --max "$cap" "$work/control" "$kept"
done
exit $status
