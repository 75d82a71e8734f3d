#!/usr/bin/env bash
# The demo end to end: the story (scripts/demo.sh --quick: issuer, origin, real Envoy with the
# filter, the worker in real workerd; every verdict on both edges) and the browser page in real
# Chromium (tests/e2e/demo/page.test.mjs). Closing line: "N passed, N failed".
# Bounded: each part runs under timeout(1); everything binds 127.0.0.1.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
log=$(mktemp -t tokengate-test-demo.XXXXXX)
trap 'rm -f "$log"' EXIT

echo "[test-demo] the story (scripts/demo.sh --quick)"
timeout --foreground 900 bash scripts/demo.sh --quick 2>&1 | tee "$log"
line=$(grep -E '^demo: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
if [ -n "$line" ]; then
  passed=$((passed + $(awk '{print $2}' <<<"$line")))
  failed=$((failed + $(awk '{print $4}' <<<"$line")))
else
  echo "[test-demo] the story did not run to its summary line"
  failed=$((failed + 1))
fi

echo "[test-demo] the page in Chromium (tests/e2e/demo/page.test.mjs)"
timeout 300 node --test --test-reporter=tap --test-timeout=120000 tests/e2e/demo/page.test.mjs >"$log" 2>&1
status=$?
grep -E '^(ok|not ok) ' "$log" || true
if [ "$status" -ne 0 ]; then grep -E -A30 '^not ok ' "$log" || tail -40 "$log"; fi
pass=$(awk '/^# pass /{print $3}' "$log")
fail=$(awk '/^# fail /{print $3}' "$log")
if [ -z "$pass" ]; then
  echo "[test-demo] the page test did not report (exit $status)"
  tail -20 "$log"
  failed=$((failed + 1))
else
  passed=$((passed + pass))
  failed=$((failed + fail))
  if [ "$status" -ne 0 ] && [ "$fail" = 0 ]; then failed=$((failed + 1)); fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
