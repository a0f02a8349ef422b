#!/usr/bin/env bash
# distkit's service-integration proof: installs OUR build into a Debian bookworm root with
# `DESTDIR=root scripts/install`, boots systemd as PID 1 in it (systemd-nspawn, no VM) and drives
# the daemons the way Debian users do: `systemctl start distccd.socket` with the real distcc
# client, sd_notify status and watchdog, a drained stop, the Accept=yes units, dc_server and
# dc_client sockets (sessions kept across `systemctl restart dc_server` and `service dc_server
# restart`), inetd.conf entries under openbsd-inetd, `service distcc start|status|stop`
# with and without systemd, the dpkg diversions of Debian's distcc files and the boot links that
# distkit-postinst makes; then `scripts/uninstall` must leave the root exactly as it was (run
# inside the root without systemd, and on the staged root from outside). Then the same root with
# the Debian package instead (scripts/container/deb_package.sh): apt-get install, the socket unit
# and `service distcc`, and apt-get purge bringing Debian's distccd back.
#
#   scripts/container-test.sh            needs root; prints PASS/FAIL per check and the time taken
#   KEEP=1 scripts/container-test.sh     keep the work directory (rootfs copy, console log)
#
# Safety: systemd runs only inside the container, started from a cgroup of its own (removed at
# the end); the container has a private network (loopback only); it is killed by PID on any exit.
# The bookworm base root is cached in /var/cache/distkit, keyed by scripts/container-packages.txt
# and never modified: each run installs into a fresh copy, so a cached root cannot hide a failure.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
T0=$(date +%s.%N)
ts() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
die() { ts "FAIL $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "container-test needs root (mmdebstrap, systemd-nspawn, nsenter)"
for tool in mmdebstrap systemd-nspawn nsenter bc; do command -v $tool >/dev/null || die "$tool is missing: run scripts/system-deps.sh"; done

passed=0 failed=0 failures=()
pass() { passed=$((passed + 1)); ts "PASS $*"; }
fail() { failed=$((failed + 1)); failures+=("$*"); ts "FAIL $*"; }

# --- the programs under test ------------------------------------------------------------------
have() { [ -f "$here/dist/src/cli/$1.js" ]; }
for p in distccd dc_server dc_client; do
  have $p || fail "$p: dist/src/cli/$p.js is missing (not merged into this branch or not built: npm run build); its service checks cannot run"
done

# --- base root (cached) and the working copy --------------------------------------------------
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/scripts/container-packages.txt" | sort -u)
recipe="bookworm minbase ${pkgs[*]}"
key=$(printf '%s\n' "$recipe" | sha256sum | cut -c1-16)
CACHE=${DISTKIT_ROOTFS_CACHE:-/var/cache/distkit}
BASE=$CACHE/rootfs-bookworm-$key
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"; flock 9
# A base older than a week is rebuilt, so security updates reach the test eventually.
if [ ! -f "$BASE.complete" ] || [ -n "$(find "$BASE.complete" -mtime +7)" ]; then
  ts "mmdebstrap bookworm ($(IFS=,; echo "${pkgs[*]}")) -> $BASE"
  rm -rf "$BASE.tmp" "$BASE" "$BASE.complete"
  mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${pkgs[*]}")" bookworm "$BASE.tmp" \
    || die "mmdebstrap failed (network to deb.debian.org?)"
  mv "$BASE.tmp" "$BASE" && echo "$recipe" > "$BASE.complete"
fi
flock -u 9

W=$(mktemp -d /var/tmp/distkit-ct.XXXXXX); R=$W/rootfs
CG=distkit-ct-$$
NSPAWN="" L=""
stop_container() { # nspawn powers the container off on SIGTERM; if that hangs, kill both by pid
  if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
    kill -TERM "$NSPAWN" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NSPAWN" 2>/dev/null; wait "$NSPAWN" 2>/dev/null
  fi
  # A killed nspawn can leave the container's PID 1 behind: SIGKILL to it ends the whole container.
  # (only while that pid is still in this run's cgroup: never a reused pid)
  if [ -n "$L" ] && grep -qs "/$CG/" "/proc/$L/cgroup"; then kill -KILL "$L" 2>/dev/null; sleep 0.5; fi
  NSPAWN="" L=""
}
cleanup() {
  stop_container
  for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [ -d $h/$CG ] && find $h/$CG -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if [ "${KEEP:-0}" = 1 ]; then ts "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ts "copying the base root to $R"
cp -a "$BASE" "$R" || die "cannot copy $BASE"

# Test fixtures, before the "before" snapshot: Node (not in bookworm at our version), Debian's
# own distcc service off (else it sits 'active (exited)' and `service distcc start` does
# nothing), and a slow compiler with a masquerade entry, to catch a stop that kills a job.
# (-p: the same binary with the same mtime, so the distccd launcher may use the startup snapshot)
cp -p /usr/bin/node "$R/usr/bin/node"
echo distkit-ct > "$R/etc/hostname"
chroot "$R" update-rc.d distcc disable >/dev/null 2>&1
# (only when compiling: the client's local preprocessing, slowcc -E, must not be the slow part)
printf '#!/bin/sh\n# distkit container test: a compiler that takes its time.\ncase " $* " in *" -E "*) ;; *) sleep 4.321 ;; esac\nexec gcc "$@"\n' > "$R/usr/local/bin/slowcc"
chmod 755 "$R/usr/local/bin/slowcc"
ln -s ../../bin/distcc "$R/usr/lib/distcc/slowcc"
cp "$here/scripts/container/dc_roundtrip.js" "$R/root/dc_roundtrip.js"

# Paths, types, modes, sizes and link targets of the whole root, plus the content of /etc and /usr,
# and dpkg's diversions. (Not dpkg's diversions-old: dpkg's backup of the list before its last change.)
snapshot() {
  (cd "$R" && find . -xdev -path ./var/lib/dpkg/diversions-old -prune -o \( -type d -printf '%y %m %p\n' \) -o \( -type l -printf '%y %p -> %l\n' \) -o -printf '%y %m %s %p\n' | sort
   cd "$R" && find ./etc ./usr/local ./usr/lib/distcc ./lib/systemd -xdev -type f -print0 | sort -z | xargs -0 sha256sum
   chroot "$R" dpkg-divert --list | sort | sed 's/^/diversion: /')
}
snapshot > "$W/before"

ts "DESTDIR=$R scripts/install"
if DESTDIR=$R "$here/scripts/install" --prefix /usr/local --node /usr/bin/node > "$W/install.log" 2>&1; then
  pass "install into the container root ($(grep -c . "$R/usr/local/lib/distkit/MANIFEST") manifest entries)"
else
  cat "$W/install.log"; die "scripts/install failed"
fi
# Debian's distcc files are diverted (dpkg knows: its upgrades write there), intact, and ours in place.
diverted=$(chroot "$R" dpkg-divert --list '/etc/*distcc' | sort)
expected="local diversion of /etc/init.d/distcc to /usr/local/lib/distkit/displaced/etc/init.d/distcc
local diversion of /etc/logrotate.d/distcc to /usr/local/lib/distkit/displaced/etc/logrotate.d/distcc"
if [ "$diverted" = "$expected" ] && cmp -s "$BASE/etc/init.d/distcc" "$R/usr/local/lib/distkit/displaced/etc/init.d/distcc" \
   && cmp -s "$BASE/etc/logrotate.d/distcc" "$R/usr/local/lib/distkit/displaced/etc/logrotate.d/distcc" \
   && grep -q distkit "$R/etc/init.d/distcc" && grep -q distkit "$R/etc/logrotate.d/distcc"; then
  pass "dpkg-divert --list shows Debian's /etc/init.d/distcc and /etc/logrotate.d/distcc diverted, unchanged, ours in their place"
else fail "Debian's distcc files are not diverted:"; echo "$diverted" | sed 's/^/    | /'; fi

# --- boot systemd as PID 1 --------------------------------------------------------------------
# nspawn runs from cgroup $CG (created under each mounted hierarchy, this shell moved there
# first): --keep-unit makes its payload/supervisor cgroups there instead of touching the host's.
IN_CG='for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
          [ -e $h/cgroup.procs ] || continue; [ $h = /sys/fs/cgroup ] && [ -d /sys/fs/cgroup/unified ] && continue
          mkdir -p $h/'$CG' && echo $$ > $h/'$CG'/cgroup.procs; done; exec "$@"'
in_cg() { bash -c "$IN_CG" in_cg "$@"; }
NSPAWN_OPTS=(-D "$R" --register=no --keep-unit --private-network --volatile=overlay)

ts "booting the container (systemd as PID 1)"
# (bash -c directly, not the in_cg function: $! must be nspawn itself, whose child is systemd)
bash -c "$IN_CG" in_cg systemd-nspawn "${NSPAWN_OPTS[@]}" -b --console=read-only > "$W/console.log" 2>&1 < /dev/null &
NSPAWN=$!
for _ in $(seq 1 300); do
  for c in $(pgrep -P $NSPAWN); do [ "$(cat /proc/$c/comm 2>/dev/null)" = systemd ] && L=$c; done
  [ -n "$L" ] && break; sleep 0.05
done
[ -n "$L" ] || { cat "$W/console.log"; die "systemd did not start in the container"; }
ct() { timeout 120 nsenter -t "$L" -a /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
for _ in $(seq 1 200); do ct test -S /run/systemd/private && break; sleep 0.05; done
ts "container state: $(ct systemctl is-system-running --wait)"

show() { ct systemctl show -p "$2" --value "$1"; }
unit_dump() { ct systemctl status --no-pager -n 25 "$@" 2>&1 | sed 's/^/    | /'; }
compile() { # compile PORT [COMPILER]: the real distcc client, no local fallback, no backoff
  ct sh -c "mkdir -p /tmp/c/dd && cd /tmp/c && printf 'int f$1(void) { return $1; }\n' > t$1.c && rm -f t$1.o &&
    DISTCC_HOSTS=127.0.0.1:$1/4 DISTCC_FALLBACK=0 DISTCC_BACKOFF_PERIOD=0 DISTCC_DIR=/tmp/c/dd \
    timeout 60 distcc ${2:-gcc} -c t$1.c -o t$1.o && test -s t$1.o"
}
wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
  local end=$(( $(date +%s) + $1 )); shift
  while ! "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.2; done
}

# --- mechanics: install seen from inside ------------------------------------------------------
if ct /usr/local/lib/distkit/libexec/distkit-postinst > "$W/postinst.log" 2>&1 && ct getent passwd distccd >/dev/null && ct getent passwd distcache >/dev/null; then
  pass "distkit-postinst creates the system users (distccd kept from Debian's package, distcache new)"
else cat "$W/postinst.log"; fail "distkit-postinst did not create distccd and distcache"; fi
# Boot links as Debian's packages make them (update-rc.d NAME defaults) for our scripts that had
# none; Debian's distcc kept its own (the fixture's disabled K links).
links=$(ct sh -c 'cd /etc && ls -l rc2.d rc0.d | grep -E " [SK][0-9]{2}(distcc|dc_server|dc_client) " | sed "s/.* \([SK][0-9]*[a-z_]*\) -> /\1 -> /" | sort')
if printf '%s\n' "$links" | grep -qx 'S[0-9][0-9]dc_server -> ../init.d/dc_server' && printf '%s\n' "$links" | grep -qx 'S[0-9][0-9]dc_client -> ../init.d/dc_client' \
   && printf '%s\n' "$links" | grep -qx 'K[0-9][0-9]dc_server -> ../init.d/dc_server' && printf '%s\n' "$links" | grep -qx 'K[0-9][0-9]distcc -> ../init.d/distcc' \
   && ! printf '%s\n' "$links" | grep -q '^S[0-9]*distcc' && [ "$(ct cat /usr/local/lib/distkit/bootlinks-created)" = "$(printf 'dc_server\ndc_client')" ]; then
  pass "distkit-postinst gives dc_server and dc_client boot links (rc2.d S, rc0.d K), leaves Debian's disabled distcc links alone"
else fail "boot links after distkit-postinst:"; echo "$links" | sed 's/^/    | /'; cat "$W/postinst.log"; fi
ct systemctl daemon-reload
units=(distccd.socket distccd.service distccd-accept.socket distccd-accept@x.service dc_server.socket dc_server.service dc_client.socket dc_client.service
  distccd-metrics.socket dc_server-metrics.socket dc_client-metrics.socket)
bad=""; for u in "${units[@]}"; do [ "$(show $u LoadState)" = loaded ] || bad="$bad $u"; done
[ -z "$bad" ] && pass "systemd loads every installed unit from /usr/local/lib/systemd/system" || fail "units not loaded:$bad"
if out=$(ct sh -c 'systemd-analyze verify /usr/local/lib/systemd/system/*.socket /usr/local/lib/systemd/system/*.service' 2>&1); then
  pass "systemd-analyze verify inside the container (installed man pages found)"
else fail "systemd-analyze verify inside the container:"; echo "$out" | sed 's/^/    | /'; fi
[ "$(ct sh -c 'readlink -f $(man -w distccd)')" = /usr/local/share/man/man1/distccd.1 ] && [ "$(ct sh -c 'readlink -f $(man -w dc_server)')" = /usr/local/share/man/man1/dc_server.1 ] \
  && pass "man finds the installed pages (ours before Debian's distccd(1): man -w distccd, dc_server)" || fail "man -w distccd / dc_server do not find the installed pages"
[ "$(show distcc.service SourcePath)" = /etc/init.d/distcc ] && ct grep -q distkit /etc/init.d/distcc \
  && pass "systemd-sysv-generator turns our /etc/init.d/distcc into distcc.service" || fail "distcc.service does not come from our init script"

# Shorter watchdog for the test only (runtime drop-in, gone with the container).
ct mkdir -p /run/systemd/system/distccd.service.d
ct sh -c 'printf "[Service]\nWatchdogSec=5s\nLimitCORE=0\n" > /run/systemd/system/distccd.service.d/50-test.conf'
ct systemctl daemon-reload

# --- distccd.socket (Accept=no) ---------------------------------------------------------------
if have distccd; then
  ct systemctl start distccd.socket
  # (NAccepted stays 0 with Accept=no: distccd accepts, so the proof is the compile itself.)
  if compile 3632 && [ -n "$(show distccd.service MainPID | grep -v '^0$')" ]; then pass "systemctl start distccd.socket, then a real distcc gcc -c through it"
  else fail "distcc gcc -c through distccd.socket"; unit_dump distccd.socket distccd.service; fi
  # Issue 21: the unit runs distccd --sandbox=required. A file only the distccd user can read,
  # asked for by .incbin (the assembler reads it on the server), must not come back.
  token="SERVER-ONLY-$$-$RANDOM"
  # Made from inside (ct): the container's users are not the host's.
  echo "$token" | ct sh -c 'cat > /var/lib/distkit-ct-secret && chown distccd /var/lib/distkit-ct-secret && chmod 600 /var/lib/distkit-ct-secret'
  printf '__asm__(".section .rodata\\n.incbin \\"/var/lib/distkit-ct-secret\\"\\n.previous");\nint f(void) { return 1; }\n' | ct sh -c 'mkdir -p /root/sbx/dd && cat > /root/sbx/s.c'
  ct sh -c 'cd /root/sbx && DISTCC_HOSTS=127.0.0.1:3632/4 DISTCC_FALLBACK=0 DISTCC_SKIP_LOCAL_RETRY=1 DISTCC_BACKOFF_PERIOD=0 DISTCC_DIR=/root/sbx/dd timeout 60 distcc gcc -c s.c -o s.o > s.log 2>&1'; rc=$?
  said=$(ct cat /root/sbx/s.log); leaked=$(ct sh -c "grep -qs '$token' /root/sbx/s.o /root/sbx/s.log && echo yes")
  sandbox_line=$(ct journalctl -u distccd.service --no-pager -o cat | grep -m1 'sandbox mode=required')
  # The assembler ran and found no such file (the request did reach the compiler), and no byte came back.
  if [ -n "$sandbox_line" ] && [ $rc != 0 ] && printf '%s' "$said" | grep -q 'distkit-ct-secret' && [ -z "$leaked" ] && compile 3632; then
    pass "distccd.service compiles in the sandbox ($sandbox_line) and a .incbin of a file the distccd user can read gets none of it"
  else fail "distccd.service sandbox (rc=$rc, journal: '${sandbox_line}')"; printf '%s\n' "$said"; ct journalctl -u distccd.service --no-pager -n 20; fi
  # Those jobs ran in the compiler's sandbox host (one bwrap, src/compile/sandbox/sandbox_host.ts)
  # under the unit's hardening, not in a bwrap each: distccd logs why a host serves no job.
  host_problem=$(ct journalctl -u distccd.service --no-pager -o cat | grep -m1 'sandbox host of')
  if [ -z "$host_problem" ] && ct sh -c 'for f in /proc/[0-9]*/cmdline; do [ "$(tr "\0" " " < $f)" = "/sandbox-host " ] && exit 0; done; exit 1'; then
    pass "distccd.service runs its compilers' jobs in a sandbox host under the unit's hardening"
  else fail "distccd.service sandbox host: ${host_problem:-no host process}"; fi
  status=$(show distccd.service StatusText)
  if [ "$(show distccd.service ActiveState)/$(show distccd.service SubState)" = active/running ] && [ -n "$status" ]; then
    pass "distccd.service is active (Type=notify READY) with STATUS=\"$status\""
  else fail "distccd.service not active/running with a STATUS= line (got '$(show distccd.service ActiveState)/$(show distccd.service SubState)', '$status')"; unit_dump distccd.service; fi

  # Journal priorities: distccd's stderr is the journal stream (JOURNAL_STREAM), so a denied
  # peer's line is a warning (<4>) and notices are <5>, with no time or distccd[pid] of our own.
  ct node -e "const s=require('net').connect({host:'127.0.0.1',port:3632,localAddress:'127.0.0.2'});s.on('error',()=>{});s.on('close',()=>process.exit(0));s.resume()"
  journal() { ct journalctl -u distccd.service --no-pager -o cat "$@"; }
  denied_logged() { journal -p warning | grep -q "^connection from client '[^']*127\.0\.0\.2[^']*' denied by access list"; }
  if wait_for 10 denied_logged && journal -p 4..4 | grep -q "denied by access list" && journal -p 5..5 | grep -q '^ready jobs=' && ! journal -p warning | grep -q 'ready jobs='; then
    pass "journalctl -p warning -u distccd shows the denied peer at priority 4 (notices at 5, no prefix of ours)"
  else fail "distccd's warning is not at priority 4 in the journal:"; ct journalctl -u distccd.service --no-pager -o short-monotonic -n 15 | sed 's/^/    | /'; fi
  # distccd-metrics.socket adds the fd named "metrics": Prometheus text on 127.0.0.1:3634. systemd
  # refuses to add a socket to a running service: stop it, and the next compile starts it with both.
  ct systemctl stop distccd.service && ct systemctl start distccd-metrics.socket
  if compile 3632 && ct node -e "require('http').get('http://127.0.0.1:3634/metrics',(r)=>{let b='';r.on('data',(d)=>(b+=d));r.on('end',()=>process.exit(/^distccd_jobs_total\{result=\"ok\"\} [1-9]/m.test(b)?0:1))}).on('error',()=>process.exit(2))"; then
    pass "distccd-metrics.socket: distccd serves /metrics on the fd named metrics (distccd_jobs_total counts the compile)"
  else fail "no distccd metrics on distccd-metrics.socket"; unit_dump distccd-metrics.socket distccd.service; fi

  pid=$(show distccd.service MainPID); n0=$(show distccd.service NRestarts)
  # The launcher chose the startup snapshot (dist/snapshot/distccd.blob) over the plain script.
  cmdline=$( [ "${pid:-0}" -gt 1 ] && ct sh -c "tr '\\0' ' ' < /proc/$pid/cmdline")
  case $cmdline in
    *" --snapshot-blob /usr/local/lib/distkit/dist/snapshot/distccd.blob -- "*) pass "distccd.service starts from the startup snapshot ($cmdline)" ;;
    *) fail "distccd.service did not start from the startup snapshot (cmdline: $cmdline)" ;;
  esac
  sleep 11   # more than twice WatchdogSec=5s: only pings keep it alive
  if [ "$(show distccd.service MainPID)" = "$pid" ] && [ "$(show distccd.service NRestarts)" = "$n0" ]; then
    pass "the watchdog keeps distccd alive while it pings (same pid after 11 s, WatchdogSec=5s)"
  else fail "distccd restarted although it was not stopped (pid $pid -> $(show distccd.service MainPID))"; unit_dump distccd.service; fi
  # Never `kill 0`: without a main pid there is nothing to stop (and it would stop this shell).
  [ "${pid:-0}" -gt 1 ] && ct kill -STOP "$pid"
  restarted() { local p; p=$(show distccd.service MainPID); [ "$p" != "$pid" ] && [ "$p" != 0 ] && [ "$(show distccd.service ActiveState)" = active ] && [ "$(show distccd.service NRestarts)" -gt "$n0" ]; }
  if [ "${pid:-0}" -gt 1 ] && wait_for 30 restarted && compile 3632; then
    pass "a stopped distccd (SIGSTOP) misses the watchdog and is restarted (pid $pid -> $(show distccd.service MainPID)), then compiles"
  else fail "SIGSTOPped distccd was not restarted by the watchdog"; unit_dump distccd.service; [ "${pid:-0}" -gt 1 ] && ct kill -CONT "$pid" 2>/dev/null; fi

  ct sh -c 'mkdir -p /tmp/c/dd && cd /tmp/c && printf "int slow(void) { return 1; }\n" > slow.c && rm -f slow.o &&
    DISTCC_HOSTS=127.0.0.1:3632/4 DISTCC_FALLBACK=0 DISTCC_BACKOFF_PERIOD=0 DISTCC_DIR=/tmp/c/dd timeout 60 distcc slowcc -c slow.c -o slow.o' > "$W/slow.log" 2>&1 &
  slow=$!
  if wait_for 20 ct pgrep -f 'sleep 4.321'; then
    t=$(date +%s.%N); ct systemctl stop distccd.service; took=$(echo "$(date +%s.%N) - $t" | bc)
    wait $slow; rc=$?
    if [ $rc = 0 ] && ct test -s /tmp/c/slow.o && [ "$(show distccd.service ActiveState)" = inactive ]; then
      pass "systemctl stop distccd.service drains the compile in flight (stop took ${took}s, the job's object arrived)"
    else fail "systemctl stop distccd.service lost the compile in flight (client rc=$rc)"; cat "$W/slow.log"; unit_dump distccd.service; fi
  else fail "the slow compile never started on distccd"; cat "$W/slow.log"; wait $slow; fi
  ct systemctl stop distccd.socket

  ct systemctl start distccd-accept.socket
  if compile 3632 && [ "$(show distccd-accept.socket NAccepted)" -ge 1 ]; then pass "distccd-accept.socket (Accept=yes, one distccd per connection) compiles"
  else fail "distcc gcc -c through distccd-accept.socket"; unit_dump distccd-accept.socket 'distccd-accept@*'; fi
  # Issue 21: the sandbox check passed by one connection's process is remembered in
  # RuntimeDirectory= for the next (its own namespaces, alike), which skips it.
  checks() { ct journalctl -u 'distccd-accept@*' --no-pager -o cat | grep -o 'sandbox mode=required bwrap=[^ ]* check=[a-z]*' | sed 's/.*check=//' | sort | uniq -c | tr -s ' \n' ' '; }
  if compile 3632 && compile 3632 && checks | grep -q ' remembered' && ct test -d /run/distccd; then
    pass "distccd-accept@.service remembers the sandbox check in /run/distccd between connections (checks: $(checks))"
  else fail "distccd-accept@.service did not remember the sandbox check (checks: $(checks))"; ct ls -la /run/distccd; fi
  ct systemctl stop distccd-accept.socket
