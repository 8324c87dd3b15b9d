#!/bin/sh
# Runs every test program of one build directory through ctest: unit tests in
# parallel, then the integration tests one at a time (they start whole stacks).
# Failing tests print their whole output, cmocka's lines included.
set -u
build="$1"
jobs="${2:-2}"
echo "== tests in $build"
ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 300
