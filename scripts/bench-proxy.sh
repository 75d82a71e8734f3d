#!/usr/bin/env bash
# Benchmarks the Envoy filter (not a test): per-verification cost in the wasmtime host, then
# wrk through real Envoy for no auth / jwt_authn / tokengate. Bounded (about 2 minutes).
# BENCH_SECONDS=N changes the length of each wrk run (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build-proxy.sh
echo "[bench-proxy] per-verification cost in the wasmtime host"
# The host's own glue is compiled with optimisations so that its overhead does not hide the
# filter's cost (the filter itself is JIT-compiled by Cranelift either way).
cargo run -q --config 'profile.dev.package.tokengate-proxy-host.opt-level=2' \
  -p tokengate-proxy-host --example verify_cost
echo "[bench-proxy] wrk through Envoy"
timeout 600 python3 tests/e2e/envoy/bench.py --seconds "${BENCH_SECONDS:-8}"
