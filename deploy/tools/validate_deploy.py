#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Offline validation of deploy/ (run through scripts/validate-deploy.sh).

No cluster, registry or container engine is needed. Checked:

* deploy/k8s/**.yaml: every document against the strict Kubernetes schemas
  bundled in kubernetes-validate (unknown fields and wrong types are errors)
  for each --kube-version; kinds outside the core schemas (the OpenFaaS
  Profile, the Kustomization) against the JSON schemas in deploy/schemas/.
  A kind with no schema at all is an error, so a typo'd apiVersion cannot
  slip through. Then cross-references: namespaces, RuntimeClasses, Services
  and their targets, probe ports, volume mounts, image tags, the agent
  socket mount, resource limits. `kubectl kustomize` renders
  kustomization.yaml when kubectl is installed (skipped, and said so, when
  not).
* deploy/openfaas/stack.yml: faas-cli structure, environment values as
  strings, watchdog settings, scale labels, resources, Profile references.
* deploy/docker/*.Dockerfile: base images pinned to a tag, stages, COPY
  sources, final USER/ENTRYPOINT/HEALTHCHECK; hadolint when installed.
* deploy/**.sh: `bash -n`.

Exit status: 0 when nothing failed, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
from importlib import metadata
import fnmatch
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions, major_minor
from referencing import Registry, Resource

ROOT = DEPLOY = K8S_DIR = SCHEMA_DIR = STACK = DOCKER_DIR = pathlib.Path()


def set_root(root: pathlib.Path) -> None:
    """Validate the deploy/ tree of the repository at `root`."""
    global ROOT, DEPLOY, K8S_DIR, SCHEMA_DIR, STACK, DOCKER_DIR
    ROOT = root.resolve()
    DEPLOY = ROOT / "deploy"
    K8S_DIR = DEPLOY / "k8s"
    SCHEMA_DIR = DEPLOY / "schemas"
    STACK = DEPLOY / "openfaas" / "stack.yml"
    DOCKER_DIR = DEPLOY / "docker"


set_root(pathlib.Path(__file__).resolve().parents[2])
DEFAULT_KUBE_VERSIONS = ("1.30", "1.34")
K8S_DEFS_URI = "https://kubernetes.io/api/_definitions.json"

CLUSTER_SCOPED = {
    "Namespace", "RuntimeClass", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "PriorityClass", "StorageClass",
    "PersistentVolume", "Node", "IngressClass",
}
WELL_KNOWN_NAMESPACES = {"default", "kube-system", "kube-public"}
WORKLOAD_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$|^[0-9]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RPC_SCHEMES = ("unix://", "tcp://", "vsock://", "hybrid-vsock://")


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

class Report:
    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.passed = 0
        self.errors: list[str] = []
        self.skipped: list[str] = []

    def ok(self, what: str) -> None:
        self.passed += 1
        if self.verbose:
            print(f"  ok    {what}")

    def error(self, where: str, msg: str) -> None:
        line = f"{where}: {msg}"
        self.errors.append(line)
        print(f"  FAIL  {line}")

    def skip(self, what: str, why: str) -> None:
        self.skipped.append(f"{what}: {why}")
        print(f"  skip  {what}: {why}")

    def summary(self, what: str, since: int) -> None:
        """One line per validated item, printed unless an error came after `since`."""
        if len(self.errors) == since and not self.verbose:
            print(f"  ok    {what}")

    def section(self, title: str) -> None:
        print(f"== {title}")

    def check(self, cond: bool, where: str, msg: str, what: str | None = None) -> bool:
        if cond:
            self.ok(what or f"{where}: {msg}")
        else:
            self.error(where, msg)
        return cond


def rel(path: pathlib.Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------
# YAML: duplicate keys are errors (kubectl refuses them too)
# --------------------------------------------------------------------------

class StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_docs(text: str, where: str, rep: Report) -> list | None:
    try:
        docs = [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]
    except yaml.YAMLError as e:
        rep.error(where, f"YAML: {e}".replace("\n", " "))
        return None
    return docs


# --------------------------------------------------------------------------
# Kubernetes manifests
# --------------------------------------------------------------------------

def schema_version(desired: str) -> str:
    """The bundled schema version kubernetes-validate uses for `desired`."""
    versions = [v for v in all_versions() if major_minor(v) <= major_minor(desired)]
    if not versions or major_minor(desired) > major_minor(all_versions()[-1]):
        raise SystemExit(
            f"validate_deploy: kubernetes-validate {kubernetes_validate.__version__} has no "
            f"schemas for Kubernetes {desired} (it has {all_versions()[0]} .. {all_versions()[-1]})")
    return versions[-1]


def k8s_schema_file(version: str, name: str):
    import importlib.resources
    return (importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
            / f"v{schema_version(version)}-local-strict" / name)


def k8s_definitions(version: str) -> dict:
    return json.loads(k8s_schema_file(version, "_definitions.json").read_text(encoding="utf-8"))


def core_schema_name(doc: dict) -> str:
    """kubernetes-validate's file name for a kind: <kind>-<group>-<version>.json."""
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", str(doc.get("apiVersion", "")))
    return f"{str(doc.get('kind', '')).lower()}-{api}.json"


def own_schema_path(doc: dict) -> pathlib.Path:
    api = str(doc.get("apiVersion", ""))
    group, _, ver = api.rpartition("/")
    return SCHEMA_DIR / f"{group or 'core'}_{ver}_{str(doc.get('kind', '')).lower()}.json"


class SchemaValidator:
    def __init__(self, versions: list[str]):
        self.versions = versions
        self.registries = {}
        for v in versions:
            defs = k8s_definitions(v)
            self.registries[v] = Registry().with_resource(K8S_DEFS_URI, Resource.from_contents(defs))
        self.own_schemas: dict[pathlib.Path, dict] = {}
        self.core: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}

    def core_validator(self, doc: dict, version: str):
        """The strict bundled schema for doc's kind, or None when it has none."""
        key = (version, core_schema_name(doc))
        if key not in self.core:
            f = k8s_schema_file(version, key[1])
            if not f.is_file():
                self.core[key] = None
            else:
                schema = json.loads(f.read_text(encoding="utf-8"))
                registry = self.registries[version].with_resource(
                    schema.get("$id", key[1]), Resource.from_contents(schema))
                self.core[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self.core[key]

    def validate(self, doc: dict, where: str, rep: Report) -> None:
        meta_name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        name = f"{doc.get('kind')}/{meta_name}" if meta_name else str(doc.get("kind"))
        since = len(rep.errors)
        own = None
        for v in self.versions:
            validator = self.core_validator(doc, v)
            if validator is not None:
                # Every error, not only the first (kubernetes_validate.validate
                # stops at one).
                errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
                for e in errors:
                    path = ".".join(str(p) for p in e.path) or "(document)"
                    rep.error(where, f"{name}: Kubernetes {v} schema: at {path}: {e.message}")
                if not errors:
                    rep.ok(f"{where} {name}: Kubernetes {v} schema (strict)")
                continue
            own = own_schema_path(doc)
            self._validate_own(doc, name, v, where, rep)
        against = f"{rel(own)} + core types" if own else "Kubernetes schema"
        rep.summary(f"{where} {name}: {against} {', '.join(self.versions)} (strict)", since)

    def _validate_own(self, doc: dict, name: str, version: str, where: str, rep: Report) -> None:
        path = own_schema_path(doc)
        if not path.is_file():
            rep.error(where, f"{name}: no schema for apiVersion {doc.get('apiVersion')!r} kind "
                             f"{doc.get('kind')!r}: not a core Kubernetes {version} kind (typo?) "
                             f"and no {rel(path)}")
            return
        if path not in self.own_schemas:
            self.own_schemas[path] = json.loads(path.read_text(encoding="utf-8"))
        schema = self.own_schemas[path]
        validator = jsonschema.Draft202012Validator(schema, registry=self.registries[version])
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
        for e in errors:
            p = ".".join(str(x) for x in e.path) or "(document)"
            rep.error(where, f"{name}: {rel(path)} (Kubernetes {version} types): at {p}: {e.message}")
        if not errors:
            rep.ok(f"{where} {name}: {rel(path)} with Kubernetes {version} types (strict)")


def pod_template(doc: dict):
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return (doc.get("metadata") or {}).get("labels") or {}, spec
    if kind in WORKLOAD_KINDS:
        t = spec.get("template") or {}
        return (t.get("metadata") or {}).get("labels") or {}, t.get("spec") or {}
    return None, None


def image_tagged(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def image_repo_base(image: str) -> str:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


class Inventory:
    """What deploy/ defines, for cross-references."""

    def __init__(self):
        self.docs: list[tuple[str, dict]] = []
        self.namespaces: set[str] = set()
        self.runtime_classes: set[str] = set()
        self.profiles: dict[str, dict] = {}
        self.built_images: dict[str, str] = {}  # OCI title -> Dockerfile


def check_pod(where: str, name: str, labels: dict, pod: dict, inv: Inventory, rep: Report) -> None:
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    used_volumes = set()
    rc = pod.get("runtimeClassName")
    if rc is not None:
        rep.check(rc in inv.runtime_classes, where,
                  f"{name}: runtimeClassName {rc!r} is not a RuntimeClass in deploy/k8s",
                  f"{where} {name}: runtimeClassName {rc} defined")
    all_containers = [("initContainer", c) for c in pod.get("initContainers") or []] + \
                     [("container", c) for c in pod.get("containers") or []]
    for role, c in all_containers:
        cname = f"{name} {role} {c.get('name')}"
        image = c.get("image", "")
        rep.check(image_tagged(image), where, f"{cname}: image {image!r} must be pinned to a tag (not latest) or digest",
                  f"{where} {cname}: image pinned")
        base = image_repo_base(image)
        if base.startswith("vaccel-"):
            rep.check(base in inv.built_images, where,
                      f"{cname}: image {image!r} is built by no Dockerfile in deploy/docker "
                      f"(titles: {', '.join(sorted(inv.built_images)) or 'none'})",
                      f"{where} {cname}: image {base} built by {inv.built_images.get(base)}")
        res = c.get("resources") or {}
        rep.check(bool(res.get("requests")) and "memory" in (res.get("limits") or {}), where,
                  f"{cname}: needs resources.requests and resources.limits.memory",
                  f"{where} {cname}: requests and memory limit set")
        sc = c.get("securityContext") or {}
        rep.check(sc.get("allowPrivilegeEscalation") is False, where,
                  f"{cname}: securityContext.allowPrivilegeEscalation must be false",
                  f"{where} {cname}: no privilege escalation")
        port_names = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            pr = c.get(probe)
            if not pr:
                continue
            for handler in ("httpGet", "tcpSocket", "grpc"):
                port = (pr.get(handler) or {}).get("port")
                if isinstance(port, str):
                    rep.check(port in port_names, where,
                              f"{cname}: {probe} uses port {port!r}, not a named port of the container ({sorted(port_names)})",
                              f"{where} {cname}: {probe} port {port} declared")
        mounts = {}
        for m in c.get("volumeMounts") or []:
            used_volumes.add(m.get("name"))
            mounts[m.get("mountPath")] = m
            rep.check(m.get("name") in volumes, where,
                      f"{cname}: volumeMount {m.get('name')!r} has no volume",
                      f"{where} {cname}: volume {m.get('name')} exists")
        env = {e.get("name"): e.get("value") for e in c.get("env") or []}
        addr = env.get("VACCEL_RPC_ADDRESS")
        if addr is not None:
            rep.check(addr.startswith(RPC_SCHEMES), where,
                      f"{cname}: VACCEL_RPC_ADDRESS {addr!r} must start with one of {RPC_SCHEMES}",
                      f"{where} {cname}: VACCEL_RPC_ADDRESS scheme")
            if addr.startswith("unix://"):
                sock = addr[len("unix://"):]
                ok = any(sock.startswith(mp.rstrip("/") + "/") for mp in mounts)
                rep.check(ok, where,
                          f"{cname}: VACCEL_RPC_ADDRESS {addr} is not under any volumeMount (the agent socket must be mounted)",
                          f"{where} {cname}: agent socket {sock} is mounted")
        if "remote" in (env.get("VACCEL_PLUGINS") or "").split(":"):
            rep.check(addr is not None, where, f"{cname}: VACCEL_PLUGINS=remote without VACCEL_RPC_ADDRESS",
                      f"{where} {cname}: remote plugin has an address")
    for v in volumes:
        rep.check(v in used_volumes, where, f"{name}: volume {v!r} is mounted by no container",
                  f"{where} {name}: volume {v} used")


def validate_k8s(versions: list[str], inv: Inventory, rep: Report, kubectl: str | None) -> None:
    rep.section(f"Kubernetes manifests (deploy/k8s) against Kubernetes {', '.join(versions)}, strict")
    validator = SchemaValidator(versions)
    files = sorted(p for p in K8S_DIR.rglob("*") if p.suffix in (".yaml", ".yml"))
    if not files:
        rep.error("deploy/k8s", "no manifests found")
        return
    kustomizations = []
    for path in files:
        where = rel(path)
        docs = load_docs(path.read_text(encoding="utf-8"), where, rep)
        if docs is None:
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                rep.error(where, "every document needs apiVersion and kind")
                continue
            if doc.get("kind") == "Kustomization":
                kustomizations.append((path, doc))
            elif not (doc.get("metadata") or {}).get("name"):
                rep.error(where, f"{doc.get('kind')}: metadata.name missing")
                continue
            validator.validate(doc, where, rep)
            if doc.get("kind") != "Kustomization":
                inv.docs.append((where, doc))
    for _, doc in inv.docs:
        name = doc["metadata"]["name"]
        if doc["kind"] == "Namespace":
            inv.namespaces.add(name)
        elif doc["kind"] == "RuntimeClass":
            inv.runtime_classes.add(name)
        elif doc["kind"] == "Profile":
            inv.profiles[name] = doc

    rep.section("Kubernetes cross-references")
    workloads = []
    for where, doc in inv.docs:
        kind, meta = doc["kind"], doc["metadata"]
        name = f"{kind}/{meta['name']}"
        if kind not in CLUSTER_SCOPED:
            ns = meta.get("namespace")
            rep.check(bool(ns), where, f"{name}: namespaced kind without metadata.namespace",
                      f"{where} {name}: namespace set")
            if ns:
                rep.check(ns in inv.namespaces or ns in WELL_KNOWN_NAMESPACES, where,
                          f"{name}: namespace {ns!r} is not created by deploy/k8s",
                          f"{where} {name}: namespace {ns} defined")
        labels, pod = pod_template(doc)
        if pod is not None:
            if kind != "Pod":
                sel = ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
                rep.check(bool(sel) and all(labels.get(k) == v for k, v in sel.items()), where,
                          f"{name}: spec.selector.matchLabels {sel} must match the pod template labels {labels}",
                          f"{where} {name}: selector matches template")
            workloads.append((meta.get("namespace"), labels, pod))
            since = len(rep.errors)
            check_pod(where, name, labels, pod, inv, rep)
            rep.summary(f"{where} {name}: images, resources, probes, mounts, agent socket", since)
        if kind == "Profile":
            rc = (doc.get("spec") or {}).get("runtimeClassName")
            if rc:
                rep.check(rc in inv.runtime_classes, where,
                          f"{name}: runtimeClassName {rc!r} is not a RuntimeClass in deploy/k8s",
                          f"{where} {name}: runtimeClassName {rc} defined")
    for where, doc in inv.docs:
        if doc["kind"] != "Service":
            continue
        name = f"Service/{doc['metadata']['name']}"
        spec = doc.get("spec") or {}
        sel = spec.get("selector") or {}
        ns = doc["metadata"].get("namespace")
        matched = [pod for wns, labels, pod in workloads
                   if wns == ns and sel and all(labels.get(k) == v for k, v in sel.items())]
        if not rep.check(bool(matched), where, f"{name}: selector {sel} matches no workload in namespace {ns}",
                         f"{where} {name}: selects a workload"):
            continue
        names = {p.get("name") for pod in matched for c in pod.get("containers") or []
                 for p in c.get("ports") or []}
        for port in spec.get("ports") or []:
            tp = port.get("targetPort")
            if isinstance(tp, str):
                rep.check(tp in names, where, f"{name}: targetPort {tp!r} is no container port of the selected pods",
                          f"{where} {name}: targetPort {tp} exists")

    rep.section("kustomization")
    if not kustomizations:
        rep.error("deploy/k8s", "no kustomization.yaml")
    for path, doc in kustomizations:
        where = rel(path)
        listed = set()
        for r in doc.get("resources") or []:
            target = (path.parent / r).resolve()
            listed.add(target)
            rep.check(target.exists(), where, f"resource {r!r} does not exist", f"{where}: resource {r} exists")
        for p in files:
            if p.resolve() not in listed and p != path:
                print(f"  note  {rel(p)} is not in {where} (applied on its own)")
        if kubectl:
            out = subprocess.run([kubectl, "kustomize", str(path.parent)], capture_output=True, text=True)
            if rep.check(out.returncode == 0, where, f"kubectl kustomize failed: {out.stderr.strip()}",
                         f"{where}: kubectl kustomize renders"):
                docs = load_docs(out.stdout, f"{where} (rendered)", rep) or []
                for d in docs:
                    validator.validate(d, f"{where} (rendered by kubectl kustomize)", rep)
        else:
            rep.skip(f"{where}: kubectl kustomize", "kubectl is not installed (resources were checked to exist; "
                     "the rendered output is not validated)")


# --------------------------------------------------------------------------
# OpenFaaS stack.yml
# --------------------------------------------------------------------------

STACK_TOP_KEYS = {"version", "provider", "functions", "configuration"}
PROVIDER_KEYS = {"name", "gateway", "network"}
FUNCTION_KEYS = {
    "lang", "handler", "image", "fprocess", "environment", "secrets", "skip_build",
    "constraints", "environment_file", "labels", "annotations", "limits", "requests",
    "readonly_root_filesystem", "build_args", "build_options", "platforms", "namespace",
}
WATCHDOG_MODES = {"http", "streaming", "serializing", "inproc"}
SCALE_TYPES = {"capacity", "rps", "cpu"}


def substitute_env(text: str, where: str, rep: Report) -> str:
    """faas-cli expands ${VAR} and ${VAR:-default} in stack files."""
    def repl(m):
        var, default = m.group(1), m.group(3)
        if var in os.environ:
            return os.environ[var]
        if default is None:
            rep.error(where, f"${{{var}}} is unset and has no default (write ${{{var}:-default}})")
            return ""
        return default
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", repl, text)


def validate_stack(inv: Inventory, rep: Report) -> None:
    rep.section(f"OpenFaaS stack ({rel(STACK)})")
    where = rel(STACK)
    if not STACK.is_file():
        rep.error(where, "missing")
        return
    docs = load_docs(substitute_env(STACK.read_text(encoding="utf-8"), where, rep), where, rep)
    if docs is None:
        return
    if not rep.check(len(docs) == 1 and isinstance(docs[0], dict), where, "must be one YAML mapping"):
        return
    stack = docs[0]
    unknown = set(stack) - STACK_TOP_KEYS
    rep.check(not unknown, where, f"unknown top-level keys {sorted(unknown)}", f"{where}: top-level keys known")
    rep.check(str(stack.get("version")) == "1.0", where, f"version must be 1.0, got {stack.get('version')!r}",
              f"{where}: version 1.0")
    prov = stack.get("provider") or {}
    if rep.check(isinstance(prov, dict), where, "provider must be a mapping"):
        unknown = set(prov) - PROVIDER_KEYS
        rep.check(not unknown, where, f"provider: unknown keys {sorted(unknown)}", f"{where}: provider keys known")
        rep.check(prov.get("name") == "openfaas", where, f"provider.name must be openfaas, got {prov.get('name')!r}",
                  f"{where}: provider openfaas")
        gw = prov.get("gateway")
        rep.check(isinstance(gw, str) and re.match(r"^https?://[^/\s]+", gw) is not None, where,
                  f"provider.gateway must be an http(s) URL, got {gw!r}", f"{where}: gateway {gw}")
    functions = stack.get("functions")
    if not rep.check(isinstance(functions, dict) and functions, where, "functions must be a non-empty mapping"):
        return
    for fname, fn in functions.items():
        fw = f"{where} functions.{fname}"
        if not rep.check(isinstance(fn, dict), fw, "must be a mapping"):
            continue
        since = len(rep.errors)
        rep.check(isinstance(fname, str) and DNS_LABEL.match(fname) is not None and len(fname) <= 63, fw,
                  "function names must be DNS-1123 labels (they become Kubernetes names)", f"{fw}: name")
        unknown = set(fn) - FUNCTION_KEYS
        rep.check(not unknown, fw, f"unknown keys {sorted(unknown)} (typo?)", f"{fw}: keys known")
        image = fn.get("image")
        if rep.check(isinstance(image, str) and image, fw, "image is required"):
            rep.check(image_tagged(image), fw, f"image {image!r} must be pinned to a tag (not latest)", f"{fw}: image tagged")
            base = image_repo_base(image)
            if base.startswith("vaccel-"):
                rep.check(base in inv.built_images, fw,
                          f"image {image!r} is built by no Dockerfile in deploy/docker",
                          f"{fw}: image {base} built by {inv.built_images.get(base)}")
        if fn.get("skip_build") is True:
            rep.ok(f"{fw}: skip_build (prebuilt image)")
        else:
            ok = rep.check(bool(fn.get("lang")) and bool(fn.get("handler")), fw,
                           "needs lang and handler (or skip_build: true for a prebuilt image)")
            if ok:
                rep.check((STACK.parent / fn["handler"]).exists(), fw, f"handler {fn['handler']!r} does not exist")
        for key in ("environment", "labels", "annotations"):
            m = fn.get(key)
            if m is None:
                continue
            if not rep.check(isinstance(m, dict), fw, f"{key} must be a mapping"):
                continue
            bad = [k for k, v in m.items() if not isinstance(v, str)]
            rep.check(not bad, fw, f"{key} values must be strings (quote them): {bad}", f"{fw}: {key} values are strings")
            if key == "environment":
                badk = [k for k in m if not isinstance(k, str) or not ENV_NAME.match(k)]
                rep.check(not badk, fw, f"invalid environment variable names {badk}", f"{fw}: env names")
        env = fn.get("environment") or {}
        ann = fn.get("annotations") or {}
        labels = fn.get("labels") or {}
        mode = env.get("mode")
        rep.check(mode in WATCHDOG_MODES, fw, f"environment.mode must be one of {sorted(WATCHDOG_MODES)}, got {mode!r}",
                  f"{fw}: watchdog mode {mode}")
        rep.check(bool(env.get("fprocess") or fn.get("fprocess")), fw, "fprocess is required by the watchdog",
                  f"{fw}: fprocess set")
        for key in ("exec_timeout", "read_timeout", "write_timeout"):
            if key in env:
                rep.check(isinstance(env[key], str) and DURATION.match(env[key]) is not None, fw,
                          f"{key} {env[key]!r} is not a duration (30s, 1m30s, 500ms)", f"{fw}: {key}")
        if "max_inflight" in env:
            rep.check(str(env["max_inflight"]).isdigit(), fw, f"max_inflight {env['max_inflight']!r} is not a count",
                      f"{fw}: max_inflight")
        plugins = str(env.get("VACCEL_PLUGINS", "")).split(":")
        addr = env.get("VACCEL_RPC_ADDRESS")
        if "remote" in plugins:
            rep.check(addr is not None, fw, "VACCEL_PLUGINS=remote without VACCEL_RPC_ADDRESS", f"{fw}: agent address set")
        if addr is not None:
            rep.check(isinstance(addr, str) and addr.startswith(RPC_SCHEMES), fw,
                      f"VACCEL_RPC_ADDRESS {addr!r} must start with one of {RPC_SCHEMES}", f"{fw}: address scheme")
            rep.check(not str(addr).startswith("unix://"), fw,
                      "VACCEL_RPC_ADDRESS is a Unix socket, but stack.yml cannot mount one into the function "
                      "(use vsock:// in a sandbox, or tcp:// with a token)", f"{fw}: address reachable without mounts")
        profiles = [p.strip() for p in str(ann.get("com.openfaas.profile", "")).split(",") if p.strip()]
        for p in profiles:
            rep.check(p in inv.profiles, fw, f"com.openfaas.profile {p!r} is not a Profile in deploy/k8s "
                      f"({sorted(inv.profiles)})", f"{fw}: Profile {p} defined")
        if any((inv.profiles.get(p, {}).get("spec") or {}).get("runtimeClassName") for p in profiles) and addr:
            rep.check(str(addr).startswith(("vsock://", "tcp://")), fw,
                      f"runs in a sandbox (Profile runtimeClassName) but VACCEL_RPC_ADDRESS is {addr!r}: "
                      "use vsock://2:PORT", f"{fw}: sandbox reaches the agent over {str(addr).split(':')[0]}")
        scale = {k[len("com.openfaas.scale."):]: v for k, v in labels.items() if k.startswith("com.openfaas.scale.")}
        for k, v in scale.items():
            if k in ("min", "max", "target", "target-proportion", "zero-duration"):
                pat = r"^[0-9]+$" if k in ("min", "max", "target") else r"^[0-9.]+[a-z]*$"
                rep.check(re.match(pat, str(v)) is not None, fw, f"label com.openfaas.scale.{k}={v!r} is not a number",
                          f"{fw}: scale.{k}")
            elif k == "type":
                rep.check(v in SCALE_TYPES, fw, f"com.openfaas.scale.type must be one of {sorted(SCALE_TYPES)}",
                          f"{fw}: scale.type {v}")
            elif k != "zero":
                rep.error(fw, f"unknown scale label com.openfaas.scale.{k}")
        if str(scale.get("min", "")).isdigit() and str(scale.get("max", "")).isdigit():
            rep.check(int(scale["min"]) <= int(scale["max"]), fw, "com.openfaas.scale.min > max", f"{fw}: scale min <= max")
        for key in ("limits", "requests"):
            r = fn.get(key)
            if r is None:
                continue
            if not rep.check(isinstance(r, dict), fw, f"{key} must be a mapping"):
                continue
            unknown = set(r) - {"memory", "cpu"}
            rep.check(not unknown, fw, f"{key}: only memory and cpu, got {sorted(unknown)}", f"{fw}: {key} keys")
            for k in ("memory", "cpu"):
                if k in r:
                    rep.check(isinstance(r[k], str) and QUANTITY.match(r[k]) is not None, fw,
                              f"{key}.{k} {r[k]!r} is not a Kubernetes quantity string", f"{fw}: {key}.{k}")
        rep.summary(f"{fw}: image, watchdog env, scale labels, resources, profile "
                    f"{ann.get('com.openfaas.profile', '-')}", since)


# --------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------

def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments): continuations joined, comments dropped."""
    out, buf, start = [], [], 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(s.strip() for s in buf)
        buf = []
        word, _, rest = joined.partition(" ")
        out.append((start, word.upper(), rest.strip()))
    return out


def expand_args(s: str, args: dict) -> str:
    def repl(m):
        name = m.group(1) or m.group(3)
        default = m.group(2)
        v = args.get(name)
        return v if v not in (None, "") else (default or "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, s)


def split_flags(rest: str) -> tuple[dict, list[str]]:
    flags, words = {}, []
    if rest.startswith("["):
        return flags, json.loads(rest)
    for w in rest.split():
        if w.startswith("--") and not words:
            k, _, v = w[2:].partition("=")
            flags[k] = v
        else:
            words.append(w)
    return flags, words


def dockerignore_patterns() -> list[str]:
    p = ROOT / ".dockerignore"
    if not p.is_file():
        return []
    return [line.strip() for line in p.read_text().splitlines() if line.strip() and not line.startswith("#")]


def oci_title(instrs) -> str | None:
    for _, ins, rest in instrs:
        if ins == "LABEL":
            m = re.search(r'org\.opencontainers\.image\.title="?([A-Za-z0-9._-]+)"?', rest)
            if m:
                return m.group(1)
    return None


def collect_images(inv: Inventory) -> list[pathlib.Path]:
    files = sorted(DOCKER_DIR.glob("*Dockerfile*"))
    files = [f for f in files if not f.name.endswith(".dockerignore")]
    for f in files:
        title = oci_title(dockerfile_instructions(f.read_text(encoding="utf-8")))
        if title:
            inv.built_images[title] = rel(f)
    return files


def validate_dockerfiles(files: list[pathlib.Path], rep: Report, hadolint: str | None) -> None:
    rep.section("Dockerfiles (deploy/docker)")
    if not files:
        rep.error("deploy/docker", "no Dockerfiles")
        return
    ignore = dockerignore_patterns()
    for f in files:
        where = rel(f)
        since = len(rep.errors)
        instrs = dockerfile_instructions(f.read_text(encoding="utf-8"))
        global_args: dict[str, str] = {}
        stages: list[str | None] = []
        stage_args: dict[str, str] = {}
        final: dict[str, tuple[int, str]] = {}
        rep.check(oci_title(instrs) is not None, where, "no org.opencontainers.image.title label (names the image)",
                  f"{where}: image title {oci_title(instrs)}")
        for line, ins, rest in instrs:
            lw = f"{where}:{line}"
            if ins == "ARG":
                name, _, default = rest.partition("=")
                if not stages:
                    global_args[name.strip()] = default.strip().strip('"')
                else:
                    # A stage ARG without default inherits the global one.
                    stage_args[name.strip()] = default.strip().strip('"') or global_args.get(name.strip(), "")
            elif ins == "FROM":
                flags, words = split_flags(rest)
                image = expand_args(words[0], global_args) if words else ""
                alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
                if image in stages and image is not None:
                    rep.ok(f"{lw}: FROM earlier stage {image}")
                elif image == "scratch":
                    rep.ok(f"{lw}: FROM scratch")
                else:
                    rep.check(image_tagged(image) and "$" not in image, lw,
                              f"FROM {words[0] if words else ''} -> {image!r}: base images must be pinned to a tag "
                              "(ARG defaults count) or digest, not latest", f"{lw}: FROM {image} pinned")
                if alias:
                    rep.check(alias not in stages, lw, f"stage name {alias!r} used twice", f"{lw}: stage {alias}")
                stages.append(alias)
                stage_args = {}
                final = {}
            elif ins in ("COPY", "ADD"):
                flags, words = split_flags(rest)
                if len(words) < 2:
                    rep.error(lw, f"{ins} needs a source and a destination")
                    continue
                sources = words[:-1]
                src_stage = flags.get("from")
                if src_stage is not None:
                    earlier = [s for s in stages[:-1] if s]
                    if src_stage.isdigit():
                        ok = int(src_stage) < len(stages) - 1
                    else:
                        ok = src_stage in earlier or (image_tagged(src_stage) and "$" not in src_stage)
                    rep.check(ok, lw, f"{ins} --from={src_stage}: not an earlier stage ({earlier}) nor a pinned image",
                              f"{lw}: {ins} --from={src_stage} is an earlier stage")
                    continue
                for s in sources:
                    s = expand_args(s, {**global_args, **stage_args})
                    if re.match(r"^https?://", s):
                        rep.error(lw, f"{ins} {s}: remote sources are not allowed (not reproducible)")
                        continue
                    matches = glob.glob(str(ROOT / s.lstrip("/")))
                    if not rep.check(bool(matches), lw, f"{ins} source {s!r} does not exist in the repository "
                                     "(the build context is the repository root)", f"{lw}: {ins} {s} exists"):
                        continue
                    excluded = [p for p in ignore if fnmatch.fnmatch(s.rstrip("/"), p.rstrip("/"))]
                    rep.check(not excluded, lw, f"{ins} source {s!r} is excluded by .dockerignore ({excluded})",
                              f"{lw}: {s} not ignored")
            elif ins in ("USER", "ENTRYPOINT", "HEALTHCHECK", "CMD"):
                final[ins] = (line, rest)
        if not stages:
            rep.error(where, "no FROM")
            continue
        entry = final.get("ENTRYPOINT")
        if rep.check(entry is not None, where, "the final stage has no ENTRYPOINT", f"{where}: ENTRYPOINT present"):
            try:
                ok = isinstance(json.loads(entry[1]), list)
            except ValueError:
                ok = False
            rep.check(ok, f"{where}:{entry[0]}", "ENTRYPOINT must use the exec (JSON array) form, so signals reach the process",
                      f"{where}: ENTRYPOINT exec form")
        user = final.get("USER")
        uid = expand_args(user[1], {**global_args, **stage_args}).split(":")[0] if user else ""
        rep.check(bool(user) and uid not in ("root", "0", ""), where,
                  f"the final stage must switch to a non-root USER (got {uid or 'none'})", f"{where}: USER {uid}")
        hc = final.get("HEALTHCHECK")
        rep.check(hc is not None and not hc[1].upper().startswith("NONE"), where, "the final stage has no HEALTHCHECK",
                  f"{where}: HEALTHCHECK present")
        rep.summary(f"{where}: {len([s for s in stages])} stages, pinned bases, COPY sources, "
                    f"USER {uid}, ENTRYPOINT, HEALTHCHECK", since)
    if hadolint:
        out = subprocess.run([hadolint, "--no-color", *map(str, files)], capture_output=True, text=True)
        if out.returncode == 0:
            rep.ok(f"hadolint: {len(files)} Dockerfiles clean")
            rep.summary(f"hadolint {len(files)} Dockerfiles", len(rep.errors))
        else:
            for line in (out.stdout + out.stderr).strip().splitlines():
                rep.error("hadolint", line.replace(str(ROOT) + "/", ""))
    else:
        rep.skip("hadolint", "not installed for this platform (the wheel ships a Linux x86-64 binary); "
                 "the structural checks above still ran")


def validate_shell(rep: Report) -> None:
    rep.section("shell scripts (deploy/)")
    for f in sorted(DEPLOY.rglob("*.sh")):
        out = subprocess.run(["bash", "-n", str(f)], capture_output=True, text=True)
        rep.check(out.returncode == 0, rel(f), f"bash -n: {out.stderr.strip()}", f"{rel(f)}: bash -n")
        rep.summary(f"{rel(f)}: bash -n", len(rep.errors) if out.returncode == 0 else -1)


# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Validate deploy/ offline.")
    ap.add_argument("--kube-version", action="append", dest="versions",
                    help=f"Kubernetes version to validate against (repeatable; default {' and '.join(DEFAULT_KUBE_VERSIONS)})")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every passing check")
    ap.add_argument("--list-versions", action="store_true", help="print the Kubernetes versions with bundled schemas")
    ap.add_argument("--root", type=pathlib.Path, help="repository to validate (default: this one)")
    args = ap.parse_args(argv)
    if args.root:
        set_root(args.root)
    if args.list_versions:
        print(" ".join(all_versions()))
        return 0
    versions = args.versions or list(DEFAULT_KUBE_VERSIONS)
    for v in versions:
        schema_version(v)
    rep = Report(args.verbose)
    kubectl = shutil.which("kubectl")
    hadolint = shutil.which("hadolint") or (
        str(pathlib.Path(sys.executable).parent / "hadolint")
        if (pathlib.Path(sys.executable).parent / "hadolint").exists() else None)
    print(f"validate-deploy: kubernetes-validate {kubernetes_validate.__version__}, jsonschema "
          f"{metadata.version('jsonschema')}, PyYAML {yaml.__version__}; "
          f"Kubernetes schemas {', '.join(f'{v} (bundled v{schema_version(v)})' for v in versions)}")
    inv = Inventory()
    docker_files = collect_images(inv)
    validate_k8s(versions, inv, rep, kubectl)
    validate_stack(inv, rep)
    validate_dockerfiles(docker_files, rep, hadolint)
    validate_shell(rep)
    print(f"validate-deploy: {'FAILED' if rep.errors else 'OK'} -- {rep.passed} checks ok, "
          f"{len(rep.errors)} errors, {len(rep.skipped)} skipped")
    for s in rep.skipped:
        print(f"  (skipped) {s}")
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
