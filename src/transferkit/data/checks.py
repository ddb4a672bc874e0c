"""Data checks before training: duplicates and near copies, train/val/test overlap, class balance, tiny classes,
over-long texts, unreadable files and labels spelled more than one way. Multi-label data is checked per label;
regression targets skip the class checks.

`check_data` returns a CheckReport (problems with counts and a few example rows); `format_check_report` prints
it. Nothing here loads a model: the truncation check takes a token counter from the caller.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from transferkit.data import duplicates as dup
from transferkit.data.examples import ExampleSet
from transferkit.data.hashes import Fingerprints, fingerprints
from transferkit.errors import ConfigError, DataError

SEVERITIES = ("info", "warning", "error")
IMBALANCE_RATIO = 10.0  # largest / smallest class size above which imbalance is a warning
TRUNCATION_WARNING = 0.05  # share of cut texts from which truncation is a warning (below: info)
SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


@dataclass
class Problem:
    """One finding: which check, how bad, what to do, how many rows (or classes) and a few of them."""

    check: str  # "duplicates", "near_duplicates", "leakage_val", "leakage_test", "imbalance", "tiny_classes", ...
    severity: str  # "info", "warning" or "error" (errors fail `transferkit check` and raise_if_errors)
    message: str  # one sentence: what is wrong and how to fix it
    count: int  # rows affected (classes for imbalance / tiny_classes, labels for label_variants)
    examples: list[dict] = field(default_factory=list)  # a few cases: indices (0-based), short inputs, labels

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")


def _plain(value: Any) -> Any:
    """JSON-ready: NumPy scalars to Python, tuples to lists, dict keys to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


@dataclass
class CheckReport:
    """The problems found (errors first) and a summary: rows per split, classes, what was skipped and why."""

    problems: list[Problem]
    summary: dict

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return _plain({"ok": not self.has_errors, "problems": [asdict(p) for p in self.problems], **self.summary})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def raise_if_errors(self) -> None:
        errors = [p.message for p in self.problems if p.severity == "error"]
        if errors:
            raise DataError("The data checks found errors: " + " ".join(errors))


def _unreadable(splits: dict[str, ExampleSet], prints: dict[str, Fingerprints]) -> list[Problem]:
    skipped = [{"split": s, "file": note, "skipped": True} for s, data in splits.items() for note in data.skipped]
    failing = [{"split": s, "index": i, "file": why} for s, p in prints.items() for i, why in p.unreadable]
    if not skipped and not failing:
        return []
    if failing:
        message = (
            f"{len(failing)} file(s) cannot be opened"
            + (f" and {len(skipped)} were already left out as unreadable" if skipped else "")
            + ": fix or remove them, or train with --skip-bad-files (skip_bad_files=True) to leave them out."
        )
    else:
        message = f"{len(skipped)} unreadable file(s) were left out of the data: fix or remove them to use them."
    examples = (failing + skipped)[: dup.SHOWN + 2]
    return [Problem("unreadable", "error" if failing else "warning", message, len(failing) + len(skipped), examples)]


def _duplicates(train: ExampleSet, prints: Fingerprints, near: bool, notes: list[str]) -> list[Problem]:
    exact, close, complete = dup.duplicate_groups(prints, near)
    if not complete:
        notes.append(dup.SKIPPED[train.modality])
    problems = []
    if exact:
        count, clash = sum(len(g) - 1 for g in exact), dup.conflicting(train, exact)
        problems.append(
            Problem(
                "duplicates",
                "warning",
                f"{count} training row(s) repeat another row exactly ({len(exact)} group(s)"
                + (f", {clash} with conflicting labels" if clash else "")
                + "): drop the copies (pandas drop_duplicates) so they do not count twice"
                + (", and fix the labels where copies disagree." if clash else "."),
                count,
                [dup.group_example(train, g, same=True) for g in exact[: dup.SHOWN]],
            )
        )
    if close:
        count, clash = sum(len(g) - 1 for g in close), dup.conflicting(train, close)
        how = {
            "text": "the same text up to case, spacing and punctuation, or sharing most word pairs",
            "image": "the same picture resized, re-encoded or slightly edited, by perceptual hash",
            "audio": "the same samples stored in another file or format",
        }[train.modality]
        problems.append(
            Problem(
                "near_duplicates",
                "warning" if clash else "info",
                f"{count} training row(s) are near copies of another ({how}; {len(close)} group(s)"
                + (f", {clash} with conflicting labels" if clash else "")
                + "): check them and keep one of each.",
                count,
                [dup.group_example(train, g) for g in close[: dup.SHOWN]],
            )
        )
    return problems


