#!/bin/sh
# The mock provider as a command agent, for W2 through the command provider
# (bench/sandbox.sh): sleeps as a "#mock sleep MS" line says, then prints what
# the mock prints, so synload's check of every output still holds.
prompt=$(cat)
ms=$(printf '%s\n' "$prompt" | sed -n 's/^#mock sleep \([0-9][0-9]*\).*/\1/p' | head -n 1)
if [ -n "$ms" ]; then
  sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
fi
printf 'mock output for phase %s:\n%s' "$SYN_PHASE_ID" "$prompt"
