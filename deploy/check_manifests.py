#!/usr/bin/env python3
"""Validates the manifests under deploy/ offline; deploy/check.sh runs it in
its venv (jsonschema, kubernetes-validate, PyYAML):

    python deploy/check_manifests.py --kubernetes-versions 1.34.0 1.37.0

deploy/kubernetes: every YAML document, core and optional/, and the secret
example.
  built-in kinds  kubernetes-validate in strict mode (unknown fields are
                  errors) against each Kubernetes version given. Called
                  through its Python API: its command line only warns, and
                  exits 0, for a kind it has no schema for, which would let a
                  misspelt apiVersion pass.
  CRD kinds       Gateway, HTTPRoute (Gateway API), ScaledObject,
                  TriggerAuthentication (KEDA): the upstream CRDs'
                  openAPIV3Schema vendored in deploy/schemas/ (README.md
                  there says from where), read as the API server reads a
                  structural schema: defaults applied first; a field the
                  schema does not list is an error (the server would prune
                  it silently); types, enums, patterns, lengths, ranges,
                  required fields, int32/int64/ip formats and
                  x-kubernetes-list-type uniqueness checked. metadata is
                  checked like any object's (ObjectMeta, strict, through
                  kubernetes-validate). Not evaluated: the CRDs' CEL rules
                  (x-kubernetes-validations); `kubectl apply --dry-run=server`
                  against a cluster with the CRDs installed runs those.
  KEDA's Kafka    trigger metadata is a free string map in the CRD; its keys
                  and values are checked against the Kafka scaler's own
                  parameter list (vendored from KEDA's source), and the
                  TriggerAuthentication's parameters against the ones it
                  reads from auth. KEDA ignores a key it does not know.
  consistency     each kustomization lists existing files and every
                  manifest belongs to one (secret.example.yaml aside);
                  referenced objects, keys and named ports exist; one
                  image; the hardening the pods must keep; the shutdown
                  arithmetic (terminationGracePeriodSeconds > drain + grace
                  + 10s); gateway timeouts above Errand's request timeout;
                  KEDA's Kafka trigger matches errand-config.
  kustomize       `kubectl kustomize` on every kustomization when kubectl is
                  installed (offline), otherwise reported skipped.

deploy/azure-container-apps: each file parses as YAML as written; with its
${NAME} placeholders filled by dummies it must match the Microsoft.App
containerApps / jobs resource schema (API 2025-07-01, vendored from
azure-rest-api-specs) with unknown and read-only properties refused; the
limits the API states only in prose (probe ranges, names, one value source
per secret and variable, scale rules); Kafka scale rules as above;
secretRefs resolve; CPU/memory is a Consumption combination; every
placeholder is exported in README.md, and no other `$` is present (envsubst
would blank it).
"""

import argparse
import copy
import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "deploy/schemas"
KDIR = ROOT / "deploy/kubernetes"
ADIR = ROOT / "deploy/azure-container-apps"

# Vendored CRD schemas (deploy/schemas/refresh.py writes them).
CRD_FILES = [
    "gateway-api/gateway.networking.k8s.io_v1_Gateway.json",
    "gateway-api/gateway.networking.k8s.io_v1_HTTPRoute.json",
    "keda/keda.sh_v1alpha1_ScaledObject.json",
    "keda/keda.sh_v1alpha1_TriggerAuthentication.json",
]
KAFKA_PARAMETERS = "keda/kafka-scaler-parameters.json"
AZURE_SCHEMA = "azure-container-apps/Microsoft.App-2025-07-01.json"
# Which resource each Container Apps file is.
AZURE_FILES = {"api.yaml": "Microsoft.App/containerApps", "worker.yaml": "Microsoft.App/containerApps",
               "migrate.yaml": "Microsoft.App/jobs"}

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Report:
    def __init__(self):
        self.problems = 0

    def fail(self, where, message):
        self.problems += 1
        print(f"FAIL {where}: {message}")

    def ok(self, where, how):
        print(f"ok   {where} ({how})")


