#!/usr/bin/env python3
"""Pipeline benchmarks for `make bench` (issue #8): the real binaries on the embedded broker
and on Apache Kafka (KRaft, loopback), measured side by side in one run. Writes one JSON line
per measurement to <out>/pipeline.jsonl; bench/report.py turns them into bench/REPORT.md.

usage: run.py BIN_DIR BENCH_BIN OUT_DIR [--quick]
environment: AGENTLINE_BENCH_SCENARIOS (a subset, see main), AGENTLINE_BENCH_LOG_LEVEL (the services'),
AGENTLINE_BENCH_STDERR=FILE (the tools' output), AGENTLINE_BENCH_KEEP=1 (keep the services' folders and logs).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from harness import free_port  # noqa: E402
BIN, BENCH, OUT = (os.path.abspath(a) for a in sys.argv[1:4])
QUICK = "--quick" in sys.argv
RUNS = 1 if QUICK else 3
RESULTS = os.path.join(OUT, "pipeline.jsonl")
COMMANDS = os.path.join(OUT, "commands.txt")
work = tempfile.mkdtemp(prefix="agentline-pipeline-bench-")


def log(msg):
    print("[pipeline] " + msg, flush=True)


def record(**kw):
    with open(RESULTS, "a") as f:
        f.write(json.dumps(kw) + "\n")


def note(cmd):
    with open(COMMANDS, "a") as f:
        f.write(" ".join(str(c) for c in cmd) + "\n")


def bench(*args, timeout=900):
    cmd = [BENCH] + [str(a) for a in args]
    note(cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if os.environ.get("AGENTLINE_BENCH_STDERR"):  # the tools' logs, for a closer look
        with open(os.environ["AGENTLINE_BENCH_STDERR"], "a") as f:
            f.write(r.stderr + r.stdout)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s %s" % (" ".join(cmd), r.stdout[-500:], r.stderr[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def cpu_of(pid, children=False):
    """User + system CPU seconds of `pid` (and of its children it has waited for, if `children`)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK"), sum(values) / os.sysconf("SC_CLK_TCK")


def rss_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Service:
    def __init__(self, name, broker, extra=(), port=None, wait=True):
        self.name = name
        self.port = port or free_port()
        self.state = tempfile.mkdtemp(dir=work, prefix=name + "-")
        cmd = [os.path.join(BIN, name), "--bootstrap-servers", broker.bootstrap, "--topic-prefix", broker.prefix,
               "--http-port", str(self.port), "--state-dir", self.state, "--log-level", os.environ.get("AGENTLINE_BENCH_LOG_LEVEL", "warn"),
               "--statistics-interval-ms", "1000", "--session-timeout-ms", "6000", "--shutdown-grace-ms", "3000"]
        if broker.catalog:
            cmd += ["--catalog", broker.catalog]
        cmd += list(extra)
        note(cmd)
        self.log = open(os.path.join(self.state, "log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.port, timeout=1).status == 200:
                    return
            except Exception:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.name, open(self.log.name).read()[-2000:]))
            time.sleep(0.2)
        raise RuntimeError("%s not ready" % self.name)

    def cpu(self):
        return cpu_of(self.proc.pid)

    def rss(self):
        return rss_of(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class EmbeddedBroker:
    kind = "embedded"

    def __init__(self, catalog=None):
        self.catalog = catalog
        self.prefix = "agentline."
        self.state = tempfile.mkdtemp(dir=work, prefix="broker-")
        cmd = [os.path.join(BIN, "agentline"), "broker", "--state-dir", self.state]
        if catalog:
            cmd += ["--catalog", catalog]
        note(cmd)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        path = os.path.join(self.state, "bootstrap")
        for _ in range(100):
            if os.path.exists(path) and os.path.getsize(path):
                break
            time.sleep(0.1)
        self.bootstrap = open(path).read().strip()

    def topic(self, logical):
        return self.prefix + logical

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)


class RealKafka:
    """One Apache Kafka (KRaft) for the whole run; each scenario gets its own topic prefix."""
    kind = "kafka"
    state = os.path.join(work, "kafka")
    started = False
    counter = 0

    @classmethod
    def start(cls):
        cmd = ["bash", os.path.join(ROOT, "tests", "kafka", "kafka-local.sh"), "start", "--state", cls.state]
        note(cmd)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        cls.address = open(os.path.join(cls.state, "bootstrap")).read().strip()
        cls.started = True

    @classmethod
    def shutdown(cls):
        if cls.started:
            subprocess.run(["bash", os.path.join(ROOT, "tests", "kafka", "kafka-local.sh"), "stop", "--state", cls.state],
                           stdout=subprocess.DEVNULL)

    def pids(self):
        return [int(open(os.path.join(RealKafka.state, f)).read()) for f in os.listdir(RealKafka.state)
                if f.startswith("node-") and f.endswith(".pid")]

    def __init__(self, catalog=None):
        RealKafka.counter += 1
        self.catalog = catalog
        self.prefix = "b%d." % RealKafka.counter
        self.bootstrap = RealKafka.address
        cmd = [os.path.join(BIN, "agentline"), "topics", "apply", "--bootstrap-servers", self.bootstrap, "--topic-prefix",
               self.prefix, "--replication-factor", "1"] + (["--catalog", catalog] if catalog else [])
        note(cmd)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def topic(self, logical):
        return self.prefix + logical

    def stop(self):
        pass


CHAIN_HOPS = 6  # the services a task passes through, submitted to delivered


def bench_catalog(partitions, chain=False):
    """The catalog with more partitions on the topics a scenario loads (the embedded broker
    keeps about 5 MB per partition); with `chain`, the topics of the hop chain too."""
    cat = json.load(open(os.path.join(ROOT, "topics", "catalog.json")))
    for t in cat["topics"]:
        if t["name"] in partitions:
            t["partitions"] = partitions[t["name"]]
    cat["topics"].append({"name": "bench.out", "partitions": partitions.get("events", 6), "key": "task_id", "configs": {}})
    if chain:
        cat["topics"] += [{"name": "bench.chain.%d" % i, "partitions": 6, "key": "task_id", "configs": {}}
                          for i in range(CHAIN_HOPS + 1)]
    path = os.path.join(work, "catalog-%d%s.json" % (abs(hash(json.dumps(partitions, sort_keys=True))), "-chain" if chain else ""))
    json.dump(cat, open(path, "w"))
    return path