fi

# --- dc_server.socket and dc_client.socket ----------------------------------------------------
if have dc_server; then
  ct systemctl start dc_server.socket
  if ct node /root/dc_roundtrip.js 127.0.0.1:9001 && ct node /root/dc_roundtrip.js /run/distcache/dc_server.sock 127.0.0.1:9001; then
    pass "systemctl start dc_server.socket, then ADD/GET over TCP 9001 and the unix socket (one shared cache)"
  else fail "distcache round trip through dc_server.socket"; unit_dump dc_server.socket dc_server.service; fi
  status=$(show dc_server.service StatusText)
  if [ "$(show dc_server.service ActiveState)/$(show dc_server.service SubState)" = active/running ] && [ -n "$status" ]; then
    pass "dc_server.service is active (Type=notify READY) with STATUS=\"$status\""
  else fail "dc_server.service not active/running with a STATUS= line ('$status')"; unit_dump dc_server.service; fi
  [ "$(ct stat -c '%U:%G %a' /run/distcache/dc_server.sock)" = "distcache:distcache 660" ] \
    && pass "the dc_server unix socket is distcache:distcache 0660" || fail "dc_server.sock ownership is $(ct stat -c '%U:%G %a' /run/distcache/dc_server.sock)"
  # Restart without loss: sessions acknowledged before the stop are all there after the start.
  pid=$(show dc_server.service MainPID)
  if ct node /root/dc_roundtrip.js --store restart 500 127.0.0.1:9001 && ct systemctl restart dc_server.service \
     && [ "$(show dc_server.service MainPID)" != "$pid" ] && ct node /root/dc_roundtrip.js --expect restart 500 /run/distcache/dc_server.sock; then
    pass "systemctl restart dc_server.service keeps the 500 sessions stored before it (pid $pid -> $(show dc_server.service MainPID), snapshot in /run/distcache)"
  else fail "sessions lost across systemctl restart dc_server.service"; unit_dump dc_server.service; ct ls -l /run/distcache; fi
  if ct node /root/dc_roundtrip.js --store stop 100 127.0.0.1:9001 && ct systemctl stop dc_server.service \
     && [ "$(ct stat -c '%U:%G %a' /run/distcache/dc_server.snapshot)" = "distcache:distcache 600" ] && ct test -S /run/distcache/dc_server.sock \
     && ct systemctl start dc_server.service && ct node /root/dc_roundtrip.js --expect stop 100 127.0.0.1:9001 && ! ct test -e /run/distcache/dc_server.snapshot; then
    pass "systemctl stop leaves /run/distcache/dc_server.snapshot distcache:distcache 0600 beside the socket; start loads it (all 100 there) and removes it"
  else fail "dc_server.service snapshot file after stop/start"; unit_dump dc_server.service; ct ls -l /run/distcache; fi
  if have dc_client; then
    ct systemctl start dc_client.socket
    if ct node /root/dc_roundtrip.js /run/distcache/scache 127.0.0.1:9001; then
      pass "systemctl start dc_client.socket: ADD through dc_client, GET straight from dc_server"
    else fail "distcache round trip through dc_client.socket"; unit_dump dc_client.socket dc_client.service; fi
    ct systemctl stop dc_client.socket dc_client.service
  fi
  ct systemctl stop dc_server.socket dc_server.service
