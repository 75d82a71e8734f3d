#!/usr/bin/env bash
# Time from revoke to deny (not a test): the demo stack (issuer, Envoy with the filter, the
# worker in workerd), FEED_TRIALS (20) breach trials each: revoke a client at the issuer, time
# until each edge answers 401, lift it. The feed is polled every second (demo/gate-config.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/demo.sh --feed-bench
