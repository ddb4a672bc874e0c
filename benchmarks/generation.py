"""Benchmark: adapting SmolLM2-135M-Instruct (the embedded default) to two small tasks, base vs fine-tuned.

Tasks (both built offline, with disjoint held-out test sets):
  * numbers: "Write in digits: three thousand and forty-two" -> "3042" (a translation-style rewrite; the
    number words are generated here, for numbers 0-99,999 drawn at random);
  * topics: the topic of an AG News article (../shared/datasets/ag_news; title + first words of the
    description) answered with exactly one of World, Sports, Business, Sci/Tech (a fixed-format QA task).
For each task: the base model and each strategy's fine-tuned model on the same test prompts (greedy):
exact match, token F1, chrF, answer perplexity; training wall time, trainable parameters, training tokens/s
(prompt and answer tokens through the model), answer tokens per second of evaluation wall time (prompt
processing included, so low for one-word answers), and the base model's pure decoding speed.

    .venv/bin/python benchmarks/generation.py [--tasks numbers,topics] [--strategies lora,full] [--train 300]
    .venv/bin/python benchmarks/generation.py --tasks ""        (only the decoding speed)
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
AG_NEWS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ag_news"
ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
ONES = (ONES + "seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
TOPICS = ("World", "Sports", "Business", "Sci/Tech")


def below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{ONES[hundreds]} hundred"] if hundreds else []
    if rest:
        tens, ones = divmod(rest, 10)
        small = ONES[rest] if rest < 20 else TENS[tens] + (f"-{ONES[ones]}" if ones else "")
        words.append(("and " if hundreds else "") + small)
    return " ".join(words)


def number_words(n: int) -> str:
    """British English number words: 3042 -> "three thousand and forty-two"."""
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = [f"{below_thousand(thousands)} thousand"] if thousands else []
    if rest:
        words.append(("and " if thousands and rest < 100 else "") + below_thousand(rest))
    return " ".join(words)


def numbers_task(n_train: int, n_test: int, seed: int = 0) -> tuple[list, list]:
    rng = random.Random(seed)
    values = rng.sample(range(100_000), n_train + n_test)
    pairs = [(f"Write this number in digits: {number_words(v)}", str(v)) for v in values]
    return pairs[:n_train], pairs[n_train:]


def topics_task(n_train: int, n_test: int, seed: int = 0) -> tuple[list, list]:
    if not (AG_NEWS / "train.csv").is_file():
        sys.exit(f"{AG_NEWS} not found (benchmarks read ../shared/datasets)")

    def read(name: str, n: int) -> list:
        with open(AG_NEWS / name, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        rows = random.Random(seed).sample(rows, n)
        question = "What is the topic of this news article? Answer World, Sports, Business or Sci/Tech.\n\n"
        return [(question + " ".join(r["text"].split()[:40]), r["label"]) for r in rows]

    return read("train.csv", n_train), read("test.csv", n_test)


def decode_speed(backbone: str, new_tokens: int = 64) -> list[tuple[int, float]]:
    """Greedy decoding speed of the base model: (batch size, generated tokens per second), prompt excluded,
    with generation forced to run `new_tokens` steps."""
    import time

    import torch

    import transferkit as tk
    from transferkit.generation.decode import _left_padded
    from transferkit.generation.tokens import encode_prompt

    model = tk.GenerativeFineTuner.from_base(backbone)
    prompt = encode_prompt(model.tokenizer_, [{"role": "user", "content": "Tell me about the history of Paris."}])
    speeds = []
    for batch in (1, 8):
        ids, mask = _left_padded([prompt] * batch, model.tokenizer_.pad_token_id)
        timings = []
        for steps in (
            2,
            1,
            new_tokens + 1,
        ):  # a warm-up call, then the two timed ones  # the difference removes the prompt's processing
            started = time.perf_counter()
            with torch.inference_mode():
                model.model_.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=steps, min_new_tokens=steps, do_sample=False
                )
            timings.append(time.perf_counter() - started)
        speeds.append((batch, batch * new_tokens / (timings[2] - timings[1])))
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="numbers,topics", help="comma-separated: numbers, topics")
    parser.add_argument("--strategies", default="lora", help="comma-separated: lora, full")
    parser.add_argument("--backbone", default="smollm2", help="causal LM (registry name or directory)")
    parser.add_argument("--train", type=int, default=300, help="training pairs per task")
    parser.add_argument("--test", type=int, default=100, help="held-out pairs per task")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--lora-lr", type=float, default=2e-3, help="learning rate of the LoRA adapters")
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate of full fine-tuning")
    parser.add_argument("--packing", action="store_true", help="pack examples into max-length rows")
    parser.add_argument("--no-speed", action="store_true", help="skip the decoding-speed measurement")
    args = parser.parse_args()
    os.environ.setdefault("TRANSFERKIT_CACHE", str(Path.home() / ".cache" / "transferkit"))
    import transferkit as tk

    builders = {"numbers": numbers_task, "topics": topics_task}
    table = []
    for task in filter(None, args.tasks.split(",")):
        train, test = builders[task](args.train, args.test)
        for i, strategy in enumerate(args.strategies.split(",")):
            model = tk.FineTuner(
                task="generation",
                backbone=args.backbone,
                strategy=strategy,
                epochs=args.epochs,
                lora_lr=args.lora_lr,
                lr=args.lr,
                packing=args.packing,
                max_new_tokens=16,
            ).fit(train)
            report = model.evaluate(test, compare_base=i == 0)
            info = model.run_info_
            if i == 0:
                table.append((task, "base", report["models"]["base"], None))
            table.append((task, strategy, report["models"]["fine-tuned"], info))
            with tempfile.TemporaryDirectory() as tmp:  # the artifact reloads to the same answers
                out = model.save(Path(tmp) / "run")
                again = tk.load(out).generate([p for p, _ in test[:5]], max_new_tokens=16)
                assert again == report["models"]["fine-tuned"]["predictions"][:5], "reloaded run answers differently"
            for (prompt, reference), answer in list(zip(test, report["models"]["fine-tuned"]["predictions"]))[:3]:
                print(f"  {prompt[-60:]!r} -> {answer!r} (reference {reference!r})", flush=True)
    print(
        "\n| task | model | exact match | token F1 | chrF | answer perplexity | train time (s) | trainable params "
        "| train tokens/s | generated tokens/s |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for task, name, row, info in table:
        low, high = row["exact_match_ci95"]
        if info:
            p, t = info["parameters"], info["training"]
            trained = f"{t['train_seconds']:.0f} | {p['trainable']:,} ({100 * p['trainable_share']:.2f}%) | "
            trained += f"{t['tokens_per_second']:.0f}"
        else:
            trained = "- | - | -"
        print(
            f"| {task} | {name} | {row['exact_match']:.3f} [{low:.2f}, {high:.2f}] | {row['token_f1']:.3f} | "
            f"{row['chrf']:.1f} | {row['perplexity']:.2f} | {trained} | {row['generated_tokens_per_second']:.0f} |"
        )

    if not args.no_speed:
        for batch, speed in decode_speed(args.backbone):
            print(f"decoding speed, batch {batch}: {speed:.0f} generated tokens/s (greedy, 64 new tokens)")


if __name__ == "__main__":
    main()
