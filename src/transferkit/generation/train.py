"""One generative fit: load the causal LM, encode the pairs, add adapters (lora) or not (full), run the loop.

The training loop is transferkit's one loop (training/loop.py) with a language-model objective (the model's
own shifted cross-entropy over answer tokens) and a validation that reports loss and perplexity.
"""

from __future__ import annotations

import inspect
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.config import RunConfig
from transferkit.errors import ConfigError, DataError
from transferkit.generation.pairs import PairSet
from transferkit.generation.tokens import IGNORE, Encoded, encode_conversation, pack, packed_batch, padded_batch

STRATEGIES = ("lora", "full")
DEFAULT_MAX_LENGTH = 512  # tokens per example when --max-length is not given (and the model allows it)
ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")  # Llama, Qwen, Mistral, ...
MIN_ROWS_FOR_AUTO_VAL = 20


@dataclass
class GenerationFit:
    model: Any  # the transformers model (a peft model under lora)
    tokenizer: Any
    base_dir: Path
    info: dict[str, Any]


def lora_targets(model, wanted: str | None) -> list[str] | None:
    """The modules that get adapters: as asked, else the attention projections, else peft's default for the
    architecture (None)."""
    if wanted:
        return [t.strip() for t in wanted.split(",")]
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = [p for p in ATTENTION_PROJECTIONS if p in names]
    return found or None


def add_adapters(model, config: RunConfig):
    import warnings

    from peft import LoraConfig, get_peft_model

    options = config.lora
    targets = lora_targets(model, options.lora_targets)
    settings = LoraConfig(
        task_type="CAUSAL_LM",
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=targets,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, settings)
    except ValueError as exc:
        raise ConfigError(
            f"Cannot place LoRA adapters on {targets}: {exc}. Set --lora-targets to module names."
        ) from None


class CausalLMObjective(nn.Module):
    """Wraps the model so the loop's `module(batch)` returns the mean loss over answer tokens.

    Where the model accepts a boolean `logits_to_keep` (Llama, Qwen, GPT-2, ... in transformers 5), the
    vocabulary projection and softmax run only at positions whose next token is an answer token: the prompt's
    logits are never computed (on SmolLM2 the 49k-word projection is about a fifth of the model's work).
    """

    def __init__(self, lm) -> None:
        super().__init__()
        self.lm = lm
        base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        module = sys.modules.get(type(base).__module__)
        # models that slice with transformers' helper accept a boolean mask; a few older ones only an int
        self.sliced = "logits_to_keep" in inspect.signature(base.forward).parameters and hasattr(
            module, "slice_logits_to_keep"
        )

    def forward(self, batch: dict):
        if not self.sliced:
            return self.lm(**batch, use_cache=False).loss
        labels = batch["labels"]
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE  # position t predicts token t + 1
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = self.lm(**inputs, use_cache=False, logits_to_keep=keep).logits  # [answer tokens, vocab]
        return nn.functional.cross_entropy(logits.float(), labels[:, 1:][keep[:, :-1]])


def lm_validator(batch_size: int) -> Callable:
    """Validation loss per answer token (and its perplexity); a lower loss is a better epoch."""

    def validate(module, val, device) -> tuple[dict, tuple[float]]:
        from transferkit.training.batching import inference_batches

        module.eval()
        total = tokens = 0.0
        with torch.inference_mode():
            for indices in inference_batches(val.lengths, batch_size):
                batch = {k: v.to(device) for k, v in val.collate([val.items[i] for i in indices]).items()}
                counted = int((batch["labels"][:, 1:] != IGNORE).sum())
                total += float(module(batch)) * counted
                tokens += counted
        loss = total / max(tokens, 1)
        return {"val_loss": round(loss, 6), "val_perplexity": round(math.exp(min(loss, 50)), 4)}, (-loss,)

    return validate