def _leakage(train: ExampleSet, prints: dict, other: ExampleSet, split: str, strict: bool, near: bool, notes: list):
    matches, complete = dup.overlap(prints["train"], prints[split], near)
    if not complete and dup.SKIPPED[train.modality] not in notes:
        notes.append(dup.SKIPPED[train.modality])
    if not matches:
        return []
    name = SPLIT_NAMES[split]
    message = (
        f"{len(matches)} of {len(other)} {name} row(s) also appear in the training data (exactly or as near copies): "
        f"remove them from the {name} set (or from train), or its scores will be too optimistic."
    )
    examples = [dup.overlap_example(train, other, i, rows) for i, rows in list(matches.items())[: dup.SHOWN]]
    return [Problem(f"leakage_{split}", "error" if strict else "warning", message, len(matches), examples)]


def _classes(train: ExampleSet, min_class_size: int) -> list[Problem]:
    counts = train.class_counts()  # multilabel: rows carrying each label
    if not counts:
        return []
    problems = _numeric_labels(train) if train.task == "classification" else []
    largest = max(counts, key=counts.get)
    small = {label: n for label, n in counts.items() if n * IMBALANCE_RATIO < counts[largest]}
    if small:
        smallest = min(small, key=small.get)
        rows = [{"label": label, "rows": counts[label]} for label in (largest, *sorted(small, key=small.get))]
        problems.append(
            Problem(
                "imbalance",
                "warning",
                f"The largest class ({largest!r}, {counts[largest]} rows) is {counts[largest] / small[smallest]:.0f}x "
                f"the smallest ({smallest!r}, {small[smallest]} rows): collect more of the small classes (or sample the "
                "large ones down) and judge the model by balanced accuracy and macro F1, not accuracy.",
                len(small),
                rows[:10],
            )
        )
    tiny = {label: n for label, n in counts.items() if n < min_class_size}
    if tiny:
        problems.append(
            Problem(
                "tiny_classes",
                "warning",
                f"{len(tiny)} class(es) have fewer than {min_class_size} training rows, too few to learn or to judge: "
                "collect more examples, merge them into a related class, or drop them.",
                len(tiny),
                [{"label": label, "rows": n} for label, n in sorted(tiny.items(), key=lambda kv: kv[1])][:10],
            )
        )
    return problems


def _numeric_labels(train: ExampleSet) -> list[Problem]:
    from transferkit.data.labels import looks_like_regression

    if not looks_like_regression(train.labels or []):
        return []
    distinct = len(set(train.labels or []))
    message = (
        f"The labels look like numbers with many distinct values ({distinct} classes for {len(train)} rows): if they "
        "are a quantity to predict, train with --task regression (task='regression') instead of one class per value."
    )
    return [Problem("numeric_labels", "warning", message, distinct, [])]


def _label_variants(splits: dict[str, ExampleSet]) -> list[Problem]:
    spellings: dict[str, Counter] = {}
    for data in splits.values():
        for label in [one for row in data.labels or [] for one in (row if isinstance(row, tuple) else (row,))]:
            if isinstance(label, str):
                spellings.setdefault(" ".join(label.split()).casefold(), Counter())[label] += 1
    variants = [c for c in spellings.values() if len(c) > 1]
    if not variants:
        return []
    examples = [{"label": c.most_common(1)[0][0], "variants": dict(c.most_common())} for c in variants[:10]]
    return [
        Problem(
            "label_variants",
            "warning",
            f"{len(variants)} label(s) are written more than one way (differing only in case or spacing), so each "
            "spelling becomes its own class: write every label one way, e.g. df['label'].str.strip().str.lower().",
            len(variants),
            examples,
        )
    ]


