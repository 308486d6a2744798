#!/usr/bin/env bash
# Run a test command STRESS_ROUNDS times (default 3) while one core is kept busy, and say
# which rounds failed. Usage: scripts/stress.sh <command...>   (make test-stress)
set -uo pipefail

rounds=${STRESS_ROUNDS:-3}
yes > /dev/null &
busy=$!
trap 'kill "$busy" 2>/dev/null' EXIT

failed=()
for ((round = 1; round <= rounds; round++)); do
  echo "== stress round $round/$rounds (one core busy)"
  "$@" || failed+=("$round")
done
if ((${#failed[@]})); then
  echo "stress: rounds failed: ${failed[*]} of $rounds" >&2
  exit 1
fi
echo "stress: all $rounds rounds passed"
