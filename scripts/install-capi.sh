#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Install the vAccel C API: libvaccel.so (+ SONAME symlinks), libvaccel.a,
# the headers and a pkg-config file.
#
#   scripts/install-capi.sh [options] [PREFIX]       (PREFIX default: /usr/local)
#
# Options:
#   --from DIR      install the libvaccel_capi.{so,a} already built in DIR
#                   (e.g. target/release) instead of running cargo
#   --link          symlink the libraries instead of copying them (for tests)
#   --libdir DIR    library directory (default: PREFIX/lib)
#   --no-ldconfig   do not run ldconfig after installing
#   -h, --help      this text
#
# DESTDIR is honoured (staged installs): files go under $DESTDIR$PREFIX and
# vaccel.pc still says PREFIX. CARGO_TARGET_DIR is honoured when building.
#
# Afterwards:  cc app.c $(pkg-config --cflags --libs vaccel)
# (set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig for a non-standard PREFIX).

set -euo pipefail

usage() { sed -n '4,20p' "$0" | sed 's/^# \{0,1\}//'; }

prefix=/usr/local
from=""
libdir=""
ldconfig=1
link=0
while [ $# -gt 0 ]; do
	case "$1" in
	--link) link=1; shift ;;
	--from) from=${2:?--from needs a directory}; shift 2 ;;
	--libdir) libdir=${2:?--libdir needs a directory}; shift 2 ;;
	--no-ldconfig) ldconfig=0; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "install-capi.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) prefix=$1; shift ;;
	esac
done
case "$prefix" in
/*) ;;
*) echo "install-capi.sh: PREFIX must be an absolute path, got '$prefix'" >&2; exit 2 ;;
esac
libdir=${libdir:-$prefix/lib}
includedir=$prefix/include

root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml")
if [ -z "$version" ]; then
	echo "install-capi.sh: cannot read the workspace version from $root/Cargo.toml" >&2
	exit 1
fi
major=${version%%.*}

if [ -z "$from" ]; then
	cargo build --release -p vaccel-capi --manifest-path "$root/Cargo.toml"
	from=${CARGO_TARGET_DIR:-$root/target}/release
fi
for f in libvaccel_capi.so libvaccel_capi.a; do
	if [ ! -f "$from/$f" ]; then
		echo "install-capi.sh: $from/$f not found (build with: cargo build --release -p vaccel-capi)" >&2
		exit 1
	fi
done

dest=${DESTDIR:-}
install -d "$dest$libdir/pkgconfig" "$dest$includedir/vaccel"
# put MODE SRC DST: copy, or with --link symlink (tests: debug builds are huge).
put() {
	if [ "$link" = 1 ]; then
		ln -sfn "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")" "$3"
	else
		install -m "$1" "$2" "$3"
	fi
}
put 0755 "$from/libvaccel_capi.so" "$dest$libdir/libvaccel.so.$version"
ln -sfn "libvaccel.so.$version" "$dest$libdir/libvaccel.so.$major"
ln -sfn "libvaccel.so.$major" "$dest$libdir/libvaccel.so"
put 0644 "$from/libvaccel_capi.a" "$dest$libdir/libvaccel.a"
install -m 0644 "$root/include/vaccel.h" "$dest$includedir/vaccel.h"
install -m 0644 "$root"/include/vaccel/*.h "$dest$includedir/vaccel/"

cat >"$dest$libdir/pkgconfig/vaccel.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=$libdir
includedir=$includedir

Name: vaccel
Description: vAccel C API (vaccel-rs): hardware acceleration for serverless functions
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lvaccel
Libs.private: -lpthread -ldl -lm
EOF

if [ "$ldconfig" = 1 ] && [ -z "$dest" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
	ldconfig || true
fi
echo "installed libvaccel $version into $dest$prefix"
