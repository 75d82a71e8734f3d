#!/usr/bin/env bash
# The npm package in Node against the floor (one raw node:crypto RS256 verify with a prebuilt
# KeyObject), aws-jwt-verify and jose, all measured in the same run (js/bench/run.mjs); prints
# the table js/README.md shows, the ratios to the floor and the .wasm size. About 15 s.
# BENCH_CLOCK=cpu times rounds by process CPU time (steadier on a busy machine);
# BENCH_ROUNDS / BENCH_ROUND_MS change the length.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-js.sh >/dev/null
cd js && npm run --silent bench
