#!/usr/bin/env python3
"""A recording proxy in front of an OpenAI-compatible server: every request is forwarded as it
is, and each exchange is appended to a JSON Lines log ({"t", "path", "status", "request",
"response"}), so a test can read the prompts the model received and the usage it reported.

    recording_proxy.py PORT UPSTREAM_URL LOG_FILE
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, upstream, log_path = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
lock = threading.Lock()


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization", "api-key")}
        req = urllib.request.Request(upstream + self.path, data=body, method=method, headers=headers)
        started = time.time()
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "application/json")
        except OSError as e:
            status, data, ctype = 502, json.dumps({"error": {"message": str(e)}}).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if method == "POST":
            def parse(raw):
                try:
                    return json.loads(raw or b"null")
                except ValueError:
                    return raw.decode(errors="replace")
            entry = {"t": started, "seconds": time.time() - started, "path": self.path, "status": status,
                     "request": parse(body), "response": parse(data)}
            with lock, open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def do_POST(self):
        self.forward("POST")

    def do_GET(self):
        self.forward("GET")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
