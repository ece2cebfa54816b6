#!/usr/bin/env python3
"""Job checks through the whole pipeline on the template backend (deterministic): `agentline up`
with the embedded broker, the six services and the gateway.

    job_check_test.py BIN_DIR SRC_DIR

Jobs whose files each pass their own checks but do not work together (docs/qa.md), submitted as
goals with a supplied plan:
- pyfix: a CLI importing a name its core does not define, and a test that fails. The job check
  names both files; each gets one fix with the diagnostics; the second job check passes; only then
  is anything delivered, and the delivered package imports and its tests pass.
- pynever: a CLI that never imports. After job_fix_limit (2) rounds it is dead-lettered as
  job_qa_failed with the diagnostics (in the DLQ store), its core is delivered, the CLI is not,
  and `agentline status` shows the failed job check.
- cfix: C sources that compile alone but do not link; fixed once, delivered, and they build.
- jsfix: a JavaScript module that requires a missing file; fixed once and delivered.
- cnever: C sources that never link: the caller is dead-lettered with the linker's finding.
Reviews by model are on (router --reviews, the built-in rules): only the relevant reviewers run.
- rev: an auth module whose security review finds an error until its first fix: a QA_FAILED with
  the review's finding, one fix, reviewed again, delivered; files no rule picks are not reviewed.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Stack, check, log, metric_sum  # noqa: E402

def plan(*files):
    return {"files": [{"path": p, "description": d, "depends_on": deps} for p, d, deps in files]}


JOBS = {
    "pyfix": plan(("shop/__init__.py", "Package marker", []),
                  ("shop/core.py", "The core", []),
                  ("shop/cli.py", "The CLI [demo:job-fails-once]", ["shop/core.py"]),
                  ("tests/test_core.py", "Tests of the core [demo:job-fails-once]", ["shop/core.py"])),
    "pynever": plan(("store/__init__.py", "Package marker", []),
                    ("store/core.py", "The core", []),
                    ("store/cli.py", "The CLI [demo:job-never-passes]", ["store/core.py"])),
    "cfix": plan(("src/util.c", "Helpers", []),
                 ("src/main.c", "The program [demo:job-fails-once]", ["src/util.c"])),
    "cnever": plan(("src/util.c", "Helpers", []),
                   ("src/main.c", "The program [demo:job-never-passes]", ["src/util.c"])),
    "rev": plan(("web/__init__.py", "Package marker", []),
                ("web/auth.py", "Checks a login [demo:review-error-once]", [])),
    "jsfix": plan(("src/core.js", "The core", []),
                  ("src/cli.js", "The CLI [demo:job-fails-once]", ["src/core.js"])),
}


def main():
    bin_dir = sys.argv[1]
    work = tempfile.mkdtemp(prefix="agentline-job-check-")
    stack = Stack(bin_dir, work, {"AGENTLINE_SESSION_TIMEOUT_MS": "6000", "AGENTLINE_REVIEWS": "true"})
    try:
        stack.wait_ready()
        for job, p in JOBS.items():
            status, body = stack.api("POST", "/api/jobs", {"job_id": job, "goal": f"The {job} job", "plan": p})
            check(status == 202, f"{job}: accepted: {status} {body}")
        for bad in (".", ".."):
            status, body = stack.api("POST", "/api/jobs", {"job_id": bad, "goal": "x"})
            check(status == 400 and "unsafe_id" in json.dumps(body), f"job id {bad!r} refused at the gateway: {status} {body}")
        docs = stack.wait_jobs(list(JOBS), 300)
        delivered = os.path.join(stack.state, "delivered")
        evs = [v for _, v in stack.topic("events")]

        def of(job, type_):
            return [e for e in evs if e["job_id"] == job and e["type"] == type_]

        # pyfix: one failed job check naming both files, one round of fixes, then a pass.
        doc = docs.get("pyfix", {})
        jc = doc.get("job_check", {})
        check(jc.get("state") == "passed" and jc.get("attempt") == 1, f"pyfix: job check passed in round 2: {jc}")
        failed = of("pyfix", "JOB_QA_FAILED")
        named = sorted({d["file"] for e in failed for d in e["payload"]["diagnostics"] if d["severity"] == "error"})
        check(len(failed) == 1 and named == ["shop/cli.py", "tests/test_core.py"],
              f"pyfix: the failed job check named the CLI and the test: {named}")
        kinds = sorted({d["check"] for e in failed for d in e["payload"]["diagnostics"]})
        check(kinds == ["imports", "pytest"], f"pyfix: an import error and a failing test: {kinds}")
        statuses = {p: f["status"] for p, f in doc.get("files", {}).items()}
        check(set(statuses.values()) == {"delivered"}, f"pyfix: every file delivered: {statuses}")
        uploads = of("pyfix", "UPLOADED")
        first_upload = min((e["created_at"] for e in uploads), default="")
        passed_at = min((e["created_at"] for e in of("pyfix", "JOB_QA_PASSED")), default="~")
        check(uploads and first_upload >= passed_at,
              f"pyfix: nothing delivered before the job check passed ({first_upload} vs {passed_at})")
        check(len(uploads) == 4, f"pyfix: each file delivered once: {len(uploads)} uploads")
        r = subprocess.run([sys.executable, "-c", "import shop.cli"], cwd=os.path.join(delivered, "pyfix"),
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, f"pyfix: the delivered package imports: {r.stderr}")
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                           cwd=os.path.join(delivered, "pyfix"), capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"pyfix: the delivered tests pass: {r.stdout[-300:]}")

        # pynever: dead-lettered as job_qa_failed after the rounds, with the diagnostics.
        doc = docs.get("pynever", {})
        jc = doc.get("job_check", {})
        check(jc.get("state") == "failed" and jc.get("attempt") == 2, f"pynever: job check failed in round 3: {jc}")
        statuses = {p: f["status"] for p, f in doc.get("files", {}).items()}
        check(statuses.get("store/cli.py") == "dead_lettered" and statuses.get("store/core.py") == "delivered",
              f"pynever: the CLI dead-lettered, the core delivered: {statuses}")
        check(not os.path.exists(os.path.join(delivered, "pynever", "store", "cli.py")),
              "pynever: the CLI that does not import was not delivered")
        records = [r for r in stack.dlq_records() if r.get("job_id") == "pynever"]
        check(len(records) == 1 and records[0]["reason"] == "job_qa_failed" and
              "cannot import name" in records[0]["message"],
              f"pynever: one DLQ record, job_qa_failed, with the diagnostic: {records}")
        status = stack.cli("status", "pynever", "--json", check=False)
        jc = json.loads(status.stdout or "{}").get("job_check", {})
        check(jc.get("state") == "failed" and jc.get("attempt") == 2 and "cannot import name" in json.dumps(jc),
              f"pynever: agentline status --json shows the job check failed in round 3 with its diagnostic: {jc}")
        log("agentline status pynever --json: " + status.stdout.strip()[:600])

        # C and JavaScript: fixed once, delivered, and they work together.
        for job in ("cfix", "jsfix"):
            doc = docs.get(job, {})
            jc = doc.get("job_check", {})
            statuses = {p: f["status"] for p, f in doc.get("files", {}).items()}
            check(jc.get("state") == "passed" and jc.get("attempt") == 1 and set(statuses.values()) == {"delivered"},
                  f"{job}: fixed in one round and delivered: {jc} {statuses}")
        diags = [d for e in of("cfix", "JOB_QA_FAILED") for d in e["payload"]["diagnostics"]]
        check(any(d["file"] == "src/main.c" and d["check"] == "link" for d in diags),
              f"cfix: the link error named main.c: {diags}")
        out = os.path.join(work, "cfix.out")
        r = subprocess.run(["gcc", "-o", out, "src/main.c", "src/util.c"], cwd=os.path.join(delivered, "cfix"),
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, f"cfix: the delivered sources build: {r.stderr}")
        # cnever: C sources that never link: the caller dead-lettered with the linker's finding.
        doc = docs.get("cnever", {})
        statuses = {p: f["status"] for p, f in doc.get("files", {}).items()}
        check(statuses == {"src/main.c": "dead_lettered", "src/util.c": "delivered"} and
              "undefined reference" in doc.get("files", {}).get("src/main.c", {}).get("reason", ""),
              f"cnever: main.c dead-lettered with the link error, util.c delivered: {statuses} "
              f"{doc.get('files', {}).get('src/main.c', {}).get('reason')}")
        diags = [d for e in of("jsfix", "JOB_QA_FAILED") for d in e["payload"]["diagnostics"]]
        check(any(d["file"] == "src/cli.js" and "Cannot find module" in d["message"] for d in diags),
              f"jsfix: the missing module named cli.js: {diags}")

        # rev: the security review failed the auth module once; fixed, reviewed again, delivered.
        doc = docs.get("rev", {})
        statuses = {p: f["status"] for p, f in doc.get("files", {}).items()}
        check(set(statuses.values()) == {"delivered"}, f"rev: delivered after its review passed: {statuses}")
        failed = [e for e in of("rev", "QA_FAILED") if e["payload"]["path"] == "web/auth.py"]
        check(len(failed) == 1 and failed[0]["payload"]["diagnostics"][0]["check"] == "review:security",
              f"rev: one QA_FAILED with the security review's finding: {[e['payload']['diagnostics'] for e in failed]}")
        reviews = [v for _, v in stack.topic("tasks.fix") if v.get("type") == "REVIEW_TASK" and v["job_id"] == "rev"]
        check(sorted((r["payload"]["path"], tuple(r["payload"]["reviewers"])) for r in reviews) ==
              [("web/auth.py", ("security",)), ("web/auth.py", ("security",))],
              f"rev: auth.py reviewed twice by security alone, __init__.py by nobody: "
              f"{[(r['payload']['path'], r['payload']['reviewers']) for r in reviews]}")
        devfix = stack.scrape("dev-fix-worker") or {}
        router = stack.scrape("router") or {}
        reviewed = {o: metric_sum(devfix, "agentline_reviews_total", reviewer="security", outcome=o)
                    for o in ("passed", "failed")}
        saved = metric_sum(router, "agentline_router_review_calls_saved_total")
        check(reviewed["failed"] >= 1 and reviewed["passed"] >= 1 and saved > 0,
              f"reviews counted by reviewer and outcome {reviewed}, calls saved {saved}")

        # Metrics: job checks by outcome.
        metrics = stack.scrape("qa-worker") or {}
        counted = {o: metric_sum(metrics, "agentline_qa_job_checks_total", outcome=o) for o in ("passed", "failed")}
        check(counted["passed"] >= 3 and counted["failed"] >= 9, f"qa-worker counts job checks by outcome: {counted}")
    finally:
        stack.stop()
    harness.finish(stack.log_path)


if __name__ == "__main__":
    main()
