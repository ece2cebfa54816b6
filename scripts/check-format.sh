#!/usr/bin/env bash
# clang-format --dry-run --Werror over every tracked C++ file (.clang-format: Google style,
# 120 columns). Fix a failure with: clang-format -i FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.hpp' '*.cc')
clang-format --dry-run --Werror "${files[@]}"
echo "check-format: ${#files[@]} files formatted"
