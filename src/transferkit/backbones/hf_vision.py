"""Adapter for Hugging Face image models (ViT, ConvNeXt, DINOv2, Swin, ...) from a local directory.

Preprocessing comes from the directory's own image processor (size, mean, std). Features are the CLS token
for transformers and the model's pooled output for convolutional networks: what each architecture's
*ForImageClassification head reads, so runs export to it exactly (export/hf_compat.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.errors import BackboneError

VISION_TYPES = {
    "vit",
    "deit",
    "beit",
    "dinov2",
    "convnext",
    "convnextv2",
    "swin",
    "swinv2",
    "resnet",
    "regnet",
    "efficientnet",
    "mobilenet_v2",
    "mobilevit",
    "levit",
    "poolformer",
    "dinat",
    "siglip_vision_model",
    "clip_vision_model",
    "data2vec-vision",
}


def is_vision_directory(directory: Path) -> bool:
    import json

    config = directory / "config.json"
    if not config.is_file():
        return False
    model_type = json.loads(config.read_text()).get("model_type", "")
    return (
        model_type in VISION_TYPES or (directory / "preprocessor_config.json").is_file() and model_type not in ("bert",)
    )


class HFVisionBackbone(nn.Module):
    source = "hf_vision"

    def __init__(self, model: nn.Module, processor, name: str, augment: bool = True) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.name = name
        self.augment = augment
        self.weights_id: str | None = None
        config = model.config
        self.num_features = int(getattr(config, "hidden_size", None) or config.hidden_sizes[-1])
        self.train_augment = _train_augmentation(processor)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, name: str | None = None, augment: bool = True, trust_remote_code: bool = False
    ) -> HFVisionBackbone:
        from transformers import AutoImageProcessor, AutoModel

        from transferkit.backbones.hf_text import _weights_file_id, quiet_transformers
        from transferkit.backbones.safety import pretrained_options

        quiet_transformers()
        options = pretrained_options(directory, trust_remote_code)  # refuses unsafe pickles and untrusted code
        try:
            processor = AutoImageProcessor.from_pretrained(directory, trust_remote_code=options["trust_remote_code"])
            model = AutoModel.from_pretrained(directory, **options)
        except (OSError, ValueError) as exc:
            raise BackboneError(
                f"Cannot load an image model from {str(directory)!r}: {str(exc).splitlines()[0]}"
            ) from None
        backbone = cls(model, processor, name or str(directory), augment)
        backbone.weights_id = _weights_file_id(Path(directory))
        return backbone

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any], trust_remote_code: bool = False) -> HFVisionBackbone:
        from transformers import AutoConfig, AutoImageProcessor, AutoModel

        from transferkit.backbones.hf_text import quiet_transformers
        from transferkit.backbones.safety import check_remote_code

        quiet_transformers()
        check_remote_code(directory, trust_remote_code)
        trust = {"trust_remote_code": bool(trust_remote_code)}
        model = AutoModel.from_config(AutoConfig.from_pretrained(directory, **trust), **trust)
        processor = AutoImageProcessor.from_pretrained(directory, **trust)
        return cls(model, processor, spec["name"], spec.get("augment", True))

    # -- inputs -----------------------------------------------------------------------------------
    def encode(self, inputs: list[Any]) -> list[Any]:
        return list(inputs)

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        from transferkit.data.images import read_image

        return {"pixels": self.processor(images=[read_image(i) for i in items], return_tensors="pt")["pixel_values"]}

    def train_collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        from transferkit.data.images import read_image

        if not self.augment:
            return self.collate(items)
        images = [self.train_augment(read_image(i)) for i in items]
        return {"pixels": self.processor(images=images, return_tensors="pt")["pixel_values"]}

    def item_length(self, item: Any) -> int:
        return 1

    def item_digest(self, item: Any) -> bytes:
        from transferkit.data.images import item_digest

        return item_digest(item)

    # -- features ---------------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        output = self.model(pixel_values=batch["pixels"])
        hidden = output.last_hidden_state
        if hidden.dim() == 3:  # transformers: the CLS token, as their *ForImageClassification heads use
            return hidden[:, 0]
        pooled = getattr(output, "pooler_output", None)  # convolutional: the model's own pooling
        return pooled.flatten(1) if pooled is not None else hidden.mean(dim=(2, 3))

    def blocks(self) -> list[nn.Module]:
        layers = max((m for m in self.model.modules() if isinstance(m, nn.ModuleList)), key=len, default=[])
        embeddings = getattr(self.model, "embeddings", None)
        return ([embeddings] if isinstance(embeddings, nn.Module) else []) + list(layers)

    @property
    def lora_targets(self) -> list[str]:
        names = {n.rsplit(".", 1)[-1] for n, m in self.model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
        for group in (["query", "key", "value"], ["q_proj", "k_proj", "v_proj"], ["qkv"], ["pwconv1", "pwconv2"]):
            if set(group) <= names:
                return group
        return sorted(names)

    @property
    def data_config(self) -> dict[str, Any]:
        size = getattr(self.processor, "size", None)
        return {"modality": "image", "size": dict(size) if size else None, "mean": self.processor.image_mean}

    def spec(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "augment": self.augment}

    def save_files(self, directory: Path) -> None:
        from transferkit.backbones.safety import save_model_code

        save_model_code(self.model, directory)  # a trusted model's own code files, if it has any
        self.model.config.save_pretrained(directory)
        self.processor.save_pretrained(directory)


def _train_augmentation(processor):
    """Random-resized-crop to the processor's size, flip and TrivialAugment, before the processor normalises."""
    from torchvision import transforms

    size = getattr(processor, "size", None) or {}
    side = size.get("height") or size.get("shortest_edge") or 224
    return transforms.Compose(
        [transforms.RandomResizedCrop(side), transforms.RandomHorizontalFlip(), transforms.TrivialAugmentWide()]
    )
