#!/usr/bin/env bash
# Checks that need a real Apache Kafka (started by kafka-local.sh; its state dir is $3).
#   reliability_test.sh BIN_DIR SRC_DIR KAFKA_STATE CASE
# CASE: topics_apply | console_consumer_headers | replay_with_kcat | broker_restart | scale_out | sasl_tls |
#       classic_only_broker
set -euo pipefail
bin=$1 root=$2 state=$3 case=$4
B=$(cat "$state/bootstrap")
P="rel-$case-$$."
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL [$case]: $*" >&2; for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done; exit 1; }
kafka_tool() { "$root/tests/kafka/kafka-local.sh" tool --state "$state" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A new topic's partitions as the broker's metadata lists them; read again for up to 10 s, since
# a busy broker may answer metadata for a just-created topic before it lists its partitions.
expect_partitions() {
  local topic=$1 want=$2 got=0
  for _ in $(seq 1 20); do
    got=$(kcat -b "$B" -L -t "$topic" 2>/dev/null | grep -c 'partition ' || true)
    [ "$got" -eq "$want" ] && return 0
    sleep 0.5
  done
  fail "$topic has $got partitions, expected $want"
}

apply_topics() { "$bin/agentline" topics apply --bootstrap-servers "$B" --topic-prefix "$P" --replication-factor 1; }

# start_assigner NAME PORT [extra args...]: priority-assigner in the background; its pid in $last_pid.
start_assigner() {
  local name=$1 port=$2
  shift 2
  "$bin/priority-assigner" --bootstrap-servers "$B" --topic-prefix "$P" --http-port "$port" \
    --session-timeout-ms 6000 --shutdown-grace-ms 5000 "$@" >"$work/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

# refused NAME WHAT ARGS...: a priority-assigner whose credentials the broker refuses (ARGS: its
# bootstrap and -X settings) stays up and live, and not ready; its /readyz body in NAME.readyz.
refused() {
  local name=$1 what=$2 port
  shift 2
  port=$(free_port)
  "$bin/priority-assigner" --topic-prefix "$P" --http-port "$port" --group-id "$name" "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  sleep 8
  kill -0 "$pid" 2>/dev/null || fail "$what crashed the service"
  code=$(curl -s -o "$work/$name.readyz" -w '%{http_code}' "http://127.0.0.1:$port/readyz")
  [ "$code" = 503 ] || fail "/readyz answered $code with $what"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
  [ "$code" = 200 ] || fail "/healthz answered $code with $what: liveness must not fail on credentials"
}

# gen_tasks N FILE: N valid tasks with distinct ids and paths of every priority.
gen_tasks() {
  python3 - "$1" "$2" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
dirs = ["app", "app/models", "app/services", "tests", "core", "docs"]
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": f"m-{i}", "task_id": f"t-{i}", "job_id": "rel", "type": "DEV_TASK",
                            "created_at": "2026-11-22T10:00:00Z",
                            "payload": {"path": f"{dirs[i % len(dirs)]}/f{i}.py", "description": "x"}}) + "\n")
PY
}

routed_ids() {
  for t in critical high normal low fix; do
    kcat -b "$B" -C -t "${P}tasks.$t" -e -q -f '%k\n' 2>/dev/null
  done | sort -u | grep -c . || true
}

wait_routed() {
  local want=$1 deadline=$((SECONDS + ${2:-120})) got=0
  while [ $SECONDS -lt $deadline ]; do
    got=$(routed_ids)
    [ "$got" -ge "$want" ] && { echo "$got"; return 0; }
    sleep 1
  done
  echo "$got"
  return 1
}

metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" 'index($0, m) == 1 { print $NF }' | head -1; }

