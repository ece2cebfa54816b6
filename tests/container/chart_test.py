#!/usr/bin/env python3
"""The Helm chart's workloads start (label "container"): `helm template` renders the chart with
the image built by scripts/build-image.sh and the Apache Kafka the kafka tier started (its
fixture, tests/kafka/kafka-local.sh), and `podman kube play` runs what it renders:

  - the topic Job's pod (agentline topics apply), which must exit 0;
  - the five Deployments (priority-assigner, dev-fix-worker, qa-worker, router, gateway), as
    Deployments;
  - the two StatefulSets' pod templates (dlq-escalator, outbox-uploader) as Pods, each with a
    folder of the test for the volume its claim template asks for.

Then every pod but qa-worker must answer /readyz with 200. qa-worker must answer 503 naming the
sandbox's /proc: podman 4.3 cannot unmask /proc for a pod (securityContext.procMount came in
podman 4.7), bubblewrap then cannot mount the sandbox's own, and qa-worker never runs checks
unsandboxed (docs/operations.md says what a cluster must allow; container.pipeline runs qa-worker's
sandbox in a container that has it). qa-worker is then played again rendered with the chart's
services.qa-worker.config.sandbox=none, and must be ready. examples/tasks.jsonl is submitted with
the agentline CLI, and the job must be delivered end to end: 20/20 files done (19 delivered, the
one that never passes QA dead-lettered), 19 files written by the outbox-uploader pod, the gateway
pod serving the job at 100%. Every container ran as 10001, read-only, without capabilities.

What podman 4.3 does differently from a cluster, and what the test changes for it (nothing else):
  - no cluster network: every pod shares the host's (the Kafka is on loopback), so each gets its
    own HTTP port (AGENTLINE_HTTP_PORT, and the probes' port) and one replica, and declares no
    containerPort (podman refuses to publish ports on the host's network);
  - StatefulSet and Job are not kinds it plays: their pod templates run as Pods;
  - a Secret is read from a podman secret holding its data as JSON, which the test creates from
    the rendered Secret;
  - a configMap volume mounted with subPath becomes a folder: the ConfigMap is mounted as the
    folder that holds the file instead (same path to the file).
Services, PodDisruptionBudgets, ScaledObjects and the helm-test Pod stay covered by the static
checks (tests/deploy/deploy_checks.py).
"""
import base64
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

root = os.path.abspath(sys.argv[1])
bin_dir = os.path.abspath(sys.argv[2])
kafka_state = sys.argv[3]
sys.path.insert(0, os.path.join(root, "tests", "support"))
import harness  # noqa: E402
import yaml  # noqa: E402


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    r = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if r.returncode != 0:
        fail("%s exited %d: %s" % (" ".join(cmd), r.returncode, r.stderr[-2000:]))
    return r.stdout


image = subprocess.run(["bash", os.path.join(root, "scripts", "build-image.sh")], check=True, text=True,
                       stdout=subprocess.PIPE).stdout.strip()
# podman's settings for these machines, from scripts/lib/podman.sh as build-image.sh used them.
os.environ["CONTAINERS_CONF"] = run(["bash", "-c", '. "$0/scripts/lib/cache.sh" && . "$0/scripts/lib/podman.sh" && '
                                     'agentline_podman_setup && echo "$CONTAINERS_CONF"', root]).strip()
bootstrap = open(os.path.join(kafka_state, "bootstrap")).read().strip()
repository, tag = image.rsplit(":", 1)
work = tempfile.mkdtemp(prefix="agentline-chart-")
release = "c%d" % os.getpid()
prefix = "chart%d." % os.getpid()
base_port = harness.free_port_block(7)

COMPONENTS = ["priority-assigner", "dev-fix-worker", "qa-worker", "router", "outbox-uploader", "dlq-escalator",
              "gateway"]
port_of = {c: base_port + i for i, c in enumerate(COMPONENTS)}


