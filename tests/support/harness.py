"""Shared pieces of the chaos and poison runs: the six services under `agentline up`, the
loopback LLM and webhook servers, scrapes, process lookup and the DLQ store.

Nothing here fakes Kafka: the services talk to the embedded broker (librdkafka's mock cluster,
in `agentline broker`) or to a real Apache Kafka started by tests/kafka/kafka-local.sh.
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

SERVICES = ["priority-assigner", "dev-fix-worker", "qa-worker", "router", "outbox-uploader", "dlq-escalator"]
# `agentline up` starts these six and then the gateway (its HTTP port is the one after theirs).
ALL_SERVICES = SERVICES + ["gateway"]


# The checks of a test run (check()), so a test reports every failed check, not just the first.
failures = []


def check(cond, what):
    """Records a failed check (and logs every check); returns the condition."""
    if not cond:
        failures.append(what)
        log("FAIL: " + what)
    else:
        log("ok: " + what)
    return cond


def finish(where):
    """Exits 1 when a check failed (saying where the logs are), else says all passed."""
    if failures:
        log(f"{len(failures)} check(s) failed; logs: {where}")
        sys.exit(1)
    log("all checks passed")


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def expected_content(path):
    """What tests/support/fake_llm_server.py answers for a file."""
    return f'"""{path}"""\n\n\ndef main():\n    return "{path}"\n'


def parse_metrics(text):
    """Prometheus text format -> {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return out


def metric_sum(metrics, name, **match):
    total = 0.0
    for (n, labels), v in metrics.items():
        if n != name:
            continue
        d = dict(labels)
        if all(d.get(k) == val for k, val in match.items()):
            total += v
    return total


class ServerProcess:
    """A tests/support HTTP server on a free port (it writes the port to a file)."""

    def __init__(self, root, script, work, name, *args):
        port_file = os.path.join(work, name + ".port")
        self.log = open(os.path.join(work, name + ".log"), "w")
        self.proc = subprocess.Popen([sys.executable, os.path.join(root, "tests/support", script), port_file, *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        self.port = int(open(port_file).read().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def admin(self, body):
        return http("POST", self.url + "/admin/mode", body)

    def stats(self):
        return json.loads(http("GET", self.url + "/admin/stats", timeout=30)[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


class Stack:
    """`agentline up` with the six services, on the embedded broker or a given cluster."""

    def __init__(self, bin_dir, work, env, bootstrap=None, prefix=None, grace_ms=5000, log_name="up.log"):
        self.bin = bin_dir
        self.work = work
        self.state = os.path.join(work, "state")
        os.makedirs(self.state, exist_ok=True)
        self.base_port = free_port_block(len(ALL_SERVICES))
        self.globals = ["--state-dir", self.state]
        if bootstrap:
            self.globals += ["--bootstrap-servers", bootstrap]
        if prefix:
            self.globals += ["--topic-prefix", prefix]
        self.env = dict(os.environ, **env)
        self.log_path = os.path.join(work, log_name)
        self.up_log = open(self.log_path, "w")
        self.up = subprocess.Popen([os.path.join(bin_dir, "agentline"), "up", *self.globals,
                                    "--base-http-port", str(self.base_port), "--shutdown-grace-ms", str(grace_ms)],
                                   stdout=self.up_log, stderr=subprocess.STDOUT, env=self.env)
        if bootstrap:
            self.bootstrap = bootstrap
        else:
            path = os.path.join(self.state, "bootstrap")
            for _ in range(200):
                if os.path.exists(path) and open(path).read().strip():
                    break
                if self.up.poll() is not None:
                    raise RuntimeError("agentline up exited: " + self.tail_log())
                time.sleep(0.1)
            self.bootstrap = open(path).read().strip()

    def port(self, service):
        return self.base_port + ALL_SERVICES.index(service)

    def tail_log(self, lines=40):
        if not self.up_log.closed:
            self.up_log.flush()
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def children(self):
        """{name: pid} of the processes `agentline up` runs now ("broker" for the embedded one)."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != self.up.pid:
                    continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            name = os.path.basename(argv[0].decode())
            if name == "agentline" and len(argv) > 1 and argv[1] == b"broker":
                name = "broker"
            found[name] = int(entry)
        return found

    def uptimes(self):
        """{name: seconds since the process started} for the processes `agentline up` runs now."""
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            now = float(f.read().split()[0])
        found = {}
        for name, pid in self.children().items():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    start = int(f.read().rsplit(")", 1)[1].split()[19])
            except (OSError, ValueError, IndexError):
                continue
            found[name] = now - start / ticks
        return found

    def ready(self, service):
        try:
            return http("GET", f"http://127.0.0.1:{self.port(service)}/readyz", timeout=2)[0] == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, services=ALL_SERVICES, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.up.poll() is not None:
                raise RuntimeError("agentline up exited: " + self.tail_log())
            if all(self.ready(s) for s in services):
                return
            time.sleep(0.25)
        raise RuntimeError("services not ready: " + ", ".join(s for s in services if not self.ready(s)))

    def scrape(self, service, timeout=2):
        try:
            return parse_metrics(http("GET", f"http://127.0.0.1:{self.port(service)}/metrics", timeout=timeout)[1]
                                 .decode(errors="replace"))
        except (urllib.error.URLError, OSError):
            return None

    def kill(self, service, sig=signal.SIGKILL):
        pid = self.children().get(service)
        if pid is None:
            return None
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return None
        return pid

    def restarts(self):
        if not self.up_log.closed:
            self.up_log.flush()
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        return {s: len(re.findall(rf"(?m)^\S+ agentline error {re.escape(s)} \(pid \d+\) "
                                  r"(?:killed by signal|exited with)", text))
                for s in SERVICES}

    def api(self, method, path, body=None):
        """The gateway's API (no token): (status, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port('gateway')}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def wait_jobs(self, jobs, timeout, ended=lambda doc: doc.get("complete"), poll=0.5):
        """GET /api/jobs/{job} until ended(document) for every job, or the timeout; the documents seen."""
        deadline, docs = time.time() + timeout, {}
        while time.time() < deadline:
            for job in jobs:
                status, doc = self.api("GET", f"/api/jobs/{job}")
                if status == 200:
                    docs[job] = doc
            if all(j in docs and ended(docs[j]) for j in jobs):
                break
            time.sleep(poll)
        return docs

    def topic(self, name):
        """Every record of agentline.<name> as [(key, value as JSON)], in partition order (kcat)."""
        out = subprocess.run(["kcat", "-C", "-b", self.bootstrap, "-t", "agentline." + name, "-e", "-q",
                              "-f", "%k\t%s\n"], capture_output=True, text=True, timeout=60).stdout
        records = []
        for line in out.splitlines():
            if "\t" not in line:
                continue
            key, value = line.split("\t", 1)
            try:
                records.append((key, json.loads(value)))
            except ValueError:
                pass
        return records

    def cli(self, *args, check=True, timeout=600):
        return subprocess.run([os.path.join(self.bin, "agentline"), *args, *self.globals], env=self.env,
                              capture_output=True, text=True, check=check, timeout=timeout)

    def dlq_records(self):
        db = os.path.join(self.state, "dlq-escalator.db")
        if not os.path.exists(db):
            return []
        out = subprocess.run([os.path.join(self.bin, "dlq-escalator"), "list", "--json", "--include-replayed",
                              "--limit", "1000000", "--db", os.path.join(self.state, "dlq-escalator.db")],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def stop(self):
        if self.up.poll() is None:
            self.up.send_signal(signal.SIGTERM)
            try:
                self.up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.up.kill()
                self.up.wait()
        self.up_log.close()


def kafka_topics(bin_dir, kafka_state, name):
    """(bootstrap, prefix) for a run on the Apache Kafka of tests/kafka/kafka-local.sh at
    `kafka_state`, with the catalog's topics applied under a prefix of its own ("<name>-<pid>.");
    (None, None) without one: the embedded broker of `agentline up`."""
    if not kafka_state:
        return None, None
    bootstrap = open(os.path.join(kafka_state, "bootstrap")).read().strip()
    prefix = f"{name}-{os.getpid()}."
    subprocess.run([os.path.join(bin_dir, "agentline"), "topics", "apply", "--bootstrap-servers", bootstrap,
                    "--topic-prefix", prefix, "--replication-factor", "1"], check=True, capture_output=True)
    return bootstrap, prefix


def free_port_block(n):
    """A base port with the n ports above it free (the services' /metrics ports). Drawn below
    Linux's ephemeral range (32768-60999), so that tests running side by side, whose brokers and
    clients take ephemeral ports, cannot take one of the block between this check and the bind."""
    for _ in range(50):
        base = random.randint(20000, 32000)
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base
    raise RuntimeError("no free block of ports")


def write_tasks(path, n, jobs, prefix):
    """n valid DEV_TASKs over `jobs` jobs; returns {task_id: (job_id, path)}."""
    tasks = {}
    with open(path, "w") as f:
        for i in range(n):
            job = f"{prefix}-{i % jobs:02d}"
            file_path = f"pkg{i % 7}/mod_{i:05d}.py"
            task_id = f"{prefix}-t{i:05d}"
            tasks[task_id] = (job, file_path)
            f.write(json.dumps({"id": f"{prefix}-m{i:05d}", "task_id": task_id, "job_id": job, "type": "DEV_TASK",
                                "created_at": "2026-11-30T10:00:00Z",
                                "payload": {"path": file_path, "description": f"module {i}", "language": "python",
                                            "tenant": f"tenant{i % 3}"}}) + "\n")
    return tasks
