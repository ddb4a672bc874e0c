"""Benchmark: Hugging Face Trainer vs transferkit `full`, fine-tuning all-MiniLM-L6-v2 on SST-2, in one run.

Both sides fine-tune every weight of the same checkpoint (the embedded all-MiniLM-L6-v2 directory) on the same
SST-2 training rows with the same settings: epochs, batch size, learning rate (one rate for every weight: the
Trainer has one, so transferkit's head gets `head_lr=lr` too), max length, linear warmup (the same number of
steps) then linear decay, AdamW weight decay (neither side decays biases or LayerNorm weights), gradient clipping
at 1.0, seed, no evaluation, checkpointing or logging during training. The Trainer is set up the way a careful
user would: DataCollatorWithPadding (dynamic padding) and `train_sampling_strategy="group_by_length"` (the
transformers 5.x name of `group_by_length=True`), its default fused AdamW, texts tokenised before `train()`.

What is measured, per side, each run in a fresh subprocess (side order alternates between repeats):
  * training throughput: training rows x epochs / the training call's wall time (transferkit: the phase time
    it records, training.full.seconds; Trainer: wall time of `trainer.train()`); loading the model and
    tokenising are outside the clock on both sides; median of --repeats with min-max;
  * accuracy on SST-2 dev (validation) and test rows, after training (not timed);
  * peak RSS of the process up to the end of training (getrusage: model, data and training together).
The ratio transferkit/Trainer is taken between medians of the same run (the machine is shared and noisy).
Targets (issue 12): >= 1.3x the Trainer's throughput, dev accuracy within +-0.5 points.

Both sides train the same network by default: the encoder, mean pooling over tokens (the pooling the checkpoint was
trained with), dropout 0.1 and a linear layer; on the Trainer side a small nn.Module, as a careful user of a
sentence-transformers checkpoint writes. `--trainer-model cls` gives the Trainer AutoModelForSequenceClassification
instead, the one-liner most users reach for: BERT's [CLS] pooler. Both use torch's fused AdamW. What differs is each
tool's own: the loop, the batch order and the initialisation of the new layer.

A trap found here: with `train_sampling_strategy="group_by_length"`, transformers 5.x also length-groups the
evaluation sampler, so `Trainer.predict` returns predictions in a shuffled order. Accuracy is computed against the
label_ids returned with them.

    .venv/bin/python benchmarks/trainer.py                  # 6,920 rows (all), 1 epoch, 3 repeats, all dev/test
    .venv/bin/python benchmarks/trainer.py --quick          # 1,000 rows, 1 epoch, 1 repeat, 300 dev/test rows
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import markdown_table, spread, verdict  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"
SIDES = ("transferkit", "trainer")
NAMES = {"transferkit": "transferkit `full`", "trainer": "HF Trainer (dynamic padding, group_by_length)"}
TARGET_RATIO, TARGET_POINTS = 1.3, 0.5


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_job(args) -> dict:
    """Training rows (all, in file order, or a seeded sample), dev and test rows; labels as class ids."""
    import pandas as pd

    if not DATA.is_dir():
        sys.exit(f"dataset {DATA} not found (benchmarks read ../shared/datasets)")
    train = pd.read_csv(DATA / "train.csv")
    if args.rows and args.rows < len(train):
        train = train.sample(args.rows, random_state=0)
    dev, test = (pd.read_csv(DATA / f"{name}.csv") for name in ("dev", "test"))
    if args.eval_rows:
        dev, test = (d.sample(min(args.eval_rows, len(d)), random_state=0) for d in (dev, test))
    labels = sorted(train["label"].unique())
    steps = math.ceil(len(train) / args.batch_size) * args.epochs
    settings = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "max_length", "weight_decay", "seed")}
    settings.update(
        device=args.device,
        trainer_model=args.trainer_model,
        warmup_ratio=args.warmup_ratio,
        warmup_steps=int(args.warmup_ratio * steps),
    )
    return {
        "texts": train["text"].tolist(),
        "labels": [labels.index(v) for v in train["label"]],
        "eval": {
            name: {"texts": d["text"].tolist(), "labels": [labels.index(v) for v in d["label"]]}
            for name, d in (("dev", dev), ("test", test))
        },
        "num_labels": len(labels),
        "settings": settings,
    }


def _accuracy(predictions, labels) -> float:
    return sum(int(p) == y for p, y in zip(predictions, labels)) / len(labels)


def transferkit_worker(job: dict) -> dict:
    """Child process: transferkit `full`; its recorded training-phase time is the clock."""
    import importlib

    for name in ("torch", "transformers", "accelerate", "transferkit.training.loop"):
        importlib.import_module(name)
    import torch

    import transferkit as tk

    s = job["settings"]
    model = tk.FineTuner(
        backbone="minilm",
        strategy="full",
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        head_lr=s["lr"],  # one learning rate for every weight, as the Trainer has
        weight_decay=s["weight_decay"],
        warmup_ratio=s["warmup_ratio"],  # transferkit warms up int(ratio * steps) steps: warmup_steps
        schedule="linear",
        max_grad_norm=1.0,
        max_length=s["max_length"],
        seed=s["seed"],
        device=s["device"],
        val_fraction=0.0,  # no evaluation during training, as on the Trainer side
        early_stopping_patience=None,
        check_data=False,
    )
    model.fit(job["texts"], job["labels"], verbose=False)
    phase = model.run_info_["training"]["full"]
    result = {"train_s": phase["seconds"], "peak_rss_mib": peak_rss_mib(), "optimizer_steps": phase["optimizer_steps"]}
    for name, rows in job["eval"].items():
        result[f"{name}_accuracy"] = _accuracy(model.predict(rows["texts"]), rows["labels"])
    return {**result, "threads": torch.get_num_threads()}


def mean_pooled_classifier(directory: str, num_labels: int):
    """What a careful Trainer user builds for a sentence-transformers checkpoint: the encoder with the pooling it was
    trained with (mean over tokens, as its 1_Pooling/config.json says) and dropout 0.1 + a linear layer, the same
    network transferkit trains. AutoModelForSequenceClassification would put BERT's [CLS] pooler on top instead."""
    import torch
    from transformers import AutoModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class MeanPooledClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(directory, add_pooling_layer=False, dtype=torch.float32)
            self.dropout = torch.nn.Dropout(0.1)
            self.classifier = torch.nn.Linear(self.encoder.config.hidden_size, num_labels)

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            logits = self.classifier(self.dropout(pooled))
            loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return SequenceClassifierOutput(loss=loss, logits=logits)

    return MeanPooledClassifier()


