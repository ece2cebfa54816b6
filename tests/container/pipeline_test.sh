#!/usr/bin/env bash
# The image runs the pipeline (label "container"): scripts/build-image.sh builds docker/Dockerfile
# with podman (installing podman, runc and debootstrap if missing; any failure fails the test),
# then tests/e2e/demo_test.sh, the test of `make run`, runs unchanged with every binary replaced by
# tests/container/in_container.sh: the embedded broker, the six services and the gateway are eight
# containers of the image with the chart's restricted settings, and the CLI, kcat's broker and the
# stores' readers are containers too. On top of the demo's assertions: every /readyz answered 200,
# every container drained and exited 0 on SIGTERM, each ran as 10001 with a read-only root and no
# capabilities, and qa-worker's bubblewrap sandbox checked the files inside its container.
set -euo pipefail
root=$(cd "$1" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

image=$(bash "$root/scripts/build-image.sh")
# shellcheck source=../../scripts/lib/cache.sh
. "$root/scripts/lib/cache.sh"
# shellcheck source=../../scripts/lib/podman.sh
. "$root/scripts/lib/podman.sh"
agentline_podman_setup

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
for b in agentline priority-assigner dev-fix-worker qa-worker router outbox-uploader dlq-escalator gateway; do
  ln -s "$root/tests/container/in_container.sh" "$work/bin/$b"
done
export AGENTLINE_TEST_IMAGE=$image AGENTLINE_TEST_ROOT=$root AGENTLINE_TEST_REPORT=$work/report
: >"$work/report"

echo "== the image: $image, $(($(podman image inspect --format '{{.Size}}' "$image") / 1000000)) MB"
[ "$(podman image inspect --format '{{.Config.User}}' "$image")" = 10001:10001 ] || fail "the image does not run as 10001"
podman run --rm "$image" sh -c 'agentline --version' | grep -q 'librdkafka 2.14.2' ||
  fail "the image's binaries do not carry librdkafka 2.14.2: $(podman run --rm "$image" agentline --version)"

if ! bash "$root/tests/e2e/demo_test.sh" "$work/bin" "$root"; then
  for f in "$work"/logs/*.log; do echo "== $f (last 20 lines)"; tail -20 "$f"; done
  fail "the demo failed in containers"
fi

echo "== what the containers did"
cat "$work/report"
for s in priority-assigner dev-fix-worker qa-worker router outbox-uploader dlq-escalator gateway; do
  grep -qx "readyz $s 200" "$work/report" || fail "$s's /readyz did not answer 200"
  grep -qx "exit $s 0" "$work/report" || fail "$s did not exit 0 after SIGTERM"
done
grep -qx "exit broker 0" "$work/report" || fail "the broker did not exit 0 after SIGTERM"
[ "$(grep -c '^settings .* user=10001:10001 readonly=true capadd=\[\] caps=\[\] nonewprivs=\[no-new-privileges' "$work/report")" = 8 ] ||
  fail "not every container ran as 10001, read-only, without capabilities"
echo "1 passed, 0 failed"