# ---- 1. per-hop overhead: router against a bare consume->produce loop ---------------------

def hop(broker_cls):
    # Enough records that start-up and the last fetch do not dominate (the embedded broker keeps
    # about 5 MB per partition: 60,000 x 1 KB and 4,000 x 16 KB over 24 partitions fit).
    for size, count in ((1024, 60000 if not QUICK else 8000), (16384, 4000 if not QUICK else 800)):
        for run in range(RUNS):
            catalog = bench_catalog({"events": 24, "qa.requests": 24, "jobs.progress": 24})
            broker = broker_cls(catalog)
            try:
                bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("events"), "--count", count,
                      "--size", size, "--kind", "event", "--job", "hop", "--jobs-of", 20)
                bare = bench("bare", "--bootstrap", broker.bootstrap, "--in", broker.topic("events"),
                             "--out", broker.topic("bench.out"), "--group", "bare-%s%d-%d" % (broker.prefix, size, run), "--count", count)
                # Commits every 100 ms, so the end of the run is not hidden behind the default
                # 1 s interval (the bare loop commits synchronously at its end).
                router = Service("router", broker, ["--commit-interval-ms", "100"])
                cpu0 = router.cpu()
                d = bench("drain", "--bootstrap", broker.bootstrap, "--group", "router", "--topic", broker.topic("events"),
                          "--count", count)
                cpu = router.cpu() - cpu0
                # jobs.progress records the router produced per record in (coalesced: #23).
                progress = {o: sum(float(line.split()[-1]) for line in scrape(router).splitlines()
                                   if line.startswith('agentline_router_progress_records_total{outcome="%s"' % o))
                            for o in ("produced", "replaced")}
                router.stop()
                # Throughput, the same way for both: from the first record handled to the last
                # offset committed (acknowledged copies only). The bare loop times itself so; the
                # router from its first copy's CreateTime to the drain seeing every offset
                # committed. The copies' write rates (CreateTime, first to last) are kept beside.
                bare_span = bench("span", "--bootstrap", broker.bootstrap, "--topic", broker.topic("bench.out"))
                router_span = bench("span", "--bootstrap", broker.bootstrap, "--topic", broker.topic("qa.requests"))
                r_rate = count / max(0.001, (d["end_ms"] - router_span["first_ms"]) / 1000.0)
                b_rate = bare["msgs_per_s"]
                record(scenario="hop", broker=broker.kind, size=size, run=run, messages=count,
                       bare_msgs_per_s=b_rate, bare_cpu_us_per_msg=bare["cpu_us_per_msg"],
                       bare_write_msgs_per_s=bare_span["msgs_per_s"], router_write_msgs_per_s=router_span["msgs_per_s"],
                       router_drain_msgs_per_s=count / d["seconds"],
                       router_msgs_per_s=r_rate, router_cpu_us_per_msg=cpu * 1e6 / count,
                       progress_produced_per_msg=progress["produced"] / count,
                       progress_replaced_per_msg=progress["replaced"] / count,
                       ratio=r_rate / b_rate)
                log("hop %s %dB run %d: bare %.0f msg/s, router %.0f msg/s (write rates %.0f / %.0f)"
                    % (broker.kind, size, run, b_rate, r_rate, bare_span["msgs_per_s"], router_span["msgs_per_s"]))
            finally:
                broker.stop()


# ---- 2. end to end through all six services ----------------------------------------------

NOOP_CHECKS = None


def noop_checks():
    global NOOP_CHECKS
    if not NOOP_CHECKS:
        NOOP_CHECKS = os.path.join(work, "noop-checks.json")
        json.dump({".py": {"name": "noop", "argv": ["true"], "parser": "plain"}}, open(NOOP_CHECKS, "w"))
    return NOOP_CHECKS


def pipeline(broker, sandbox=False):
    """The six services; qa-worker's checks unsandboxed unless `sandbox` (then its default, bubblewrap)."""
    out_dir = tempfile.mkdtemp(dir=work, prefix="delivered-")
    return [
        Service("priority-assigner", broker),
        Service("dev-fix-worker", broker, ["--generator", "template", "--tenant-rate", "100000", "--tenant-burst", "100000"]),
        Service("qa-worker", broker, ["--checks", noop_checks()] + ([] if sandbox else ["--sandbox", "none"])),
        Service("router", broker),
        Service("outbox-uploader", broker, ["--target", "filesystem", "--output-root", out_dir, "--batch-max", "256"]),
        Service("dlq-escalator", broker),
    ]


def end_to_end_sandboxed(broker_cls):
    """The maximum end to end with qa-worker's checks in its bubblewrap sandbox (the default), as
    the stage loops it is compared with (#23: the maximum against the slowest bare stage loop)."""
    count = 2000 if not QUICK else 400
    for run in range(RUNS):
        broker = broker_cls(bench_catalog({}, chain=True))
        services = []
        try:
            services = pipeline(broker, sandbox=True)
            # Where the machine's CPU goes per task: each service (qa-worker with its checks), the broker.
            cpu0 = {s.name: cpu_of(s.proc.pid, children=True) for s in services}
            cpu0["broker"] = sum(cpu_of(p) for p in broker.pids())
            busy0, total0 = machine_cpu()
            bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.submitted"), "--count", count,
                  "--size", 400, "--kind", "task", "--job", "sbx%d" % run, "--jobs-of", 20)
            lat = bench("latency", "--bootstrap", broker.bootstrap, "--prefix", broker.prefix, "--job", "sbx%d" % run,
                        "--count", count, "--timeout-s", 600)
            busy1, total1 = machine_cpu()
            cpu = {s.name: cpu_of(s.proc.pid, children=True) - cpu0[s.name] for s in services}
            cpu["broker"] = sum(cpu_of(p) for p in broker.pids()) - cpu0["broker"]
            rate = lat["delivered"] / lat["span_s"]
            record(scenario="e2e_sandboxed", broker=broker.kind, run=run, load="max", tasks=count, tasks_per_s=rate,
                   p50_ms=lat["p50_ms"], p99_ms=lat["p99_ms"], machine_busy=(busy1 - busy0) / max(total1 - total0, 1e-9),
                   cpu_ms_per_task={k: v * 1000 / count for k, v in cpu.items()})
            log("e2e sandboxed %s run %d: %.0f tasks/s at full load, machine %.0f %% busy, CPU ms per task %s"
                % (broker.kind, run, rate, 100 * (busy1 - busy0) / max(total1 - total0, 1e-9),
                   ", ".join("%s %.2f" % (k, v * 1000 / count) for k, v in cpu.items())))
        finally:
            for s in services:
                s.stop()
            broker.stop()


