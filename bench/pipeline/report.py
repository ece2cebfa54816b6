#!/usr/bin/env python3
"""The pipeline part of bench/REPORT.md (from <out>/pipeline.jsonl), and bench/pipeline.png."""
import json
import os
import statistics


LLM_TPW = 60 * 900  # bench/pipeline/run.py's provider: tokens per window


def load(out):
    path = os.path.join(out, "pipeline.jsonl")
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []


def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def latency_against_chain(rows, broker):
    """The end-to-end runs at 50 % and the hop chain's on `broker`, and the pipeline's p50 and p99
    as multiples of the chain's; None unless both were measured."""
    cs = [x for x in rows if x["scenario"] == "chain" and x["broker"] == broker]
    ps = [x for x in rows if x["scenario"] == "e2e" and x["broker"] == broker and x["load"] == "50%"]
    if not cs or not ps:
        return None
    return ps, cs, med(ps, "p50_ms") / max(med(cs, "p50_ms"), 1e-9), med(ps, "p99_ms") / max(med(cs, "p99_ms"), 1e-9)


def hop_breakdown(rows):
    """Rows of the per-step table: each step's p50 and p99 at 50 % load, medians over the runs."""
    out = []
    for broker in ("embedded", "kafka"):
        ps = [x for x in rows if x["scenario"] == "e2e" and x["broker"] == broker and x["load"] == "50%" and x.get("hops")]
        cs = [x for x in rows if x["scenario"] == "chain" and x["broker"] == broker]
        per_hop = "%.1f" % (med(cs, "p50_ms") / cs[0]["hops"]) if cs else "—"
        for i, step in enumerate(ps[0]["hops"] if ps else []):
            got = [x["hops"][i] for x in ps if len(x["hops"]) > i]
            out.append("| %s | %s | %.1f | %.1f | %s |" % (broker, step["step"], med(got, "p50_ms"), med(got, "p99_ms"),
                                                            per_hop))
    return out


