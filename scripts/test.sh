#!/usr/bin/env bash
# `npm test` (and .ci/run): installs what is missing, builds from scratch, checks src/ for import
# cycles (scripts/import_cycles.ts), runs every test.
# Extra arguments are test files (dist paths or test/ .ts paths) to run instead of all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=${npm_config_nodedir:-/usr}
bash scripts/system-deps.sh
bash scripts/node-deps.sh
npm run --silent build
# src/ must have no import cycle (type-only imports count): checked before any test runs.
node dist/scripts/import_cycles.js
files=()
for f in "$@"; do f=${f%.ts}; f=${f#dist/}; files+=("dist/${f%.js}.js"); done
[ ${#files[@]} -gt 0 ] || mapfile -t files < <(find dist/test -name '*.test.js' | sort)
start=$(date +%s)
set +e
node --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
rc=$?
set -e
echo "distkit: npm test took $(( $(date +%s) - start ))s after the build, rc=$rc"
exit $rc
