#!/usr/bin/env bash
# Benchmarks the Envoy filter (not a test): per-verification cost in the wasmtime host, then wrk
# through one real Envoy for no auth / the empty proxy-wasm filter (tests/bench-filter) /
# jwt_authn / tokengate (default config, and with the audit line), warm and with a new token on
# every request; prints a markdown table with the ratios. Bounded (about 7 minutes). With two
# or more CPUs, Envoy and wrk each run on their own (`--no-pin` leaves them to the scheduler).
# BENCH_SECONDS=N changes the length of each wrk run (default 4), BENCH_ROUNDS the number of
# interleaved rounds of every row (default 7); extra arguments go to bench.py (--probes
# prices single host calls with variants of the empty filter).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build-proxy.sh --with-bench-filter
echo "[bench-proxy] per-verification cost in the wasmtime host"
# The host's own glue is compiled with optimisations so that its overhead does not hide the
# filter's cost (the filter itself is JIT-compiled by Cranelift either way).
cargo run -q --config 'profile.dev.package.tokengate-proxy-host.opt-level=2' \
  -p tokengate-proxy-host --example verify_cost
echo "[bench-proxy] wrk through Envoy"
timeout 900 python3 tests/e2e/envoy/bench.py --seconds "${BENCH_SECONDS:-4}" \
  --rounds "${BENCH_ROUNDS:-7}" "$@"
