"""Checks the rendered deploy/k8s/base: every part the docs name is there, probes and the GPU
request are set, the ConfigMap carries the repository's tenants and the brokers' Redis user, the
config keys exist in config/, the pods' shell scripts parse, and the Secrets the manifests need are
the ones docs/operations.md tells how to make."""
import pathlib
import re
import subprocess
import sys

import yaml

root, rendered = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


for part in [("Service", "redis"), ("StatefulSet", "redis"), ("Service", "gpubridge-broker"),
             ("Service", "gpubridge-broker-pods"), ("StatefulSet", "gpubridge-broker"),
             ("Deployment", "gpubridge-worker-cpu"), ("Deployment", "gpubridge-worker-gpu"),
             ("ConfigMap", "gpubridge-config"), ("ScaledObject", "gpubridge-worker-cpu"),
             ("NetworkPolicy", "gpubridge-redis"), ("NetworkPolicy", "gpubridge-broker"),
             ("NetworkPolicy", "gpubridge-worker")]:
    check(part in by, f"missing {part[0]} {part[1]}")


def containers(kind, name):
    return by.get((kind, name), {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


for kind, name in [("StatefulSet", "gpubridge-broker"), ("Deployment", "gpubridge-worker-cpu"),
                   ("Deployment", "gpubridge-worker-gpu")]:
    for c in containers(kind, name):
        check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{name}: liveness /healthz")
        check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{name}: readiness /readyz")
gpu = containers("Deployment", "gpubridge-worker-gpu")
check(gpu and str(gpu[0].get("resources", {}).get("limits", {}).get("nvidia.com/gpu")) == "1",
      "the GPU worker requests nvidia.com/gpu: 1")

scaled = by.get(("ScaledObject", "gpubridge-worker-cpu"), {}).get("spec", {})
check(scaled.get("scaleTargetRef", {}).get("name") == "gpubridge-worker-cpu", "KEDA scales the CPU workers")
query = scaled.get("triggers", [{}])[0].get("metadata", {}).get("query", "")
for metric in re.findall(r"bridge_[a-z_]+", query):
    check(metric in (root / "broker/src/broker_metrics.cpp").read_text(), f"KEDA's query names {metric}, "
          "which the broker does not export")

config = by.get(("ConfigMap", "gpubridge-config"), {}).get("data", {})
check(config.get("tenants.yaml") == (root / "config/tenants.yaml").read_text(),
      "deploy/k8s/base/config/tenants.yaml differs from config/tenants.yaml")
user = [line for line in (root / "config/redis-acl.conf").read_text().splitlines() if line.startswith("user gpubridge ")]
check(user and user[0] in config.get("redis-acl.conf", "").splitlines(),
      "the brokers' Redis user in deploy/k8s differs from config/redis-acl.conf")
check(not any(line.startswith("#") for line in config.get("redis-acl.conf", "").splitlines()),
      "redis-acl.conf has comments: Redis refuses such an ACL file")
for program in ["broker", "worker"]:
    known = set(yaml.safe_load((root / f"config/{program}.yaml").read_text()))
    for key in yaml.safe_load(config.get(f"{program}.yaml", "{}")) or {}:
        check(key in known, f"deploy/k8s {program}.yaml: '{key}' is no key of config/{program}.yaml")

scripts = [(f"redis pod, container {c['name']}", c) for c in containers("StatefulSet", "redis")]
scripts += [(name, c) for name in ["gpubridge-worker-cpu", "gpubridge-worker-gpu"] for c in containers("Deployment", name)]
for where, c in scripts:
    script = c.get("command", [None, None, ""])[-1]
    parsed = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    check(parsed.returncode == 0, f"{where}: its script does not parse: {parsed.stderr}")

# Workers name the brokers by the StatefulSet's pods under a headless Service that lists them before
# they are ready (a broker is ready only once a worker is there).
pods = by.get(("Service", "gpubridge-broker-pods"), {}).get("spec", {})
check(pods.get("publishNotReadyAddresses") is True and pods.get("clusterIP") == "None",
      "gpubridge-broker-pods must be headless and list brokers that are not ready yet")
check(by.get(("StatefulSet", "gpubridge-broker"), {}).get("spec", {}).get("serviceName") == "gpubridge-broker-pods",
      "the brokers' StatefulSet must be named by gpubridge-broker-pods")
for name in ["gpubridge-worker-cpu", "gpubridge-worker-gpu"]:
    for c in containers("Deployment", name):
        for pod in re.findall(r"gpubridge-broker-\d+\.gpubridge-broker-pods", c.get("command", [""])[-1]):
            ordinal = int(pod.split(".")[0].rsplit("-", 1)[1])
            check(ordinal < by.get(("StatefulSet", "gpubridge-broker"), {}).get("spec", {}).get("replicas", 0),
                  f"{name} names {pod}, which the StatefulSet does not have")

secrets = set()
for d in docs:
    text = yaml.safe_dump(d)
    secrets.update(re.findall(r"secretName: (\S+)", text))
    secrets.update(re.findall(r"name: (\S+)\n\s*key:", text))
operations = (root / "docs/operations.md").read_text()
for secret in sorted(secrets):
    check(secret in operations, f"Secret {secret} is not in docs/operations.md")
check(secrets >= {"gpubridge-broker-keys", "gpubridge-worker-keys", "gpubridge-redis"}, f"Secrets: {secrets}")

for f in failures:
    print("k8s_check: " + f, file=sys.stderr)
print(f"k8s_check: {len(docs)} objects, {len(failures)} problems")
sys.exit(1 if failures else 0)
