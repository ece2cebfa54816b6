#!/usr/bin/env bash
# Stands in for a binary of build/bin (symlinked under its name) and runs it from the image
# instead, the way an operator runs it: a container per process, host network, user 10001, a
# read-only root file system, no capabilities, no privilege escalation, and only the folders
# its arguments name mounted (the checkout read-only; state folders writable, owned by 10001).
# `agentline up` starts the embedded broker and the seven services as eight containers and,
# on SIGTERM, stops each with SIGTERM (podman stop), as Kubernetes and compose do.
# Environment: AGENTLINE_TEST_IMAGE, AGENTLINE_TEST_ROOT (the checkout), AGENTLINE_TEST_REPORT
# (a file `up` appends its findings to: readiness, exit codes, the containers' settings).
set -euo pipefail
name=$(basename "$0")
image=$AGENTLINE_TEST_IMAGE
root=$AGENTLINE_TEST_ROOT
report=$AGENTLINE_TEST_REPORT

# The restricted settings the Helm chart declares (values.yaml: runAsUser 10001, readOnlyRootFilesystem,
# drop ALL, allowPrivilegeEscalation false), plus a writable /tmp as the chart's emptyDir.
restricted=(--network host --user 10001:10001 --read-only --cap-drop all --security-opt no-new-privileges
  --tmpfs '/tmp:rw,nosuid,nodev,mode=1777')
# qa-worker's bubblewrap sandbox makes a user namespace and mounts a fresh /proc in it: the
# container's masked /proc paths must be unmasked for that (docs/operations.md).
sandbox_opts=(--security-opt 'unmask=/proc/*')

declare -A mounted=()
mounts=(-v "$root:$root:ro")
mount_state() {  # a folder the process writes: created, handed to 10001, mounted at the same path
  local d=$1
  [ -n "${mounted[$d]:-}" ] && return
  mounted[$d]=1
  mkdir -p "$d"
  mounts+=(-v "$d:$d:U")
}
take_paths() {
  local prev="" a
  for a in "$@"; do
    case "$prev" in
      --state-dir | --output-root) mount_state "$a" ;;
      --db) mount_state "$(dirname "$a")" ;;
    esac
    prev=$a
  done
}

if [ "$name" != agentline ] || [ "${1:-}" != up ]; then
  take_paths "$@"
  # The agentline CLI runs as PID 1 and must end on SIGTERM itself (timeout's ends `submit`), as
  # the services below do; other tools get --init, so signals reach them as on a host.
  init=(--init)
  [ "$name" != agentline ] || init=()
  exec podman run --rm -i "${init[@]}" "${restricted[@]}" "${mounts[@]}" "$image" "$name" "$@"
fi

shift
state="" base_port=9400 grace_ms=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) state=$2; shift 2 ;;
    --base-http-port) base_port=$2; shift 2 ;;
    --shutdown-grace-ms) grace_ms=$2; shift 2 ;;
    *) echo "in_container: agentline up: $1 is not handled here" >&2; exit 2 ;;
  esac
done
[ -n "$state" ] || { echo "in_container: agentline up needs --state-dir" >&2; exit 2; }
mount_state "$state"
rm -f "$state/bootstrap"
prefix=agentline-test-$$
logs=$(dirname "$report")/logs  # each container's log, kept after the demo's folder is gone
mkdir -p "$logs"
services=(priority-assigner dev-fix-worker qa-worker router outbox-uploader dlq-escalator gateway)
started=()
stop_all() {
  local c code
  for c in "${started[@]}"; do
    [ "$c" = broker ] && continue
    # podman stop sends SIGTERM, waits the grace period, then SIGKILL: exit 0 means it drained.
    podman stop -t $((grace_ms / 1000 + 5)) "$prefix-$c" >/dev/null 2>&1 || true
    code=$(podman inspect --format '{{.State.ExitCode}}' "$prefix-$c" 2>/dev/null || echo missing)
    echo "exit $c $code" >>"$report"
    podman logs "$prefix-$c" >"$logs/$c.log" 2>&1 || true
  done
  podman stop -t 5 "$prefix-broker" >/dev/null 2>&1 || true
  podman logs "$prefix-broker" >"$logs/broker.log" 2>&1 || true
  echo "exit broker $(podman inspect --format '{{.State.ExitCode}}' "$prefix-broker" 2>/dev/null || echo missing)" >>"$report"
  for c in "${started[@]}"; do podman rm -f "$prefix-$c" >/dev/null 2>&1 || true; done
}
trap 'exit 0' TERM INT
trap stop_all EXIT

podman run -d --name "$prefix-broker" "${restricted[@]}" "${mounts[@]}" "$image" \
  agentline broker --state-dir "$state" >/dev/null
started+=(broker)
for _ in $(seq 1 100); do [ -s "$state/bootstrap" ] && break; sleep 0.1; done
[ -s "$state/bootstrap" ] || { podman logs "$prefix-broker" >&2; echo "in_container: no broker" >&2; exit 1; }
bootstrap=$(cat "$state/bootstrap")

urls=""
for i in "${!services[@]}"; do
  [ "${services[$i]}" = gateway ] && continue
  urls+="${urls:+,}${services[$i]}=http://127.0.0.1:$((base_port + i))"
done
for i in "${!services[@]}"; do
  s=${services[$i]}
  args=(--bootstrap-servers "$bootstrap" --http-port $((base_port + i)) --shutdown-grace-ms "$grace_ms" --state-dir "$state")
  extra=()
  [ "$s" = gateway ] && args+=(--dlq-url "http://127.0.0.1:$((base_port + 5))" --service-urls "$urls")
  [ "$s" = qa-worker ] && extra=("${sandbox_opts[@]}")
  podman run -d --name "$prefix-$s" "${restricted[@]}" "${extra[@]}" "${mounts[@]}" "$image" "$s" "${args[@]}" >/dev/null
  started+=("$s")
done

# Every service's /readyz answers 200 within a minute (the gateway's, the job page's, too).
for i in "${!services[@]}"; do
  code=000
  for _ in $(seq 1 600); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base_port + i))/readyz" || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  echo "readyz ${services[$i]} $code" >>"$report"
done
for s in broker "${services[@]}"; do
  podman inspect --format "settings $s user={{.Config.User}} readonly={{.HostConfig.ReadonlyRootfs}} capadd={{.HostConfig.CapAdd}} caps={{.EffectiveCaps}} nonewprivs={{.HostConfig.SecurityOpt}}" \
    "$prefix-$s" >>"$report"
done
while true; do sleep 0.2 & wait $!; done
