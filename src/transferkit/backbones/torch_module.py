"""Your own network as the backbone: a `torch.nn.Module`, an `mlp:` spec, or a saved transferkit run.

The old output layer is removed (the layer before it is the transferred representation) and our head
replaces it. Inputs are feature vectors: standardised with statistics fitted on the training rows only
(saved with the model), and, when the data is wider or narrower than the network's first layer, passed
through a new trainable input projection first. Architectures made of standard layers in an
`nn.Sequential` are saved as a layer list and rebuild from the artifact alone; any other module class
needs a fresh instance at load time (`transferkit.load(dir, module=Net())`): no pickled code is ever loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.backbones.module_layers import (
    build_layers,
    find_output_layer,
    first_linear_width,
    flat_sequential,
    layer_list,
    parse_mlp_spec,
    remove_output_layer,
)
from transferkit.backbones.timm_vision import ImageInputs, image_transforms
from transferkit.errors import BackboneError, DataError

MODULE_CONFIG = "module.json"


def strip_output_layer(module: nn.Module, output_layer: str | None, weights: str | None):
    """(body, output layer name, removed layer) of a user module, its weights first loaded from `weights`."""
    if weights is not None:
        from transferkit.backbones.timm_vision import load_state_dict_file

        try:
            module.load_state_dict(load_state_dict_file(weights))
        except RuntimeError as exc:
            raise BackboneError(f"{weights!r} does not match the module: {str(exc).splitlines()[0]}") from None
    chosen = find_output_layer(module, output_layer)
    body, removed = remove_output_layer(module, chosen)
    return body, chosen, removed


def _rebuild_body(config: dict[str, Any], module: nn.Module | None) -> nn.Module:
    """The body from a saved layer list, or from a fresh instance of the user's class."""
    if config.get("layers") is not None:
        return build_layers(config["layers"])
    if module is not None:
        return remove_output_layer(module, config["output_layer"])[0]
    raise BackboneError(
        f"This model's backbone is a custom module ({config.get('module_class')}) that transferkit cannot "
        "rebuild from files (no pickled code is loaded). Pass a fresh instance of that class: "
        "transferkit.load(run_dir, module=YourNet())."
    )


def _class_name(module: nn.Module) -> str:
    return f"{type(module).__module__}:{type(module).__qualname__}"


