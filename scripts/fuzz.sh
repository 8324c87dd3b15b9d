#!/bin/sh
# Runs every libFuzzer target of a SYN_FUZZ build (tests/fuzz/, `make fuzz`) for
# SECONDS each, one after the other, under ASan+UBSan, and prints what each
# reached: executions, executions per second, and libFuzzer's coverage figures
# (cov: edges reached, ft: features). Exits 1 when a target found a crash, a
# leak, a failed check or a time-out; its log and the input that did it stay in
# the build directory.
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>/) and
# from what earlier runs found (BUILD/corpus/<target>/, where new inputs go:
# the corpus grown here is never committed).
#
#   sh scripts/fuzz.sh BUILD [SECONDS] [TARGET...]
set -u
build="$1"
seconds="${2:-60}"
shift
[ $# -gt 0 ] && shift
src=$(cd "$(dirname "$0")/.." && pwd)
targets="$*"
if [ -z "$targets" ]; then
    for bin in "$build"/fuzz/fuzz_*; do
        [ -x "$bin" ] && targets="$targets ${bin##*/fuzz_}"
    done
fi
[ -n "$targets" ] || { echo "fuzz: no targets in $build/fuzz (build with -DSYN_FUZZ=ON)" >&2; exit 2; }
mkdir -p "$build/logs"
echo "== fuzzing for $seconds s each in $build"
printf '%-15s %12s %9s %6s %7s  %s\n' target executions exec/s cov ft result
rc=0
for name in $targets; do
    corpus="$build/corpus/$name"
    artifacts="$build/artifacts/$name"
    log="$build/logs/$name.log"
    mkdir -p "$corpus" "$artifacts"
    # -timeout: one input taking 30 s is a finding (the decoders are linear);
    # generous, for a loaded machine under the sanitizers.
    # A target's dictionary (tests/fuzz/<target>.dict), when it has one: the
    # words of its format, which mutations rarely spell by chance.
    dict=""
    [ -f "$src/tests/fuzz/$name.dict" ] && dict="-dict=$src/tests/fuzz/$name.dict"
    "$build/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" $dict "$corpus" "$src/tests/fuzz/corpus/$name" \
        >"$log" 2>&1
    status=$?
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    result=ok
    if [ "$status" -ne 0 ]; then
        result="FAILED (exit $status; log $log)"
        rc=1
    fi
    printf '%-15s %12s %9s %6s %7s  %s\n' "$name" "${execs:--}" "${rate:--}" "${cov:--}" \
        "${ft:--}" "$result"
    if [ "$status" -ne 0 ]; then
        grep -E 'ERROR|SUMMARY|check failed|Test unit written|^fuzz_' "$log" | head -n 20 | sed 's/^/    /'
    fi
done
exit "$rc"
