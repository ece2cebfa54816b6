#!/usr/bin/env bash
# End to end, with the real binaries and kcat: what `make run` shows a user.
#   - `agentline submit` names each rejected line and its reason;
#   - `agentline up` + submit route examples/tasks.jsonl to the right priority topics;
#   - the generation loop finishes every job: files generated, QA-checked in the sandbox, the
#     "fails once" file fixed once, the "never passes" file dead-lettered after 3 fixes;
#   - the DLQ records, read with kcat, carry the documented headers;
#   - every passed file is delivered once to the filesystem target; the DLQ store holds the
#     4 dead-lettered records with their reasons, each escalated once.
set -euo pipefail
bin=$1
root=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Seven free ports from port on (the services' and the gateway's), shared with the Python tests.
port=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import harness; print(harness.free_port_block(7))' "$root/tests/support")

# 1. Client-side validation: every broken line is named with its reason; nothing is sent.
"$bin/agentline" broker --state-dir "$work/v" >"$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 1 100); do [ -s "$work/v/bootstrap" ] && break; sleep 0.1; done
set +e
"$bin/agentline" submit --state-dir "$work/v" "$root/examples/rejected.jsonl" >"$work/submit.out" 2>"$work/submit.err"
rc=$?
set -e
# Backpressure: with nobody consuming, a backlog over --max-backlog makes submit wait.
"$bin/agentline" submit --state-dir "$work/v" "$root/examples/tasks.jsonl" >/dev/null
set +e
timeout 5 "$bin/agentline" submit --state-dir "$work/v" --max-backlog 10 "$root/examples/tasks.jsonl" \
  >/dev/null 2>"$work/hold.err"
hold_rc=$?
set -e
kill -TERM $broker; wait $broker || true
[ $hold_rc -eq 124 ] || fail "submit did not hold back over --max-backlog (exit $hold_rc)"
grep -q "holding back: 21 records of agentline.tasks.submitted not consumed yet" "$work/hold.err" ||
  fail "no hold-back message: $(cat "$work/hold.err")"
[ $rc -eq 1 ] || fail "submit of rejected lines exited $rc, expected 1"
grep -q "line 1: rejected: malformed_json" "$work/submit.err" || fail "line 1 not reported: $(cat "$work/submit.err")"
grep -q "line 2: rejected: schema_violation.*path" "$work/submit.err" || fail "line 2 not reported"
grep -q "line 3: rejected: unsafe_path" "$work/submit.err" || fail "line 3 not reported"
grep -q "submitted 0, rejected 3" "$work/submit.out" || fail "summary wrong: $(cat "$work/submit.out")"

# 2. The demo itself.
AGENTLINE_STATE_DIR="$work/state" AGENTLINE_BASE_HTTP_PORT=$port AGENTLINE_SCRAPE_DIR="$work/scrapes" \
  bash "$root/scripts/run-demo.sh" "$bin" >"$work/demo.out" 2>&1 || { cat "$work/demo.out"; fail "run-demo.sh failed"; }
cat "$work/demo.out"

count() { awk -v t="agentline.$1" '$1 == t { print $3 }' "$work/demo.out"; }
[ "$(count tasks.submitted)" = 24 ] || fail "tasks.submitted holds $(count tasks.submitted), expected 24"
[ "$(count tasks.critical)" = 5 ] || fail "critical: $(count tasks.critical), expected 5"
[ "$(count tasks.high)" = 5 ] || fail "high: $(count tasks.high), expected 5"
[ "$(count tasks.normal)" = 5 ] || fail "normal: $(count tasks.normal), expected 5"
[ "$(count tasks.low)" = 5 ] || fail "low: $(count tasks.low), expected 5"
# The submitted fix task, plus the router's fix tasks: 1 for app/config.py, 3 for examples/client.py.
[ "$(count tasks.fix)" = 5 ] || fail "fix: $(count tasks.fix), expected 5"
[ "$(count dlq)" = 4 ] || fail "dlq: $(count dlq), expected 4 (3 rejected tasks + 1 file after 3 fixes)"
[ "$(count deploy.requests)" = 20 ] || fail "deploy.requests: $(count deploy.requests), expected 20"
# 20 files, and the unsafe path priority-assigner dead-lettered: the DLQ reaches the job too.
grep -q "job todo-api: 100% (21/21 files done)" "$work/demo.out" || fail "job todo-api did not complete"
grep -Eq "^  dead_lettered +\.\./\.\./etc/passwd +unsafe_path: " "$work/demo.out" ||
  fail "the refused path is not on its job with its reason"
