#!/usr/bin/env bash
# `npm run bench`: builds, then compares our distccd with Debian's C distccd side by side
# (scripts/bench/distcc_bench.ts). Extra arguments go to the bench (--runs N, --quick).
# Never part of `npm test`: it takes minutes and measures speed.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=${npm_config_nodedir:-/usr}
bash scripts/system-deps.sh
bash scripts/node-deps.sh
npm run --silent build
exec node dist/scripts/bench/distcc_bench.js "$@"
