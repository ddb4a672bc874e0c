"""`transferkit export RUN --format onnx`: backbone + head as one ONNX model, checked against PyTorch before use.

The graph takes the backbone's collated batch (a dict of tensors -> named inputs: input_ids/attention_mask for
text, pixels for images, the audio model's features and frame counts, features for vectors) and returns the
head's raw outputs; batch (and for text, sequence) axes are dynamic. Decoding stays in Python (`task.decode`),
shared with PyTorch. LoRA adapters are merged into the weights first (a copy: the saved run is unchanged).

Parity: PyTorch and ONNX Runtime predict the same held-out examples through the same `FineTuner` code path
(see parity.py for the tolerances); the file is moved into place only when they agree, else it is kept aside as
model.onnx.failed, the failure is recorded in transferkit.json and an ExportError names the numbers.
`quantize="int8"` adds model.int8.onnx (ONNX Runtime dynamic quantisation: int8 weights, activations quantised
per batch at run time) and the change of the task's score on labelled validation data.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferkit.errors import ConfigError, ExportError
from transferkit.export import atomic

QUANTIZE = ("int8",)
EXPORT_HINT = ", then export again"  # after "free space" / "make it writable"


@dataclass
class OnnxExportConfig:
    opset: int = 17  # ONNX opset: 17 has LayerNormalization as one op; ONNX Runtime >= 1.14 runs it
    quantize: str | None = None  # "int8": also write model.int8.onnx (dynamic quantisation) and score it
    parity_examples: int = 256  # the first N held-out examples PyTorch and ONNX Runtime must agree on
    max_rows: int = 2000  # validation rows the int8 score change is measured on (the first N)
    tolerance: float = 1e-4  # max |Δprob| (relative |Δvalue| for regression) still called parity

    def __post_init__(self) -> None:
        if self.quantize not in (None, *QUANTIZE):
            raise ConfigError(f"quantize must be one of {list(QUANTIZE)} or None, got {self.quantize!r}.")
        if not 13 <= self.opset <= 20:
            raise ConfigError(f"opset must be in 13..20 (what the TorchScript exporter writes), got {self.opset}.")
        if self.parity_examples < 2 or self.max_rows < 1 or self.tolerance <= 0:
            raise ConfigError(
                "parity_examples must be >= 2, max_rows >= 1 and tolerance > 0, got "
                f"{self.parity_examples}, {self.max_rows}, {self.tolerance}."
            )


def export_onnx(
    run_dir: str | Path,
    data: Any = None,
    config: OnnxExportConfig | None = None,
    log=None,
    module=None,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Write RUN/model.onnx (and model.int8.onnx with quantize="int8"), check parity, record it in transferkit.json.

    `data`: held-out examples to check on (a file like the training data; with labels for the int8 score);
    default: the run's validation rows read again from the recorded files. Returns the manifest's "onnx" record;
    raises ExportError when parity fails."""
    from transferkit.export.artifact import read_manifest, update_manifest
    from transferkit.export.heldout import held_out_examples
    from transferkit.export.onnx_runtime import INT8_FILE, ONNX_FILE, OnnxRunner

    config = config or OnnxExportConfig()
    run_dir = Path(run_dir)
    say = log or (lambda line: None)
    manifest = read_manifest(run_dir)
    tuner, merged = _load_for_export(run_dir, manifest, module, trust_remote_code)
    held = held_out_examples(tuner, manifest, data)
    if config.quantize and not (held.labelled and held.validation):
        raise ExportError(
            f"--quantize {config.quantize} reports the score change on labelled validation data, and none is at hand "
            f"(examples: {held.source}). Pass labelled held-out data: --data val.csv (data=... in Python)."
        )
    inputs = held.examples.inputs[: config.parity_examples]
    tmp = atomic.temp_path(run_dir / ONNX_FILE)
    try:
        with atomic.disk_errors(run_dir / ONNX_FILE, EXPORT_HINT):
            say(f"exporting {manifest.get('backbone', {}).get('name', 'the model')} to ONNX (opset {config.opset})")
            inputs_info = write_onnx(tuner.model_, tuner.model_.backbone, inputs, tmp, config.opset)
            parity = check_parity(tuner, OnnxRunner(tmp), inputs, config.tolerance)
            record = _record(tmp, config, inputs_info, merged, {**parity, "examples_source": held.source}, tuner.task_)
            if not parity["passed"]:
                _keep_aside(tmp, run_dir)
                update_manifest(run_dir, {"onnx": {**record, "file": None, "failed_file": f"{ONNX_FILE}.failed"}})
                raise ExportError(_failure_message(parity, run_dir))
            atomic.commit(tmp, run_dir / ONNX_FILE)
            record["file"] = ONNX_FILE
            (run_dir / INT8_FILE).unlink(missing_ok=True)  # an older int8 model would not match this export's record
            update_manifest(run_dir, {"onnx": record})  # the fp32 model counts even if quantising fails below
            if config.quantize:
                say("quantising to int8 (ONNX Runtime dynamic quantisation) and scoring fp32 vs int8")
                record["int8"] = quantize_int8(tuner, run_dir, held, config.max_rows)
                update_manifest(run_dir, {"onnx": record})
    finally:
        tmp.unlink(missing_ok=True)
    return record