fi

# --- inetd.conf entries under the container's openbsd-inetd -----------------------------------
if have distccd; then
  conf=/usr/local/share/distkit/inetd/inetd.conf
  ct sh -c "grep -m1 -E '^distcc[[:space:]].*[[:space:]]nowait[[:space:]]' $conf | sed 's/^distcc/127.0.0.1:3634/' >> /etc/inetd.conf &&
            grep -m1 -E '^#distcc[[:space:]].*[[:space:]]wait[[:space:]]' $conf | sed 's/^#distcc/127.0.0.1:3635/' >> /etc/inetd.conf"
  ct systemctl restart inetd
  if wait_for 10 ct sh -c 'ss -ltn | grep -q 127.0.0.1:3635' && compile 3634; then pass "our inetd.conf nowait line (one distccd per connection) compiles under openbsd-inetd"
  else fail "inetd.conf nowait entry"; ct grep 127.0.0.1 /etc/inetd.conf; unit_dump inetd; fi
  if compile 3635 && compile 3635; then pass "our inetd.conf wait line (distccd gets the listening socket) compiles twice"
  else fail "inetd.conf wait entry"; unit_dump inetd; fi
  ct systemctl stop inetd
  # Debian's inetd.service stops inetd alone (KillMode=process): the "wait" distccd keeps its
  # listening socket until it exits. End it by pid so port 3635 is free again.
  # (the launcher starts it as `node --snapshot-blob BLOB -- ARGS`, or `node .../distccd.js ARGS`)
  for p in $(ct pgrep -f -- '(distccd\.js|--) --allow 127\.0\.0\.1 --compiler-dir'); do ct kill "$p"; done
  wait_for 10 ct sh -c '! ss -ltn | grep -q 127.0.0.1:3635' || fail "the inetd wait distccd still holds 127.0.0.1:3635 after its kill"
