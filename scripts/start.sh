#!/usr/bin/env bash
# `npm start`: installs and builds what is missing, then runs distccd and dc_server in the
# foreground on loopback and says how to point a client at them. Ctrl-C (or SIGTERM) stops both
# gracefully; package.json runs it with `exec` so that the signal npm forwards to its script shell
# reaches this script (sh would die of it and leave the script and both daemons running).
# Ports: DISTCCD_PORT (3632) and DC_SERVER_PORT (9001, see inetd/services); 0 picks a free port,
# named in each daemon's "listening on=" line. DISTCCD_CACHE_DIR: distccd's object cache
# (default its own, /var/cache/distccd). DISTKIT_START_SKIP_BUILD=1 runs the
# dist/ already built (the tests do: a rebuild would remove dist/ under the tests running).
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir=${npm_config_nodedir:-/usr}
if [ "${DISTKIT_START_SKIP_BUILD:-}" != 1 ]; then
  bash scripts/system-deps.sh scripts/build-packages.txt
  bash scripts/node-deps.sh
  if [ ! -f dist/.built ] || [ -n "$(find src scripts test package-lock.json tsconfig.json -newer dist/.built -print -quit)" ]; then
    npm run --silent build && touch dist/.built
  fi
fi

distcc_port=${DISTCCD_PORT:-3632}
cache_port=${DC_SERVER_PORT:-9001}
state=$(mktemp -d "${TMPDIR:-/tmp}/distkit-start.XXXXXX")
# Started by root, distccd runs as distcc, distccd or nobody: that user must read the masquerade
# directory made below (the links in it are all there is).
chmod 755 "$state"

# distccd runs only compilers named in a masquerade directory (CVE-2004-2687). Debian's distcc
# package fills /usr/lib/distcc; where it lists no compiler, make a private one of those found here.
masq=/usr/lib/distcc
if [ ! -e "$masq/gcc" ] && [ ! -e "$masq/cc" ]; then
  masq=$state/masquerade; mkdir -p "$masq"
  triplet=$(gcc -dumpmachine 2>/dev/null || true)
  for c in cc gcc g++ c++ clang clang++; do
    real=$(command -v "$c" || true); [ -n "$real" ] || continue
    ln -s "$real" "$masq/$c"
    [ -n "$triplet" ] && ln -sf "$real" "$masq/$triplet-$c"
  done
fi

pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap stop INT TERM
trap 'stop; rm -rf "$state"' EXIT

# Each daemon's stderr also goes to a file, so the banner can wait for its "listening on=" line:
# printed earlier, it named ports nothing listened on yet (and port 0 as given). The tees ignore
# Ctrl-C's SIGINT, which the terminal sends to all of us, so the daemons' last lines (draining,
# stopped) still reach the terminal; each ends when its daemon's stderr closes, and is waited for
# by pid at the end (a bare `wait` waits for the last process substitution only).
exec 3> >(trap '' INT TERM; exec tee "$state/distccd.log" >&2)
tees=($!)
exec 4> >(trap '' INT TERM; exec tee "$state/dc_server.log" >&2)
tees+=($!)
node dist/src/cli/distccd.js --daemon --no-detach --log-stderr --listen 127.0.0.1 --port "$distcc_port" \
  --allow 127.0.0.1 --compiler-dir "$masq" ${DISTCCD_CACHE_DIR:+--cache-dir "$DISTCCD_CACHE_DIR"} 2>&3 3>&- 4>&- &
pids+=($!)
node dist/src/cli/dc_server.js -listen "IP:127.0.0.1:$cache_port" 2>&4 3>&- 4>&- &
pids+=($!)
exec 3>&- 4>&-

# The port a daemon bound, once its log says it listens; fails if it exits first.
bound_port() {
  local log=$1 pid=$2 line
  until line=$(grep -m1 'listening on=' "$log" 2>/dev/null); do
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  line=${line#*listening on=}; line=${line%% *}; line=${line%%,*}
  echo "${line##*:}"
}

if distcc_port=$(bound_port "$state/distccd.log" "${pids[0]}") && cache_port=$(bound_port "$state/dc_server.log" "${pids[1]}"); then
  cat <<TEXT

distkit is running in the foreground (Ctrl-C stops both daemons):
  distccd    127.0.0.1:$distcc_port  (compilers allowed: $masq)
             DISTCC_HOSTS='127.0.0.1:$distcc_port/4,lzo' distcc gcc -c hello.c
  dc_server  127.0.0.1:$cache_port  (session cache, 512 sessions)
             Apache: SSLSessionCache dc:IP:127.0.0.1:$cache_port
             per-host proxy: node dist/src/cli/dc_client.js -listen UNIX:/tmp/scache -server IP:127.0.0.1:$cache_port

TEXT
fi
# When either daemon ends (a bind failure, say), stop the other; then report the daemons' own
# statuses (a `wait` cut short by our trapped signal returns >128 and is simply repeated).
wait -n "${pids[@]}" || true
stop
status=0
for p in "${pids[@]}"; do
  rc=0; wait "$p" || rc=$?
  while [ $rc -gt 128 ] && kill -0 "$p" 2>/dev/null; do rc=0; wait "$p" || rc=$?; done
  [ $rc = 0 ] || status=$rc
done
for t in "${tees[@]}"; do wait "$t" || true; done # done once the daemons' stderr closed
exit $status