class ModuleBackbone(nn.Module):
    """[standardise] -> [input projection] -> the user's layers without the output layer -> features."""

    source = "torch_module"

    def __init__(
        self,
        body: nn.Module,
        *,
        name: str,
        input_width: int,
        num_features: int,
        layers: list[dict[str, Any]] | None = None,
        module_class: str | None = None,
        output_layer: str | None = None,
    ) -> None:
        super().__init__()
        self.model = body
        self.name = name
        self.input_width = input_width  # what the pretrained layers take
        self.data_width = input_width  # what the data has (differs when an input projection is added)
        self.num_features = num_features
        self.layers = layers
        self.module_class = module_class
        self.output_layer = output_layer
        self.input_projection: nn.Linear | None = None
        self.feature_names: list[str] | None = None
        self.standardize = False
        self.register_buffer("feature_mean", torch.zeros(input_width))
        self.register_buffer("feature_std", torch.ones(input_width))
        self.weights_id: str | None = None

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_module(cls, module: nn.Module, output_layer: str | None = None, weights: str | None = None, name=None):
        """A user module (optionally with weights from a state-dict file) minus its output layer."""
        body, chosen, removed = strip_output_layer(module, output_layer, weights)
        kind = type(module)
        backbone = cls(
            body,
            name=name or f"module:{kind.__module__}.{kind.__qualname__}",
            input_width=first_linear_width(module),
            num_features=removed.in_features,
            layers=layer_list(body),
            module_class=_class_name(module),
            output_layer=chosen,
        )
        backbone._check_shapes()
        return backbone

    @classmethod
    def from_mlp_spec(cls, spec: str, data_width: int | None):
        layers = parse_mlp_spec(spec, data_width)
        return cls(
            build_layers(layers),
            name=spec,
            input_width=layers[0]["args"][0],
            num_features=layers[-2]["args"][1],
            layers=layers,
        )

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any], module: nn.Module | None = None):
        """The architecture from an artifact's module.json (weights are loaded afterwards)."""
        config = json.loads((directory / MODULE_CONFIG).read_text())
        body = _rebuild_body(config, module)
        backbone = cls(
            body,
            name=config["name"],
            input_width=config["input_width"],
            num_features=config["num_features"],
            layers=config.get("layers"),
            module_class=config.get("module_class"),
            output_layer=config.get("output_layer"),
        )
        backbone.fit_to_data(config["data_width"], config.get("feature_names"))
        backbone.standardize = config.get("standardize", False)
        return backbone

    def _check_shapes(self) -> None:
        try:
            with torch.no_grad():
                out = self.model.eval()(torch.zeros(2, self.input_width))
        except Exception as exc:
            raise BackboneError(
                f"The module without its output layer does not run on [batch, {self.input_width}] inputs: {exc}."
            ) from None
        if tuple(out.shape) != (2, self.num_features):
            raise BackboneError(
                f"Without its output layer the module returns shape {tuple(out.shape)[1:]}, not ({self.num_features},) "
                "(the removed layer's input). Its forward() must end with the output layer; name the right one with "
                "output_layer=."
            )

    # -- fitting to the data ----------------------------------------------------------------------
    def fit_to_data(self, width: int, feature_names: list[str] | None = None) -> str | None:
        """Match the data's width: add (or replace) the input projection when it differs. Returns a log line."""
        self.feature_names = feature_names
        if width == self.data_width:
            return None
        self.data_width = width
        self.feature_mean = torch.zeros(width)
        self.feature_std = torch.ones(width)
        self.standardize = False
        if width == self.input_width:
            self.input_projection = None
            return None
        self.input_projection = nn.Linear(width, self.input_width)
        return (
            f"input projection added: the data has {width} features, the pretrained layers take {self.input_width}; "
            f"a new trainable Linear({width}, {self.input_width}) maps one onto the other"
        )

    def fit_standardizer(self, rows: list[Any]) -> None:
        """Mean and std per feature from the training rows only (constant features keep std 1)."""
        import numpy as np

        matrix = torch.from_numpy(np.stack(rows))
        std = matrix.std(dim=0, unbiased=False)
        self.feature_mean = matrix.mean(dim=0)
        self.feature_std = torch.where(std > 1e-12, std, torch.ones_like(std))
        self.standardize = True

    def new_layers(self) -> list[nn.Module]:
        """Layers transferkit added in front of the pretrained ones: random init, so they always train."""
        return [self.input_projection] if self.input_projection is not None else []

    # -- inputs -----------------------------------------------------------------------------------
    def encode(self, inputs: list[Any]) -> list[Any]:
        import numpy as np

        rows = [np.asarray(row, dtype=np.float32) for row in inputs]
        wrong = next((i for i, row in enumerate(rows) if row.shape != (self.data_width,)), None)
        if wrong is not None:
            raise DataError(
                f"This model expects {self.data_width} features per row, got {rows[wrong].shape[-1] if rows[wrong].ndim else 1} "
                f"(row {wrong + 1}). Pass the same feature columns, in the same order, as in training"
                + (
                    f": {', '.join(self.feature_names[:8])}{', ...' if len(self.feature_names) > 8 else ''}."
                    if self.feature_names
                    else "."
                )
            )
        return rows

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        import numpy as np

        return {"features": torch.from_numpy(np.stack(items))}

    def item_length(self, item: Any) -> int:
        return 1

    def item_digest(self, item: Any) -> bytes:
        from transferkit.data.vectors import row_digest

        return row_digest(item)

    # -- features ---------------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["features"]
        if self.standardize:
            x = (x - self.feature_mean) / self.feature_std
        if self.input_projection is not None:
            x = self.input_projection(x)
        return self.model(x)

    def blocks(self) -> list[nn.Module]:
        """The body's layers that hold parameters, in order (for partial freezing)."""
        children = flat_sequential(self.model) or list(self.model.named_children())
        return [m for _, m in children if any(True for _ in m.parameters())]

    @property
    def lora_targets(self) -> list[str]:
        return [n for n, m in self.model.named_modules() if isinstance(m, nn.Linear)]

    @property
    def data_config(self) -> dict[str, Any]:
        projection = None
        if self.input_projection is not None:
            projection = {"from": self.data_width, "to": self.input_width}
        return {
            "modality": "vector",
            "features": self.data_width,
            "standardized": self.standardize,
            "input_projection": projection,
        }

    def spec(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "input_width": self.input_width,
            "data_width": self.data_width,
            "num_features": self.num_features,
            "input_projection": self.input_projection is not None,
            "standardize": self.standardize,
        }

    def save_files(self, directory: Path) -> None:
        config = {
            **self.spec(),
            "layers": self.layers,
            "module_class": self.module_class,
            "output_layer": self.output_layer,
            "feature_names": self.feature_names,
        }
        (directory / MODULE_CONFIG).write_text(json.dumps(config, indent=2) + "\n")


