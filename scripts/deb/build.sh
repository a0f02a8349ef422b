#!/usr/bin/env bash
# Builds distkit_VERSION_ARCH.deb from the built tree (run `npm run build` first; `npm run deb`
# does both). The files are those scripts/install lays out with PREFIX=/usr, staged with DESTDIR,
# so the package and a hand install cannot drift apart. Then, for dpkg:
#  - the files Debian's distcc owns (/usr/bin/distccd, its man page, /etc/init.d/distcc,
#    /etc/logrotate.d/distcc) are diverted by preinst, not shipped over theirs; the two /etc ones
#    and the /etc/default files ship as templates in /usr/share/distkit/etc, which postinst puts
#    in place (an admin's /etc/default wins): Debian's distcc writes /etc/default/distcc from its
#    postinst, so as a dpkg conffile ours would clash with it;
#  - every other /etc file is a conffile; man pages are gzipped; addons are stripped;
#  - Depends: nodejs (>= 20) and what dpkg-shlibdeps finds the native addons link.
#   scripts/deb/build.sh [OUTDIR]     default OUTDIR: dist-deb; prints the .deb's path
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$here/dist-deb}
mkdir -p "$out"; out=$(cd "$out" && pwd)
[ -d "$here/dist/src" ] || { echo "deb: $here/dist/src is missing: build first (npm run build)" >&2; exit 1; }
version=$(node -p 'require(process.argv[1]).version' "$here/package.json")
arch=$(dpkg --print-architecture)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
root=$work/root

DESTDIR=$root PREFIX=/usr "$here/scripts/install" --node /usr/bin/node --masquerade yes \
  > "$work/install.log" 2>&1 || { cat "$work/install.log" >&2; exit 1; }
lib=$root/usr/lib/distkit
# dpkg keeps the file list; the masquerade and the users-created lists are made by postinst.
rm -f "$lib/MANIFEST"; rmdir "$lib/masquerade" 2>/dev/null || true

# Files that belong to Debian's distcc or to the admin: templates that postinst puts in place.
tpl=$root/usr/share/distkit/etc
mkdir -p "$tpl/init.d" "$tpl/logrotate.d" "$tpl/default"
mv "$root/etc/init.d/distcc" "$tpl/init.d/distcc"
mv "$root/etc/logrotate.d/distcc" "$tpl/logrotate.d/distcc"
mv "$root/etc/default/"* "$tpl/default/"; rmdir "$root/etc/default"
# /usr/bin/distccd: Debian's path for it (its init script, users' PATH), diverted by preinst.
ln -s ../sbin/distccd "$root/usr/bin/distccd"

# node-gyp's build trees: only the addons themselves (build/Release/*.node) are loaded, and the
# sandbox host distkit-spawn builds beside its addon (run, not loaded: src/compile/sandbox/sandbox_host.ts).
for b in "$lib"/node_modules/*/build "$lib"/node_modules/@*/*/build; do
  [ -d "$b/Release" ] || continue
  mv "$b/Release" "$work/release"; rm -rf "$b"; mkdir -p "$b/Release"
  mv "$work/release"/*.node "$b/Release/"
  if [ -f "$work/release/distkit-sandbox-host" ]; then
    strip --strip-unneeded --remove-section=.comment "$work/release/distkit-sandbox-host"
    install -m 0755 "$work/release/distkit-sandbox-host" "$b/Release/"
  fi
  rm -rf "$work/release"
done
find "$root/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9n {} +
mapfile -t addons < <(find "$lib/node_modules" -type f -name '*.node')
[ ${#addons[@]} -gt 0 ] || { echo "deb: no native addon in $lib/node_modules (npm ci first)" >&2; exit 1; }
# dlopen needs no execute bit; stripped as Debian ships shared objects.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "${addons[@]}"
chmod 0644 "${addons[@]}"
# The dependencies' development dotfiles (lint, CI, npm pack settings) are no part of a program.
find "$lib/node_modules" -mindepth 2 -maxdepth 2 -name '.*' ! -name .bin -exec rm -rf {} +
# sd-notify's addon calls only libsystemd and node: it needs no libc of its own (lintian's
# library-not-linked-against-libc assumes every shared object does).
mkdir -p "$root/usr/share/lintian/overrides"
install -m 0644 "$here/scripts/deb/lintian-overrides" "$root/usr/share/lintian/overrides/distkit"

doc=$root/usr/share/doc/distkit
mkdir -p "$doc"
{ echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: distkit"; echo
  echo "Files: *"; echo "Copyright: distkit authors"; echo "License: GPL-2+"
  echo " On Debian systems, the complete text of the GNU General Public License version 2"
  echo " can be found in /usr/share/common-licenses/GPL-2."; } > "$doc/copyright"
maintainer="distkit <dev@distkit.invalid>"
{ echo "distkit ($version) unstable; urgency=medium"; echo
  echo "  * Package built from the distkit tree by scripts/deb/build.sh."; echo
  echo " -- $maintainer  $(date -R -d "@$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)")"; } \
  | gzip -9n > "$doc/changelog.gz"

# dpkg-shlibdeps wants a debian/control to read; it only needs the package's name.
mkdir -p "$work/src/debian"; printf 'Source: distkit\n\nPackage: distkit\nArchitecture: any\n' > "$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "${addons[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')

find "$root" -type d -exec chmod 0755 {} +
mkdir -p "$root/DEBIAN"
for s in preinst postinst prerm postrm; do install -m 0755 "$here/scripts/deb/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find etc -type f | sort | sed 's|^|/|') > "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: distkit
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: nodejs (>= 20), passwd, bubblewrap, ${shlibs}
Section: devel
Priority: optional
Description: drop-in distccd and distcache servers on Node.js
 distkit replaces the C daemons distccd (the distcc compile server) and
 dc_server, dc_client and dc_snoop (the distcache SSL session cache) with
 one activation layer: systemd sockets, LSB init scripts, inetd and
 standalone. It diverts Debian's distccd while installed and enables no
 service: the init scripts start only when /etc/default says so.
CONTROL
deb=$out/distkit_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
