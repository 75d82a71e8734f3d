#!/usr/bin/env bash
# Benchmarks: speed figures live here, never in timed tests. Each section compares tokengate
# with a peer measured in the same run; read the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null

echo "=== core (criterion): cargo bench -p tokengate"
cargo bench -p tokengate --bench verify 2>&1 | grep -E '^[a-z0-9_]+/|time:'

echo
echo "=== RS256 / ES256: tokengate vs jwt-compact (rsa 0.9, p256), native"
echo "| target | case | time/op |"
echo "| --- | --- | --- |"
cargo run --quiet --release --example rs256_compare -p tokengate -- 500 | grep '^|'

echo
echo "=== RS256 / ES256 in V8: pure wasm (simd128 and scalar builds, the npm .wasm) vs node:crypto"
# The wasip1 example in the flags scripts/build-proxy.sh uses (simd128, shared target dir) and
# without them (its own target dir, so neither build evicts the other); the npm module as
# scripts/build-js.sh built it (simd128 unless TOKENGATE_SIMD=0).
# shellcheck source=lib/wasm-rustflags.sh
. scripts/lib/wasm-rustflags.sh
cargo build --quiet --release --example rs256_compare -p tokengate --target wasm32-wasip1 \
  --config "$(wasm_rustflags wasm32-wasip1 1)"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
CARGO_TARGET_DIR=$TARGET_DIR/wasm-scalar \
  cargo build --quiet --release --example rs256_compare -p tokengate --target wasm32-wasip1
bash scripts/build-js.sh >/dev/null
node --no-warnings --no-liftoff scripts/lib/bench-crypto.mjs --npm \
  "simd128=$TARGET_DIR/wasm32-wasip1/release/examples/rs256_compare.wasm" \
  "scalar=$TARGET_DIR/wasm-scalar/wasm32-wasip1/release/examples/rs256_compare.wasm"

for part in bench-js bench-proxy bench-feed; do
  if [ -f "scripts/$part.sh" ]; then
    echo
    echo "=== $part"
    bash "scripts/$part.sh"
  fi
done
