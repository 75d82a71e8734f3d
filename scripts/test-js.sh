#!/usr/bin/env bash
# The npm package's tests, on the built artifacts: Node (every conformance vector, API, JWKS,
# TokenClient), the packed tarball (ESM, CJS, tsc), real workerd and real Chromium.
# Builds js/dist first when it is missing or older than its sources. Nothing reads the
# internet; every server binds 127.0.0.1; every test has a time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '[test-js] %s\n' "$*"; }
# shellcheck source=lib/tap-report.sh
. "$ROOT/scripts/lib/tap-report.sh"

[ -d js/node_modules ] || { echo "test-js: js/node_modules missing: run scripts/setup.sh" >&2; exit 1; }

wasm=js/dist/wasm/tokengate_wasm_bg.wasm
if [ ! -f "$wasm" ] || [ ! -f js/dist/node.cjs ] || \
   [ -n "$(find crates/tokengate/src crates/tokengate-wasm js/src js/scripts Cargo.lock -newer "$wasm" -type f 2>/dev/null | head -1)" ]; then
  bash scripts/build-js.sh
fi

cd js
log=$(mktemp -t tokengate-test-js.XXXXXX)
trap 'rm -f "$log"' EXIT

# Node's TAP output ends with "# tests N / # pass N / # fail N": the lines CI reads.
set +e
node --test --test-reporter=tap --test-timeout=120000 \
  test/vectors.test.mjs test/http.test.mjs test/identity.test.mjs test/api.test.mjs test/jwks.test.mjs test/feed.test.mjs test/client.test.mjs \
  test/package.test.mjs test/workerd.test.mjs test/chromium.test.mjs >"$log" 2>&1
status=$?
set -e
tap_report "$log" "$status"
exit "$status"
