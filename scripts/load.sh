#!/usr/bin/env bash
# `npm run load -- [--idle 10000] [--requests 20000] [--churn 1000000]`: builds, then runs the long
# cache load runs of test/load (10,000 idle connections beside an active client; 10^6 ADDs of
# eviction churn) against dc_server on 127.0.0.1. Loopback only; bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=${npm_config_nodedir:-/usr}
[ -d node_modules ] || bash scripts/node-deps.sh
npm run --silent build
exec node dist/test/load/load_main.js "$@"
