#!/usr/bin/env python3
"""Browser test of the live job page: the pipeline under `agentline up` (embedded broker, the
template generator, the filesystem target, the gateway with a token), then job_page.mjs in
headless Chromium. Needs Debian's chromium and `npm ci` in tests/browser (make test does both).

    run_test.py BIN_DIR SRC_DIR SCREENSHOT_PATH
"""
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "support"))
from harness import Stack  # noqa: E402


def main():
    bin_dir, root, screenshot = sys.argv[1:4]
    os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
    if not os.path.isdir(os.path.join(here, "node_modules", "playwright-core")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=here, check=True)
    work = tempfile.mkdtemp(prefix="agentline-browser-")
    stack = Stack(bin_dir, work, {"AGENTLINE_API_TOKEN": "page-token"})
    try:
        stack.wait_ready()
        url = f"http://127.0.0.1:{stack.port('gateway')}/"
        r = subprocess.run(["node", os.path.join(here, "job_page.mjs"), url, "page-token", screenshot], timeout=300)
        ok = r.returncode == 0 and os.path.exists(screenshot)
    finally:
        stack.stop()
    if not ok:
        print("--- agentline up (last lines)\n" + stack.tail_log(40))
        return 1
    subprocess.run(["rm", "-rf", work])
    print(f"PASS: the job page followed a job to 100% in Chromium; screenshot {screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
