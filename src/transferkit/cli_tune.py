"""`transferkit tune`: search a strategy's options with Optuna, then save the best run (see tuning/study.py)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from transferkit.errors import TransferkitError

EXAMPLES = """examples:
  transferkit tune --data train.csv --out runs/tuned                       (full fine-tuning, 30 trials)
  transferkit tune --data train.csv --val dev.csv --strategy probe --trials 50 --out runs/probe-tuned
  transferkit tune --data train.csv --strategy lora --epochs 3 --out runs/lora   (--epochs pinned: not searched)
  transferkit tune --data train.csv --out runs/tuned --trials 40     (the same command again: resumes the study)
  transferkit tune --data train.csv --out runs/tuned --timeout 3600       (no new trial starts after an hour)
  transferkit tune --data train.csv --out runs/a --storage postgresql://user@db/optuna --study-name reviews
      (the same command on several machines: they share one study; each saves the best run to its own --out)"""

ABOUT = """Each trial fits --strategy with options drawn by Optuna's TPE sampler (seeded with --seed), on the same data
and seed, and is scored on validation: --val, or the fit's stratified hold-out of --val-fraction of --data
(the default 10%; never the test set). Each epoch's score goes to a median pruner: after 5 finished trials, a
trial whose score trails the median of finished trials at the same epoch is stopped (its first epoch is always
run). Probe trials read backbone features from the feature cache, so they cost little after the first.
The study is stored in SQLite at --out/tune.db: run the same command after an interruption and only the
missing trials run (finished and pruned ones count, failed ones are redone). --storage takes any Optuna RDB
URL to share one study between machines. At the end the best options are fit again (same data, same seed)
and saved to --out as a normal run; its transferkit.json holds a "tuning" block with every trial."""


def _space_lines() -> str:
    from transferkit.tuning.spaces import SPACES

    lines = ["searched per --strategy (an option you pass is pinned: every trial uses it, it is not searched):"]
    for strategy, space in SPACES.items():
        text = ", ".join(f"{name} {param.describe()}" for name, param in space.items())
        lines += textwrap.wrap(text, 110, initial_indent=f"  {strategy:6}  ", subsequent_indent=" " * 10)
    return "\n".join(lines)


def add_parser(sub) -> None:
    from transferkit.cli import _add_config_flags

    tu = sub.add_parser(
        "tune",
        help="search a strategy's options with Optuna (pruned, resumable) and save the best run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"{EXAMPLES}\n\n{_space_lines()}\n\n{ABOUT}",
    )
    tu.add_argument("--data", help="training data file or folder, as for `transferkit fit`")
    tu.add_argument("--val", help="validation data trials are scored on (default: hold out val_fraction of --data)")
    tu.add_argument("--out", help="run directory (required): holds the study (tune.db) and, at the end, the best run")
    tu.add_argument("--trials", type=int, default=30, help="finished trials the study should have (default: 30)")
    tu.add_argument("--timeout", type=float, help="seconds after which no new trial starts (default: no limit)")
    tu.add_argument(
        "--storage",
        help="Optuna RDB URL for the study, e.g. postgresql://user@host/db (default: sqlite:///OUT/tune.db)",
    )
    tu.add_argument("--study-name", help="study name inside the storage (default: the name of --out)")
    tu.add_argument("--config", help="YAML/JSON file with any of the options below (flags override it)")
    tu.add_argument("--json", action="store_true", help="print the tuning summary as JSON instead of a table")
    _add_config_flags(tu)
    tu.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from transferkit.cli import _config_values
    from transferkit.tuning import tune
    from transferkit.tuning.result import format_trials_table

    values = _config_values(args)
    if not args.data:
        raise TransferkitError("No training data: pass --data train.csv (or set `data:` in the --config file).")
    if not args.out:
        raise TransferkitError("No output directory: pass --out runs/NAME (the study and the best run go there).")
    result = tune(
        args.data,
        val=args.val,
        trials=args.trials,
        storage=args.storage,
        study_name=args.study_name,
        out=args.out,
        timeout=args.timeout,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        **values,
    )
    if args.json:
        print(json.dumps({**result.to_dict(), "path": str(result.path)}, indent=2))
    else:
        print(format_trials_table(result))
    print(f"saved the best run (trial {result.best_trial}) to {result.path}", file=sys.stderr)
    return 0
