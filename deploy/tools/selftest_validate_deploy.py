#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Prove that validate_deploy.py catches mistakes.

Each case copies deploy/ into a temporary repository (everything else is
symlinked), breaks one thing, runs the validator on the copy and requires
it to fail with the expected message. The real tree is never modified. A
clean copy must pass first.

    scripts/validate-deploy.sh --self-test
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import validate_deploy  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]

# (description, file under deploy/, old text, new text, expected in output)
CASES = [
    ("misspelt field in a DaemonSet", "k8s/agent-daemonset.yaml",
     "terminationGracePeriodSeconds: 60", "terminationGracePeriodSecond: 60",
     "terminationGracePeriodSecond"),
    ("wrong type (string port)", "k8s/agent-daemonset.yaml",
     "containerPort: 9100", 'containerPort: "9100"', "is not of type 'integer'"),
    ("unknown apiVersion", "k8s/function-classify.yaml",
     "apiVersion: apps/v1", "apiVersion: app/v1", "no schema for apiVersion 'app/v1'"),
    ("misspelt Profile field", "k8s/openfaas-profile.yaml",
     "runtimeClassName: kata-fc", "runtimeClass: kata-fc", "'runtimeClass' was unexpected"),
    ("misspelt field inside a Profile's core type", "k8s/openfaas-profile.yaml",
     "operator: Exists", "operater: Exists", "'operater' was unexpected"),
    ("Profile names a missing RuntimeClass", "k8s/openfaas-profile.yaml",
     "runtimeClassName: kata-fc", "runtimeClassName: kata-qemu", "'kata-qemu' is not a RuntimeClass"),
    ("duplicate YAML key", "k8s/agent-service.yaml",
     "  clusterIP: None\n", "  clusterIP: None\n  clusterIP: None\n", "duplicate key 'clusterIP'"),
    ("Service targetPort with no container port", "k8s/agent-service.yaml",
     "targetPort: metrics", "targetPort: metric", "targetPort 'metric'"),
    ("probe on an undeclared port", "k8s/function-classify.yaml",
     "path: /_/ready\n              port: http", "path: /_/ready\n              port: web", "port 'web'"),
    ("agent socket not mounted", "k8s/function-classify.yaml",
     "value: unix:///run/vaccel/agent.sock", "value: unix:///var/run/vaccel/agent.sock",
     "not under any volumeMount"),
    ("unpinned image", "k8s/agent-daemonset.yaml",
     "image: vaccel-rs/vaccel-agent:0.1.0\n          imagePullPolicy: IfNotPresent\n          args",
     "image: vaccel-rs/vaccel-agent:latest\n          imagePullPolicy: IfNotPresent\n          args",
     "must be pinned"),
    ("namespace nobody creates", "k8s/agent-service.yaml",
     "namespace: vaccel-system", "namespace: vaccel", "namespace 'vaccel' is not created"),
    ("kustomization lists a missing file", "k8s/kustomization.yaml",
     "- agent-service.yaml", "- agent-services.yaml", "'agent-services.yaml' does not exist"),
    ("misspelt kustomization field", "k8s/kustomization.yaml",
     "resources:", "resource:", "'resources' is a required property"),
    ("unquoted number in stack.yml environment", "openfaas/stack.yml",
     'max_inflight: "8"', "max_inflight: 8", "values must be strings"),
    ("stack.yml names a missing Profile", "openfaas/stack.yml",
     "com.openfaas.profile: vaccel-kata", "com.openfaas.profile: vaccel-katta", "'vaccel-katta' is not a Profile"),
    ("misspelt stack.yml key", "openfaas/stack.yml",
     "    environment:\n      mode: inproc\n      fprocess: classify",
     "    enviroment:\n      mode: inproc\n      fprocess: classify", "unknown keys ['enviroment']"),
    ("unknown watchdog mode", "openfaas/stack.yml",
     "mode: serializing", "mode: serialising", "environment.mode must be one of"),
    ("Unix socket address in stack.yml", "openfaas/stack.yml",
     "VACCEL_RPC_ADDRESS: vsock://2:2048", "VACCEL_RPC_ADDRESS: unix:///run/vaccel/agent.sock",
     "cannot mount one"),
    ("bad scale type", "openfaas/stack.yml",
     "com.openfaas.scale.type: rps", "com.openfaas.scale.type: qps", "scale.type must be one of"),
    ("unpinned base image", "docker/function.Dockerfile",
     "FROM debian:${DEBIAN_RELEASE}-slim AS runtime", "FROM debian AS runtime", "must be pinned"),
    ("COPY of a file that does not exist", "docker/agent.Dockerfile",
     "COPY --chmod=0755 deploy/docker/hvsock-attach.sh", "COPY --chmod=0755 deploy/docker/hvsock-attach",
     "does not exist in the repository"),
    ("COPY --from an unknown stage", "docker/agent.Dockerfile",
     "COPY --from=models /models", "COPY --from=model /models", "not an earlier stage"),
    ("no ENTRYPOINT", "docker/function-c.Dockerfile",
     'ENTRYPOINT ["vaccel", "watchdog"]', "", "no ENTRYPOINT"),
    ("running as root", "docker/function.Dockerfile",
     "USER ${APP_UID}", "USER root", "non-root USER"),
    ("shell syntax error", "docker/hvsock-attach.sh",
     "\ndone\n", "\n", "bash -n"),
]


def make_repo(tmp: pathlib.Path) -> pathlib.Path:
    root = tmp / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name in ("deploy", "target", ".git"):
            continue
        (root / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "deploy", root / "deploy", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def run(root: pathlib.Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            rc = validate_deploy.main(["--root", str(root)])
        except SystemExit as e:  # usage errors
            rc = e.code if isinstance(e.code, int) else 2
    return rc, out.getvalue()


def main() -> int:
    failures = 0
    with tempfile.TemporaryDirectory(prefix="vaccel-deploy-selftest-") as tmp:
        root = make_repo(pathlib.Path(tmp))
        rc, out = run(root)
        if rc != 0:
            print(out)
            print("self-test: the unmodified copy does not validate; fix that first")
            return 1
        print("self-test: unmodified copy validates")
        for desc, rel, old, new, expected in CASES:
            path = root / "deploy" / rel
            original = path.read_text(encoding="utf-8")
            if old not in original:
                print(f"  FAIL  {desc}: {rel} no longer contains {old!r} (update the case)")
                failures += 1
                continue
            path.write_text(original.replace(old, new, 1), encoding="utf-8")
            try:
                rc, out = run(root)
            finally:
                path.write_text(original, encoding="utf-8")
            errors = [ln for ln in out.splitlines() if re.match(r"^\s+FAIL\s", ln)]
            if rc == 1 and any(expected in ln for ln in errors):
                print(f"  ok    caught: {desc}")
            else:
                failures += 1
                print(f"  FAIL  not caught as expected: {desc} (exit {rc}, wanted {expected!r})")
                for ln in errors or out.splitlines()[-5:]:
                    print(f"        {ln.strip()}")
    print(f"self-test: {'FAILED' if failures else 'OK'} -- {len(CASES) - failures} of {len(CASES)} broken trees rejected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