def end_to_end(broker_cls):
    count = 2000 if not QUICK else 400
    for run in range(RUNS):
        broker = broker_cls(bench_catalog({}, chain=True))
        services = []
        try:
            services = pipeline(broker)
            idle = {s.name: s.rss() for s in services}
            # Maximum throughput: everything submitted at once.
            bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.submitted"), "--count", count,
                  "--size", 400, "--kind", "task", "--job", "max%d" % run, "--jobs-of", 20)
            peak = {s.name: 0 for s in services}
            lat = bench("latency", "--bootstrap", broker.bootstrap, "--prefix", broker.prefix, "--job", "max%d" % run,
                        "--count", count, "--timeout-s", 600)
            for s in services:
                peak[s.name] = max(peak[s.name], s.rss())
            max_rate = lat["delivered"] / lat["span_s"]
            if run == 0:
                for svc in services:
                    st = stage_stats(svc)
                    record(scenario="stage", broker=broker.kind, service=svc.name, span_s=lat["span_s"], **st)
            record(scenario="e2e", broker=broker.kind, run=run, load="max", tasks=count, tasks_per_s=max_rate,
                   p50_ms=lat["p50_ms"], p95_ms=lat["p95_ms"], p99_ms=lat["p99_ms"])
            log("e2e %s run %d: %.0f tasks/s at full load" % (broker.kind, run, max_rate))
            # 50% and 100% of that rate, paced.
            for share in (0.5, 1.0):
                rate = max_rate * share
                n = int(min(count, rate * 20))
                job = "r%d-%d" % (run, int(share * 100))
                bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.submitted"), "--count", n,
                      "--size", 400, "--kind", "task", "--job", job, "--jobs-of", 20, "--rate", "%.1f" % rate, "--first", 100000 * (1 + int(share * 2)))
                lat = bench("latency", "--bootstrap", broker.bootstrap, "--prefix", broker.prefix, "--job", job,
                            "--count", n, "--timeout-s", 600, "--hops", 1)
                for s in services:
                    peak[s.name] = max(peak[s.name], s.rss())
                record(scenario="e2e", broker=broker.kind, run=run, load="%d%%" % int(share * 100), tasks=n,
                       tasks_per_s=n / max(lat["span_s"], 1e-9), offered_per_s=rate,
                       p50_ms=lat["p50_ms"], p95_ms=lat["p95_ms"], p99_ms=lat["p99_ms"], hops=lat["hops"])
                log("e2e %s run %d at %d%%: p50 %.0f ms p99 %.0f ms" % (broker.kind, run, share * 100, lat["p50_ms"], lat["p99_ms"]))
            if run == 0:
                for s in services:
                    record(scenario="memory", broker=broker.kind, service=s.name, idle_rss=idle[s.name], load_rss=peak[s.name])
            # The latency goal's baseline on the same broker, the services stopped: six bare
            # consume->produce hops fed at the 50 % rate, the same number of records.
            for s in services:
                s.stop()
            services = []
            rate, n = max_rate * 0.5, int(min(count, max_rate * 0.5 * 20))
            chain = bench("chain", "--bootstrap", broker.bootstrap, "--count", n, "--rate", "%.1f" % rate, "--size", 400,
                          "--group", "chain-%d" % run,
                          *[a for i in range(CHAIN_HOPS + 1) for a in ("--topic", broker.topic("bench.chain.%d" % i))])
            record(scenario="chain", broker=broker.kind, run=run, load="50%", tasks=n, offered_per_s=rate,
                   hops=CHAIN_HOPS, p50_ms=chain["p50_ms"], p95_ms=chain["p95_ms"], p99_ms=chain["p99_ms"])
            log("chain of %d bare hops %s run %d at the 50%% rate: p50 %.0f ms p99 %.0f ms"
                % (CHAIN_HOPS, broker.kind, run, chain["p50_ms"], chain["p99_ms"]))
        finally:
            for s in services:
                s.stop()
            broker.stop()


# ---- 2b. a stage against its bare loop: qa-worker --------------------------------------

# The sandbox qa-worker starts a check in, as services/qa-worker/sandbox.cpp builds it.
BWRAP = ["bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
         "--ro-bind-try", "/bin", "/bin", "--ro-bind-try", "/sbin", "/sbin", "--ro-bind-try", "/lib", "/lib",
         "--ro-bind-try", "/lib64", "/lib64", "--ro-bind-try", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
         "--tmpfs", "/tmp", "--bind", "{dir}", "/work", "--chdir", "/work", "--clearenv",
         "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/work", "--setenv", "LANG", "C.UTF-8",
         "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--"]
QA_IN_FLIGHT = 4  # qa-worker's own sizing on 2 CPUs (two checks per CPU)


