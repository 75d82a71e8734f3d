#!/usr/bin/env bash
# Builds the Envoy filter: cargo (wasm32-wasip1, release) then wasm-opt -Oz from the npm
# binaryen package. Output: target/tokengate_proxy.opt.wasm (stable path used by the tests, the
# e2e and the README). Without wasm-opt the unoptimised module is copied there, with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

RAW=target/wasm32-wasip1/release/tokengate_proxy.wasm
OUT=target/tokengate_proxy.opt.wasm
WASM_OPT=js/node_modules/.bin/wasm-opt

cargo build --release --target wasm32-wasip1 -p tokengate-proxy

if [ -x "$WASM_OPT" ]; then
  # Features come from the module's target_features section (what rustc emitted), so wasm-opt
  # introduces nothing Envoy's V8 would not already have to run.
  # A private temporary file: several builds may run at once in one tree (tests, demo, bench).
  TMP=$(mktemp --suffix=.wasm target/tokengate_proxy.XXXXXX)
  "$WASM_OPT" -Oz --strip-debug --strip-producers "$RAW" -o "$TMP"
  mv "$TMP" "$OUT"
else
  echo "[build-proxy] warning: $WASM_OPT not found (run scripts/setup.sh to install npm binaryen);" \
       "copying the unoptimised module to $OUT" >&2
  TMP=$(mktemp --suffix=.wasm target/tokengate_proxy.XXXXXX)
  cp "$RAW" "$TMP"
  mv "$TMP" "$OUT"
fi
printf '[build-proxy] %s: %s bytes (unoptimised %s)\n' "$OUT" "$(stat -c %s "$OUT")" "$(stat -c %s "$RAW")"
