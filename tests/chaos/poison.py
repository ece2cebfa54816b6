#!/usr/bin/env python3
"""Poison run: 1,000 adversarial records interleaved with valid tasks, through all six services.

    poison.py BIN_DIR SRC_DIR [--kafka-state DIR]

The records go where a careless or hostile producer would put them: most to tasks.submitted
(priority-assigner), the rest to tasks.normal (dev-fix-worker), events (router), qa.requests
(qa-worker) and deploy.requests (outbox-uploader). Kinds: malformed JSON, wrong types, values
near the broker's 1 MB limit, invalid UTF-8, path traversal, missing fields, unknown task and
event types, and header bombs (too many headers, or one huge header). Each carries a unique key.

Checks: every poison record is in the DLQ store with the reason its kind calls for (none
missing, none twice); every valid task is generated, QA-checked and delivered to the filesystem
target; no service exits or restarts. Produced with kcat, as any Kafka producer would.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from harness import SERVICES, Stack, kafka_topics, log, metric_sum, write_tasks  # noqa: E402

MSG_DELIM = "\x1e"
KEY_DELIM = "\x1f"


def task(i, **over):
    t = {"id": f"pm-{i}", "task_id": f"pt-{i}", "job_id": "poison", "type": "DEV_TASK",
         "created_at": "2026-11-30T10:00:00Z",
         "payload": {"path": f"p/f{i}.py", "description": "x", "language": "python"}}
    for k, v in over.items():
        if k.startswith("payload_"):
            t["payload"][k[8:]] = v
        else:
            t[k] = v
    return t


def drop(d, *path):
    d = json.loads(json.dumps(d))
    cur = d
    for p in path[:-1]:
        cur = cur[p]
    del cur[path[-1]]
    return d


def poison_records(rng):
    """[(logical topic, kind, value bytes, headers or None)] -- 1,000 of them."""
    recs = []
    add = lambda topic, kind, value, headers=None: recs.append(  # noqa: E731
        (topic, kind, value if isinstance(value, bytes) else value.encode(), headers))
    malformed = ['{"id": "x"', "not json at all", " ", "null", "[1, 2, 3]", '"a string"', "42", "{'single': 1}",
                 '{"id": "x",}', '{"a": 1}{"b": 2}', "{" * 300, '{"id": "x", "payload": {"path": "a.py"']
    for i in range(125):
        add("tasks.submitted", "malformed_json", malformed[i % len(malformed)])
    for i in range(125):
        bad = [task(i, task_id=12345), task(i, payload="a string"), task(i, payload_path=["a", "b"]),
               task(i, job_id=None), task(i, payload_language=7), task(i, created_at=True),
               task(i, payload_max_tokens="many"), task(i, id={"nested": 1})][i % 8]
        add("tasks.submitted", "wrong_types", json.dumps(bad))
    for i in range(100):
        v = json.dumps(task(i)).encode()
        junk = [b"\xff\xfe", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xed\xa0\x80"][i % 6]
        add("tasks.submitted", "invalid_utf8", v.replace(b'"x"', b'"' + junk + b'"', 1))
    for i in range(150):
        p = ["../../etc/passwd", "/etc/shadow", "a/../../b.py", "a/./b.py", "a\\b.py", "a//b.py", "..",
             "a/\x01b.py", "C:\\win.py", "./x.py"][i % 10]
        add("tasks.submitted", "path_traversal", json.dumps(task(i, payload_path=p)))
    for i in range(150):
        d = [("task_id",), ("job_id",), ("payload",), ("payload", "path"), ("type",), ("id",)][i % 6]
        add("tasks.submitted", "missing_fields", json.dumps(drop(task(i), *d)))
    for i in range(50):
        add("tasks.submitted", "unknown_task_type", json.dumps(task(i, type=["EXPLODE", "dev_task", ""][i % 3])))
    for i in range(50):
        add("tasks.normal", "dev_fix_garbage", ['{"half": ', json.dumps(task(i, payload="nope")),
                                                json.dumps(task(i, payload_path="../escape.py"))][i % 3])
    for i in range(100):
        add("events", "unknown_event_type", json.dumps({"id": f"ev-{i}", "type": ["TASK_EXPLODED", "", "qa_passed",
                                                                                   "DROP TABLE"][i % 4],
                                                          "task_id": f"pt-{i}", "job_id": "poison"}))
    for i in range(50):
        add("events", "malformed_event", ["{", "[]", '{"type": 5}', "\x00\x01\x02"][i % 4])
    for i in range(25):
        add("qa.requests", "qa_garbage", ["{", '{"path": "../../x.py", "content": "x"}', "[]"][i % 3])
    for i in range(25):
        add("deploy.requests", "deploy_garbage", ["{", '{"job_id": 1}', '"x"', '{"path": "/abs"}'][i % 4])
    # Near the broker's 1 MB record limit: a task whose description is far over the schema's.
    for i in range(20):
        add("tasks.submitted", "huge_value", json.dumps(task(i, payload_description="d" * (1000 * 1000 - 4096))))
    # Header bombs: a valid task with 100 headers, or with one 70 KB header.
    for i in range(15):
        add("tasks.submitted", "header_bomb_count", json.dumps(task(9000 + i)),
            [f"h{n}=v{n}" for n in range(100)])
    for i in range(15):
        add("tasks.submitted", "header_bomb_size", json.dumps(task(9100 + i)), ["big=" + "b" * (70 * 1024)])
    assert len(recs) == 1000, len(recs)
    rng.shuffle(recs)
    return recs


EXPECTED = {
    "malformed_json": {"malformed_json"},
    "wrong_types": {"schema_violation"},
    "invalid_utf8": {"malformed_json"},
    "path_traversal": {"unsafe_path", "schema_violation"},
    "missing_fields": {"schema_violation"},
    "unknown_task_type": {"schema_violation"},
    "dev_fix_garbage": {"malformed_json", "schema_violation", "unsafe_path"},
    "unknown_event_type": {"unknown_event_type", "schema_violation"},
    "malformed_event": {"malformed_json", "schema_violation", "unknown_event_type"},
    "qa_garbage": {"malformed_json", "schema_violation", "unsafe_path"},
    "deploy_garbage": {"malformed_json", "schema_violation", "unsafe_path"},
    "huge_value": {"schema_violation"},
    "header_bomb_count": {"header_limit"},
    "header_bomb_size": {"header_limit"},
}


def produce(stack, topic, batch, work):
    """Sends [(key, value bytes, headers)] to `topic` with kcat (one call per header set)."""
    plain = [(k, v) for k, v, h in batch if h is None]
    if plain:
        data = b"".join(k.encode() + KEY_DELIM.encode() + v + MSG_DELIM.encode() for k, v in plain)
        assert all(MSG_DELIM.encode() not in v and KEY_DELIM.encode() not in v for _, v in plain)
        subprocess.run(["kcat", "-P", "-b", stack.bootstrap, "-t", topic, "-K", KEY_DELIM, "-D", MSG_DELIM,
                        "-X", "message.max.bytes=1048576"], input=data, check=True, timeout=120)
    for k, v, h in batch:
        if h is None:
            continue
        path = os.path.join(work, "value.bin")
        with open(path, "wb") as f:
            f.write(v)
        args = ["kcat", "-P", "-b", stack.bootstrap, "-t", topic, "-k", k, "-X", "message.max.bytes=1048576"]
        for header in h:
            args += ["-H", header]
        subprocess.run(args + [path], check=True, timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin")
    ap.add_argument("root")
    ap.add_argument("--kafka-state")
    ap.add_argument("--valid", type=int, default=200)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--timeout-s", type=float, default=240)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="agentline-poison-")
    bootstrap, prefix = kafka_topics(args.bin, args.kafka_state, "poison")
    stack = Stack(args.bin, work, {"AGENTLINE_SESSION_TIMEOUT_MS": "6000"}, bootstrap=bootstrap, prefix=prefix)
    failures = []
    try:
        stack.wait_ready()
        first_pids = stack.children()
        catalog_prefix = prefix or "agentline."
        recs = poison_records(rng)
        kind_of = {}
        valid = write_tasks(os.path.join(work, "valid.jsonl"), args.valid, 4, "valid")
        lines = open(os.path.join(work, "valid.jsonl")).read().splitlines(keepends=True)
        chunks = 4
        t0 = time.time()
        for c in range(chunks):
            # Poison, then a quarter of the valid tasks, then more poison: interleaved.
            part = recs[c * len(recs) // chunks:(c + 1) * len(recs) // chunks]
            by_topic = {}
            for n, (topic, kind, value, headers) in enumerate(part, start=c * len(recs) // chunks):
                key = f"poison-{n:04d}"
                kind_of[key] = kind
                by_topic.setdefault(topic, []).append((key, value, headers))
            for topic, batch in by_topic.items():
                produce(stack, catalog_prefix + topic, batch, work)
            chunk_file = os.path.join(work, f"valid-{c}.jsonl")
            with open(chunk_file, "w") as f:
                f.writelines(lines[c * len(lines) // chunks:(c + 1) * len(lines) // chunks])
            stack.cli("submit", chunk_file)
        log(f"sent 1000 poison records and {args.valid} valid tasks in {time.time() - t0:.1f} s")

        delivered_root = os.path.join(stack.state, "delivered")
        deadline = time.time() + args.timeout_s
        while time.time() < deadline:
            got = sum(os.path.exists(os.path.join(delivered_root, job, path)) for job, path in valid.values())
            stored = [r for r in stack.dlq_records() if (r.get("key") or "").startswith("poison-")]
            if got == len(valid) and len({r["key"] for r in stored}) >= len(kind_of):
                break
            time.sleep(2)
        time.sleep(3)  # a second copy of anything would show up now

        stored = [r for r in stack.dlq_records() if (r.get("key") or "").startswith("poison-")]
        by_key = {}
        for r in stored:
            by_key.setdefault(r["key"], []).append(r)
        table = {}
        for key, kind in kind_of.items():
            got_reasons = [r["reason"] for r in by_key.get(key, [])]
            row = table.setdefault(kind, {"sent": 0, "dead_lettered": 0, "reasons": {}, "services": {}})
            row["sent"] += 1
            if got_reasons:
                row["dead_lettered"] += 1
            for r in by_key.get(key, []):
                row["reasons"][r["reason"]] = row["reasons"].get(r["reason"], 0) + 1
                row["services"][r["service"]] = row["services"].get(r["service"], 0) + 1
            if not got_reasons:
                failures.append(f"{key} ({kind}) is not in the DLQ store")
            elif len(got_reasons) > 1:
                failures.append(f"{key} ({kind}) is in the DLQ {len(got_reasons)} times: {got_reasons}")
            elif got_reasons[0] not in EXPECTED[kind]:
                failures.append(f"{key} ({kind}) dead-lettered as {got_reasons[0]}, expected one of "
                                f"{sorted(EXPECTED[kind])}")
        truncated = [r for r in stored if kind_of.get(r["key"]) == "huge_value"]
        got = sum(os.path.exists(os.path.join(delivered_root, job, path)) for job, path in valid.values())
        other_dlq = [r for r in stack.dlq_records() if not (r.get("key") or "").startswith("poison-")]
        restarts = stack.restarts()
        now_pids = stack.children()
        dlq_metric = {}
        for service in SERVICES:
            m = stack.scrape(service)
            dlq_metric[service] = metric_sum(m, "agentline_dead_letters_total") if m else None

        print("== poison run (seed %d)" % args.seed)
        print(f"  {'kind':22s} {'sent':>5s} {'DLQ':>5s}  reasons / services")
        for kind, row in sorted(table.items()):
            print(f"  {kind:22s} {row['sent']:5d} {row['dead_lettered']:5d}  "
                  f"{json.dumps(row['reasons'])} {json.dumps(row['services'])}")
        print(f"  poison records in the DLQ store: {len(by_key)} of {len(kind_of)} "
              f"({len(stored)} store rows); huge values stored: {len(truncated)}")
        print(f"  valid tasks delivered: {got} of {len(valid)}; other DLQ records: {len(other_dlq)}")
        print(f"  restarts: {json.dumps(restarts)}")
        print(f"  agentline_dead_letters_total by service: {json.dumps(dlq_metric)}")
        if got != len(valid):
            failures.append(f"only {got} of {len(valid)} valid tasks delivered")
        if other_dlq:
            failures.append(f"{len(other_dlq)} DLQ records that are not poison: "
                            f"{[(r.get('task_id'), r.get('reason')) for r in other_dlq[:5]]}")
        if sum(v or 0 for v in dlq_metric.values()) != len(kind_of):
            failures.append(f"agentline_dead_letters_total adds up to {sum(v or 0 for v in dlq_metric.values())}, "
                            f"not {len(kind_of)}")
        if any(restarts.values()) or now_pids != first_pids:
            failures.append(f"services restarted: {restarts}, pids {first_pids} -> {now_pids}")
    except Exception as e:  # noqa: BLE001
        failures.append(f"the run failed: {e!r}")
    finally:
        stack.stop()
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures[:40]) + (f"\n  ... {len(failures) - 40} more" if len(failures) > 40 else ""))
        print("--- agentline up (last lines)\n" + stack.tail_log(60))
        print(f"work directory kept: {work}")
        return 1
    subprocess.run(["rm", "-rf", work])
    print("PASS: 1000 poison records dead-lettered with their reasons, valid traffic delivered, no restarts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
