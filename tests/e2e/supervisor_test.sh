#!/usr/bin/env bash
# `agentline up` supervises its services: a SIGKILLed priority-assigner is restarted (with
# backoff) and routes tasks again; Ctrl-C (SIGINT) stops the services and the broker.
set -euo pipefail
bin=$1
root=$2
work=$(mktemp -d)
up_pid=
cleanup() { [ -n "$up_pid" ] && kill -TERM "$up_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; cat "$work/up.log" >&2 || true; exit 1; }
# Seven free ports from port on (the services' and the gateway's), shared with the Python tests.
port=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import harness; print(harness.free_port_block(7))' "$root/tests/support")

# A SIGKILLed member keeps its partitions until its session times out (librdkafka's default
# is 45 s): the services take a 6 s session timeout from the environment, as every option.
AGENTLINE_SESSION_TIMEOUT_MS=6000 "$bin/agentline" up --state-dir "$work/state" --base-http-port "$port" \
  --shutdown-grace-ms 3000 >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 150); do grep -q "started priority-assigner" "$work/up.log" 2>/dev/null && break; sleep 0.1; done
first=$(sed -n 's/.*started priority-assigner (pid \([0-9]*\)).*/\1/p' "$work/up.log" | head -1)
[ -n "$first" ] || fail "priority-assigner was not started"
kill -0 "$first" || fail "priority-assigner $first is not running"

kill -KILL "$first"
for _ in $(seq 1 100); do grep -q "restarted priority-assigner" "$work/up.log" && break; sleep 0.1; done
grep -q "priority-assigner (pid $first) killed by signal 9; restarting in 1000 ms" "$work/up.log" ||
  fail "the crash was not reported with its backoff"
second=$(sed -n 's/.*restarted priority-assigner (pid \([0-9]*\)).*/\1/p' "$work/up.log" | head -1)
[ -n "$second" ] && [ "$second" != "$first" ] && kill -0 "$second" || fail "priority-assigner was not restarted"

# The restarted service does its job.
"$bin/agentline" submit --state-dir "$work/state" "$root/examples/tasks.jsonl" >/dev/null
"$bin/agentline" lag --state-dir "$work/state" --group priority-assigner --topic tasks.submitted --wait 60 >/dev/null ||
  fail "the restarted priority-assigner did not consume the tasks"
fixes=$(kcat -b "$(cat "$work/state/bootstrap")" -C -t agentline.tasks.fix -e -q -f '%k\n' | grep -c todo-api-021 || true)
[ "$fixes" = 1 ] || fail "the fix task was not routed after the restart"

kill -INT "$up_pid"
wait "$up_pid" || fail "agentline up did not exit cleanly on SIGINT"
up_pid=
kill -0 "$second" 2>/dev/null && fail "priority-assigner $second outlived agentline up"
grep -q "priority-assigner stopped (exit 0)" "$work/up.log" || fail "priority-assigner did not drain and exit 0"
[ ! -e "$work/state/bootstrap" ] || fail "the embedded broker did not stop (bootstrap file left)"
echo "1 passed, 0 failed"
