#!/usr/bin/env python3
"""The real-model tier: small goals through the whole pipeline against llama.cpp's
OpenAI-compatible server with SmolLM2-135M-Instruct on loopback (scripts/install-llm.sh builds
it once per machine), behind a recording proxy (tests/support/recording_proxy.py).

    real_model_test.py BIN_DIR SRC_DIR [REPORT.json]

A 135M model writes poor code and poorer plans; what is asserted is what the system does:
- every job ends: its plan dead-lettered (plan_invalid, after the plan-fix loop), or every
  planned file delivered or dead-lettered with a reason; nothing is left waiting;
- the plan-fix and QA-fix loops terminate within their limits;
- token counts and cost are the server's `usage` (dev-fix-worker's counters equal the sums the
  proxy saw; cost follows the price table);
- the same goal again is answered from the result cache (no new planning request);
- a file is generated only after the file it depends on reached its end (release order), and
  its prompt as the server received it carries that file's delivered content — or, if it was
  dead-lettered, says so;
- after a job check that passed or failed, every delivered Python module imports. The report
  compares the jobs whose files imported together as they first passed their own checks (what
  was delivered before job checks) with the jobs whose delivered modules import now.
The report (plan, release order, one prompt, outcome per file, time) goes to REPORT.json.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Stack, check, free_port_block, log, metric_sum  # noqa: E402

PRICE = {"prompt_per_1k": 0.01, "completion_per_1k": 0.02}


def ended(doc):
    plan = doc.get("plan", {})
    if plan.get("status") == "dead_lettered":
        return True
    files = doc.get("files", {})
    return plan.get("status") == "accepted" and files and all(
        f["status"] in ("delivered", "dead_lettered") for f in files.values())


def start_server(src, work):
    venv = subprocess.run(["bash", os.path.join(src, "scripts/install-llm.sh")], capture_output=True, text=True,
                          check=True, timeout=3600).stdout.strip()
    model = subprocess.run(["bash", os.path.join(src, "scripts/install-llm.sh"), "--model"], capture_output=True,
                           text=True, check=True).stdout.strip()
    port = free_port_block(2)
    server_log = open(os.path.join(work, "llama-server.log"), "w")
    server = subprocess.Popen([os.path.join(venv, "bin/python"), "-m", "llama_cpp.server", "--model", model,
                               "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                               "--n_ctx", "4096", "--n_threads", "1"],  # one core: the other tests run beside it
                              stdout=server_log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                break
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("llama server exited; see " + server_log.name)
            time.sleep(0.2)
    proxy_log = os.path.join(work, "requests.jsonl")
    proxy = subprocess.Popen([sys.executable, os.path.join(src, "tests/support/recording_proxy.py"), str(port + 1),
                              f"http://127.0.0.1:{port}", proxy_log])
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/v1/models", timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    return server, proxy, f"http://127.0.0.1:{port + 1}/v1", proxy_log, model


def exchanges(proxy_log):
    if not os.path.exists(proxy_log):
        return []
    with open(proxy_log) as f:
        return [json.loads(line) for line in f if line.strip()]


def user_prompt(x):
    msgs = x["request"].get("messages", []) if isinstance(x["request"], dict) else []
    return next((m["content"] for m in msgs if m.get("role") == "user"), "")


def main():
    bin_dir, src = sys.argv[1], sys.argv[2]
    report_path = sys.argv[3] if len(sys.argv) > 3 else None
    started = time.time()
    work = tempfile.mkdtemp(prefix="agentline-llm-")
    prices = os.path.join(work, "prices.json")
    with open(prices, "w") as f:
        json.dump({"smollm2": PRICE}, f)
    server, proxy, base_url, proxy_log, model = start_server(src, work)
    log(f"llama.cpp server with {os.path.basename(model)} ready in {time.time() - started:.0f} s")
    stack = Stack(bin_dir, work, {
        "AGENTLINE_GENERATOR": "openai", "AGENTLINE_LLM_BASE_URL": base_url, "AGENTLINE_LLM_MODEL": "smollm2",
        "AGENTLINE_LLM_API_KEY": "local", "AGENTLINE_LLM_PRICES": prices,
        "AGENTLINE_LLM_STRUCTURED_OUTPUT": "json_object_schema", "AGENTLINE_LLM_TEMPERATURE": "0",
        "AGENTLINE_MAX_TOKENS": "200", "AGENTLINE_PLAN_MAX_TOKENS": "300", "AGENTLINE_LLM_TIMEOUT_MS": "240000",
        "AGENTLINE_LLM_MAX_IN_FLIGHT": "1", "AGENTLINE_BATCH_MAX_FILES": "1", "AGENTLINE_SESSION_TIMEOUT_MS": "6000"})
    report = {}
    try:
        stack.wait_ready()
        goal = "A calculator CLI in Python"
        constraints = {"language": "python", "max_files": 3}
        # The model plans this goal; the second job's plan is supplied, and the model writes its files.
        check(stack.api("POST", "/api/jobs", {"job_id": "g1", "goal": goal, "constraints": constraints})[0] == 202,
              "g1 submitted")
        supplied = {"files": [
            {"path": "mathx/ops.py", "description": "def add(a, b): return a + b", "depends_on": []},
            {"path": "mathx/cli.py", "description": "print(add(2, 3)) using add from mathx.ops",
             "depends_on": ["mathx/ops.py"]}], "interface": "mathx.ops.add(a, b) -> number"}
        check(stack.api("POST", "/api/jobs", {"job_id": "g2", "goal": "A tiny math CLI", "plan": supplied})[0] == 202,
              "g2 submitted with its own plan")
        # A job whose files must fit together: the job check judges what the model wrote.
        todo = {"files": [
            {"path": "todo/__init__.py", "description": "Package marker, empty", "depends_on": []},
            {"path": "todo/store.py", "description": "class Store: add(item) appends to a list; items() returns it",
             "depends_on": []},
            {"path": "todo/cli.py", "description": "main(): Store from todo.store, add 'milk', print items()",
             "depends_on": ["todo/store.py"]},
            {"path": "tests/test_store.py", "description": "pytest test: Store().add('a') then items() == ['a']",
             "depends_on": ["todo/store.py"]}], "interface": "todo.store.Store with add(item) and items()"}
        check(stack.api("POST", "/api/jobs", {"job_id": "g3", "goal": "A todo list", "plan": todo})[0] == 202,
              "g3 submitted with its own plan")
        docs = stack.wait_jobs(["g1", "g2", "g3"], 1500, ended, poll=2)
        # The same goal again: answered from the result cache.
        before = len(exchanges(proxy_log))
        check(stack.api("POST", "/api/jobs", {"job_id": "g1-again", "goal": goal, "constraints": constraints})[0]
              == 202, "g1-again submitted")
        docs.update(stack.wait_jobs(["g1-again"], 900, ended, poll=2))

        events = [v for _, v in stack.topic("events")]
        xs = exchanges(proxy_log)
        plans = [e for e in events if e["type"] in ("PLAN_COMPLETED", "PLAN_REJECTED")]
        for job in ["g1", "g2", "g3", "g1-again"]:
            doc = docs.get(job, {})
            check(ended(doc), f"{job}: ended: plan {doc.get('plan', {}).get('status')}, files "
                              f"{ {p: f['status'] for p, f in doc.get('files', {}).items()} }")
            for path, f in doc.get("files", {}).items():
                if f["status"] == "dead_lettered":
                    check(bool(f.get("reason")), f"{job}: {path} dead-lettered with a reason: {f.get('reason')}")
                check(f.get("fix_attempt", 0) <= 3 + 2,
                      f"{job}: {path}: fix loops within their limits, 3 + 2 job-check rounds ({f.get('fix_attempt')})")
            attempts = [p["payload"]["plan_attempt"] for p in plans if p["job_id"] == job and "replan_of" not in p["payload"]]
            check(attempts and max(attempts) <= 2, f"{job}: plan-fix loop within its limit: attempts {attempts}")
            if doc.get("plan", {}).get("status") == "dead_lettered":
                dlq = [r for r in stack.dlq_records() if r.get("job_id") == job]
                check(any(r.get("reason") == "plan_invalid" for r in dlq), f"{job}: plan_invalid in the DLQ")

        # Tokens and cost are the server's usage.
        usage = [x["response"].get("usage", {}) for x in xs if x["status"] == 200 and isinstance(x["response"], dict)]
        prompt_tokens = sum(u.get("prompt_tokens", 0) for u in usage)
        completion_tokens = sum(u.get("completion_tokens", 0) for u in usage)
        metrics = stack.scrape("dev-fix-worker") or {}
        counted_p = metric_sum(metrics, "agentline_llm_tokens_total", kind="prompt")
        counted_c = metric_sum(metrics, "agentline_llm_tokens_total", kind="completion")
        check(len(xs) > 0 and counted_p == prompt_tokens and counted_c == completion_tokens,
              f"token counters are the server's usage: {counted_p}/{counted_c} vs {prompt_tokens}/{completion_tokens} "
              f"over {len(xs)} calls")
        cost = metric_sum(metrics, "agentline_llm_cost_usd_total")
        expected = prompt_tokens / 1000 * PRICE["prompt_per_1k"] + completion_tokens / 1000 * PRICE["completion_per_1k"]
        check(abs(cost - expected) < 1e-6, f"cost from the price table: {cost:.6f} vs {expected:.6f} USD")

        # The repeated goal: its plan from the cache, no new planning request.
        again = [p for p in plans if p["job_id"] == "g1-again"]
        new_plan_calls = [x for x in xs[before:] if "List the files of the project" in json.dumps(x["request"])]
        check(again and again[0]["payload"]["cached"] and not new_plan_calls,
              f"the repeated goal's plan came from the cache ({len(new_plan_calls)} new planning calls)")

        # Release order and context on the supplied plan: ops.py, then cli.py with ops.py in its prompt.
        # (A job check's fixes come after every file has ended: they are not part of the release order.)
        ops_calls = [i for i, x in enumerate(xs) if "File: mathx/ops.py" in user_prompt(x) and
                     "checking the whole job together" not in user_prompt(x)]
        cli_calls = [i for i, x in enumerate(xs) if "File: mathx/cli.py" in user_prompt(x)]
        check(ops_calls and cli_calls and max(ops_calls) < min(cli_calls),
              f"mathx/cli.py was generated only after mathx/ops.py's last call (calls {ops_calls} then {cli_calls})")
        ops = docs.get("g2", {}).get("files", {}).get("mathx/ops.py", {})
        if cli_calls:
            prompt = user_prompt(xs[cli_calls[0]])
            report["prompt"] = prompt
            if ops.get("status") == "delivered":
                delivered = open(os.path.join(stack.state, "delivered", "g2", "mathx/ops.py")).read()
                line = next((ln for ln in delivered.splitlines() if ln.strip() and not ln.strip().startswith("#")), "")
                check("Context file mathx/ops.py" in prompt and line in prompt,
                      f"cli.py's prompt carries ops.py as delivered ({line!r})")
            else:
                check("Dependency mathx/ops.py could not be completed" in prompt,
                      "cli.py's prompt says its dependency was dead-lettered")
            check("mathx.ops.add(a, b)" in prompt and "A tiny math CLI" in prompt,
                  "cli.py's prompt carries the goal and the interface notes")
        # Job checks (docs/qa.md): the first job check's verdict is what was delivered before it
        # existed (the files as they passed their own checks); now, what is delivered must import.
        job_checks = {}
        for job in ["g1", "g2", "g3", "g1-again"]:
            results = sorted((e for e in events if e["job_id"] == job and e["type"] in ("JOB_QA_PASSED", "JOB_QA_FAILED")),
                             key=lambda e: e["payload"]["job_check_attempt"])
            root = os.path.join(stack.state, "delivered", job)
            modules = []
            for folder, _, names in os.walk(root):
                for name in names:
                    rel = os.path.relpath(os.path.join(folder, name), root)
                    parts = rel[:-3].split(os.sep)
                    if rel.endswith(".py") and all(p.isidentifier() for p in parts):
                        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
            broken = []
            for m in modules:
                r = subprocess.run([sys.executable, "-c", f"import {m}"], cwd=root, capture_output=True, text=True,
                                   timeout=30, stdin=subprocess.DEVNULL)
                missing = r.stderr.strip().rsplit("No module named ", 1)[-1].strip("'").split(".")[0] \
                    if "ModuleNotFoundError" in r.stderr else ""
                # A third-party module the job needs is reported by the job check, not failed by it.
                if r.returncode != 0 and not (missing and not os.path.exists(os.path.join(root, missing)) and
                                              not os.path.exists(os.path.join(root, missing + ".py"))):
                    broken.append(m)
            state = docs.get(job, {}).get("job_check", {}).get("state")
            job_checks[job] = {
                "first_check": results[0]["type"] if results else None,
                "first_findings": [f"{d.get('file')}:{d.get('line', 0)} {d['message'][:160]}"
                                   for d in (results[0]["payload"]["diagnostics"] if results else [])][:8],
                "rounds": len(results), "final": state,
                "delivered_modules": len(modules), "delivered_modules_not_importing": broken}
            if state in ("passed", "failed"):
                check(not broken, f"{job}: every delivered module imports after the job check ({state}): {broken}")
        report["job_checks"] = job_checks
        checked = [j for j in job_checks.values() if j["first_check"]]
        report["jobs_importing"] = {
            "checked": len(checked),
            "before": sum(1 for j in checked if j["first_check"] == "JOB_QA_PASSED"),
            "now": sum(1 for j in checked if j["delivered_modules"] and not j["delivered_modules_not_importing"])}
        log(f"jobs whose delivered modules import: before {report['jobs_importing']['before']}, "
            f"now {report['jobs_importing']['now']} of {len(checked)} checked")
        report.update({
            "plans": {p["job_id"] + "#" + str(p["payload"]["plan_attempt"]): {
                "type": p["type"], "cached": p["payload"].get("cached"),
                "files": [f["path"] for f in p["payload"].get("plan", {}).get("files", [])],
                "errors": [d["message"] for d in p["payload"].get("diagnostics", [])]} for p in plans},
            "release_order": [(i, user_prompt(x).split("\n", 1)[0]) for i, x in enumerate(xs)],
            "outcome": {job: {p: (f["status"], f.get("reason", "")) for p, f in d.get("files", {}).items()}
                        for job, d in docs.items()},
            "plan_status": {job: d.get("plan", {}).get("status") for job, d in docs.items()},
            "calls": len(xs), "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "seconds": round(time.time() - started)})
    finally:
        stack.stop()
        proxy.kill()
        server.terminate()
        server.wait(timeout=30)
    log(json.dumps(report, indent=1)[:6000])
    if report_path:
        os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
        with open(report_path, "w") as f:
            json.dump(report, f, indent=1)
    if harness.failures:
        log(f"{len(harness.failures)} check(s) failed; logs in {work}")
        sys.exit(1)
    log(f"all checks passed in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