case "$case" in
topics_apply)
  out1=$(apply_topics) || fail "first apply failed"
  out2=$(apply_topics) || fail "second apply failed"
  # A count of 0 must reach `fail` with its message, not end the script through set -e.
  n=$(grep -c '^created' <<<"$out1" || true)
  [ "$n" -eq 32 ] || fail "first apply created $n topics, expected 32: $out1"
  grep -q '^0 created, 32 already present' <<<"$out2" || fail "second apply was not a no-op: $out2"
  expect_partitions "${P}tasks.critical" 6
  expect_partitions "${P}retry.router.2" 3
  configs=$(kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$B" --entity-type topics \
    --entity-name "${P}jobs.progress" --describe 2>/dev/null)
  grep -q 'cleanup.policy=compact' <<<"$configs" || fail "jobs.progress is not compacted: $configs"
  configs=$(kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$B" --entity-type topics \
    --entity-name "${P}dlq" --describe 2>/dev/null)
  grep -q 'retention.ms=2592000000' <<<"$configs" || fail "dlq retention not applied: $configs"
  ;;

console_consumer_headers)
  apply_topics >/dev/null
  start_assigner pa "$(free_port)"
  printf '%s\n' '{"id":"m","task_id":"bad-1","job_id":"j","type":"DEV_TASK","created_at":"2026-11-22T10:00:00Z","payload":{"path":"../../etc/passwd","description":"x"}}' |
    sed 's/^/bad-1\t/' | kcat -b "$B" -P -t "${P}tasks.submitted" -K$'\t'
  out=$(timeout 120 "$root/tests/kafka/kafka-local.sh" tool --state "$state" \
    org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$B" --topic "${P}dlq" \
    --from-beginning --max-messages 1 --timeout-ms 90000 --property print.headers=true --property print.key=true 2>/dev/null) ||
    fail "console consumer read nothing"
  echo "$out"
  for h in "agentline-original-topic:${P}tasks.submitted" agentline-original-partition: agentline-original-offset: \
    agentline-original-timestamp: agentline-consumer-group:priority-assigner agentline-error-class:unsafe_path \
    agentline-error-message: agentline-failed-service:priority-assigner agentline-attempt:1; do
    grep -q -- "$h" <<<"$out" || fail "console consumer does not show header $h"
  done
  ;;

replay_with_kcat)
  apply_topics >/dev/null
  start_assigner pa "$(free_port)"
  value='{"id":"m","task_id":"bad-2","job_id":"j","type":"DEV_TASK","created_at":"2026-11-22T10:00:00Z","payload":{"path":"/abs/path.py","description":"x"}}'
  printf 'bad-2\t%s\n' "$value" | kcat -b "$B" -P -t "${P}tasks.submitted" -K$'\t'
  for _ in $(seq 1 60); do
    [ "$(kcat -b "$B" -C -t "${P}dlq" -e -q -f '%k\n' | grep -c bad-2)" -ge 1 ] && break
    sleep 1
  done
  recipe=$(sed -n '/<!-- replay-recipe:begin -->/,/<!-- replay-recipe:end -->/p' "$root/docs/replay.md" | sed '1,2d;$d' | sed '$d')
  [ -n "$recipe" ] || fail "no recipe in docs/replay.md"
  B="$B" DLQ="${P}dlq" CLASS=unsafe_path bash -c "set -euo pipefail; $recipe"
  copies=$(kcat -b "$B" -C -t "${P}tasks.submitted" -e -q -f '%k\t%s\n' | grep -c "^bad-2	$value\$" || true)
  [ "$copies" -eq 2 ] || fail "the replay did not put the record back on ${P}tasks.submitted ($copies copies)"
  ;;

broker_restart)
  apply_topics >/dev/null
  start_assigner pa "$(free_port)"
  gen_tasks 3000 "$work/tasks.jsonl"
  head -n 1500 "$work/tasks.jsonl" >"$work/a.jsonl"
  tail -n 1500 "$work/tasks.jsonl" >"$work/b.jsonl"
  "$bin/agentline" submit --bootstrap-servers "$B" --topic-prefix "$P" "$work/a.jsonl"
  "$bin/agentline" submit --bootstrap-servers "$B" --topic-prefix "$P" "$work/b.jsonl" >"$work/submit-b.log" 2>&1 &
  submitter=$!
  "$root/tests/kafka/kafka-local.sh" restart --state "$state" >/dev/null
  wait $submitter || fail "submit across the broker restart failed: $(cat "$work/submit-b.log")"
  got=$(wait_routed 3000 180) || fail "only $got of 3000 tasks arrived after the broker restart"
  echo "broker restart: 3000 of 3000 tasks routed"
  ;;

scale_out)
  apply_topics >/dev/null
  gen_tasks 4000 "$work/tasks.jsonl"
  split -l 1000 -d "$work/tasks.jsonl" "$work/chunk-"
  submit() { "$bin/agentline" submit --bootstrap-servers "$B" --topic-prefix "$P" "$1" >/dev/null; }
  port1=$(free_port); port2=$(free_port)
  consumed() {
    metric "$1" 'agentline_records_consumed_total{service="priority-assigner",topic="'"${P}"'tasks.submitted"}'
  }
  start_assigner pa1 "$port1"
  first=$last_pid
  submit "$work/chunk-00"
  wait_routed 1000 60 >/dev/null || fail "the first instance did not route the first 1000 tasks"
  start_assigner pa2 "$port2"  # joins mid-flow: a rebalance
  submit "$work/chunk-01"
  wait_routed 2000 60 >/dev/null || fail "2000 tasks not routed by two instances"
  c1=$(consumed "$port1")
  kill -TERM "$first"  # leaves mid-flow: another rebalance
  submit "$work/chunk-02"
  wait "$first" || fail "the first instance did not drain cleanly"
  submit "$work/chunk-03"
  got=$(wait_routed 4000 180) || fail "only $got of 4000 tasks arrived across the rebalances"
  c2=$(consumed "$port2")
  [ "${c1%.*}" -gt 0 ] && [ "${c2%.*}" -gt 0 ] || fail "work was not shared: first consumed $c1, second $c2"
  echo "scale-out: 4000 of 4000 tasks routed; first instance consumed ${c1%.*}, second ${c2%.*}"
  ;;

