#!/usr/bin/env python3
"""Generates the Grafana dashboards in helm/agentline/dashboards/ (used by the Helm chart and
docker-compose). Edit here, run `python3 monitoring/dashboards.py`, commit both; the deploy
checks fail when the JSON is stale.

Every query selects on the dashboard's $job and $instance variables and uses
$__rate_interval, as Grafana's dashboard-linter asks."""
import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helm", "agentline", "dashboards")
SEL = 'job=~"$job", instance=~"$instance"'
RI = "[$__rate_interval]"


def m(name, extra=""):
    return "%s{%s%s}" % (name, SEL, (", " + extra) if extra else "")


def rate(name, extra=""):
    return "rate(%s%s)" % (m(name, extra), RI)


def quantiles(hist, by):
    return [("histogram_quantile(%s, sum by (le%s) (%s))" % (q, ", " + by if by else "", rate(hist + "_bucket")),
             "p%d %s" % (int(float(q) * 100), "{{%s}}" % by if by else "")) for q in ("0.5", "0.95", "0.99")]


class Dashboard:
    def __init__(self, uid, title, description):
        self.uid, self.title, self.description = uid, title, description
        self.panels = []
        self.y = 0
        self.x = 0

    def panel(self, title, description, targets, unit, kind="timeseries", width=12, height=8, stack=False):
        if self.x + width > 24:
            self.x, self.y = 0, self.y + height
        pid = len(self.panels) + 1
        p = {
            "id": pid,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": height, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": {"type": "prometheus", "uid": "${datasource}"},
                 "expr": expr, "legendFormat": legend}
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if kind == "timeseries":
            p["fieldConfig"]["defaults"]["custom"] = {"stacking": {"mode": "normal" if stack else "none"}}
            p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
        self.panels.append(p)
        self.x += width

    def json(self):
        var = lambda name, query: {
            "name": name, "label": name, "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2, "includeAll": True,
            "multi": True, "allValue": ".+", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [], "sort": 1,
        }
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["agentline"],
            "editable": False,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-3h", "to": "now"},
            "timezone": "utc",
            "templating": {"list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
                 "current": {}, "hide": 0, "options": [], "refresh": 1},
                var("job", "label_values(agentline_records_consumed_total, job)"),
                var("instance", 'label_values(agentline_records_consumed_total{job=~"$job"}, instance)'),
            ]},
            "annotations": {"list": []},
            "links": [],
            "panels": self.panels,
        }