def render(*sets):
    out = run(["helm", "template", release, os.path.join(root, "helm", "agentline"),
               "--set", "image.repository=" + repository, "--set", "image.tag=" + tag,
               "--set", "image.pullPolicy=Never",
               "--set", "kafka.bootstrapServers=" + bootstrap, "--set", "kafka.topicPrefix=" + prefix,
               "--set", "topics.replicationFactor=1", *sum([["--set", x] for x in sets], [])])
    return [d for d in yaml.safe_load_all(out) if d]


def adapt(pod_spec, component, port):
    """The changes podman 4.3 on one host needs; see the module's text."""
    for c in pod_spec["containers"]:
        for e in c.get("env", []):
            if e["name"] == "AGENTLINE_HTTP_PORT":
                e["value"] = str(port)
        # On the host's network there is nothing to publish (podman refuses port mappings there):
        # the probes name the port by number instead.
        c.pop("ports", None)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "httpGet" in c.get(probe, {}):
                c[probe]["httpGet"]["port"] = port
        for m in c.get("volumeMounts", []):
            if "subPath" in m:
                if not m["mountPath"].endswith("/" + m["subPath"]):
                    fail("%s mounts %s as %s" % (component, m["subPath"], m["mountPath"]))
                m["mountPath"] = m["mountPath"][: -len(m["subPath"]) - 1]
                del m["subPath"]
    return pod_spec


outbox_data = os.path.join(work, "outbox-uploader-data")


def workloads_of(docs):
    """(component, kind as rendered, what podman plays) for each Job, Deployment and StatefulSet."""
    global outbox_data
    out_list = []
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind not in ("Deployment", "StatefulSet", "Job"):
            continue
        component = d["metadata"]["labels"]["app.kubernetes.io/component"]
        spec = adapt(copy.deepcopy(d["spec"]["template"]["spec"]), component, port_of.get(component, 0))
        if kind == "Deployment":
            out = copy.deepcopy(d)
            out["spec"]["replicas"] = 1
            out["spec"]["template"]["spec"] = spec
        else:
            for claim in d["spec"].get("volumeClaimTemplates", []):
                folder = os.path.join(work, component + "-" + claim["metadata"]["name"])
                os.makedirs(folder, exist_ok=True)
                os.chown(folder, 10001, 10001)
                spec.setdefault("volumes", []).append(
                    {"name": claim["metadata"]["name"], "hostPath": {"path": folder, "type": "Directory"}})
                if component == "outbox-uploader":
                    outbox_data = folder
            out = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "labels": d["spec"]["template"]["metadata"].get("labels", {})},
                   "spec": spec}
        out_list.append((component, kind, out))
    return out_list


docs = render()
kinds = {}
for d in docs:
    kinds.setdefault(d["kind"], []).append(d["metadata"]["name"])
print("rendered:", {k: len(v) for k, v in sorted(kinds.items())})
configmaps = [d for d in docs if d["kind"] == "ConfigMap"]
secrets = [d for d in docs if d["kind"] == "Secret"]
if len(secrets) != 1:
    fail("expected the API token Secret only, got %s" % kinds.get("Secret"))
workloads = workloads_of(docs)
# qa-worker once more, with the sandbox off (the chart's services.qa-worker.config.sandbox=none).
unsandboxed = render("services.qa-worker.config.sandbox=none")
qa_unsandboxed = [w for w in workloads_of(unsandboxed) if w[0] == "qa-worker"][0]
played = []  # (kind as rendered, kind as played, name, port, how)


def podman(*args, check=True):
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=True)


def play(doc, name, maps=None):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        yaml.safe_dump_all((maps or configmaps) + [doc], f)
    r = podman("kube", "play", "--network", "host", path, check=False)
    if r.returncode != 0:
        fail("podman kube play %s: %s" % (name, r.stderr))
    return path


