"""Predicting through ONNX Runtime: a session over model.onnx (or model.int8.onnx) that takes the backbone's batches.

The ONNX model computes what `TransferModel.forward` computes (backbone + head: the head's raw outputs), so
preprocessing (`backbone.encode` / `collate`) and decoding (`task.decode`: softmax, sigmoid, un-standardising)
stay in Python and are shared with PyTorch. A `FineTuner` loaded with `runtime="onnx"` keeps its PyTorch model
for preprocessing and hands each collated batch to an `OnnxRunner` instead of the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferkit.errors import ArtifactError, ConfigError

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
RUNTIMES = ("torch", "onnx", "onnx-int8")
FILES = {"onnx": ONNX_FILE, "onnx-int8": INT8_FILE}
_NUMPY_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
}


def open_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session; `threads` sets intra-op threads (None: ONNX Runtime's default, all cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are not the user's concern
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """Callable like the PyTorch model: a collated batch (dict of tensors) -> the head's raw outputs (a tensor).

    Only the inputs the graph declares are fed (an input the model never reads, e.g. BERT's token_type_ids,
    is not in the graph), each cast to the dtype the graph expects."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = open_session(path, threads)
        self.inputs = {i.name: _NUMPY_TYPES.get(i.type, "float32") for i in self.session.get_inputs()}

    def __call__(self, batch: dict[str, Any]):
        import torch

        missing = sorted(set(self.inputs) - set(batch))
        if missing:
            raise ArtifactError(
                f"{str(self.path)!r} expects inputs {sorted(self.inputs)}, but the backbone's batch has no {missing}. "
                "Export the run again: transferkit export RUN --format onnx."
            )
        feed = {name: _as_numpy(batch[name]).astype(dtype, copy=False) for name, dtype in self.inputs.items()}
        return torch.from_numpy(self.session.run(None, feed)[0])


def _as_numpy(value: Any):
    import numpy as np

    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ConfigError(f"Unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}.")
    return runtime


def runner_for(directory: str | Path, runtime: str, manifest: dict[str, Any], threads: int | None = None):
    """The OnnxRunner of a run directory for `runtime` ("onnx" or "onnx-int8"), or None for "torch".

    Refuses a missing file, and an ONNX model whose last export failed its parity check."""
    if check_runtime(runtime) == "torch":
        return None
    directory = Path(directory)
    path = directory / FILES[runtime]
    record = manifest.get("onnx") or {}
    flag = " --quantize int8" if runtime == "onnx-int8" else ""
    if not path.is_file():
        raise ArtifactError(
            f"runtime={runtime!r}: {str(directory)!r} has no {FILES[runtime]}. Export it first: "
            f"transferkit export {directory} --format onnx{flag}"
        )
    if not (record.get("parity") or {}).get("passed", False) or (runtime == "onnx-int8" and not record.get("int8")):
        raise ArtifactError(
            f"runtime={runtime!r}: the ONNX model in {str(directory)!r} has no passed parity check in transferkit.json. "
            f"Export it again: transferkit export {directory} --format onnx{flag}"
        )
    return OnnxRunner(path, threads)
