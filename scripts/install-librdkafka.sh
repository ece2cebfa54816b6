#!/usr/bin/env bash
# librdkafka 2.14.2, the Kafka client every Agentline binary links, built once per machine into
# the machine-wide cache (scripts/lib/cache.sh) from Debian's own source package.
#
# Debian 12 ships librdkafka 2.0.2 (January 2023): no SASL/SCRAM against Kafka 4.x brokers
# (confluentinc/librdkafka#4895, fixed in 2.6.1) and no KIP-848 consumer group protocol (GA in
# 2.12.0). Debian's `sid` carries 2.14.2 as a source package; `apt-get source` fetches it by
# name, verified against sid's signed Release file, through a private apt configuration in the
# cache (its own sources list, package lists and caches) that never touches the machine's own
# sources. The upstream tarball is built with upstream's own ./configure (SSL, SASL, zstd, lz4,
# zlib and curl on; Debian's -dev packages, installed by install-deps.sh), with the fixes in
# scripts/patches applied, and installed under $agentline_cache/librdkafka-2.14.2-p1 (see below);
# CMakeLists.txt links its static library from there.
# A run that finds the build complete returns at once. Prints the installation's folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/cache.sh
. "$here/lib/cache.sh"

RDKAFKA_VERSION=2.14.2
DEBIAN_REVISION=1
# The folder is named for the first patch level (p1) and keeps that name: every compile command
# names its include folder, so a new name would miss the whole compiler cache once per build type
# (an hour and more on 2 cores). What it holds is told by the marker instead: the checksum of the
# patches (scripts/patches/librdkafka-$RDKAFKA_VERSION-*.patch) and of this script it was built
# with; a different one (a new patch) rebuilds it in place. CMakeLists.txt names the same folder.
prefix=$agentline_cache/librdkafka-$RDKAFKA_VERSION-p1
marker=$prefix/.complete
recipe=$(cat "$0" "$here"/patches/librdkafka-"$RDKAFKA_VERSION"-*.patch 2>/dev/null | sha256sum | cut -d' ' -f1)

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$recipe" ]; then
  echo "$prefix"
  exit 0
fi

started=$(date +%s)
apt_dir=$agentline_cache/apt-sid-source
work=$(mktemp -d "${TMPDIR:-/tmp}/agentline-librdkafka.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
echo "deb-src http://deb.debian.org/debian sid main" >"$apt_dir/sid.list"
apt_private=(
  -o "Dir::Etc::SourceList=$apt_dir/sid.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root"
)
echo "install-librdkafka: fetching librdkafka $RDKAFKA_VERSION-$DEBIAN_REVISION from Debian sid's sources" >&2
apt-get -q "${apt_private[@]}" update >&2
(cd "$work" && apt-get -q "${apt_private[@]}" source --download-only "librdkafka=$RDKAFKA_VERSION-$DEBIAN_REVISION" >&2)
tarball=$work/librdkafka_$RDKAFKA_VERSION.orig.tar.gz
[ -f "$tarball" ] || { echo "install-librdkafka: apt-get source gave no $tarball" >&2; exit 1; }

mkdir "$work/src"
tar -xzf "$tarball" -C "$work/src" --strip-components=1
for patch_file in "$here"/patches/librdkafka-"$RDKAFKA_VERSION"-*.patch; do
  [ -f "$patch_file" ] || continue
  echo "install-librdkafka: applying $(basename "$patch_file")" >&2
  patch -d "$work/src" -p1 --quiet <"$patch_file" || { echo "install-librdkafka: $patch_file does not apply" >&2; exit 1; }
done
echo "install-librdkafka: building librdkafka $RDKAFKA_VERSION into $prefix (about a minute, once per machine)" >&2
rm -rf "$prefix"
(
  cd "$work/src"
  # Every feature a Kafka deployment may ask of the client is required, not tried: a missing
  # -dev package fails the build here instead of leaving SCRAM or zstd out silently.
  ./configure --prefix="$prefix" --enable-ssl --enable-gssapi --enable-zstd --enable-lz4-ext \
    --enable-zlib --enable-curl --disable-syslog >"$work/configure.log" 2>&1 ||
    { tail -40 "$work/configure.log" >&2; exit 1; }
  make -j"$(nproc)" libs >"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
  make -C src install >"$work/install.log" 2>&1 || { tail -20 "$work/install.log" >&2; exit 1; }
)
# Only the static library is linked; the shared one would share its soname (librdkafka.so.1)
# with Debian's 2.0.2 that kcat uses, and the loader could pick either.
rm -f "$prefix"/lib/librdkafka.so*
grep -q "BUILT_WITH.*SASL_SCRAM" "$work/src/Makefile.config" ||
  { echo "install-librdkafka: the build has no SASL/SCRAM" >&2; exit 1; }
grep '^BUILT_WITH' "$work/src/Makefile.config" >"$prefix/BUILT_WITH"
echo "$recipe" >"$marker"
echo "install-librdkafka: built in $(($(date +%s) - started)) s" >&2
echo "$prefix"
