#!/usr/bin/env python3
"""Loopback delivery targets for tests: a webhook that fails at random, a Slack-style digest
receiver, and the two Azure DevOps work-item endpoints outbox-uploader uses.

Webhook  POST /hook   JSON item, header Idempotency-Key (required).
  A new key creates the item (201 {"id", "duplicate": false}); a known key answers the
  stored item (200 {"id", "duplicate": true}) -- the idempotency contract.
  Failures: whether a request fails is drawn with "fail_rate" (seeded); which way it fails
  takes "kinds" in turn, so the first len(kinds) failures show every kind whatever the timing:
    500      before anything is stored
    429      before anything is stored, with Retry-After: 1
    timeout  the item IS stored, then the answer comes too late (the client times out)
  "status": N answers every request with N (e.g. 422, 503) and stores nothing.
  "latency_ms": every answer is delayed after the item is stored (to catch a process mid-batch).
Digest   POST /digest  stores the message.
Azure DevOps (Basic auth ":<pat>" required; --pat):
  POST /<org>/<project>/_apis/wit/wiql            {"query": "... CONTAINS '<tag>'"}
  POST /<org>/<project>/_apis/wit/workitems/$Type  JSON Patch (application/json-patch+json)
Admin:
  POST /admin/mode {"fail_rate": 0.3, "kinds": ["500", "429", "timeout"], "status": 0, "latency_ms": 0, "seed": 1}
  POST /admin/ado/seed {"tag": "...", "title": "..."}   a work item made by someone earlier
  GET  /admin/stats  -> {"posts", "created", "creates_per_key", "items", "failures", "in_latency",
                         "digests": [...], "ado": [...], "ado_creates"}
Usage: fake_target_server.py PORT_FILE [--pat PAT]
"""
import base64
import json
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
mode = {"fail_rate": 0.0, "kinds": ["500", "429", "timeout"], "status": 0, "latency_ms": 0, "timeout_s": 3.0}
rng = random.Random(1)
state = {"posts": 0, "created": 0, "creates_per_key": {}, "items": {}, "failures": {}, "in_latency": 0,
         "digests": [], "ado": [], "ado_creates": 0, "ado_queries": 0}
pat = ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, body, headers=None):
        data = json.dumps(body).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/admin/stats":
            with lock:
                self._send(200, state)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        body = self._body()
        if self.path == "/admin/mode":
            update = json.loads(body or b"{}")
            with lock:
                mode.update(update)
                if "seed" in update:
                    rng.seed(update["seed"])
            return self._send(200, mode)
        if self.path == "/admin/ado/seed":
            item = json.loads(body)
            with lock:
                wid = 1000 + len(state["ado"])
                state["ado"].append({"id": wid, "type": "Task", "fields": {"System.Title": item["title"], "System.Tags": "agentline; " + item["tag"]}, "relations": []})
            return self._send(200, {"id": wid})
        if self.path == "/hook":
            return self._hook(body)
        if self.path == "/digest":
            with lock:
                state["digests"].append(json.loads(body))
            return self._send(200, {"ok": True})
        m = re.match(r"^/([^/]+)/([^/]+)/_apis/wit/(wiql|workitems/\$([^?]+))\?api-version=", self.path)
        if m:
            return self._ado(m, body)
        self._send(404, {"error": "not found", "path": self.path})

    def _hook(self, body):
        key = self.headers.get("Idempotency-Key")
        if not key:
            return self._send(400, {"error": "Idempotency-Key required"})
        item = json.loads(body)
        with lock:
            state["posts"] += 1
            failure = None
            if mode["status"]:
                failure = str(mode["status"])
            elif rng.random() < mode["fail_rate"]:
                failed = sum(state["failures"].values())
                failure = mode["kinds"][failed % len(mode["kinds"])]
            if failure:
                state["failures"][failure] = state["failures"].get(failure, 0) + 1
            if failure in ("500", "429") or (failure and failure != "timeout"):
                code = int(failure)
                headers = {"Retry-After": "1"} if code == 429 else {}
                return self._send(code, {"error": "injected " + failure}, headers)
            duplicate = key in state["items"]
            if not duplicate:
                state["created"] += 1
                state["items"][key] = {"id": "wh-%d" % state["created"], "item": item}
            state["creates_per_key"][key] = state["creates_per_key"].get(key, 0) + (0 if duplicate else 1)
            stored = state["items"][key]
            delay = mode["latency_ms"] / 1000.0
            if failure == "timeout":
                delay = max(delay, mode["timeout_s"])
            state["in_latency"] += 1
        try:
            if delay:
                time.sleep(delay)
            self._send(200 if duplicate else 201, {"id": stored["id"], "duplicate": duplicate})
        finally:
            with lock:
                state["in_latency"] -= 1

    def _ado(self, m, body):
        expected = "Basic " + base64.b64encode((":" + pat).encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._send(401, {"message": "bad PAT"})
        org, project, what, wtype = m.group(1), m.group(2), m.group(3), m.group(4)
        if what == "wiql":
            query = json.loads(body)["query"]
            tag = re.search(r"CONTAINS '([^']+)'", query).group(1)
            with lock:
                state["ado_queries"] += 1
                hits = [{"id": w["id"], "url": "http://ado/_apis/wit/workItems/%d" % w["id"]}
                        for w in state["ado"] if tag in w["fields"].get("System.Tags", "")]
            return self._send(200, {"queryType": "flat", "workItems": hits})
        if self.headers.get("Content-Type") != "application/json-patch+json":
            return self._send(415, {"message": "expected application/json-patch+json"})
        ops = json.loads(body)
        fields, relations = {}, []
        for op in ops:
            if op["path"].startswith("/fields/"):
                fields[op["path"][len("/fields/"):]] = op["value"]
            elif op["path"] == "/relations/-":
                relations.append(op["value"])
        with lock:
            wid = 1000 + len(state["ado"])
            state["ado"].append({"id": wid, "type": wtype.replace("%20", " "), "fields": fields, "relations": relations})
            state["ado_creates"] += 1
        self._send(200, {"id": wid, "url": "http://ado/_apis/wit/workItems/%d" % wid,
                         "_links": {"html": {"href": "http://ado/%s/%s/_workitems/edit/%d" % (org, project, wid)}}})


class Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: many clients connecting at once overflowed it,
    # and the dropped connects came back a second later (SYN retransmission).
    request_queue_size = 256


def main():
    global pat
    args = sys.argv[1:]
    if "--pat" in args:
        i = args.index("--pat")
        pat = args[i + 1]
        del args[i:i + 2]
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(args[0] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(args[0] + ".tmp", args[0])
    server.serve_forever()


if __name__ == "__main__":
    main()
