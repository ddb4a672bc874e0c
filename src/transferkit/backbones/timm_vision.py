"""Adapter for timm image models: preprocessing from the model's own data config, pooled features.

The timm model is created with `num_classes=0`, so calling it returns pooled pre-logits features; the new
head is ours. Weights load from safetensors, or from a `.pth` with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.errors import BackboneError

RAND_AUGMENT = (
    "rand-m9-n2"  # RandAugment, 2 ops at magnitude 9 (the mstd variant can ask Pillow 13 for 0-bit posterize)
)
STEM = ("conv_stem", "bn1", "stem", "patch_embed", "conv1")
STAGES = ("blocks", "stages", "layers", "layer1")
FINAL = ("conv_head", "bn2", "norm", "head_norm", "fc_norm")
TIMM_CONFIG = "timm_config.json"


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from safetensors, or a .pth/.bin via torch.load(weights_only=True): never arbitrary pickles."""
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"Weights file {str(path)!r} does not exist.")
    from transferkit.backbones.safety import read_state_dict

    state = read_state_dict(path)  # a pickle that is not a plain state dict is refused, with how to convert it
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def _children(model: nn.Module, names: tuple[str, ...]) -> list[nn.Module]:
    return [getattr(model, n) for n in names if isinstance(getattr(model, n, None), nn.Module)]


class ImageInputs:
    """Image items decode lazily, batch by batch (a dataset of pixels would not fit in memory), through
    `eval_transform`, or `train_transform` while training when `augment` is on."""

    eval_transform: Any
    train_transform: Any
    augment: bool

    def encode(self, inputs: list[Any]) -> list[Any]:
        return list(inputs)

    def _pixels(self, items: list[Any], transform) -> dict[str, torch.Tensor]:
        from transferkit.data.images import read_image

        return {"pixels": torch.stack([transform(read_image(item)) for item in items])}

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        return self._pixels(items, self.eval_transform)

    def train_collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        return self._pixels(items, self.train_transform if self.augment else self.eval_transform)

    def item_length(self, item: Any) -> int:
        return 1

    def item_digest(self, item: Any) -> bytes:
        from transferkit.data.images import item_digest

        return item_digest(item)


def image_transforms(data_config: dict[str, Any]) -> tuple[Any, Any]:
    """(evaluation, training) transforms from a timm data config; training adds crop, flip and RandAugment."""
    import timm.data

    return (
        timm.data.create_transform(**data_config),
        timm.data.create_transform(**data_config, is_training=True, auto_augment=RAND_AUGMENT),
    )


class TimmBackbone(ImageInputs, nn.Module):
    source = "timm"

    def __init__(self, model: nn.Module, arch: str, name: str, augment: bool = True) -> None:
        super().__init__()
        import timm.data

        self.model = model
        self.arch = arch
        self.name = name
        self.augment = augment
        self.num_features = int(model.num_features)
        self.weights_id: str | None = None
        self.timm_data_config = timm.data.resolve_model_data_config(model)
        self.eval_transform, self.train_transform = image_transforms(self.timm_data_config)

    @classmethod
    def create(
        cls,
        arch: str,
        *,
        weights: str | Path | None = None,
        state_dict: dict | None = None,
        name: str | None = None,
        augment: bool = True,
        remap_in_order: bool = False,
        **timm_kwargs: Any,
    ) -> TimmBackbone:
        """A timm architecture with weights from a file or a state dict (keys remapped in order if asked)."""
        import timm

        try:
            model = timm.create_model(arch, pretrained=False, num_classes=0, **timm_kwargs)
        except RuntimeError as exc:  # timm's "Unknown model" error
            raise BackboneError(f"timm has no architecture {arch!r}: {exc}. See timm.list_models().") from None
        if weights is not None:
            state_dict = load_state_dict_file(weights)
        if state_dict is not None:
            load_into(model, state_dict, remap_in_order)
        backbone = cls(model, arch, name or f"timm:{arch}", augment)
        if weights is not None:
            stat = Path(weights).stat()
            backbone.weights_id = f"{Path(weights).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return backbone

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any]) -> TimmBackbone:
        import timm

        config = json.loads((directory / TIMM_CONFIG).read_text())
        model = timm.create_model(config["architecture"], pretrained=False, num_classes=0, **config.get("kwargs", {}))
        return cls(model, config["architecture"], spec["name"], spec.get("augment", True))

    # -- features ---------------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["pixels"])

    def blocks(self) -> list[nn.Module]:
        """Stem, then each stage in order, then the final conv/norm (for partial freezing)."""
        stages = [stage for container in _children(self.model, STAGES) for stage in container.children()]
        blocks = [nn.ModuleList(_children(self.model, STEM))] + stages
        final = _children(self.model, FINAL)
        return blocks + ([nn.ModuleList(final)] if final else [])

    @property
    def lora_targets(self) -> list[str]:
        names = {n.rsplit(".", 1)[-1] for n, m in self.model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
        for group in (["conv_pw", "conv_pwl"], ["qkv", "proj"], ["conv1", "conv2"]):
            if set(group) <= names:
                return group
        return sorted(names)

    @property
    def data_config(self) -> dict[str, Any]:
        cfg = self.timm_data_config
        return {
            "modality": "image",
            "input_size": list(cfg["input_size"]),
            "mean": list(cfg["mean"]),
            "std": list(cfg["std"]),
        }

    def spec(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "arch": self.arch, "augment": self.augment}

    def save_files(self, directory: Path) -> None:
        config = {
            "architecture": self.arch,
            "num_features": self.num_features,
            "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in self.timm_data_config.items()},
            "kwargs": {"pretrained_cfg_overlay": {"input_size": list(self.timm_data_config["input_size"])}},
        }
        (directory / TIMM_CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def load_into(model: nn.Module, state_dict: dict[str, torch.Tensor], remap_in_order: bool) -> None:
    """Load pretrained weights, dropping the old classifier (ours replaces it)."""
    target = model.state_dict()
    if remap_in_order:  # same layout, other names (e.g. lukemelas' EfficientNet -> timm): pair keys by position
        heads = ("_fc.", "fc.", "classifier.")
        keep_head = any(k.startswith(heads) for k in target)  # a model with its classifier (e.g. to check ImageNet)
        source = [(k, v) for k, v in state_dict.items() if keep_head or not k.startswith(heads)]
        if len(source) != len(target) or any(v.shape != target[k].shape for (_, v), k in zip(source, target)):
            raise BackboneError("The weights do not map one-to-one onto this timm architecture.")
        state_dict = {k: v for k, (_, v) in zip(target, source)}
    else:
        state_dict = {k: v for k, v in state_dict.items() if k in target}
    missing = [k for k in target if k not in state_dict]
    if missing:
        raise BackboneError(
            f"The weights file lacks {len(missing)} of the architecture's tensors (e.g. {missing[:3]})."
        )
    model.load_state_dict(state_dict)