def _truncation(splits: dict[str, ExampleSet], max_length: int, count_tokens: Callable) -> tuple[list, dict]:
    shares, cut, longest = {}, 0, []
    for split, data in splits.items():
        lengths = list(count_tokens(list(data.inputs)))
        if len(lengths) != len(data):
            raise ConfigError(
                f"count_tokens returned {len(lengths)} counts for {len(data)} texts; return one per text."
            )
        over = [i for i, n in enumerate(lengths) if n > max_length]
        shares[split], cut = len(over) / max(len(data), 1), cut + len(over)
        longest += [
            {"split": split, "index": i, "input": dup.short(data, i), "tokens": int(lengths[i])}
            for i in sorted(over, key=lambda i: -lengths[i])[:2]
        ]
    if not cut:
        return [], shares
    share = shares["train"]
    problem = Problem(
        "truncation",
        "warning" if max(shares.values()) >= TRUNCATION_WARNING else "info",
        f"{share:.0%} of training texts"
        + "".join(f", {shares[s]:.0%} of {SPLIT_NAMES[s]} texts" for s in ("val", "test") if s in shares)
        + f" are longer than {max_length} tokens and will be cut: raise max_length (up to the model's limit), or "
        "shorten or split the long texts.",
        cut,
        longest[: dup.SHOWN + 1],
    )
    return [problem], shares


def _validate(train: ExampleSet, others: dict[str, ExampleSet], min_class_size: int, max_length: int | None) -> None:
    if not isinstance(train, ExampleSet):
        raise DataError(f"check_data takes ExampleSets (see load_examples), got {type(train).__name__} for train.")
    for split, data in others.items():
        if not isinstance(data, ExampleSet):
            raise DataError(f"check_data takes ExampleSets (see load_examples), got {type(data).__name__} for {split}.")
        if data.modality != train.modality:
            raise DataError(
                f"The {SPLIT_NAMES[split]} data holds {data.modality} inputs but the training data holds "
                f"{train.modality} inputs ({data.source} vs {train.source}). Pass data of one kind."
            )
    if not isinstance(min_class_size, int) or min_class_size < 1:
        raise ConfigError(f"min_class_size must be a positive integer, got {min_class_size!r}.")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise ConfigError(f"max_length must be a positive integer (tokens) or None, got {max_length!r}.")


def check_data(
    train: ExampleSet,
    val: ExampleSet | None = None,
    test: ExampleSet | None = None,
    *,
    strict: bool = False,
    min_class_size: int = 5,
    max_length: int | None = None,
    count_tokens: Callable[[list[str]], list[int]] | None = None,
    near_duplicates: bool = True,
) -> CheckReport:
    """Check data before training: duplicates, near copies, overlap with val/test, classes, lengths, files, labels.

    Overlap with val/test is a warning, an error with strict=True. The truncation check runs for text when both
    `max_length` and `count_tokens` (texts -> token counts, e.g. from the backbone's tokenizer) are given.
    near_duplicates=False skips the near-copy check within train and the pairwise searches (word-shingle
    Jaccard, perceptual-hash distance); overlap with val/test then counts exact, normalised-text and identical
    perceptual-hash matches only.
    """
    splits = {name: data for name, data in (("train", train), ("val", val), ("test", test)) if data is not None}
    _validate(train, {k: v for k, v in splits.items() if k != "train"}, min_class_size, max_length)
    prints = {name: fingerprints(data) for name, data in splits.items()}
    notes: list[str] = []  # checks that were skipped or narrowed, and why
    problems = _unreadable(splits, prints) + _duplicates(train, prints["train"], near_duplicates, notes)
    for split in ("val", "test"):
        if split in splits:
            problems += _leakage(train, prints, splits[split], split, strict, near_duplicates, notes)
    problems += _classes(train, min_class_size) + _label_variants(splits)
    shares = None
    if train.labels is None:
        notes.append("no labels found: class checks skipped (name the label column with --label-column / label=)")
    elif train.task == "regression":
        notes.append("regression targets: class checks (balance, tiny classes, label spellings) do not apply")
    if train.modality != "text" or max_length is None or count_tokens is None:
        if train.modality == "text":
            notes.append("truncation not checked: it needs max_length and count_tokens (a backbone's tokenizer)")
    else:
        truncation, shares = _truncation(splits, max_length, count_tokens)
        problems += truncation
    problems.sort(key=lambda p: -SEVERITIES.index(p.severity))
    return CheckReport(problems, _summary(splits, shares, max_length, notes))


