#!/usr/bin/env bash
# `make run`: the pipeline end to end on the embedded broker.
# Starts `agentline up` (embedded broker + priority-assigner, dev-fix-worker with the offline
# template generator, qa-worker, router, outbox-uploader to the filesystem, dlq-escalator),
# submits examples/tasks.jsonl and the deliberately broken examples/rejected.jsonl, waits until
# every file is delivered or dead-lettered (after the fix loop), and prints the results per
# job, the delivered files, the outbox summary and the DLQ store.
# AGENTLINE_KEEP_RUNNING=1 leaves everything running until Ctrl-C.
set -euo pipefail

bin=${1:-build/bin}
root=$(cd "$(dirname "$0")/.." && pwd)
state=${AGENTLINE_STATE_DIR:-$root/.agentline}
port=${AGENTLINE_BASE_HTTP_PORT:-9400}
# The embedded broker keeps everything in memory, so each run starts with empty topics: the
# state it left beside them (outbox and DLQ stores, delivered files, logs) goes too, or a
# second run would meet an outbox that remembers uploads the new topics never saw.
if [ -d "$state" ]; then
  (cd "$state" && rm -rf bootstrap up.log delivered ./*.db ./*.db-wal ./*.db-shm)
fi
mkdir -p "$state"

"$bin/agentline" up --state-dir "$state" --base-http-port "$port" --shutdown-grace-ms 5000 >"$state/up.log" 2>&1 &
up_pid=$!
stop() {
  kill -TERM "$up_pid" 2>/dev/null || true
  wait "$up_pid" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 1 100); do
  [ -s "$state/bootstrap" ] && break
  kill -0 "$up_pid" 2>/dev/null || { cat "$state/up.log"; echo "agentline up exited early" >&2; exit 1; }
  sleep 0.1
done
[ -s "$state/bootstrap" ] || { cat "$state/up.log"; echo "the embedded broker did not start" >&2; exit 1; }
bootstrap=$(cat "$state/bootstrap")
echo "== embedded broker at $bootstrap (state in $state, logs in $state/up.log)"
page="http://127.0.0.1:$((port + 6))/"
for _ in $(seq 1 100); do curl -fsS -o /dev/null "${page}readyz" 2>/dev/null && break; sleep 0.1; done
echo "== job page: $page  (open it to watch the jobs live; the API is under ${page}api, docs/openapi.yaml)"

echo "== submitting examples/tasks.jsonl"
"$bin/agentline" submit --state-dir "$state" "$root/examples/tasks.jsonl"
echo "== submitting examples/rejected.jsonl unvalidated (--raw), to show the DLQ"
"$bin/agentline" submit --state-dir "$state" --raw "$root/examples/rejected.jsonl"

echo "== waiting for priority-assigner to consume everything"
"$bin/agentline" lag --state-dir "$state" --group priority-assigner --topic tasks.submitted --wait 90

echo "== waiting for the jobs to finish (generate -> QA -> fix loop -> delivery)"
"$bin/agentline" status --state-dir "$state" --wait 120 --delivered --files

"$bin/agentline" lag --state-dir "$state" --group router --topic events --wait 30 >/dev/null
"$bin/agentline" lag --state-dir "$state" --group dlq-escalator --topic dlq --wait 30 >/dev/null

echo "== where the records went"
"$bin/agentline" topics list --state-dir "$state" | grep -E '^TOPIC|tasks\.|\.dlq |events|qa\.requests|deploy\.requests|jobs\.progress|escalations' | grep -v '\.retry\.'

echo "== DLQ records (kcat -C -t agentline.dlq -f '%h %s\\n')"
kcat -b "$bootstrap" -C -t agentline.dlq -e -q -f 'headers: %h\nvalue:   %s\n\n'

echo "== delivered files (filesystem target, $state/delivered)"
(cd "$state/delivered" && find . -type f ! -path '*/.agentline/*' | sort | sed 's|^\./|  |')
echo "== outbox (outbox-uploader status --db $state/outbox-uploader.db)"
"$bin/outbox-uploader" status --db "$state/outbox-uploader.db"
for _ in $(seq 1 50); do
  [ "$("$bin/dlq-escalator" list --db "$state/dlq-escalator.db" 2>/dev/null | wc -l)" -ge 4 ] && break
  sleep 0.2
done
echo "== DLQ store (dlq-escalator list --db $state/dlq-escalator.db)"
"$bin/dlq-escalator" list --db "$state/dlq-escalator.db"

echo "== metrics (priority-assigner :$port, dev-fix-worker :$((port + 1)), qa-worker :$((port + 2)), router :$((port + 3)))"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^agentline_(tasks_prioritized|dead_letters)_total' || true
curl -fsS "http://127.0.0.1:$((port + 1))/metrics" | grep -E '^agentline_(tasks_generated_total|cache_requests_total|breaker_state\{.*closed)' || true
curl -fsS "http://127.0.0.1:$((port + 2))/metrics" | grep -E '^agentline_qa_checks_total' || true
curl -fsS "http://127.0.0.1:$((port + 3))/metrics" | grep -E '^agentline_router_(routed|failed)_total' || true
echo "== metrics (outbox-uploader :$((port + 4)), dlq-escalator :$((port + 5)))"
curl -fsS "http://127.0.0.1:$((port + 4))/metrics" | grep -E '^agentline_outbox_(uploads_total|items)' || true
curl -fsS "http://127.0.0.1:$((port + 5))/metrics" | grep -E '^agentline_(dlq_records|escalations)_total' || true
if [ -n "${AGENTLINE_SCRAPE_DIR:-}" ]; then
  # Each service's /metrics as Prometheus would scrape it (checked by tests/deploy/deploy_checks.py).
  mkdir -p "$AGENTLINE_SCRAPE_DIR"
  # The lag gauges come with librdkafka's statistics (every 5 s): under the consumer group
  # protocol the groups join within milliseconds and the demo can end before the first ones.
  for _ in $(seq 1 24); do
    curl -fsS "http://127.0.0.1:$port/metrics" | grep -q '^agentline_consumer_lag_messages' && break
    sleep 0.5
  done
  i=0
  for s in priority-assigner dev-fix-worker qa-worker router outbox-uploader dlq-escalator; do
    curl -fsS "http://127.0.0.1:$((port + i))/metrics" >"$AGENTLINE_SCRAPE_DIR/$s.prom"
    i=$((i + 1))
  done
fi
echo "== the jobs as the gateway serves them (GET ${page}api/jobs)"
curl -fsS "${page}api/jobs" | python3 -c 'import json,sys; [print("  %-10s %3d%%  %d/%d files, version %d" % (j["job_id"], j["percent"], j["files_done"], j["files_total"], j["version"])) for j in json.load(sys.stdin)["jobs"]]' || true
echo "== dev-fix-worker /stats"
curl -fsS "http://127.0.0.1:$((port + 1))/stats"; echo

if [ "${AGENTLINE_KEEP_RUNNING:-0}" = 1 ]; then
  echo "== running; the job page is $page ; try: kcat -b $bootstrap -L   (Ctrl-C stops)"
  wait "$up_pid"
fi
