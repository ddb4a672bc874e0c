"""Write an image model as a plain timm model: backbone weights + our head as timm's `classifier`.

import json, timm
from safetensors.torch import load_file
spec = json.load(open("runs/x/timm_model.json"))
model = timm.create_model(spec["architecture"], num_classes=spec["num_classes"], **spec["kwargs"])
model.load_state_dict(load_file("runs/x/timm_model.safetensors")); model.eval()
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

TOLERANCE = 1e-4  # max |Δlogit| accepted on the check inputs
WEIGHTS = "timm_model.safetensors"
SPEC = "timm_model.json"


def export_for_timm(
    model, directory: Path, labels: list[Any], check_inputs: list[Any], problem_type: str | None = None
) -> dict[str, Any]:
    import timm
    from safetensors.torch import save_file

    from transferkit.heads import LinearHead
    from transferkit.strategies.lora import has_adapters

    backbone, head = model.backbone, model.head
    if not isinstance(head, LinearHead):
        return {"written": False, "reason": "only a linear head maps onto timm's classifier (not an MLP head)"}
    if has_adapters(backbone):
        return {"written": False, "reason": "unmerged LoRA adapters; save with merge_adapters=True for plain timm"}
    kwargs = {"pretrained_cfg_overlay": {"input_size": list(backbone.timm_data_config["input_size"])}}
    plain = timm.create_model(backbone.arch, pretrained=False, num_classes=len(labels), **kwargs).eval()
    classifier = plain.default_cfg.get("classifier", "classifier")
    state = {k: v.detach().cpu() for k, v in backbone.model.state_dict().items()}
    state[f"{classifier}.weight"] = head.out.weight.detach().cpu()
    state[f"{classifier}.bias"] = head.out.bias.detach().cpu()
    missing, unexpected = plain.load_state_dict(state, strict=False)
    if missing or unexpected:
        return {"written": False, "reason": f"weights do not map onto timm {backbone.arch} (missing {missing[:3]})"}
    batch = backbone.collate(check_inputs)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        ours = model({k: v.to(device) for k, v in batch.items()}).float().cpu()
        theirs = plain(batch["pixels"]).float()
    model.train(was_training)
    diff = float((ours - theirs).abs().max())
    info = {"architecture": backbone.arch, "max_abs_logit_diff": diff, "checked_examples": len(check_inputs)}
    if diff > TOLERANCE or not bool((ours.argmax(-1) == theirs.argmax(-1)).all()):
        return {**info, "written": False, "reason": f"parity check failed (max |Δlogit| = {diff:.2e})"}
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(directory / WEIGHTS))
    spec = {
        "architecture": backbone.arch,
        "num_classes": len(labels),
        "labels": [str(x) for x in labels],
        "problem_type": problem_type or "single_label_classification",
        "kwargs": kwargs,
        "data_config": backbone.data_config,
    }
    (directory / SPEC).write_text(json.dumps(spec, indent=2) + "\n")
    return {**info, "written": True}
