#!/usr/bin/env bash
# `make run-llm`: the pipeline end to end on the embedded broker with a real model and a goal
# instead of hand-written tasks: plan -> release in dependency order -> generate -> QA -> fixes
# -> delivery or DLQ (docs/planning.md).
#
# By default the model is llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct on
# loopback (scripts/install-llm.sh builds it once per machine, ~10 min on 2 cores). A 135M model
# writes poor code: expect dead letters; the point is to watch the system work with real tokens.
# Any OpenAI-compatible endpoint instead (OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM):
#   AGENTLINE_LLM_BASE_URL=https://api.openai.com/v1 AGENTLINE_LLM_MODEL=gpt-4o-mini \
#   AGENTLINE_LLM_API_KEY=sk-... make run-llm
# (Azure OpenAI also AGENTLINE_LLM_AUTH_HEADER=api-key; Ollama http://127.0.0.1:11434/v1.)
# AGENTLINE_DEMO_GOAL sets the goal; AGENTLINE_KEEP_RUNNING=1 leaves everything running.
set -euo pipefail
bin=${1:-build/bin}
root=$(cd "$(dirname "$0")/.." && pwd)
state=${AGENTLINE_STATE_DIR:-$root/.agentline-llm}
port=${AGENTLINE_BASE_HTTP_PORT:-9400}
goal=${AGENTLINE_DEMO_GOAL:-A calculator CLI in Python}
rm -rf "$state" && mkdir -p "$state"
pids=()
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT

if [ -z "${AGENTLINE_LLM_BASE_URL:-}" ]; then
  venv=$(bash "$root/scripts/install-llm.sh")
  model=$(bash "$root/scripts/install-llm.sh" --model)
  llm_port=${AGENTLINE_LLM_PORT:-9480}
  echo "== llama.cpp server with $(basename "$model") on 127.0.0.1:$llm_port (log: $state/llama-server.log)"
  "$venv/bin/python" -m llama_cpp.server --model "$model" --model_alias smollm2 --host 127.0.0.1 \
    --port "$llm_port" --n_ctx 4096 >"$state/llama-server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "http://127.0.0.1:$llm_port/v1/models" 2>/dev/null && break; sleep 0.2; done
  export AGENTLINE_LLM_BASE_URL=http://127.0.0.1:$llm_port/v1 AGENTLINE_LLM_MODEL=smollm2 AGENTLINE_LLM_API_KEY=local
  export AGENTLINE_MAX_TOKENS=${AGENTLINE_MAX_TOKENS:-200} AGENTLINE_PLAN_MAX_TOKENS=${AGENTLINE_PLAN_MAX_TOKENS:-300}
  export AGENTLINE_LLM_MAX_IN_FLIGHT=1 AGENTLINE_LLM_TEMPERATURE=0 AGENTLINE_BATCH_MAX_FILES=1
  export AGENTLINE_LLM_STRUCTURED_OUTPUT=json_object_schema  # llama.cpp's grammar keeps a plan valid JSON
fi
export AGENTLINE_GENERATOR=openai AGENTLINE_LLM_TIMEOUT_MS=${AGENTLINE_LLM_TIMEOUT_MS:-240000}

"$bin/agentline" up --state-dir "$state" --base-http-port "$port" --shutdown-grace-ms 5000 >"$state/up.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$state/bootstrap" ] && break; sleep 0.1; done
gateway="http://127.0.0.1:$((port + 6))"
for _ in $(seq 1 300); do curl -fsS -o /dev/null "$gateway/readyz" 2>/dev/null && break; sleep 0.2; done
echo "== model: $AGENTLINE_LLM_MODEL at $AGENTLINE_LLM_BASE_URL; job page: $gateway/"
echo "== goal: $goal"
"$bin/agentline" submit --state-dir "$state" --goal "$goal" --job-id demo-goal --language python --max-files "${AGENTLINE_DEMO_MAX_FILES:-3}" \
  --wait "${AGENTLINE_DEMO_WAIT_S:-1200}" --gateway "$gateway" || echo "(the job did not finish in time)"
echo "== the plan and each file as the gateway serves them"
curl -fsS "$gateway/api/jobs/demo-goal" | python3 -c '
import json, sys
j = json.load(sys.stdin)
p = j.get("plan", {})
print("  plan: %s (attempt %s)%s" % (p.get("status"), p.get("attempt"), ": " + p["reason"] if p.get("reason") else ""))
for path, f in sorted(j.get("files", {}).items()):
    print("  %-28s %-14s %s" % (path, f["status"], f.get("reason", "")[:90]))'
echo "== delivered files ($state/delivered)"
(cd "$state/delivered" 2>/dev/null && find . -type f ! -path '*/.agentline/*' | sort | sed 's|^\./|  |') || true
echo "== tokens and cost (dev-fix-worker /metrics)"
curl -fsS "http://127.0.0.1:$((port + 1))/metrics" | grep -E '^agentline_(llm_tokens_total|llm_cost_usd_total|tasks_generated_total)' || true
if [ "${AGENTLINE_KEEP_RUNNING:-0}" = 1 ]; then
  echo "== running; the job page is $gateway/ (Ctrl-C stops)"
  wait
fi