def qa_stage(broker_cls):
    """qa-worker with a trivial check (`true`) in its bubblewrap sandbox, beside a loop that starts
    the same command in the same sandbox with the same limits, as many at a time."""
    count = 2000 if not QUICK else 400
    for run in range(RUNS):
        broker = broker_cls(bench_catalog({"qa.requests": 12}))
        worker = None
        try:
            worker = Service("qa-worker", broker, ["--checks", noop_checks(), "--max-in-flight", str(QA_IN_FLIGHT)])
            settle_group([worker])
            bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("qa.requests"), "--count", count,
                  "--size", 300, "--kind", "event", "--job", "qa%d" % run)
            d = bench("drain", "--bootstrap", broker.bootstrap, "--group", "qa-worker", "--topic", broker.topic("qa.requests"),
                      "--count", count)
            passed = sum(float(line.split()[-1]) for line in scrape(worker).splitlines()
                         if line.startswith('agentline_qa_checks_total{check="noop",outcome="passed"}'))
            if passed != count:
                raise RuntimeError("qa stage: %d of %d checks passed; the measurement would not be of the check" % (passed, count))
            rate = bench("span", "--bootstrap", broker.bootstrap, "--topic", broker.topic("events"))["msgs_per_s"]
            check_ms = handler_ms(worker)
            worker.stop()
            worker = None
            args = ["spawn", "--count", count, "--threads", QA_IN_FLIGHT]
            for a in BWRAP + ["true"]:
                args += ["--argv", a]
            bare = bench(*args)
            record(scenario="qa_stage", broker=broker.kind, run=run, checks=count, in_flight=QA_IN_FLIGHT, checks_per_s=rate,
                   drain_checks_per_s=count / d["seconds"], handler_ms=check_ms, bare_runs_per_s=bare["runs_per_s"],
                   ratio=rate / bare["runs_per_s"])
            log("qa stage %s run %d: %.0f checks/s, bare loop %.0f/s" % (broker.kind, run, rate, bare["runs_per_s"]))
        finally:
            if worker:
                worker.stop()
            broker.stop()


# ---- 2c. a stage against its bare loop: outbox-uploader --------------------------------

OUTBOX_CONCURRENCY = 8  # outbox-uploader's own sizing on 2 CPUs (four uploads per CPU)


def outbox_stage(broker_cls):
    """outbox-uploader delivering QA_PASSED files to a folder (filesystem target), beside a loop
    making the same durable writes per file (write, fsync, rename, fsync the folder) with as many
    threads."""
    # Enough that the batcher's start (10 items, growing to its bound) does not dominate: the bare
    # loop writes about 5,000 files/s here.
    count = 6000 if not QUICK else 1000
    for run in range(RUNS):
        broker = broker_cls(bench_catalog({"deploy.requests": 12}))
        uploader = None
        try:
            out_dir = tempfile.mkdtemp(dir=work, prefix="delivered-")
            uploader = Service("outbox-uploader", broker, ["--target", "filesystem", "--output-root", out_dir,
                                                           "--upload-concurrency", str(OUTBOX_CONCURRENCY)])
            settle_group([uploader])
            bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("deploy.requests"), "--count", count,
                  "--size", 1024, "--kind", "passed", "--job", "ob%d" % run, "--jobs-of", 20)
            deadline = time.time() + 600
            uploaded = 0
            while time.time() < deadline:
                uploaded = sum(float(line.split()[-1]) for line in scrape(uploader).splitlines()
                               if line.startswith("agentline_outbox_uploads_total") and 'outcome="uploaded"' in line)
                if uploaded >= count:
                    break
                time.sleep(0.2)
            if uploaded != count:
                raise RuntimeError("outbox stage: %d of %d items uploaded" % (uploaded, count))
            st = stage_stats(uploader)
            uploader.stop()
            uploader = None
            # Items/s: their UPLOADED events by CreateTime, first to last (published after each batch).
            rate = bench("span", "--bootstrap", broker.bootstrap, "--topic", broker.topic("events"))["msgs_per_s"]
            bare = bench("files", "--count", count, "--threads", OUTBOX_CONCURRENCY, "--size", 1024,
                         "--dir", tempfile.mkdtemp(dir=work, prefix="bare-files-"))
            record(scenario="outbox_stage", broker=broker.kind, run=run, items=count, concurrency=OUTBOX_CONCURRENCY,
                   items_per_s=rate, stage_handler_ms=st["handler_ms_mean"], bare_files_per_s=bare["files_per_s"],
                   ratio=rate / bare["files_per_s"])
            log("outbox stage %s run %d: %.0f items/s, bare loop %.0f files/s (staging %.1f ms per record)"
                % (broker.kind, run, rate, bare["files_per_s"], st["handler_ms_mean"]))
        finally:
            if uploader:
                uploader.stop()
            broker.stop()


# ---- 3. concurrency beyond partitions -----------------------------------------------------

def concurrency():
    count = 1500 if not QUICK else 400
    for run in range(RUNS):
        catalog = bench_catalog({"tasks.normal": 4})
        broker = EmbeddedBroker(catalog)
        port_file = os.path.join(work, "llm-port-%d" % run)
        llm = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "support", "fake_llm_server.py"), port_file],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        worker = None
        try:
            for _ in range(100):
                if os.path.exists(port_file) and os.path.getsize(port_file):
                    break
                time.sleep(0.1)
            port = int(open(port_file).read())
            req = urllib.request.Request("http://127.0.0.1:%d/admin/mode" % port, data=json.dumps({"mode": "ok", "latency_ms": 200}).encode(),
                                         method="POST")
            urllib.request.urlopen(req).read()
            bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.normal"), "--count", count,
                  "--size", 300, "--kind", "task", "--job", "conc", "--jobs-of", 1000000, "--priority", "normal")
            worker = Service("dev-fix-worker", broker, ["--generator", "openai", "--llm-base-url", "http://127.0.0.1:%d/v1" % port,
                                                        "--max-in-flight", "64", "--llm-max-in-flight", "64", "--batch-max-files", "1",
                                                        "--tenant-rate", "100000", "--tenant-burst", "100000", "--llm-timeout-ms", "10000"])
            d = bench("drain", "--bootstrap", broker.bootstrap, "--group", "dev-fix-worker", "--topic", broker.topic("tasks.normal"),
                      "--count", count)
            stats = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/admin/stats" % port).read())
            # Steady-state rate: the worker's FILE_COMPLETED events by their CreateTime (the
            # drain figure adds start-up and the last 1 s commit interval; kept beside it).
            rate = bench("span", "--bootstrap", broker.bootstrap, "--topic", broker.topic("events"))["msgs_per_s"]
            ideal = 64 / 0.2
            record(scenario="concurrency", broker="embedded", run=run, partitions=4, in_flight=64, latency_ms=200,
                   tasks=count, tasks_per_s=rate, drain_tasks_per_s=count / d["seconds"], ideal_per_s=ideal, ratio=rate / ideal,
                   max_concurrent=stats.get("max_concurrent"))
            log("concurrency run %d: %.0f tasks/s (ideal %.0f), server saw %s at once" % (run, rate, ideal, stats.get("max_concurrent")))
        finally:
            if worker:
                worker.stop()
            llm.kill()
            broker.stop()


