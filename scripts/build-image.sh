#!/usr/bin/env bash
# `make image`: builds docker/Dockerfile with podman, the way a user builds it with Docker, but
# against a Debian 12 base made here (no registry is reachable from these machines):
#   1. debootstrap --variant=minbase bookworm, trimmed as Debian's -slim images are (no manuals,
#      documentation or translations, and a dpkg rule that keeps packages installed later from
#      adding them), kept as a tarball in the machine-wide cache and imported as
#      localhost/agentline-base:bookworm (about a minute, once per machine);
#   2. podman build --build-arg BASE_IMAGE=localhost/agentline-base:bookworm -f docker/Dockerfile,
#      with the host network so apt reaches Debian's archive. Podman keeps the layers and the
#      compiler cache mount, so a rebuild compiles only what changed.
# Prints the image's name; its size and build time go to stderr.
# AGENTLINE_IMAGE names the image (default localhost/agentline:0.1.0).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib/cache.sh
. "$here/lib/cache.sh"
# shellcheck source=lib/podman.sh
. "$here/lib/podman.sh"
agentline_podman_setup

image=${AGENTLINE_IMAGE:-localhost/agentline:0.1.0}
base=localhost/agentline-base:bookworm
# The base's recipe is this block; a change to it makes a new folder (v2, ...).
base_dir=$agentline_cache/base-bookworm-minbase-v1
started=$(date +%s)

if ! [ -f "$base_dir/rootfs.tar" ]; then
  echo "build-image: debootstrap --variant=minbase bookworm into $base_dir (once per machine)" >&2
  rm -rf "$base_dir"
  mkdir -p "$base_dir"
  debootstrap --variant=minbase bookworm "$base_dir/root" http://deb.debian.org/debian >"$base_dir/debootstrap.log" 2>&1 ||
    { tail -20 "$base_dir/debootstrap.log" >&2; exit 1; }
  r=$base_dir/root
  cat >"$r/etc/dpkg/dpkg.cfg.d/agentline-slim" <<'SLIM'
# As in Debian's -slim images: packages install no manuals, documentation or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
SLIM
  # The archive this machine installs from, as the machine reaches it: its Debian sources (with
  # the updates and security suites) and its apt settings for them (a frozen mirror's Release
  # files are past their Valid-Until date, which the machine's apt is told to accept).
  [ -f /etc/apt/sources.list.d/debian.sources ] &&
    cp /etc/apt/sources.list.d/debian.sources "$r/etc/apt/sources.list.d/" && : >"$r/etc/apt/sources.list"
  apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date) ' >"$r/etc/apt/apt.conf.d/50agentline-archive" || true
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  tar --numeric-owner -C "$r" -cf "$base_dir/rootfs.tar.new" .
  mv "$base_dir/rootfs.tar.new" "$base_dir/rootfs.tar"
  rm -rf "$r"
fi
if ! podman image exists "$base"; then
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$base_dir/rootfs.tar" "$base" >/dev/null
fi

echo "build-image: podman build -f docker/Dockerfile -t $image (BASE_IMAGE=$base)" >&2
log=$(mktemp "${TMPDIR:-/tmp}/agentline-image.XXXXXX")
trap 'rm -f "$log"' EXIT
podman build --network host --build-arg BASE_IMAGE="$base" -f "$root/docker/Dockerfile" -t "$image" "$root" >"$log" 2>&1 ||
  { tail -60 "$log" >&2; echo "build-image: podman build failed" >&2; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "build-image: $image built in $(($(date +%s) - started)) s, $((size / 1000000)) MB" >&2
echo "$image"