fi

# --- `service NAME start|status|stop` through systemd ---------------------------------------
service_cycle() { # service_cycle NAME CHECK...: start, status, CHECK, stop, status must fail
  local name=$1; shift
  ct service "$name" start && ct service "$name" status >/dev/null && "$@" && ct service "$name" stop && ! ct service "$name" status >/dev/null
}
if have distccd; then
  ct sed -i 's/^STARTDISTCC=.*/STARTDISTCC="true"/' /etc/default/distcc   # Debian's own file
  if service_cycle distcc compile 3632 && ! ct pgrep -f -- --pid-file=/var/run/distccd.pid >/dev/null; then
    pass "service distcc start|status|stop under systemd with Debian's /etc/default/distcc"
  else fail "service distcc under systemd"; unit_dump distcc.service; ct tail -n 20 /var/log/distccd.log; ct ps -eo pid,user,args | grep '[d]istccd'; fi
fi
if have distccd; then
  # ZEROCONF="true" (Debian's switch for --zeroconf): the running distccd advertises _distcc._tcp
  # through the container's avahi-daemon, and stops advertising when it dies, even by SIGKILL.
  advertised() { ct avahi-browse -rtp _distcc._tcp 2>/dev/null | grep '^=;lo;IPv4;' | grep -q ';3632;'; }
  not_advertised() { ! advertised; }
  ct sed -i 's/^ZEROCONF=.*/ZEROCONF="true"/' /etc/default/distcc
  if ct service distcc start && wait_for 15 advertised; then
    pid=$(ct cat /var/run/distccd.pid)
    pass "ZEROCONF=\"true\": service distcc start advertises _distcc._tcp on port 3632 through avahi ($(ct avahi-browse -rtp _distcc._tcp | grep -m1 '^=' | cut -d';' -f4))"
    [ "${pid:-0}" -gt 1 ] && ct kill -KILL "$pid"
    if [ "${pid:-0}" -gt 1 ] && wait_for 15 not_advertised && ! ct pgrep -x avahi-publish >/dev/null; then
      pass "a SIGKILLed distccd is no longer advertised and leaves no avahi-publish behind"
    else fail "a SIGKILLed distccd is still advertised or left its publisher"; ct ps -eo pid,user,args | grep '[a]vahi'; fi
  else fail "ZEROCONF=\"true\": distccd is not advertised"; unit_dump distcc.service avahi-daemon.service; ct tail -n 20 /var/log/distccd.log; fi
  ct service distcc stop >/dev/null 2>&1; ct systemctl reset-failed distcc.service >/dev/null 2>&1
  ct sed -i 's/^ZEROCONF=.*/ZEROCONF="false"/' /etc/default/distcc
