"""Which examples check an export: the user's file, else the run's own validation rows, read again from disk.

transferkit.json records the training/validation files and, for a validation split held out of the training
data, the row indices of that split (`data.split_indices`) and the split's content fingerprint. The rows are
read again and used only when the fingerprint still matches, so a changed file is never mistaken for the
run's validation data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferkit.data.examples import ExampleSet, load_examples
from transferkit.errors import ExportError, TransferkitError


@dataclass
class HeldOut:
    examples: ExampleSet
    source: str  # where the rows came from, in words (recorded in transferkit.json)
    labelled: bool  # with labels (scores can be computed), not just inputs
    validation: bool  # rows the model did not train on


def held_out_examples(tuner, manifest: dict[str, Any], data: Any = None) -> HeldOut:
    """`data` when given (labelled if it has labels), else the run's validation rows, else its training rows."""
    if data is not None:
        return _given(tuner, data)
    found = _recorded_validation(tuner, manifest)
    if found is not None:
        return found
    train = ((manifest.get("data") or {}).get("sources") or {}).get("train")
    if train and Path(train).exists():
        examples = _read(tuner, train, need_labels=False)
        return HeldOut(examples, f"training rows of {train} (the run recorded no validation rows)", True, False)
    raise ExportError(
        "No examples to check the export on: the run was trained from in-memory data, so transferkit.json names no "
        "file to read again. Pass a file of inputs like the training data: --data val.csv (data=... in Python)."
    )


def _read(tuner, data: Any, need_labels: bool) -> ExampleSet:
    names = getattr(tuner.model_.backbone, "feature_names", None)
    options = tuner._load_options(tuner.config_, features=names)
    return load_examples(data, modality=tuner.modality_, need_labels=need_labels, **options)


def _given(tuner, data: Any) -> HeldOut:
    examples = _read(tuner, data, need_labels=False)  # labels are read when the file has a label column
    return HeldOut(examples, _describe(data), examples.labels is not None, True)


def _describe(data: Any) -> str:
    return str(Path(data).resolve()) if isinstance(data, (str, Path)) else "the given data"


def _recorded_validation(tuner, manifest: dict[str, Any]) -> HeldOut | None:
    """The run's validation set: its --val file, or the rows held out of --data, when they are unchanged."""
    recorded = manifest.get("data") or {}
    sources = recorded.get("sources") or {}
    split = recorded.get("split_indices") or {}
    fingerprint = recorded.get("val_fingerprint")
    try:
        if sources.get("val") and Path(sources["val"]).exists():
            examples, source = _read(tuner, sources["val"], need_labels=True), sources["val"]
        elif sources.get("train") and split.get("val") and Path(sources["train"]).exists():
            examples = _read(tuner, sources["train"], need_labels=True)
            if split.get("subsample"):
                examples = examples.subset(split["subsample"])
            examples = examples.subset(split["val"])
            source = f"{len(examples)} validation rows held out of {sources['train']}"
        else:
            return None
    except (TransferkitError, IndexError):
        return None  # unreadable now, or fewer rows than recorded: not the run's validation rows
    if fingerprint and examples.fingerprint() != fingerprint:
        return None  # the file changed since training: its rows are not the run's validation rows
    return HeldOut(examples, source, True, True)
