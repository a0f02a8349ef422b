#!/usr/bin/env bash
# Installs the npm dependencies when node_modules is missing or older than the lock file, then
# makes sure the native addons load with the node that runs now (rebuilt after a node upgrade).
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=${npm_config_nodedir:-/usr}
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
node scripts/native-addons.js