def dotted(path):
    """['spec', 'rules', 0, 'timeouts'] -> 'spec.rules[0].timeouts'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "(document)"


# --- schema semantics ---------------------------------------------------------
#
# The vendored files are upstream's schemas minus prose. What each platform
# does beyond plain JSON Schema is added here, at load time.

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("int32")
def _int32(value):
    return not isinstance(value, int) or -2**31 <= value < 2**31


@FORMATS.checks("int64")
def _int64(value):
    return not isinstance(value, int) or -2**63 <= value < 2**63


@FORMATS.checks("ipv4", raises=ValueError)
def _ipv4(value):
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


@FORMATS.checks("ipv6", raises=ValueError)
def _ipv6(value):
    return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))


def _list_type(validator, list_type, instance, schema):
    """x-kubernetes-list-type: the API server refuses duplicate set items and
    duplicate map keys."""
    if not validator.is_type(instance, "array") or list_type not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", [])
    seen = set()
    for index, item in enumerate(instance):
        if list_type == "map":
            if not isinstance(item, dict):
                continue
            identity = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
        else:
            identity = json.dumps(item, sort_keys=True)
        if identity in seen:
            what = ", ".join(f"{k}={item.get(k)!r}" for k in keys) if list_type == "map" else repr(item)
            yield jsonschema.ValidationError(f"item {index} repeats {what}: this list must not (list-type {list_type})")
        seen.add(identity)


def _read_only(validator, read_only, instance, schema):
    """Swagger readOnly: Azure sets the property; a request must not."""
    if read_only:
        yield jsonschema.ValidationError("read-only: Azure sets it, a request must not")


# OpenAPI v3.0 (CRDs) and Swagger 2.0 (Azure) schemas are JSON Schema draft 4
# with extensions.
Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {
    "x-kubernetes-list-type": _list_type,
    "readOnly": _read_only,
})

# Extensions the CRD loader understands. A refresh that brings in another
# (x-kubernetes-embedded-resource, say) stops the check rather than being
# silently ignored.
K8S_EXTENSIONS = {"x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                  "x-kubernetes-validations", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"}


def allow_null(node):
    node = dict(node)
    if "type" in node:
        node["type"] = [node["type"], "null"]
    if "enum" in node:
        node["enum"] = [*node["enum"], None]
    return node


def structural(node, counts):
    """A CRD schema node as the API server applies it, in JSON Schema terms.

    Structural schemas prune every field an object does not list unless it
    says x-kubernetes-preserve-unknown-fields; pruning would hide a misspelt
    field, so here it is an error (additionalProperties: false). Branches of
    anyOf/oneOf/allOf/not carry no type in a structural schema, so only the
    typed node itself is closed."""
    unknown = {k for k in node if k.startswith("x-kubernetes-")} - K8S_EXTENSIONS
    if unknown:
        sys.exit(f"deploy/check_manifests.py does not handle {sorted(unknown)}: teach structural() about it")
    counts["cel"] += len(node.get("x-kubernetes-validations", []))
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            value = {name: structural(child, counts) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            value = structural(value, counts)
        elif key in ("allOf", "anyOf", "oneOf"):
            value = [structural(child, counts) for child in value]
        out[key] = value
    if (out.get("type") == "object" and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return allow_null(out) if out.get("nullable") else out


def apply_defaults(schema, instance):
    """The API server defaults a custom resource before validating it (a
    required field may be satisfied by a default)."""
    if isinstance(instance, dict):
        for name, child in schema.get("properties", {}).items():
            if name not in instance and "default" in child:
                instance[name] = copy.deepcopy(child["default"])
            if name in instance:
                apply_defaults(child, instance[name])
        if isinstance(schema.get("additionalProperties"), dict):
            for value in instance.values():
                apply_defaults(schema["additionalProperties"], value)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            apply_defaults(schema["items"], item)


class CustomResourceKind:
    def __init__(self, path):
        vendored = json.loads(path.read_text())
        self.api_version, self.kind = vendored["apiVersion"], vendored["kind"]
        self.label = f"{self.kind} {self.api_version.split('/')[-1]} ({vendored['source']['repo']} " \
                     f"{vendored['source']['ref']})"
        self.raw = vendored["openAPIV3Schema"]
        self.counts = {"cel": 0}
        schema = structural(self.raw, self.counts)
        schema["properties"] = dict(schema["properties"],
                                    apiVersion={"enum": [self.api_version]}, kind={"enum": [self.kind]},
                                    # Checked as ObjectMeta, as for every kind.
                                    metadata={"type": "object"})
        self.validator = Validator(schema, format_checker=FORMATS)

    def errors(self, doc):
        doc = copy.deepcopy(doc)
        apply_defaults(self.raw, doc)
        return schema_errors(self.validator, doc, f"the {self.label} schema has no such field "
                                                  "(the API server would drop it)")


def swagger_schema(definitions, key):
    """One Swagger definition as a self-contained JSON Schema.

    $refs are inlined (siblings such as readOnly kept), allOf inheritance is
    merged into the object (so that closing it sees the inherited
    properties), x-nullable honoured. Objects that list properties are
    closed: the API accepts nothing else, and what it does not know does not
    take effect. An object without properties (JobScaleRule.metadata) stays
    free-form. Extensible enums (x-ms-enum modelAsString) are taken as the
    listed values: Azure documents no others."""

    def inline(node, stack):
        node = dict(node)
        if "$ref" in node:
            target = node.pop("$ref").removeprefix("#/definitions/")
            if target in stack:
                sys.exit(f"{AZURE_SCHEMA}: recursive definition {target}")
            node = inline(definitions[target], stack | {target}) | node
        parents = [inline(part, stack) for part in node.pop("allOf", [])]
        if parents:
            node["properties"] = {k: v for p in parents for k, v in p.get("properties", {}).items()} \
                | node.get("properties", {})
            node["required"] = [r for p in [*parents, node] for r in p.get("required", [])]
        if "properties" in node:
            node["properties"] = {name: inline(child, stack) for name, child in node["properties"].items()}
            node.setdefault("additionalProperties", False)
        for child in ("items", "additionalProperties"):
            if isinstance(node.get(child), dict):
                node[child] = inline(node[child], stack)
        node.pop("x-ms-enum", None)
        return allow_null(node) if node.pop("x-nullable", False) else node

    return inline(definitions[key], {key})


def schema_errors(validator, doc, unknown_field):
    """(path, message) per schema error, an unknown field reported by its own
    path rather than as its parent's 'Additional properties' message."""
    out = []
    for error in validator.iter_errors(doc):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and error.validator_value is False:
            known = set(error.schema.get("properties", {}))
            out += [(dotted(path + [name]), f"unknown field: {unknown_field}")
                    for name in error.instance if name not in known]
        elif error.validator in ("anyOf", "oneOf") and error.context:
            best = jsonschema.exceptions.best_match(error.context)
            out.append((dotted(path), f"{error.message}; e.g. {dotted(list(best.absolute_path))}: {best.message}"))
        else:
            out.append((dotted(path), error.message))
    return sorted(out)


