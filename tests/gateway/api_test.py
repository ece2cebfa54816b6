#!/usr/bin/env python3
"""The gateway's API against the real pipeline: `agentline up` (embedded broker, the six
services with the offline template generator and the filesystem target, and the gateway with a
bearer token).

    api_test.py BIN_DIR SRC_DIR

Checks: the token is required; a job with an invalid task is refused with the reasons and
nothing is published; a valid job is accepted and followed to the end over Server-Sent Events
(progress events with rising ids, then final; the first event the whole job, later ones only
what changed); Last-Event-ID resumes without repeating what was seen; heartbeats on an idle stream and an error event for a job that never appears; ETag and
If-None-Match give 304 while nothing changes; job list and details; the dead-lettered file in
GET /api/dlq and replayed by POST /api/dlq/replay (dlq-escalator's routes refuse a call without
the token); /metrics, /healthz, /readyz; 404 and 405; a gateway on 0.0.0.0 without a token
refuses to start; the stream slots of killed clients are free again within seconds.
"""
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import Stack, log  # noqa: E402

TOKEN = "s3cret-token"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        log("FAIL: " + what)
    return cond


class Client:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, headers=None, token=TOKEN):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = json.dumps(body).encode() if body is not None and not isinstance(body, (bytes, str)) else body
        if data is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        conn.close()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return r.status, dict(r.getheaders()), doc

    def stream(self, job, last_event_id=None, max_events=1000, timeout=60, query_token=True, until_final=True):
        """Reads an SSE stream: [(event, id, data or None)], with ("heartbeat", None, None) for comments."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        path = f"/api/progress/stream/{job}" + (f"?access_token={TOKEN}" if query_token else "")
        headers = {} if query_token else {"Authorization": "Bearer " + TOKEN}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        events, event, eid, data = [], None, None, []
        deadline = time.time() + timeout
        if r.status != 200:
            return r.status, []
        while time.time() < deadline and len([e for e in events if e[0] != "heartbeat"]) < max_events:
            line = r.fp.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                events.append(("heartbeat", None, None))
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("id: "):
                eid = int(line[4:])
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and event:
                events.append((event, eid, json.loads("\n".join(data)) if data else None))
                if event in ("final", "error") and until_final:
                    break
                event, eid, data = None, None, []
        conn.close()
        return r.status, events


def main():
    bin_dir = sys.argv[1]  # argv[2], the source root, is not needed
    work = tempfile.mkdtemp(prefix="agentline-gateway-")
    env = {"AGENTLINE_API_TOKEN": TOKEN, "AGENTLINE_SSE_HEARTBEAT_MS": "300", "AGENTLINE_UNKNOWN_JOB_WAIT_MS": "1500"}
    stack = Stack(bin_dir, work, env)
    try:
        stack.wait_ready()
        api = Client(stack.port("gateway"))

        # -- authentication ----------------------------------------------------------------------
        status, headers, _ = api.call("GET", "/api/jobs", token=None)
        check(status == 401 and "Bearer" in headers.get("WWW-Authenticate", ""), f"no token: {status} {headers}")
        status, _, _ = api.call("GET", "/api/jobs", token="wrong")
        check(status == 401, f"wrong token: {status}")
        status, _, doc = api.call("GET", "/api/jobs")
        check(status == 200 and doc == {"jobs": []}, f"GET /api/jobs: {status} {doc}")
        status, _, _ = api.call("GET", "/healthz", token=None)
        check(status == 200, "healthz needs no token")

        # -- validation: all or nothing ----------------------------------------------------------
        bad = {"job_id": "refused", "tasks": [
            {"payload": {"path": "ok.py", "description": "fine"}},
            {"payload": {"path": "../../etc/passwd", "description": "escape"}},
            {"payload": {"description": "no path"}},
        ]}
        status, _, doc = api.call("POST", "/api/jobs", bad)
        problems = {p["index"]: p["error_class"] for p in (doc or {}).get("problems", [])}
        check(status == 400 and problems == {1: "unsafe_path", 2: "schema_violation"}, f"invalid job: {status} {doc}")
        for body in [b"not json", {"job_id": "x", "tasks": []}, {"job_id": "x", "tasks": [1]},
                     {"job_id": "x", "tasks": [{}], "extra": 1}, {"tasks": [{"payload": {"path": "a.py", "description": "d"}}]},
                     {"job_id": "x", "tasks": [{"job_id": "y", "payload": {"path": "a.py", "description": "d"}}]}]:
            status, _, doc = api.call("POST", "/api/jobs", body)
            check(status == 400 and "error" in (doc or {}), f"bad body {body!r}: {status} {doc}")

        # -- a job, followed over SSE to the end --------------------------------------------------
        job = "api-demo"
        tasks = [{"payload": {"path": f"app/m{i}.py", "description": f"module {i}", "language": "python"}}
                 for i in range(6)]
        tasks.append({"payload": {"path": "app/broken.py", "description": "never passes [demo:never-passes]",
                                  "language": "python"}})
        status, _, doc = api.call("POST", "/api/jobs", {"job_id": job, "tasks": tasks})
        check(status == 202 and doc["submitted"] == 7 and doc["jobs"][0]["stream"] == f"/api/progress/stream/{job}",
              f"submit: {status} {doc}")
        status, events = api.stream(job, max_events=1, until_final=False)
        progress = [e for e in events if e[0] in ("progress", "final")]
        check(status == 200 and progress, f"first events: {status} {events}")
        first_id = progress[0][1] if progress else 0
        # Resume from the first event: nothing at or below its id comes again, and it runs to final.
        status, events = api.stream(job, last_event_id=first_id, timeout=120, query_token=False)
        ids = [e[1] for e in events if e[0] in ("progress", "final")]
        check(ids and min(ids) > first_id, f"resume after {first_id} repeated events: {ids}")
        check(ids == sorted(set(ids)), f"event ids not rising: {ids}")
        final = [e for e in events if e[0] == "final"]
        check(len(final) == 1, f"no final event: {[e[0] for e in events][-5:]}")
        # The first event of a connection is the whole job, later ones only what changed.
        docs = [e[2] for e in events if e[0] in ("progress", "final")]
        check(docs and not docs[0].get("delta") and all(d.get("delta") for d in docs[1:]),
              f"a document, then changes: {[d.get('delta') for d in docs]}")
        final_doc = {}
        for d in docs:
            files = dict(final_doc.get("files", {}), **d.get("files", {})) if d.get("delta") else d.get("files", {})
            final_doc = dict(final_doc, **d) if d.get("delta") else dict(d)
            final_doc["files"] = files
        files = final_doc.get("files", {})
        statuses = sorted(f["status"] for f in files.values())
        check(statuses == ["dead_lettered"] + ["delivered"] * 6, f"final file statuses: {statuses}")
        check(final_doc.get("complete") is True, "final document not complete")
        # After the end, a resume at the final id gets the final event once and the stream ends.
        status, events = api.stream(job, last_event_id=final[0][1] if final else 0, timeout=10)
        check([e[0] for e in events if e[0] != "heartbeat"] == ["final"], f"resume after final: {events}")

        # -- heartbeats, and an error for a job that never appears -------------------------------
        status, events = api.stream("no-such-job", timeout=10)
        kinds = [e[0] for e in events]
        check(kinds.count("heartbeat") >= 3 and kinds[-1] == "error", f"idle stream: {kinds}")

        # -- ETag polling ------------------------------------------------------------------------
        status, headers, summary = api.call("GET", f"/api/jobs/{job}/progress")
        etag = headers.get("ETag", "")
        check(status == 200 and etag.startswith('"') and "files" not in summary, f"progress: {status} {headers}")
        status, headers2, body = api.call("GET", f"/api/jobs/{job}/progress", headers={"If-None-Match": etag})
        check(status == 304 and headers2.get("ETag") == etag and not body, f"If-None-Match: {status}")
        status, _, _ = api.call("GET", f"/api/jobs/{job}/progress", headers={"If-None-Match": '"stale"'})
        check(status == 200, f"stale ETag: {status}")
        status, _, _ = api.call("GET", "/api/jobs/nope/progress")
        check(status == 404, f"unknown job progress: {status}")

        # -- list and details --------------------------------------------------------------------
        status, _, doc = api.call("GET", "/api/jobs")
        check(status == 200 and [j["job_id"] for j in doc["jobs"]] == [job] and "files" not in doc["jobs"][0],
              f"job list: {doc}")
        status, headers, doc = api.call("GET", f"/api/jobs/{job}")
        check(status == 200 and len(doc["files"]) == 7 and headers.get("ETag"), f"job details: {status}")
        broken = doc["files"].get("app/broken.py", {})
        check(broken.get("status") == "dead_lettered" and broken.get("reason"), f"broken file: {broken}")

        # -- the DLQ through dlq-escalator --------------------------------------------------------
        records = []
        for _ in range(50):
            status, _, doc = api.call("GET", f"/api/dlq?job={job}")
            records = (doc or {}).get("records", [])
            if records:
                break
            time.sleep(0.2)
        check(status == 200 and len(records) == 1 and records[0]["reason"] == "qa_failed_max",
              f"GET /api/dlq: {status} {records}")
        status, _, doc = api.call("GET", "/api/dlq?limit=abc")
        check(status == 400, f"bad limit: {status}")
        task = broken.get("task_id")
        status, _, doc = api.call("POST", "/api/dlq/replay", {"task": task, "dry_run": True})
        check(status == 200 and doc["selected"] == 1 and doc["dry_run"] is True, f"dry-run replay: {status} {doc}")
        status, _, doc = api.call("POST", "/api/dlq/replay", {"task": task})
        check(status == 200 and doc["replayed"] == 1 and doc["failed"] == 0, f"replay: {status} {doc}")
        status, _, doc = api.call("POST", "/api/dlq/replay", {})
        check(status == 400, f"replay without a filter: {status}")
        status, _, doc = api.call("POST", "/api/dlq/replay", {"task": task, "bogus": 1})
        check(status == 400, f"replay with an unknown key: {status} {doc}")

        # -- the dashboard: every service read, the job's generations counted --------------------
        status, _, doc = api.call("GET", "/api/dashboard")
        check(status == 200 and doc["health"]["total"] == 6 and doc["health"]["ready"] == 6,
              f"dashboard health: {status} {doc and doc.get('health')}")
        perf = (doc or {}).get("performance", {})
        check(perf.get("generations", 0) >= 7 and 0 < perf.get("success_rate", 0) <= 1
              and perf.get("throughput_per_hour", 0) > 0, f"dashboard performance: {perf}")
        alerts = [a["alert"] for a in (doc or {}).get("alerts", [])]
        check("DeadLetters" in alerts and "ServiceNotReady" not in alerts, f"dashboard alerts: {alerts}")
        check(doc["rate_limiting"]["concurrency_limit"] >= 1 and "hit_rate" in doc["cache"],
              f"dashboard rate limiting and cache: {doc.get('rate_limiting')} {doc.get('cache')}")
        status, _, _ = api.call("GET", "/api/dashboard", token=None)
        check(status == 401, f"dashboard without a token: {status}")

        # -- agentline submit --wait: the progress bar from the same stream ----------------------
        tasks_file = os.path.join(work, "cli.jsonl")
        with open(tasks_file, "w") as f:
            for i in range(4):
                f.write(json.dumps({"id": f"cli-{i}", "task_id": f"cli-t{i}", "job_id": "cli-wait", "type": "DEV_TASK",
                                    "created_at": "2026-11-30T10:00:00Z",
                                    "payload": {"path": f"cli/f{i}.py", "description": "x"}}) + "\n")
        r = stack.cli("submit", tasks_file, "--wait", "90", "--gateway", f"http://127.0.0.1:{api.port}", check=False)
        lines = [l for l in r.stdout.splitlines() if l.startswith("cli-wait [")]
        check(r.returncode == 0 and lines and "] 100%  4/4 files" in lines[-1] and "delivered 4" in lines[-1],
              f"submit --wait: exit {r.returncode}, {r.stdout[-600:]} {r.stderr[-300:]}")

        # -- operations and errors ---------------------------------------------------------------
        status, _, text = api.call("GET", "/metrics", token=None)
        check(status == 200 and "agentline_gateway_requests_total" in text and "process_resident_memory_bytes" in text
              and "agentline_gateway_streams" in text, "metrics")
        status, _, text = api.call("GET", "/readyz", token=None)
        check(status == 200, f"readyz: {status} {text}")
        status, _, _ = api.call("DELETE", "/api/jobs")
        check(status == 405, f"DELETE /api/jobs: {status}")
        status, _, _ = api.call("GET", "/api/nothing")
        check(status == 404, f"unknown path: {status}")
        status, headers, text = api.call("GET", "/", token=None)
        check(status == 200 and "text/html" in headers.get("Content-Type", "") and "EventSource" in text, "page")
        status, _, text = api.call("GET", "/api/openapi.yaml", token=None)
        check(status == 200 and "openapi: 3.0.3" in text, "openapi.yaml")

        # -- closed by default -------------------------------------------------------------------
        # dlq-escalator's admin routes take the same token (the gateway passed it on above).
        dlq_port = stack.port("dlq-escalator")
        conn = http.client.HTTPConnection("127.0.0.1", dlq_port, timeout=10)
        conn.request("POST", "/dlq/list", body="{}", headers={"Content-Type": "application/json"})
        status = conn.getresponse().status
        check(status == 401, f"dlq-escalator's /dlq/list without the token: {status}")
        # A gateway on every address without a token refuses to start, saying what to set.
        open_env = {k: v for k, v in os.environ.items() if k != "AGENTLINE_API_TOKEN"}
        gw = subprocess.run([os.path.join(bin_dir, "gateway"), "--http-host", "0.0.0.0", "--http-port", "0",
                             "--state-dir", stack.state], env=open_env, capture_output=True, text=True, timeout=30)
        check(gw.returncode == 2 and "--api-token-file" in gw.stderr and "--insecure-no-auth" in gw.stderr,
              f"a gateway on 0.0.0.0 without a token exits 2 and says what to set: {gw.returncode} {gw.stderr[-300:]}")

        # -- clients that went away free their stream slots --------------------------------------
        # A gateway with three slots: three clients wait for a job that is not there yet, and are
        # killed (their sockets reset). Within a few heartbeats the slots are free again.
        port = harness.free_port()
        gw = subprocess.Popen([os.path.join(bin_dir, "gateway"), "--http-port", str(port), "--state-dir", stack.state,
                               "--max-streams", "3", "--sse-heartbeat-ms", "300", "--unknown-job-wait-ms", "600000"],
                              env=open_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            slots = Client(port)
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    if slots.call("GET", "/readyz", token=None)[0] == 200:
                        break
                except OSError:
                    pass  # not listening yet
                time.sleep(0.2)

            def open_stream():
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(b"GET /api/progress/stream/later HTTP/1.1\r\nHost: x\r\n\r\n")
                return s, s.recv(4096).split(b"\r\n", 1)[0]
            held = [open_stream() for _ in range(3)]
            check(all(b"200" in line for _, line in held), f"three streams open: {[line for _, line in held]}")
            check(b"503" in open_stream()[1], "a fourth is refused while three are open")
            for s, _ in held:  # killed clients: the connection is reset, nothing closes it politely
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            started, line = time.time(), b""
            while time.time() - started < 10:
                s, line = open_stream()
                s.close()
                if b"200" in line:
                    break
                time.sleep(0.2)
            check(b"200" in line, f"the dead clients' slots were freed within 10 s ({time.time() - started:.1f} s)")
        finally:
            gw.terminate()
            gw.wait(timeout=30)
    except Exception as e:  # noqa: BLE001
        failures.append(f"the run failed: {e!r}")
    finally:
        stack.stop()
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        print("--- agentline up (last lines)\n" + stack.tail_log(80))
        print(f"work directory kept: {work}")
        return 1
    os.system(f"rm -rf {work}")
    print("PASS: gateway API (auth, validation, SSE with resume and heartbeats, ETag/304, jobs, DLQ and replay)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