def plot(rows, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot"
    stages = [r for r in rows if r["scenario"] == "stage"]
    if not stages:
        return "no stage data: no plot"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title, unit in ((axes[0], "throughput", "Throughput per stage (full load)", "records/s"),
                                 (axes[1], "handler_ms_mean", "Handler latency per stage (mean, full load)", "ms")):
        for i, broker in enumerate(sorted({r["broker"] for r in stages})):
            rs = [r for r in stages if r["broker"] == broker]
            names = [r["service"] for r in rs]
            vals = [r["records"] / r["span_s"] if key == "throughput" else r[key] for r in rs]
            xs = [j + i * 0.4 for j in range(len(rs))]
            ax.bar(xs, vals, width=0.4, label=broker)
            ax.set_xticks([j + 0.2 for j in range(len(rs))])
            ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return "![throughput and latency per stage](pipeline.png)"


def progress_scale_section(x):
    """### 8: bench/pipeline/progress_scale.py's row."""
    mib = 2**20
    rate = (x["files"] + x["burst_jobs"] * x["burst_files"]) / x["run_s"]
    fa = x.get("final_after_last_upload_s")
    final_after = "n/a" if fa is None else ("within one 0.5 s sample" if fa < 0.5 else "%.2f s" % fa)
    return "\n".join([
        "### 8. Job progress at scale\n",
        "A %d-file job and a %d-job burst (%d files each) through the six services and the gateway on the embedded "
        "broker, with %d Server-Sent Events clients following the big job from its first record to `final` "
        "(bench/pipeline/progress_scale.py; the router's `--job-retention` %s). Before: the issue's figures for the "
        "same load, when every event carried the whole job document.\n" % (
            x["files"], x["burst_jobs"], x["burst_files"], x["clients"], x.get("retention", "60s")),
        "| what | before (#20) | now |",
        "|---|---:|---:|",
        "| bytes per SSE client, first event to `final` (median / max) | 1.2 GB over the 64 in the first ~100 s, none at `final` | %.2f / %.2f MB |" % (
            x["bytes_per_client_median"] / 1e6, x["bytes_per_client_max"] / 1e6),
        "| events per client (median) | | %d |" % x["events_per_client_median"],
        "| clients that reached `final` | | %d of %d |" % (x["clients_final"], x["clients"]),
        "| shown by the gateway behind uploaded by the outbox (router and gateway together), files, median / max "
        "of 0.5 s samples; in seconds at the run's %.0f files/s | ~6,000 files | %d / %d (%.1f / %.1f s) |" % (
            rate, x["lag_files_median"], x["lag_files_max"], x["lag_files_median"] / rate, x["lag_files_max"] / rate),
        "| the big job's `final` event after its last upload | | %s |" % final_after,
        "| the gateway's own lag: jobs.progress records applied within 1 s of the router writing them; 99 %% "
        "within | | %s |" % ("%.1f %%; %s s" % (100 * x["gateway_delay_le_1s_share"], x["gateway_delay_p99_le_s"])
                             if "gateway_delay_records" in x else "not measured"),
        "| `GET /api/jobs` p50 / p99 / max (timeouts of 30 s) | 9.6 s, then timeouts | %.1f / %.1f / %.1f ms (%d) |" % (
            x["list_ms_p50"], x["list_ms_p99"], x["list_ms_max"], x.get("list_timeouts", 0)),
        "| gateway RSS: idle / highest / at the end | 380 MB | %.0f / %.0f / %.0f MiB |" % (
            x["gateway_rss_idle"] / mib, x["gateway_rss_max"] / mib, x["gateway_rss_end"] / mib),
        "| jobs the gateway holds: at the end / after retention | kept forever | %d / %d (RSS %.0f MiB) |" % (
            x["jobs_before_retention"], x["jobs_after_retention"], x["gateway_rss_after_retention"] / mib),
        "",
        "Files are text files (QA has no checker for them), so the pipeline runs at the speed of its plumbing; "
        "with Python files pyflakes saturates the 2 cores at ~10 files/s. The resident set does not shrink when "
        "retention drops the jobs: the allocator keeps the pages for the next jobs (the jobs themselves are gone "
        "from the router and the gateway).\n",
    ])


def replay_probes_section(x):
    """### 8b: bench/pipeline/replay_probes.py's row."""
    return "\n".join([
        "### 8b. Probes during a DLQ replay\n",
        "dlq-escalator replays %d stored records through `POST /dlq/replay` at %d a second (admin routes run on "
        "their own thread) while `/healthz`, `/readyz` and `/metrics` are asked in turn every 50 ms "
        "(bench/pipeline/replay_probes.py). Before #20 the replay ran on the probe thread: no probe was answered "
        "until it ended.\n" % (x["records"], x["rate"]),
        "| | probes | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        "| no replay | | %.1f | %.1f | |" % (x["quiet_ms_p50"], x["quiet_ms_p99"]),
        "| during the replay (%d records in %.1f s) | %d | %.1f | %.1f | %.1f |" % (
            x["replayed"] or 0, x["replay_s"] or 0, x["probes_during"], x["during_ms_p50"], x["during_ms_p99"],
            x["during_ms_max"]),
        "",
    ])


def section(out, png):
    rows = load(out)
    if not rows:
        return ""
    r = ["## Pipeline: Agentline beside bare librdkafka\n",
         "bench/pipeline/run.py runs the real binaries on the embedded broker (librdkafka's mock cluster) and on Apache "
         "Kafka (one KRaft node on loopback), in one run; medians of the runs listed. Commands at the end.\n"]
    hop = [x for x in rows if x["scenario"] == "hop"]
    if hop:
        r.append("### 1. Per-hop overhead (router against a bare consume→produce loop)\n")
        r.append("Both consume the same FILE_COMPLETED records from `events` (24 partitions) with acks=all and idempotence, "
                 "committing only what Kafka acknowledged. The bare loop copies each record to one topic; the router "
                 "reads its envelope, routes it to `qa.requests` and publishes the job's progress to "
                 "`jobs.progress` (a job summary and a file record per step, coalesced per key over "
                 "`--progress-interval-ms`: the progress records it produced per record in are in the last column).\n")
        r.append("Throughput is measured the same way for both: from the first record handled to the last offset "
                 "committed, so only acknowledged copies count. The bare loop times itself (first record consumed to "
                 "its final synchronous commit); the router is timed from its first copy's CreateTime to the moment "
                 "every offset of its group is committed (`--commit-interval-ms 100`). Beside them: each loop's write "
                 "rate (its copies' CreateTime stamps, first to last: produce calls, acknowledged or not) and the "
                 "records the router writes per second (its copies and its progress records). CPU: the process's user+system time "
                 "per record in.\n")
        r.append("| broker | size | runs | bare msgs/s | router msgs/s | ratio (goal ≥ 0.9) | bare write rate | router write rate | router records written/s | bare CPU µs/msg | router CPU µs/msg | progress records per record in |")
        r.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for broker in ("embedded", "kafka"):
            for size in (1024, 16384):
                rs = [x for x in hop if x["broker"] == broker and x["size"] == size]
                if rs:
                    # Runs before coalescing wrote two progress records per record in.
                    progress = med(rs, "progress_produced_per_msg") if all("progress_produced_per_msg" in x for x in rs) else 2.0
                    r.append("| %s | %d KB | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f | %.1f | %.1f | %.2f |" % (
                        broker, size // 1024, len(rs), med(rs, "bare_msgs_per_s"), med(rs, "router_msgs_per_s"), med(rs, "ratio"),
                        med(rs, "bare_write_msgs_per_s"), med(rs, "router_write_msgs_per_s"),
                        (1 + progress) * med(rs, "router_write_msgs_per_s"),
                        med(rs, "bare_cpu_us_per_msg"), med(rs, "router_cpu_us_per_msg"), progress))
        r.append("")
    e2e = [x for x in rows if x["scenario"] == "e2e"]
    if e2e:
        r.append("### 2. End to end through all six services\n")
        r.append("Template generator, a no-op QA check (`true`, sandbox off), filesystem target. Latency: from the "
                 "task's record on `tasks.submitted` to its UPLOADED event. `max`: all tasks submitted at once (the "
                 "maximum throughput); 50% and 100%: paced submission at that share of it.\n")
        r.append("| broker | load | runs | tasks/s | p50 ms | p95 ms | p99 ms |")
        r.append("|---|---|---:|---:|---:|---:|---:|")
        for broker in ("embedded", "kafka"):
            for level in ("max", "50%", "100%"):
                rs = [x for x in e2e if x["broker"] == broker and x["load"] == level]
                if rs:
                    r.append("| %s | %s | %d | %.0f | %.0f | %.0f | %.0f |" % (broker, level, len(rs), med(rs, "tasks_per_s"),
                                                                           med(rs, "p50_ms"), med(rs, "p95_ms"), med(rs, "p99_ms")))
        r.append("")
        chain = [x for x in rows if x["scenario"] == "chain"]
        if chain:
            r.append("The latency goal's baseline: a chain of six bare consume→produce hops (`pipeline_bench chain`: "
                     "each hop a consumer group and an idempotent producer with the services' fetch and linger "
                     "settings, committing what was acknowledged once a second), fed 400-byte records at the "
                     "same rate as the 50% run, on the same broker after the services stopped. Latency: from a "
                     "record's CreateTime to its sixth copy's.\n")
            r.append("| broker | runs | pipeline p50 ms | chain p50 ms | ratio p50 | pipeline p99 ms | chain p99 ms | ratio p99 | goal ≤ 1.5× | met |")
            r.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
            for broker in ("embedded", "kafka"):
                got = latency_against_chain(rows, broker)
                if got:
                    ps, cs, r50, r99 = got
                    r.append("| %s | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | p50 and p99 | %s |" % (
                        broker, len(cs), med(ps, "p50_ms"), med(cs, "p50_ms"), r50, med(ps, "p99_ms"), med(cs, "p99_ms"), r99,
                        "yes" if r50 <= 1.5 and r99 <= 1.5 else "no"))
            r.append("")
        hops = hop_breakdown(rows)
        if hops:
            r.append("Where a task's time goes at 50 % (#23 item 3): each step from its input's CreateTime to its "
                     "output's (the step's fetch wait, hand-offs and handler, and its input's linger and write), "
                     "medians over the runs of each run's p50 and p99; the chain's per hop is its p50 / 6 beside it.\n")
            r.append("| broker | step | p50 ms | p99 ms | a bare hop's p50 ms (chain / 6) |")
            r.append("|---|---|---:|---:|---:|")
            r.extend(hops)
            r.append("")
        r.append(plot(rows, png) + "\n")
        st = [x for x in rows if x["scenario"] == "stage"]
        if st:
            r.append("| broker | stage | records | records/s | handler mean ms | handler p95 ms (bucket bound) |")
            r.append("|---|---|---:|---:|---:|---:|")
            for x in st:
                r.append("| %s | %s | %.0f | %.0f | %.2f | %.1f |" % (x["broker"], x["service"], x["records"], x["records"] / x["span_s"],
                                                                     x["handler_ms_mean"], x["handler_ms_p95_bucket"]))
            r.append("")
    sbx = [x for x in rows if x["scenario"] == "e2e_sandboxed"]
    if sbx:
        if not e2e:
            r.append("### 2. End to end through all six services\n")
        r.append("The maximum again with qa-worker's checks in its bubblewrap sandbox (its default), as its "
                 "bare loop runs them, and where the machine's CPU went per task (each process's user + system "
                 "time over the run; qa-worker's with its checks; the broker's process or Kafka's JVM):\n")
        r.append("| broker | runs | tasks/s | machine busy | CPU ms per task: qa-worker | broker | the other five |")
        r.append("|---|---:|---:|---:|---:|---:|---:|")
        for broker in ("embedded", "kafka"):
            rs = [x for x in sbx if x["broker"] == broker]
            if rs:
                cpu = [x["cpu_ms_per_task"] for x in rs]
                others = [{"ms": sum(v for k, v in c.items() if k not in ("qa-worker", "broker"))} for c in cpu]
                r.append("| %s | %d | %.0f | %.0f %% | %.2f | %.2f | %.2f |" % (
                    broker, len(rs), med(rs, "tasks_per_s"), 100 * med(rs, "machine_busy"), med(cpu, "qa-worker"),
                    med(cpu, "broker"), med(others, "ms")))
        r.append("")
    conc = [x for x in rows if x["scenario"] == "concurrency"]
    if conc:
        r.append("### 3. Concurrency beyond partitions\n")
        r.append("dev-fix-worker with 64 calls in flight on a 4-partition topic, against tests/support/fake_llm_server.py "
                 "answering after 200 ms. Ideal: 64 / 0.2 s = 320 tasks/s. Rate: the worker's FILE_COMPLETED events "
                 "by CreateTime, first to last (the drain figure, readiness to last commit, beside it).\n")
        r.append("| runs | tasks/s | ideal | ratio (goal ≥ 0.9) | tasks/s (drain) | most calls the server saw at once |")
        r.append("|---:|---:|---:|---:|---:|---:|")
        r.append("| %d | %.0f | %.0f | %.2f | %.0f | %s |\n" % (len(conc), med(conc, "tasks_per_s"), med(conc, "ideal_per_s"), med(conc, "ratio"),
                                                             med(conc, "drain_tasks_per_s"), max(x.get("max_concurrent") or 0 for x in conc)))
    econ = [x for x in rows if x["scenario"] == "llm_economics"]
    if econ:
        r.append("### 3b. LLM economics: a rate-limited provider (#22)\n")
        r.append("tests/support/fake_llm_server.py as a provider allowing %d requests and %s tokens per %d s (sliding; 429 "
                 "with Retry-After beyond, x-ratelimit-* headers on every answer as OpenAI sends them), answering after "
                 "300 ms plus 20 ms per other call in flight. Side by side: dev-fix-worker with no limits configured "
                 "(it learns them from the headers and 429s; adaptive concurrency up to 32) on a backlog larger than the "
                 "provider takes, and the seeds' naive client (16 callers retrying 429s with exponential backoff). "
                 "Utilization: answered calls per window after the first window, against the limit.\n"
                 % (econ[0]["limit_per_window"], format(LLM_TPW, ","), econ[0]["window_s"]))
        r.append("| client | runs | answered per window | utilization (goal ≥ 0.95) | calls | answered 429 | share 429 (goal ≤ 1 %) |")
        r.append("|---|---:|---:|---:|---:|---:|---:|")
        for client in sorted({x["client"] for x in econ}):
            xs = [x for x in econ if x["client"] == client]
            r.append("| %s | %d | %.1f | %.2f | %.0f | %.0f | %.1f %% |" % (
                client, len(xs), med(xs, "answered_per_window"), med(xs, "utilization"), med(xs, "calls"),
                med(xs, "answered_429"), 100 * med(xs, "share_429")))
        r.append("")
    fair = [x for x in rows if x["scenario"] == "fairness"]
    if fair:
        r.append("#### Fair tenants: a flood and a trickle\n")
        r.append("The same provider (a call every %.0f ms at its limit; each answered in 300 ms plus 20 ms per other call "
                 "in flight). Tenant `flood` queues %d tasks on `tasks.normal` (4 partitions); once dev-fix-worker has learnt "
                 "the provider's limits, tenant `trickle` sends %d tasks, one every 1.5 s. Trickle's wait: from its "
                 "acknowledged record to its FILE_COMPLETED, so it includes its own call. Provider utilization: answered "
                 "calls while the trickle ran, against the limit (the flood takes what the trickle leaves). FIFO: the same "
                 "with `--read-ahead 1`, so the worker takes records in the order they were written.\n"
                 % (1000.0 * econ[0]["window_s"] / econ[0]["limit_per_window"] if econ else 167, fair[0]["flood"], fair[0]["trickle"]))
        r.append("| mode | runs | trickle done | wait p50 ms | p99 ms | max ms | provider utilization | answered 429 |")
        r.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for mode in ("fair", "fifo"):
            xs = [x for x in fair if x["mode"] == mode]
            if xs:
                r.append("| %s | %d | %.0f of %d | %.0f | %.0f | %.0f | %.2f | %.0f |" % (
                    mode, len(xs), med(xs, "completed"), xs[0]["trickle"], med(xs, "wait_ms_p50"), med(xs, "wait_ms_p99"),
                    med(xs, "wait_ms_max"), med(xs, "utilization"), med(xs, "answered_429")))
        r.append("")
    bud = [x for x in rows if x["scenario"] == "budget"]
    if bud:
        r.append("#### A job's budget\n")
        r.append("One job of %d files with a budget of %s tokens (%d files' worth at 110 tokens each), through priority-assigner, router "
                 "and dev-fix-worker (template backend: no wait for a model, so the most files in flight when the budget is "
                 "reached). Spent: the job's usage in its last summary on jobs.progress; every file ends generated or "
                 "dead-lettered as `budget_exhausted`.\n" % (bud[0]["tasks"], format(bud[0]["budget_tokens"], ","),
                                                              bud[0]["budget_tokens"] // 110))
        r.append("| runs | budget tokens | spent tokens | overrun tokens | generated | dead-lettered | accounted for | seconds |")
        r.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        r.append("| %d | %s | %.0f | %.0f | %.0f | %.0f | %.0f of %d | %.1f |\n" % (
            len(bud), format(bud[0]["budget_tokens"], ","), med(bud, "spent_tokens"), med(bud, "overrun_tokens"),
            med(bud, "generated"), med(bud, "dead_lettered"), med(bud, "accounted"), bud[0]["tasks"], med(bud, "seconds")))
    pr = [x for x in rows if x["scenario"] == "priority"]
    if pr:
        r.append("### 4. Priority isolation\n")
        r.append("%s low-priority tasks queued on `tasks.low` (12 partitions), dev-fix-worker working through them with a " % format(pr[0]["low_backlog"], ",")
                 + "real service time (the OpenAI backend against the fake server answering after 20 ms, 8 calls in flight), "
                 "then 50 critical tasks, one every 20 ms. Submit-to-done: from a critical task's acknowledged record to "
                 "its FILE_COMPLETED; wait = that minus the service time (the worker's mean handler time). FIFO: the same "
                 "50 tasks appended to `tasks.low` instead.\n")
        r.append("| broker | mode | runs | submit-to-done mean ms | p99 ms | service time ms | wait mean ms | wait p99 ms |")
        r.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for broker in ("embedded", "kafka"):
            for mode in ("priority", "fifo"):
                rs = [x for x in pr if x["mode"] == mode and x["broker"] == broker]
                if rs:
                    r.append("| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |" % (
                        broker, mode, len(rs), med(rs, "latency_ms_mean"), med(rs, "latency_ms_p99"), med(rs, "service_ms"),
                        med(rs, "wait_ms_mean"), med(rs, "wait_ms_p99")))
        r.append("")
    rt = [x for x in rows if x["scenario"] == "retry"]
    if rt:
        r.append("### 5. Retry-delay precision\n")
        r.append("300 records fail their first attempt through the real consumer runtime and come back from the first "
                 "retry tier; lateness = when the handler saw the retry minus `agentline-retry-due`.\n")
        r.append("| broker | runs | tier delay ms | late p50 ms | p90 ms | p95 ms | p99 ms (goal ≤ 50) | max ms |")
        r.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for broker in ("embedded", "kafka"):
            rs = [x for x in rt if x["broker"] == broker]
            if rs:
                r.append("| %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f |" % (
                    broker, len(rs), med(rs, "delay_ms"), med(rs, "late_ms_p50"), med(rs, "late_ms_p90"), med(rs, "late_ms_p95"),
                    med(rs, "late_ms_p99"), med(rs, "late_ms_max")))
        r.append("")
    qa = [x for x in rows if x["scenario"] == "qa_stage"]
    if qa:
        r.append("### 2b. qa-worker beside its bare loop\n")
        r.append("qa-worker (`--max-in-flight %d`, its own sizing on 2 CPUs) checks %d FILE_COMPLETED records of a `.py` "
                 "file with a trivial check (`true`) in its bubblewrap sandbox (the default), as root: one uid per "
                 "running check. Rate: its QA results by CreateTime, first to last. Beside it, in the same run, the "
                 "bare loop (`pipeline_bench spawn`): as many threads, each starting `bwrap ... true` with the same "
                 "arguments, limits and uid drop in a work directory made and removed per check, from a small "
                 "process (fork, blocking waitpid).\n" % (qa[0].get("in_flight", 4), qa[0]["checks"]))
        r.append("| broker | runs | bare loop runs/s | qa-worker checks/s | ratio (goal ≥ 0.8) | handler mean ms |")
        r.append("|---|---:|---:|---:|---:|---:|")
        for broker in ("embedded", "kafka"):
            rs = [x for x in qa if x["broker"] == broker]
            if rs:
                r.append("| %s | %d | %.0f | %.0f | %.2f | %.1f |" % (
                    broker, len(rs), med(rs, "bare_runs_per_s"), med(rs, "checks_per_s"), med(rs, "ratio"), med(rs, "handler_ms")))
        r.append("")
    ob = [x for x in rows if x["scenario"] == "outbox_stage"]
    if ob:
        r.append("### 2c. outbox-uploader beside its bare loop\n")
        r.append("outbox-uploader (filesystem target, `--upload-concurrency %d`, its own sizing on 2 CPUs) delivers %d "
                 "QA_PASSED records of 1 KB files from `deploy.requests`: each staged in its SQLite outbox before its "
                 "offset is committed, uploaded from a window of claimed items (adaptive batcher) on its upload threads, its UPLOADED event published. Rate: the "
                 "UPLOADED events by CreateTime, first to last. Beside it, in the same run, the bare loop "
                 "(`pipeline_bench files`): as many threads making the target's durable writes per file and nothing "
                 "else (write a temporary file, fsync it, rename it over the name, fsync the folder), in the same "
                 "file system. Staging ms: outbox-uploader's handler time per record (the staging transaction).\n"
                 % (ob[0]["concurrency"], ob[0]["items"]))
        r.append("| broker | runs | bare loop files/s | outbox items/s | ratio (goal ≥ 0.8) | staging ms per record |")
        r.append("|---|---:|---:|---:|---:|---:|")
        for broker in ("embedded", "kafka"):
            rs = [x for x in ob if x["broker"] == broker]
            if rs:
                r.append("| %s | %d | %.0f | %.0f | %.2f | %.1f |" % (
                    broker, len(rs), med(rs, "bare_files_per_s"), med(rs, "items_per_s"), med(rs, "ratio"),
                    med(rs, "stage_handler_ms")))
        r.append("")
    sc = [x for x in rows if x["scenario"] == "scale"]
    if sc:
        r.append("### 6. Scale-out\n")
        r.append("qa-worker instances in one consumer group, each running one CPU-bound check at a time "
                 "(`--max-in-flight 1`, a 2M-iteration Python loop per file), on this 2-core machine.\n")
        r.append("| instances | runs | checks/s | ratio to 1 instance |")
        r.append("|---:|---:|---:|---:|")
        base = med([x for x in sc if x["instances"] == 1], "checks_per_s")
        for n in (1, 2, 4):
            rs = [x for x in sc if x["instances"] == n]
            if rs:
                r.append("| %d | %d | %.1f | %.2f |" % (n, len(rs), med(rs, "checks_per_s"), med(rs, "checks_per_s") / base))
        r.append("")
    rb = [x for x in rows if x["scenario"] == "rebalance"]
    if rb:
        r.append("### 6b. Rebalances: classic against the consumer group protocol (KIP-848), Apache Kafka\n")
        r.append("Three dev-fix-worker replicas (template backend, idle) consuming the five task topics (6 partitions "
                 "each) and their retry tiers. One is SIGKILLed: the time until the two survivors hold every partition "
                 "again (it includes the 6 s session timeout, the same for both protocols: the services' "
                 "`--session-timeout-ms` for classic, the broker's `group.consumer.session.timeout.ms` for consumer), "
                 "and the partition-seconds no member consumed meanwhile. Then a fourth replica joins: the time from "
                 "its start until it holds partitions and every partition is held, and the partition-seconds unconsumed "
                 "meanwhile. Sampled every 50 ms from each member's `agentline_consumer_assigned_partitions`.\n")
        r.append("| protocol | runs | partitions | SIGKILL → all held again (s) | unconsumed partition-s | join → assigned (s) | unconsumed partition-s |")
        r.append("|---|---:|---:|---:|---:|---:|---:|")
        for protocol in ("classic", "consumer"):
            rs = [x for x in rb if x["protocol"] == protocol]
            if rs:
                r.append("| %s | %d | %d | %.2f | %.1f | %.2f | %.1f |" % (
                    protocol, len(rs), rs[0]["partitions"], med(rs, "kill_to_reassigned_s"), med(rs, "kill_unconsumed_partition_s"),
                    med(rs, "join_to_assigned_s"), med(rs, "join_unconsumed_partition_s")))
        r.append("")
    goals = []
    if hop:
        ratios = [med([x for x in hop if x["broker"] == b and x["size"] == z], "ratio") for b in ("embedded", "kafka") for z in (1024, 16384)
                  if [x for x in hop if x["broker"] == b and x["size"] == z]]
        goals.append(("router throughput ≥ 0.9 × bare librdkafka (every broker and size)", ", ".join("%.2f" % v for v in ratios),
                      all(v >= 0.9 for v in ratios)))
    for broker in ("embedded", "kafka"):
        rs = [x for x in qa if x["broker"] == broker]
        if rs:
            goals.append(("qa-worker checks/s ≥ 0.8 × its bare loop (%s)" % broker, "%.2f" % med(rs, "ratio"), med(rs, "ratio") >= 0.8))
    for broker in ("embedded", "kafka"):
        rs = [x for x in ob if x["broker"] == broker]
        if rs:
            goals.append(("outbox-uploader items/s ≥ 0.8 × its bare loop (%s)" % broker, "%.2f" % med(rs, "ratio"), med(rs, "ratio") >= 0.8))
    for broker in ("embedded", "kafka"):
        got = latency_against_chain(rows, broker)
        if got:
            _, _, r50, r99 = got
            goals.append(("end to end p50 and p99 at 50 %% of the maximum ≤ 1.5 × six bare hops' (%s)" % broker,
                          "%.2f / %.2f" % (r50, r99), r50 <= 1.5 and r99 <= 1.5))
    for broker in ("embedded", "kafka"):
        # The slowest bare stage loop measured on this broker (the router's, qa-worker's, the outbox's).
        # Only when all three were measured in this run.
        bases = [(med(rs, k), name) for rs, k, name in (
            ([x for x in hop if x["broker"] == broker and x["size"] == 1024], "bare_msgs_per_s", "the router's"),
            ([x for x in qa if x["broker"] == broker], "bare_runs_per_s", "qa-worker's (bubblewrap)"),
            ([x for x in ob if x["broker"] == broker], "bare_files_per_s", "the outbox's")) if rs]
        # The end-to-end runs with qa-worker's sandbox on, as its loop runs, when measured; else the
        # unsandboxed ones (which the sandboxed loop then flatters: said in the row).
        sandboxed = [x for x in rows if x["scenario"] == "e2e_sandboxed" and x["broker"] == broker]
        top = sandboxed or [x for x in rows if x["scenario"] == "e2e" and x["broker"] == broker and x["load"] == "max"]
        if len(bases) == 3 and top:
            base, name = min(bases)
            ratio = med(top, "tasks_per_s") / base
            goals.append(("end to end maximum ≥ 0.7 × the slowest bare stage loop (%s)" % broker,
                          "%.0f tasks/s%s against %s %.0f = %.2f" % (
                              med(top, "tasks_per_s"), " (checks sandboxed)" if sandboxed else " (checks unsandboxed)",
                              name, base, ratio), ratio >= 0.7))
    if conc:
        goals.append(("concurrency ≥ 0.9 × ideal (64 in flight / 200 ms)", "%.2f" % med(conc, "ratio"), med(conc, "ratio") >= 0.9))
    ours = [x for x in econ if x["client"].startswith("agentline")]
    if ours:
        goals.append(("LLM economics: ≥ 0.95 of the provider's limit used", "%.2f" % med(ours, "utilization"),
                      med(ours, "utilization") >= 0.95))
        goals.append(("LLM economics: ≤ 1 % of calls answered 429", "%.1f %%" % (100 * med(ours, "share_429")),
                      med(ours, "share_429") <= 0.01))
    if pr:
        for broker in ("embedded", "kafka"):
            rs = [x for x in pr if x["mode"] == "priority" and x["broker"] == broker]
            if rs:
                goals.append(("a critical task waits on average no longer than one service time (%s)" % broker,
                              "%.1f ms wait vs %.1f ms service" % (med(rs, "wait_ms_mean"), med(rs, "service_ms")),
                              med(rs, "wait_ms_mean") <= med(rs, "service_ms")))
    if rt:
        worst = max(med([x for x in rt if x["broker"] == b], "late_ms_p99") for b in {x["broker"] for x in rt})
        goals.append(("retried records run at most 50 ms late (p99)", "%.1f ms (worst broker)" % worst, worst <= 50))
    if goals:
        r.append("### Pipeline goals\n")
        r.append("| goal | measured | met |\n|---|---|---|")
        for g, m, ok in goals:
            r.append("| %s | %s | %s |" % (g, m, "yes" if ok else "NO"))
        r.append("")
    ps = [x for x in rows if x["scenario"] == "progress_scale"]
    for x in ps[-1:]:
        r.append(progress_scale_section(x))
    for x in [x for x in rows if x["scenario"] == "replay_probes"][-1:]:
        r.append(replay_probes_section(x))
    mem = [x for x in rows if x["scenario"] == "memory"]
    if mem:
        r.append("### 7. Memory\n")
        r.append("Resident set size of each service after start (idle) and the highest seen during the end-to-end runs.\n")
        r.append("| broker | service | idle MiB | under load MiB |")
        r.append("|---|---|---:|---:|")
        for x in mem:
            r.append("| %s | %s | %.1f | %.1f |" % (x["broker"], x["service"], x["idle_rss"] / 2**20, x["load_rss"] / 2**20))
        r.append("")
    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ANALYSIS.md")
    if goals and os.path.exists(analysis):
        r.append(open(analysis).read())
    return "\n".join(r)


if __name__ == "__main__":
    import sys
    print(section(sys.argv[1], sys.argv[2]))
