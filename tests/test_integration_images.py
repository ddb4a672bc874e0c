"""Integration: the embedded EfficientNet-Lite0 (real ImageNet weights) on real images."""

import numpy as np
import pytest
import torch

import transferkit as tk
from conftest import shared_dataset

pytestmark = pytest.mark.slow
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_weights_map_onto_timm_and_see_a_cat(variant):
    """The package's state dict, remapped in order onto timm's tf_efficientnet_lite<N>, classifies a cat photo."""
    import timm
    from skimage import data

    from transferkit.backbones.embedded import efficientnet_lite_weights
    from transferkit.backbones.timm_vision import load_into, load_state_dict_file
    from transferkit.data.images import read_image

    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False).eval()
    load_into(model, load_state_dict_file(efficientnet_lite_weights(variant)), remap_in_order=True)
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model))
    with torch.no_grad():
        top = model(transform(read_image(data.chelsea()))[None]).softmax(-1).topk(3).indices[0].tolist()
    assert top[0] in IMAGENET_CATS, top


def test_probe_on_mnist_beats_raw_pixels_baseline_and_reloads(tmp_path):
    path = shared_dataset("mnist")
    model = tk.FineTuner(strategy="probe").fit(path / "train", verbose=False)  # default backbone for images
    assert model.run_info_["backbone"]["name"] == "efficientnet-lite0"
    accuracy = model.score(path / "test")
    assert accuracy >= 0.8, accuracy
    model.save(tmp_path / "run")
    sample = sorted(str(p) for p in (path / "test" / "3").iterdir())[:8]
    assert np.array_equal(tk.load(tmp_path / "run").predict_proba(sample), model.predict_proba(sample))
