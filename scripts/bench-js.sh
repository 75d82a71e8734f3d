#!/usr/bin/env bash
# The npm package against aws-jwt-verify and jose, measured in the same run (js/bench/run.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-js.sh >/dev/null
cd js && npm run --silent bench