def trainer_worker(job: dict) -> dict:
    """Child process: transformers.Trainer (on the mean-pooled classifier, or with --trainer-model cls on
    AutoModelForSequenceClassification); `trainer.train()` is the clock."""
    import tempfile

    import datasets
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from transferkit.backbones.embedded import minilm_dir

    s = job["settings"]
    transformers.set_seed(s["seed"])  # before the model: the new classifier's initialisation is seeded too
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    if s["trainer_model"] == "cls":
        model = AutoModelForSequenceClassification.from_pretrained(
            minilm_dir(), num_labels=job["num_labels"], dtype=torch.float32
        )
    else:
        model = mean_pooled_classifier(str(minilm_dir()), job["num_labels"])

    def tokenized(texts, labels=None):
        columns = {"text": texts, **({"label": labels} if labels is not None else {})}
        encode = lambda batch: tokenizer(batch["text"], truncation=True, max_length=s["max_length"])  # noqa: E731
        return datasets.Dataset.from_dict(columns).map(encode, batched=True, remove_columns=["text"])

    train = tokenized(job["texts"], job["labels"])
    with tempfile.TemporaryDirectory(prefix="transferkit-bench-trainer-") as out:
        trainer = transformers.Trainer(
            model=model,
            args=_training_arguments(s, out),
            train_dataset=train,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
        )
        started = time.perf_counter()
        output = trainer.train()
        result = {"train_s": round(time.perf_counter() - started, 3), "peak_rss_mib": peak_rss_mib()}
        result.update(optimizer_steps=output.global_step, trainer_train_runtime_s=output.metrics["train_runtime"])
        for name, rows in job["eval"].items():
            # group_by_length also length-groups (shuffles) the Trainer's evaluation order (transformers 5.x
            # `_get_eval_sampler`): predictions come back permuted, so score them against the label_ids that come
            # back with them, never against the rows' own order (which reads as chance accuracy)
            output = trainer.predict(tokenized(rows["texts"], rows["labels"]))
            result[f"{name}_accuracy"] = _accuracy(output.predictions.argmax(-1), output.label_ids.tolist())
    return {**result, "threads": torch.get_num_threads()}


