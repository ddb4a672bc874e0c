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
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transferkit.errors import ArtifactError
from transferkit.export import atomic

MANIFEST = "transferkit.json"
WEIGHTS = "weights.safetensors"
BACKBONE_DIR = "backbone"
CHECKPOINTS = "checkpoints"  # inside the run directory while training; replaced by the artifact at the end
FORMAT_VERSION = 1


def is_run_dir(path: str | Path) -> bool:
    """A saved transferkit run (it can be loaded, or used as the backbone of a new task)."""
    return Path(path).expanduser().is_dir() and (Path(path).expanduser() / MANIFEST).is_file()


def run_dir_state(directory: Path) -> str:
    """ "missing", "empty", "interrupted" (checkpoints of a fit that did not finish, possibly over an earlier run),
    "complete" (a saved run) or "other" (foreign files)."""
    if not directory.exists():
        return "missing"
    if not directory.is_dir():
        return "other"
    names = {p.name for p in directory.iterdir()}
    if not names:
        return "empty"
    if CHECKPOINTS in names and (names == {CHECKPOINTS} or MANIFEST in names):
        return "interrupted"
    return "complete" if MANIFEST in names else "other"


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
    """Check --out before training and return where checkpoints go (inside it, until the artifact replaces them).

    The checkpoint directory is created at once, so a run killed even before its first checkpoint is known as
    interrupted; `discard_unstarted_run` removes it again when the fit fails with nothing checkpointed."""
    directory = Path(directory)
    atomic.recover_directory(directory)  # a save killed half-way through its directory swap: the state before it
    state = run_dir_state(directory)
    if resume:
        if state != "interrupted":
            raise ArtifactError(
                f"--resume: {str(directory)!r} holds no interrupted run (no {CHECKPOINTS}/ from an earlier `fit --out` "
                "with the same directory). Drop --resume to start a new run."
            )
        return atomic.make_dirs(directory / CHECKPOINTS)
    if state == "interrupted" and not overwrite:
        raise ArtifactError(
            f"Output directory {str(directory)!r} holds an interrupted run. Pass --resume to continue it, or "
            "--overwrite to start over."
        )
    check_output_dir(directory, overwrite)
    if state == "interrupted":
        shutil.rmtree(directory / CHECKPOINTS)
    return atomic.make_dirs(directory / CHECKPOINTS)


def discard_unstarted_run(directory: str | Path) -> None:
    """After a fit that failed before writing any checkpoint: remove its empty checkpoint directory (and --out,
    when that leaves it empty), so the failure does not look like an interrupted run."""
    checkpoints = Path(directory) / CHECKPOINTS
    try:
        if checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()
            if not any(Path(directory).iterdir()):
                Path(directory).rmdir()
    except OSError:
        pass  # best effort: the directory then reads as an interrupted run, which --resume or --overwrite clears


def _json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(_json_text(data), encoding="utf-8")  # inside a temp directory, synced when it is swapped in


def write_atomically(directory: str | Path, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` into a sibling temp dir, then swap it into place (export/atomic.py): a failure or a kill
    leaves no half artifact, and what was in `directory` before (an earlier run, checkpoints) stays intact."""
    atomic.recover_directory(directory)
    directory = check_output_dir(directory, overwrite)
    with atomic.temp_directory(directory) as tmp:
        write(tmp)
        atomic.swap_directory(tmp, directory)
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
    atomic.write_bytes(directory / MANIFEST, _json_text(manifest), ", then run the command again")
