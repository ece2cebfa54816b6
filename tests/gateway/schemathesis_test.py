#!/usr/bin/env python3
"""schemathesis against docs/openapi.yaml on a live gateway (with the pipeline behind it).

    schemathesis_test.py BIN_DIR SRC_DIR SCHEMATHESIS_EXE [MAX_EXAMPLES]

Every operation is called with generated valid and invalid data; every check schemathesis has
runs (no 5xx, status codes, content types, headers and bodies as documented, invalid data
rejected, auth enforced). The event stream answers quickly here: a job that does not exist
gets its error event after 300 ms.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from harness import Stack  # noqa: E402

TOKEN = "schema-token"


def main():
    bin_dir, root, exe = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    max_examples = sys.argv[4] if len(sys.argv) > 4 else "40"
    work = tempfile.mkdtemp(prefix="agentline-schemathesis-")
    stack = Stack(bin_dir, work, {"AGENTLINE_API_TOKEN": TOKEN, "AGENTLINE_UNKNOWN_JOB_WAIT_MS": "300",
                                  "AGENTLINE_SSE_HEARTBEAT_MS": "100"})
    try:
        stack.wait_ready()
        url = f"http://127.0.0.1:{stack.port('gateway')}"
        r = subprocess.run([exe, "--config-file", os.path.join(root, "tests/gateway/schemathesis.toml"), "run",
                            os.path.join(root, "docs/openapi.yaml"), "--url", url,
                            "-H", f"Authorization: Bearer {TOKEN}",
                            "--max-examples", max_examples, "--seed", "7", "--workers", "2",
                            "--request-timeout", "20"],
                           cwd=work, timeout=900)
        ok = r.returncode == 0
    finally:
        stack.stop()
    if not ok:
        print("--- agentline up (last lines)\n" + stack.tail_log(30))
        return 1
    subprocess.run(["rm", "-rf", work])
    print("PASS: schemathesis found nothing against docs/openapi.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
