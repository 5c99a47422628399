#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Validate deploy/ offline: Kubernetes manifests against the Kubernetes
# schemas (strict), the OpenFaaS Profile and kustomization against
# deploy/schemas/, stack.yml's structure, the Dockerfiles (structure and
# hadolint). No cluster, registry or container engine is needed.
#
#   scripts/validate-deploy.sh [--self-test] [-v] [--kube-version 1.33 ...]
#
# --self-test then proves the checks bite: it breaks copies of deploy/ in
# a temporary directory (a typo'd field, a wrong type, a missing file, ...)
# and requires each to be rejected. CI runs it.
#
# The checker's Python packages (pinned in deploy/tools/requirements.txt) go
# into a virtualenv cached under target/ (VACCEL_DEPLOY_VENV overrides);
# it is rebuilt when the pins change. Exit status 0 when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

req=deploy/tools/requirements.txt
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
venv=${VACCEL_DEPLOY_VENV:-$target/deploy-validate-venv}
want=$(sha256sum "$req" | cut -d' ' -f1)
stamp=$venv/.requirements.sha256

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	echo "validate-deploy: installing $(grep -c '==' "$req") pinned packages into $venv" >&2
	rm -rf "$venv"
	python3 -m venv "$venv"
	if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2; then
		echo "validate-deploy: pip install -r $req failed (is PyPI reachable?)" >&2
		rm -rf "$venv"
		exit 1
	fi
	echo "$want" >"$stamp"
fi

self_test=0
if [ "${1:-}" = --self-test ]; then
	self_test=1
	shift
fi
export PATH="$venv/bin:$PATH"
"$venv/bin/python" -B deploy/tools/validate_deploy.py "$@"
if [ "$self_test" = 1 ]; then
	"$venv/bin/python" -B deploy/tools/selftest_validate_deploy.py
fi
