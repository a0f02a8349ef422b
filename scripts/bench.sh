#!/usr/bin/env bash
# `npm run bench`: builds, then compares our distccd with Debian's C distccd side by side
# (scripts/bench/distcc_bench.ts) and our dc_server with the real C dc_server 1.5.1, built once into
# /var/cache/distkit-bench by scripts/bench/c_distcache.sh (scripts/bench/cache_bench.ts, ending with
# ours on Redis: `-- cache --only-redis` runs those rows alone). `npm run bench -- distcc [args]` or `-- cache [args]` runs one;
# other extra arguments go to both (--quick). `npm run bench -- startup [--runs N]` times distccd's
# start-up against C's (scripts/bench/startup_bench.ts). `npm run bench -- objcache [--quick] [--rounds N]`
# measures the object cache (scripts/bench/objcache_bench.ts); `-- sandbox [--quick] [--rounds N]` what the
# compile sandbox costs per trivial job and per make -j4 build, TCP and inetd, against its budget
# (scripts/bench/sandbox_bench.ts); `-- snapshot [--sessions N]` times
# dc_server's session snapshot write and load (scripts/bench/snapshot_bench.ts). `npm run bench -- metrics` measures what
# the metrics cost: distccd's per job (observer_cost.ts) and dc_server's server CPU per operation
# with -metrics against two servers without, the second a control giving the run-to-run spread
# (cache_bench.ts --metrics-cost [--rounds N] [--ms M], scripts/bench/cache_metrics_cost.ts). Never part of `npm test`: it takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=${npm_config_nodedir:-/usr}
bash scripts/system-deps.sh
bash scripts/node-deps.sh
npm run --silent build
case "${1:-}" in
  distcc) shift; exec node dist/scripts/bench/distcc_bench.js "$@" ;;
  cache) shift; exec node dist/scripts/bench/cache_bench.js "$@" ;;
  startup) shift; exec node dist/scripts/bench/startup_bench.js "$@" ;;
  objcache) shift; exec node dist/scripts/bench/objcache_bench.js "$@" ;;
  sandbox) shift; exec node dist/scripts/bench/sandbox_bench.js "$@" ;;
  snapshot) shift; exec node dist/scripts/bench/snapshot_bench.js "$@" ;;
  metrics) shift; node dist/scripts/bench/observer_cost.js; exec node dist/scripts/bench/cache_bench.js --metrics-cost "$@" ;;
esac
node dist/scripts/bench/distcc_bench.js "$@"
quick=()
for a in "$@"; do [ "$a" = --quick ] && quick=(--quick); done
node dist/scripts/bench/cache_bench.js "${quick[@]}"
