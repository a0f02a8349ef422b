#!/usr/bin/env bash
# Installs the Debian packages listed in a package list (default scripts/system-packages.txt, the
# test set; `npm start` and npm's preinstall, so a bare `npm ci` too, pass
# scripts/build-packages.txt) that are missing. As root it runs apt-get (without letting package
# scripts start services on this machine); otherwise it names what is missing in one line and
# exits 1, so `npm test` never half-runs and `npm ci` says why before an addon fails to build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list=${1:-$here/system-packages.txt}
# Without dpkg (not Debian) nothing can be checked here: the build says what it misses.
command -v dpkg-query >/dev/null || exit 0
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list")
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "distkit: missing system packages, install them first: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "distkit: installing system packages: ${missing[*]}" >&2
# A policy-rc.d that says 101 keeps inetd, rsyslog and distcc from starting as system services.
policy=/usr/sbin/policy-rc.d; made_policy=0
if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod 755 $policy; made_policy=1; fi
trap '[ $made_policy = 1 ] && rm -f $policy' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