def _load_for_export(run_dir: Path, manifest: dict[str, Any], module, trust_remote_code: bool = False):
    """The run on CPU in PyTorch, with LoRA adapters merged into the weights (in memory only)."""
    from transferkit.api import load
    from transferkit.strategies.lora import has_adapters, merge_adapters

    if manifest.get("task") == "generation":
        raise ExportError(
            f"{str(run_dir)!r} is a generation run (a causal LM): ONNX export covers classification, multi-label "
            "and regression runs. Use the run's merged model directory with a generation runtime instead."
        )
    tuner = load(run_dir, device="cpu", module=module, trust_remote_code=trust_remote_code)
    merged = has_adapters(tuner.model_.backbone)
    if merged:
        merge_adapters(tuner.model_.backbone)  # one graph of plain weights: adapters folded in, as merge_adapters=True
        tuner.model_.eval()
    return tuner, merged


def _positional(model, names: list[str]):
    """The model with its batch dict as positional tensors, which is what torch.onnx.export traces."""
    import torch

    class Positional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(dict(zip(names, tensors))).float()

    return Positional().eval()


def trace_items(backbone, inputs: list[Any]) -> list[Any]:
    """Two encoded examples to trace with: the longest and the shortest, so a text batch is padded and the traced
    graph takes the attention-mask path (a model may skip an all-ones mask, which would bake "no padding" in)."""
    items = backbone.encode(list(inputs))
    if len(items) < 2:
        raise ExportError(f"Exporting needs at least 2 examples to check on, got {len(items)}. Pass more with --data.")
    order = sorted(range(len(items)), key=lambda i: backbone.item_length(items[i]))
    longest, shortest = items[order[-1]], items[order[0]]
    if isinstance(shortest, list) and len(shortest) == len(longest) and len(shortest) > 2:
        shortest = [shortest[0], shortest[-1]]  # e.g. [CLS] [SEP]: a shorter sequence, so the batch has padding
    return [longest, shortest]


