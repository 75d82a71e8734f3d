#!/usr/bin/env bash
# The core's signature arithmetic as the .wasm artifacts run it. Native `cargo test` covers the
# scalar limb systems (radix 2^27, the code of the scalar .wasm builds, and 2^64); this runs the
# RSA and ES256 unit tests (property tests against num-bigint and p256, edge values, the fixed
# test keys) and the Wycheproof vectors again in wasm32-wasip1 with simd128 under Node's WASI:
# the vector column sums the npm package and the Envoy filter ship, and the npm module's own
# memcmp (its simd128 loop) and small-block allocator. Seconds once built (the
# first build of the test binaries for wasm32-wasip1 takes several minutes).
#
#   bash scripts/test-wasm-crypto.sh                   # simd128
#   TOKENGATE_SIMD=0 bash scripts/test-wasm-crypto.sh  # the scalar wasm build instead
#   TOKENGATE_SIMD=all bash scripts/test-wasm-crypto.sh
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[test-wasm-crypto] %s\n' "$*"; }

# cargo runs each test binary through Node's WASI (scripts/lib/run-wasi.mjs).
export CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $PWD/scripts/lib/run-wasi.mjs"
# Each variant in its own target directory, so neither rebuilds the other's dependencies nor
# the release artifacts in target/.
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

case "${TOKENGATE_SIMD:-1}" in
  0) variants=(scalar) ;;
  all) variants=(simd scalar) ;;
  *) variants=(simd) ;;
esac

# The artifacts' own rustflags (scripts/lib/wasm-rustflags.sh), simd128 or scalar.
# shellcheck source=lib/wasm-rustflags.sh
. scripts/lib/wasm-rustflags.sh
for variant in "${variants[@]}"; do
  simd=1
  [ "$variant" = scalar ] && simd=0
  flags=(--config "$(wasm_rustflags wasm32-wasip1 "$simd")")
  export CARGO_TARGET_DIR="$TARGET_DIR/wasm-crypto-$variant"
  say "wasm32-wasip1 ($variant): Montgomery arithmetic and signature unit tests"
  cargo test --quiet -p tokengate-mont --target wasm32-wasip1 "${flags[@]}"
  cargo test --quiet -p tokengate --target wasm32-wasip1 "${flags[@]}" --lib signature::
  say "wasm32-wasip1 ($variant): the npm module's memcmp and small-block allocator"
  cargo test --quiet -p tokengate-wasm --target wasm32-wasip1 "${flags[@]}" --lib -- memcmp:: pool::
  say "wasm32-wasip1 ($variant): Wycheproof RSA PKCS#1 v1.5 and ECDSA P-256"
  cargo test --quiet -p tokengate --target wasm32-wasip1 "${flags[@]}" --test wycheproof
done
say "passed"
