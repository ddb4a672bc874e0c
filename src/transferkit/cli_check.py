"""`transferkit check`: look for problems in the data before training (duplicates, leakage, imbalance, ...)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EPILOG = """examples:
  transferkit check --data train.csv
  transferkit check --data train.csv --val dev.csv --test test.csv --strict
  transferkit check --data reviews.jsonl --text-column body --label-column stars --backbone minilm
  transferkit check --data photos/ --test photos_test/ --json

Checks: exact and near duplicates within --data; rows of --val / --test that repeat a training row (leakage:
normalised text, perceptual hash for images, decoded samples for audio, identical rows for vectors); class
imbalance; classes with fewer than --min-class-size rows; labels that differ only in case or spacing;
unreadable image or audio files; with a text --backbone, the share of texts longer than its max length.
Exit status: 0 no errors, 1 errors (unreadable files, or leakage with --strict), 2 the data cannot be read."""


def add_parser(sub) -> None:
    ch = sub.add_parser(
        "check",
        help="check data for duplicates, train/test leakage, imbalance and other problems before training",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    ch.add_argument(
        "--data", required=True, help="training data: a file (.csv/.tsv/.jsonl/.json/.parquet/.npz) or a class folder"
    )
    ch.add_argument("--val", help="validation data, checked for rows that repeat training rows")
    ch.add_argument("--test", help="test data, checked for rows that repeat training rows")
    ch.add_argument("--text-column", help="text column (guessed when named text/sentence/review/...)")
    ch.add_argument("--label-column", help="label column (guessed when named label/class/category/...)")
    ch.add_argument(
        "--task",
        choices=("classification", "multilabel", "regression"),
        default="classification",
        help="how labels are read: one class, a set of labels (multilabel) or a number (regression)",
    )
    ch.add_argument("--label-separator", default="|", help="multilabel: separator inside a label cell (default: |)")
    ch.add_argument("--strict", action="store_true", help="count overlap with --val / --test as an error (exit 1)")
    ch.add_argument(
        "--min-class-size", type=int, default=5, help="flag classes with fewer training rows than this (default: 5)"
    )
    ch.add_argument(
        "--backbone",
        help="text backbone (minilm, a run or model directory) whose tokenizer measures the share of texts longer "
        "than its max length; only the tokenizer loads. Without it, truncation is not checked",
    )
    ch.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    ch.set_defaults(func=cmd_check)


def _load(path: str, args: argparse.Namespace, like: Any = None):
    from transferkit.data import load_examples

    options: dict[str, Any] = {"text": args.text_column, "label": args.label_column, "need_labels": False}
    options |= {"task": args.task, "label_separator": args.label_separator}
    if like is not None:  # val/test are read as the training data was: same kind, same feature columns
        options["modality"] = like.modality
        if like.modality == "vector" and like.columns:
            options["features"] = list(like.columns)
    return load_examples(path, skip_bad_files=True, **options)


def _token_counter(backbone: str | None, modality: str) -> dict[str, Any]:
    if backbone is None or modality != "text":
        if backbone is not None:
            print(f"note: --backbone is ignored for {modality} data (no tokens to count)", file=sys.stderr)
        return {}
    from transferkit.backbones.text_tokenizer import token_counter

    counter = token_counter(backbone)
    if counter is None:
        print(f"note: {backbone!r} is not a text backbone; truncation is not checked", file=sys.stderr)
        return {}
    count_tokens, max_length = counter
    return {"count_tokens": count_tokens, "max_length": max_length}


def cmd_check(args: argparse.Namespace) -> int:
    from transferkit.data.checks import check_data, format_check_report

    train = _load(args.data, args)
    val = _load(args.val, args, like=train) if args.val else None
    test = _load(args.test, args, like=train) if args.test else None
    report = check_data(
        train,
        val,
        test,
        strict=args.strict,
        min_class_size=args.min_class_size,
        **_token_counter(args.backbone, train.modality),
    )
    print(report.to_json() if args.json else format_check_report(report))
    return 1 if report.has_errors else 0
