#!/usr/bin/env bash
# Builds the npm package's generated files into js/dist:
#   js/dist/wasm/tokengate_wasm.js + tokengate_wasm_bg.wasm   (wasm-bindgen --target web, wasm-opt -O3)
#   js/dist/node.cjs                                          (CommonJS entry, from the ESM sources)
# Needs: rust target wasm32-unknown-unknown, wasm-bindgen CLI at the Cargo.lock version, and
# `npm ci` in js/ (for binaryen's wasm-opt). scripts/setup.sh installs all three.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/js/dist/wasm
WASM_OPT=$ROOT/js/node_modules/.bin/wasm-opt

say() { printf '[build-js] %s\n' "$*"; }

[ -x "$WASM_OPT" ] || { echo "build-js: $WASM_OPT missing: run scripts/setup.sh (npm ci in js/)" >&2; exit 1; }
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "build-js: wasm-bindgen CLI is '${have:-missing}', Cargo.lock has $want: run scripts/setup.sh" >&2
  exit 1
fi

# The workspace builds the core at opt-level 3. Here the rest of the core goes down to "z":
# opt-level 3 for all of it adds ~30 KB gzipped to the .wasm (budget in js/test/package.test.mjs).
# What runs on every uncached token keeps its own level: the RSA loop (tokengate-mont) and the
# JSON reader (tokengate-json) stay at 3 in every build (the workspace profile; the RSA loop at
# "s" ran ~30% slower), and so does base64 (at "z" its decoder alone was a third of an uncached
# verification, node --cpu-prof). The core's own code at "z" rather than "s" is
# 7.9 KB smaller gzipped for ~0.5 us more per uncached verifySync (interleaved A/B in one Node
# process). Override the core's level with TOKENGATE_CORE_OPT_LEVEL.
CORE_OPT=${TOKENGATE_CORE_OPT_LEVEL:-\"z\"}
say "cargo build --release --target wasm32-unknown-unknown -p tokengate-wasm (core opt-level $CORE_OPT)"
# simd128 unless TOKENGATE_SIMD=0 (the scalar module for hosts without it), registry paths
# remapped out of panic locations: scripts/lib/wasm-rustflags.sh.
# shellcheck source=lib/wasm-rustflags.sh
. scripts/lib/wasm-rustflags.sh
cargo build --quiet --release --target wasm32-unknown-unknown -p tokengate-wasm \
  --config "$(wasm_rustflags wasm32-unknown-unknown "${TOKENGATE_SIMD:-1}")" \
  --config "profile.release.package.tokengate.opt-level=$CORE_OPT"

# Wherever cargo puts its output (CARGO_TARGET_DIR, .cargo/config): ask it.
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "wasm-bindgen $want --target web"
wasm-bindgen --target web --out-dir "$tmp" --out-name tokengate_wasm \
  "$TARGET_DIR/wasm32-unknown-unknown/release/tokengate_wasm.wasm"

say "wasm-opt -O3 (binaryen $("$WASM_OPT" --version | awk '{print $3}'))"
# The feature set rustc's wasm32-unknown-unknown target emits by default; wasm-opt must keep it.
# -O3 rather than -Oz: rustc has already built most of the module for size, and binaryen's
# speed levels inline what that left as calls. Against -Oz the pure-wasm verifySync runs 3-4%
# faster, the work besides RSA 2-4%, for ~200 bytes gzipped (node js/bench/ab.mjs).
# --converge repeats the passes until the module stops shrinking (~0.3 KiB gzipped).
# --low-memory-unused lets constant address offsets fold into loads and stores: rustc lays
# the stack out first (data starts at 1 MiB), so no valid address wraps into the low 1 KiB;
# a pointer that would is a bug, and then traps instead (~1.7 KiB gzipped).
"$WASM_OPT" -O3 --converge --low-memory-unused --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-multivalue --enable-mutable-globals \
  --strip-debug --strip-producers \
  "$tmp/tokengate_wasm_bg.wasm" -o "$tmp/opt.wasm"

mkdir -p "$OUT"
cp "$tmp/tokengate_wasm.js" "$OUT/tokengate_wasm.js"
cp "$tmp/opt.wasm" "$OUT/tokengate_wasm_bg.wasm"

say "dist/node.cjs"
node "$ROOT/js/scripts/make-cjs.mjs"

raw=$(wc -c <"$OUT/tokengate_wasm_bg.wasm")
gz=$(gzip -9c "$OUT/tokengate_wasm_bg.wasm" | wc -c)
say "js/dist/wasm/tokengate_wasm_bg.wasm: $raw bytes, $gz gzipped (budget 120000, js/test/package.test.mjs)"
