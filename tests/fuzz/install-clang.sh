#!/usr/bin/env bash
# clang and its runtime libraries (libFuzzer, ASan, UBSan) from Debian, for `make fuzz`.
set -euo pipefail
if command -v clang++ >/dev/null && ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev
