# shellcheck shell=bash
# Sourced by the scripts that build or run Agentline's image with podman (scripts/build-image.sh,
# tests/container). Needs scripts/lib/cache.sh first.
# Podman as these machines run it (docs/operations.md, "Containers without Docker"): Debian's
# podman 4.3 with the runc runtime (crun fails on the host's hybrid cgroups) and no default
# rlimits (setting them inside a container is refused here), through a containers.conf of its
# own in the machine-wide cache, named by CONTAINERS_CONF; the machine's own configuration is
# never changed.
agentline_podman_setup() {
  local missing=() p sudo=""
  for p in podman runc catatonit debootstrap uidmap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "podman: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
      { $sudo apt-get update -q >&2 &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } ||
      { echo "podman: cannot install ${missing[*]}" >&2; return 1; }
  fi
  local dir=$agentline_cache/podman
  mkdir -p "$dir"
  cat >"$dir/containers.conf.new" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  mv "$dir/containers.conf.new" "$dir/containers.conf"
  export CONTAINERS_CONF=$dir/containers.conf
}