fi
if have dc_server; then
  ct sed -i 's/^STARTDC_SERVER=.*/STARTDC_SERVER="true"/' /etc/default/dc_server
  restart_keeps() { ct node /root/dc_roundtrip.js --store service 300 127.0.0.1:9001 && ct service dc_server restart && ct node /root/dc_roundtrip.js --expect service 300 127.0.0.1:9001; }
  if service_cycle dc_server restart_keeps; then pass "service dc_server start|status|restart|stop under systemd, the 300 sessions stored before the restart all there after it"
  else fail "service dc_server under systemd"; unit_dump dc_server.service; fi
  if have dc_client; then
    # dc_client forwards to a running dc_server; its socket is for group distcache, as the unit's.
    client_checks() { ct node /root/dc_roundtrip.js /run/distcache/scache 127.0.0.1:9001 && [ "$(ct stat -c '%U:%G %a' /run/distcache/scache)" = "distcache:distcache 660" ]; }
    ct sed -i 's/^STARTDC_CLIENT=.*/STARTDC_CLIENT="true"/' /etc/default/dc_client
    if ct service dc_server start && service_cycle dc_client client_checks; then pass "service dc_client start|status|stop under systemd (ADD through /run/distcache/scache, GET from dc_server)"
    else fail "service dc_client under systemd"; unit_dump dc_client.service; ct ls -l /run/distcache; fi
    ct service dc_server stop >/dev/null 2>&1; ct systemctl stop dc_client.socket dc_client.service >/dev/null 2>&1
  fi
