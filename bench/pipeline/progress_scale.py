#!/usr/bin/env python3
"""Job progress at scale (issue #20): a 10,000-file job and a 100-job burst through all six
services and the gateway, with 64 Server-Sent Events clients on the big job.

    progress_scale.py BIN_DIR OUT_DIR [--files N] [--burst-jobs J] [--clients C] [--retention 60s]

Reports (a row appended to OUT_DIR/pipeline.jsonl, scenario "progress_scale"):
  - bytes and events each SSE client received from its first event to `final`;
  - the gateway's lag behind the pipeline: every 0.5 s the files the outbox has uploaded
    (its metric) against the files the gateway shows delivered (GET /api/jobs), and the time
    from the big job's last upload to the gateway's `final` event;
  - GET /api/jobs latency over the run (sampled every 0.5 s);
  - the gateway's resident memory during the run, after it, and after the router's retention
    (--job-retention) tombstoned the finished jobs.
The embedded broker, the offline template generator and the filesystem target: the pipeline's
own speed is not what is measured here.
"""
import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "support"))
from harness import Stack, log, metric_sum  # noqa: E402


def write_jobs(path, big, burst_jobs, burst_files):
    with open(path, "w") as f:
        def task(job, i, file_path):
            f.write(json.dumps({"id": f"{job}-m{i}", "task_id": f"{job}-t{i}", "job_id": job, "type": "DEV_TASK",
                                "created_at": "2026-12-02T10:00:00Z",
                                "payload": {"path": file_path, "description": f"note {i}"}})
                    + "\n")
        # Text files: QA has no checker for them, so the pipeline runs at the speed of its
        # plumbing (on 2 cores, pyflakes on 10,000 Python files would take a quarter of an hour).
        for i in range(big):
            task("big", i, f"notes{i % 50}/note_{i:05d}.txt")
        for j in range(burst_jobs):
            for i in range(burst_files):
                task(f"burst-{j:03d}", i, f"n{i}.txt")


