"""`transferkit predict`: labels (or label sets, or numbers) for texts, images, audio or feature rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from transferkit.data.chunks import DEFAULT_CHUNK_ROWS
from transferkit.errors import TransferkitError
from transferkit.predictions import input_column, prediction_frame

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
    pr.add_argument(
        "--chunk-rows",
        type=int,
        default=DEFAULT_CHUNK_ROWS,
        help="with --data FILE --output: rows read, predicted and written at a time (memory stays bounded by it)",
    )
    add_runtime_argument(pr)
    add_trust_argument(pr)
    from transferkit.cli_distributed import add_nproc_argument

    add_nproc_argument(pr)
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


def add_trust_argument(parser) -> None:
    """--trust-remote-code for the commands that load a saved run or a model directory (off unless given)."""
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the run's model run Python code of its own (auto_map); needed again for runs trained with it. "
        "Only for code you trust",
    )


def _numbers(row: str) -> list[float]:
    try:
        return [float(v) for v in row.replace(";", ",").split(",")]
    except ValueError:
        raise TransferkitError(
            f"Cannot read {row!r} as a feature row: give comma-separated numbers, e.g. 0.5,1.2,3"
        ) from None


def _is_table(source: Any) -> bool:
    """A table file (CSV, TSV, JSON lines, Parquet, ...); not an image folder or a .npy/.npz array file."""
    from transferkit.data.tables import SUFFIXES

    return isinstance(source, Path) and source.suffix.lower() in SUFFIXES and not source.is_dir()


def cmd_predict(args: argparse.Namespace) -> int:
    import transferkit as tk

    if not args.inputs and not args.data:
        raise TransferkitError(
            'Nothing to predict: give inputs (transferkit predict RUN "some text", or image paths) or --data FILE/FOLDER.'
        )
    model = tk.load(args.run, runtime=args.runtime, trust_remote_code=args.trust_remote_code)
    if hasattr(model, "generate"):  # a generative run: predicting is generating
        from transferkit.cli_generate import print_generations

        args.prompt_column = args.text_column
        return print_generations(model, list(args.inputs) if args.inputs else Path(args.data), args, {})
    source = list(args.inputs) if args.inputs else Path(args.data)
    if args.inputs and model.modality_ == "vector":  # rows given on the command line: "0.1,2.5,3"
        source = [_numbers(row) for row in args.inputs]

    if args.output and _is_table(source):  # streamed: read, predict and write a chunk at a time
        rows = model.predict_file(source, args.output, chunk_rows=args.chunk_rows, text=args.text_column)
        print(f"wrote {rows} predictions to {args.output}", file=sys.stderr)
        return 0
    inputs = model.read_inputs(source, text=args.text_column)
    column, shown = input_column(model, inputs)  # "text", "image", "audio"; feature vectors by row number
    frame, lines = prediction_frame(model, inputs, column, shown)
    if args.output:
        from transferkit.data.table_writer import table_writer

        with table_writer(args.output) as sink:
            sink.write(frame)
        print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    elif args.json:
        print(frame.to_json(orient="records", lines=True, force_ascii=False))
    else:
        for line, shown_input in zip(lines, frame[column]):
            print(f"{line}\t{shown_input[:100]}")
    return 0