def scrape(service):
    return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % service.port).read().decode()


def stage_stats(service):
    """Records a service finished, and its handler time (mean, p95 from the histogram)."""
    buckets, total, count, processed = {}, 0.0, 0.0, 0.0
    for line in scrape(service).splitlines():
        if line.startswith("agentline_records_processed_total{"):
            processed += float(line.split()[-1])
        elif line.startswith("agentline_handler_duration_seconds_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            key = float("inf") if le == "+Inf" else float(le)
            buckets[key] = buckets.get(key, 0) + float(line.split()[-1])
        elif line.startswith("agentline_handler_duration_seconds_sum"):
            total += float(line.split()[-1])
        elif line.startswith("agentline_handler_duration_seconds_count"):
            count += float(line.split()[-1])
    p95 = 0.0
    for le in sorted(buckets):
        if count and buckets[le] >= 0.95 * count:
            p95 = le
            break
    return {"records": processed, "handler_ms_mean": 1000 * total / count if count else 0.0,
            "handler_ms_p95_bucket": 1000 * p95}


def settle_group(services, quiet_s=3.0, timeout_s=60):
    """Waits until no member's rebalance count changed for quiet_s: every member is assigned
    before the measurement starts (a group join takes about 3 s on the embedded broker)."""
    def rebalances():
        total = 0.0
        for svc in services:
            for line in scrape(svc).splitlines():
                if line.startswith("agentline_rebalances_total"):
                    total += float(line.split()[-1])
        return total
    deadline = time.time() + timeout_s
    last, since = rebalances(), time.time()
    while time.time() < deadline:
        time.sleep(0.5)
        now = rebalances()
        if now != last:
            last, since = now, time.time()
        elif now > 0 and time.time() - since >= quiet_s:
            return


def handler_ms(service):
    """Mean handler time of a service so far, from its /metrics."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % service.port).read().decode()
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("agentline_handler_duration_seconds_sum"):
            total += float(line.split()[-1])
        elif line.startswith("agentline_handler_duration_seconds_count"):
            count += float(line.split()[-1])
    return 1000 * total / count if count else 0.0


# ---- 4. priority isolation ----------------------------------------------------------------

def fake_llm(latency_ms, name):
    """The loopback OpenAI-compatible test server, answering after latency_ms; returns (proc, port)."""
    port_file = os.path.join(work, "llm-port-%s" % name)
    llm = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "support", "fake_llm_server.py"), port_file],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(port_file) and os.path.getsize(port_file):
            break
        time.sleep(0.1)
    port = int(open(port_file).read())
    req = urllib.request.Request("http://127.0.0.1:%d/admin/mode" % port,
                                 data=json.dumps({"mode": "ok", "latency_ms": latency_ms}).encode(), method="POST")
    urllib.request.urlopen(req).read()
    return llm, port


LLM_WINDOW_S, LLM_RPW, LLM_TPW = 10, 60, 60 * 900  # the provider: 60 requests and 54,000 tokens per 10 s


def llm_provider(name):
    """The fake server as a rate-limited provider whose latency grows with load: 300 ms plus 20 ms
    per other call in flight; 429 with Retry-After beyond LLM_RPW requests / LLM_TPW tokens per
    LLM_WINDOW_S (sliding), x-ratelimit-* headers on every answer."""
    llm, port = fake_llm(300, name)
    req = urllib.request.Request("http://127.0.0.1:%d/admin/mode" % port, method="POST", data=json.dumps(
        {"mode": "ok", "latency_ms": 300, "load_latency_ms": 20, "rpm_limit": LLM_RPW, "tpm_limit": LLM_TPW,
         "window_s": LLM_WINDOW_S}).encode())
    urllib.request.urlopen(req).read()
    return llm, port


def provider_figures(port, start, seconds, **kw):
    """Answered calls per window over [start + one window, start + seconds] against the limit, and
    the share of calls answered 429."""
    stats = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/admin/stats" % port).read())
    lo, hi = start + LLM_WINDOW_S, start + seconds
    answered = sum(1 for t in stats["answered_at"] if lo <= t < hi)
    per_window = answered * LLM_WINDOW_S / (hi - lo)
    calls = stats["requests"]
    record(scenario="llm_economics", limit_per_window=LLM_RPW, window_s=LLM_WINDOW_S, answered_per_window=per_window,
           utilization=per_window / LLM_RPW, calls=calls, answered_429=stats["limited"],
           share_429=stats["limited"] / calls if calls else 0, **kw)
    log("llm %s: %.1f of %d per window (%.2f), %d of %d calls answered 429" % (
        kw.get("client"), per_window, LLM_RPW, per_window / LLM_RPW, stats["limited"], calls))


def provider_worker(broker, port, extra=()):
    """dev-fix-worker against the rate-limited provider with no limits of its own configured (it
    learns them from the provider), adaptive concurrency up to 32, one file per call."""
    return Service("dev-fix-worker", broker, ["--generator", "openai", "--llm-base-url", "http://127.0.0.1:%d/v1" % port,
                                              "--max-in-flight", "32", "--batch-max-files", "1", "--max-tokens", "800",
                                              "--tenant-rate", "100000", "--tenant-burst", "100000",
                                              "--llm-timeout-ms", "30000"] + list(extra))


def naive_client(port, seconds, callers=16):
    """The seeds' Python: N callers in a loop, each retrying a 429 with exponential backoff (1, 2,
    4 ... 32 s, with jitter), as fast as the provider answers otherwise."""
    import random
    import threading
    stop = time.time() + seconds
    body = json.dumps({"model": "fake", "max_tokens": 800,
                       "messages": [{"role": "user", "content": "File: x.py\n" + "write a module " * 20}]}).encode()

    def caller():
        backoff = 1.0
        while time.time() < stop:
            req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=30).read()
                backoff = 1.0
            except urllib.error.HTTPError as e:
                if e.code != 429:
                    continue
                time.sleep(min(backoff, max(0.0, stop - time.time())) * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 32)
            except OSError:
                continue
    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def llm_economics():
    """#22's benchmark: one rate-limited provider, dev-fix-worker (no limits configured: it learns
    them from the provider's headers and 429s) beside a naive client, each for 60 s."""
    seconds = 30 if QUICK else 60
    for run in range(RUNS):
        llm, port = llm_provider("econ-naive-%d" % run)
        try:
            start = time.time()
            naive_client(port, seconds)
            provider_figures(port, start, seconds, client="naive (16 callers, exponential backoff)", run=run)
        finally:
            llm.kill()
        catalog = bench_catalog({"tasks.normal": 4})
        broker = EmbeddedBroker(catalog)
        llm, port = llm_provider("econ-agentline-%d" % run)
        worker = None
        try:
            count = 60 * seconds  # more than the provider can take in the time
            bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.normal"), "--count", count,
                  "--size", 300, "--kind", "task", "--job", "econ", "--jobs-of", 1000000, "--priority", "normal")
            start = time.time()
            worker = provider_worker(broker, port)
            time.sleep(max(0.0, start + seconds - time.time()))
            provider_figures(port, start, seconds, client="agentline (dev-fix-worker, adaptive)", run=run)
        finally:
            if worker:
                worker.stop()
            llm.kill()
            broker.stop()