def _training_arguments(s: dict, out: str):
    """The Trainer's settings: the shared ones, dynamic-padding-friendly sampling, nothing extra during training."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=out,
        num_train_epochs=s["epochs"],
        per_device_train_batch_size=s["batch_size"],
        per_device_eval_batch_size=64,
        learning_rate=s["lr"],
        weight_decay=s["weight_decay"],
        warmup_steps=s["warmup_steps"],  # an integer: exactly transferkit's int(ratio * total steps)
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        train_sampling_strategy="group_by_length",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=s["seed"],
        use_cpu=s["device"] == "cpu",
        dataloader_num_workers=0,  # transferkit's loader runs in the main process too
    )


def run_side(side: str, job: dict) -> dict:
    """One side's fit in a fresh process (its own peak memory, no warm caches); returns its measurements."""
    command = [sys.executable, __file__, "--worker", side]
    done = subprocess.run(command, input=json.dumps(job), capture_output=True, text=True, env=dict(os.environ))
    if done.returncode:
        sys.exit(f"{side} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["examples_per_s"] = len(job["texts"]) * job["settings"]["epochs"] / result["train_s"]
    return result


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Medians per side, the same-run ratio, the accuracy gap and whether the targets are met."""
    median = {side: {k: statistics.median(r[k] for r in runs[side]) for k in runs[side][0]} for side in SIDES}
    ratio = median["transferkit"]["examples_per_s"] / median["trainer"]["examples_per_s"]
    pairs = [a["examples_per_s"] / b["examples_per_s"] for a, b in zip(runs["transferkit"], runs["trainer"])]
    gap = 100 * (median["transferkit"]["dev_accuracy"] - median["trainer"]["dev_accuracy"])
    test_gap = 100 * (median["transferkit"]["test_accuracy"] - median["trainer"]["test_accuracy"])
    return {
        "median": median,
        "throughput_ratio": ratio,
        "throughput_ratio_per_repeat": pairs,
        "dev_accuracy_gap_points": gap,
        "test_accuracy_gap_points": test_gap,
        "throughput_target_met": ratio >= TARGET_RATIO,
        "accuracy_target_met": abs(gap) <= TARGET_POINTS,
    }


def table(runs: dict[str, list[dict]], summary: dict, job: dict, args) -> dict:
    s, dev, test = job["settings"], job["eval"]["dev"], job["eval"]["test"]
    rows = []
    for side in SIDES:
        m = summary["median"][side]
        rows.append(
            [
                NAMES[side],
                spread([r["examples_per_s"] for r in runs[side]]),
                spread([r["train_s"] for r in runs[side]]),
                f"{m['dev_accuracy']:.4f}",
                f"{m['test_accuracy']:.4f}",
                f"{m['peak_rss_mib']:.0f}",
            ]
        )
    caption = (
        f"all-MiniLM-L6-v2, full fine-tuning on {len(job['texts']):,} SST-2 training rows x {s['epochs']} epoch(s); "
        f"batch {s['batch_size']}, lr {s['lr']:g} (every weight), max_length {s['max_length']}, "
        f"{s['warmup_steps']} warmup steps then linear decay, weight decay {s['weight_decay']:g}, seed {s['seed']}; "
        f"accuracy on {len(dev['labels'])} dev and {len(test['labels'])} test rows; median of {args.repeats} "
        f"run(s) (min-max), each in its own process; {os.cpu_count()} CPU cores, device {s['device']}"
    )
    ratio, gap = summary["throughput_ratio"], summary["dev_accuracy_gap_points"]
    notes = [
        f"throughput transferkit / Trainer: **{ratio:.2f}x** (per repeat: "
        f"{', '.join(f'{p:.2f}' for p in summary['throughput_ratio_per_repeat'])}); target >= {TARGET_RATIO}x: "
        f"{verdict(summary['throughput_target_met'])}",
        f"dev accuracy transferkit - Trainer: {gap:+.2f} points (test {summary['test_accuracy_gap_points']:+.2f}); "
        f"target within +-{TARGET_POINTS}: {verdict(summary['accuracy_target_met'])}",
        "the same network on both sides: mean pooling, dropout 0.1, linear layer"
        if s["trainer_model"] == "mean"
        else "the Trainer's network is AutoModelForSequenceClassification ([CLS] pooler); transferkit mean-pools",
    ]
    columns = ["tool", "training examples/s", "training time (s)", "dev accuracy", "test accuracy", "peak RSS (MiB)"]
    return {"caption": caption, "columns": columns, "rows": rows, "notes": notes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=0, help="training rows (0: all 6,920)")
    parser.add_argument("--eval-rows", type=int, default=0, help="dev and test rows each (0: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--trainer-model",
        choices=("mean", "cls"),
        default="mean",
        help="the Trainer's network: mean (the checkpoint's own mean pooling + dropout + linear, transferkit's "
        "network) or cls (AutoModelForSequenceClassification: BERT's [CLS] pooler)",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 rows, 1 epoch, 1 repeat, 300 dev/test rows")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker = transferkit_worker if args.worker == "transferkit" else trainer_worker
        print(json.dumps(worker(json.load(sys.stdin))))
        return
    if args.quick:
        args.rows, args.epochs, args.repeats, args.eval_rows = 1000, 1, 1, 300
    job = load_job(args)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for repeat in range(args.repeats):
        for side in SIDES if repeat % 2 == 0 else reversed(SIDES):  # alternate who runs first
            print(f"[trainer] {side}, run {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
            runs[side].append(run_side(side, job))
    summary = summarize(runs)
    result = {"benchmark": "trainer", "settings": {**vars(args), **job["settings"]}, "runs": runs, **summary}
    result["table"] = table(runs, summary, job, args)
    print("\n" + markdown_table(result["table"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