secret = secrets[0]
secret_data = dict(secret.get("data", {}))
for k, v in secret.get("stringData", {}).items():
    secret_data[k] = base64.b64encode(v.encode()).decode()
podman("secret", "rm", secret["metadata"]["name"], check=False)
subprocess.run(["podman", "secret", "create", secret["metadata"]["name"], "-"], input=json.dumps(secret_data),
               text=True, check=True, capture_output=True)
token = base64.b64decode(secret_data[next(iter(secret_data))]).decode()

played_files = []


def teardown():
    for path in reversed(played_files):
        podman("kube", "down", path, check=False)
    podman("secret", "rm", secret["metadata"]["name"], check=False)
    # The volumes podman made of the ConfigMaps.
    for v in podman("volume", "ls", "--quiet", check=False).stdout.split():
        if v.startswith(release + "-"):
            podman("volume", "rm", "--force", v, check=False)


def container_name(kind, doc):
    spec = doc["spec"]["template"]["spec"] if kind == "Deployment" else doc["spec"]
    pod = doc["metadata"]["name"] + ("-pod-0" if kind == "Deployment" else "")
    return pod + "-" + spec["containers"][0]["name"]


def readyz(port, want, seconds=90):
    """/readyz's status and body once it answers `want`, or the last answer after `seconds`."""
    deadline = time.time() + seconds
    code, body = None, ""
    while time.time() < deadline:
        try:
            r = urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=2)
            code, body = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            code, body = e.code, e.read().decode()
        except OSError:  # not listening yet
            code, body = None, ""
        if code == want:
            break
        time.sleep(0.5)
    return code, body


def how(kind):
    return {"Deployment": "a Deployment", "StatefulSet": "its pod template as a Pod",
            "Job": "its pod template as a Pod"}[kind]


