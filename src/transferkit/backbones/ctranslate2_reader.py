"""Read CTranslate2 `model.bin` files with numpy alone (no `ctranslate2` install needed).

Layout (binary versions 4-6; see `ModelSpec._serialize` in CTranslate2's python/ctranslate2/specs/model_spec.py
and `Model::load` in src/models/model.cc). All integers are little-endian; a *string* is a `uint16` length that
counts a trailing NUL, then that many bytes of UTF-8 ending in the NUL::

    uint32  binary_version            # 6 for files written since CTranslate2 3.x
    string  spec_name                 # e.g. "WhisperSpec"
    uint32  spec_revision             # e.g. 3 for WhisperSpec
    uint32  num_variables
    num_variables times, sorted by name:
        string  name                  # scope path, e.g. "encoder/layer_0/self_attention/linear_0/weight"
        uint8   rank
        uint32  dims[rank]            # rank 0: a scalar (num_heads, flags, activation enum, ...)
        uint8   dtype_id              # 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16
        uint32  num_bytes             # == prod(dims) * itemsize
        bytes   data[num_bytes]       # C order
    uint32  num_aliases
    num_aliases times:
        string  alias                 # e.g. "decoder/projection/weight"
        string  target                # e.g. "decoder/embeddings/weight" (a tied weight is stored once)

There is no magic number: a wrong file is detected by its version, by sizes that do not add up, and by the
file ending exactly after the aliases. bfloat16 (which numpy lacks) is widened to float32; `meta.dtypes` keeps
the stored dtype of every variable.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferkit.errors import BackboneError

SUPPORTED_VERSIONS = (4, 5, 6)  # the layout above; older files store an item size instead of a dtype id
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # index = dtype_id


@dataclass(frozen=True)
class CT2Meta:
    binary_version: int
    spec: str
    revision: int
    dtypes: dict[str, str] = field(default_factory=dict)  # variable name -> stored dtype name


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BackboneError(
                f"{self.path} is truncated or not a CTranslate2 model.bin: needed {n} bytes at offset {self.pos}, "
                f"the file has {len(self.data)}."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (length,) = self.unpack("H")
        raw = self.take(length)
        if length == 0 or raw[-1] != 0:
            raise BackboneError(f"{self.path}: corrupt string at offset {self.pos - length} (no NUL terminator).")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as e:
            raise BackboneError(f"{self.path}: corrupt string at offset {self.pos - length} ({e}).") from None


def _array(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":
        wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return wide.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


def read_ctranslate2(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str], CT2Meta]:
    """Parse a CTranslate2 `model.bin` (or a model directory holding one).

    Returns `(variables, aliases, meta)`: `variables` maps each stored name to a writable numpy array (0-d for
    scalars), `aliases` maps alias -> stored name, `meta` has the binary version, spec name, spec revision and
    stored dtypes. Raises `BackboneError` when the file is missing, truncated, of another version or corrupt.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BackboneError(f"Cannot read the CTranslate2 model {path}: {e}") from None
    cur = _Cursor(data, path)

    (version,) = cur.unpack("I")
    if version not in SUPPORTED_VERSIONS:
        raise BackboneError(
            f"{path} has binary version {version}; only CTranslate2 binary versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))} are supported (is it a CTranslate2 model.bin at all?)."
        )
    spec = cur.string()
    (revision,) = cur.unpack("I")

    variables: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    (count,) = cur.unpack("I")
    for _ in range(count):
        name = cur.string()
        (rank,) = cur.unpack("B")
        shape = cur.unpack(f"{rank}I")
        dtype_id, num_bytes = cur.unpack("B")[0], cur.unpack("I")[0]
        if dtype_id >= len(DTYPES):
            raise BackboneError(f"{path}: variable {name!r} has unknown dtype id {dtype_id}.")
        dtype = DTYPES[dtype_id]
        expected = int(np.prod(shape, dtype=np.int64)) * (2 if dtype == "bfloat16" else np.dtype(dtype).itemsize)
        if num_bytes != expected:
            raise BackboneError(
                f"{path}: variable {name!r} of shape {shape} and dtype {dtype} declares {num_bytes} bytes, "
                f"expected {expected}; the file is corrupt."
            )
        if name in variables:
            raise BackboneError(f"{path}: variable {name!r} is stored twice; the file is corrupt.")
        variables[name] = _array(cur.take(num_bytes), dtype, shape)
        dtypes[name] = dtype

    aliases: dict[str, str] = {}
    (count,) = cur.unpack("I")
    for _ in range(count):
        alias, target = cur.string(), cur.string()
        if target not in variables:
            raise BackboneError(f"{path}: alias {alias!r} points to {target!r}, which is not stored.")
        aliases[alias] = target
    if cur.pos != len(data):
        raise BackboneError(
            f"{path}: {len(data) - cur.pos} unexpected bytes after the last alias; "
            "the file is corrupt or not a CTranslate2 model.bin."
        )
    return variables, aliases, CT2Meta(version, spec, revision, dtypes)