# --- KEDA's Kafka scaler --------------------------------------------------------

class KafkaParameters:
    """The parameters KEDA's Kafka scaler reads, from its `keda:` struct tags
    (order: triggerMetadata, resolvedEnv, authParams; optional; default;
    enum); the semantics are those of KEDA's typed_config.go."""

    BOOLS = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}  # strconv.ParseBool

    def __init__(self, path):
        vendored = json.loads(path.read_text())
        self.version = vendored["source"]["ref"]
        self.params = {name: p for p in vendored["parameters"] for name in p["name"]}

    def check(self, metadata, auth_parameters):
        """(key, message) for each problem with a kafka trigger's metadata, and
        with the parameters its authentication supplies."""
        out = []
        for key, value in metadata.items():
            param = self.params.get(key)
            if key.endswith("FromEnv") and "resolvedEnv" in self.params.get(key[:-7], {}).get("order", []):
                continue  # names an environment variable of the scaled container
            if param is None or "triggerMetadata" not in param["order"]:
                hint = " (it is an authentication parameter)" if param else ""
                out.append((key, f"not a parameter of KEDA {self.version}'s kafka scaler{hint}; KEDA ignores it"))
                continue
            out += [(key, m) for m in self.value_problems(param, value)]
        for name in sorted(auth_parameters):
            if "authParams" not in self.params.get(name, {}).get("order", []):
                out.append((name, f"KEDA {self.version}'s kafka scaler reads no authentication parameter {name!r}"))
        for name, param in self.params.items():
            present = (name in metadata or f"{name}FromEnv" in metadata
                       or ("authParams" in param["order"] and name in auth_parameters))
            if not present and not param.get("optional") and "default" not in param:
                out.append((name, "required by the kafka scaler"))
        return out

    def value_problems(self, param, value):
        value = str(value).strip()
        if param.get("enum") and value not in param["enum"]:
            yield f"{value!r} is not one of {param['enum']}"
        elif param["goType"] in ("int64", "int32", "int") and not re.fullmatch(r"[+-]?[0-9]+", value):
            yield f"{value!r} is not an integer"
        elif param["goType"] == "bool" and value not in self.BOOLS:
            yield f"{value!r} is not a boolean"


# --- helpers shared by the checks -----------------------------------------------

