#!/usr/bin/env bash
# `npm run test:unit`: the pure tests only (codecs, stores, argument handling, parsing), no
# daemons, no live servers, no real clients, in well under a minute. Builds like `npm test`, then
# runs the *.test files under these paths (a directory takes every test in it).
set -euo pipefail
cd "$(dirname "$0")/.."
UNIT=(
  test/cache/wire test/cache/snoop test/cache/stores test/cache/engine.test.ts test/cache/address.test.ts
  test/cache/progress.test.ts test/cache/evicted_sessions_leak.test.ts
  test/compile/wire test/compile/pump/argv.test.ts test/compile/args.test.ts test/compile/access.test.ts test/compile/allowlist.test.ts
  test/cli test/errors.test.ts test/scripts/import_cycles.test.ts
  test/activation/address.test.ts test/activation/notify.test.ts
  test/log/logger.test.ts test/log/sinks.test.ts
  test/fuzz/cache_wire_fuzz.test.ts test/fuzz/distcc_wire_fuzz.test.ts
)
files=()
for path in "${UNIT[@]}"; do
  if [ -d "$path" ]; then mapfile -t -O "${#files[@]}" files < <(find "$path" -name '*.test.ts' | sort)
  elif [ -e "$path" ]; then files+=("$path")
  else echo "test-unit.sh: $path does not exist: correct the list" >&2; exit 1
  fi
done
exec bash scripts/test.sh "${files[@]}"