class ImageModuleBackbone(ImageInputs, nn.Module):
    """A user image network (a CNN taking [B, 3, H, W]) minus its output layer.

    Images are resized to `image_size` and normalised with ImageNet statistics (what most CNNs are trained
    with); training adds the same augmentation as timm backbones unless `augment` is off.
    """

    source = "torch_module_image"

    def __init__(self, body: nn.Module, *, name: str, num_features: int, image_size: int = 224, **saved: Any):
        super().__init__()
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

        self.model = body
        self.name = name
        self.num_features = num_features
        self.image_size = image_size
        self.augment = saved.pop("augment", True)
        self.saved = saved  # module_class, output_layer, layers
        self.weights_id: str | None = None
        self.image_config = {
            "input_size": (3, image_size, image_size),
            "mean": IMAGENET_DEFAULT_MEAN,
            "std": IMAGENET_DEFAULT_STD,
            "crop_pct": 1.0,
            "interpolation": "bilinear",
        }
        self.eval_transform, self.train_transform = image_transforms(self.image_config)

    @classmethod
    def from_module(cls, module: nn.Module, output_layer=None, weights=None, image_size: int = 224, augment=True):
        body, chosen, removed = strip_output_layer(module, output_layer, weights)
        kind = type(module)
        backbone = cls(
            body,
            name=f"module:{kind.__module__}.{kind.__qualname__}",
            num_features=removed.in_features,
            image_size=image_size,
            augment=augment,
            module_class=_class_name(module),
            output_layer=chosen,
            layers=layer_list(body),
        )
        try:
            with torch.no_grad():
                out = backbone.model.eval()(torch.zeros(2, 3, image_size, image_size))
        except Exception as exc:
            raise BackboneError(f"The module without its output layer does not run on images: {exc}.") from None
        if tuple(out.shape) != (2, backbone.num_features):
            raise BackboneError(
                f"Without its output layer the module returns shape {tuple(out.shape)[1:]} per image, not "
                f"({backbone.num_features},): its forward() must pool and flatten before the output layer."
            )
        return backbone

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any], module: nn.Module | None = None):
        config = json.loads((directory / MODULE_CONFIG).read_text())
        body = _rebuild_body(config, module)
        saved = {k: config.get(k) for k in ("module_class", "output_layer", "layers", "augment")}
        return cls(
            body, name=config["name"], num_features=config["num_features"], image_size=config["image_size"], **saved
        )

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["pixels"])

    def blocks(self) -> list[nn.Module]:
        children = flat_sequential(self.model) or list(self.model.named_children())
        return [m for _, m in children if any(True for _ in m.parameters())]

    @property
    def lora_targets(self) -> list[str]:
        return [n for n, m in self.model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]

    @property
    def data_config(self) -> dict[str, Any]:
        c = self.image_config
        return {
            "modality": "image",
            "input_size": list(c["input_size"]),
            "mean": list(c["mean"]),
            "std": list(c["std"]),
        }

    def spec(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "augment": self.augment}

    def save_files(self, directory: Path) -> None:
        config = {**self.spec(), **self.saved, "num_features": self.num_features, "image_size": self.image_size}
        (directory / MODULE_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