class SseClient(threading.Thread):
    """One event stream, read to its `final` event: bytes, events, when it ended."""

    def __init__(self, port, job):
        super().__init__(daemon=True)
        self.port, self.job = port, job
        self.bytes = self.events = 0
        self.final_at = None
        self.error = None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=600)
            s.sendall(f"GET /api/progress/stream/{self.job} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                self.bytes += len(chunk)
                buf += chunk
                while b"\n\n" in buf:
                    event, buf = buf.split(b"\n\n", 1)
                    if b"\nevent: " in b"\n" + event or event.startswith(b"event: "):
                        self.events += 1
                    if b"event: final" in event:
                        self.final_at = time.time()
                        s.close()
                        return
        except OSError as e:
            self.error = repr(e)


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def lag_seconds(samples):
    """For each (t, uploaded, shown) sample, how long ago the outbox had uploaded `shown` files."""
    out = []
    for i, (t, uploaded, shown) in enumerate(samples):
        if uploaded <= shown:
            out.append(0.0)
            continue
        j = max((k for k in range(i) if samples[k][1] <= shown), default=-1)
        out.append(t - samples[j + 1][0])
    return out


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--burst-jobs", type=int, default=100)
    ap.add_argument("--burst-files", type=int, default=10)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--retention", default="60s")
    ap.add_argument("--deadline-s", type=int, default=1200)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="agentline-progress-scale-")
    log(f"work folder {work}")
    env = {"AGENTLINE_JOB_RETENTION": args.retention, "AGENTLINE_MAX_STREAMS": str(args.clients + 8)}
    stack = Stack(args.bin, work, env)
    row = {"scenario": "progress_scale", "broker": "embedded", "files": args.files, "burst_jobs": args.burst_jobs,
           "burst_files": args.burst_files, "clients": args.clients, "retention": args.retention}
    try:
        stack.wait_ready()
        gw_port = stack.port("gateway")
        gw_pid = stack.children().get("gateway")
        row["gateway_rss_idle"] = rss_of(gw_pid)
        tasks = os.path.join(work, "tasks.jsonl")
        write_jobs(tasks, args.files, args.burst_jobs, args.burst_files)
        total = args.files + args.burst_jobs * args.burst_files
        t0 = time.time()
        stack.cli("submit", tasks, timeout=600)
        log(f"submitted {total} tasks in {time.time() - t0:.1f} s")
        # The clients follow the big job from its first record on.
        deadline = time.time() + 120
        while stack.api("GET", "/api/jobs/big")[0] != 200 and time.time() < deadline:
            time.sleep(0.2)
        clients = [SseClient(gw_port, "big") for _ in range(args.clients)]
        for c in clients:
            c.start()
        samples, list_ms, rss = [], [], []
        # Every sample also goes to OUT/progress_scale_series.jsonl: when a spike of lag or of
        # list latency happens, and what each process was doing (CPU seconds) at the time.
        series = open(os.path.join(args.out, "progress_scale_series.jsonl"), "w")
        pids = stack.children()
        outbox_done_at = None
        list_timeouts = 0
        while time.time() < t0 + args.deadline_s:
            started = time.time()
            try:
                status, body = stack.api("GET", "/api/jobs")
            except OSError:  # the 30 s timeout: counted, and the sample is the timeout
                status, body, list_timeouts = 0, {}, list_timeouts + 1
            list_ms.append((time.time() - started) * 1000)
            shown = sum(j.get("counts", {}).get("delivered", 0) for j in body.get("jobs", [])) if status == 200 else 0
            uploaded = metric_sum(stack.scrape("outbox-uploader") or {}, "agentline_outbox_uploads_total",
                                  outcome="uploaded")
            samples.append((time.time() - t0, uploaded, shown))
            rss.append(rss_of(gw_pid))
            gw = stack.scrape("gateway") or {}
            series.write(json.dumps({
                "t": round(time.time() - t0, 2), "uploaded": uploaded, "shown": shown, "list_ms": round(list_ms[-1], 1),
                "rss": rss[-1],
                "delay_le_1s": sum(v for (n, labels), v in gw.items()
                                   if n == "agentline_gateway_progress_delay_seconds_bucket"
                                   and dict(labels).get("le") not in (None, "+Inf") and float(dict(labels)["le"]) == 1.0),
                "delay_count": metric_sum(gw, "agentline_gateway_progress_delay_seconds_count"),
                "cpu": {name: cpu_seconds(pid) for name, pid in pids.items()}}) + "\n")
            if uploaded >= total and outbox_done_at is None:
                outbox_done_at = time.time()
            if all(c.final_at or c.error for c in clients) and outbox_done_at:
                break
            time.sleep(max(0.0, 0.5 - (time.time() - started)))
        series.close()
        finals = [c.final_at for c in clients if c.final_at]
        row.update({
            "run_s": time.time() - t0,
            "clients_final": len(finals),
            "client_errors": sorted({c.error for c in clients if c.error}),
            "bytes_per_client_median": statistics.median(c.bytes for c in clients),
            "bytes_per_client_max": max(c.bytes for c in clients),
            "events_per_client_median": statistics.median(c.events for c in clients),
            "lag_files_max": max(u - s for _, u, s in samples),
            "lag_files_median": statistics.median(u - s for _, u, s in samples),
            # The same in seconds: how long ago the outbox had uploaded what the gateway shows
            # now (from the 0.5 s samples: the later bound of the interval it happened in).
            "lag_s_median": statistics.median(lag_seconds(samples)),
            "lag_s_max": max(lag_seconds(samples)),
            "final_after_last_upload_s": (max(finals) - outbox_done_at) if finals and outbox_done_at else None,
            "list_ms_p50": statistics.median(list_ms),
            "list_ms_p99": sorted(list_ms)[int(0.99 * (len(list_ms) - 1))],
            "list_ms_max": max(list_ms),
            "list_timeouts": list_timeouts,
            "gateway_rss_max": max(rss),
            "gateway_rss_end": rss_of(gw_pid),
            "jobs_before_retention": len(stack.api("GET", "/api/jobs")[1].get("jobs", [])),
        })
        # The gateway's own lag behind jobs.progress (its histogram, records applied while following).
        scrape = stack.scrape("gateway") or {}
        buckets = {float(dict(labels)["le"]): v for (name, labels), v in scrape.items()
                   if name == "agentline_gateway_progress_delay_seconds_bucket" and dict(labels).get("le") != "+Inf"}
        total_obs = metric_sum(scrape, "agentline_gateway_progress_delay_seconds_count")
        if total_obs:
            row["gateway_delay_records"] = total_obs
            row["gateway_delay_le_1s_share"] = buckets.get(1.0, 0) / total_obs
            row["gateway_delay_p99_le_s"] = next((le for le in sorted(buckets) if buckets[le] >= 0.99 * total_obs),
                                                 float("inf"))
        # Retention: the finished jobs leave the router and the gateway.
        deadline = time.time() + 300
        while time.time() < deadline and stack.api("GET", "/api/jobs")[1].get("jobs"):
            time.sleep(2)
        row["jobs_after_retention"] = len(stack.api("GET", "/api/jobs")[1].get("jobs", []))
        row["gateway_rss_after_retention"] = rss_of(gw_pid)
        log(json.dumps(row))
    finally:
        stack.stop()
    with open(os.path.join(args.out, "pipeline.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
