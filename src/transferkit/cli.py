"""The `transferkit` command. Each subcommand parses flags and calls the public API; no logic lives here."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

from transferkit.config import SECTIONS
from transferkit.errors import TransferkitError

EPILOG_FIT = """examples:
  transferkit fit --data train.csv --out runs/demo
  transferkit fit --data train.csv --val dev.csv --test test.csv --backbone minilm --strategy probe --out runs/probe
  transferkit fit --config run.yaml --epochs 5 --out runs/x      (flags override the YAML file)
  transferkit fit --data reviews.jsonl --text-column body --label-column stars --backbone ./my-bert --out runs/y
  transferkit fit --data train.csv --strategy lora --lora-r 16 --merge-adapters --out runs/lora
  transferkit fit --data few.csv --strategy contrastive --out runs/few   (8-64 examples per class: pairs, then a head)
  transferkit fit --data train.csv --out runs/x --resume       (continue after an interruption)
  transferkit fit --data train.csv --out runs/x --nproc 2      (2 processes, data-parallel; same result as 1)
  torchrun --nproc-per-node 4 -m transferkit fit --data train.csv --out runs/x --fsdp --mixed-precision bf16
  transferkit fit --data photos/ --strategy lp-ft --out runs/photos          (images: a folder per class)
  transferkit fit --data clips/ --strategy probe --out runs/digits           (audio: a folder per class)
  transferkit fit --data source.npz --backbone mlp:1000-128 --out runs/src   (vectors: X, y in an .npz)
  transferkit fit --data new.npz --backbone runs/src --strategy probe --out runs/new  (a saved run as base)
  transferkit fit --task multilabel --data tagged.csv --label-separator , --out runs/tags   (label sets: "a,b")
  transferkit fit --task regression --data prices.csv --label-column price --out runs/price  (a numeric target)
  transferkit fit --task generation --data pairs.jsonl --test held_out.jsonl --out runs/qa   (LoRA on SmolLM2)

