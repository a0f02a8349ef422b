#!/usr/bin/env bash
# Builds the real C distcache 1.5.1 (dc_server, dc_client, dc_test) once for the cache bench, from
# ../shared/reference/distcache/build.sh, into a cache dir outside the repo
# (DISTKIT_BENCH_CACHE, default /var/cache/distkit-bench, or ~/.cache/distkit-bench when that is
# not writable). A lock keeps two benches from building into the same prefix at once.
# Prints the prefix (PREFIX/bin/dc_server exists) on stdout; progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${DISTCACHE_BUILD_SH:-$(cd "$repo/.." && pwd)/shared/reference/distcache/build.sh}"
cache="${DISTKIT_BENCH_CACHE:-/var/cache/distkit-bench}"
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then cache="${XDG_CACHE_HOME:-$HOME/.cache}/distkit-bench"; mkdir -p "$cache"; fi
prefix="$cache/distcache-1.5.1"
exec 9>"$cache/build.lock"
flock 9
if [ ! -x "$prefix/bin/dc_server" ] || [ ! -x "$prefix/bin/dc_client" ]; then
  [ -f "$build" ] || { echo "c_distcache.sh: no $build (the C distcache reference): set DISTCACHE_BUILD_SH" >&2; exit 1; }
  echo "c_distcache.sh: building C distcache into $prefix (once)" >&2
  rm -rf "$prefix.tmp"
  bash "$build" "$prefix.tmp" >/dev/null
  rm -rf "$prefix"
  mv "$prefix.tmp" "$prefix"
fi
echo "$prefix"
