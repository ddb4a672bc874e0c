"""`transferkit generate`: answer prompts with a generative run or a base language model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from transferkit.errors import TransferkitError

EPILOG = """examples:
  transferkit generate runs/qa "Write this number in digits: four hundred and two"
  transferkit generate smollm2 "What is the capital of France?"      (the base model, untrained)
  transferkit generate runs/qa --data prompts.jsonl --output answers.jsonl
  transferkit generate runs/qa "Write a haiku" --sample --temperature 0.8 --top-p 0.95 --seed 1

Greedy decoding unless --sample. On a terminal, answers stream token by token; with --json or --output
prompts are answered in batches. --data reads a prompt column, Alpaca instruction (+ input), or chat
`messages` (answered after their last user turn)."""


def add_parser(sub) -> None:
    ge = sub.add_parser(
        "generate",
        help="answer prompts with a generative run (or a base language model)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    ge.add_argument(
        "run", help="run directory of `transferkit fit --task generation`, or a base model (smollm2, a dir)"
    )
    ge.add_argument("prompts", nargs="*", help="prompts to answer")
    ge.add_argument("--data", help="file of prompts (.jsonl/.csv/.parquet with a prompt column, or messages)")
    ge.add_argument("--prompt-column", help="prompt column of --data (default: the run's, or guessed)")
    ge.add_argument("--output", help="write prompt/response pairs to this .jsonl, .csv or .parquet file")
    ge.add_argument("--json", action="store_true", help="print JSON lines instead of streaming")
    ge.add_argument("--max-new-tokens", type=int, help="most tokens per answer (default: the run's max_new_tokens)")
    ge.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    ge.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (with --sample)")
    ge.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (with --sample)")
    ge.add_argument("--seed", type=int, help="seed for --sample (same seed, same answers)")
    ge.add_argument("--system-prompt", help="system message for a base model (runs keep their own)")
    from transferkit.cli_predict import add_trust_argument

    add_trust_argument(ge)
    ge.set_defaults(func=cmd_generate)


def _shown(prompt: Any) -> str:
    """A prompt as one line of text: a chat's last user turn."""
    if isinstance(prompt, str):
        return prompt
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), json.dumps(prompt))


def _write(frame, output: str) -> None:
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    suffix = Path(output).suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(output, index=False)
    elif suffix in (".csv", ".tsv"):
        frame.to_csv(output, index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        frame.to_json(output, orient="records", lines=True, force_ascii=False)
    print(f"wrote {len(frame)} responses to {output}", file=sys.stderr)


def print_generations(model, source: Any, args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Answers to prompts: streamed to the terminal one by one, or generated in batches for --json / --output."""
    import pandas as pd

    if isinstance(source, Path):
        from transferkit.generation.pairs import load_prompts

        column = getattr(args, "prompt_column", None) or model.config_.generation.prompt_column
        source = load_prompts(source, column)
    if args.output or args.json:
        answers = model.generate(source, **settings)
        frame = pd.DataFrame({"prompt": [_shown(p) for p in source], "response": answers})
        if args.output:
            _write(frame, args.output)
        else:
            print(frame.to_json(orient="records", lines=True, force_ascii=False))
        return 0
    for prompt in source:
        print(f"> {_shown(prompt)}", flush=True)
        model.generate([prompt], stream=True, **settings)
        print(flush=True)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import transferkit as tk
    from transferkit.export.artifact import is_run_dir

    if not args.prompts and not args.data:
        raise TransferkitError(
            'Nothing to answer: give prompts (transferkit generate RUN "a question") or --data FILE.'
        )
    if not args.sample and (args.temperature != 1.0 or args.top_p != 1.0):
        raise TransferkitError("--temperature and --top-p apply only when sampling: add --sample.")
    if is_run_dir(args.run):
        model = tk.load(args.run, trust_remote_code=args.trust_remote_code)
        if not hasattr(model, "generate"):
            raise TransferkitError(f"{args.run} is a classifier, not a generative run: use `transferkit predict`.")
    else:  # a base model by name or directory: see what it does before fine-tuning
        model = tk.GenerativeFineTuner.from_base(
            args.run, system_prompt=args.system_prompt, trust_remote_code=args.trust_remote_code
        )
    settings = {
        "max_new_tokens": args.max_new_tokens,
        "do_sample": args.sample,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
    }
    return print_generations(model, list(args.prompts) if args.prompts else Path(args.data), args, settings)
