#!/bin/sh
# Runs every test program of one build directory through ctest: unit tests in
# parallel, then the integration tests one at a time (they start whole stacks).
# Failing tests print their whole output, cmocka's lines included.
#
# The chaos soak (ctest label "soak", issue 23) runs in the plain build only:
# under the sanitizers its minute of faults would measure their slowness.
#
# Then, in the plain build only, the whole-stack tests that cover each secured
# link run once more with SYN_TEST_SECURE=1: every link over CURVE and every HTTP
# call with an API token (tests/support/teststack.h), so the promises hold on a
# secured stack too. Which ones, and why each (SECURE_RERUN below): the requests
# link and tokens on every route (test_api_contract, and the CLI's token in
# test_cli_commands), the events link (test_events), the workers' link with
# control messages, large artifact chunks and pulls, and several workers
# (test_control, test_artifacts, test_fleet), connections coming back after a
# broker restart (test_reliability_broker), and the wiring itself
# (test_teststack_secure). The other stack tests send nothing over these links
# that those do not; running them all again took 150 s of CI's 20 minutes, and
# these take half. Only in the plain build: sanitized stacks are several times
# slower, and the wiring is the same in both builds.
#
# The programs that run again over PostgreSQL (ctest label "postgresql", issue
# 21: <test>@postgresql, each with a private cluster) run in both builds where
# they are the store's unit tests: the PostgreSQL executor (broker/store_pg*.c)
# is the code the sanitizers must see, and those tests drive every statement of
# it. The whole stacks over PostgreSQL (integration/...@postgresql) run in the
# plain build only: they run the same executor through the same calls, and a
# sanitized stack plus a cluster would add minutes for no code the unit tests
# leave out. Nor are they in the CURVE rerun: which store sits behind the broker
# changes nothing on the wire.
#
# test_prefetch runs in the plain build only: its 20 s are phases left to run
# long on purpose, and the rule it drives (worker/prefetch.c) runs under the
# sanitizers in unit/test_worker_prefetch.
set -u
SECURE_RERUN='^integration/(test_api_contract|test_cli_commands|test_events|test_control|test_artifacts|test_fleet|test_reliability_broker|test_teststack_secure)$'
build="$1"
jobs="${2:-2}"
sanitized=false
grep -q '^SYN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && sanitized=true
echo "== tests in $build"
if $sanitized; then
    ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 300 -LE soak \
        -E '^integration/(.*@postgresql|test_prefetch)$'
else
    ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout 300
fi
rc=$?
if ! $sanitized; then
    echo "== the secured links' tests in $build again over CURVE and API tokens (SYN_TEST_SECURE=1)"
    SYN_TEST_SECURE=1 ctest --test-dir "$build" -L stack -R "$SECURE_RERUN" \
        --output-on-failure --timeout 300
    secure_rc=$?
    [ "$rc" -eq 0 ] && rc=$secure_rc
fi
exit "$rc"