sasl_tls)
  apply_topics >/dev/null
  SB=$(cat "$state/secure-bootstrap")
  password=$(cat "$state/password")
  port=$(free_port)
  "$bin/priority-assigner" --bootstrap-servers "$SB" --topic-prefix "$P" --http-port "$port" \
    -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=agentline \
    -X "sasl.password.file=$state/password" -X "ssl.ca.location=$state/ca.pem" \
    >"$work/secure.log" 2>&1 &
  pids+=($!)
  gen_tasks 10 "$work/tasks.jsonl"
  "$bin/agentline" submit --bootstrap-servers "$SB" --topic-prefix "$P" -X security.protocol=SASL_SSL \
    -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=agentline -X "sasl.password=$password" \
    -X "ssl.ca.location=$state/ca.pem" "$work/tasks.jsonl" || fail "submit over SASL_SSL failed"
  got=$(wait_routed 10 60) || fail "only $got of 10 tasks routed over SASL_SSL"

  echo "wrong-$password" >"$work/wrong-password"
  refused wrong "a wrong password" --bootstrap-servers "$SB" -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 \
    -X sasl.username=agentline -X "sasl.password.file=$work/wrong-password" -X "ssl.ca.location=$state/ca.pem"
  grep -q "cannot authenticate" "$work/wrong.readyz" || fail "/readyz does not say why: $(cat "$work/wrong.readyz")"
  grep -qi "authentication" "$work/wrong.log" || fail "no clear authentication error in the log"
  for log in "$work/secure.log" "$work/wrong.log"; do
    if grep -qF -- "$password" "$log"; then fail "the password appears in $log"; fi
  done

  # mTLS: the client's certificate is its credential; without one the broker refuses it.
  MB=$(cat "$state/mtls-bootstrap")
  mtls_port=$(free_port)
  P="rel-mtls-$$."
  apply_topics >/dev/null
  "$bin/priority-assigner" --bootstrap-servers "$MB" --topic-prefix "$P" --http-port "$mtls_port" \
    -X security.protocol=SSL -X "ssl.ca.location=$state/ca.pem" -X "ssl.certificate.location=$state/client.crt" \
    -X "ssl.key.location=$state/client.key" >"$work/mtls.log" 2>&1 &
  pids+=($!)
  "$bin/agentline" submit --bootstrap-servers "$MB" --topic-prefix "$P" -X security.protocol=SSL \
    -X "ssl.ca.location=$state/ca.pem" -X "ssl.certificate.location=$state/client.crt" \
    -X "ssl.key.location=$state/client.key" "$work/tasks.jsonl" || fail "submit over mTLS failed"
  got=$(wait_routed 10 60) || fail "only $got of 10 tasks routed over mTLS"
  refused nocert "a missing client certificate" --bootstrap-servers "$MB" -X security.protocol=SSL \
    -X "ssl.ca.location=$state/ca.pem"
  echo "sasl_tls: 10 tasks over SASL_SSL (SCRAM-SHA-512) and 10 over mTLS; wrong password -> /readyz 503: $(cat "$work/wrong.readyz");" \
    "no client certificate -> /readyz 503: $(cat "$work/nocert.readyz")"
  ;;
classic_only_broker)
  # A Kafka whose group coordinator offers only the classic protocol (like every Kafka before
  # 4.0): under --group-protocol auto (the default) the services fall back to classic and work;
  # asked for the consumer protocol they exit 1 and say why. Its own broker, stopped at exit.
  own="$work/kafka-classic"
  "$root/tests/kafka/kafka-local.sh" start --state "$own" --group-protocols classic >/dev/null ||
    fail "cannot start a classic-only Kafka"
  trap 'cleanup; "$root/tests/kafka/kafka-local.sh" stop --state "$own" >/dev/null 2>&1 || true' EXIT
  B=$(cat "$own/bootstrap")
  apply_topics >/dev/null
  port=$(free_port)
  start_assigner auto "$port" --group-protocol auto  # whatever AGENTLINE_GROUP_PROTOCOL says
  gen_tasks 20 "$work/tasks.jsonl"
  "$bin/agentline" submit --bootstrap-servers "$B" --topic-prefix "$P" "$work/tasks.jsonl" >/dev/null
  got=$(wait_routed 20 90) || fail "only $got of 20 tasks routed under auto on a classic-only broker"
  [ "$(metric "$port" 'agentline_consumer_group_protocol{service="priority-assigner",protocol="classic"}')" = 1 ] || fail "auto did not use classic"
  grep -q "falling back to the classic protocol" "$work/auto.log" || fail "the fallback is not in the log"
  rc=0
  timeout 60 "$bin/priority-assigner" --bootstrap-servers "$B" --topic-prefix "$P" --http-port "$(free_port)" \
    --group-protocol consumer >"$work/consumer.log" 2>&1 || rc=$?
  [ "$rc" = 1 ] || fail "--group-protocol consumer on a classic-only broker exited $rc, not 1"
  grep -q "do not support --group-protocol consumer" "$work/consumer.log" || fail "no reason in the log"
  echo "classic_only_broker: 20 of 20 tasks routed under auto (fell back to classic); consumer exits 1 with the reason"
  ;;
*) fail "unknown case" ;;
esac
echo "PASS [$case]"
