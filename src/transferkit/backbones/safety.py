"""What may load from a user's model directory: weights from safetensors (or a plain state dict that
`torch.load(weights_only=True)` reads), and model code from transformers itself unless the user trusts the
directory's own code (`trust_remote_code`).

Every transformers `from_pretrained` of a user directory takes its keyword arguments from
`pretrained_options`, so the two checks happen in one place, before transformers sees the directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transferkit.errors import UnsafeLoadError

PICKLED_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl", ".pickle")
# The configs transformers reads that may name a module of the directory's own to import (`auto_map`).
CODE_CONFIGS = (
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "feature_extractor_config.json",
    "image_processor_config.json",
)
CONVERT_HINT = (
    "Convert it to safetensors where you trust it, e.g. `from safetensors.torch import save_file; "
    "save_file(torch.load(path), 'model.safetensors')`, and pass the converted file or directory."
)


def remote_code_files(location: str | Path) -> list[str]:
    """The config files of a local model directory whose `auto_map` names Python code of the model's own."""
    directory = Path(location).expanduser()
    if not directory.is_dir():
        return []
    found = []
    for name in CODE_CONFIGS:
        try:
            settings = json.loads((directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent or unreadable: transformers reports those itself
            continue
        if isinstance(settings, dict) and settings.get("auto_map"):
            found.append(name)
    return found


def check_remote_code(location: str | Path, trust_remote_code: bool) -> None:
    """Refuse a directory that needs its own code unless the user said they trust it."""
    files = [] if trust_remote_code else remote_code_files(location)
    if files:
        raise UnsafeLoadError(
            f"{str(location)!r} needs Python code of its own to load (auto_map in {', '.join(files)}): transformers "
            "would import and run the files it names. If you trust that code, pass --trust-remote-code "
            "(trust_remote_code=True); transferkit never runs it otherwise."
        )


def refuse_pickle(path: str | Path, reason: Exception | str) -> UnsafeLoadError:
    """The error for a weights file that only loads by unpickling arbitrary objects."""
    first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    return UnsafeLoadError(
        f"Refusing to load {str(path)!r}: it is a pickle that is not a plain state dict of tensors, and unpickling "
        f"it could run arbitrary code (torch.load(weights_only=True) says: {first_line}). {CONVERT_HINT}"
    )


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """A state dict from .safetensors, or from a pickle that `torch.load(weights_only=True)` accepts."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (unpickling raises many kinds)
        raise refuse_pickle(path, exc) from None


def weight_options(location: str | Path) -> dict[str, Any]:
    """`use_safetensors` for a directory's weights: safetensors when it has them; pickled files only after each
    one passed `torch.load(weights_only=True)` here (transformers reads them weights-only too)."""
    directory = Path(location).expanduser()
    if not directory.is_dir():
        return {"use_safetensors": True, "weights_only": True}  # a hub id: never a pickle from the network
    files = [p for p in directory.iterdir() if p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):
        return {"use_safetensors": True, "weights_only": True}
    pickled = sorted(p for p in files if p.suffix in PICKLED_SUFFIXES)
    for path in pickled:
        read_state_dict(path)
    return {"use_safetensors": False if pickled else None, "weights_only": True}


def pretrained_options(location: str | Path, trust_remote_code: bool, weights: bool = True) -> dict[str, Any]:
    """Keyword arguments for transformers' `from_pretrained` of `location`, after the safety checks.

    `weights`: False for calls that read no weights (tokenizers, configs, feature extractors)."""
    check_remote_code(location, trust_remote_code)
    return {"trust_remote_code": bool(trust_remote_code), **(weight_options(location) if weights else {})}


def check_run_trusted(directory: str | Path, manifest: dict[str, Any], trust_remote_code: bool) -> None:
    """A saved run that was trained with trust_remote_code, or whose model files name code of their own, loads
    only when the caller trusts that code too: the permission is not inherited from whoever trained it."""
    if trust_remote_code:
        return
    from transferkit.export.artifact import BACKBONE_DIR

    directory = Path(directory)
    files = [f"{BACKBONE_DIR}/{name}" for name in remote_code_files(directory / BACKBONE_DIR)]
    files += remote_code_files(directory)  # generative runs keep the model's own files at the top
    if manifest.get("trust_remote_code") or files:
        reason = (
            f"its model files name Python code of their own (auto_map in {', '.join(files)})"
            if files
            else "it was trained with trust_remote_code=True (recorded in transferkit.json)"
        )
        raise UnsafeLoadError(
            f"Refusing to load {str(directory)!r}: {reason}, so loading it may run code that came with the run. If "
            "you trust that code, pass trust_remote_code=True (--trust-remote-code on predict, serve, evaluate, "
            "generate and fit)."
        )


def save_model_code(model: Any, directory: Path) -> None:
    """The Python files of a model that runs code of its own (loaded with trust_remote_code) go with its saved
    config, so a run reloads (with trust_remote_code again) without the model's original directory."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base, "_auto_class", None) is None:  # transformers' own classes: nothing to copy
        return
    from transformers.dynamic_module_utils import custom_object_save

    custom_object_save(base, directory, config=base.config)