def max_length_of(config: RunConfig, model) -> int:
    """Tokens per example: --max-length, else 512 or the model's own limit if lower."""
    return config.backbone.max_length or min(DEFAULT_MAX_LENGTH, model.config.max_position_embeddings)


def encode_pairs(pairs: PairSet, tokenizer, max_length: int) -> tuple[list[Encoded], dict[str, int]]:
    """Encoded examples (those with no answer token left after truncation dropped) and what happened."""
    encoded = [encode_conversation(tokenizer, c, max_length) for c in pairs.conversations]
    kept = [e for e in encoded if e.trained_tokens > 0]
    stats = {
        "examples": len(encoded),
        "truncated": sum(e.truncated for e in encoded),
        "dropped_no_answer_left": len(encoded) - len(kept),
        "tokens": sum(len(e) for e in kept),
        "answer_tokens": sum(e.trained_tokens for e in kept),
    }
    return kept, stats


def batches_of(encoded: list[Encoded], pad_id: int, max_length: int, packing: bool):
    from transferkit.training.loop import Batches

    if packing:
        bins = pack(encoded, max_length)
        return Batches(bins, [0] * len(bins), lambda b: packed_batch(b, pad_id), [sum(map(len, b)) for b in bins])
    return Batches(encoded, [0] * len(encoded), lambda b: padded_batch(b, pad_id), [len(e) for e in encoded])


def split_pairs(config: RunConfig, train: PairSet, val: PairSet | None) -> tuple[PairSet, PairSet | None, str]:
    """(train, validation, where validation came from): --max-train-rows subsampling, then a held-out share."""
    rows = config.data.max_train_rows
    if rows and len(train) > rows:
        train = train.subset(sorted(random.Random(config.train.seed).sample(range(len(train)), rows)))
    if val is not None:
        return train, val, val.source
    if config.data.val_fraction > 0 and len(train) >= MIN_ROWS_FOR_AUTO_VAL:
        order = list(range(len(train)))
        random.Random(config.train.seed).shuffle(order)
        n_val = max(1, round(len(train) * config.data.val_fraction))
        return train.subset(sorted(order[n_val:])), train.subset(sorted(order[:n_val])), f"{n_val} pairs held out"
    return train, None, "none"


def _param_groups(model, config: RunConfig) -> list[dict]:
    from transferkit.strategies.base import decay_groups

    lr = config.lora.lora_lr if config.strategy.strategy == "lora" else config.train.lr
    return decay_groups(model.named_parameters(), lr, config.train.weight_decay)


def prepare_model(config: RunConfig, log):
    """(model with what trains marked, tokenizer, base directory)."""
    from accelerate.utils import set_seed

    from transferkit.generation.models import load_causal_lm, resolve_causal_lm

    strategy = config.strategy.strategy
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"Strategy {strategy!r} does not apply to --task generation: use one of {', '.join(STRATEGIES)} "
            "(lora trains low-rank adapters, full trains every weight)."
        )
    base_dir = resolve_causal_lm(config.backbone.backbone)
    model, tokenizer = load_causal_lm(base_dir, config.backbone.trust_remote_code)
    set_seed(config.train.seed)  # after loading: a first-time conversion draws random numbers (initialisation)
    if strategy == "lora":
        model = add_adapters(model, config)
    else:
        model.requires_grad_(True)
    return model, tokenizer, base_dir


@dataclass
class EncodedPairs:
    """Training and validation batches with what encoding them found (counts, truncation)."""

    train: PairSet
    val: PairSet | None
    val_source: str
    data: Any  # training Batches
    val_data: Any  # validation Batches or None
    stats: dict[str, int]


