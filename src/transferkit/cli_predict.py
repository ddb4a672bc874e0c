"""`transferkit predict`: labels (or label sets, or numbers) for texts, images, audio or feature rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from transferkit.errors import TransferkitError

EPILOG = """examples:
  transferkit predict runs/demo "what a great film" "awful"
  transferkit predict runs/demo --data new.csv --output preds.csv
  transferkit predict runs/demo "what a great film" --runtime onnx     (after `transferkit export runs/demo`)

Classification prints label, probability and input; multi-label runs print the predicted labels joined by
the run's --label-separator (each label at or above its tuned threshold); regression runs print the value."""


def add_parser(sub) -> None:
    pr = sub.add_parser(
        "predict",
        help="predict labels for texts, images or a file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    pr.add_argument("run", help="run directory written by `transferkit fit`")
    pr.add_argument("inputs", nargs="*", help="texts (text models) or image paths (image models) to classify")
    pr.add_argument("--data", help="file of inputs, or a folder of images, to classify")
    pr.add_argument("--text-column", help="text column of --data (guessed when obvious)")
    pr.add_argument("--output", help="write predictions to this .csv or .parquet file")
    pr.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_runtime_argument(pr)
    pr.set_defaults(func=cmd_predict)


def add_runtime_argument(parser) -> None:
    """--runtime for the commands that load a run to predict (predict, serve)."""
    from transferkit.export.onnx_runtime import RUNTIMES

    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="torch",
        help="predict with PyTorch, or ONNX Runtime on the run's model.onnx / model.int8.onnx (transferkit export)",
    )


def _numbers(row: str) -> list[float]:
    try:
        return [float(v) for v in row.replace(";", ",").split(",")]
    except ValueError:
        raise TransferkitError(
            f"Cannot read {row!r} as a feature row: give comma-separated numbers, e.g. 0.5,1.2,3"
        ) from None


def prediction_frame(model, inputs: list[Any], column: str, shown: list[str]):
    """(predictions as a DataFrame, the one-line form of each): label + probabilities, label sets or values."""
    import pandas as pd

    task = model.task_
    if task.name == "regression":
        values = model.predict(inputs)
        frame = pd.DataFrame({column: shown, "prediction": values})
        return frame, [f"{v:.6g}" for v in values]
    probabilities = model.predict_proba(inputs)
    labels = model.classes_
    if task.name == "multilabel":
        separator = model.config_.task.label_separator
        chosen = [separator.join(map(str, row)) for row in task.predict(probabilities)]
        frame = pd.DataFrame({column: shown, "labels": chosen})
        lines = [c or "(none)" for c in chosen]
    else:
        top = probabilities.argmax(axis=1)
        best = probabilities.max(axis=1)
        frame = pd.DataFrame({column: shown, "label": [labels[i] for i in top], "probability": best})
        lines = [f"{labels[i]}\t{p:.3f}" for i, p in zip(top, best)]
    for j, name in enumerate(labels):
        frame[f"p_{name}"] = probabilities[:, j]
    return frame, lines


def cmd_predict(args: argparse.Namespace) -> int:
    import transferkit as tk

    if not args.inputs and not args.data:
        raise TransferkitError(
            'Nothing to predict: give inputs (transferkit predict RUN "some text", or image paths) or --data FILE/FOLDER.'
        )
    model = tk.load(args.run, runtime=args.runtime)
    if hasattr(model, "generate"):  # a generative run: predicting is generating
        from transferkit.cli_generate import print_generations

        args.prompt_column = args.text_column
        return print_generations(model, list(args.inputs) if args.inputs else Path(args.data), args, {})
    source = list(args.inputs) if args.inputs else Path(args.data)
    if args.inputs and model.modality_ == "vector":  # rows given on the command line: "0.1,2.5,3"
        source = [_numbers(row) for row in args.inputs]

    inputs = model.read_inputs(source, text=args.text_column)
    vectors = model.modality_ == "vector"
    shown = [str(i + 1) if vectors else str(x) for i, x in enumerate(inputs)]
    column = "row" if vectors else model.modality_  # "text" or "image"; feature vectors by row number
    frame, lines = prediction_frame(model, inputs, column, shown)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        writer = frame.to_parquet if str(args.output).endswith(".parquet") else frame.to_csv
        writer(args.output, index=False)
        print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    elif args.json:
        print(frame.to_json(orient="records", lines=True, force_ascii=False))
    else:
        for line, shown_input in zip(lines, frame[column]):
            print(f"{line}\t{shown_input[:100]}")
    return 0
