#!/usr/bin/env python3
"""A test OpenAI-compatible chat-completions server on loopback.

POST /v1/chat/completions answers according to the current mode:
  ok     200 with a fenced Python file naming the request's file, and token usage
  429    429 with Retry-After (seconds, --retry-after) and x-ratelimit-* headers
  503    503 Service Unavailable
  hang   accepts the request and never answers (until the mode changes or 60 s pass)
In mode ok, a provider's capacity and load: with "capacity" C > 0 a request arriving while C are
being answered gets a 429 (Retry-After: retry_after); each request takes latency_ms plus
load_latency_ms for every other request being answered (a latency that grows with load).
Control and inspection (for tests):
  POST /admin/mode {"mode": "...", "latency_ms": 0, "retry_after": 1, "capacity": 0, "load_latency_ms": 0}
  GET  /admin/stats -> {"requests": n, "by_mode": {...}, "max_concurrent": n, "over_capacity": n,
                        "timestamps": [...]}
Usage: fake_llm_server.py PORT_FILE   (binds 127.0.0.1:0 and writes the port to PORT_FILE)
"""
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"mode": "ok", "latency_ms": 0, "retry_after": 1, "capacity": 0, "load_latency_ms": 0}
stats = {"requests": 0, "by_mode": {}, "max_concurrent": 0, "over_capacity": 0, "timestamps": []}
concurrent = 0
lock = threading.Lock()
mode_changed = threading.Condition(lock)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/admin/stats":
            with lock:
                self._send(200, stats)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        global concurrent
        body = self._body()
        if self.path == "/admin/mode":
            update = json.loads(body or b"{}")
            with lock:
                state.update(update)
                mode_changed.notify_all()
            self._send(200, state)
            return
        if not self.path.endswith("/chat/completions"):
            self._send(404, {"error": "not found"})
            return
        with lock:
            mode = state["mode"]
            stats["requests"] += 1
            stats["by_mode"][mode] = stats["by_mode"].get(mode, 0) + 1
            stats["timestamps"].append(time.time())
            over = mode == "ok" and 0 < state["capacity"] <= concurrent
            concurrent += 1
            stats["max_concurrent"] = max(stats["max_concurrent"], concurrent)
            latency = (state["latency_ms"] + state["load_latency_ms"] * (concurrent - 1)) / 1000.0
            retry_after = state["retry_after"]
            if over:
                stats["over_capacity"] += 1
                mode = "429"
                latency = 0
        try:
            if mode == "hang":
                with lock:
                    mode_changed.wait_for(lambda: state["mode"] != "hang", timeout=60)
                self.close_connection = True
                return
            if latency:
                time.sleep(latency)
            if mode == "429":
                self._send(429, {"error": {"message": "rate limited"}},
                           {"Retry-After": str(retry_after), "x-ratelimit-remaining-requests": "0",
                            "x-ratelimit-reset-requests": f"{retry_after}s"})
                return
            if mode == "503":
                self._send(503, {"error": {"message": "overloaded"}})
                return
            request = json.loads(body)
            user = request["messages"][-1]["content"]
            names = re.findall(r"^File: (.*)$", user, re.M) or ["file"]
            with lock:
                stats.setdefault("files_per_request", []).append(len(names))
            blocks = []
            for name in names:
                code = f'"""{name}"""\n\n\ndef main():\n    return "{name}"\n'
                blocks.append((f"File: {name}\n" if len(names) > 1 else "") + f"```python\n{code}```\n")
            content = "Here it is:\n" + "\n".join(blocks)
            self._send(200, {"id": "cmpl-1", "model": request.get("model", "fake"),
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                             "usage": {"prompt_tokens": len(user) // 4, "completion_tokens": len(content) // 4}},
                       {"x-ratelimit-remaining-requests": "1000", "x-ratelimit-reset-requests": "1s"})
        finally:
            with lock:
                concurrent -= 1


class Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: 64 clients connecting at once overflowed it, and
    # the dropped connects came back a second later (SYN retransmission), which looked like a
    # slow backend in the benchmarks.
    request_queue_size = 256


def main():
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
