"""`transferkit export`: a run as an ONNX model (backbone + head), checked against PyTorch before it counts."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  transferkit export runs/demo --format onnx
  transferkit export runs/demo --format onnx --quantize int8 --data val.csv
  transferkit predict runs/demo "what a great film" --runtime onnx

Writes RUN/model.onnx: the backbone and head as one graph (dynamic batch axis, and sequence axis for text)
whose output is the head's raw outputs; preprocessing and decoding stay in transferkit. Before the file counts,
PyTorch and ONNX Runtime predict the same held-out examples (--data, else the run's own validation rows read
again from the recorded files): max |Δprob| <= 1e-4 and identical labels (regression: relative |Δvalue| <= 1e-4).
A failed check exits with status 2, keeps the file aside as model.onnx.failed and records the numbers.
LoRA adapters are merged into the exported weights. --quantize int8 adds model.int8.onnx (ONNX Runtime dynamic
quantisation) and reports the task's score (accuracy, subset accuracy or R²) of fp32 vs int8 on labelled
validation data. Everything is recorded under "onnx" in RUN/transferkit.json."""


def add_parser(sub) -> None:
    ex = sub.add_parser(
        "export",
        help="export a run as an ONNX model, checked against PyTorch (optionally int8-quantised)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    ex.add_argument("run", help="run directory written by `transferkit fit`")
    ex.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default: onnx)")
    ex.add_argument("--quantize", choices=("int8",), help="also write an int8 model and report its score change")
    ex.add_argument(
        "--data", help="held-out examples to check on (labelled for --quantize); default: the run's val rows"
    )
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    ex.add_argument("--parity-examples", type=int, default=256, help="check parity on the first N examples")
    ex.add_argument("--max-rows", type=int, default=2000, help="score fp32 vs int8 on the first N rows")
    ex.add_argument("--json", action="store_true", help="print the manifest's onnx record as JSON")
    from transferkit.cli_predict import add_trust_argument

    add_trust_argument(ex)
    ex.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from transferkit.export.onnx_export import OnnxExportConfig, export_onnx

    config = OnnxExportConfig(
        opset=args.opset, quantize=args.quantize, parity_examples=args.parity_examples, max_rows=args.max_rows
    )
    record = export_onnx(
        args.run,
        data=args.data,
        config=config,
        log=lambda line: print(line, file=sys.stderr),
        trust_remote_code=args.trust_remote_code,
    )
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(format_record(args.run, record))
    return 0


def format_record(run: str, record: dict) -> str:
    parity = record["parity"]
    if "max_abs_prob_diff" in parity:
        check = f"max |Δprob| {parity['max_abs_prob_diff']:.2e}, labels identical: {parity['labels_identical']}"
    else:
        check = f"max relative |Δvalue| {parity['max_rel_value_diff']:.2e}"
    lines = [
        f"wrote {run}/{record['file']} ({record['bytes'] / 1e6:.1f} MB, opset {record['opset']}"
        f"{', LoRA merged' if record['lora_merged'] else ''})",
        f"parity with PyTorch on {parity['examples']} examples: passed ({check})",
        f"  examples: {parity['examples_source']}",
    ]
    int8 = record.get("int8")
    if int8:
        s = int8["score"]
        lines.append(
            f"wrote {run}/{int8['file']} ({int8['bytes'] / 1e6:.1f} MB): {s['metric']} fp32 {s['fp32']:.4f} -> "
            f"int8 {s['int8']:.4f} ({s['change']:+.4f}) on {s['examples']} validation rows"
        )
    lines.append(f"predict with it: transferkit predict {run} INPUTS... --runtime onnx{'-int8' if int8 else ''}")
    return "\n".join(lines)
