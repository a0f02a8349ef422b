#!/bin/sh
# Renders one installed-file template: replaces the @NAME@ placeholders of systemd units, init
# scripts and launchers with the install's paths. Used by scripts/install and by the unit tests,
# so what is tested is what gets installed.
#   PREFIX=/usr/local NODE=/usr/bin/node COMPILER_DIR=/usr/lib/distcc render.sh SRC DST [MODE]
set -eu
: "${PREFIX:?PREFIX is required}" "${NODE:?NODE is required}" "${COMPILER_DIR:?COMPILER_DIR is required}"
src=$1 dst=$2 mode=${3:-0644}
sed -e "s|@PREFIX@|$PREFIX|g" \
    -e "s|@NODE@|$NODE|g" \
    -e "s|@DIST@|$PREFIX/lib/distkit/dist|g" \
    -e "s|@LIBEXEC@|$PREFIX/lib/distkit/libexec|g" \
    -e "s|@SBINDIR@|$PREFIX/sbin|g" \
    -e "s|@BINDIR@|$PREFIX/bin|g" \
    -e "s|@COMPILER_DIR@|$COMPILER_DIR|g" \
    "$src" > "$dst"
if grep -n '@[A-Z_]*@' "$dst" >&2; then echo "render.sh: unknown placeholder left in $dst" >&2; exit 1; fi
chmod "$mode" "$dst"
