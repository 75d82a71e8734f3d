#!/usr/bin/env bash
# Benchmarks: speed figures live here, never in timed tests. Each section compares tokengate
# with a peer measured in the same run; read the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null

echo "=== core (criterion): cargo bench -p tokengate"
cargo bench -p tokengate --bench verify 2>&1 | grep -E '^[a-z0-9_]+/|time:'

echo
echo "=== RS256 precomputed vs jwt-compact + rsa 0.9, native and wasm32 (Node WASI)"
echo "| target | case | time/op | ratio |"
echo "| --- | --- | --- | --- |"
cargo run --quiet --release --example rs256_compare -p tokengate -- 500 | grep '^|'
cargo build --quiet --release --example rs256_compare -p tokengate --target wasm32-wasip1
node --no-warnings scripts/lib/run-wasi.mjs target/wasm32-wasip1/release/examples/rs256_compare.wasm 300 | grep '^|'

for part in bench-js bench-proxy bench-feed; do
  if [ -f "scripts/$part.sh" ]; then
    echo
    echo "=== $part"
    bash "scripts/$part.sh"
  fi
done
