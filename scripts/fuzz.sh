#!/usr/bin/env bash
# `npm run fuzz -- --target cache --cases 1000000`: builds, then runs the fuzz targets of
# test/fuzz (see `npm run fuzz -- --help`). Prints cases run, crashes, hangs and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=${npm_config_nodedir:-/usr}
[ -d node_modules ] || bash scripts/node-deps.sh
npm run --silent build
exec node --max-old-space-size=2048 dist/test/fuzz/fuzz_main.js "$@"