try:
    # 1. The topic Job's pod creates the catalog's topics and exits 0.
    for component, kind, doc in workloads:
        if kind != "Job":
            continue
        played_files.append(play(doc, component))
        container = container_name(kind, doc)
        code = podman("wait", container).stdout.strip()
        logs = podman("logs", container).stderr + podman("logs", container).stdout
        if code != "0":
            fail("the topic job exited %s: %s" % (code, logs))
        played.append((kind, doc["metadata"]["name"], how(kind) + ", exited 0"))
    # Just created, a topic's leaders may take a moment to be known.
    listed = None
    for _ in range(60):
        listed = subprocess.run([os.path.join(bin_dir, "agentline"), "topics", "list", "--bootstrap-servers",
                                 bootstrap, "--topic-prefix", prefix], text=True, capture_output=True)
        if listed.returncode == 0:
            break
        time.sleep(0.5)
    if listed.returncode != 0 or prefix + "tasks.submitted" not in listed.stdout:
        fail("the topic job did not create the catalog's topics:\n%s%s" % (listed.stdout, listed.stderr))

    # 2. The services as rendered. Each is ready but qa-worker: podman 4.3 cannot unmask /proc for a
    #    pod (securityContext.procMount came in podman 4.7), so bubblewrap cannot mount the
    #    sandbox's /proc, and qa-worker must say so and stay not ready rather than run checks
    #    unsandboxed (docs/operations.md: what a cluster must allow).
    file_of = {}
    for component, kind, doc in workloads:
        if kind != "Job":
            file_of[component] = play(doc, component)
            played_files.append(file_of[component])
    running = {}
    for component, kind, doc in workloads:
        if kind == "Job":
            continue
        running[component] = (kind, doc)
        want = 503 if component == "qa-worker" else 200
        code, body = readyz(port_of[component], want)
        print("readyz %-18s %s %s" % (component, code, body.strip()[:160] if code != 200 else ""))
        if code != want:
            logs = podman("logs", container_name(kind, doc)).stderr
            fail("%s's /readyz answered %s, expected %d\n%s" % (component, code, want, logs[-3000:]))
        if component == "qa-worker" and "mount proc" not in body:
            fail("qa-worker is not ready without naming the sandbox's /proc: " + body)
        played.append((kind, doc["metadata"]["name"], "%s, port %d, /readyz %d" % (how(kind), port_of[component], code)))

    # qa-worker again with the sandbox off, so the job can pass QA here (never on a cluster that
    # can give it /proc: docs/operations.md).
    podman("kube", "down", file_of["qa-worker"], check=False)
    # Under a name of its own: podman keeps a played ConfigMap's content in a volume of its name,
    # which the first qa-worker's left behind.
    unsandboxed_maps = [d for d in unsandboxed if d["kind"] == "ConfigMap"]
    qa_map = [d for d in unsandboxed_maps if d["metadata"]["name"].endswith("-qa-worker")][0]
    for v in qa_unsandboxed[2]["spec"]["template"]["spec"]["volumes"]:
        if v.get("configMap", {}).get("name") == qa_map["metadata"]["name"]:
            v["configMap"]["name"] += "-unsandboxed"
    qa_map["metadata"]["name"] += "-unsandboxed"
    played_files.append(play(qa_unsandboxed[2], "qa-worker-unsandboxed", unsandboxed_maps))
    running["qa-worker"] = (qa_unsandboxed[1], qa_unsandboxed[2])
    code, body = readyz(port_of["qa-worker"], 200)
    if code != 200:
        fail("qa-worker with config.sandbox=none is not ready: %s %s" % (code, body))
    played.append(("Deployment", qa_unsandboxed[2]["metadata"]["name"],
                   "a Deployment with config.sandbox=none, port %d, /readyz 200" % port_of["qa-worker"]))

    # 3. A job end to end through the pods.
    cli = [os.path.join(bin_dir, "agentline"), "--bootstrap-servers", bootstrap, "--topic-prefix", prefix]
    run(cli + ["submit", os.path.join(root, "examples", "tasks.jsonl")])
    status = subprocess.run(cli + ["status", "--wait", "180", "--delivered", "--files"], text=True,
                            capture_output=True)
    print(status.stdout)
    # examples/tasks.jsonl: 20 files, one of which never passes QA (dead-lettered after 3 fixes).
    if "job todo-api: 100% (20/20 files done)" not in status.stdout or \
            "delivered 19, dead-lettered 1" not in status.stdout:
        fail("job todo-api was not completed by the chart's pods:\n" + status.stdout + status.stderr)
    delivered = os.path.join(outbox_data, "delivered", "todo-api")
    files = [os.path.join(d, f) for d, _, fs in os.walk(delivered) for f in fs if "/.agentline" not in d]
    if len(files) != 19:
        fail("%d files delivered under %s, expected 19" % (len(files), delivered))
    req = urllib.request.Request("http://127.0.0.1:%d/api/jobs" % port_of["gateway"],
                                 headers={"Authorization": "Bearer " + token})
    jobs = json.load(urllib.request.urlopen(req, timeout=5))["jobs"]
    if not any(j["job_id"] == "todo-api" and j["percent"] == 100 for j in jobs):
        fail("the gateway pod does not serve todo-api at 100%%: %s" % jobs)

    # 4. The restricted settings held in every running container.
    for component, (kind, doc) in running.items():
        name = container_name(kind, doc)
        info = json.loads(podman("inspect", name).stdout)[0]
        uid = podman("exec", name, "id", "-u").stdout.strip()
        if uid != "10001" or not info["HostConfig"]["ReadonlyRootfs"] or info["EffectiveCaps"]:
            fail("%s runs as %s, read-only %s, capabilities %s" % (
                component, uid, info["HostConfig"]["ReadonlyRootfs"], info["EffectiveCaps"]))
    print("every container: uid 10001, read-only root file system, no capabilities")
finally:
    teardown()

print("== started for real with podman kube play:")
for rendered_kind, name, what in played:
    print("  %-11s %-40s %s" % (rendered_kind, name, what))
print("1 passed, 0 failed")