def _summary(splits: dict[str, ExampleSet], shares: dict | None, max_length: int | None, notes: list[str]) -> dict:
    train = splits["train"]
    counts = train.class_counts()
    return {
        "modality": train.modality,
        "task": train.task,
        "rows": {name: len(data) for name, data in splits.items()},
        "skipped": {name: len(data.skipped) for name, data in splits.items() if data.skipped},
        "classes": len(counts) if counts else None,
        "class_counts": counts,
        "target": _target_summary(train),
        "truncated": shares,
        "max_length": max_length,
        "notes": notes,
    }


def _target_summary(train: ExampleSet) -> dict[str, float] | None:
    if train.task != "regression" or not train.labels:
        return None
    import numpy as np

    values = np.asarray(train.labels, dtype=float)
    stats = {"min": values.min(), "max": values.max(), "mean": values.mean(), "std": values.std()}
    return {k: round(float(v), 6) for k, v in stats.items()}


def _rows(n: int) -> str:
    return f"{n} row{'s' * (n != 1)}"


def _describe(example: dict[str, Any]) -> str:
    """One example as a line: rows, inputs and labels when it has them, else key=value pairs."""
    parts, rest = [], dict(example)
    if "file" in rest:  # an unreadable file: where, and why
        where = f"{rest.get('split', '')} row {rest['index'] + 1}" if "index" in rest else rest.get("split", "")
        return f"{where}{' (left out)' if rest.get('skipped') else ''}: {rest['file']}".strip()
    if "indices" in rest:
        parts.append("rows " + ", ".join(str(i + 1) for i in rest.pop("indices")))
    if "index" in rest:
        parts.append(f"{rest.pop('split', '')} row {rest.pop('index') + 1}".strip())
    for key in ("input", "inputs"):
        if key in rest:
            value = rest.pop(key)
            parts.append(" | ".join(json.dumps(v, ensure_ascii=False) for v in (value if key == "inputs" else [value])))
    if "label" in rest and "variants" not in rest and "rows" not in rest:
        parts.append(f"[{rest.pop('label')}]")
    if "labels" in rest:
        parts.append("[" + ", ".join(map(str, rest.pop("labels"))) + "]")
    if "train_indices" in rest:
        labels = rest.pop("train_labels", [])
        parts.append("= train rows " + ", ".join(str(i + 1) for i in rest.pop("train_indices")))
        if labels:
            parts.append("[" + ", ".join(map(str, labels)) + "]")
    if set(rest) == {"label", "rows"}:  # a class and its size
        return f"{rest['label']!r}: {_rows(rest['rows'])}"
    if "variants" in rest:
        rest.pop("label", None)
        return "; ".join(f"{k!r}: {_rows(n)}" for k, n in rest.pop("variants").items())
    return "  ".join(parts + [f"{k}={v}" for k, v in rest.items()])


def format_check_report(report: CheckReport) -> str:
    """The report as plain terminal text: a header, one block per problem, and a verdict line."""
    summary = report.summary
    rows = ", ".join(f"{name} {n} rows" for name, n in summary.get("rows", {}).items())
    kind = "labels" if summary.get("task") == "multilabel" else "classes"
    classes = f", {summary['classes']} {kind}" if summary.get("classes") else ""
    lines = [f"{summary.get('modality', 'data')} data: {rows}{classes}"]
    lines += [f"note: {note}" for note in summary.get("notes", [])]
    if not report.problems:
        return "\n".join([*lines, "OK: no problems found"])
    for problem in report.problems:
        lines.append("")
        lines.append(f"{problem.severity.upper()}  {problem.check} ({problem.count}): {problem.message}")
        lines += [f"    {_describe(example)}" for example in problem.examples]
    tally = Counter(p.severity for p in report.problems)
    lines.append("")
    lines.append(
        ", ".join(f"{tally[s]} {s}{'s' if tally[s] != 1 and s != 'info' else ''}" for s in SEVERITIES[::-1] if tally[s])
    )
    return "\n".join(lines)
