#!/bin/sh
# The chaos soak's command agent (bench/chaos). It keeps its own record of every
# run, apart from anything the worker or the broker say: one line
#   start <execution> <phase> <attempt> <pid>
# appended to $SYN_CHAOS_RECORDS before it does anything (the checker counts
# these against the store's attempts), and "end ..." when it answers. The prompt
# steers it like the mock provider:
#   "#mock sleep MS"    takes MS milliseconds
#   "#mock fail REASON" fails with REASON
#   "FAIL_TIMES N"      fails its first N runs of this execution's phase
prompt=$(cat)
# Directives count only in the first three lines: later ones are earlier
# phases' outputs quoted in this prompt.
head=$(printf '%s\n' "$prompt" | head -n 3)
rec="$SYN_CHAOS_RECORDS"
echo "start $SYN_EXECUTION_ID $SYN_PHASE_ID $SYN_ATTEMPT $$" >> "$rec"
ms=$(printf '%s\n' "$head" | sed -n 's/^#mock sleep \([0-9][0-9]*\).*/\1/p' | head -n 1)
if [ -n "$ms" ] && [ "$ms" -gt 0 ]; then
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
fi
reason=$(printf '%s\n' "$head" | sed -n 's/^#mock fail \(.*\)/\1/p' | head -n 1)
if [ -n "$reason" ]; then
    echo "end $SYN_EXECUTION_ID $SYN_PHASE_ID $SYN_ATTEMPT failed" >> "$rec"
    echo "$reason" >&2
    exit 1
fi
times=$(printf '%s\n' "$head" | sed -n 's/^FAIL_TIMES \([0-9][0-9]*\).*/\1/p' | head -n 1)
if [ -n "$times" ]; then
    count_file="$SYN_CHAOS_DIR/$SYN_EXECUTION_ID.$SYN_PHASE_ID.fails"
    count=$(cat "$count_file" 2>/dev/null || echo 0)
    if [ "$count" -lt "$times" ]; then
        echo $((count + 1)) > "$count_file"
        echo "end $SYN_EXECUTION_ID $SYN_PHASE_ID $SYN_ATTEMPT flaky" >> "$rec"
        echo "flaky: failing run $((count + 1)) of $times on purpose" >&2
        exit 1
    fi
fi
echo "end $SYN_EXECUTION_ID $SYN_PHASE_ID $SYN_ATTEMPT ok" >> "$rec"
# The same output the mock gives, so a phase's result does not depend on the
# kind of worker that ran it.
printf 'mock output for phase %s:\n%s' "$SYN_PHASE_ID" "$prompt"