def fairness():
    """#22's fairness figures: tenant "flood" queues FLOOD tasks on tasks.normal, then tenant
    "trickle" sends one task every 1.5 s, against the rate-limited provider (6 calls/s). Trickle's
    submit-to-done wait, in service times (the worker's mean handler time), and the provider's
    utilization meanwhile (the flood takes what the trickle leaves). Beside it the same with
    --read-ahead 1: the worker sees one waiting record, so it takes them in the order they were
    written, as a FIFO consumer does."""
    flood, trickle = (300, 10) if QUICK else (400, 20)
    for mode in ("fair", "fifo"):
        for run in range(RUNS):
            broker = EmbeddedBroker(bench_catalog({"tasks.normal": 4}))
            llm, port = llm_provider("fair-%s-%d" % (mode, run))
            worker = None
            try:
                bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.normal"), "--count", flood,
                      "--size", 300, "--kind", "task", "--job", "flood", "--jobs-of", 1000000, "--priority", "normal",
                      "--tenant", "flood")
                extra = ["--read-ahead", "1"] if mode == "fifo" else []
                worker = provider_worker(broker, port, extra)
                time.sleep(LLM_WINDOW_S)  # the worker has learnt the provider's limits
                start = time.time()
                w = bench("wait", "--bootstrap", broker.bootstrap, "--prefix", broker.prefix, "--topic", broker.topic("tasks.normal"),
                          "--count", trickle, "--tenant", "trickle", "--priority", "normal", "--job", "trickle",
                          "--id-prefix", "trickle-", "--interval-ms", 1500, "--timeout-s", 600)
                end = time.time()
                service = handler_ms(worker)
                stats = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/admin/stats" % port).read())
                answered = sum(1 for t in stats["answered_at"] if start <= t < end)
                per_s = answered / (end - start)
                record(scenario="fairness", mode=mode, run=run, flood=flood, trickle=trickle, completed=w["completed"],
                       wait_ms_p50=w["wait_ms_p50"], wait_ms_p99=w["wait_ms_p99"], wait_ms_max=w["wait_ms_max"],
                       service_ms=service, answered_per_s=per_s, utilization=per_s * LLM_WINDOW_S / LLM_RPW,
                       answered_429=stats["limited"])
                log("fairness %s run %d: trickle wait p50 %.0f ms p99 %.0f ms max %.0f ms (service %.0f ms), provider at %.2f" %
                    (mode, run, w["wait_ms_p50"], w["wait_ms_p99"], w["wait_ms_max"], service, per_s * LLM_WINDOW_S / LLM_RPW))
            finally:
                if worker:
                    worker.stop()
                llm.kill()
                broker.stop()


def budget():
    """#22's budget figures: one job of TASKS files with a budget of BUDGET tokens, through
    priority-assigner, router (which charges the job and says when it is spent) and dev-fix-worker
    (template backend: 110 tokens a file, no wait for a model). What the job spent against its
    budget, and what became of every file: generated, or dead-lettered as budget_exhausted."""
    tasks, files_in_budget = (200, 20) if QUICK else (500, 50)
    for run in range(RUNS):
        broker = EmbeddedBroker()
        services = []
        try:
            for name in ("priority-assigner", "router", "dev-fix-worker"):
                services.append(Service(name, broker))
            # The template backend charges 110 tokens for each of these files (prompt + completion).
            limit = files_in_budget * 110
            start = time.time()
            bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.submitted"), "--count", tasks,
                  "--size", 300, "--kind", "task", "--job", "bud", "--priority", "normal", "--budget-tokens", limit)
            deadline = time.time() + 120
            while True:
                s = bench("summary", "--bootstrap", broker.bootstrap, "--prefix", broker.prefix, "--job", "bud")
                c = s.get("counts", {})
                if c.get("generated", 0) + c.get("dead_lettered", 0) >= tasks or time.time() > deadline:
                    break
                time.sleep(1)
            spent = s.get("usage", {}).get("tokens", 0)
            record(scenario="budget", run=run, tasks=tasks, budget_tokens=limit, spent_tokens=spent,
                   overrun_tokens=max(0, spent - limit), generated=c.get("generated", 0),
                   dead_lettered=c.get("dead_lettered", 0), accounted=c.get("generated", 0) + c.get("dead_lettered", 0),
                   seconds=time.time() - start, exhausted=s.get("budget", {}).get("exhausted", False))
            log("budget run %d: %d tokens spent of %d, %d generated, %d dead-lettered of %d" % (
                run, spent, limit, c.get("generated", 0), c.get("dead_lettered", 0), tasks))
        finally:
            for svc in services:
                svc.stop()
            broker.stop()


