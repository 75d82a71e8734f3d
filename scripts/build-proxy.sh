#!/usr/bin/env bash
# Builds the Envoy filter: cargo (wasm32-wasip1, release) then wasm-opt -Oz from the npm
# binaryen package. Output: target/tokengate_proxy.opt.wasm (stable path used by the tests, the
# e2e and the README). Without wasm-opt the unoptimised module is copied there, with a warning.
#
# --with-bench-filter also builds tests/bench-filter (the empty filter benchmarks compare
# with) the same way: target/tokengate_bench_filter.opt.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_OPT=js/node_modules/.bin/wasm-opt
# simd128 unless TOKENGATE_SIMD=0 (the scalar filter for hosts without it), registry paths
# remapped out of panic locations: scripts/lib/wasm-rustflags.sh.
# shellcheck source=lib/wasm-rustflags.sh
. scripts/lib/wasm-rustflags.sh
RUSTFLAGS_CONFIG=$(wasm_rustflags wasm32-wasip1 "${TOKENGATE_SIMD:-1}")

# build PACKAGE: cargo build, then wasm-opt to target/<crate>.opt.wasm.
build() {
  local pkg=$1 name=${1//-/_}
  local raw=target/wasm32-wasip1/release/$name.wasm out=target/$name.opt.wasm
  cargo build --release --target wasm32-wasip1 -p "$pkg" --config "$RUSTFLAGS_CONFIG"
  # A private temporary file: several builds may run at once in one tree (tests, demo, bench).
  local tmp
  tmp=$(mktemp --suffix=.wasm "target/$name.XXXXXX")
  if [ -x "$WASM_OPT" ]; then
    # Features come from the module's target_features section (what rustc emitted), so wasm-opt
    # introduces nothing Envoy's V8 would not already have to run.
    # --converge and --low-memory-unused: as in scripts/build-js.sh (rustc lays the stack out
    # first, so no valid address wraps into the low 1 KiB); about 6 KB smaller.
    "$WASM_OPT" -Oz --converge --low-memory-unused --strip-debug --strip-producers "$raw" -o "$tmp"
  else
    echo "[build-proxy] warning: $WASM_OPT not found (run scripts/setup.sh to install npm binaryen);" \
         "copying the unoptimised module to $out" >&2
    cp "$raw" "$tmp"
  fi
  mv "$tmp" "$out"
  printf '[build-proxy] %s: %s bytes (unoptimised %s)\n' "$out" "$(stat -c %s "$out")" "$(stat -c %s "$raw")"
}

build tokengate-proxy
if [ "${1:-}" = "--with-bench-filter" ]; then
  build tokengate-bench-filter
fi
