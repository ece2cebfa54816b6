#!/usr/bin/env bash
# schemathesis.sh BIN_DIR SRC_DIR [MAX_EXAMPLES]: installs schemathesis (PyPI, pinned) once per
# machine into a virtualenv in the machine-wide cache (scripts/lib/cache.sh), then runs
# tests/gateway/schemathesis_test.py. CPython 3.12 is preferred: on 3.11 hypothesis trips over
# "AST constructor recursion depth mismatch" (a CPython bug).
set -euo pipefail
bin=$1 root=$2 examples=${3:-8}
. "$root/scripts/lib/cache.sh"
version=4.32.5
venv=$agentline_cache/schemathesis-$version
if [ ! -f "$venv/.complete" ]; then
  python=""
  for p in python3.13 python3.12 /root/.pyenv/versions/3.12.*/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      python=$p
      break
    fi
  done
  [ -n "$python" ] || python=python3
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$version"
  touch "$venv/.complete"
fi
exec python3 "$root/tests/gateway/schemathesis_test.py" "$bin" "$root" "$venv/bin/schemathesis" "$examples"