fi

ts "stopping the container"
stop_container

# --- SysV: no systemd at all (nspawn without -b: PID 1 is a shell) ---------------------------
if have distccd || have dc_server; then
  inner='set -u; ok() { echo "RESULT ok $*"; }; ko() { echo "RESULT fail $*"; }
    /usr/local/lib/distkit/libexec/distkit-postinst >/dev/null
    compile() { mkdir -p /tmp/dd && cd /tmp && printf "int g(void) { return 2; }\n" > s.c && rm -f s.o &&
      DISTCC_HOSTS=127.0.0.1:3632/4 DISTCC_FALLBACK=0 DISTCC_BACKOFF_PERIOD=0 DISTCC_DIR=/tmp/dd timeout 60 distcc gcc -c s.c -o s.o && test -s s.o; }
    if [ -f /usr/local/lib/distkit/dist/src/cli/distccd.js ]; then
      sed -i "s/^STARTDISTCC=.*/STARTDISTCC=\"true\"/" /etc/default/distcc
      if service distcc start && service distcc status && compile && service distcc restart && compile && service distcc stop && ! service distcc status; then
        ok "service distcc start|status|restart|stop without systemd (/etc/init.d/distcc, start-stop-daemon)"
      else ko "service distcc without systemd"; tail -n 20 /var/log/distccd.log; fi
    fi
    if [ -f /usr/local/lib/distkit/dist/src/cli/dc_server.js ]; then
      # At boot (rc 2) the links run the scripts: nothing starts while /etc/default says false.
      if /etc/rc2.d/S[0-9][0-9]dc_server start && /etc/rc2.d/S[0-9][0-9]dc_client start && ! service dc_server status >/dev/null &&
         ! service dc_client status >/dev/null && ! ss -ltn | grep -q ":9001 " && ! [ -e /run/distcache/scache ]; then
        ok "boot links /etc/rc2.d/S..dc_server and S..dc_client exit 0 and start nothing while /etc/default/dc_server and dc_client say false"
      else ko "boot links start dc_server or dc_client although /etc/default says false"; ss -ltnx; fi
      sed -i "s/^STARTDC_SERVER=.*/STARTDC_SERVER=\"true\"/" /etc/default/dc_server
      if /etc/rc2.d/S[0-9][0-9]dc_server start && service dc_server status && node /root/dc_roundtrip.js 127.0.0.1:9001 && /etc/rc0.d/K[0-9][0-9]dc_server stop && ! service dc_server status; then
        ok "with STARTDC_SERVER=\"true\" the rc2.d link starts dc_server and the rc0.d link stops it"
      else ko "boot links of dc_server with STARTDC_SERVER=true"; fi
      if service dc_server start && service dc_server status && node /root/dc_roundtrip.js 127.0.0.1:9001 &&
         node /root/dc_roundtrip.js --store sysv 300 127.0.0.1:9001 && service dc_server restart && node /root/dc_roundtrip.js --expect sysv 300 127.0.0.1:9001 &&
         service dc_server stop && ! service dc_server status && [ "$(stat -c "%U:%G %a" /run/distcache/dc_server.snapshot)" = "distcache:distcache 600" ]; then
        ok "service dc_server start|status|restart|stop without systemd: the 300 sessions stored before the restart all there after it, snapshot distcache:distcache 0600"
      else ko "service dc_server without systemd"; ls -l /run/distcache; fi
      if [ -f /usr/local/lib/distkit/dist/src/cli/dc_client.js ]; then
        sed -i "s/^STARTDC_CLIENT=.*/STARTDC_CLIENT=\"true\"/" /etc/default/dc_client
        if service dc_server start && service dc_client start && service dc_client status && node /root/dc_roundtrip.js /run/distcache/scache 127.0.0.1:9001 &&
           service dc_client stop && ! service dc_client status && service dc_server stop; then
          ok "service dc_client start|status|stop without systemd (through dc_server)"
        else ko "service dc_client without systemd"; ls -l /run/distcache; fi
      fi
    fi
    # scripts/uninstall on the running system (the overlay forgets it): what distkit-postinst made
    # goes too, and Debian'"'"'s files come back through dpkg-divert --remove.
    if bash /mnt/distkit-scripts/uninstall --prefix /usr/local > /tmp/uninstall.log 2>&1 &&
       ! ls /etc/rc?.d | grep -qE "dc_server|dc_client" && [ -z "$(dpkg-divert --list "*distcc*")" ] &&
       ! grep -q distkit /etc/init.d/distcc /etc/logrotate.d/distcc && grep -q "Debian" /etc/init.d/distcc &&
       ! getent passwd distcache >/dev/null && getent passwd distccd >/dev/null && ! [ -e /usr/local/lib/distkit ] &&
       ls /etc/rc2.d | grep -q "^K[0-9][0-9]distcc$"; then
      ok "uninstall inside the root removes the boot links and distcache, and dpkg-divert --remove puts Debian'"'"'s distcc files back"
    else ko "uninstall inside the root"; cat /tmp/uninstall.log; ls /etc/rc2.d; dpkg-divert --list; fi'
  ts "booting without systemd (PID 1 = sh) for the SysV path"
  in_cg timeout 180 systemd-nspawn "${NSPAWN_OPTS[@]}" --bind-ro="$here/scripts:/mnt/distkit-scripts" --pipe -E HOME=/root -E PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/sh -c "$inner" > "$W/sysv.log" 2>&1 < /dev/null
  grep -q '^RESULT' "$W/sysv.log" || { fail "the no-systemd container ran no check"; cat "$W/sysv.log"; }
  while read -r _ verdict what; do
    if [ "$verdict" = ok ]; then pass "$what"; else fail "$what"; grep -v '^RESULT' "$W/sysv.log" | tail -n 30 | sed 's/^/    | /'; fi
  done < <(grep '^RESULT' "$W/sysv.log")
fi

# --- uninstall leaves the root as it was ------------------------------------------------------
ts "DESTDIR=$R scripts/uninstall"
if DESTDIR=$R "$here/scripts/uninstall" --prefix /usr/local > "$W/uninstall.log" 2>&1; then
  snapshot > "$W/after"
  if diff -u "$W/before" "$W/after" > "$W/uninstall.diff"; then
    pass "uninstall leaves every path, mode and /etc, /usr/local, /usr/lib/distcc content and the diversions as before the install (Debian's distcc files restored)"
  else fail "uninstall left differences:"; head -n 40 "$W/uninstall.diff" | sed 's/^/    | /'; fi
else cat "$W/uninstall.log"; fail "scripts/uninstall failed"; fi

# --- the Debian package (scripts/deb/build.sh) -------------------------------------------------
source "$here/scripts/container/deb_package.sh"

ts "container test: $passed passed, $failed failed, took $(echo "$(date +%s.%N) - $T0" | bc | cut -d. -f1)s"
for f in "${failures[@]}"; do echo "  failed: $f"; done
[ $failed = 0 ]