def write_onnx(model, backbone, inputs: list[Any], path: Path, opset: int) -> dict[str, Any]:
    """Trace `model` on a batch of `inputs` into `path`; returns each input's name, dtype and (symbolic) shape.

    The TorchScript exporter (dynamo=False) is used on purpose: it needs no onnxscript, it handles every
    backbone here (transformers text/vision/audio models, timm CNNs, the Resemblyzer LSTM, MLPs) with dynamic
    axes, and backbones with data-dependent Python control flow trace a graph-friendly path instead (Whisper:
    `torch.jit.is_tracing()`). Its TracerWarnings (shape arithmetic frozen into constants) are silenced because
    the parity check on held-out batches of other sizes and lengths is what decides whether the trace is right."""
    import torch

    batch = {k: v for k, v in backbone.collate(trace_items(backbone, inputs)).items() if isinstance(v, torch.Tensor)}
    names = sorted(batch)
    text = backbone.data_config.get("modality") == "text"
    axes = {n: {0: "batch", **({1: "sequence"} if text and batch[n].dim() >= 2 else {})} for n in names}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarning and the legacy exporter's DeprecationWarning, see above
        try:
            torch.onnx.export(
                _positional(model, names),
                tuple(batch[n] for n in names),
                str(path),
                input_names=names,
                output_names=["outputs"],
                dynamic_axes={**axes, "outputs": {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        except Exception as exc:  # an op or Python construct of the model's own code that does not trace
            raise ExportError(
                f"torch.onnx.export could not turn this model into ONNX (opset {opset}): {type(exc).__name__}: {exc}. "
                "Try another --opset; otherwise predict with the PyTorch runtime (the default)."
            ) from exc
    return {
        n: {
            "dtype": str(batch[n].dtype).replace("torch.", ""),
            "shape": [axes[n].get(i, s) for i, s in enumerate(batch[n].shape)],
        }
        for n in names
    }


@contextmanager
def _through(tuner, runner):
    """Predict with `tuner` through `runner` (an OnnxRunner), the code path of tk.load(runtime="onnx")."""
    before = getattr(tuner, "runner_", None)
    tuner.runner_ = runner
    try:
        yield tuner
    finally:
        tuner.runner_ = before


def decoded(tuner, inputs: list[Any], runner=None):
    """The task's decoded outputs of `inputs` in PyTorch (runner None) or through an ONNX runner."""
    with _through(tuner, runner):
        return tuner._probabilities(list(inputs))


def check_parity(tuner, runner, inputs: list[Any], tolerance: float) -> dict[str, Any]:
    from transferkit.export.parity import compare_outputs

    return compare_outputs(tuner.task_, decoded(tuner, inputs), decoded(tuner, inputs, runner), tolerance)


def quantize_int8(tuner, run_dir: Path, held, max_rows: int) -> dict[str, Any]:
    """model.int8.onnx from model.onnx, and the task's score of both on the labelled validation rows."""
    import numpy as np
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from transferkit.export.onnx_runtime import INT8_FILE, ONNX_FILE, OnnxRunner
    from transferkit.export.parity import SCORES, agreement, score

    with atomic.writing(run_dir / INT8_FILE, EXPORT_HINT) as tmp, _quiet_root_logger():
        # the root logger quietened: "consider pre-processing" (shape inference)
        quantize_dynamic(run_dir / ONNX_FILE, tmp, weight_type=QuantType.QInt8)
    examples = held.examples.subset(range(min(max_rows, len(held.examples))))
    fp32 = decoded(tuner, examples.inputs, OnnxRunner(run_dir / ONNX_FILE))
    int8 = decoded(tuner, examples.inputs, OnnxRunner(run_dir / INT8_FILE))
    fp32_score, int8_score = score(tuner.task_, fp32, examples.labels), score(tuner.task_, int8, examples.labels)
    return {
        "file": INT8_FILE,
        "bytes": (run_dir / INT8_FILE).stat().st_size,
        "method": "onnxruntime.quantization.quantize_dynamic (int8 weights, uint8 activations per batch)",
        "score": {
            "metric": SCORES[tuner.task_.name],
            "fp32": fp32_score,
            "int8": int8_score,
            "change": int8_score - fp32_score,
            "examples": len(examples),
            "examples_source": held.source,
        },
        "agreement_with_fp32": agreement(tuner.task_, fp32, int8),
        "max_abs_output_diff_vs_fp32": float(np.abs(np.asarray(fp32) - np.asarray(int8)).max()),
    }


@contextmanager
def _quiet_root_logger():
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _record(path: Path, config, inputs_info, merged: bool, parity: dict[str, Any], task) -> dict[str, Any]:
    from importlib import metadata

    from transferkit.export.manifest import now_iso

    decode = {"classification": "softmax", "multilabel": "sigmoid per label, then the tuned thresholds"}
    return {
        "file": None,
        "bytes": path.stat().st_size,
        "opset": config.opset,
        "exporter": "torch.onnx.export (TorchScript tracing, dynamo=False)",
        "inputs": inputs_info,
        "outputs": {"outputs": "the head's raw outputs [batch, outputs]"},
        "decode": decode.get(task.name, "value = outputs[:, 0] * target std + target mean"),
        "lora_merged": merged,
        "parity": parity,
        "onnxruntime_version": metadata.version("onnxruntime"),
        "onnx_version": metadata.version("onnx"),
        "torch_version": metadata.version("torch"),
        "created": now_iso(),
    }


def _keep_aside(tmp: Path, run_dir: Path) -> None:
    """The failed model as model.onnx.failed (for inspection); no model.onnx that the record does not vouch for."""
    from transferkit.export.onnx_runtime import INT8_FILE, ONNX_FILE

    atomic.commit(tmp, run_dir / f"{ONNX_FILE}.failed")
    for name in (ONNX_FILE, INT8_FILE):
        (run_dir / name).unlink(missing_ok=True)


def _failure_message(parity: dict[str, Any], run_dir: Path) -> str:
    if "max_abs_prob_diff" in parity:
        numbers = (
            f"max |Δprob| = {parity['max_abs_prob_diff']:.3g} ({parity['tolerance']}), "
            f"{parity['differing_labels']} of {parity['examples']} predictions differ"
        )
    else:
        numbers = parity.get("reason") or (
            f"max relative |Δvalue| = {parity['max_rel_value_diff']:.3g} ({parity['tolerance']}) "
            f"on {parity['examples']} examples"
        )
    return (
        f"ONNX export of {str(run_dir)!r} failed its parity check against PyTorch: {numbers}. Nothing was exported; "
        f"the model is kept aside as {run_dir / 'model.onnx.failed'} and the check is recorded in transferkit.json. "
        "Try another --opset, or report the backbone: its graph does not trace faithfully."
    )
