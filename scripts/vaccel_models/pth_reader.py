"""Read PyTorch checkpoints (``torch.save`` output) without torch.

Needs numpy, so it is only imported by converters that run under the private
interpreter. Two on-disk layouts exist:

* the zip layout (torch >= 1.6): ``<name>/data.pkl`` holds the pickled object,
  each tensor storage is a separate entry ``<name>/data/<key>``;
* the legacy layout (older torch): a stream of pickles -- magic number,
  protocol version, system info, the object, the list of storage keys --
  followed by each storage as an int64 element count and its raw bytes.

In both, tensors are pickled as calls to ``torch._utils._rebuild_tensor_v2``
whose first argument is a storage referenced through a persistent id
``('storage', StorageType, key, location, numel[, view_metadata])``. The
unpickler below maps those onto numpy arrays and refuses every other global,
so loading a checkpoint never runs code from it.
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from typing import Any, Dict, Optional

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage class name -> numpy dtype ("bfloat16" is converted by hand).
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
    "UntypedStorage": np.dtype("u1"),
}


class CheckpointError(ValueError):
    pass


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else self.dtype.itemsize


class _Storage:
    """A flat typed buffer; ``array`` is filled in once the bytes are read."""

    def __init__(self, key: str, stype: _StorageType, numel: int):
        self.key = key
        self.stype = stype
        self.numel = numel
        self.array: Optional[np.ndarray] = None

    def set_bytes(self, raw: bytes, big_endian: bool = False) -> None:
        if self.stype.dtype == "bfloat16":
            half = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2")
            arr = (half.astype(np.uint32) << 16).view(np.float32)
        else:
            dt = self.stype.dtype
            if big_endian and dt.itemsize > 1:
                dt = dt.newbyteorder(">")
            arr = np.frombuffer(raw, dtype=dt)
            arr = arr.astype(arr.dtype.newbyteorder("="), copy=True)
        if arr.size < self.numel:
            raise CheckpointError(
                f"storage {self.key}: expected {self.numel} elements, got {arr.size}"
            )
        self.array = arr


class _StorageView:
    """Legacy-format view into another storage (``view_metadata``)."""

    def __init__(self, base: _Storage, offset: int, numel: int):
        self.base = base
        self.offset = offset
        self.numel = numel

    @property
    def array(self) -> Optional[np.ndarray]:
        if self.base.array is None:
            return None
        return self.base.array[self.offset:self.offset + self.numel]


class _TensorRef:
    """Placeholder for a tensor until its storage bytes are available."""

    def __init__(self, storage, offset: int, size, stride):
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def materialize(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise CheckpointError("tensor storage was never read")
        n = 1
        for s in self.size:
            n *= s
        if n == 0:
            return np.zeros(self.size, dtype=flat.dtype)
        last = self.offset + sum((sz - 1) * st for sz, st in zip(self.size, self.stride))
        if self.offset < 0 or last >= flat.size:
            raise CheckpointError("tensor view exceeds its storage")
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:],
            shape=self.size,
            strides=tuple(st * item for st in self.stride),
            writeable=False,
        )
        return np.array(view, copy=True, order="C")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: Dict[str, _Storage]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name in (
                "_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid: Any):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        view_metadata = pid[5] if len(pid) > 5 else None
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {stype!r}")
        storage = self._storages.get(key)
        if storage is None:
            storage = _Storage(key, stype, numel)
            self._storages[key] = storage
        if view_metadata is not None:
            _view_key, offset, view_numel = view_metadata
            return _StorageView(storage, int(offset), int(view_numel))
        return storage


def _materialize(obj: Any) -> Any:
    if isinstance(obj, _TensorRef):
        return obj.materialize()
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialize(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(v) for v in obj)
    return obj


def _load_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise CheckpointError(f"{path}: expected one data.pkl, found {len(pkl)}")
        prefix = pkl[0][: -len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in names:
            big_endian = zf.read(prefix + "byteorder").strip() == b"big"
        storages: Dict[str, _Storage] = {}
        with zf.open(pkl[0]) as f:
            obj = _Unpickler(f, storages).load()
        for key, storage in storages.items():
            raw = zf.read(f"{prefix}data/{key}")
            storage.set_bytes(raw[: storage.numel * storage.stype.itemsize], big_endian)
    return _materialize(obj)


def _load_legacy(path: str) -> Any:
    with open(path, "rb") as f:
        plain = _Unpickler(f, {})
        magic = plain.load()
        if magic != LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (bad magic)")
        protocol = _Unpickler(f, {}).load()
        if protocol != LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: unsupported legacy protocol {protocol}")
        sys_info = _Unpickler(f, {}).load()
        big_endian = not sys_info.get("little_endian", True)
        storages: Dict[str, _Storage] = {}
        obj = _Unpickler(f, storages).load()
        keys = _Unpickler(f, {}).load()
        for key in keys:
            storage = storages[str(key)]
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"{path}: truncated before storage {key}")
            numel = struct.unpack(">q" if big_endian else "<q", header)[0]
            nbytes = numel * storage.stype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise CheckpointError(f"{path}: truncated storage {key}")
            storage.numel = max(storage.numel, numel)
            storage.set_bytes(raw, big_endian)
        if f.read(1):
            raise CheckpointError(f"{path}: trailing bytes after the last storage")
    return _materialize(obj)


def load(path) -> Any:
    """Load a ``torch.save`` file; tensors come back as numpy arrays."""
    path = str(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    return _load_legacy(path)


def load_state_dict(path) -> "collections.OrderedDict[str, np.ndarray]":
    """Load a checkpoint holding a state dict (optionally under 'state_dict')."""
    obj = load(path)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: top-level object is {type(obj).__name__}, not a dict")
    out = collections.OrderedDict()
    for k, v in obj.items():
        if isinstance(v, np.ndarray):
            out[str(k)] = v
    return out