def seconds(duration):
    """'1m30s', '500ms', '45' (seconds) -> seconds."""
    parts = re.findall(r"([0-9.]+)(ms|h|m|s)?", str(duration))
    return sum(float(n) * {"ms": 0.001, "h": 3600, "m": 60, "s": 1, "": 1}[u] for n, u in parts)


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def template_ports(deployment):
    return {p.get("name"): p["containerPort"] for c in deployment["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])}


# --- Kubernetes -----------------------------------------------------------------

def load_kubernetes_documents():
    """(where, document) for every manifest document, where naming the file,
    the document's position in it and kind/name."""
    docs = []
    for path in sorted(KDIR.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for number, doc in enumerate(yaml.safe_load_all(path.read_text()), 1):
            if doc:
                meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
                docs.append((f"{path.relative_to(ROOT)} [doc {number}] {doc.get('kind')}/{meta.get('name')}", doc))
    return docs


def check_object_meta(report, where, doc, versions):
    """A custom resource's metadata, as the API server checks any object's."""
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        report.fail(where, "metadata: required, and must be a mapping")
        return
    for version in versions:
        try:
            # A ConfigMap has nothing required but metadata: a stand-in that
            # gets ObjectMeta validated, strictly, for this version.
            kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}, version,
                                         strict=True)
        except kubernetes_validate.ValidationError as e:
            # The path starts at the stand-in's root, so it reads metadata.*.
            report.fail(where, f"{dotted(e.path)}: {e.message} (ObjectMeta, Kubernetes {version})")
            return
    # Rules the API server applies to custom resources' names in code.
    name, namespace = meta.get("name"), meta.get("namespace")
    if not name:
        report.fail(where, "metadata.name: required (kubectl apply needs it)")
    elif len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        report.fail(where, f"metadata.name: {name!r} is not a DNS-1123 subdomain")
    if namespace is not None and (len(namespace) > 63 or not DNS_LABEL.match(namespace)):
        report.fail(where, f"metadata.namespace: {namespace!r} is not a DNS-1123 label")


def check_kubernetes_schemas(report, docs, versions, crds, kafka):
    """Schema validation of every document; returns the `where`s that failed."""
    failed = set()
    for where, doc in docs:
        before = report.problems
        crd = crds.get((doc.get("apiVersion"), doc.get("kind")))
        if crd is not None:
            for path, message in crd.errors(doc):
                report.fail(where, f"{path}: {message}")
            check_object_meta(report, where, doc, versions)
            cel = crd.counts["cel"]
            how = crd.label + (f"; its {cel} CEL rules left to the API server" if cel else "")
        else:
            for version in versions:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    report.fail(where, f"{dotted(e.path)}: {e.message} (Kubernetes {version})")
                except kubernetes_validate.SchemaNotFoundError as e:
                    report.fail(where, f"{e.message}; no vendored CRD schema in deploy/schemas/ either")
            how = "kubernetes-validate --strict"
        if report.problems == before:
            report.ok(where, how)
        else:
            failed.add(where)
    check_kafka_triggers(report, docs, failed, kafka)
    return failed


def check_kafka_triggers(report, docs, failed, kafka):
    auths = {d["metadata"].get("name"): d for w, d in docs
             if d.get("kind") == "TriggerAuthentication" and w not in failed}
    for where, doc in docs:
        if doc.get("kind") != "ScaledObject" or where in failed:
            continue
        for index, trigger in enumerate(doc["spec"]["triggers"]):
            if trigger["type"] != "kafka":
                continue
            auth = auths.get(trigger.get("authenticationRef", {}).get("name"), {}).get("spec", {})
            # Every TriggerAuthentication source lists {parameter: ...} entries.
            supplied = {e["parameter"] for entries in auth.values() if isinstance(entries, list)
                        for e in entries if isinstance(e, dict) and "parameter" in e}
            for key, message in kafka.check(trigger.get("metadata", {}), supplied):
                report.fail(where, f"spec.triggers[{index}].metadata.{key}: {message}")


def check_kubernetes_consistency(report, docs, failed, port_in_image):
    # Lookups see every document; checks run on those whose schema passed
    # (a broken one was reported already, and its shape is not guaranteed).
    objects = {(d["kind"], d["metadata"]["name"]): d for _, d in docs
               if isinstance(d.get("metadata"), dict) and d["metadata"].get("name")}
    valid = {(d["kind"], d["metadata"]["name"]): d for w, d in docs
             if w not in failed and (d.get("kind"), d["metadata"].get("name")) in objects}
    config = objects.get(("ConfigMap", "errand-config"), {}).get("data", {})
    secret = objects.get(("Secret", "errand-secrets"), {}).get("stringData", {})
    workloads = {name: d for (kind, name), d in valid.items() if kind in ("Deployment", "Job")}
    images = set()

    for name, w in workloads.items():
        where = f"{w['kind']}/{name}"
        pod = w["spec"]["template"]["spec"]
        if ("ServiceAccount", pod.get("serviceAccountName")) not in objects:
            report.fail(where, f"service account {pod.get('serviceAccountName')!r} is not among the manifests")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            report.fail(where, "the pod must set runAsNonRoot: true and seccompProfile RuntimeDefault")
        for c in pod["containers"]:
            images.add(c["image"])
            csc = c.get("securityContext", {})
            if (csc.get("allowPrivilegeEscalation") is not False or csc.get("readOnlyRootFilesystem") is not True
                    or "ALL" not in csc.get("capabilities", {}).get("drop", [])):
                report.fail(where, "containers must disallow privilege escalation, mount the root read-only "
                                   "and drop ALL")
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(c.get("resources", {}).get(part, {})):
                    report.fail(where, f"container {c['name']} needs cpu and memory {part}")
            for source in c.get("envFrom", []):
                for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if key in source and (kind, source[key]["name"]) not in objects:
                        report.fail(where, f"envFrom {kind} {source[key]['name']!r} is not among the manifests")
            env = {e["name"]: e for e in c.get("env", [])}
            for e in env.values():
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and (ref["name"] != "errand-secrets" or ref["key"] not in secret):
                    report.fail(where, f"{e['name']} refers to a missing secret key {ref['name']}/{ref['key']}")
            if w["kind"] == "Deployment":
                if env.get("ERRAND_ROLE", {}).get("value") not in ("api", "worker", "all"):
                    report.fail(where, "ERRAND_ROLE must be api, worker or all")
                if not (c.get("readinessProbe") and c.get("livenessProbe")):
                    report.fail(where, "readiness and liveness probes are required")
                needed = (seconds(config.get("ERRAND_DRAIN_DELAY", 0))
                          + seconds(config.get("ERRAND_SHUTDOWN_GRACE", 20)) + 10)
                if pod.get("terminationGracePeriodSeconds", 30) <= needed:
                    report.fail(where, f"terminationGracePeriodSeconds must exceed drain + grace + 10s = {needed:g}s")
                if template_ports(w).get("http") != port_in_image:
                    report.fail(where, f"port http must be {port_in_image}, the port the image listens on")
    if len(images) != 1:
        report.fail("workloads", f"expected one image, found {sorted(images)}")

    deployments = [w for w in objects.values() if w.get("kind") == "Deployment"]
    for (kind, name), d in valid.items():
        where = f"{kind}/{name}"
        spec = d.get("spec", {})
        if kind == "Service":
            targets = [w for w in deployments
                       if matches(spec.get("selector"), w["spec"]["template"]["metadata"]["labels"])]
            if not targets:
                report.fail(where, "its selector matches no Deployment")
            for port in spec.get("ports", []):
                if any(port["targetPort"] not in template_ports(t) for t in targets):
                    report.fail(where, f"target port {port['targetPort']!r} is not a container port of its pods")
        elif kind in ("HorizontalPodAutoscaler", "ScaledObject"):
            target = workloads.get(spec["scaleTargetRef"]["name"])
            if target is None:
                report.fail(where, "its scale target is not among the manifests")
            elif kind == "HorizontalPodAutoscaler" and "replicas" in target["spec"]:
                report.fail(where, "the Deployment it scales must not set replicas (each apply would reset them)")
        elif kind == "PodDisruptionBudget":
            if not any(matches(spec["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
                       for w in deployments):
                report.fail(where, "its selector matches no Deployment")
        elif kind == "HTTPRoute":
            for rule in spec.get("rules", []):
                for ref in rule.get("backendRefs", []):
                    service = objects.get(("Service", ref["name"]))
                    if not service or ref.get("port") not in [p["port"] for p in service["spec"]["ports"]]:
                        report.fail(where, f"backend {ref['name']}:{ref.get('port')} is not a Service port")
                request = rule.get("timeouts", {}).get("request")
                if not request or seconds(request) <= seconds(config.get("ERRAND_REQUEST_TIMEOUT", "30s")):
                    report.fail(where, "timeouts.request must exceed ERRAND_REQUEST_TIMEOUT")
            for parent in spec.get("parentRefs", []):
                gateway = objects.get(("Gateway", parent["name"]))
                listeners = [l.get("name") for l in gateway.get("spec", {}).get("listeners", [])] if gateway else []
                if gateway and parent.get("sectionName") not in listeners:
                    report.fail(where, f"Gateway {parent['name']} has no listener {parent.get('sectionName')!r}")
        elif kind == "Ingress":
            annotations = d["metadata"].get("annotations", {})
            read_timeout = annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")
            if seconds(read_timeout) <= seconds(config.get("ERRAND_REQUEST_TIMEOUT", "30s")):
                report.fail(where, "proxy-read-timeout must exceed ERRAND_REQUEST_TIMEOUT")
            for rule in spec.get("rules", []):
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    service = objects.get(("Service", backend["name"]))
                    if not service or backend["port"].get("name") not in [p.get("name")
                                                                           for p in service["spec"]["ports"]]:
                        report.fail(where, f"backend {backend['name']} port {backend['port']} is not a Service port")
        elif kind == "TriggerAuthentication":
            for ref in spec["secretTargetRef"]:
                if ref["name"] != "errand-secrets" or ref["key"] not in secret:
                    report.fail(where, f"secret key {ref['name']}/{ref['key']} does not exist")
        if kind == "ScaledObject":
            if spec.get("minReplicaCount", 0) < 1:
                report.fail(where, "workers must never scale to zero (reminders, outbox relay)")
            for trigger in spec["triggers"]:
                if ("TriggerAuthentication", trigger.get("authenticationRef", {}).get("name")) not in objects:
                    report.fail(where, "its authenticationRef is not among the manifests")
                meta = trigger["metadata"]
                for key, setting in (("bootstrapServers", "ERRAND_KAFKA_BROKERS"), ("topic", "ERRAND_KAFKA_TOPIC"),
                                     ("consumerGroup", "ERRAND_WEBHOOK_GROUP")):
                    if meta.get(key) != config.get(setting):
                        report.fail(where, f"{key} {meta.get(key)!r} differs from errand-config's {setting}")


def check_kustomizations(report):
    for directory in sorted({p.parent for p in KDIR.rglob("*.yaml")}):
        kustomization = directory / "kustomization.yaml"
        where = str(kustomization.relative_to(ROOT))
        if not kustomization.is_file():
            report.fail(str(directory.relative_to(ROOT)), "manifests without a kustomization.yaml")
            continue
        listed = yaml.safe_load(kustomization.read_text()).get("resources", [])
        for entry in listed:
            if not (directory / entry).is_file():
                report.fail(where, f"lists {entry!r}, which is not a file here")
        for path in directory.glob("*.yaml"):
            if path.name not in ("kustomization.yaml", "secret.example.yaml", *listed):
                report.fail(where, f"does not list {path.name}")
        if shutil.which("kubectl"):
            built = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
            if built.returncode:
                report.fail(where, f"kubectl kustomize: {built.stderr.strip()}")
            else:
                report.ok(where, "kubectl kustomize")
        else:
            print(f"skip {where}: kubectl not installed, kustomize build not run")


# --- Azure Container Apps -------------------------------------------------------

# Secret and container names: what Azure's validation accepts (lower-case
# alphanumerics, '-' and '.').
ACA_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ContainerAppProbe's limits, which the spec states only in its descriptions.
PROBE_LIMITS = {"initialDelaySeconds": (1, 60), "periodSeconds": (1, 240), "timeoutSeconds": (1, 240),
                "failureThreshold": (1, 10), "successThreshold": (1, 10), "terminationGracePeriodSeconds": (0, 3600)}


def one_of(item, keys):
    return sum(k in item for k in keys) == 1


def aca_service_rules(props, kafka):
    """(path, message) for what Container Apps refuses, or what would not
    work, beyond its schema: required values, ranges and formats the spec
    gives in prose, and the Kafka scaler's parameters for kafka rules. Runs on
    a document that matched the schema."""
    out = []
    template, configuration = props.get("template", {}), props.get("configuration", {})
    for i, s in enumerate(configuration.get("secrets", [])):
        at = f"properties.configuration.secrets[{i}]"
        if not ACA_NAME.match(s.get("name", "")) or len(s["name"]) > 253:
            out.append((f"{at}.name", "lower-case alphanumerics, '-' or '.', at most 253 characters"))
        if not one_of(s, ("value", "keyVaultUrl")):
            out.append((at, "needs exactly one of value and keyVaultUrl"))
    for group in ("initContainers", "containers"):
        for i, c in enumerate(template.get(group, [])):
            at = f"properties.template.{group}[{i}]"
            for key in ("name", "image", "resources"):
                if not c.get(key):
                    out.append((f"{at}.{key}", "required"))
            if c.get("name") and not ACA_NAME.match(c["name"]):
                out.append((f"{at}.name", "lower-case alphanumerics, '-' or '.'"))
            resources = c.get("resources", {})
            if resources and not ("cpu" in resources and re.fullmatch(r"[0-9]+(\.[0-9]+)?Gi",
                                                                       str(resources.get("memory")))):
                out.append((f"{at}.resources", "needs cpu and memory, memory in Gi (e.g. 0.5Gi)"))
            for j, e in enumerate(c.get("env", [])):
                if not ENV_NAME.match(e.get("name", "")):
                    out.append((f"{at}.env[{j}].name", f"{e.get('name')!r} is not a variable name"))
                if not one_of(e, ("value", "secretRef")):
                    out.append((f"{at}.env[{j}]", "needs exactly one of value and secretRef"))
            for j, p in enumerate(c.get("probes", [])):
                if "type" not in p:
                    out.append((f"{at}.probes[{j}].type", "required"))
                if not one_of(p, ("httpGet", "tcpSocket")):
                    out.append((f"{at}.probes[{j}]", "needs exactly one of httpGet and tcpSocket"))
                action = p.get("httpGet") or p.get("tcpSocket") or {}
                if not 1 <= action.get("port", 0) <= 65535:
                    out.append((f"{at}.probes[{j}]", "port must be 1-65535"))
                if "httpGet" in p and not str(p["httpGet"].get("path", "/")).startswith("/"):
                    out.append((f"{at}.probes[{j}].httpGet.path", "must start with /"))
                for key, (low, high) in PROBE_LIMITS.items():
                    if key in p and not low <= p[key] <= high:
                        out.append((f"{at}.probes[{j}].{key}", f"{p[key]} is outside {low}-{high}"))
    ingress = configuration.get("ingress")
    if ingress is not None:
        for key in ("targetPort", "exposedPort"):
            if key in ingress and not 1 <= ingress[key] <= 65535:
                out.append((f"properties.configuration.ingress.{key}", "must be 1-65535"))
        if "targetPort" not in ingress:
            out.append(("properties.configuration.ingress.targetPort", "required with ingress"))
    scale = template.get("scale", {})
    if not 0 <= scale.get("minReplicas", 0) <= scale.get("maxReplicas", 10) <= 1000:
        out.append(("properties.template.scale", "needs 0 <= minReplicas <= maxReplicas <= 1000"))
    for i, rule in enumerate(scale.get("rules", [])):
        at = f"properties.template.scale.rules[{i}]"
        kinds = [k for k in ("http", "tcp", "custom", "azureQueue") if k in rule]
        if not rule.get("name") or len(kinds) != 1:
            out.append((at, "needs a name and exactly one of http, tcp, custom and azureQueue"))
            continue
        body = rule[kinds[0]]
        for j, a in enumerate(body.get("auth", [])):
            if not (a.get("secretRef") and a.get("triggerParameter")):
                out.append((f"{at}.{kinds[0]}.auth[{j}]", "needs secretRef and triggerParameter"))
        number = {"http": "concurrentRequests", "tcp": "concurrentConnections"}.get(kinds[0])
        if number and not re.fullmatch(r"[0-9]+", str(body.get("metadata", {}).get(number, ""))):
            out.append((f"{at}.{kinds[0]}.metadata.{number}", "required, a whole number as a string"))
        if kinds[0] == "custom" and body.get("type") == "kafka":
            supplied = {a.get("triggerParameter") for a in body.get("auth", [])}
            out += [(f"{at}.custom.metadata.{key}", message)
                    for key, message in kafka.check(body.get("metadata", {}), supplied)]
    return out


def check_container_apps(report, schemas, kafka, port_in_image):
    readme = (ADIR / "README.md").read_text()
    exported = {name for line in re.findall(r"^export (.+)$", readme, re.M)
                for name in re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", line)}
    for path in sorted(ADIR.glob("*.y*ml")):
        where = str(path.relative_to(ROOT))
        text = path.read_text()
        if path.name not in AZURE_FILES:
            report.fail(where, "unknown file: add it to AZURE_FILES in deploy/check_manifests.py with its "
                               "resource type")
            continue
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as e:
            report.fail(where, f"not YAML: {e}")
            continue
        before = report.problems
        # Comments are rendered too, but what becomes of them does not matter.
        content = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for name in sorted(set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", content)) - exported):
            report.fail(where, f"${{{name}}} is not exported in README.md")
        if re.search(r"\$(?!\{[A-Z_][A-Z0-9_]*\})", content):
            report.fail(where, "a `$` that is not a ${NAME} placeholder: envsubst would blank it")
        doc = yaml.safe_load(re.sub(r"\$\{[A-Z_][A-Z0-9_]*\}", "placeholder", text))
        resource = AZURE_FILES[path.name]
        where_doc = f"{where} [doc 1] {resource}"
        errors = schema_errors(schemas[resource], doc, f"{resource} (API 2025-07-01) has no such property, "
                                                         "so it would not take effect")
        for at, message in errors:
            report.fail(where_doc, f"{at}: {message}")
        if errors:
            continue
        for at, message in aca_service_rules(doc.get("properties", {}), kafka):
            report.fail(where_doc, f"{at}: {message}")
        if report.problems > before:
            continue
        check_container_app_consistency(report, where, doc, port_in_image)
        if report.problems == before:
            report.ok(where, f"{resource} 2025-07-01 schema, service rules, references")


def check_container_app_consistency(report, where, doc, port_in_image):
    props = doc["properties"]
    secrets = {s["name"] for s in props.get("configuration", {}).get("secrets", [])}
    template = props.get("template", {})
    containers = template.get("containers", [])
    refs = [e["secretRef"] for c in containers for e in c.get("env", []) if "secretRef" in e]
    refs += [a["secretRef"] for r in template.get("scale", {}).get("rules", [])
             for body in r.values() if isinstance(body, dict) for a in body.get("auth", [])]
    for ref in sorted(set(refs) - secrets):
        report.fail(where, f"secretRef {ref!r} is not in configuration.secrets")
    cpu = sum(c["resources"]["cpu"] for c in containers)
    memory = sum(float(c["resources"]["memory"][:-2]) for c in containers)
    if cpu not in [n / 4 for n in range(1, 17)] or memory != 2 * cpu:
        report.fail(where, f"{cpu} CPU / {memory}Gi is not a Consumption combination (0.25/0.5Gi ... 4/8Gi)")
    for c in containers:
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if len(env) != len(c.get("env", [])):
            report.fail(where, f"container {c['name']} sets a variable twice")
        probe_types = [p["type"] for p in c.get("probes", [])]
        if len(set(probe_types)) != len(probe_types):
            report.fail(where, "one probe per type")
        for p in c.get("probes", []):
            if p.get("httpGet", p.get("tcpSocket", {})).get("port") != port_in_image:
                report.fail(where, f"{p['type']} probe must use port {port_in_image}")
        if "ERRAND_ROLE" not in env:
            continue
        ingress = props["configuration"].get("ingress")
        rules = template.get("scale", {}).get("rules", [])
        if ingress and ingress.get("targetPort") != port_in_image:
            report.fail(where, f"ingress must target {port_in_image}, the port the image listens on")
        if not ingress and any("http" in r or "tcp" in r for r in rules):
            report.fail(where, "http/tcp scale rules need ingress")
        if env["ERRAND_ROLE"] == "worker" and template.get("scale", {}).get("minReplicas", 0) < 1:
            report.fail(where, "workers must never scale to zero (reminders, outbox relay)")
        if env.get("ERRAND_METRICS_LISTEN", "").endswith(f":{port_in_image}"):
            report.fail(where, "metrics must not share the ingress port")
        needed = (seconds(env.get("ERRAND_DRAIN_DELAY") or 0)
                  + seconds(env.get("ERRAND_SHUTDOWN_GRACE") or "20s") + 10)
        if template.get("terminationGracePeriodSeconds", 30) <= needed:
            report.fail(where, f"terminationGracePeriodSeconds must exceed drain + grace + 10s = {needed:g}s")


# --- main -----------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubernetes-versions", nargs="+", required=True, metavar="VERSION",
                        help="versions kubernetes-validate checks built-in kinds (and ObjectMeta) against")
    args = parser.parse_args()

    report = Report()
    dockerfile = (ROOT / "Dockerfile").read_text()
    port_in_image = int(re.search(r"^EXPOSE\s+(\d+)", dockerfile, re.M).group(1))
    crds = {}
    for name in CRD_FILES:
        kind = CustomResourceKind(SCHEMAS / name)
        crds[(kind.api_version, kind.kind)] = kind
    kafka = KafkaParameters(SCHEMAS / KAFKA_PARAMETERS)
    azure = json.loads((SCHEMAS / AZURE_SCHEMA).read_text())
    azure_schemas = {resource: Validator(swagger_schema(azure["definitions"], key), format_checker=FORMATS)
                     for resource, key in azure["roots"].items()}

    docs = load_kubernetes_documents()
    failed = check_kubernetes_schemas(report, docs, args.kubernetes_versions, crds, kafka)
    check_kubernetes_consistency(report, docs, failed, port_in_image)
    check_kustomizations(report)
    check_container_apps(report, azure_schemas, kafka, port_in_image)

    if report.problems:
        print(f"{report.problems} problem(s)")
        return 1
    print("deploy check: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
