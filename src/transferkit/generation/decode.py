"""Generating answers (batched, left-padded; greedy or sampled; optionally streamed) and scoring them."""

from __future__ import annotations

import sys
from typing import Any

from transferkit.generation.tokens import encode_prompt


def _left_padded(rows: list[list[int]], pad_id: int):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids, mask


def _stop_ids(model, tokenizer) -> list[int]:
    """The model's configured EOS ids plus the tokens that end an answer as trained (see end_of_turn_ids)."""
    from transferkit.generation.tokens import end_of_turn_ids

    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return list(dict.fromkeys([i for i in ids if i is not None] + end_of_turn_ids(tokenizer)))


def generate_answers(
    model,
    tokenizer,
    prompts: list[list[dict]],
    settings: dict[str, Any],
    batch_size: int,
    seed: int | None,
    stream: bool,
) -> list[str]:
    """Decoded answers (special tokens removed, whitespace stripped), in the order of `prompts`."""
    import torch
    from tqdm.auto import tqdm

    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # similar lengths: less padding
    size = 1 if stream else batch_size
    answers: dict[int, str] = {}
    options = {**settings, "eos_token_id": _stop_ids(model, tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if not settings.get("do_sample"):
        options |= {"temperature": None, "top_p": None, "top_k": None}  # silence sampling defaults of the config
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    with torch.random.fork_rng():  # a seed for sampling leaves the caller's random state alone
        if seed is not None:
            torch.manual_seed(seed)
        for batch in tqdm(batches, desc="generating", unit="batch", leave=False, disable=True if stream else None):
            answers.update(_generate_batch(model, tokenizer, [encoded[i] for i in batch], batch, options, stream))
    return [answers[i] for i in range(len(prompts))]


def _generate_batch(model, tokenizer, rows: list[list[int]], indices: list[int], options: dict, stream: bool):
    """{index: answer} for one left-padded batch; streamed to stdout token by token with `stream`."""
    import torch
    from transformers import TextStreamer

    ids, mask = _left_padded(rows, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
    with torch.inference_mode():
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), streamer=streamer, **options)
    if stream:
        sys.stdout.flush()
    return {
        i: tokenizer.decode(out[row, ids.shape[1] :], skip_special_tokens=True).strip() for row, i in enumerate(indices)
    }


def answer_perplexity(model, tokenizer, pairs, config) -> float | None:
    """exp(mean negative log-likelihood per reference-answer token), teacher-forced."""
    from transferkit.generation.train import CausalLMObjective, batches_of, encode_pairs, lm_validator, max_length_of

    max_length = max_length_of(config, model)
    encoded, _ = encode_pairs(pairs, tokenizer, max_length)
    if not encoded:
        return None  # no reference answer fits in max_length
    batches = batches_of(encoded, tokenizer.pad_token_id, max_length, packing=False)
    device = next(model.parameters()).device
    metrics, _ = lm_validator(config.train.eval_batch_size)(CausalLMObjective(model), batches, device)
    return metrics["val_perplexity"]


def generation_report(predictions: list[str], references: list[str], tokenizer, seconds: float) -> dict[str, Any]:
    """generation_metrics plus 95% bootstrap intervals of exact match and token F1, and generation speed."""
    from transferkit.generation.metrics import bootstrap_interval, exact_match, generation_metrics, token_f1

    report: dict[str, Any] = generation_metrics(predictions, references)
    for name, score in (("exact_match", exact_match), ("token_f1", token_f1)):
        per_example = [score(p, r) for p, r in zip(predictions, references)]
        if per_example:
            report[f"{name}_ci95"] = [round(v, 4) for v in bootstrap_interval(per_example)]
    generated = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in predictions)
    report["generated_tokens_per_second"] = round(generated / seconds, 1) if seconds else None
    report["predictions"] = predictions
    return report
