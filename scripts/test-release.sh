#!/usr/bin/env bash
# The release dry run and the deployment examples: scripts/release.sh --offline (every artifact
# into dist/, nothing uploaded, no registry asked), then deploy/test/ on what it built: dist/
# (checksums, crate manifests, npm tarball, the OCI layout read and pushed by skopeo to a
# registry on 127.0.0.1) and each example (Istio and Envoy Gateway schemas, wrangler dry run
# and the Worker bundle in workerd, a real Express server). Servers bind 127.0.0.1; every step
# has a time limit.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[test-release] %s\n' "$*"; }
# shellcheck source=lib/tap-report.sh
. scripts/lib/tap-report.sh

# Bounded: a cold cargo package (the published crates compiled from scratch) takes a few minutes on 2 cores.
timeout 1800 bash scripts/release.sh --offline

[ -d deploy/node_modules ] || { echo "test-release: deploy/node_modules missing: run scripts/setup.sh" >&2; exit 1; }
log=$(mktemp -t tokengate-test-release.XXXXXX)
trap 'rm -f "$log"' EXIT
say "deploy/test"
set +e
(cd deploy && timeout 900 node --test --test-reporter=tap --test-timeout=300000 \
  test/release-check.test.mjs test/dist.test.mjs test/oci.test.mjs test/istio.test.mjs \
  test/envoy-gateway.test.mjs test/cloudflare-workers.test.mjs test/express.test.mjs \
  test/docs.test.mjs) >"$log" 2>&1
status=$?
set -e
tap_report "$log" "$status"
exit "$status"
