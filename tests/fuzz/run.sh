#!/usr/bin/env bash
# run.sh BUILD_DIR SECONDS|merge TARGET...
# Runs each libFuzzer target on its committed corpus (tests/fuzz/corpus/<target>, read-only
# seeds) for SECONDS, writing new inputs to BUILD_DIR/corpus/<target>; a crash leaves its input
# in BUILD_DIR/artifacts/<target>/ and fails the run. "merge" minimises the committed corpus
# together with the new inputs (run after a long `make fuzz`, then commit tests/fuzz/corpus).
set -euo pipefail
build=$1 seconds=$2
shift 2
root=$(cd "$(dirname "$0")" && pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for target in "$@"; do
  seeds=$root/corpus/$target
  found=$build/corpus/$target
  artifacts=$build/artifacts/$target
  mkdir -p "$seeds" "$found" "$artifacts"
  dict=()
  [ -f "$root/$target.dict" ] && dict=(-dict="$root/$target.dict")
  if [ "$seconds" = merge ]; then
    "$build/bin/$target" -merge=1 "${dict[@]}" "$seeds" "$found"
    continue
  fi
  echo "== $target: ${seconds} s, seeds $(ls "$seeds" | wc -l)"
  if ! "$build/bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$found" "$seeds" 2>"$build/$target.log"; then
    tail -60 "$build/$target.log"
    echo "FAIL: $target found a crash; its input is in $artifacts/"
    status=1
  else
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)" "$build/$target.log" | tr '\n' ' '
    echo
  fi
done
exit $status
