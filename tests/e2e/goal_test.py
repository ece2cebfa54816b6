#!/usr/bin/env python3
"""Goals through the whole pipeline on the template backend (deterministic): `agentline up` with
the embedded broker, the six services and the gateway.

    goal_test.py BIN_DIR SRC_DIR

Three goals, one through each door: the gateway (POST /api/jobs {"goal"}), the CLI
(`agentline submit --goal`) and a PLAN_TASK published with kcat. Checks, per docs/planning.md:
- the first plan of the gateway's goal is invalid on purpose: it is asked for again with its
  errors and the second is accepted (plan attempt 1 on the job's progress);
- every planned file is released once, after every file it depends on passed QA, with their
  content in its task; the delivered Python package imports (the template writes imports of
  what it finds in its dependencies' content);
- a file that never passes goes back to the planner once (REPLAN_TASK, an ESCALATED record with
  action replan), is revised with a new helper file, and is delivered;
- a chain of files, each depending on the one before, released one by one while the router is
  SIGKILLed again and again: every file is released under one task id, delivered exactly once,
  and the job completes.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Stack, check, log  # noqa: E402


def planned_and_ended(doc):
    return doc.get("complete") and doc.get("plan", {}).get("status") == "accepted" and all(
        f["status"] in ("delivered", "dead_lettered") for f in doc.get("files", {}).values())


def main():
    bin_dir = sys.argv[1]
    work = tempfile.mkdtemp(prefix="agentline-goal-")
    stack = Stack(bin_dir, work, {"AGENTLINE_SESSION_TIMEOUT_MS": "6000"})
    try:
        stack.wait_ready()
        # 1. The gateway: an invalid first plan, and a file that only passes once replanned.
        status, body = stack.api("POST", "/api/jobs", {
            "job_id": "calc", "goal": "A calculator CLI [demo:plan-invalid-once] [demo:replan]",
            "constraints": {"language": "python", "max_files": 5}, "tenant": "acme"})
        check(status == 202 and body.get("job_id") == "calc", f"gateway accepted the goal: {status} {body}")
        status, body = stack.api("POST", "/api/jobs", {"goal": "x", "constraints": {"max_files": 0}})
        check(status == 400, f"an invalid constraint is refused with the reason: {status} {body}")
        # 2. The CLI.
        r = stack.cli("submit", "--goal", "A todo list", "--job-id", "todo", "--max-files", "4", check=False)
        check(r.returncode == 0 and "submitted 1" in r.stdout, f"agentline submit --goal: {r.stdout} {r.stderr}")
        # 3. Any Kafka producer: a PLAN_TASK with kcat.
        plan_task = {"id": "plan-notes", "task_id": "notes:plan", "job_id": "notes", "type": "PLAN_TASK",
                     "created_at": "2026-12-02T10:00:00Z", "payload": {"goal": "A notes app"}}
        subprocess.run(["kcat", "-P", "-b", stack.bootstrap, "-t", "agentline.tasks.submitted", "-k", "notes:plan"],
                       input=json.dumps(plan_task) + "\n", text=True, check=True, timeout=30)

        docs = stack.wait_jobs(["calc", "todo", "notes"], 180, planned_and_ended)
        for job in ["calc", "todo", "notes"]:
            doc = docs.get(job, {})
            statuses = sorted(f["status"] for f in doc.get("files", {}).values())
            check(doc.get("complete") and statuses and set(statuses) == {"delivered"},
                  f"{job}: every planned file delivered: {statuses} plan={doc.get('plan')}")
        calc = docs.get("calc", {})
        check(calc.get("plan", {}).get("attempt") == 1, f"calc: one plan-fix attempt: {calc.get('plan')}")
        check("calculator_cli/helpers.py" in calc.get("files", {}), "calc: the replan added a helper file")
        check(calc.get("counts", {}).get("replans") == 1, f"calc: one replan: {calc.get('counts')}")

        # Release order and content: each released task carries its dependencies' delivered content.
        released = [v for _, v in stack.topic("tasks.submitted") if v.get("type") == "DEV_TASK"]
        by_job = {}
        for t in released:
            by_job.setdefault(t["job_id"], []).append(t)
        delivered_root = os.path.join(stack.state, "delivered")
        for job, tasks in by_job.items():
            ids = [t["task_id"] for t in tasks]
            check(len(ids) == len(set(ids)), f"{job}: every file released exactly once ({len(ids)} releases)")
            for t in tasks:
                p = t["payload"]
                deps = [f for f in p["job"]["files"] if f["path"] == p["path"]][0].get("depends_on", [])
                given = {c["path"]: c["content"] for c in p.get("context_files", []) if c["relation"] == "dependency"}
                for d in deps:
                    on_disk = os.path.join(delivered_root, job, d)
                    if not check(d in given, f"{job}: {p['path']} was released with {d}'s content"):
                        continue
                    if os.path.exists(on_disk):
                        check(open(on_disk).read() == given[d], f"{job}: {d} in {p['path']}'s task is what was delivered")
        plans = [v for _, v in stack.topic("events") if v.get("type") in ("PLAN_COMPLETED", "PLAN_REJECTED")]
        check([p["type"] for p in plans if p["job_id"] == "calc" and "replan_of" not in p["payload"]] ==
              ["PLAN_REJECTED", "PLAN_COMPLETED"], "calc: the invalid plan was rejected, then one accepted")
        escalations = [v for _, v in stack.topic("escalations") if v.get("payload", {}).get("action") == "replan"]
        check(len(escalations) == 1 and escalations[0]["payload"]["path"] == "calculator_cli/cli.py",
              f"the escalations topic records the replan: {escalations}")

        # The delivered package imports: files that know their job fit together.
        r = subprocess.run([sys.executable, "-c", "import calculator_cli.cli, calculator_cli.core; "
                            "print(calculator_cli.cli.cli_info(), calculator_cli.core.core_info())"],
                           cwd=os.path.join(delivered_root, "calc"), capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and r.stdout.split() == ["cli", "core"], f"calc imports: {r.stdout} {r.stderr}")
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests"], cwd=os.path.join(delivered_root, "calc"),
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"calc's delivered tests pass: {r.stdout[-300:]} {r.stderr[-300:]}")

        # 4. A chain released one by one while the router is SIGKILLed again and again.
        chain = 20
        status, _ = stack.api("POST", "/api/jobs", {"job_id": "chain", "goal": f"A chain [demo:chain-{chain}]",
                                                      "constraints": {"max_files": chain + 1}})
        check(status == 202, "chain goal accepted")
        kills = 0
        deadline = time.time() + 300
        doc = {}
        while time.time() < deadline:
            status, doc = stack.api("GET", "/api/jobs/chain")
            if status == 200 and doc.get("complete") and doc.get("files_total") == chain + 1:
                break
            up = stack.uptimes().get("router", 0)
            if kills < 6 and up > 4 and status == 200 and doc.get("files_done", 0) > 0:
                if stack.kill("router"):
                    kills += 1
                    log(f"SIGKILLed the router ({kills}) at {doc.get('files_done')}/{doc.get('files_total')} done")
            time.sleep(0.5)
        check(kills >= 3, f"the router was killed mid-job {kills} times")
        check(doc.get("complete") and doc.get("files_done") == chain + 1,
              f"chain: complete after the kills: {doc.get('files_done')}/{doc.get('files_total')}")
        releases = [v["task_id"] for _, v in stack.topic("tasks.submitted")
                    if v.get("type") == "DEV_TASK" and v["job_id"] == "chain"]
        planned = {f["task_id"] for f in doc.get("files", {}).values()}
        check(set(releases) == planned and len(planned) == chain + 1,
              f"chain: every file released, under one task id each: {len(set(releases))} of {len(planned)}")
        log(f"chain: {len(releases)} release records for {len(set(releases))} files "
            f"({len(releases) - len(set(releases))} copies with the same ids, absorbed downstream)")
        uploads = [v["task_id"] for _, v in stack.topic("events")
                   if v.get("type") == "UPLOADED" and v["job_id"] == "chain"]
        check(sorted(uploads) == sorted(planned), f"chain: every file delivered exactly once ({len(uploads)} uploads)")
        r = subprocess.run([sys.executable, "-c", f"import chain.step{chain:03d} as m; print(m.step{chain:03d}_info())"],
                           cwd=os.path.join(delivered_root, "chain"), capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, f"the chain's last module imports the whole chain: {r.stdout} {r.stderr}")
    finally:
        stack.stop()
    harness.finish(stack.log_path)


if __name__ == "__main__":
    main()
