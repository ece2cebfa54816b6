#!/usr/bin/env bash
# Installs what Agentline needs from Debian's packages, in one of two profiles:
#   install-deps.sh run    what `make run` needs: the build tools and libraries (librdkafka 2.14.2
#                          built from Debian sid's source, scripts/install-librdkafka.sh), and
#                          the tools the demo's services call (kcat, bubblewrap, curl, python3)
#   install-deps.sh test   (the default) everything `make test` and CI need on top: the JDK and
#                          Maven (Apache Kafka), Chromium, Prometheus' promtool, clang and its
#                          runtime (ASan/UBSan tier, libFuzzer), clang-format, Node.js, Helm, and the
#                          real-model tier's llama.cpp server with SmolLM2 (scripts/install-llm.sh),
#                          and podman with runc and debootstrap (the container tier, tests/container)
# Idempotent: packages already present are skipped. Once a profile is complete, a marker keyed
# by this script's hash (in the machine-wide cache, scripts/lib/cache.sh) makes later runs
# return at once; editing this file invalidates it. Runs as root or through sudo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/cache.sh
. "$here/lib/cache.sh"

profile=${1:-test}
run_packages=(
  build-essential cmake ninja-build pkg-config ccache
  nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  prometheus-cpp-dev libcli11-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev libvalijson-dev libsimdjson-dev
  libsasl2-dev libzstd-dev liblz4-dev zlib1g-dev
  kcat bubblewrap curl python3 procps patch
  python3-pyflakes python3-pytest shellcheck
)
test_packages=(
  libbenchmark-dev python3-yaml python3-venv openssl prometheus
  openjdk-17-jdk-headless maven
  chromium
  clang libclang-rt-14-dev clang-format
  podman runc catatonit debootstrap uidmap
)
case "$profile" in
  run) packages=("${run_packages[@]}") ;;
  test) packages=("${run_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: install-deps.sh [run|test]" >&2; exit 2 ;;
esac

HELM_VERSION=v3.16.4
# Helm's offline default Kubernetes version (helm template without a cluster): the one its
# client-go targets, set by ldflags as Helm's own release build does (without them it is 1.20,
# older than the chart's kubeVersion). helm v3.16.4 uses client-go v0.31.3.
HELM_K8S_MINOR=31
helm_dir=$agentline_cache/helm-$HELM_VERSION-k8s1.$HELM_K8S_MINOR
# The marker is keyed by this script, the librdkafka build script and its patches: changing any
# of them runs the checks (and a new librdkafka build) again.
marker=$agentline_cache/deps/$profile-$(cat "$0" "$here/install-librdkafka.sh" "$here"/patches/* | sha256sum | cut -c1-16).ok
if [ -f "$marker" ]; then
  echo "install-deps: $profile profile complete (marker $marker)"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install packages" >&2; exit 1; }
  sudo="sudo"
fi
apt_install() {
  echo "install-deps: installing $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" ||
    { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"; }
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  # A fresh machine's package lists may be stale or empty: update before the first install.
  $sudo apt-get update -q
  apt_install "${missing[@]}"
fi

# librdkafka 2.14.2 from Debian sid's source package, built once per machine (about a minute):
# every binary links it statically (Debian 12's librdkafka-dev is 2.0.2; kcat keeps its own).
bash "$here/install-librdkafka.sh" >/dev/null

if [ "$profile" = test ]; then
  # Node.js and npm drive the browser test (playwright-core with Debian's chromium). The
  # machines have them; Debian's packages are the fallback.
  command -v npm >/dev/null || apt_install nodejs npm

  # Helm, for the chart checks (helm lint / helm template), built from the Go module proxy into
  # the machine-wide cache. Go itself is on the machines (/usr/local/go); golang-go is the fallback.
  if ! [ -x "$helm_dir/helm" ]; then
    if ! command -v go >/dev/null; then
      [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
    fi
    command -v go >/dev/null || apt_install golang-go
    echo "install-deps: building helm $HELM_VERSION with go install (a few minutes, once per machine)"
    mkdir -p "$helm_dir"
    helm_ldflags=""
    for pkg in pkg/lint/rules pkg/chartutil; do
      helm_ldflags="$helm_ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$HELM_K8S_MINOR"
    done
    GOBIN="$helm_dir" go install -ldflags "$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  [ "$(readlink /usr/local/bin/helm 2>/dev/null)" = "$helm_dir/helm" ] || $sudo ln -sfn "$helm_dir/helm" /usr/local/bin/helm

  # The real-model tier's llama.cpp server and SmolLM2 model (~10 min once per machine).
  bash "$here/install-llm.sh" >/dev/null
fi

mkdir -p "$(dirname "$marker")"
touch "$marker"
echo "install-deps: $profile profile complete"
