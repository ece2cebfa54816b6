#!/usr/bin/env python3
"""Job progress equals the truth after the router and the gateway are SIGKILLed during a job.

    progress_truth.py BIN_DIR SRC_DIR [--files N] [--jobs J] [--kills K]

N valid files over J jobs, and in each job one file whose path the filesystem would refuse
(a 300-byte segment: priority-assigner dead-letters it as unsafe_path). While the jobs run, the router is SIGKILLed every 1.5-2.5 s (the supervisor restarts it; it reads its
progress back and its events again from the last committed offset), and every third time the
gateway too. Then, file by file, the truth is read where users meet it — the delivered folder
and the DLQ store (dlq-escalator list) — and compared with what the gateway and jobs.progress
(the router's records, folded) say:
  - every file's status is `delivered` when it is on disk, `dead_lettered` (with the DLQ
    record's reason) when the DLQ holds it; no file is left in between;
  - the counters equal those numbers, none passes files_total, percent is 100, the job is
    complete, and `agentline status JOB --wait --delivered` exits 0.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from harness import Stack, check, finish, log, write_tasks  # noqa: E402


def fold(records):
    """jobs.progress as readers fold it: {job: {"summary": s, "files": {path: f}}}, latest version per key."""
    jobs = {}
    for key, value in records:
        job_id, _, path = key.partition("/")
        job = jobs.setdefault(job_id, {"summary": None, "files": {}})
        if path:
            old = job["files"].get(path)
            if old is None or old.get("version", 0) <= value.get("version", 0):
                job["files"][path] = value
        elif job["summary"] is None or job["summary"].get("version", 0) <= value.get("version", 0):
            job["summary"] = value
    return jobs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("root")
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--deadline-s", type=int, default=240)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="agentline-progress-")
    log(f"work folder {work}")
    stack = Stack(args.bin, work, {"AGENTLINE_SESSION_TIMEOUT_MS": "6000"})
    try:
        stack.wait_ready()
        tasks_file = os.path.join(work, "tasks.jsonl")
        tasks = write_tasks(tasks_file, args.files, args.jobs, "truth")
        jobs = sorted({job for job, _ in tasks.values()})
        stack.cli("submit", tasks_file)
        # One file per job that the filesystem would refuse (`agentline submit` refuses it, so it
        # comes from another producer): dead-lettered at the door.
        bad_file = os.path.join(work, "bad.jsonl")
        with open(bad_file, "w") as f:
            for job in jobs:
                path = "bad/" + "x" * 300 + ".py"
                task_id = f"{job}-long"
                tasks[task_id] = (job, path)
                f.write(json.dumps({"id": f"{job}-long-m", "task_id": task_id, "job_id": job, "type": "DEV_TASK",
                                    "created_at": "2026-12-02T10:00:00Z",
                                    "payload": {"path": path, "description": "too long", "language": "python"}})
                        + "\n")
        subprocess.run(["kcat", "-P", "-b", stack.bootstrap, "-t", "agentline.tasks.submitted", "-l", bad_file],
                       check=True, timeout=60)
        delivered_root = os.path.join(stack.state, "delivered")

        # The kills are spread over the job by its progress, not by the clock (a faster pipeline
        # finished the job before the last of six timed kills): kill k of K when k/K of 60 % of
        # the files are on disk, at least half a second after the one before (the supervisor
        # restarts it in between).
        kills = {"router": 0, "gateway": 0}
        on_disk_at_kills = []
        last_kill = 0.0
        kill_deadline = time.time() + args.deadline_s
        while kills["router"] < args.kills and time.time() < kill_deadline:
            time.sleep(0.1)
            on_disk = sum(os.path.exists(os.path.join(delivered_root, j, p)) for j, p in tasks.values())
            threshold = (kills["router"] + 1) * args.files * 3 // (5 * args.kills)
            if on_disk < threshold or time.time() - last_kill < 0.5:
                continue
            if stack.kill("router"):
                last_kill = time.time()
                kills["router"] += 1
                on_disk_at_kills.append(on_disk)
                if kills["router"] % 3 == 0 and stack.kill("gateway"):
                    kills["gateway"] += 1
                log(f"kills {kills}; {on_disk} of {args.files} files on disk")
        check(kills["router"] == args.kills and on_disk_at_kills and max(on_disk_at_kills) < args.files,
              f"every kill came before the job ended (files on disk at each: {on_disk_at_kills} of {args.files})")
        stack.wait_ready()

        # The truth, where users meet it.
        deadline = time.time() + args.deadline_s
        while time.time() < deadline:
            on_disk = {t for t, (j, p) in tasks.items() if os.path.exists(os.path.join(delivered_root, j, p))}
            dead = {r["task_id"]: r for r in stack.dlq_records() if r.get("task_id") in tasks}
            if len(on_disk) + len(dead) >= len(tasks):
                break
            time.sleep(1)
        check(len(on_disk) + len(dead) == len(tasks),
              f"every file delivered or dead-lettered: {len(on_disk)} delivered + {len(dead)} DLQ of {len(tasks)}")
        check(on_disk.isdisjoint(dead), "no file both delivered and dead-lettered")
        check(len(dead) == len(jobs) and all(r["reason"] == "unsafe_path" for r in dead.values()),
              f"the DLQ holds the {len(jobs)} unsafe paths, as unsafe_path: {sorted(r['reason'] for r in dead.values())}")

        # What users are shown: the gateway (waiting until it says complete) and jobs.progress.
        docs = stack.wait_jobs(jobs, 120)
        folded = fold(stack.topic("jobs.progress"))
        for job in jobs:
            mine = {t: p for t, (j, p) in tasks.items() if j == job}
            truth = {p: ("delivered" if t in on_disk else "dead_lettered" if t in dead else "missing")
                     for t, p in mine.items()}
            for source, doc in (("gateway", docs.get(job) or {}),
                                ("jobs.progress", dict(folded.get(job, {}).get("summary") or {},
                                                       files=folded.get(job, {}).get("files", {})))):
                files = doc.get("files", {})
                wrong = {p: (files.get(p, {}).get("status"), want) for p, want in truth.items()
                         if files.get(p, {}).get("status") != want}
                check(not wrong, f"{source} {job}: every file's status is the truth "
                                 f"({len(wrong)} differ: {dict(list(wrong.items())[:5])})")
                counts = doc.get("counts", {})
                n_del = sum(1 for s in truth.values() if s == "delivered")
                n_dead = sum(1 for s in truth.values() if s == "dead_lettered")
                check(doc.get("files_total") == len(truth) and counts.get("delivered") == n_del
                      and counts.get("dead_lettered") == n_dead and doc.get("percent") == 100,
                      f"{source} {job}: files_total {doc.get('files_total')} (truth {len(truth)}), delivered "
                      f"{counts.get('delivered')} ({n_del}), dead-lettered {counts.get('dead_lettered')} ({n_dead}), "
                      f"percent {doc.get('percent')}")
                over = {k: v for k, v in counts.items() if k != "fixes" and v > len(truth)}
                check(not over, f"{source} {job}: no counter passes the file count {over}")
                long_path = next(p for t, p in mine.items() if t.endswith("-long"))
                reason = files.get(long_path, {}).get("reason", "")
                check(reason.startswith("unsafe_path: path has a segment longer than 255 bytes"),
                      f"{source} {job}: the refused file shows its reason: {reason[:60]!r}...")
            check(docs.get(job, {}).get("complete") is True, f"gateway {job}: complete")
            status = stack.cli("status", job, "--wait", "30", "--delivered", check=False)
            check(status.returncode == 0, f"agentline status {job} --wait 30 --delivered exits 0 "
                                          f"(got {status.returncode}: {status.stdout.strip()[-200:]})")
        restarts = stack.restarts()
        check(restarts.get("router", 0) >= args.kills, f"the supervisor restarted the router {restarts.get('router')} "
                                                       f"times (killed {kills['router']})")
        log(f"kills {kills}, restarts {restarts}")
    finally:
        stack.stop()
    finish(work)


if __name__ == "__main__":
    main()
