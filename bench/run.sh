#!/usr/bin/env bash
# `make bench`: measures the pipeline beside bare librdkafka (embedded broker and Apache Kafka),
# and the resilience and cache library beside resilience4j and Caffeine; writes bench/REPORT.md
# and bench/pipeline.png. Not part of `make test`. AGENTLINE_BENCH_QUICK=1 runs each pipeline
# scenario once with smaller counts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${AGENTLINE_BENCH_OUT:-$root/build-bench/results}
mkdir -p "$out"
cd "$root"
: >"$out/commands.txt"
run() { echo "$*" >>"$out/commands.txt"; "$@"; }

echo "== building (Release, -DAGENTLINE_BENCH=ON) in build-bench"
run cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DAGENTLINE_BENCH=ON -DBUILD_TESTING=OFF >/dev/null
run cmake --build build-bench -j2 --target agentline_bench agentline_hitrate agentline_pipeline_bench \
  agentline priority-assigner dev-fix-worker qa-worker router outbox-uploader dlq-escalator gateway
python3 -c 'import matplotlib' 2>/dev/null || run python3 -m pip install --quiet matplotlib

echo "== pipeline (bench/pipeline/run.py: embedded broker and Apache Kafka)"
run python3 bench/pipeline/run.py build-bench/bin build-bench/bin/agentline_pipeline_bench "$out" \
  ${AGENTLINE_BENCH_QUICK:+--quick}

echo "== job progress at scale (bench/pipeline/progress_scale.py: 10,000-file job, 64 SSE clients)"
run python3 bench/pipeline/progress_scale.py build-bench/bin "$out"
echo "== probes during a 10,000-record DLQ replay (bench/pipeline/replay_probes.py)"
run python3 bench/pipeline/replay_probes.py build-bench/bin "$out"

echo "== C++ micro-benchmarks (Google Benchmark, 3 repetitions, medians)"
run build-bench/bin/agentline_bench --benchmark_repetitions=3 --benchmark_min_time=0.3 \
  --benchmark_report_aggregates_only=true --benchmark_out="$out/cpp.json" --benchmark_out_format=json

echo "== hit rates (ResultCache W-TinyLFU and LRU)"
run build-bench/bin/agentline_hitrate zipf zipf-0.99 100000 1000000 0.99 42 "$out/zipf.trace" 100 1000 5000 >"$out/hitrate-cpp.jsonl"
run build-bench/bin/agentline_hitrate file lirs-sprite bench/traces/lirs-sprite.trace.gz 100 500 1000 2500 >>"$out/hitrate-cpp.jsonl"
run build-bench/bin/agentline_hitrate file lirs-multi1 bench/traces/lirs-multi1.trace.gz 100 500 1000 >>"$out/hitrate-cpp.jsonl"

echo "== resilience4j and Caffeine (JMH; Maven Central)"
run mvn -q -B -f bench/jmh/pom.xml package -DskipTests
jar=bench/jmh/target/benchmarks.jar
run java -jar "$jar" -f 1 -wi 2 -w 1s -i 3 -r 1s -rf json -rff "$out/jmh.json" 'agentline.bench.*Bench.*' >"$out/jmh.log"
run java -cp "$jar" agentline.bench.HitRate "$out/zipf.trace" zipf-0.99 100 1000 5000 >"$out/hitrate-caffeine.jsonl"
run java -cp "$jar" agentline.bench.HitRate bench/traces/lirs-sprite.trace.gz lirs-sprite 100 500 1000 2500 >>"$out/hitrate-caffeine.jsonl"
run java -cp "$jar" agentline.bench.HitRate bench/traces/lirs-multi1.trace.gz lirs-multi1 100 500 1000 >>"$out/hitrate-caffeine.jsonl"

echo "== report"
python3 bench/report.py "$out" >bench/REPORT.md
echo "wrote bench/REPORT.md"
