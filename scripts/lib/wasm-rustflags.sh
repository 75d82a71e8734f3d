# shellcheck shell=bash
# wasm_rustflags TARGET SIMD: the cargo --config value with the rustflags of tokengate's wasm
# builds (scripts/build-js.sh, scripts/build-proxy.sh, scripts/bench.sh, and the wasm32 tests
# of scripts/test-wasm-crypto.sh), one definition so that builds sharing a target directory
# keep one set of flags and do not evict each other, and the tests run what the artifacts run.
# - SIMD != 0: simd128 (Node 20, workerd, Chromium and Envoy's V8 run it: the core's RSA
#   arithmetic sums four products per vector instruction); 0: the scalar build.
# - Panic locations name source files: the cargo registry's path (this machine's home
#   directory) is remapped away, so a module reads the same wherever it was built.
wasm_rustflags() {
  local target=$1 flags dir
  if [ "$2" != 0 ]; then
    flags='"-C", "target-feature=+simd128"'
  else
    flags='"-C", "target-feature=-simd128"'
  fi
  for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    [ -d "$dir" ] && flags="$flags, \"--remap-path-prefix=$dir=\""
  done
  printf 'target.%s.rustflags=[%s]' "$target" "$flags"
}
