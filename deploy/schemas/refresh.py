#!/usr/bin/env python3
"""Regenerates the vendored schemas in deploy/schemas/ from upstream git repositories.

    python3 deploy/schemas/refresh.py \
        [--gateway-api GIT_DIR] [--keda GIT_DIR] [--azure-specs GIT_DIR]

Each GIT_DIR is a clone (bare, shallow or partial is fine) of the repository
README.md names; files are read with `git show REF:PATH`, so the work tree's
state does not matter. Only the sources whose directory is given are
regenerated. To move to a newer upstream version, change its REF below, run
this, review the diff and run `bash deploy/check.sh`.

What is kept: the upstream schema of each kind the manifests use, for the
one API version they use. What is dropped: prose (descriptions, examples),
which is most of the upstream bytes and plays no part in validation. Nothing
is added or tightened here: deploy/check_manifests.py applies the API
server's (or ARM's) semantics when it loads these files.

Needs PyYAML (the deploy-check venv has it).
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import yaml

HERE = Path(__file__).resolve().parent

# (kind, apiVersion's version, upstream path, output file)
GATEWAY_API = {
    "repo": "kubernetes-sigs/gateway-api",
    "ref": "v1.6.1",
    "crds": [
        ("Gateway", "v1", "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
         "gateway-api/gateway.networking.k8s.io_v1_Gateway.json"),
        ("HTTPRoute", "v1", "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
         "gateway-api/gateway.networking.k8s.io_v1_HTTPRoute.json"),
    ],
}
KEDA = {
    "repo": "kedacore/keda",
    "ref": "v2.20.2",
    "crds": [
        ("ScaledObject", "v1alpha1", "config/crd/bases/keda.sh_scaledobjects.yaml",
         "keda/keda.sh_v1alpha1_ScaledObject.json"),
        ("TriggerAuthentication", "v1alpha1", "config/crd/bases/keda.sh_triggerauthentications.yaml",
         "keda/keda.sh_v1alpha1_TriggerAuthentication.json"),
    ],
    # The Kafka scaler's parameters are not in any CRD (trigger metadata is a
    # string map there): they are the `keda:"..."` tags of this Go struct.
    "kafka": ("pkg/scalers/kafka_scaler.go", "kafkaMetadata", "keda/kafka-scaler-parameters.json"),
}
AZURE = {
    "repo": "Azure/azure-rest-api-specs",
    "ref": "main",
    "dir": "specification/app/resource-manager/Microsoft.App/ContainerApps/stable/2025-07-01",
    # resource type -> (file in dir, definition)
    "roots": {
        "Microsoft.App/containerApps": ("ContainerApps.json", "ContainerApp"),
        "Microsoft.App/jobs": ("Jobs.json", "Job"),
    },
    "output": "azure-container-apps/Microsoft.App-2025-07-01.json",
}

# Swagger keywords that take part in validation; everything else (prose,
# SDK-generation hints such as x-ms-client-flatten) is dropped.
SWAGGER_KEEP = ("$ref", "allOf", "type", "format", "enum", "x-ms-enum", "properties", "additionalProperties",
                "required", "items", "readOnly", "x-nullable", "minimum", "maximum", "exclusiveMinimum",
                "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
                "default")


def git_show(git_dir, ref, path):
    return subprocess.run(["git", "-C", str(git_dir), "show", f"{ref}:{path}"],
                          capture_output=True, text=True, check=True).stdout


def git_commit(git_dir, ref):
    return subprocess.run(["git", "-C", str(git_dir), "rev-parse", f"{ref}^{{commit}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


def write(relative, document):
    path = HERE / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size} bytes)")


def subschemas(node):
    """(container key, child key, child) for each schema nested in a schema node."""
    for key in ("properties", "patternProperties"):
        for name, child in (node.get(key) or {}).items():
            yield key, name, child
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            yield None, key, node[key]
    for key in ("allOf", "anyOf", "oneOf"):
        for index, child in enumerate(node.get(key) or []):
            yield key, index, child


def strip_descriptions(node):
    """A copy of an OpenAPI v3 (CRD) schema without `description`s.

    Walks the schema structure, so a *property* called `description` stays."""
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in ("properties", "patternProperties"):
            value = {name: strip_descriptions(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            value = strip_descriptions(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            value = [strip_descriptions(child) for child in value]
        out[key] = value
    return out


def refresh_crds(source, git_dir):
    commit = git_commit(git_dir, source["ref"])
    for kind, version, path, output in source["crds"]:
        crd = yaml.safe_load(git_show(git_dir, source["ref"], path))
        if crd["spec"]["names"]["kind"] != kind:
            sys.exit(f"{path}: kind {crd['spec']['names']['kind']}, expected {kind}")
        [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
        write(output, {
            "source": {"repo": source["repo"], "ref": source["ref"], "commit": commit, "path": path,
                       "pointer": f"spec.versions[name={version}].schema.openAPIV3Schema"},
            "note": "Generated by deploy/schemas/refresh.py (descriptions removed); do not edit.",
            "apiVersion": f"{crd['spec']['group']}/{version}",
            "kind": kind,
            "served": served.get("served", False),
            "deprecated": served.get("deprecated", False),
            "openAPIV3Schema": strip_descriptions(served["schema"]["openAPIV3Schema"]),
        })


def refresh_kafka(source, git_dir):
    path, struct, output = source["kafka"]
    text = git_show(git_dir, source["ref"], path)
    body = re.search(rf"^type {struct} struct {{\n(.*?)^}}", text, re.M | re.S)
    if not body:
        sys.exit(f"{path}: no struct {struct}")
    parameters = []
    for field, go_type, tag in re.findall(r"^\s*(\w+)\s+(\S+)\s+`keda:\"([^\"]*)\"`", body.group(1), re.M):
        parameter = {"field": field, "goType": go_type}
        for part in tag.split(","):
            key, _, value = part.strip().partition("=")
            if key in ("name", "order", "enum"):
                parameter[key] = value.split(";")
            elif key == "optional":
                parameter[key] = value in ("", "true")
            else:
                parameter[key] = value
        parameters.append(parameter)
    write(output, {
        "source": {"repo": source["repo"], "ref": source["ref"], "commit": git_commit(git_dir, source["ref"]),
                   "path": path, "pointer": f"struct {struct}, `keda:` field tags"},
        "note": "Generated by deploy/schemas/refresh.py; do not edit. Tag syntax: "
                "pkg/scalers/scalersconfig/typed_config.go.",
        "trigger": "kafka",
        "parameters": parameters,
    })


def definition_key(path):
    """A flat, readable name for the file a definition comes from:
    ContainerApps, CommonDefinitions, Jobs; types.v5, managedidentity.v3."""
    p = PurePosixPath(path)
    return f"{p.stem}.{p.parent.name}" if "common-types" in p.parts else p.stem


def refresh_azure(source, git_dir):
    ref = source["ref"]
    files, definitions = {}, {}

    def load(path):
        if path not in files:
            files[path] = json.loads(git_show(git_dir, ref, path))
        return files[path]

    def resolve(ref_text, current):
        target, _, pointer = ref_text.partition("#")
        path = str(PurePosixPath(current).parent / target) if target else current
        path = str(PurePosixPath(*_normalise(PurePosixPath(path).parts)))
        name = pointer.removeprefix("/definitions/")
        key = f"{definition_key(path)}.{name}"
        if key not in definitions:
            definitions[key] = None  # placeholder: breaks cycles
            definitions[key] = convert(load(path)["definitions"][name], path)
        return key

    def convert(node, current):
        out = {}
        for key in SWAGGER_KEEP:
            if key not in node:
                continue
            value = node[key]
            if key == "$ref":
                value = f"#/definitions/{resolve(value, current)}"
            elif key == "properties":
                value = {name: convert(child, current) for name, child in value.items()}
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                value = convert(value, current)
            elif key == "allOf":
                value = [convert(child, current) for child in value]
            elif key == "x-ms-enum":
                value = {k: value[k] for k in ("name", "modelAsString") if k in value}
            out[key] = value
        # Keep upstream key order.
        return {k: out[k] for k in node if k in out}

    roots = {}
    for resource_type, (file, name) in source["roots"].items():
        roots[resource_type] = resolve(f"#/definitions/{name}", f"{source['dir']}/{file}")
    write(source["output"], {
        "source": {"repo": source["repo"], "ref": ref, "commit": git_commit(git_dir, ref),
                   "files": sorted(files)},
        "note": "Generated by deploy/schemas/refresh.py: the Swagger definitions reachable from the roots, "
                "$refs made local, prose removed; do not edit.",
        "roots": roots,
        "definitions": dict(sorted(definitions.items())),
    })


def _normalise(parts):
    out = []
    for part in parts:
        if part == "..":
            out.pop()
        elif part != ".":
            out.append(part)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway-api", type=Path, metavar="GIT_DIR")
    parser.add_argument("--keda", type=Path, metavar="GIT_DIR")
    parser.add_argument("--azure-specs", type=Path, metavar="GIT_DIR")
    parser.add_argument("--azure-ref", default=AZURE["ref"], help="commit or branch (default %(default)s)")
    args = parser.parse_args()
    if not (args.gateway_api or args.keda or args.azure_specs):
        parser.error("give at least one upstream repository")
    if args.gateway_api:
        refresh_crds(GATEWAY_API, args.gateway_api)
    if args.keda:
        refresh_crds(KEDA, args.keda)
        refresh_kafka(KEDA, args.keda)
    if args.azure_specs:
        refresh_azure(AZURE | {"ref": args.azure_ref}, args.azure_specs)


if __name__ == "__main__":
    main()
