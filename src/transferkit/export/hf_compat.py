"""Write a text model as a plain `transformers` BertForSequenceClassification with the same predictions.

BertForSequenceClassification computes `classifier(tanh(pooler(h_cls)))`. Our model computes
`head(pool(h))`, with `pool` = CLS or attention-masked mean (what sentence-transformers models use).
Both map exactly enough (|Δlogit| ~1e-5, checked on real inputs before anything is written):

* tanh in its linear range: pooler = δ·W_head (δ = 1e-4), classifier = I/δ, so
  classifier(tanh(δ z)) = z·(1 - δ²z²/3) ≈ z.
* mean pooling: one extra encoder layer whose attention is uniform over the unmasked tokens (query and
  key weights are zero), so the CLS position receives the masked mean of the value projection. The value
  projection writes ±ε·W_head·h into 2C dimensions and large ±κ constants into the rest, which makes the
  residual h_cls negligible and fixes the LayerNorm's mean (0) and scale (set by κ); the feed-forward part is
  zeroed. The pooler then reads z back out of the normalised vector.

Users load the directory with `AutoModelForSequenceClassification.from_pretrained(run_dir)`; no
transferkit and no remote code needed.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch

from transferkit.backbones.hf_text import clip_texts

DELTA = 1e-4  # tanh(δz) ≈ δz for |z| up to ~30 with relative error < 1e-5
EPSILON = 1e6  # scale of the head output inside the extra layer: h_cls adds ~|h|/ε to each logit
KAPPA = 1e9  # constants that dominate the LayerNorm variance (κ/ε = 1e3 measured best: |Δlogit| ~4e-5 on MiniLM)
TOLERANCE = 1e-3  # max |Δlogit| accepted on the check inputs; otherwise nothing is written


def _unsupported(reason: str) -> dict[str, Any]:
    return {"written": False, "reason": reason}


def _set_extra_layer(layer, w_head: torch.Tensor, hidden: int) -> float:
    """Configure an appended BertLayer to output, at every position, a normalised copy of ±ε·W·mean(h).

    Returns the factor c such that the normalised output holds c·(W·mean(h)) in its first C dimensions.
    """
    c = w_head.shape[0]
    filler = hidden - 2 * c  # dimensions carrying ±κ
    attn = layer.attention
    for linear in (attn.self.query, attn.self.key, layer.intermediate.dense, layer.output.dense):
        linear.weight.zero_()
        linear.bias.zero_()
    value = torch.zeros(hidden, hidden)
    value[:c] = EPSILON * w_head
    value[c : 2 * c] = -EPSILON * w_head
    bias = torch.zeros(hidden)
    bias[2 * c :] = torch.tensor([KAPPA if i % 2 == 0 else -KAPPA for i in range(filler)])
    if filler % 2:  # keep the mean at zero: the odd filler dimension carries 0
        bias[-1] = 0.0
        filler -= 1
    attn.self.value.weight.copy_(value)
    attn.self.value.bias.copy_(bias)
    attn.output.dense.weight.copy_(torch.eye(hidden))
    attn.output.dense.bias.zero_()
    for norm in (attn.output.LayerNorm, layer.output.LayerNorm):
        norm.weight.fill_(1.0)
        norm.bias.zero_()
    sigma = KAPPA * math.sqrt(filler / hidden)  # LayerNorm scale, dominated by the κ dimensions
    return EPSILON / sigma


def _plain_state_dict(backbone) -> dict[str, torch.Tensor]:
    """The backbone's weights under transformers' own names; unmerged LoRA adapters are merged into a copy."""
    if hasattr(backbone.model, "peft_config"):
        return copy.deepcopy(backbone.model).merge_and_unload().state_dict()
    return backbone.model.state_dict()


def build_sequence_classifier(model, label_names: list[Any], problem_type: str | None = None):
    """Return (BertForSequenceClassification, info) or (None, reason dict); `problem_type` as transformers names it
    (None: single-label classification)."""
    from transformers import BertForSequenceClassification

    from transferkit.heads import LinearHead

    backbone, head = model.backbone, model.head
    if getattr(backbone, "source", None) != "hf_text":
        return None, _unsupported("not a Hugging Face text backbone")
    config = backbone.model.config
    if config.model_type != "bert":
        return None, _unsupported(
            f"plain-transformers export covers BERT-family encoders so far, not {config.model_type!r}"
        )
    if not isinstance(head, LinearHead):
        return None, _unsupported(
            "only a linear head maps onto BertForSequenceClassification (this run used an MLP head)"
        )
    hidden, num_labels = config.hidden_size, len(label_names)
    if backbone.pooling == "mean" and 2 * num_labels + 4 > hidden:
        return None, _unsupported(f"{num_labels} classes do not fit the {hidden}-wide mean-pooling layer")

    hf_config = copy.deepcopy(config)
    hf_config.architectures = ["BertForSequenceClassification"]
    hf_config.num_labels = num_labels
    hf_config.id2label = {i: str(name) for i, name in enumerate(label_names)}
    hf_config.label2id = {str(name): i for i, name in enumerate(label_names)}
    if problem_type:
        hf_config.problem_type = problem_type
    extra_layer = backbone.pooling == "mean"
    if extra_layer:
        hf_config.num_hidden_layers = config.num_hidden_layers + 1
    hf = BertForSequenceClassification(hf_config).eval()
    w_head = head.out.weight.detach().float().cpu()
    b_head = head.out.bias.detach().float().cpu()
    with torch.no_grad():
        missing, unexpected = hf.bert.load_state_dict(_plain_state_dict(backbone), strict=False)
        prefix = f"encoder.layer.{config.num_hidden_layers}."
        if unexpected or any(not (k.startswith("pooler.") or (extra_layer and k.startswith(prefix))) for k in missing):
            return None, _unsupported(f"backbone weights do not map onto BertModel (missing {missing[:3]})")
        scale = _set_extra_layer(hf.bert.encoder.layer[-1], w_head, hidden) if extra_layer else 1.0
        pooler_weight = torch.zeros(hidden, hidden)
        pooler_weight[:num_labels] = DELTA * (torch.eye(hidden)[:num_labels] / scale if extra_layer else w_head)
        pooler_bias = torch.zeros(hidden)
        pooler_bias[:num_labels] = DELTA * b_head
        hf.bert.pooler.dense.weight.copy_(pooler_weight)
        hf.bert.pooler.dense.bias.copy_(pooler_bias)
        classifier = torch.zeros(num_labels, hidden)
        classifier[:, :num_labels] = torch.eye(num_labels) / DELTA
        hf.classifier.weight.copy_(classifier)
        hf.classifier.bias.zero_()
    info = {
        "architecture": "BertForSequenceClassification",
        "pooling": backbone.pooling,
        "extra_pooling_layer": extra_layer,
    }
    return hf, info


def export_for_transformers(
    model, directory: Path, label_names: list[Any], check_texts: list[str], problem_type: str | None = None
) -> dict[str, Any]:
    """Write the plain-transformers model into `directory` after checking it agrees with `model`."""
    hf, info = build_sequence_classifier(model, label_names, problem_type)
    if hf is None:
        return info
    tokenizer = model.backbone.tokenizer
    max_length = model.backbone.max_length
    texts = clip_texts(list(check_texts), max_length)
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        ours = model({k: v.to(device) for k, v in batch.items()}).float().cpu()
        theirs = hf(**batch).logits.float()
    model.train(was_training)
    diff = float((ours - theirs).abs().max()) if len(check_texts) else 0.0
    same_labels = bool((ours.argmax(-1) == theirs.argmax(-1)).all())
    info.update({"max_abs_logit_diff": diff, "checked_examples": len(check_texts)})
    if diff > TOLERANCE or not same_labels:
        return {**info, "written": False, "reason": f"parity check failed (max |Δlogit| = {diff:.2e})"}
    hf.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return {**info, "written": True}


def export_image_classifier(
    model, directory: Path, label_names: list[Any], check_inputs: list[Any], problem_type: str | None = None
) -> dict[str, Any]:
    """An image run as the architecture's own AutoModelForImageClassification, when the mapping is exact."""
    from transformers import AutoModelForImageClassification

    from transferkit.heads import LinearHead
    from transferkit.strategies.lora import has_adapters

    backbone, head = model.backbone, model.head
    if not isinstance(head, LinearHead) or has_adapters(backbone):
        return {"written": False, "reason": "needs a linear head and merged adapters"}
    config = copy.deepcopy(backbone.model.config)
    config.num_labels = len(label_names)
    config.id2label = {i: str(name) for i, name in enumerate(label_names)}
    config.label2id = {str(name): i for i, name in enumerate(label_names)}
    if problem_type:
        config.problem_type = problem_type
    try:
        plain = AutoModelForImageClassification.from_config(config).eval()
    except ValueError as exc:
        return {"written": False, "reason": f"no image-classification class for this model: {exc}"}
    base = getattr(plain, plain.base_model_prefix)
    missing, unexpected = base.load_state_dict(backbone.model.state_dict(), strict=False)
    unexpected = [k for k in unexpected if not k.startswith("pooler.")]  # e.g. ViT's pooler, unused by its classifier
    classifier = getattr(plain, "classifier", None)
    if unexpected or not isinstance(classifier, torch.nn.Linear) or classifier.in_features != head.out.in_features:
        return {"written": False, "reason": "the classifier of this architecture does not take our features"}
    with torch.no_grad():
        classifier.weight.copy_(head.out.weight)
        classifier.bias.copy_(head.out.bias)
    batch = backbone.collate(check_inputs)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        ours = model(batch).float()
        theirs = plain(pixel_values=batch["pixels"]).logits.float()
    model.train(was_training)
    diff = float((ours - theirs).abs().max())
    info = {"architecture": type(plain).__name__, "max_abs_logit_diff": diff, "checked_examples": len(check_inputs)}
    if diff > TOLERANCE or missing and any(not k.startswith("pooler.") for k in missing):
        return {**info, "written": False, "reason": f"parity check failed (max |Δlogit| = {diff:.2e})"}
    plain.save_pretrained(directory)
    backbone.processor.save_pretrained(directory)
    return {**info, "written": True}