def pipeline():
    d = Dashboard("agentline-pipeline", "Agentline / Pipeline overview",
                  "Tasks through the six services: throughput, success, latency, queues, lag and the DLQ.")
    d.panel("Tasks per second by stage", "Records each service finished (any outcome), per second.",
            [("sum by (service) (%s)" % rate("agentline_records_processed_total"), "{{service}}")], "ops")
    d.panel("Success rate by stage", "Share of finished records that succeeded (not retried, not dead-lettered).",
            [("sum by (service) (%s) / sum by (service) (%s)" % (rate("agentline_records_processed_total", 'outcome="ok"'),
                                                              rate("agentline_records_processed_total")), "{{service}}")],
            "percentunit")
    d.panel("Handler latency", "Time a handler takes per record, all services: p50, p95, p99.",
            quantiles("agentline_handler_duration_seconds", "service"), "s")
    d.panel("End-to-end latency", "From a task's prioritization to its file's delivery at the target: p50, p95, p99.",
            quantiles("agentline_end_to_end_seconds", ""), "s")
    d.panel("Queue depth by priority", "Tasks waiting for dev-fix-worker, per priority topic.",
            [('sum by (topic) (%s)' % m("agentline_consumer_lag_messages", 'service="dev-fix-worker"'), "{{topic}}")],
            "short", stack=True)
    d.panel("Queue wait by priority (p95)", "How long tasks waited before a worker took them, per priority.",
            [("histogram_quantile(0.95, sum by (le, priority) (%s))" % rate("agentline_task_wait_seconds_bucket"), "{{priority}}")],
            "s")
    d.panel("Consumer lag", "Records not yet consumed, per service and topic.",
            [("sum by (service, topic) (%s)" % m("agentline_consumer_lag_messages"), "{{service}} {{topic}}")], "short")
    d.panel("Time lag", "How long the current lag takes to drain at the current consumption rate.",
            [("sum by (service) (%s) / sum by (service) (%s)" % (m("agentline_consumer_lag_messages"),
                                                              rate("agentline_records_consumed_total")), "{{service}}")], "s")
    d.panel("DLQ inflow by reason", "Dead-lettered records per second, by reason (error class).",
            [("sum by (reason) (%s)" % rate("agentline_dlq_records_total"), "{{reason}}")], "ops", stack=True)
    d.panel("Records in flight", "Records dispatched to handlers and not finished, per service.",
            [("sum by (service) (%s)" % m("agentline_records_in_flight"), "{{service}}")], "short")
    d.panel("Memory (resident)", "Resident memory per service instance, against its container limit.",
            [("max by (service, instance) (%s)" % m("process_resident_memory_bytes"), "{{service}} {{instance}}"),
             ("max by (service) (%s)" % m("agentline_container_memory_limit_bytes"), "limit {{service}}")], "bytes")
    d.panel("CPU", "CPU seconds per second per service instance.",
            [("sum by (service, instance) (%s)" % rate("process_cpu_seconds_total"), "{{service}} {{instance}}")], "percentunit")
    return d


def llm():
    d = Dashboard("agentline-llm", "Agentline / LLM backend",
                  "dev-fix-worker's generator backend: calls, errors, tokens, cost, cache, breaker and rate limits.")
    d.panel("Requests", "Backend calls per second, by outcome.",
            [("sum by (outcome) (%s)" % rate("agentline_llm_calls_total"), "{{outcome}}")], "reqps", stack=True)
    d.panel("Errors by type", "Failed backend calls per second, by outcome (timeout, rate_limited, unavailable, ...).",
            [("sum by (outcome) (%s)" % rate("agentline_llm_calls_total", 'outcome!="ok"'), "{{outcome}}")], "reqps")
    d.panel("Tokens", "Prompt and completion tokens per second.",
            [("sum by (kind) (%s)" % rate("agentline_llm_tokens_total"), "{{kind}}")], "short", stack=True)
    d.panel("Cost", "Spend per hour at the configured prices.",
            [("sum(%s) * 3600" % rate("agentline_llm_cost_usd_total"), "USD per hour")], "currencyUSD")
    d.panel("Cache hit rate", "Share of generations served from the result cache.",
            [("sum(%s) / sum(%s)" % (rate("agentline_cache_requests_total", 'result="hit"'),
                                     rate("agentline_cache_requests_total")), "hit rate")], "percentunit")
    d.panel("Call latency", "Backend call time: p50, p95, p99.", quantiles("agentline_llm_call_seconds", ""), "s")
    d.panel("Breaker state", "1 while a breaker is in that state (closed is normal).",
            [("max by (breaker, state) (%s)" % m("agentline_breaker_state", 'state!="closed"'), "{{breaker}} {{state}}")],
            "short")
    d.panel("Breaker calls", "Calls through each breaker per second, by outcome (not_permitted: refused while open).",
            [("sum by (breaker, outcome) (%s)" % rate("agentline_breaker_calls_total"), "{{breaker}} {{outcome}}")], "ops")
    d.panel("Rate-limit rejections", "Calls a limiter refused per second, by limiter and reason.",
            [("sum by (limiter, reason) (%s)" % rate("agentline_ratelimit_rejections_total"), "{{limiter}} {{reason}}")], "ops")
    d.panel("Quota used", "Requests and tokens counted in each window (minute, hour, day) against its limit, per "
            "backend and per limited tenant.",
            [("max by (limiter, dimension, window) (%s / %s)" % (m("agentline_ratelimit_window_usage"),
                                                                m("agentline_ratelimit_window_limit")),
              "{{limiter}} {{dimension}} per {{window}}")],
            "percentunit")
    d.panel("Tasks generating at once", "The adaptive concurrency limit (AIMD) beside the calls in flight.",
            [("max by (limiter) (%s)" % m("agentline_concurrency_limit"), "limit {{limiter}}"),
             ("sum by (limiter) (%s)" % m("agentline_ratelimit_in_flight"), "in flight {{limiter}}")], "short")
    d.panel("Concurrency limit changes", "Changes of the adaptive limit per second: up on success, down on overload "
            "(429, timeout) or latency above the baseline.",
            [("sum by (direction, cause) (%s)" % rate("agentline_concurrency_limit_changes_total"),
              "{{direction}} {{cause}}")], "ops")
    d.panel("Tenants waiting", "Times per second a tenant's next task waited in place for its quota.",
            [("sum(%s)" % rate("agentline_tenant_throttled_total"), "held")], "ops")
    d.panel("Pool sizes", "Handler slots and upload threads, as configured or sized for the container.",
            [("max by (job, pool, source) (%s)" % m("agentline_pool_size"), "{{job}} {{pool}} ({{source}})")], "short")
    return d


