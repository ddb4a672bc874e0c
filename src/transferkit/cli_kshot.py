"""`transferkit evaluate --protocol kshot`: the few-shot protocol from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from transferkit.errors import TransferkitError

EPILOG = """examples:
  transferkit evaluate RUN --data test.csv                    (score a saved run; the default protocol)
  transferkit evaluate --protocol kshot --data train.csv --test test.csv --shots 8,16,64 --repeats 10 \\
      --strategies probe,lora,full --out runs/kshot
  transferkit evaluate --protocol kshot --data photos/ --test photos_test/ --shots 4,16 --backbone efficientnet-lite0

The k-shot protocol draws --repeats stratified training sets of K examples per class (fixed seeds, the same
draws for every strategy), trains each strategy on each draw with the training options below (no
validation hold-out unless --val-fraction is given), scores all of them on the fixed --test set, and reports
mean ± std with a 95% interval per (K, strategy) and paired differences between strategies on the same draws.
With --out it writes kshot.json, kshot_runs.csv, kshot_summary.csv, kshot_paired.csv and kshot.png there.
Probes reuse the feature cache, so many draws cost little backbone time."""


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 8,16,64; got {text!r}") from None


def add_kshot_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("k-shot protocol (--protocol kshot)")
    group.add_argument("--test", help="fixed test set every draw is scored on (required for --protocol kshot)")
    group.add_argument("--shots", type=_int_list, default=[8, 16, 64], help="examples per class, comma-separated")
    group.add_argument("--repeats", type=int, default=10, help="random draws per K (the same for every strategy)")
    group.add_argument(
        "--strategies", default="probe,lora,full", help="strategies to compare on the same draws, comma-separated"
    )
    group.add_argument("--draw-seed", type=int, default=0, help="seed of the draws (the model seed is --seed + draw)")
    group.add_argument("--out", help="folder for kshot.json, the CSV tables and kshot.png")


def run_kshot(args: argparse.Namespace, values: dict) -> int:
    from transferkit.evaluation.kshot import kshot_evaluate
    from transferkit.evaluation.kshot_report import format_kshot_table, save_kshot

    if not args.test:
        raise TransferkitError("The k-shot protocol needs a fixed test set: pass --test test.csv.")
    values.pop("strategy", None)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    result = kshot_evaluate(
        args.data,
        args.test,
        shots=args.shots,
        repeats=args.repeats,
        strategies=strategies,
        draw_seed=args.draw_seed,
        log=lambda line: print(line, file=sys.stderr),
        **values,
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_kshot_table(result))
    if args.out:
        paths = save_kshot(result, args.out)
        print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0
