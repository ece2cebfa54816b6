#!/usr/bin/env bash
# schemathesis.sh BIN_DIR SRC_DIR VENV [MAX_EXAMPLES]: installs schemathesis (PyPI, pinned) into
# VENV once, then runs tests/gateway/schemathesis_test.py. CPython 3.12 is preferred: on 3.11
# hypothesis trips over "AST constructor recursion depth mismatch" (a CPython bug).
set -euo pipefail
bin=$1 root=$2 venv=$3 examples=${4:-8}
if [ ! -x "$venv/bin/schemathesis" ]; then
  python=""
  for p in python3.13 python3.12 /root/.pyenv/versions/3.12.*/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      python=$p
      break
    fi
  done
  [ -n "$python" ] || python=python3
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q schemathesis==4.32.5
fi
exec python3 "$root/tests/gateway/schemathesis_test.py" "$bin" "$root" "$venv/bin/schemathesis" "$examples"
