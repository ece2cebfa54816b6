#!/usr/bin/env python3
"""Probe latency while dlq-escalator replays 10,000 records over HTTP (issue #20).

    replay_probes.py BIN_DIR OUT_DIR [--records N] [--rate R]

The embedded broker and dlq-escalator alone: N dead-letter records are produced (kcat), stored,
then replayed with POST /dlq/replay at R records a second while /healthz, /readyz and /metrics
are asked in turn every 50 ms. Appends a row (scenario "replay_probes") to OUT_DIR/pipeline.jsonl:
the replay's duration and the probes' latency percentiles during it, and the same without a
replay for comparison.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support"))
from harness import free_port, log  # noqa: E402

TOKEN = "bench-token"


def call(port, method, path, body=None, timeout=60):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def probe_latencies(port, until):
    out = []
    paths = ["/healthz", "/readyz", "/metrics"]
    i = 0
    while not until():
        started = time.time()
        try:
            call(port, "GET", paths[i % 3], timeout=30)
        except OSError:
            pass
        out.append((time.time() - started) * 1000)
        i += 1
        time.sleep(0.05)
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("out")
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=2000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="agentline-replay-probes-")
    state = os.path.join(work, "state")
    broker = subprocess.Popen([os.path.join(args.bin, "agentline"), "broker", "--state-dir", state],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    escalator = None
    try:
        for _ in range(200):
            if os.path.exists(os.path.join(state, "bootstrap")):
                break
            time.sleep(0.1)
        bootstrap = open(os.path.join(state, "bootstrap")).read().strip()
        port = free_port()
        with open(os.path.join(work, "token"), "w") as f:
            f.write(TOKEN + "\n")
        escalator = subprocess.Popen([os.path.join(args.bin, "dlq-escalator"), "--state-dir", state, "--http-port",
                                      str(port), "--api-token-file", os.path.join(work, "token"),
                                      "--db", os.path.join(work, "dlq.db")],
                                     stdout=open(os.path.join(work, "escalator.log"), "w"), stderr=subprocess.STDOUT)
        records = os.path.join(work, "dlq.txt")
        with open(records, "w") as f:
            for i in range(args.records):
                f.write(json.dumps({"task_id": f"t-{i}", "job_id": "burst"}) + "\n")
        # kcat: one header set for every record (-H), as a producer of dead letters would write them.
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", "agentline.dlq", "-l", records,
                        "-H", "agentline-original-topic=agentline.tasks.submitted",
                        "-H", "agentline-error-class=unsafe_path", "-H", "agentline-error-message=bench",
                        "-H", "agentline-failed-service=priority-assigner"], check=True, timeout=120)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                body = call(port, "GET", "/metrics")[1].decode()
                stored = sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
                             if line.startswith("agentline_dlq_stored_records{"))
                if stored >= args.records:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        quiet_end = time.time() + 5
        quiet = probe_latencies(port, lambda: time.time() > quiet_end)
        done = threading.Event()
        result = {}

        def replay():
            started = time.time()
            status, body = call(port, "POST", "/dlq/replay",
                                {"reason": "unsafe_path", "rate": args.rate, "limit": args.records}, timeout=600)
            report = json.loads(body)
            result.update(status=status, replayed=report["replayed"], seconds=time.time() - started)
            done.set()
        t = threading.Thread(target=replay)
        t.start()
        during = probe_latencies(port, done.is_set)
        t.join()
        row = {"scenario": "replay_probes", "broker": "embedded", "records": args.records, "rate": args.rate,
               "replayed": result.get("replayed"), "replay_s": result.get("seconds"), "probes_during": len(during),
               "during_ms_p50": statistics.median(during), "during_ms_p99": pct(during, 99),
               "during_ms_max": max(during), "quiet_ms_p50": statistics.median(quiet), "quiet_ms_p99": pct(quiet, 99)}
        log(json.dumps(row))
        with open(os.path.join(args.out, "pipeline.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
    finally:
        for p in (escalator, broker):
            if p and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)


if __name__ == "__main__":
    main()