def priority(broker_cls):
    """A backlog of low tasks on a worker with a real service time (a 20 ms LLM, 8 calls in
    flight: ~350 tasks/s, so 20,000 lows take about a minute), then 50 critical tasks, one every
    20 ms. Their queueing wait = submit-to-completion minus the service time."""
    lows = 20000 if not QUICK else 4000
    crit = 50
    for mode in ("priority", "fifo"):
        for run in range(RUNS):
            broker = broker_cls(bench_catalog({"tasks.low": 12, "tasks.critical": 6}))
            llm, port = fake_llm(20, "prio-%s-%s-%d" % (broker.kind, mode, run))
            worker = None
            try:
                bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("tasks.low"), "--count", lows,
                      "--size", 300, "--kind", "task", "--job", "low", "--jobs-of", 20, "--priority", "low")
                worker = Service("dev-fix-worker", broker, ["--generator", "openai", "--llm-base-url", "http://127.0.0.1:%d/v1" % port,
                                                            "--max-in-flight", "8", "--llm-max-in-flight", "8", "--batch-max-files", "1",
                                                            "--tenant-rate", "1000000", "--tenant-burst", "1000000"])
                time.sleep(1.5)  # the backlog is being worked on
                # FIFO: the critical tasks queue behind the lows on the same topic.
                topic = broker.topic("tasks.critical") if mode == "priority" else broker.topic("tasks.low")
                w = bench("wait", "--bootstrap", broker.bootstrap, "--prefix", broker.prefix, "--topic", topic, "--count", crit,
                          "--timeout-s", 600)
                service = handler_ms(worker)
                record(scenario="priority", broker=broker.kind, mode=mode, run=run, low_backlog=lows, critical=crit,
                       latency_ms_mean=w["wait_ms_mean"], latency_ms_p99=w["wait_ms_p99"], service_ms=service,
                       wait_ms_mean=max(0.0, w["wait_ms_mean"] - service), wait_ms_p99=max(0.0, w["wait_ms_p99"] - service))
                log("priority %s %s run %d: critical submit-to-done mean %.1f ms p99 %.1f ms (service %.1f ms)" %
                    (broker.kind, mode, run, w["wait_ms_mean"], w["wait_ms_p99"], service))
            finally:
                if worker:
                    worker.stop()
                llm.kill()
                broker.stop()


# ---- 5. retry-delay precision -------------------------------------------------------------

def retries(broker_cls):
    for run in range(RUNS):
        broker = broker_cls(None)
        try:
            r = bench("retry", "--bootstrap", broker.bootstrap, "--prefix", broker.prefix, "--count", 300)
            record(scenario="retry", broker=broker.kind, run=run, **r)
            log("retry %s run %d: late p50 %.0f ms p99 %.0f ms" % (broker.kind, run, r["late_ms_p50"], r["late_ms_p99"]))
        finally:
            broker.stop()


# ---- 6. scale-out of qa-worker ------------------------------------------------------------

def scale_out():
    count = 240 if not QUICK else 60
    burn = os.path.join(work, "burn-checks.json")
    # Debian's python3 by absolute path: run as root, qa-worker drops to nobody for the check, who
    # cannot execute an interpreter under /root (pyenv); the first reports measured that failure.
    json.dump({".py": {"name": "burn", "argv": ["/usr/bin/python3", "-c", "x=0\nfor i in range(300000): x+=i"], "parser": "plain"}},
              open(burn, "w"))
    for instances in (1, 2, 4):
        for run in range(RUNS):
            broker = EmbeddedBroker(bench_catalog({"qa.requests": 12}))
            workers = []
            try:
                # One check at a time per instance: the group, not the thread pool, scales.
                workers = [Service("qa-worker", broker, ["--checks", burn, "--sandbox", "none", "--max-in-flight", "1"])
                           for _ in range(instances)]
                settle_group(workers)
                bench("fill", "--bootstrap", broker.bootstrap, "--topic", broker.topic("qa.requests"), "--count", count,
                      "--size", 300, "--kind", "event", "--job", "scale")
                d = bench("drain", "--bootstrap", broker.bootstrap, "--group", "qa-worker", "--topic", broker.topic("qa.requests"),
                          "--count", count)
                passed = sum(float(line.split()[-1]) for w in workers for line in scrape(w).splitlines()
                             if line.startswith('agentline_qa_checks_total{check="burn",outcome="passed"}'))
                if passed != count:
                    raise RuntimeError("scale-out: %d of %d checks passed; the measurement would not be of the check" % (passed, count))
                # The QA results' write rate, first to last (the drain figure beside it).
                rate = bench("span", "--bootstrap", broker.bootstrap, "--topic", broker.topic("events"))["msgs_per_s"]
                record(scenario="scale", broker="embedded", run=run, instances=instances, checks=count, checks_per_s=rate,
                       drain_checks_per_s=count / d["seconds"], check_ms=handler_ms(workers[0]))
                log("scale-out %d instance(s) run %d: %.1f checks/s (drain %.1f)" % (instances, run, rate, count / d["seconds"]))
            finally:
                for w in workers:
                    w.stop()
                broker.stop()


# ---- 7. rebalances: classic against the consumer group protocol (KIP-848) ----------------

def assigned(service):
    """The member's agentline_consumer_assigned_partitions, or None while it does not answer."""
    try:
        for line in urllib.request.urlopen("http://127.0.0.1:%d/metrics" % service.port, timeout=1).read().decode().splitlines():
            if line.startswith("agentline_consumer_assigned_partitions{"):
                return int(float(line.split()[-1]))
    except Exception:
        return None
    return 0


