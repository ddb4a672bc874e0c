"""`transferkit report` (regenerate a run's report.html) and `transferkit runs compare` (runs side by side)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from transferkit.errors import TransferkitError

EPILOG_REPORT = """examples:
  transferkit report runs/demo                 (writes runs/demo/report.html and prints its path)
  transferkit evaluate runs/demo --data test.csv && transferkit report runs/demo

The page is self-contained (figures and example images/audio inlined), so it opens offline and can be
mailed or archived: learning curves, confusion matrix, per-class scores, reliability diagram, the worst
misclassified examples, data checks, the configuration and the full manifest."""

EPILOG_COMPARE = """examples:
  transferkit runs compare runs/*
  transferkit runs compare runs/probe runs/lora --json
  transferkit runs compare runs/* --csv runs.csv

One row per run: task, modality, backbone, strategy, trainable parameters, training rows, wall time, the
best validation score and each evaluation's accuracy and macro-F1 with 95% intervals (exact match and
token F1 for generative runs). Directories that are not runs are listed as skipped."""


def add_parser(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    report = sub.add_parser(
        "report",
        help="write a run's report.html (plots, metrics, worst examples)",
        epilog=EPILOG_REPORT,
        formatter_class=fmt,
    )
    report.add_argument("run", help="run directory written by `transferkit fit`")
    report.set_defaults(func=cmd_report)

    runs = sub.add_parser(
        "runs",
        help="work with several run directories (see `transferkit runs compare --help`)",
        epilog="example:\n  transferkit runs compare runs/*",
        formatter_class=fmt,
    )
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="SUBCOMMAND", required=True, help="what to do")
    compare = runs_sub.add_parser(
        "compare", help="print a table of runs side by side", epilog=EPILOG_COMPARE, formatter_class=fmt
    )
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (non-runs are skipped)")
    compare.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    compare.add_argument("--csv", metavar="FILE", help="also write the rows to this CSV file")
    compare.set_defaults(func=cmd_runs_compare)


def cmd_report(args: argparse.Namespace) -> int:
    from transferkit.report.html import build_report

    print(build_report(args.run))
    return 0


def write_report(run_dir: str | Path) -> Path:
    """Refresh a run's report.html after `fit` or `evaluate`, and say where it is."""
    from transferkit.report.html import build_report

    path = build_report(run_dir)
    print(f"wrote report to {path}", file=sys.stderr)
    return path


def _write_csv(rows: list[dict], path: str) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}", file=sys.stderr)


def cmd_runs_compare(args: argparse.Namespace) -> int:
    from transferkit.report.compare import compare_runs, format_compare_table

    rows = compare_runs([Path(p) for p in args.runs])
    if all("note" in row for row in rows):
        raise TransferkitError(
            f"None of {', '.join(args.runs)} is a transferkit run directory (each holds a transferkit.json). "
            "Pass --out directories of `transferkit fit`."
        )
    if args.csv:
        _write_csv(rows, args.csv)
    print(json.dumps(rows, indent=2) if args.json else format_compare_table(rows))
    return 0
