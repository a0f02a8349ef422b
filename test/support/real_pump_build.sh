#!/usr/bin/env bash
# Builds the working pump client (../shared/reference/distcc/build.sh: upstream distcc after 3.4)
# into PREFIX once. Test files run in parallel, so callers queue on PREFIX.lock, and PREFIX/.complete
# marks a build that passed the reference script's own checks: a later call returns at once.
#   usage: bash real_pump_build.sh REFERENCE_DIR PREFIX     prints PREFIX/bin/pump last
set -euo pipefail
REF=${1:?usage: real_pump_build.sh REFERENCE_DIR PREFIX}
PREFIX=${2:?usage: real_pump_build.sh REFERENCE_DIR PREFIX}
mkdir -p "$(dirname "$PREFIX")"
exec 9>"$PREFIX.lock"
flock 9
if [ -f "$PREFIX/.complete" ]; then echo "$PREFIX/bin/pump"; exit 0; fi
rm -rf "$PREFIX"
# fd 9 closed for the build: the include server its self-check starts must not hold the lock.
bash "$REF/build.sh" "$PREFIX" 9>&-
touch "$PREFIX/.complete"
echo "$PREFIX/bin/pump"