def watch_assignment(members, total, until, timeout_s=90, step_s=0.05):
    """Samples the members' assigned partitions every step_s from now on. Returns (seconds until
    until(counts) first held, partition-seconds nobody consumed meanwhile)."""
    t0 = time.time()
    gap = 0.0
    last = t0
    while time.time() - t0 < timeout_s:
        counts = [assigned(m) for m in members]
        now = time.time()
        held = sum(c or 0 for c in counts)
        gap += max(0, total - held) * (now - last)
        last = now
        if until(counts):
            return now - t0, gap
        time.sleep(step_s)
    raise RuntimeError("rebalance: the members never reached the expected assignment: %s" % counts)


def rebalance():
    """Three dev-fix-worker replicas on Apache Kafka, under each group protocol. One is SIGKILLed:
    the time until the two survivors hold every partition again (the session timeout, 6 s for
    both protocols here, plus the rebalance), and the partition-seconds no member consumed. Then
    a fourth replica joins: the time from its start until it holds partitions and every partition
    is held, and the partition-seconds unconsumed meanwhile (an eager classic rebalance revokes
    every member's partitions; the consumer protocol moves only those that move)."""
    cat = bench_catalog({"tasks.critical": 6, "tasks.high": 6, "tasks.normal": 6, "tasks.low": 6, "tasks.fix": 6})
    for protocol in ("classic", "consumer"):
        for run in range(RUNS):
            broker = RealKafka(cat)
            args = ["--generator", "template", "--group-protocol", protocol]
            members = []
            try:
                members = [Service("dev-fix-worker", broker, args) for _ in range(3)]
                settle_group(members)
                total = sum(assigned(m) for m in members)
                victim, survivors = members[0], members[1:]
                victim.proc.kill()
                victim.proc.wait()
                kill_s, kill_gap = watch_assignment(survivors, total, lambda c: sum(x or 0 for x in c) == total)
                settle_group(survivors)
                joiner = Service("dev-fix-worker", broker, args, wait=False)  # timed from its start
                members.append(joiner)
                everyone = survivors + [joiner]
                join_s, join_gap = watch_assignment(
                    everyone, total, lambda c: (c[-1] or 0) > 0 and sum(x or 0 for x in c) == total)
                record(scenario="rebalance", broker="kafka", protocol=protocol, run=run, partitions=total,
                       kill_to_reassigned_s=kill_s, kill_unconsumed_partition_s=kill_gap,
                       join_to_assigned_s=join_s, join_unconsumed_partition_s=join_gap)
                log("rebalance %s run %d: SIGKILL -> %d partitions held again in %.2f s (%.1f partition-s unconsumed); "
                    "join -> %.2f s (%.1f partition-s)" % (protocol, run, total, kill_s, kill_gap, join_s, join_gap))
            finally:
                for m in members:
                    m.stop()


def main():
    os.makedirs(OUT, exist_ok=True)
    open(RESULTS, "w").close()
    # AGENTLINE_BENCH_SCENARIOS=hop,e2e,e2e-sandboxed,qa,outbox,concurrency,priority,retry,scale,kafka (or
    # kafka-hop, kafka-e2e, kafka-e2e-sandboxed, kafka-qa, kafka-outbox, kafka-priority, kafka-retry) runs a subset.
    only = set(filter(None, os.environ.get("AGENTLINE_BENCH_SCENARIOS", "").split(",")))
    want = lambda name: not only or name in only
    try:
        if want("hop"):
            log("per-hop overhead (embedded)")
            hop(EmbeddedBroker)
        if want("e2e"):
            log("end to end (embedded)")
            end_to_end(EmbeddedBroker)
        if want("e2e-sandboxed"):
            log("end to end, checks sandboxed, maximum (embedded)")
            end_to_end_sandboxed(EmbeddedBroker)
        if want("qa"):
            log("qa-worker beside its bare loop (embedded)")
            qa_stage(EmbeddedBroker)
        if want("outbox"):
            log("outbox-uploader beside its bare loop (embedded)")
            outbox_stage(EmbeddedBroker)
        if want("concurrency"):
            log("concurrency beyond partitions")
            concurrency()
        if want("llm"):
            log("LLM economics: a rate-limited provider, agentline beside a naive client")
            llm_economics()
        if want("fairness"):
            log("fair tenants: a flood and a trickle against the rate-limited provider")
            fairness()
        if want("budget"):
            log("a job's budget: what it spent and what became of its files")
            budget()
        if want("priority"):
            log("priority isolation")
            priority(EmbeddedBroker)
        if want("retry"):
            log("retry-delay precision (embedded)")
            retries(EmbeddedBroker)
        if want("scale"):
            log("scale-out")
            scale_out()
        # "kafka" runs all three on Apache Kafka; kafka-hop, kafka-e2e, kafka-retry one each.
        on_kafka = [n for n in ("hop", "e2e", "e2e-sandboxed", "qa", "outbox", "priority", "retry", "rebalance")
                    if want("kafka") or want("kafka-" + n)]
        if on_kafka:
            log("real Kafka: " + ", ".join(on_kafka))
            RealKafka.start()
            if "hop" in on_kafka:
                hop(RealKafka)
            if "e2e" in on_kafka:
                end_to_end(RealKafka)
            if "e2e-sandboxed" in on_kafka:
                end_to_end_sandboxed(RealKafka)
            if "qa" in on_kafka:
                qa_stage(RealKafka)
            if "outbox" in on_kafka:
                outbox_stage(RealKafka)
            if "priority" in on_kafka:
                priority(RealKafka)
            if "retry" in on_kafka:
                retries(RealKafka)
            if "rebalance" in on_kafka:
                rebalance()
    finally:
        RealKafka.shutdown()
        if os.environ.get("AGENTLINE_BENCH_KEEP"):  # the services' logs, for a closer look
            log("kept %s (each service's log is <service>-*/log)" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
