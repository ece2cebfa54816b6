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
A provider's rate limits: with "rpm_limit" R > 0 (and/or "tpm_limit" T > 0) at most R requests
(T tokens, each request counting its prompt at 4 characters a token plus its max_tokens, as
OpenAI counts them) are answered per "window_s" seconds (60), sliding; beyond, 429 with
Retry-After (the seconds until room for one). Every answer carries x-ratelimit-limit-*, x-ratelimit-remaining-requests
/ -tokens and x-ratelimit-reset-requests / -tokens (the time until the window is empty again), as
OpenAI's do ("limited" counts the 429s).
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

state = {"mode": "ok", "latency_ms": 0, "retry_after": 1, "capacity": 0, "load_latency_ms": 0,
         "rpm_limit": 0, "tpm_limit": 0, "window_s": 60}
stats = {"requests": 0, "by_mode": {}, "max_concurrent": 0, "over_capacity": 0, "limited": 0, "answered": 0,
         "timestamps": [], "answered_at": []}
admitted = []  # (time, tokens) of requests admitted within the provider's window


def provider_check(now, tokens):
    """Under the lock: (admitted, retry_after_s, headers) against rpm_limit / tpm_limit."""
    window = float(state["window_s"])
    while admitted and admitted[0][0] <= now - window:
        admitted.pop(0)
    rpm, tpm = state["rpm_limit"], state["tpm_limit"]
    used_tokens = sum(t for _, t in admitted)
    room_in = max(0.001, admitted[0][0] + window - now) if admitted else 0.001  # the oldest leaves
    ok = (rpm <= 0 or len(admitted) + 1 <= rpm) and (tpm <= 0 or used_tokens + tokens <= tpm)
    if ok:
        admitted.append((now, tokens))
    # OpenAI's reset: the time until the limit is back to its initial state (the newest leaves).
    reset = max(0.001, admitted[-1][0] + window - now) if admitted else 0.001
    headers = {}
    if rpm > 0:
        headers["x-ratelimit-limit-requests"] = str(rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, rpm - len(admitted)))
        headers["x-ratelimit-reset-requests"] = "%.3fs" % reset
    if tpm > 0:
        headers["x-ratelimit-limit-tokens"] = str(tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, tpm - sum(t for _, t in admitted)))
        headers["x-ratelimit-reset-tokens"] = "%.3fs" % reset
    return ok, room_in, headers
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
            limit_headers = {}
            if mode == "ok" and not over and (state["rpm_limit"] > 0 or state["tpm_limit"] > 0):
                try:
                    req = json.loads(body)
                    tokens = sum(len(m.get("content", "")) for m in req.get("messages", [])) // 4 + int(req.get("max_tokens", 0))
                except (ValueError, AttributeError, TypeError):
                    tokens = 0
                admitted_now, reset, limit_headers = provider_check(time.time(), tokens)
                if not admitted_now:
                    stats["limited"] += 1
                    mode = "limited"
            concurrent += 1
            stats["max_concurrent"] = max(stats["max_concurrent"], concurrent)
            latency = (state["latency_ms"] + state["load_latency_ms"] * (concurrent - 1)) / 1000.0
            if mode == "limited":
                latency = 0
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
            if mode == "limited":
                self._send(429, {"error": {"message": "rate limit reached"}},
                           dict(limit_headers, **{"Retry-After": str(max(1, int(reset + 0.999)))}))
                return
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
                       limit_headers or {"x-ratelimit-remaining-requests": "1000", "x-ratelimit-reset-requests": "1s"})
            with lock:
                stats["answered"] += 1
                stats["answered_at"].append(time.time())
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
