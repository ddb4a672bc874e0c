"""ExampleSet: inputs (texts, images or feature vectors) with their labels, built from any supported source and checked."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferkit.data.labels import clean_labels
from transferkit.data.vectors import ARRAY_SUFFIXES
from transferkit.errors import DataError
from transferkit.registry import closest_match_hint

TEXT_COLUMNS = ("text", "sentence", "sentences", "review", "content", "document", "body", "utterance", "input")
IMAGE_COLUMNS = ("image", "image_path", "img", "path", "file", "filename", "filepath")
AUDIO_COLUMNS = ("audio", "audio_path", "wav", "path", "file", "filename", "filepath")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "rating", "sentiment", "y")


@dataclass
class ExampleSet:
    """Inputs and (optionally) labels, with a description of where they came from for error messages."""

    inputs: list[Any]  # strings for text; paths, PIL images or arrays for images; float32 rows for vectors
    labels: list[Any] | None
    source: str
    modality: str = "text"  # "text", "image", "audio" or "vector"
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (with --skip-bad-files)
    columns: list[str] | None = None  # vectors: the feature names (table columns), when the data had them
    task: str = "classification"  # what a label is: a class, a tuple of labels ("multilabel") or a float ("regression")
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.inputs)

    def fingerprint(self) -> str:
        """Content hash of inputs and labels: the same data gives the same fingerprint.

        Computed once per set: for images it reads every file, and a fit asks for it more than once.
        """
        if self._fingerprint is None:
            self._fingerprint = self._content_hash()
        return self._fingerprint

    def _content_hash(self) -> str:
        from transferkit.data.images import item_digest
        from transferkit.data.vectors import row_digest

        digest = hashlib.sha256()
        for i, item in enumerate(self.inputs):
            if self.modality == "text":
                digest.update(item.encode("utf-8"))
            elif self.modality == "audio":
                from transferkit.data.audio import audio_digest

                digest.update(audio_digest(item))
            else:
                digest.update(row_digest(item) if self.modality == "vector" else item_digest(item))
            digest.update(b"\x1f")
            if self.labels is not None:
                digest.update(json.dumps(self.labels[i]).encode())
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]

    def subset(self, indices: Sequence[int]) -> ExampleSet:
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        inputs = [self.inputs[i] for i in indices]
        return ExampleSet(inputs, labels, self.source, self.modality, columns=self.columns, task=self.task)

    def class_counts(self) -> dict[Any, int]:
        """Rows per class; multilabel: rows carrying each label; regression: {} (no classes)."""
        if self.task == "regression":
            return {}
        counts: dict[Any, int] = {}
        for label in self.labels or []:
            for one in label if self.task == "multilabel" else (label,):
                counts[one] = counts.get(one, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: str(kv[0])))


def _pick_column(
    columns: list[str], wanted: str | None, candidates: tuple[str, ...], role: str, flag: str, source: str = ""
) -> str:
    where = f"{source}: " if source else ""
    if wanted is not None:
        if wanted in columns:
            return wanted
        raise DataError(
            f"{where}Column {wanted!r} (the {role} column) is not in the data.{closest_match_hint(wanted, columns)} "
            f"Columns found: {', '.join(map(repr, columns))}. Pass the right name with {flag}."
        )
    lowered = {str(c).lower(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    raise DataError(
        f"{where}Cannot tell which column holds the {role}s: none is named {' / '.join(candidates[:4])}. "
        f"Columns found: {', '.join(map(repr, columns))}. Name it with {flag}."
    )


def _python_scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _clean_labels(raw: list[Any], source: str, options: LoadOptions | None = None) -> list[Any]:
    """The labels of the task being loaded (classes, label tuples or numbers); see data/labels.py."""
    task, separator = (options.task, options.label_separator) if options is not None else ("classification", "|")
    return clean_labels(raw, source, task, separator)


def is_unicode(text: str) -> bool:
    """Encodable as UTF-8: no lone surrogates (JSON's "\\ud800" escapes decode to them; tokenizers and hashing fail)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_texts(texts: list[Any], source: str) -> list[str]:
    bad_type = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad_type:
        i = bad_type[0]
        raise DataError(
            f"{source}: {len(bad_type)} input(s) are not strings (row {i + 1} is {type(texts[i]).__name__}: "
            f"{repr(texts[i])[:80]}). Text inputs must be strings; convert them or drop those rows."
        )
    broken = [i for i, t in enumerate(texts) if not is_unicode(t)]
    if broken:
        rows = ", ".join(str(i + 1) for i in broken[:10])
        raise DataError(
            f"{source}: {len(broken)} text(s) hold lone UTF-16 surrogates (e.g. an unpaired \\ud800 escape), which "
            f"are not text (rows {rows}). Fix how the data was written (its encoding) or drop those rows."
        )
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        rows = ", ".join(str(i + 1) for i in empty[:10])
        raise DataError(
            f"{source}: {len(empty)} text(s) are empty or whitespace only (rows {rows}). Drop or fill them."
        )
    return texts


@dataclass
class LoadOptions:
    """How to read a data source: which columns, and what to do with bad image files."""

    text: str | None = None  # text column (guessed when None)
    label: str | None = None  # label column (guessed when None)
    image: str | None = None  # image-path column (guessed when None)
    audio: str | None = None  # audio-path column (guessed when None)
    max_audio_seconds: float | None = None  # longer audio files are refused (skipped with skip_bad_files)
    need_labels: bool = True
    skip_bad_files: bool = False
    allow_outside_paths: bool = False
    modality: str | None = None  # "text", "image" or "vector" when the caller knows (the model's), else detected
    features: list[str] | None = None  # vectors: feature columns of a table; None: every column but the label
    task: str = "classification"  # how labels are read: classes, "multilabel" (label sets) or "regression" (numbers)
    label_separator: str = "|"  # multilabel: separator inside a label string ("a|b")


def _labels_from(frame, columns: list[str], input_col: str, options: LoadOptions, source: str) -> list[Any] | None:
    rest = [c for c in columns if c != input_col]
    if not (options.need_labels or options.label is not None or any(c.lower() in LABEL_COLUMNS for c in rest)):
        return None
    try:
        label_col = _pick_column(rest, options.label, LABEL_COLUMNS, "label", "--label-column / label=", source)
    except DataError:
        if options.need_labels or options.label is not None:
            raise
        return None
    return _clean_labels(frame[label_col].tolist(), source, options)


def _audio_column(frame, columns: list[str], options: LoadOptions) -> str | None:
    if options.audio is not None:
        return _pick_column(columns, options.audio, AUDIO_COLUMNS, "audio path", "--audio-column / audio=")
    if options.modality not in (None, "audio") or options.text is not None or options.image is not None:
        return None
    from transferkit.data.audio import is_audio_path

    for column in columns:
        values = frame[column].head(20).tolist()
        if values and all(is_audio_path(v) for v in values):
            return column
    return None


def _audio_set(inputs: list[Any], labels: list[Any] | None, source: str, options: LoadOptions) -> ExampleSet:
    from transferkit.data.audio import check_audio

    inputs, labels, bad = check_audio(inputs, labels, options.skip_bad_files, options.max_audio_seconds)
    return ExampleSet(inputs, labels, source, "audio", bad)


def _image_column(frame, columns: list[str], options: LoadOptions) -> str | None:
    if options.image is not None:
        return _pick_column(columns, options.image, IMAGE_COLUMNS, "image path", "--image-column / image=")
    if options.text is not None or options.modality == "text":
        return None
    from transferkit.data.images import is_image_path

    for column in columns:
        values = frame[column].head(20).tolist()
        if column.lower() in IMAGE_COLUMNS or (values and all(is_image_path(v) for v in values)):
            return column
    return None


def _from_frame(frame, options: LoadOptions, source: str, base: Path | None = None) -> ExampleSet:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    audio_col = _audio_column(frame, columns, options)
    if audio_col is not None:
        from transferkit.data.images import resolve_paths

        labels = _labels_from(frame, columns, audio_col, options, source)
        base = base or Path.cwd()
        paths = resolve_paths(frame[audio_col].tolist(), base, options.allow_outside_paths, source, kind="audio")
        return _audio_set(paths, labels, source, options)
    image_col = _image_column(frame, columns, options)
    if image_col is not None:
        from transferkit.data.images import resolve_paths

        labels = _labels_from(frame, columns, image_col, options, source)
        paths = resolve_paths(frame[image_col].tolist(), base or Path.cwd(), options.allow_outside_paths, source)
        return _image_set(paths, labels, source, options)
    from transferkit.data.vector_examples import is_vector_table, vector_table

    if is_vector_table(frame, columns, options):
        return vector_table(frame, columns, options, source)
    text_col = _pick_column(columns, options.text, TEXT_COLUMNS, "text", "--text-column / text=", source)
    labels = _labels_from(frame, columns, text_col, options, source)
    return ExampleSet(_check_texts(frame[text_col].tolist(), source), labels, source)


def _image_set(inputs: list[Any], labels: list[Any] | None, source: str, options: LoadOptions) -> ExampleSet:
    from transferkit.data.images import check_images

    inputs, labels, bad = check_images(inputs, labels, options.skip_bad_files)
    return ExampleSet(inputs, labels, source, "image", bad)


def _class_names(dataset, frame) -> None:
    """ClassLabel columns (and sequences of ClassLabel: multi-label): integer ids -> class names, in place."""
    for name, feature in dataset.features.items():
        names = getattr(feature, "names", None)
        if names is not None and name in frame:
            frame[name] = [names[i] if i is not None and i >= 0 else None for i in frame[name]]
        inner = getattr(getattr(feature, "feature", None), "names", None)
        if inner is not None and name in frame:
            frame[name] = [None if row is None else [inner[i] for i in row] for row in frame[name]]


def _from_hf_dataset(dataset, options: LoadOptions) -> ExampleSet:
    import datasets

    source = "the Hugging Face dataset"
    audio_cols = [n for n, f in dataset.features.items() if isinstance(f, datasets.Audio)]
    if audio_cols:  # undecoded ({"path", "bytes"}): decoding Audio columns would need torchcodec
        column = options.audio or audio_cols[0]
        frame = dataset.remove_columns(audio_cols).to_pandas()
        _class_names(dataset, frame)
        labels = _labels_from(frame, list(frame.columns), column, options, source)
        return _audio_set(
            list(dataset.cast_column(column, datasets.Audio(decode=False))[column]), labels, source, options
        )
    image_cols = [n for n, f in dataset.features.items() if isinstance(f, datasets.Image)]
    frame = dataset.remove_columns(image_cols).to_pandas() if image_cols else dataset.to_pandas()
    _class_names(dataset, frame)
    if image_cols:
        column = options.image or image_cols[0]
        labels = _labels_from(frame, list(frame.columns), column, options, source)
        return _image_set(list(dataset[column]), labels, source, options)
    return _from_frame(frame, options, source)


def _from_directory(directory: Path, options: LoadOptions) -> ExampleSet:
    from transferkit.data import audio, images

    source = f"{str(directory)!r}"
    if options.modality == "audio" or (options.modality is None and _holds_audio(directory)):
        paths, labels = audio.folder_examples(directory)
        return _audio_set(paths, _folder_labels(labels, source, options), source, options)
    paths, labels = images.folder_examples(directory)
    return _image_set(paths, _folder_labels(labels, source, options), source, options)


def _folder_labels(labels: list[Any] | None, source: str, options: LoadOptions) -> list[Any] | None:
    """Class-folder names are clean class labels; other tasks read them as they read a label cell."""
    return labels if labels is None or options.task == "classification" else _clean_labels(labels, source, options)


def _holds_audio(directory: Path, sample: int = 50) -> bool:
    """More audio files than image files among the first files of the class folders."""
    from transferkit.data.audio import AUDIO_SUFFIXES
    from transferkit.data.images import IMAGE_SUFFIXES

    counts = {"audio": 0, "image": 0}
    for seen, path in enumerate(directory.rglob("*")):
        if seen >= sample * 4:
            break
        suffix = path.suffix.lower()
        counts["audio"] += suffix in AUDIO_SUFFIXES
        counts["image"] += suffix in IMAGE_SUFFIXES
    return counts["audio"] > counts["image"]


def _from_sequence(data: Sequence[Any], labels: Sequence[Any] | None, options: LoadOptions) -> ExampleSet:
    from transferkit.data.images import is_image_object, is_image_path
    from transferkit.data.vectors import is_vector_row

    inputs = list(data)
    if not inputs:
        raise DataError("No examples were given (the list is empty). Pass at least two labelled examples.")
    if options.modality == "vector" or (options.modality is None and is_vector_row(inputs[0])):
        bad = next((i for i, v in enumerate(inputs) if not (is_vector_row(v) and len(v) == len(inputs[0]))), None)
        if bad is not None:
            raise DataError(
                f"Feature-vector inputs must be rows of numbers, all of one width; row {bad + 1} is "
                f"{type(inputs[bad]).__name__}: {str(inputs[bad])[:60]!r}."
            )
        from transferkit.data.vector_examples import vector_set

        return vector_set(inputs, labels, "the inputs", options)
    if labels is None and options.need_labels:
        raise DataError("Labels are missing: pass them as the second argument, e.g. fit(inputs, labels).")
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(inputs):
            raise DataError(f"Got {len(inputs)} inputs but {len(labels)} labels; pass one label per input.")
        labels = _clean_labels(labels, "the labels", options)
    from transferkit.data.audio import is_audio_object, is_audio_path

    if options.modality == "audio" or (
        options.modality is None
        and (is_audio_object(inputs[0]) or all(is_audio_path(v) and Path(v).is_file() for v in inputs))
    ):
        return _audio_set(inputs, labels, "the inputs", options)
    images = (
        options.modality == "image"
        or is_image_object(inputs[0])
        or (options.modality is None and all(is_image_path(v) and Path(v).is_file() for v in inputs))
    )
    if images:
        return _image_set(inputs, labels, "the inputs", options)
    return ExampleSet(_check_texts(inputs, "the inputs"), labels, "the inputs")


def _is_array(data: Any) -> bool:
    return hasattr(data, "__array__") and hasattr(data, "shape") and not hasattr(data, "columns")


def load_examples(data: Any, labels: Sequence[Any] | None = None, **options: Any) -> ExampleSet:
    """Build an ExampleSet from a file, an image folder, a DataFrame, a `datasets.Dataset`, or a list (+ labels).

    Keyword options are those of `LoadOptions` (text=, label=, image=, need_labels=, task=, ...).
    """
    opts = LoadOptions(**options)
    if isinstance(data, ExampleSet):
        if data.task == opts.task or data.labels is None:
            return data
        labels = _clean_labels(list(data.labels), data.source, opts)
        return ExampleSet(data.inputs, labels, data.source, data.modality, data.skipped, data.columns, opts.task)
    examples = _load(data, labels, opts)
    examples.task = opts.task
    return examples


def load_frame(frame, source: str, base: Path, **options: Any) -> ExampleSet:
    """Examples from a DataFrame read out of a file (a chunk of it: data/chunks.py), as `load_examples` reads the
    whole file: errors name `source` and relative image/audio paths resolve against `base`, the file's folder."""
    opts = LoadOptions(**options)
    examples = _from_frame(frame, opts, source, base=base)
    examples.task = opts.task
    return examples


def _load(data: Any, labels: Sequence[Any] | None, opts: LoadOptions) -> ExampleSet:
    import pandas as pd

    from transferkit.data.vector_examples import vector_set

    if isinstance(data, (str, Path)) and Path(data).is_dir():
        return _from_directory(Path(data), opts)
    if isinstance(data, (str, Path)) and Path(data).suffix.lower() in ARRAY_SUFFIXES:
        from transferkit.data.vectors import read_arrays

        features, stored = read_arrays(Path(data))
        if stored is None and labels is None and opts.need_labels:
            raise DataError(
                f"{str(data)!r} holds features but no labels (a .npy holds one array; an .npz needs y). Save both "
                "in one file: np.savez(path, X=features, y=labels)."
            )
        return vector_set(features, stored if labels is None else labels, f"{str(data)!r}", opts)
    if _is_array(data) and getattr(data, "ndim", 0) == 2 and opts.modality != "image":
        return vector_set(data, labels, "the array", opts)
    if isinstance(data, (str, Path)):
        from transferkit.data.tables import read_table

        return _from_frame(read_table(data), opts, f"{str(data)!r}", base=Path(data).parent)
    if isinstance(data, pd.DataFrame):
        if len(data) == 0:
            raise DataError("The DataFrame has no rows. Pass labelled examples.")
        return _from_frame(data.copy(), opts, "the DataFrame")
    if hasattr(data, "to_pandas") and hasattr(data, "features"):
        return _from_hf_dataset(data, opts)
    if not isinstance(data, (list, tuple)) and not hasattr(data, "__array__"):
        raise DataError(
            f"Cannot use data of type {type(data).__name__}. Pass a file path (.csv/.tsv/.jsonl/.parquet), an image "
            "folder, a pandas DataFrame, a datasets.Dataset, or a list of texts/images with a list of labels."
        )
    return _from_sequence(data, labels, opts)
