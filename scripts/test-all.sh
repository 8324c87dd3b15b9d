#!/bin/sh
# `make test` (and CI, .ci/run): the plain build's tests, the same tests under
# ASan+UBSan, then the short fuzz pass; stops at the first part that fails and
# exits non-zero then. Its own script for one decision: what overlaps.
#
# The sanitized and fuzz trees are built (BUILD_TREES, `make test-trees`) while
# the plain build's tests run, at the lowest CPU priority: most of those tests'
# time is whole stacks, run one at a time, waiting on sockets and timers, and the
# compiler takes the cores they leave idle. Built after the tests, the two trees
# added their whole build time to CI's (docs/architecture.md, "Tests"). Their output goes to
# BUILD/test-trees.log, printed whole when the build failed; the tests' output is
# scripts/test.sh's, as before. The build runs in a session of its own, so a
# failure or an interrupt stops all of it at once.
#
#   sh scripts/test-all.sh BUILD ASAN_BUILD JOBS BUILD_TREES FUZZ_RUN
set -u
build="$1"
asan="$2"
jobs="$3"
build_trees="$4"
fuzz_run="$5"
log="$build/test-trees.log"

setsid nice -n 19 sh -c "$build_trees" >"$log" 2>&1 &
builder=$!
trap '[ -n "$builder" ] && kill -s TERM -- "-$builder" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

sh scripts/test.sh "$build" "$jobs" || exit 1

echo "== the sanitized and fuzz trees (built while the tests above ran)"
wait "$builder"
status=$?
builder=""
if [ "$status" -ne 0 ]; then
    cat "$log"
    echo "== building the sanitized and fuzz trees failed (exit $status; $log)"
    exit 1
fi
sh scripts/test.sh "$asan" "$jobs" || exit 1
sh -c "$fuzz_run"
