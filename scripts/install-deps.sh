#!/usr/bin/env bash
# Installs every build and test dependency of Agentline from Debian's packages.
# Idempotent: packages already present are skipped. Runs as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  librdkafka-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  prometheus-cpp-dev libcli11-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev
  libvalijson-dev libbenchmark-dev
  kcat bubblewrap curl python3 python3-yaml procps openssl prometheus
  openjdk-17-jdk-headless maven
  chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Node.js and npm drive the browser test (playwright-core with Debian's chromium). The machines
# have them; Debian's packages are the fallback.
if ! command -v npm >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends nodejs npm
fi

# Helm, for the chart checks (helm lint / helm template), built from the Go module proxy into
# ~/go/bin. Go itself is on the machines (/usr/local/go); Debian's golang-go is the fallback.
HELM_VERSION=v3.16.4
gobin=$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin
if ! command -v helm >/dev/null && ! [ -x "$gobin/helm" ]; then
  if ! command -v go >/dev/null; then
    [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
  fi
  command -v go >/dev/null || { echo "install-deps: Go is needed to build helm (apt-get install golang-go)" >&2; exit 1; }
  echo "install-deps: building helm $HELM_VERSION with go install (a few minutes, once)"
  go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
