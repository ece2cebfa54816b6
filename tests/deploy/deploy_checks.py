#!/usr/bin/env python3
"""What operators get, checked with the real tools (run by CTest, label "deploy"):

  chart     helm lint --strict and helm template, default values and ci/all-features-values.yaml,
            then what the rendered objects must hold (labels, probes, security, StatefulSets,
            no replicas under autoscaling, checksums, pinned image, the catalog's topics)
  rules     promtool check rules on the alert rules; promtool test rules on a few series
  dashboards  the dashboards are up to date with monitoring/dashboards.py; the rules of
            Grafana's dashboard-linter (datasource/job/instance variables, $__rate_interval,
            matchers, titles, descriptions, units, counters under rate); every query parsed
            by promtool
  scrapes DIR  promtool check metrics on each service's /metrics saved in DIR (*.prom), and
            every metric named by a dashboard or an alert appears in those scrapes
"""
import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "helm", "agentline")
ALERTS = os.path.join(CHART, "files", "alerts.yaml")
DASHBOARDS = sorted(glob.glob(os.path.join(CHART, "dashboards", "*.json")))
SERVICES = ["priority-assigner", "dev-fix-worker", "qa-worker", "router", "dlq-escalator", "outbox-uploader"]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def tool(name):
    found = shutil.which(name)
    if found:
        return found
    for d in (os.path.expanduser("~/go/bin"), "/usr/local/bin"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit("%s is not installed (scripts/install-deps.sh installs it)" % name)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        fail("%s exited %d:\n%s%s" % (" ".join(cmd), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r


# ---- chart -------------------------------------------------------------------------------

def render(values=None):
    cmd = [tool("helm"), "template", "t", CHART, "--kube-version", "1.29.0", "--namespace", "agentline"]
    if values:
        cmd += ["-f", values]
    r = run(cmd)
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def check_objects(objs, label, all_features):
    kinds = {}
    for o in objs:
        kinds.setdefault(o["kind"], []).append(o)
        labels = o["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of"):
            if key not in labels:
                fail("%s: %s %s has no label %s" % (label, o["kind"], o["metadata"]["name"], key))
    workloads = kinds.get("Deployment", []) + kinds.get("StatefulSet", [])
    names = {w["metadata"]["labels"]["app.kubernetes.io/component"]: w for w in workloads}
    if sorted(names) != sorted(SERVICES + ["gateway"]):
        fail("%s: workloads %s, expected one per service and the gateway" % (label, sorted(names)))
    gw = names.get("gateway")
    if gw:
        c = gw["spec"]["template"]["spec"]["containers"][0]
        if c["command"] != ["gateway"] or not any(a.startswith("--dlq-url=http://t-agentline-dlq-escalator:9400") for a in c.get("args", [])):
            fail("%s: the gateway must run `gateway --dlq-url` pointing at dlq-escalator: %s" % (label, c.get("args")))
        services = [o for o in kinds.get("Service", []) if o["metadata"]["name"] == "t-agentline-gateway"]
        if not services:
            fail("%s: no Service for the gateway" % label)
        token = [e for e in c["env"] if e["name"] == "AGENTLINE_API_TOKEN"]
        ingresses = kinds.get("Ingress", [])
        if all_features:
            if not token or token[0].get("valueFrom", {}).get("secretKeyRef", {}).get("name") != "agentline-api-token":
                fail("%s: the gateway's API token does not come from its Secret" % label)
            if len(ingresses) != 1 or ingresses[0]["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
                fail("%s: the gateway Ingress (with proxy buffering off for event streams) is missing" % label)
        else:
            # Closed by default: without a Secret of the user's, the chart makes one with a random
            # token, and the gateway and dlq-escalator both read it.
            secrets = [o for o in kinds.get("Secret", []) if o["metadata"]["name"] == "t-agentline-api-token"]
            if ingresses:
                fail("%s: no Ingress expected by default" % label)
            if not token or token[0].get("valueFrom", {}).get("secretKeyRef", {}).get("name") != "t-agentline-api-token" \
                    or len(secrets) != 1 or len(base64.b64decode(secrets[0]["data"]["token"])) < 32:
                fail("%s: by default the gateway reads a generated API token from t-agentline-api-token" % label)
            dlq = [o for o in kinds.get("StatefulSet", []) + kinds.get("Deployment", [])
                   if o["metadata"]["name"] == "t-agentline-dlq-escalator"]
            dlq_env = dlq[0]["spec"]["template"]["spec"]["containers"][0]["env"] if dlq else []
            if not any(e["name"] == "AGENTLINE_API_TOKEN" for e in dlq_env):
                fail("%s: dlq-escalator's admin routes need the same API token" % label)
        for workload in kinds.get("Deployment", []) + kinds.get("StatefulSet", []):
            env = workload["spec"]["template"]["spec"]["containers"][0].get("env", [])
            if {"name": "AGENTLINE_HTTP_HOST", "value": "0.0.0.0"} not in env:
                fail("%s: %s must bind its HTTP port on every interface in the pod (the services bind "
                     "loopback by default)" % (label, workload["metadata"]["name"]))
    names = {k: v for k, v in names.items() if k != "gateway"}
    for svc in ("outbox-uploader", "dlq-escalator"):
        w = names.get(svc)
        if not w or w["kind"] != "StatefulSet" or not w["spec"].get("volumeClaimTemplates"):
            fail("%s: %s must be a StatefulSet with a PersistentVolumeClaim template" % (label, svc))
    autoscaled = all_features
    for svc, w in names.items():
        spec = w["spec"]
        pod = spec["template"]["spec"]
        c = pod["containers"][0]
        if autoscaled == ("replicas" in spec):
            fail("%s: %s spec.replicas %s under autoscaling=%s" % (label, svc, "present" if "replicas" in spec else "absent", autoscaled))
        image = c["image"]
        if image.endswith(":latest") or (":" not in image.split("/")[-1] and "@" not in image):
            fail("%s: %s image %s is not pinned" % (label, svc, image))
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if c.get(probe, {}).get("httpGet", {}).get("path") != path:
                fail("%s: %s has no %s on %s" % (label, svc, probe, path))
        env = {e["name"]: e.get("value") for e in c["env"]}
        grace_ms = int(env["AGENTLINE_SHUTDOWN_GRACE_MS"])
        if pod["terminationGracePeriodSeconds"] * 1000 <= grace_ms:
            fail("%s: %s terminationGracePeriodSeconds is not longer than the drain" % (label, svc))
        psc, sc = pod["securityContext"], c["securityContext"]
        if not psc.get("runAsNonRoot") or psc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            fail("%s: %s pod security context is not restricted: %s" % (label, svc, psc))
        if sc.get("allowPrivilegeEscalation") is not False or not sc.get("readOnlyRootFilesystem") or sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail("%s: %s container security context is not restricted: %s" % (label, svc, sc))
        if not re.fullmatch(r"[0-9a-f]{64}", spec["template"]["metadata"].get("annotations", {}).get("checksum/config", "")):
            fail("%s: %s has no checksum/config annotation" % (label, svc))
    if len(kinds.get("PodDisruptionBudget", [])) != len(SERVICES) + 1:
        fail("%s: one PodDisruptionBudget per service and the gateway expected" % label)
    catalog = json.load(open(os.path.join(ROOT, "topics", "catalog.json")))
    if all_features:
        if len(kinds.get("ScaledObject", [])) != len(SERVICES) or kinds.get("HorizontalPodAutoscaler"):
            fail("%s: KEDA on: one ScaledObject per service and no HPA expected" % label)
        for so in kinds.get("ScaledObject", []):
            t = so["spec"]["triggers"][0]
            if t["type"] != "kafka" or t["metadata"].get("sasl") != "scram_sha512" or t["metadata"].get("tls") != "enable":
                fail("%s: ScaledObject %s trigger %s" % (label, so["metadata"]["name"], t))
        expected = len(catalog["topics"]) + len(catalog["retry"]["groups"]) * len(catalog["retry"]["delays_ms"])
        topics = kinds.get("KafkaTopic", [])
        if len(topics) != expected:
            fail("%s: %d KafkaTopics, the catalog has %d" % (label, len(topics), expected))
        compacted = [t["spec"]["topicName"] for t in topics if t["spec"].get("config", {}).get("cleanup.policy") == "compact"]
        if sorted(compacted) != ["prod.agentline.cache.results", "prod.agentline.jobs.plans", "prod.agentline.jobs.progress"]:
            fail("%s: compacted topics %s" % (label, compacted))
        for kind in ("ServiceMonitor", "PrometheusRule", "TriggerAuthentication"):
            if not kinds.get(kind):
                fail("%s: no %s" % (label, kind))
        rule_groups = kinds["PrometheusRule"][0]["spec"]["groups"] if kinds.get("PrometheusRule") else []
        if rule_groups != yaml.safe_load(open(ALERTS))["groups"]:
            fail("%s: the PrometheusRule differs from files/alerts.yaml" % label)
    else:
        jobs = [o for o in kinds.get("Job", []) if "pre-install" in o["metadata"].get("annotations", {}).get("helm.sh/hook", "")]
        if len(jobs) != 1 or jobs[0]["spec"]["template"]["spec"]["containers"][0]["command"][:3] != ["agentline", "topics", "apply"]:
            fail("%s: no pre-install topic provisioning Job running `agentline topics apply`" % label)
        cms = [o for o in kinds.get("ConfigMap", []) if o["metadata"]["name"].endswith("-catalog")]
        if not cms or json.loads(cms[0]["data"]["catalog.json"]) != catalog:
            fail("%s: the provisioning Job's catalog differs from topics/catalog.json" % label)
        dashboards = [o for o in kinds.get("ConfigMap", []) if o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
        if len(dashboards) != len(DASHBOARDS):
            fail("%s: %d dashboard ConfigMaps for %d dashboards" % (label, len(dashboards), len(DASHBOARDS)))
    tests = [o for o in kinds.get("Pod", []) if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    if not tests:
        fail("%s: no helm test" % label)
    print("%s: %d objects (%s)" % (label, len(objs), ", ".join("%s %d" % (k, len(v)) for k, v in sorted(kinds.items()))))


def chart():
    helm = tool("helm")
    print(run([helm, "version", "--short"]).stdout.strip())
    if open(os.path.join(CHART, "files", "catalog.json")).read() != open(os.path.join(ROOT, "topics", "catalog.json")).read():
        fail("helm/agentline/files/catalog.json is not a copy of topics/catalog.json")
    # As a user renders it without a cluster (GitOps, review): no --kube-version. The chart needs
    # Kubernetes >= 1.25; helm's offline default is the Kubernetes its client library targets
    # (1.31 for helm 3.16), or 1.20 when built without the release's ldflags.
    r = subprocess.run([helm, "template", "t", CHART], capture_output=True, text=True)
    if r.returncode != 0:
        fail("helm template without --kube-version failed (a user following docs/operations.md meets this):\n" +
             r.stderr[-2000:])
    all_features = os.path.join(CHART, "ci", "all-features-values.yaml")
    for label, values in (("default values", None), ("all features", all_features)):
        cmd = [helm, "lint", "--strict", CHART] + (["-f", values] if values else [])
        r = run(cmd)
        print("helm lint --strict (%s): %s" % (label, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "?"))
        check_objects(render(values), label, values is not None)
    # The schema refuses what it must.
    bad = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    bad.write("image:\n  tag: latest\nunknownKey: 1\n")
    bad.close()
    r = subprocess.run([helm, "lint", "--strict", CHART, "-f", bad.name], capture_output=True, text=True)
    os.unlink(bad.name)
    if r.returncode == 0 or "unknownKey" not in (r.stdout + r.stderr):
        fail("values.schema.json accepted an unknown key and image tag 'latest'")


# ---- alert rules -----------------------------------------------------------------------------

RULE_TEST = """
rule_files: [%s]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'agentline_breaker_state{breaker="llm-openai",state="open",service="dev-fix-worker"}'
        values: '0 1 1 1 1'
      - series: 'agentline_storage_free_bytes{store="outbox",service="outbox-uploader"}'
        values: '50x12'
      - series: 'agentline_storage_capacity_bytes{store="outbox",service="outbox-uploader"}'
        values: '1000x12'
      - series: 'agentline_records_processed_total{service="router",outcome="ok"}'
        values: '0+80x12'
      - series: 'agentline_records_processed_total{service="router",outcome="dead_lettered"}'
        values: '0+20x12'
    alert_rule_test:
      - eval_time: 3m
        alertname: AgentlineBreakerOpen
        exp_alerts:
          - exp_labels: {severity: critical, breaker: llm-openai}
            exp_annotations:
              summary: "Circuit breaker llm-openai is open"
              description: "Calls through llm-openai are refused; the service holds its work until a probe succeeds."
      - eval_time: 11m
        alertname: AgentlineDiskNearlyFull
        exp_alerts:
          - exp_labels: {severity: critical, store: outbox, service: outbox-uploader}
            exp_annotations:
              summary: "The outbox SQLite volume is more than 90% full"
              description: "outbox-uploader's outbox volume is 95% full; the service turns not-ready near the end."
      - eval_time: 11m
        alertname: AgentlineHighErrorRate
        exp_alerts:
          - exp_labels: {severity: warning, service: router}
            exp_annotations:
              summary: "router: more than 10% of records fail"
              description: "router retried or dead-lettered 20% of its records over 5 minutes."
"""


def rules():
    promtool = tool("promtool")
    r = run([promtool, "check", "rules", ALERTS])
    print(r.stdout.strip())
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(ALERTS, os.path.join(d, "alerts.yaml"))
        open(os.path.join(d, "test.yaml"), "w").write(RULE_TEST.replace("%s", "alerts.yaml"))
        r = run([promtool, "test", "rules", "test.yaml"], cwd=d)
        print(r.stdout.strip())


# ---- dashboards ------------------------------------------------------------------------------

COUNTER = re.compile(r"_total\b")


def queries():
    for path in DASHBOARDS:
        d = json.load(open(path))
        for p in d["panels"]:
            for t in p.get("targets", []):
                yield path, d, p, t["expr"]


def dashboards():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "monitoring", "dashboards.py"), "--check"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(r.stdout + r.stderr)
    uids = set()
    for path in DASHBOARDS:
        name = os.path.basename(path)
        d = json.load(open(path))
        if d["uid"] in uids:
            fail("%s: uid %s used twice" % (name, d["uid"]))
        uids.add(d["uid"])
        variables = {v["name"]: v for v in d["templating"]["list"]}
        if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
            fail("%s: no Prometheus datasource variable" % name)
        for v in ("job", "instance"):
            if v not in variables:
                fail("%s: no $%s variable" % (name, v))
        if d.get("editable") is not False:
            fail("%s: dashboards provisioned from files should not be editable" % name)
        for p in d["panels"]:
            where = "%s panel '%s'" % (name, p.get("title"))
            if not p.get("title") or not p.get("description"):
                fail(where + ": needs a title and a description")
            if p.get("datasource", {}).get("uid") != "${datasource}":
                fail(where + ": must use the ${datasource} variable")
            if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                fail(where + ": no unit")
    promql = []
    for path, d, p, expr in queries():
        where = "%s panel '%s'" % (os.path.basename(path), p["title"])
        for sel in re.findall(r"\b([a-z_:][a-z0-9_:]*)\{([^}]*)\}", expr):
            if 'job=~"$job"' not in sel[1] or 'instance=~"$instance"' not in sel[1]:
                fail("%s: selector %s lacks the $job/$instance matchers" % (where, sel[0]))
        for m in re.finditer(r"\[([^\]]+)\]", expr):
            if m.group(1) != "$__rate_interval":
                fail("%s: range [%s] should be [$__rate_interval]" % (where, m.group(1)))
        for name in re.findall(r"\b([a-z_:][a-z0-9_:]*_total)\{", expr):
            if not re.search(r"(rate|increase)\(\s*" + re.escape(name), expr):
                fail("%s: counter %s is used without rate()/increase()" % (where, name))
        promql.append(expr.replace("$__rate_interval", "5m").replace("$job", ".+").replace("$instance", ".+"))
    # Parse every query with Prometheus' own parser (as recording rules).
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "queries.yaml")
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [
            {"record": "dashboard:query_%d" % i, "expr": e} for i, e in enumerate(promql)]}]}, open(f, "w"))
        r = run([tool("promtool"), "check", "rules", f])
        print("dashboard queries: " + r.stdout.strip().splitlines()[-1])
    print("%d dashboards, %d queries linted" % (len(DASHBOARDS), len(promql)))


