#!/usr/bin/env bash
# The Envoy filter's tests, on the built artifact: build it, run the wasmtime host tests (every
# vector + scenarios + import allowlist + size budget), then real Envoy end to end.
# TOKENGATE_SKIP_ENVOY=1 skips the Envoy part (e.g. on a machine without it).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build-proxy.sh
# scripts/test.sh has already run these in its workspace-wide `cargo test` (on the artifact
# built just before); running them again per package would rebuild wasmtime with other features.
if [ "${TOKENGATE_WORKSPACE_TESTED:-}" != 1 ]; then
  cargo test -p tokengate-proxy
  TOKENGATE_PROXY_WASM="$PWD/target/tokengate_proxy.opt.wasm" cargo test -p tokengate-proxy-host
fi

if [ "${TOKENGATE_SKIP_ENVOY:-}" = 1 ]; then
  echo "[test-proxy] Envoy e2e skipped (TOKENGATE_SKIP_ENVOY=1)"
  exit 0
fi
if [ ! -x .venv/bin/envoy ]; then
  echo "[test-proxy] .venv/bin/envoy missing: run scripts/setup.sh" >&2
  exit 1
fi
# Bounded: the script has its own deadline; this is the backstop.
timeout 300 python3 tests/e2e/envoy/test_envoy.py
