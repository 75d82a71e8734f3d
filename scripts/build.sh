#!/usr/bin/env bash
# Builds the artifacts people deploy: the npm package's wasm module and the Envoy filter.
set -euo pipefail
cd "$(dirname "$0")/.."
for part in build-js build-proxy; do
  if [ -f "scripts/$part.sh" ]; then
    bash "scripts/$part.sh"
  fi
done
