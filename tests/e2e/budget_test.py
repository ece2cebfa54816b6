#!/usr/bin/env python3
"""A job's budget stops its work, and raising it lets the work go on (docs/llm-economics.md).

    budget_test.py BIN_DIR SRC_DIR

`agentline up` with the embedded broker on the template backend (deterministic; its usage is
estimated from the text, so every call costs tokens). Job "bud" has a budget of 1 token:
- its first file is generated (the budget is checked before a call, not within it), charged to
  the file and the job, and the job's budget is then exhausted (agentline status --json);
- a second file of the job submitted afterwards is not generated: dev-fix-worker dead-letters it
  as budget_exhausted (a DLQ record with the reason, an ESCALATED event, the file dead-lettered
  on the job's progress, the metric);
- `agentline budget bud --tokens 100000000` raises it; `dlq-escalator replay` sends the task
  back and it is delivered; `agentline status` shows what the job spent against its budget.
A job without a budget is never stopped.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from harness import Stack, check, finish, log, metric_sum  # noqa: E402


def task(job, n, path, budget=None):
    t = {"id": f"{job}-m{n}", "task_id": f"{job}-t{n}", "job_id": job, "type": "DEV_TASK",
         "created_at": "2026-12-03T10:00:00Z",
         "payload": {"path": path, "description": f"module {n}", "language": "python"}}
    if budget:
        t["payload"]["budget"] = budget
    return t


def submit(stack, work, tasks, name):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    stack.cli("submit", path)


def status(stack, job):
    out = stack.cli("status", job, "--json", check=False).stdout.strip()
    return json.loads(out) if out else {}


def wait_for(what, predicate, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    check(False, f"timed out waiting for {what}")
    return None


def main():
    bin_dir = sys.argv[1]
    work = tempfile.mkdtemp(prefix="agentline-budget-")
    stack = Stack(bin_dir, work, {"AGENTLINE_SESSION_TIMEOUT_MS": "6000"})
    try:
        stack.wait_ready()
        submit(stack, work, [task("bud", 1, "bud/a.py", {"tokens": 1}), task("free", 1, "free/a.py")], "first.jsonl")
        doc = wait_for("bud/a.py delivered", lambda: (lambda d: d if d.get("files", {}).get("bud/a.py", {})
                                                      .get("status") == "delivered" else None)(status(stack, "bud")))
        doc = doc or {}
        spent = doc.get("usage", {}).get("tokens", 0)
        check(spent > 1 and doc.get("files", {}).get("bud/a.py", {}).get("usage", {}).get("tokens") == spent,
              f"the first file's call is charged to the file and the job: {doc.get('usage')}")
        check(doc.get("budget", {}).get("exhausted") is True, f"the budget of 1 token is spent: {doc.get('budget')}")
        time.sleep(1)  # dev-fix-worker reads the job's summary from jobs.progress

        submit(stack, work, [task("bud", 2, "bud/b.py"), task("free", 2, "free/b.py")], "second.jsonl")
        doc = wait_for("bud/b.py dead-lettered", lambda: (lambda d: d if d.get("files", {}).get("bud/b.py", {})
                                                          .get("status") == "dead_lettered" else None)(status(stack, "bud")))
        reason = ((doc or {}).get("files", {}).get("bud/b.py", {})).get("reason", "")
        check(reason.startswith("budget_exhausted"), f"the job's progress says why: {reason}")
        records = wait_for("the DLQ record", lambda: [r for r in stack.dlq_records() if r.get("job_id") == "bud"])
        check(records and records[0]["reason"] == "budget_exhausted" and "agentline budget bud" in records[0]["message"],
              f"one DLQ record, budget_exhausted, saying how to go on: {records}")
        escalated = wait_for("the escalation", lambda: [v for _, v in stack.topic("escalations")
                                                       if v.get("job_id") == "bud"])
        check(escalated and "budget_exhausted" in json.dumps(escalated[0]), f"an ESCALATED event: {escalated}")
        metrics = stack.scrape("dev-fix-worker") or {}
        stopped = metric_sum(metrics, "agentline_tasks_generated_total", outcome="budget_exhausted")
        check(stopped >= 1, f"dev-fix-worker counts the task it stopped: {stopped}")
        free = wait_for("free/b.py delivered", lambda: (lambda d: d if d.get("files", {}).get("free/b.py", {})
                                                        .get("status") == "delivered" else None)(status(stack, "free")))
        check(free is not None and "budget" not in free, "a job without a budget goes on")

        r = stack.cli("budget", "bud", "--tokens", "100000000", check=False)
        check(r.returncode == 0, f"agentline budget: {r.returncode} {r.stdout} {r.stderr}")
        wait_for("the raised budget", lambda: status(stack, "bud").get("budget", {}).get("tokens") == 100000000)
        check(status(stack, "bud").get("budget", {}).get("exhausted") is False, "raised: no longer exhausted")
        time.sleep(1)
        r = subprocess.run([os.path.join(bin_dir, "dlq-escalator"), "replay", "--job", "bud", "--reason",
                            "budget_exhausted", "--db", os.path.join(stack.state, "dlq-escalator.db"),
                            "--bootstrap-servers", stack.bootstrap], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"dlq-escalator replay: {r.stdout} {r.stderr}")
        doc = wait_for("bud/b.py delivered after the replay",
                       lambda: (lambda d: d if d.get("files", {}).get("bud/b.py", {}).get("status") == "delivered"
                                else None)(status(stack, "bud")))
        text = stack.cli("status", "bud", "--files", check=False).stdout
        log("agentline status bud --files:\n" + text.rstrip())
        check("spent " in text and "budget 100000000 tokens" in text and "EXHAUSTED" not in text,
              f"agentline status shows the spending against the budget: {text}")
        check(doc is not None and doc.get("usage", {}).get("tokens", 0) > spent, "the replayed file was charged too")
    finally:
        stack.stop()
    finish(work)
    os.system(f"rm -rf {work}")


if __name__ == "__main__":
    main()
