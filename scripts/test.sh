#!/usr/bin/env bash
# Every test tokengate has, from a fresh clone: setup, static checks, Rust tests (core vectors,
# Wycheproof, properties, fuzz run, issuer, CLI, proxy host), the no_std wasm build, then the JS
# and proxy suites on the built artifacts, the demo story in quick mode, then the release dry run
# and the deployment examples (scripts/test-release.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

step() { printf '\n=== [%4ds] %s\n' "$SECONDS" "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "core builds no_std for wasm32-unknown-unknown"
cargo build --quiet -p tokengate --target wasm32-unknown-unknown --no-default-features

step "build deployable artifacts"
bash scripts/build.sh

step "cargo test (workspace)"
TOKENGATE_PROXY_WASM="$PWD/target/tokengate_proxy.opt.wasm" cargo test --workspace --quiet
export TOKENGATE_WORKSPACE_TESTED=1

step "core signature tests in wasm32-wasip1 with simd128 under Node WASI"
bash scripts/test-wasm-crypto.sh

for suite in test-js test-proxy test-demo test-release; do
  if [ -f "scripts/$suite.sh" ]; then
    step "$suite"
    bash "scripts/$suite.sh"
  fi
done

step "all tests passed"
