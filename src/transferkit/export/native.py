"""Write the trained model in its source library's own format, so it loads without transferkit.

Text (transformers): `AutoModelForSequenceClassification.from_pretrained(run_dir)`.
Images (timm): `timm.create_model(arch, num_classes=N)` + `load_state_dict(timm_model.safetensors)`.
Each export is checked against the trained model on held-out inputs before anything is written.

Multi-label and regression runs export too, with transformers' `problem_type` set ("multi_label_classification":
apply a sigmoid per label; "regression": the single output is the prediction). A regression head is exported with
the target standardisation folded into its last layer, so the plain model outputs values in the target's unit.
The tuned multi-label thresholds live in transferkit.json (plain libraries have no place for them).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

PROBLEM_TYPES = {"multilabel": "multi_label_classification", "regression": "regression"}


def _unstandardised(model, task):
    """A model sharing `model`'s backbone whose head outputs predictions in the target's unit (w·std, b·std + mean)."""
    import torch

    from transferkit.model import TransferModel

    head = copy.deepcopy(model.head)
    with torch.no_grad():
        head.out.weight.mul_(task.std)
        head.out.bias.mul_(task.std).add_(task.mean)
    return TransferModel(model.backbone, head).train(model.training)


def export_native(model, directory: Path, labels: list[Any], check_inputs: list[Any], task=None) -> dict[str, Any]:
    source = getattr(model.backbone, "source", None)
    problem_type = PROBLEM_TYPES.get(getattr(task, "name", "classification"))
    if problem_type == "regression":
        model = _unstandardised(model, task)
    typed = {"problem_type": problem_type} if problem_type else {}
    if source == "hf_text":
        from transferkit.export.hf_compat import export_for_transformers

        return {
            "library": "transformers",
            **typed,
            **export_for_transformers(model, directory, labels, check_inputs, problem_type),
        }
    if source == "hf_vision":
        from transferkit.export.hf_compat import export_image_classifier

        return {
            "library": "transformers",
            **typed,
            **export_image_classifier(model, directory, labels, check_inputs, problem_type),
        }
    if source == "timm":
        from transferkit.export.timm_compat import export_for_timm

        return {"library": "timm", **typed, **export_for_timm(model, directory, labels, check_inputs, problem_type)}
    return {"written": False, "reason": f"no native format for backbone source {source!r}"}