grep -q "== job page: http://127.0.0.1:$((port + 6))/" "$work/demo.out" || fail "make run did not print the job page's URL"
grep -Eq "^  todo-api +100%  21/21 files" "$work/demo.out" || fail "the gateway did not serve job todo-api at 100%"
grep -q "delivered      app/config.py  (fix 1)" "$work/demo.out" || fail "app/config.py was not fixed once and delivered"
grep -Eq "dead_lettered  examples/client.py  \(fix 3\)  ([0-9]+ tokens [$][0-9.]+  )?qa_failed_max: line [0-9]+: SyntaxError" "$work/demo.out" ||
  fail "examples/client.py did not end in the DLQ after 3 fixes"
grep -q "agentline-error-class=qa_failed_max" "$work/demo.out" || fail "the router's DLQ record is not shown"
grep -q 'agentline_qa_checks_total{check="py_compile",outcome="failed"} 5' "$work/demo.out" || fail "QA counts wrong"

for header in agentline-original-topic=agentline.tasks.submitted agentline-original-partition= \
  agentline-original-offset= agentline-original-timestamp= agentline-consumer-group=priority-assigner \
  agentline-failed-service=priority-assigner agentline-error-message= agentline-attempt=1 \
  agentline-error-class=malformed_json agentline-error-class=schema_violation agentline-error-class=unsafe_path; do
  grep -q -- "$header" "$work/demo.out" || fail "DLQ header $header not shown by kcat"
done
grep -q 'agentline_tasks_prioritized_total{priority="critical"} 5' "$work/demo.out" || fail "metrics missing"

# Delivery: 20 items uploaded (two tasks write app/utils/pagination.py: 19 files), each once. The
# submitted FIX_TASK of pagination.py races its DEV_TASK: when the fix reaches the outbox first,
# the older first version is superseded (not uploaded, announced as done): 19 uploads then.
grep -Eq 'agentline_outbox_uploads_total\{outcome="uploaded",target="filesystem"\} (19|20)$' "$work/demo.out" ||
  fail "not 19 or 20 uploads"
grep -q "^  uploaded	20$" "$work/demo.out" || fail "outbox status does not show 20 uploaded"
files=$(find "$work/state/delivered/todo-api" -type f | wc -l)
[ "$files" = 19 ] || fail "$files files delivered, expected 19"
[ ! -e "$work/state/delivered/todo-api/examples/client.py" ] || fail "the dead-lettered file was delivered"
# The fixed version of app/config.py was delivered, not the first (broken) one.
python3 -m py_compile "$work/state/delivered/todo-api/app/config.py" || fail "the delivered app/config.py does not compile"
for f in $(cd "$work/state/delivered/todo-api" && find . -name '*.py'); do
  python3 -c "import ast,sys; ast.parse(open(sys.argv[1]).read())" "$work/state/delivered/todo-api/$f" || fail "$f does not parse"
done
# Counters are files: 19 paths delivered (app/utils/pagination.py twice: its task and the submitted
# FIX_TASK), 2 dead-lettered.
grep -q "delivered 19, dead-lettered 2" "$work/demo.out" || fail "job progress does not count 19 files delivered"
[ "$(count escalations)" = 4 ] || fail "escalations: $(count escalations), expected 4"
for reason in schema_violation unsafe_path malformed_json qa_failed_max; do
  grep -Eq "^[0-9]+	[^	]+	[^	]+	[^	]+	$reason	" "$work/demo.out" || fail "DLQ store has no $reason record"
  grep -q "agentline_escalations_total{reason=\"$reason\"} 1" "$work/demo.out" || fail "$reason not escalated once"
done
grep -q "^4 record(s)$" "$work/demo.out" || fail "the DLQ store does not hold exactly 4 records"

# 3. What Prometheus scrapes from the six services is valid exposition format (promtool check
#    metrics), and every metric a dashboard panel or an alert uses is in it.
python3 "$root/tests/deploy/deploy_checks.py" scrapes "$work/scrapes" || fail "scrape checks failed"

# 4. `up` stopped every child it started.
sleep 0.5
if pgrep -f "$work/state" >/dev/null; then
  pgrep -af "$work/state" >&2
  fail "processes left behind after agentline up stopped"
fi
echo "1 passed, 0 failed"