# ---- scrapes ---------------------------------------------------------------------------------

FUNCTIONS = {"rate", "increase", "sum", "max", "min", "avg", "by", "without", "histogram_quantile", "deriv", "and", "or",
             "unless", "on", "ignoring", "group_left", "count", "abs", "humanizePercentage", "humanizeDuration", "bool",
             "le", "offset", "label_values", "topk", "bottomk", "clamp_min", "clamp_max", "irate", "delta", "idelta"}


def metric_names(expr):
    expr = re.sub(r'"[^"]*"', '""', expr)   # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # matchers
    expr = re.sub(r"\([^()]*\)\s*(?=[a-z(])", lambda m: m.group(0), expr)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|\[|\)|\s|$|/|>|\*|-|\+)", expr):
        n = m.group(1)
        if n in FUNCTIONS or n.isdigit() or n.startswith("_"):
            continue
        nxt = expr[m.end(1):].lstrip()
        if nxt.startswith("("):
            continue  # a function call
        if re.match(r"by\s*\(|without\s*\(", expr[m.start(1):]):
            continue
        names.add(n)
    # Label names inside by (...) are not metrics.
    for grp in re.findall(r"(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        for lbl in grp.split(","):
            names.discard(lbl.strip())
    return names


def scrapes(directory):
    promtool = tool("promtool")
    files = sorted(glob.glob(os.path.join(directory, "*.prom")))
    if len(files) != len(SERVICES):
        fail("%d scrapes in %s, expected one per service (%d)" % (len(files), directory, len(SERVICES)))
    scraped = set()
    for f in files:
        text = open(f).read()
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        if r.returncode != 0:
            fail("promtool check metrics %s:\n%s" % (os.path.basename(f), r.stdout + r.stderr))
        for line in text.splitlines():
            if line and not line.startswith("#"):
                scraped.add(re.split(r"[{ ]", line, 1)[0])
        print("promtool check metrics %s: ok (%d samples)" % (os.path.basename(f), sum(1 for l in text.splitlines() if l and not l.startswith("#"))))
    used = {}
    for path, d, p, expr in queries():
        for n in metric_names(expr):
            used.setdefault(n, "dashboard %s" % os.path.basename(path))
    for group in yaml.safe_load(open(ALERTS))["groups"]:
        for rule in group["rules"]:
            for n in metric_names(rule["expr"]):
                used.setdefault(n, "alert %s" % rule["alert"])
    missing = sorted(n for n in used if n not in scraped)
    for n in missing:
        fail("%s (used by %s) is not in any service's scrape" % (n, used[n]))
    print("%d metric names used by dashboards and alerts; %d found in the scrapes of %d services" %
          (len(used), len(used) - len(missing), len(files)))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "chart":
        chart()
    elif what == "rules":
        rules()
    elif what == "dashboards":
        dashboards()
    elif what == "scrapes" and len(sys.argv) == 3:
        scrapes(sys.argv[2])
    else:
        sys.exit(__doc__)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
