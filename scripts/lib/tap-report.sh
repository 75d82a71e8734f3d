# Sourced by the test scripts that run `node --test --test-reporter=tap` into a log file.
#
#   tap_report LOG STATUS
#
# prints what CI reads from that log: each test's result line, the failures with their context
# when STATUS (node's exit status) is not 0, and Node's closing "# tests N / # pass N / # fail N"
# lines. Uses the caller's `say` for its one line of its own.
tap_report() {
  local log=$1 status=$2
  grep -E '^(ok|not ok) ' "$log" || true
  if [ "$status" -ne 0 ]; then
    say "failures:"
    grep -E -A40 '^not ok ' "$log" || tail -50 "$log"
  fi
  grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$log"
}