def encode_run_data(config: RunConfig, train: PairSet, val: PairSet | None, tokenizer, max_length: int, log):
    train, val, val_source = split_pairs(config, train, val)
    encoded, stats = encode_pairs(train, tokenizer, max_length)
    if not encoded:
        raise DataError(f"{train.source}: no example keeps an answer token within max_length={max_length}.")
    val_encoded, _ = encode_pairs(val, tokenizer, max_length) if val is not None else ([], {})
    if log and (stats["truncated"] or stats["dropped_no_answer_left"]):
        log(
            f"{stats['truncated']} of {stats['examples']} examples longer than max_length={max_length} tokens were "
            f"truncated; {stats['dropped_no_answer_left']} kept no answer token and were dropped (raise --max-length)"
        )
    pad_id = tokenizer.pad_token_id
    data = batches_of(encoded, pad_id, max_length, config.generation.packing)
    val_data = batches_of(val_encoded, pad_id, max_length, False) if val_encoded else None
    return EncodedPairs(train, val, val_source, data, val_data, stats)


def fit_generation(
    config: RunConfig,
    train: PairSet,
    val: PairSet | None,
    log: Callable[[str], None] | None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> GenerationFit:
    """Load the model, encode the pairs, train with the one loop; the run's record goes into `info`."""
    from transferkit.training.checkpoint import Checkpointer
    from transferkit.training.fit import make_accelerator, run_fingerprint
    from transferkit.training.loop import train_loop

    model, tokenizer, base_dir = prepare_model(config, log)
    max_length = max_length_of(config, model)
    run = encode_run_data(config, train, val, tokenizer, max_length, log)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    if log:
        log(
            f"{config.strategy.strategy}: {len(run.data.items)} rows of {run.stats['examples'] - run.stats['dropped_no_answer_left']} pairs "
            f"({run.stats['answer_tokens']:,} answer tokens of "
            f"{run.stats['tokens']:,}), validation: {run.val_source}; base {base_dir.name}; trainable parameters "
            f"{trainable:,} of {total:,} ({100 * trainable / total:.2f}%)"
        )
    accelerator = make_accelerator(config)
    fingerprint = run_fingerprint(config, run.train, run.val)
    started = time.perf_counter()
    result = train_loop(
        CausalLMObjective(model).to(accelerator.device),
        _param_groups(model, config),
        run.data,
        run.val_data,
        config.train,
        config.train.epochs,
        0,
        accelerator,
        log=log,
        phase=config.strategy.strategy,
        patience=config.train.early_stopping_patience,
        checkpointer=Checkpointer(checkpoint_dir, fingerprint, config.train.checkpoint_steps),
        resume=resume,
        objective=lambda loss, _targets: loss,
        validate=lm_validator(config.train.eval_batch_size),
    )
    seconds = time.perf_counter() - started
    model.eval()
    model.requires_grad_(False)
    info = describe_run(config, run, result, seconds, base_dir, max_length, trainable, total)
    return GenerationFit(model, tokenizer, base_dir, info)


def describe_run(
    config: RunConfig,
    run: EncodedPairs,
    result,
    seconds: float,
    base_dir: Path,
    max_length: int,
    trainable: int,
    total: int,
) -> dict[str, Any]:
    """What transferkit.json records about a generative fit."""
    # tokens/s only for a run trained start to end in this process (a resumed one trained part of its epochs)
    speed = (
        run.stats["tokens"] * len(result.history) / seconds if seconds and result.resumed_from_step is None else None
    )
    return {
        "task": "generation",
        "base_model": str(config.backbone.backbone or "smollm2"),
        "base_dir": str(base_dir),
        "strategy": config.strategy.strategy,
        "max_length": max_length,
        "parameters": {"trainable": trainable, "total": total, "trainable_share": round(trainable / total, 6)},
        "training": {
            "history": result.history,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "optimizer_steps": result.optimizer_steps,
            "resumed_from_step": result.resumed_from_step,
            "train_seconds": round(seconds, 2),
            "tokens_per_second": round(speed, 1) if speed else None,
        },
        "data": {
            **run.stats,
            "train_fingerprint": run.train.fingerprint(),
            "val_rows": len(run.val) if run.val is not None else 0,
            "val_source": run.val_source,
        },
        "seed": config.train.seed,
    }
