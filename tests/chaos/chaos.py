#!/usr/bin/env python3
"""Chaos run: tasks through all six services while a driver breaks things.

    chaos.py BIN_DIR SRC_DIR [--tasks N] [--kafka-state DIR] [--llm-outage-s S] ...

The six services run under `agentline up` (its supervisor restarts what dies). dev-fix-worker
calls an OpenAI-compatible test server (tests/support/fake_llm_server.py); outbox-uploader
delivers to a webhook test server (tests/support/fake_target_server.py) that fails at random
with 500, 429 and timeouts. While the tasks flow, the driver
  - SIGKILLs a random service every few seconds,
  - restarts the broker once (the embedded broker: every broker down, then up, via SIGUSR1 /
    SIGUSR2 to `agentline broker`; Apache Kafka: tests/kafka/kafka-local.sh restart),
  - makes the LLM server answer 503 for --llm-outage-s seconds.
At the end every task must be delivered exactly once (count and content at the webhook) or be
in the DLQ with a reason: zero lost, zero duplicated. The outage is checked from dev-fix-worker's
metrics and the server's counts: backend calls during it stay within the breaker's probe budget,
no task is dead-lettered because of it, and generation resumes within the breaker's wait after
it ends.
Counts go to stdout and, with --report, to a JSON file. Exit 0 only if every check holds.
"""
import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from harness import (SERVICES, ServerProcess, Stack, expected_content, kafka_topics, log, metric_sum,  # noqa: E402
                     write_tasks)

# dev-fix-worker's agentline_llm_calls_total outcomes.
CALL_OUTCOMES = ("ok", "rate_limited", "unavailable", "rejected")



