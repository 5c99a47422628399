"""Model preparation steps used by ``scripts/setup_models.py``.

Each model family lives in its own module (``classify``, ``faces``, ...) and
exposes::

    prepare(models_dir: pathlib.Path, python: str) -> list[dict]

``python`` is the interpreter of the private environment that holds the
family's pip packages (see ``common.pip_install``); ``prepare`` installs what
it needs, writes its files under ``models_dir`` and returns one manifest entry
per produced file (see ``common.manifest_entry``).

Modules imported by the driver itself (``common`` and the family modules) must
only use the Python standard library; heavy lifting (numpy, onnx, ...) goes in
separate modules that are run with the private interpreter through
``common.run_module``.
"""
