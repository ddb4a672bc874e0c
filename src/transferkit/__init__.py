"""transferkit: adapt a pretrained model to your labels, evaluate it honestly, apply it.

    import transferkit as tk
    model = tk.FineTuner(backbone="minilm", epochs=3).fit("train.csv")
    model.predict(["what a great film"]); model.save("runs/x"); tk.load("runs/x")
    tk.export_onnx("runs/x"); tk.load("runs/x", runtime="onnx")  # ONNX Runtime, checked against PyTorch
    llm = tk.FineTuner(task="generation").fit("pairs.jsonl"); llm.generate(["a question"])
    tk.kshot_evaluate("train.csv", "test.csv", shots=(8, 16), strategies=("probe", "full"))  # few-shot protocol

Heavy libraries (torch, transformers) load on first use, so `import transferkit` stays fast.
"""

from __future__ import annotations

from typing import Any

from transferkit.errors import TransferkitError

__version__ = "0.1.0"
__all__ = [
    "FineTuner",
    "GenerativeFineTuner",
    "load",
    "export_onnx",
    "load_examples",
    "kshot_evaluate",
    "check_data",
    "rank",
    "tune",
    "list_backbones",
    "RunConfig",
    "TransferkitError",
    "__version__",
]

_LAZY = {
    "FineTuner": ("transferkit.api", "FineTuner"),
    "GenerativeFineTuner": ("transferkit.generation.tuner", "GenerativeFineTuner"),
    "load": ("transferkit.api", "load"),
    "export_onnx": ("transferkit.export.onnx_export", "export_onnx"),
    "load_examples": ("transferkit.data.examples", "load_examples"),
    "kshot_evaluate": ("transferkit.evaluation.kshot", "kshot_evaluate"),
    "check_data": ("transferkit.data.checks", "check_data"),
    "rank": ("transferkit.selection.rank", "rank_backbones"),
    "tune": ("transferkit.tuning", "tune"),
    "list_backbones": ("transferkit.backbones", "list_backbones"),
    "RunConfig": ("transferkit.config", "RunConfig"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
