# Sourced by scripts/container-test.sh (its pass/fail/ct/compile/wait_for/stop_container, $BASE,
# $W, $IN_CG): the Debian package (scripts/deb/build.sh) installed with `apt-get install
# ./distkit_*.deb` into a fresh copy of the bookworm root, which has Debian's distcc. With systemd
# as PID 1: nothing enabled or running after boot, `systemctl start distccd.socket` and
# `service distcc start` compile with the real distcc client; then `apt-get purge distkit` must
# put Debian's distccd, man page, init script and logrotate file back and drop the diversions.
ts "building the Debian package"
if ! deb=$(bash "$here/scripts/deb/build.sh" "$W/deb" 2> "$W/deb-build.log"); then
  cat "$W/deb-build.log"; fail "scripts/deb/build.sh failed"; return 0
fi
R=$W/debroot
cp -a "$BASE" "$R" || die "cannot copy $BASE"
# Fixtures: bookworm's nodejs is 18, so a nodejs package holding this machine's node (20)
# satisfies Depends: nodejs (>= 20); Debian's distcc service off, as in the install checks above.
mkdir -p "$W/nodejs/DEBIAN" "$W/nodejs/usr/bin"; cp -p /usr/bin/node "$W/nodejs/usr/bin/node"
printf 'Package: nodejs\nVersion: %s-0distkit.fixture\nArchitecture: %s\nMaintainer: distkit <dev@distkit.invalid>\nDescription: node for the distkit container test\n this machine'"'"'s node binary\n' \
  "$(node -p process.versions.node)" "$(dpkg --print-architecture)" > "$W/nodejs/DEBIAN/control"
dpkg-deb --root-owner-group --build "$W/nodejs" "$R/tmp/nodejs.deb" >/dev/null
cp "$deb" "$R/tmp/"
chroot "$R" update-rc.d distcc disable >/dev/null 2>&1
chroot "$R" dpkg -i /tmp/nodejs.deb >/dev/null
if chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/${deb##*/}" > "$W/deb-install.log" 2>&1; then
  pass "apt-get install ./${deb##*/} into a bookworm root with Debian's distcc ($(du -k "$deb" | cut -f1) KiB)"
else cat "$W/deb-install.log"; fail "apt-get install ./${deb##*/}"; return 0; fi
if [ "$(chroot "$R" readlink -f /usr/bin/distccd)" = /usr/sbin/distccd ] && cmp -s "$BASE/usr/bin/distccd" "$R/usr/lib/distkit/displaced/usr/bin/distccd" \
   && cmp -s "$BASE/etc/init.d/distcc" "$R/usr/lib/distkit/displaced/etc/init.d/distcc" && grep -q distkit "$R/etc/init.d/distcc" \
   && [ "$(chroot "$R" dpkg-divert --list | grep -c 'by distkit$')" = 4 ]; then
  pass "the package diverts Debian's distccd, distccd.1.gz, /etc/init.d/distcc and /etc/logrotate.d/distcc, unchanged, ours in their place"
else fail "the package's diversions:"; chroot "$R" dpkg-divert --list | sed 's/^/    | /'; fi

ts "booting the package's root (systemd as PID 1)"
bash -c "$IN_CG" in_cg systemd-nspawn -D "$R" --register=no --keep-unit --private-network --volatile=overlay -b --console=read-only > "$W/deb-console.log" 2>&1 < /dev/null &
NSPAWN=$!
for _ in $(seq 1 300); do
  for c in $(pgrep -P $NSPAWN); do [ "$(cat /proc/$c/comm 2>/dev/null)" = systemd ] && L=$c; done
  [ -n "$L" ] && break; sleep 0.05
done
[ -n "$L" ] || { cat "$W/deb-console.log"; fail "systemd did not start in the package's root"; return 0; }
for _ in $(seq 1 200); do ct test -S /run/systemd/private && break; sleep 0.05; done
ts "container state: $(ct systemctl is-system-running --wait)"
enabled=$(ct systemctl is-enabled distccd.socket distccd-accept.socket dc_server.socket dc_client.socket 2>&1 | sort -u | tr '\n' ' ')
if [ "$enabled" = "disabled " ] && ! ct pgrep -f 'distkit/dist' >/dev/null; then pass "after boot no distkit unit is enabled and no distkit daemon runs"
else fail "the package enabled or started something (is-enabled: $enabled)"; ct ps -eo pid,args | grep '[d]istkit'; fi
ct systemctl start distccd.socket
if compile 3632; then pass "package: systemctl start distccd.socket, then a real distcc gcc -c through it"
else fail "package: distcc gcc -c through distccd.socket"; unit_dump distccd.socket distccd.service; fi
ct systemctl stop distccd.socket distccd.service
ct sed -i 's/^STARTDISTCC=.*/STARTDISTCC="true"/' /etc/default/distcc   # Debian's own file
if ct service distcc start && compile 3632 && ct service distcc stop && ! ct service distcc status >/dev/null; then
  pass "package: service distcc start|stop with Debian's /etc/default/distcc, compiling in between"
else fail "package: service distcc"; unit_dump distcc.service; ct tail -n 20 /var/log/distccd.log; fi
ts "stopping the package's container"
stop_container

# The overlay forgot the boot's changes: purge acts on the root as apt-get install left it.
if chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q distkit > "$W/deb-purge.log" 2>&1 \
   && cmp -s "$BASE/usr/bin/distccd" "$R/usr/bin/distccd" && cmp -s "$BASE/usr/share/man/man1/distccd.1.gz" "$R/usr/share/man/man1/distccd.1.gz" \
   && cmp -s "$BASE/etc/init.d/distcc" "$R/etc/init.d/distcc" && cmp -s "$BASE/etc/logrotate.d/distcc" "$R/etc/logrotate.d/distcc" \
   && cmp -s "$BASE/etc/default/distcc" "$R/etc/default/distcc" && [ -z "$(chroot "$R" dpkg-divert --list '*distcc*')" ] \
   && ! [ -e "$R/usr/lib/distkit" ] && ! ls "$R"/etc/rc?.d | grep -qE 'dc_server|dc_client'; then
  pass "apt-get purge distkit puts Debian's distccd, man page, init script, logrotate file and /etc/default/distcc back, no diversion left"
else fail "apt-get purge distkit did not restore Debian's distcc:"; cat "$W/deb-purge.log"; chroot "$R" dpkg-divert --list | sed 's/^/    | /'; ls -l "$R/usr/bin/distccd"; fi
