"""`transferkit rank`: which pretrained backbone suits this data, before training any of them."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  transferkit rank --data train.csv --backbones minilm,random:minilm,tfidf
  transferkit rank --data photos/ --backbones efficientnet-lite0,efficientnet-lite2,random:efficientnet-lite0,pixels
  transferkit rank --data clips/ --backbones whisper-tiny,resemblyzer,waveform --by probe --json

Each candidate's frozen features are extracted once (cached for later ranks and probes) and scored by LogME
(You et al., ICML 2021: the evidence of a Bayesian linear model on the features; no training, higher is
better) and by a k-fold linear probe (accuracy; micro-F1 for --task multilabel, R² for --task regression).
Candidates: any backbone (`transferkit backbones`, a model directory, a saved run), random:<backbone> (same
architecture, fresh weights: what pretraining buys), and the classical baseline of the data's kind: tfidf
(text), pixels (images), waveform (audio), raw (feature vectors). At most --max-rows rows are used (stratified)."""


def add_parser(sub) -> None:
    from transferkit.cli import _add_config_flags

    rank = sub.add_parser(
        "rank",
        help="rank candidate backbones for your data before training (LogME + k-fold linear probe)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    rank.add_argument("--data", required=True, help="labelled training data (file or folder)")
    rank.add_argument(
        "--backbones",
        required=True,
        help="comma-separated candidates: backbone names or paths, random:<backbone>, tfidf/pixels/waveform/raw",
    )
    rank.add_argument("--folds", type=int, default=5, help="folds of the linear probe (default: 5)")
    rank.add_argument("--max-rows", type=int, default=2000, help="rank on at most this many rows, stratified")
    rank.add_argument("--by", choices=("logme", "probe"), default="logme", help="sort by LogME or the probe's score")
    rank.add_argument("--config", help="YAML/JSON file with options shaping the features (text column, pooling...)")
    rank.add_argument("--json", action="store_true", help="print the ranking as JSON")
    _add_config_flags(rank)
    rank.set_defaults(func=cmd_rank)


def cmd_rank(args: argparse.Namespace) -> int:
    from transferkit.cli import _config_values
    from transferkit.selection.rank import format_rank_table, rank_backbones

    values = _config_values(args)
    values.pop("backbone", None)
    candidates = [name.strip() for name in args.backbones.split(",") if name.strip()]
    result = rank_backbones(
        args.data,
        candidates,
        folds=args.folds,
        max_rows=args.max_rows,
        by=args.by,
        log=lambda line: print(line, file=sys.stderr),
        **values,
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_rank_table(result))
    return 0