Data: CSV, TSV, JSONL/JSON or Parquet with a text and a label column (guessed when named text/sentence/
review and label/class/...); an image or audio folder (<class>/*.png, <class>/*.wav) or a table of paths;
vectors (.npz with X and y, .npy, or a table of numeric columns); for --task generation, prompt/response pairs
(or instruction/input/output, or chat `messages`). --task multilabel reads label lists or separated labels
(a sigmoid per label, thresholds tuned on validation); --task regression reads numbers (MSE or Huber loss on
standardised targets). Without --val, 10% of the training rows are held out for early stopping.
Strategies (see `transferkit strategies`): probe, freeze, lora, full, lp-ft, contrastive (few-shot). Checkpoints are
written into --out every epoch (and every --checkpoint-steps), so an interrupted run continues with --resume.
The run directory holds weights (safetensors), the backbone's config + tokenizer and transferkit.json, and
loads in plain transformers: AutoModelForSequenceClassification.from_pretrained("runs/demo")."""


def _field_help(cls: type) -> dict[str, str]:
    """The why-comment after each dataclass field: the config's one source of documentation."""
    helps, wrapped = {}, None
    for line in inspect.getsource(cls).splitlines():
        match = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.+)$", line)
        if match:
            helps[match.group(1)] = match.group(2).strip()
        elif wrapped and (comment := re.search(r"#\s*(.+)$", line)):  # `name: type = (\n default  # why\n)`
            helps[wrapped] = comment.group(1).strip()
        opening = re.match(r"\s+(\w+): [^=]+= \($", line)
        wrapped = opening.group(1) if opening else None
    return helps


def _parse_value(kind: str):
    base = kind.replace(" | None", "").strip()
    convert = {"int": int, "float": float, "str": str}.get(base, str)
    nullable = "None" in kind

    def parse(text: str):
        if nullable and text.lower() in ("none", "null", "off"):
            return None
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {base}{' or none' if nullable else ''}, got {text!r}") from None

    parse.__name__ = base
    return parse


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} options")
        helps = _field_help(cls)
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            default = f.default if f.default is not dataclasses.MISSING else None
            text = f"{helps.get(f.name, '')} (default: {default})"
            if f.type == "bool":
                group.add_argument(
                    flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text
                )
            else:
                group.add_argument(
                    flag,
                    dest=f.name,
                    type=_parse_value(str(f.type)),
                    default=argparse.SUPPRESS,
                    metavar=f.name.upper(),
                    help=text,
                )


def _config_values(args: argparse.Namespace) -> dict[str, Any]:
    from transferkit.config import RunConfig, load_config_file

    values = load_config_file(args.config) if args.config else {}
    values.update({k: v for k, v in vars(args).items() if k in RunConfig.valid_keys()})
    for key in ("data", "val", "test", "out"):  # these may also come from the config file
        if getattr(args, key, None) is None and key in values:
            setattr(args, key, values.pop(key))
        values.pop(key, None)
    return values


def _print_eval(metrics: dict[str, Any], as_json: bool) -> None:
    from transferkit.evaluation.metrics import format_metrics_table

    if as_json:
        print(json.dumps(metrics, indent=2))
    elif metrics.get("task") == "multilabel":
        from transferkit.evaluation.multilabel_metrics import format_multilabel_table

        print(format_multilabel_table(metrics))
    elif metrics.get("task") == "regression":
        from transferkit.evaluation.regression_metrics import format_regression_table

        print(format_regression_table(metrics, metrics.get("mean_baseline")))
    elif metrics.get("task") == "generation":
        from transferkit.generation.metrics import format_generation_table

        print(format_generation_table(metrics["models"]))
        for example in metrics["examples"]:
            print("\n" + "\n".join(f"{k:>10}: {str(v)[:200]}" for k, v in example.items()))
    else:
        print(format_metrics_table(metrics, metrics.get("majority_baseline")))


HEADLINE_KEYS = (
    *("task", "n", "accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "ece"),
    *("micro_f1", "subset_accuracy", "hamming_loss", "mae", "rmse", "r2", "ci95"),
)


def _write_eval(run_dir: Path, data_path: str, metrics: dict[str, Any]) -> Path:
    from transferkit.export.artifact import read_manifest, update_manifest
    from transferkit.export.atomic import write_bytes

    path = run_dir / f"eval_{Path(data_path).stem}.json"
    source = str(Path(data_path).resolve()) if Path(data_path).exists() else str(data_path)
    write_bytes(path, json.dumps({"data": source, **metrics}, indent=2) + "\n")
    recorded = read_manifest(run_dir).get("metrics") or {}
    if metrics.get("task") == "generation":  # each model's scores, without the generated texts
        headline = {
            name: {k: v for k, v in row.items() if k != "predictions"} for name, row in metrics["models"].items()
        }
    else:
        keys = HEADLINE_KEYS
        headline = {k: metrics[k] for k in keys if k in metrics}
    recorded[Path(data_path).stem] = headline
    update_manifest(run_dir, {"metrics": recorded})
    return path


def cmd_fit(args: argparse.Namespace) -> int:
    import transferkit as tk
    from transferkit.cli_distributed import fit_worker, release_workers
    from transferkit.cli_report import write_report
    from transferkit.export.artifact import discard_unstarted_run, prepare_run_dir
    from transferkit.training.run_lock import run_lock

    values = _config_values(args)
    if not args.data:
        raise TransferkitError("No training data: pass --data train.csv (or set `data:` in the --config file).")
    if not args.out:
        raise TransferkitError("No output directory: pass --out runs/NAME (where the trained model is saved).")
    from transferkit.training.distributed import is_main

    if not is_main():  # a worker of a multi-process fit: rank 0 holds the lock and writes; this one trains
        return fit_worker(args, values)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(run_lock(args.out))  # one fit per --out at a time; a killed holder's lock dies with it
            checkpoints = prepare_run_dir(args.out, args.overwrite, args.resume)  # fail before training, not after
        except BaseException:
            release_workers(False)  # the other processes of a multi-process fit stop too
            raise
        release_workers(True)
        try:
            model = tk.FineTuner(**values).fit(args.data, val=args.val, checkpoint_dir=checkpoints, resume=args.resume)
        except BaseException:
            discard_unstarted_run(args.out)  # a fit that failed before its first checkpoint left nothing to resume
            raise
        out = model.save(args.out, overwrite=True)  # replaces the checkpoints (and the old run, if --overwrite)
        print(f"saved run to {out}", file=sys.stderr)
        if args.test:
            metrics = model.evaluate(args.test)
            _print_eval(metrics, args.json)
            _write_eval(out, args.test, metrics)
            write_report(out)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import transferkit as tk

    if args.protocol == "kshot":
        from transferkit.cli_kshot import run_kshot

        if args.run:
            raise TransferkitError("--protocol kshot trains its own models: drop the run directory argument.")
        return run_kshot(args, _config_values(args))
    if not args.run:
        raise TransferkitError("Which run? transferkit evaluate runs/NAME --data test.csv (or --protocol kshot).")
    model = tk.load(args.run, trust_remote_code=getattr(args, "trust_remote_code", False))
    metrics = model.evaluate(
        args.data, text=getattr(args, "text_column", None), label=getattr(args, "label_column", None)
    )
    _print_eval(metrics, args.json)
    _write_eval(Path(args.run), args.data, metrics)
    from transferkit.cli_report import write_report

    write_report(Path(args.run))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from transferkit.evaluation.rerun import rerun

    report = rerun(
        args.run,
        args.out,
        args.tolerance,
        log=lambda line: print(line, file=sys.stderr),
        trust_remote_code=args.trust_remote_code,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def cmd_strategies(args: argparse.Namespace) -> int:
    from transferkit.strategies import STRATEGIES

    width = max(len(name) for name in STRATEGIES.names())
    for name in STRATEGIES.names():
        print(f"{name:{width}}  {STRATEGIES.describe(name)}")
    print(
        f"{'auto':{width}}  pilots probe, lp-ft, lora and full here (and contrastive with <= 64 rows per class), then "
        "trains what fits --time-budget/--memory-budget"
    )
    return 0


def cmd_backbones(args: argparse.Namespace) -> int:
    from transferkit.backbones import list_backbones

    rows = list_backbones()
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        print(f"{row['name']:{width}}  {row['description']}")
    from transferkit.generation.models import CAUSAL_LMS

    for name, description in CAUSAL_LMS.items():
        print(f"{name:{width}}  {description} [--task generation]")
    print(f"{'mlp:<widths>':{width}}  an MLP from scratch for feature vectors: mlp:1000-128 = 1000 inputs, 128 hidden")
    print(
        f"{'random:<name>':{width}}  a backbone's architecture with fresh random weights (a control: what pretraining buys)"
    )
    print(f"{'./run_dir':{width}}  a saved transferkit run: its trained backbone carried to a new task, new head")
    print(f"{'./path':{width}}  any local Hugging Face model directory (config.json + weights)")
    print(f"{'org/name':{width}}  a Hugging Face hub id (needs network; offline runs fail with a clear message)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from transferkit.cli_distributed import add_nproc_argument

    parser = argparse.ArgumentParser(
        prog="transferkit",
        description="Fine-tune a pretrained model on your labelled data, evaluate it honestly, and apply it.",
        epilog="Run `transferkit COMMAND --help` for each command's options.",
    )
    from transferkit import __version__

    parser.add_argument("--version", action="version", version=f"transferkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    fit = sub.add_parser(
        "fit", help="train a model and save it to a run directory", epilog=EPILOG_FIT, formatter_class=fmt
    )
    fit.add_argument("--data", help="training data file (.csv/.tsv/.jsonl/.json/.parquet)")
    fit.add_argument("--val", help="validation data for early stopping (default: hold out val_fraction of --data)")
    fit.add_argument("--test", help="test data: evaluated after training, written to the run directory")
    fit.add_argument("--out", help="run directory to create (refused if it holds a run, unless --overwrite)")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_nproc_argument(fit)
    fit.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in --out from its last checkpoint"
    )
    fit.add_argument("--config", help="YAML/JSON file with any of the options below (flags override it)")
    fit.add_argument("--json", action="store_true", help="print --test metrics as JSON")
    _add_config_flags(fit)
    fit.set_defaults(func=cmd_fit)

    from transferkit.cli_kshot import EPILOG as EPILOG_EVALUATE
    from transferkit.cli_kshot import add_kshot_arguments

    ev = sub.add_parser(
        "evaluate",
        help="score a saved run on labelled data, or run the k-shot protocol",
        formatter_class=fmt,
        epilog=EPILOG_EVALUATE,
    )
    ev.add_argument("run", nargs="?", help="run directory written by `transferkit fit` (not with --protocol kshot)")
    ev.add_argument("--data", required=True, help="labelled data: the test set, or the pool K-shot draws come from")
    ev.add_argument(
        "--protocol",
        choices=("single", "kshot"),
        default="single",
        help="single: score RUN on --data; kshot: train on K-per-class draws of --data, score on --test",
    )
    ev.add_argument("--json", action="store_true", help="print all metrics as JSON instead of a table")
    add_nproc_argument(ev)
    ev.add_argument("--config", help="YAML/JSON file with training options for --protocol kshot")
    add_kshot_arguments(ev)
    _add_config_flags(ev)
    ev.set_defaults(func=cmd_evaluate)

    from transferkit.cli_predict import add_parser as add_predict_parser

    add_predict_parser(sub)

    from transferkit.cli_generate import add_parser as add_generate_parser

    add_generate_parser(sub)
    from transferkit.cli_check import add_parser as add_check_parser
    from transferkit.cli_export import add_parser as add_export_parser
    from transferkit.cli_rank import add_parser as add_rank_parser
    from transferkit.cli_report import add_parser as add_report_parser
    from transferkit.cli_serve import add_parser as add_serve_parser
    from transferkit.cli_tune import add_parser as add_tune_parser

    add_check_parser(sub)
    add_export_parser(sub)
    add_rank_parser(sub)
    add_tune_parser(sub)

    add_report_parser(sub)
    add_serve_parser(sub)

    rr = sub.add_parser(
        "rerun",
        help="train a saved run again from its manifest and check the metrics match",
        formatter_class=fmt,
        epilog="examples:\n  transferkit rerun runs/demo\n  transferkit rerun runs/demo --out runs/demo-again --json\n\n"
        "Reads the training/validation files recorded in transferkit.json, refuses changed data (content\n"
        "fingerprints), retrains with the recorded options and seed, re-scores every eval_*.json test file, and\n"
        "compares. Exit status 0 when everything matches within --tolerance, 1 when something differs.",
    )
    rr.add_argument("run", help="run directory written by `transferkit fit` from data files")
    rr.add_argument("--out", help="also save the retrained run here (default: nothing is written)")
    rr.add_argument("--tolerance", type=float, default=1e-6, help="largest metric difference still called a match")
    rr.add_argument("--json", action="store_true", help="print the comparison as JSON")
    from transferkit.cli_predict import add_trust_argument

    add_trust_argument(rr)
    rr.set_defaults(func=cmd_rerun)

    bb = sub.add_parser("backbones", help="list the backbones available offline")
    bb.set_defaults(func=cmd_backbones)
    st = sub.add_parser("strategies", help="list the adaptation strategies (--strategy)")
    st.set_defaults(func=cmd_strategies)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from transferkit.export.manifest import record_command

    command = sys.argv[1:] if argv is None else list(argv)
    record_command(command)
    from transferkit.cli_distributed import lost_a_peer, run_command
    from transferkit.training.distributed import is_main, launched

    try:
        if getattr(args, "nproc", 1) > 1 and not launched():  # start the workers; each runs this command alone
            from transferkit.training.launch import launch, strip_nproc

            return launch(strip_nproc(command), args.nproc)
        return run_command(args)
    except TransferkitError as exc:
        if is_main():  # workers mostly meet the same error: rank 0 says it; the launcher tells another's
            print(f"error: {exc}", file=sys.stderr)
        else:
            from transferkit.training.launch import record_worker_error

            record_worker_error(exc)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        if launched() and lost_a_peer(exc):
            return 3  # another process died mid-collective: the launcher reports which one, and why
        raise


if __name__ == "__main__":
    raise SystemExit(main())
