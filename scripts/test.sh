#!/bin/sh
# Runs every test program of one build directory and prints each one's cmocka
# output, then ctest's summary; exits non-zero when any test fails.
set -u
build="$1"
jobs="${2:-2}"
echo "== tests in $build"
ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 300 \
  --output-log "$build/ctest.log" >/dev/null
rc=$?
grep -E '^\[ *(PASSED|FAILED|  OK|ERROR) *\]|^\[==========\]|tests passed|tests failed' \
  "$build/ctest.log" || true
tail -n 20 "$build/ctest.log" | grep -E 'tests passed|Total Test time' || true
exit $rc
