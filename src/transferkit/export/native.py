"""Write the trained model in its source library's own format, so it loads without transferkit.

Text (transformers): `AutoModelForSequenceClassification.from_pretrained(run_dir)`.
Images (timm): `timm.create_model(arch, num_classes=N)` + `load_state_dict(timm_model.safetensors)`.
Each export is checked against the trained model on held-out inputs before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_native(model, directory: Path, labels: list[Any], check_inputs: list[Any]) -> dict[str, Any]:
    source = getattr(model.backbone, "source", None)
    if source == "hf_text":
        from transferkit.export.hf_compat import export_for_transformers

        return {"library": "transformers", **export_for_transformers(model, directory, labels, check_inputs)}
    if source == "hf_vision":
        from transferkit.export.hf_compat import export_image_classifier

        return {"library": "transformers", **export_image_classifier(model, directory, labels, check_inputs)}
    if source == "timm":
        from transferkit.export.timm_compat import export_for_timm

        return {"library": "timm", **export_for_timm(model, directory, labels, check_inputs)}
    return {"written": False, "reason": f"no native format for backbone source {source!r}"}
