"""The artifact directory: written atomically, reloaded bit-for-bit, loadable without transferkit.

Layout:
  transferkit.json        labels, backbone spec, config, metrics, data fingerprints, versions, command
  weights.safetensors     the whole TransferModel state (backbone + head), transferkit's own names
  backbone/               the backbone's own config and preprocessor (tokenizer) files
  config.json, model.safetensors, tokenizer files
                          for text models: a plain transformers *ForSequenceClassification model
                          with the same predictions (see export/hf_compat.py), when expressible
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transferkit.errors import ArtifactError

MANIFEST = "transferkit.json"
WEIGHTS = "weights.safetensors"
BACKBONE_DIR = "backbone"
CHECKPOINTS = "checkpoints"  # inside the run directory while training; replaced by the artifact at the end
FORMAT_VERSION = 1


def is_run_dir(path: str | Path) -> bool:
    """A saved transferkit run (it can be loaded, or used as the backbone of a new task)."""
    return Path(path).expanduser().is_dir() and (Path(path).expanduser() / MANIFEST).is_file()


def run_dir_state(directory: Path) -> str:
    """ "missing", "empty", "interrupted" (only checkpoints), "complete" (a saved run) or "other" (foreign files)."""
    if not directory.exists():
        return "missing"
    if not directory.is_dir():
        return "other"
    names = {p.name for p in directory.iterdir()}
    if not names:
        return "empty"
    if MANIFEST in names:
        return "complete"
    return "interrupted" if names == {CHECKPOINTS} else "other"


def check_output_dir(directory: str | Path, overwrite: bool) -> Path:
    """Refuse to write over an existing run unless asked; called before training starts."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ArtifactError(f"--out {str(directory)!r} is a file, not a directory. Choose another path.")
    state = run_dir_state(directory)
    if state not in ("missing", "empty") and not overwrite:
        what = {"complete": "a transferkit run", "interrupted": "an interrupted run"}.get(state, "files")
        raise ArtifactError(
            f"Output directory {str(directory)!r} already holds {what}. Pass --overwrite (overwrite=True) to replace "
            "it, or choose another --out."
        )
    return directory


def prepare_run_dir(directory: str | Path, overwrite: bool, resume: bool) -> Path:
    """Check --out before training and return where checkpoints go (inside it, until the artifact replaces them)."""
    directory = Path(directory)
    state = run_dir_state(directory)
    if resume:
        if state != "interrupted":
            raise ArtifactError(
                f"--resume: {str(directory)!r} holds no interrupted run (no {CHECKPOINTS}/ from an earlier `fit --out` "
                "with the same directory). Drop --resume to start a new run."
            )
        return directory / CHECKPOINTS
    if state == "interrupted" and not overwrite:
        raise ArtifactError(
            f"Output directory {str(directory)!r} holds an interrupted run. Pass --resume to continue it, or "
            "--overwrite to start over."
        )
    check_output_dir(directory, overwrite)
    if state == "interrupted":
        shutil.rmtree(directory / CHECKPOINTS)
    return directory / CHECKPOINTS


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def write_atomically(directory: str | Path, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` into a sibling temp dir, then rename it into place: a failure leaves no half artifact."""
    directory = check_output_dir(directory, overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        _replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    _write_json(directory / MANIFEST, {"format_version": FORMAT_VERSION, **manifest})


def save_artifact(
    directory: str | Path, model, manifest: dict[str, Any], overwrite: bool = False, native_export=None
) -> Path:
    """Weights, backbone files, native exports and transferkit.json, written atomically."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        (tmp / BACKBONE_DIR).mkdir()
        model.backbone.save_files(tmp / BACKBONE_DIR)
        extra = {"native_export": native_export(model, tmp)} if native_export is not None else {}
        write_manifest(tmp, {**manifest, **extra})

    return write_atomically(directory, overwrite, write)


def _replace(tmp: Path, directory: Path) -> None:
    if directory.exists():
        old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, directory)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(
            f"{str(directory)!r} is not a transferkit run directory (no {MANIFEST}). Pass the --out directory of "
            "`transferkit fit`."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{str(path)!r} is corrupt ({exc}). Re-run `transferkit fit` to recreate it.") from None
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(f"{str(directory)!r} was written by a newer transferkit; upgrade transferkit to load it.")
    return manifest


def load_weights(model, directory: Path) -> None:
    from safetensors.torch import load_file

    path = directory / WEIGHTS
    if not path.is_file():
        raise ArtifactError(f"{str(directory)!r} has no {WEIGHTS}; the run directory is incomplete.")
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    if missing or unexpected:
        raise ArtifactError(
            f"{str(path)!r} does not match the model described in {MANIFEST} "
            f"(missing: {missing[:3]}, unexpected: {unexpected[:3]})."
        )


def update_manifest(directory: str | Path, updates: dict[str, Any]) -> None:
    """Merge `updates` into transferkit.json atomically (temp file + rename)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    manifest.update(updates)
    tmp = directory / f".{MANIFEST}.tmp-{uuid.uuid4().hex[:8]}"
    _write_json(tmp, manifest)
    os.replace(tmp, directory / MANIFEST)
