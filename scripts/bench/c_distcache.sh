#!/usr/bin/env bash
# Builds the real C distcache 1.5.1 (dc_server, dc_client, dc_test) once, from
# ../shared/reference/distcache/build.sh, into a cache dir outside the repo, under a name keyed by
# the hash of the source tarball and build.sh (a changed reference is built anew). The cache bench
# uses DISTKIT_BENCH_CACHE (default /var/cache/distkit-bench, or ~/.cache/distkit-bench when that
# is not writable); the system tests (test/support/c_distcache.ts) pass their own cache dir.
# A lock keeps two runs from building into the same prefix at once.
# Prints the prefix (PREFIX/bin/dc_server exists) on stdout; progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${DISTCACHE_BUILD_SH:-$(cd "$repo/.." && pwd)/shared/reference/distcache/build.sh}"
cache="${DISTKIT_BENCH_CACHE:-/var/cache/distkit-bench}"
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then cache="${XDG_CACHE_HOME:-$HOME/.cache}/distkit-bench"; mkdir -p "$cache"; fi
[ -f "$build" ] || { echo "c_distcache.sh: no $build (the C distcache reference): set DISTCACHE_BUILD_SH" >&2; exit 1; }
hash=$(cat "$(dirname "$build")/distcache-1.5.1-src.tar.gz" "$build" | sha256sum | cut -c1-16)
prefix="$cache/distcache-1.5.1-$hash"
exec 9>"$cache/build.lock"
flock 9
if [ ! -x "$prefix/bin/dc_server" ] || [ ! -x "$prefix/bin/dc_client" ] || [ ! -x "$prefix/bin/dc_test" ]; then
  echo "c_distcache.sh: building C distcache into $prefix (once)" >&2
  rm -rf "$prefix.tmp"
  bash "$build" "$prefix.tmp" >/dev/null
  rm -rf "$prefix"
  mv "$prefix.tmp" "$prefix"
fi
echo "$prefix"