def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("root")
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--kafka-state", help="state dir of tests/kafka/kafka-local.sh (default: the embedded broker)")
    ap.add_argument("--kill-every-s", type=float, default=4.0, help="mean time between SIGKILLs")
    ap.add_argument("--min-uptime-s", type=float, default=8.0,
                    help="only kill a service that has been up this long (killing one in its first seconds only "
                         "grows the supervisor's restart backoff)")
    ap.add_argument("--llm-outage-s", type=float, default=30.0)
    ap.add_argument("--outage-at-s", type=float, default=20.0, help="when the LLM outage starts")
    ap.add_argument("--broker-at-s", type=float, default=8.0, help="when the broker restarts")
    ap.add_argument("--broker-down-s", type=float, default=5.0, help="embedded broker: how long it stays down")
    ap.add_argument("--webhook-fail-rate", type=float, default=0.2)
    ap.add_argument("--breaker-open-wait-ms", type=int, default=2000)
    ap.add_argument("--deadline-s", type=float, default=900, help="give up waiting for the tasks after this")
    ap.add_argument("--chaos-max-s", type=float, default=600,
                    help="stop killing after this long even if 90%% is not through (the supervisor's restart "
                         "backoff grows to 30 s, so endless kills can starve the run)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--report", help="write the counts as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    return ap.parse_args()


class ChaosRun:
    """One run's state, shared by its phases and the chaos threads: the stack and the test
    servers, the tasks, what each chaos thread did (kills, the outage, the broker restart,
    unassigned time) and the report with its failures."""

    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        log(f"chaos run: {args.tasks} tasks, seed {args.seed}, "
            f"{'Apache Kafka (' + args.kafka_state + ')' if args.kafka_state else 'embedded broker'}")
        self.work = tempfile.mkdtemp(prefix="agentline-chaos-")
        self.llm = ServerProcess(args.root, "fake_llm_server.py", self.work, "llm")
        self.target = ServerProcess(args.root, "fake_target_server.py", self.work, "target")
        self.target.admin({"fail_rate": args.webhook_fail_rate, "kinds": ["500", "429", "timeout"], "timeout_s": 2.0,
                           "seed": args.seed})
        # The breaker settings are the budget the outage check holds dev-fix-worker to. They also
        # reach outbox-uploader's target breaker (same option names), which is fine here.
        self.breaker = {"window": 20, "minimum_calls": 10, "failure_rate": 50, "probes": 1,
                        "open_wait_ms": args.breaker_open_wait_ms}
        self.max_in_flight = 16
        env = {
            "AGENTLINE_GENERATOR": "openai",
            "AGENTLINE_LLM_BASE_URL": self.llm.url + "/v1",
            "AGENTLINE_LLM_API_KEY": "chaos",
            "AGENTLINE_LLM_TIMEOUT_MS": "5000",
            "AGENTLINE_BREAKER_WINDOW": str(self.breaker["window"]),
            "AGENTLINE_BREAKER_MINIMUM_CALLS": str(self.breaker["minimum_calls"]),
            "AGENTLINE_BREAKER_FAILURE_RATE": str(self.breaker["failure_rate"]),
            "AGENTLINE_BREAKER_PROBES": str(self.breaker["probes"]),
            "AGENTLINE_BREAKER_OPEN_WAIT_MS": str(self.breaker["open_wait_ms"]),
            "AGENTLINE_MAX_IN_FLIGHT": str(self.max_in_flight),
            "AGENTLINE_TARGET": "webhook",
            "AGENTLINE_WEBHOOK_URL": self.target.url + "/hook",
            "AGENTLINE_UPLOAD_TIMEOUT_MS": "1000",
            "AGENTLINE_RETRY_BASE_MS": "200",
            "AGENTLINE_RETRY_MAX_MS": "2000",
            "AGENTLINE_MAX_ATTEMPTS": "50",
            "AGENTLINE_SESSION_TIMEOUT_MS": "6000",
        }
        bootstrap, prefix = kafka_topics(args.bin, args.kafka_state, "chaos")
        self.stack = Stack(args.bin, self.work, env, bootstrap=bootstrap, prefix=prefix)
        self.report = {"tasks": args.tasks, "seed": args.seed, "broker": "kafka" if args.kafka_state else "embedded"}
        self.failures = []
        self.tasks = {}
        self.submits = []
        self.submit_out = None
        self.started = None
        self.kills = {s: 0 for s in SERVICES}
        self.outage = {}
        self.stop_chaos = threading.Event()
        # Not killed around the LLM outage: dev-fix-worker (the breaker whose budget is checked)
        # and priority-assigner (which feeds it the tasks submitted when the outage starts).
        self.protected = set()
        # What account() found, for the outage check.
        self.dlq, self.dead_lettered = [], set()
        # Each service's time without partitions while the run lasts (watch_assignment).
        self.unassigned = {s: 0.0 for s in SERVICES}

    # -- Phase 1: the tasks ------------------------------------------------------------------------

    def submit_file(self, name):
        return subprocess.Popen([os.path.join(self.args.bin, "agentline"), "submit", *self.stack.globals,
                                 os.path.join(self.work, name)], env=self.stack.env, stdout=self.submit_out,
                                stderr=subprocess.STDOUT)

    def start(self):
        """Writes the tasks; submits two thirds now and the last third when the LLM outage
        starts, so there is generation to hold during the outage and to resume after it however
        fast the rest ran."""
        self.stack.wait_ready()
        self.tasks = write_tasks(os.path.join(self.work, "tasks.jsonl"), self.args.tasks, self.args.jobs, "chaos")
        lines = open(os.path.join(self.work, "tasks.jsonl")).read().splitlines(keepends=True)
        cut = (2 * len(lines)) // 3
        open(os.path.join(self.work, "tasks-a.jsonl"), "w").writelines(lines[:cut])
        open(os.path.join(self.work, "tasks-b.jsonl"), "w").writelines(lines[cut:])
        self.submit_out = open(os.path.join(self.work, "submit.out"), "w")
        self.started = time.time()
        self.submits.append(self.submit_file("tasks-a.jsonl"))

    # -- Phase 2: the chaos threads ----------------------------------------------------------------

    def scrape_devfix(self):
        """dev-fix-worker's LLM calls by outcome and its dead letters, or None."""
        m = self.stack.scrape("dev-fix-worker")
        if m is None:
            return None
        return {"time": time.time(), "dlq": metric_sum(m, "agentline_dead_letters_total"),
                "calls": {o: metric_sum(m, "agentline_llm_calls_total", outcome=o) for o in CALL_OUTCOMES}}

    def killer(self):
        while not self.stop_chaos.wait(self.rng.uniform(0.5, 1.5) * self.args.kill_every_s):
            if time.time() - self.started >= self.args.chaos_max_s:
                return
            up = self.stack.uptimes()
            choices = [s for s in SERVICES if s not in self.protected and up.get(s, 0.0) >= self.args.min_uptime_s]
            if not choices:
                continue
            victim = self.rng.choice(choices)
            if self.stack.kill(victim):
                self.kills[victim] += 1
                log(f"SIGKILL {victim} (up {up[victim]:.0f} s)")

    def broker_restart(self):
        time.sleep(self.args.broker_at_s)
        t0 = time.time()
        if self.args.kafka_state:
            log("restarting Apache Kafka (kafka-local.sh restart)")
            subprocess.run([os.path.join(self.args.root, "tests/kafka/kafka-local.sh"), "restart", "--state",
                            self.args.kafka_state], check=True, capture_output=True)
        else:
            pid = self.stack.children().get("broker")
            log(f"embedded broker down for {self.args.broker_down_s} s")
            os.kill(pid, signal.SIGUSR1)
            time.sleep(self.args.broker_down_s)
            os.kill(pid, signal.SIGUSR2)
        self.report["broker_restart_s"] = round(time.time() - t0, 1)
        log("broker back")

    def llm_outage(self):
        time.sleep(max(0.0, self.args.outage_at_s - (time.time() - self.started)))
        self.protected.update({"dev-fix-worker", "priority-assigner"})
        # The budget counts one breaker's calls: the outage starts with dev-fix-worker and its
        # feeder up and ready, and neither is killed until generation has resumed after it.
        ready_by = time.time() + 120
        while not (self.stack.ready("dev-fix-worker") and self.stack.ready("priority-assigner")):
            if time.time() > ready_by:
                self.outage["error"] = "dev-fix-worker or priority-assigner not ready within 120 s"
                self.submits.append(self.submit_file("tasks-b.jsonl"))  # still counted at the end
                return
            time.sleep(0.2)
        time.sleep(1.0)
        llm_before = self.llm.stats()["by_mode"].get("503", 0)
        before = None
        while before is None:
            if time.time() > ready_by:
                self.outage["error"] = "dev-fix-worker's /metrics did not answer"
                self.submits.append(self.submit_file("tasks-b.jsonl"))  # still counted at the end
                return
            before = self.scrape_devfix()
        self.llm.admin({"mode": "503"})
        self.outage["start"] = time.time()
        self.submits.append(self.submit_file("tasks-b.jsonl"))
        log(f"LLM outage: 503 for {self.args.llm_outage_s} s")
        time.sleep(max(0.0, self.outage["start"] + self.args.llm_outage_s - time.time()))
        during = self.scrape_devfix()
        self.llm.admin({"mode": "ok"})
        self.outage["server_503_answers"] = self.llm.stats()["by_mode"].get("503", 0) - llm_before
        self.outage["end"] = time.time()
        log("LLM back")
        self.outage["calls_during_by_outcome"] = {o: during["calls"][o] - before["calls"][o] for o in CALL_OUTCOMES}
        self.outage["calls_during"] = sum(self.outage["calls_during_by_outcome"].values())
        self.outage["dlq_from_devfix_during"] = during["dlq"] - before["dlq"]
        # Resumed: the first successful call after the end.
        while time.time() < self.outage["end"] + 60:
            s = self.scrape_devfix()
            if s and s["calls"]["ok"] > during["calls"]["ok"]:
                self.outage["resumed_after_s"] = round(s["time"] - self.outage["end"], 2)
                break
            time.sleep(0.1)
        self.protected.clear()

    def watch_assignment(self):
        """Samples agentline_consumer_assigned_partitions every 0.5 s; a killed service (no
        answer) counts as unassigned until its replacement holds partitions again. The
        group-protocol figure in bench/REPORT.md."""
        last = time.time()
        while not self.stop_chaos.wait(0.5):
            now = time.time()
            for s in SERVICES:
                m = self.stack.scrape(s, timeout=0.4)
                if m is None or metric_sum(m, "agentline_consumer_assigned_partitions") == 0:
                    self.unassigned[s] += now - last
            last = now

    def run_chaos(self):
        """Starts the chaos threads and waits until every task is at the target or in the DLQ;
        chaos stops once the outage and the broker restart are over and every task was
        submitted."""
        threads = [threading.Thread(target=fn, daemon=True)
                   for fn in (self.killer, self.broker_restart, self.llm_outage, self.watch_assignment)]
        for t in threads:
            t.start()
        deadline = self.started + self.args.deadline_s
        delivered = set()
        last_count = -1
        while time.time() < deadline:
            time.sleep(2)
            if not self.stop_chaos.is_set() and (time.time() - self.started >= self.args.chaos_max_s or (
                    len(self.submits) == 2 and all(p.poll() is not None for p in self.submits)
                    and not threads[1].is_alive() and not threads[2].is_alive() and last_count >= 0.9 * self.args.tasks)):
                self.stop_chaos.set()
                self.report["chaos_s"] = round(time.time() - self.started, 1)
                log("chaos over; waiting for the rest")
            stats = self.target.stats()
            delivered = {it["item"].get("task_id") for it in stats["items"].values()}
            dlq_tasks = {r.get("task_id") for r in self.stack.dlq_records()} if len(delivered) < self.args.tasks else set()
            done = len(delivered | (dlq_tasks & set(self.tasks)))
            if done != last_count:
                log(f"{len(delivered)} delivered, {len(dlq_tasks & set(self.tasks))} dead-lettered of {self.args.tasks}")
                last_count = done
            if done >= self.args.tasks and self.stop_chaos.is_set():
                break
        self.stop_chaos.set()
        for t in threads:
            t.join(timeout=max(1.0, deadline + 90 - time.time()))
        self.report["elapsed_s"] = round(time.time() - self.started, 1)
        self.report["unassigned_s"] = {s: round(v, 1) for s, v in self.unassigned.items()}
        self.report["group_protocol"] = os.environ.get("AGENTLINE_GROUP_PROTOCOL", "auto")
        for p in self.submits:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if any(p.returncode != 0 for p in self.submits):
            self.failures.append("agentline submit failed: " + open(os.path.join(self.work, "submit.out")).read()[-2000:])

    # -- Phase 3: the accounting -------------------------------------------------------------------

    def account(self):
        """Every task at the target exactly once with the right content, or in the DLQ with a
        reason; the counts go into the report."""
        # Let late duplicates show up if there were any: the uploader is idle once its lag is 0.
        time.sleep(3)
        stats = self.target.stats()
        dlq = self.stack.dlq_records()

        # -- Accounting at the target --------------------------------------------------------------
        keys_per_task = {}
        wrong_content = []
        for key, it in stats["items"].items():
            item = it["item"]
            tid = item.get("task_id")
            keys_per_task.setdefault(tid, []).append(key)
            job, path = self.tasks.get(tid, (None, None))
            if path is None or item.get("path") != path or item.get("job_id") != job \
                    or item.get("content") != expected_content(path):
                wrong_content.append(tid)
        double_created = [k for k, n in stats["creates_per_key"].items() if n > 1]
        duplicated = sorted(t for t, keys in keys_per_task.items() if len(keys) > 1)
        delivered = set(keys_per_task) & set(self.tasks)
        dlq_by_task = {}
        for r in dlq:
            if r.get("task_id") in self.tasks:
                dlq_by_task.setdefault(r["task_id"], []).append(r.get("reason") or "")
        dead_lettered = set(dlq_by_task) - delivered
        lost = sorted(set(self.tasks) - delivered - dead_lettered)
        without_reason = sorted(t for t in dead_lettered if not all(dlq_by_task[t]))
        reasons = {}
        for t in dead_lettered:
            for reason in dlq_by_task[t]:
                reasons[reason] = reasons.get(reason, 0) + 1
        restarts = self.stack.restarts()

        self.report.update({
            "delivered": len(delivered), "dead_lettered": len(dead_lettered), "dlq_reasons": reasons,
            "lost": len(lost), "duplicated_at_target": len(duplicated) + len(double_created),
            "wrong_content": len(wrong_content), "webhook_posts": stats["posts"],
            "webhook_failures_injected": stats["failures"], "kills": self.kills, "restarts": restarts,
            "llm_outage": self.outage, "llm_requests": self.llm.stats()["requests"],
        })
        self.dlq, self.dead_lettered = dlq, dead_lettered
        return lost, duplicated, double_created, wrong_content, without_reason

    def check_outage(self):
        """The outage, from the metrics: backend calls within the breaker's probe budget, no
        task dead-lettered because of it, generation resumed within the breaker's wait."""
        wait_s = self.breaker["open_wait_ms"] / 1000.0
        budget = (math.ceil(self.breaker["window"] * self.breaker["failure_rate"] / 100) + self.max_in_flight
                  + (math.floor(self.args.llm_outage_s / wait_s) + 1) * self.breaker["probes"])
        self.report["llm_outage"]["probe_budget"] = budget
        if "calls_during" not in self.outage:
            self.failures.append("the LLM outage did not run" + (f": {self.outage['error']}" if "error" in self.outage else ""))
        else:
            # The calls the down backend took, counted by both ends: the server's 503 answers and
            # dev-fix-worker's failed calls. Its successful calls are left out: with the test
            # server answering at once, those are calls made between the `before` scrape and the
            # switch to 503, not load on the down backend.
            failed = sum(n for o, n in self.outage["calls_during_by_outcome"].items() if o != "ok")
            for count, what in ((self.outage.get("server_503_answers", 0), "LLM calls answered 503 by the server"),
                                (failed, "failed LLM calls counted by dev-fix-worker")):
                if count > budget:
                    self.failures.append(f"{count:.0f} {what} during the {self.args.llm_outage_s} s outage, over the "
                                    f"breaker's budget of {budget} (by outcome: {self.outage['calls_during_by_outcome']})")
            if self.outage["dlq_from_devfix_during"] > 0:
                self.failures.append(f"{self.outage['dlq_from_devfix_during']:.0f} records dead-lettered by dev-fix-worker "
                                "during the outage")
            if self.outage.get("server_503_answers", 0) == 0:
                # Nothing reached dev-fix-worker during the outage (its feeders were down in the
                # supervisor's backoff): the resume check has nothing to measure. Reported, not failed.
                self.report["llm_outage"]["note"] = "no LLM traffic during the outage: the resume check did not apply"
            elif "resumed_after_s" not in self.outage:
                self.failures.append("generation did not resume within 60 s of the outage's end")
            elif self.outage["resumed_after_s"] > wait_s + 1.5:
                self.failures.append(f"generation resumed {self.outage['resumed_after_s']} s after the outage, later than "
                                f"the breaker's wait of {wait_s} s (+1.5 s)")
        devfix_dlq = [t for t in self.dead_lettered for r in self.dlq if r.get("task_id") == t and
                      r.get("service") == "dev-fix-worker"]
        if devfix_dlq:
            self.failures.append(f"{len(devfix_dlq)} tasks dead-lettered by dev-fix-worker (the outage must not do that)")

    def check_delivery(self, lost, duplicated, double_created, wrong_content, without_reason):
        if lost:
            self.failures.append(f"{len(lost)} tasks lost (neither delivered nor in the DLQ), e.g. {lost[:5]}")
        if duplicated or double_created:
            self.failures.append(f"duplicates at the target: {duplicated[:5]} {double_created[:5]}")
        if wrong_content:
            self.failures.append(f"{len(wrong_content)} items with wrong content, e.g. {wrong_content[:5]}")
        if without_reason:
            self.failures.append(f"DLQ records without a reason: {without_reason[:5]}")
        if sum(self.kills.values()) == 0:
            self.failures.append("no service was killed")
        if "broker_restart_s" not in self.report:
            self.failures.append("the broker was not restarted")

    def finish(self):
        """Prints the report (and writes it with --report); 0 when every check held."""
        print("== chaos run" + (f" (seed {self.args.seed})"))
        for k in ["broker", "tasks", "delivered", "dead_lettered", "dlq_reasons", "lost", "duplicated_at_target",
                  "wrong_content", "webhook_posts", "webhook_failures_injected", "kills", "restarts",
                  "broker_restart_s", "llm_outage", "llm_requests", "chaos_s", "elapsed_s", "group_protocol", "unassigned_s"]:
            if k in self.report:
                print(f"  {k:28s} {json.dumps(self.report[k])}")
        self.report["failures"] = self.failures
        if self.args.report:
            with open(self.args.report, "w") as f:
                json.dump(self.report, f, indent=2)
        if self.failures:
            print("FAIL:\n  " + "\n  ".join(self.failures))
            print("--- agentline up (last lines)\n" + self.stack.tail_log(60))
            print(f"work directory kept: {self.work}")
            return 1
        if not self.args.keep:
            subprocess.run(["rm", "-rf", self.work])
        print("PASS: every task delivered exactly once or dead-lettered with a reason")
        return 0


def main():
    run = ChaosRun(parse_args())
    try:
        run.start()
        run.run_chaos()
        counts = run.account()
        run.check_outage()
        run.check_delivery(*counts)
    except Exception as e:  # noqa: BLE001 -- report whatever broke the run itself
        run.failures.append(f"the run failed: {e!r}")
    finally:
        run.stack.stop()
        run.llm.stop()
        run.target.stop()
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