def delivery():
    d = Dashboard("agentline-delivery", "Agentline / Delivery",
                  "outbox-uploader and dlq-escalator: items by status, uploads by target and outcome, escalations.")
    d.panel("Outbox items by status", "Items in the outbox database, by status.",
            [("sum by (status) (%s)" % m("agentline_outbox_items"), "{{status}}")], "short")
    d.panel("Uploads by target and outcome", "Upload attempts per second (already_there: a repeat the target absorbed).",
            [("sum by (target, outcome) (%s)" % rate("agentline_outbox_uploads_total"), "{{target}} {{outcome}}")], "ops", stack=True)
    d.panel("Upload latency", "Time one upload takes: p50, p95, p99.", quantiles("agentline_outbox_upload_duration_seconds", "target"), "s")
    d.panel("Staged records", "deploy.requests records staged per second (duplicate: a redelivery, no-op).",
            [("sum by (outcome) (%s)" % rate("agentline_outbox_staged_total"), "{{outcome}}")], "ops")
    d.panel("Escalations", "ESCALATED events per second, by reason.",
            [("sum by (reason) (%s)" % rate("agentline_escalations_total"), "{{reason}}")], "ops", stack=True)
    d.panel("DLQ store by reason", "Records kept in the DLQ store, by reason.",
            [("sum by (reason) (%s)" % m("agentline_dlq_stored_records"), "{{reason}}")], "short")
    d.panel("Digests", "Digest messages sent or failed per second.",
            [("sum by (outcome) (%s)" % rate("agentline_dlq_digests_total"), "{{outcome}}")], "ops")
    d.panel("SQLite volumes used", "Share of each SQLite volume in use (alert above 90%).",
            [("max by (store) (1 - %s / %s)" % (m("agentline_storage_free_bytes"), m("agentline_storage_capacity_bytes")), "{{store}}")],
            "percentunit")
    return d


def main():
    os.makedirs(OUT, exist_ok=True)
    check = "--check" in sys.argv
    stale = []
    for name, d in (("pipeline", pipeline()), ("llm", llm()), ("delivery", delivery())):
        text = json.dumps(d.json(), indent=2) + "\n"
        path = os.path.join(OUT, "agentline-%s.json" % name)
        if check:
            if not os.path.exists(path) or open(path).read() != text:
                stale.append(path)
        else:
            open(path, "w").write(text)
    if stale:
        print("stale (run python3 monitoring/dashboards.py): " + ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
