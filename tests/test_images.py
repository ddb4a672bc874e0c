"""Images on the tiny random timm model: every data form, bad files, BatchNorm, persistence, plain timm."""

import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import transferkit as tk
from transferkit.cli import main
from transferkit.data.examples import load_examples
from transferkit.data.images import read_image
from transferkit.errors import DataError, DataFileError

TINY_IMAGE = dict(backbone="tiny-efficientnet", epochs=3, head_epochs=15, lr=3e-3, val_fraction=0.0, batch_size=8)
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def _picture(colour, seed):
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "train"
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(12):
            suffix = ".jpg" if i % 3 == 0 else ".png"
            _picture(colour, seed=i + 100 * len(name)).save(root / name / f"{i}{suffix}")
    return root


def _tiny_png_header(width, height):
    """A PNG whose header claims width x height pixels (a decompression bomb if large)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    )


def test_folder_fit_predict_save_load_and_plain_timm(tmp_path, image_folder):
    model = tk.FineTuner(**TINY_IMAGE).fit(image_folder, verbose=False)
    assert model.modality_ == "image" and model.classes_ == ["blue", "red"]
    test = [_picture(COLOURS["red"], 1000 + i) for i in range(5)] + [
        _picture(COLOURS["blue"], 2000 + i) for i in range(5)
    ]
    assert model.predict(test) == ["red"] * 5 + ["blue"] * 5
    model.save(tmp_path / "run")
    reloaded = tk.load(tmp_path / "run")
    assert np.array_equal(reloaded.predict_proba(test), model.predict_proba(test))

    import timm
    from safetensors.torch import load_file

    spec = json.loads((tmp_path / "run" / "timm_model.json").read_text())
    plain = timm.create_model(spec["architecture"], num_classes=spec["num_classes"], **spec["kwargs"]).eval()
    plain.load_state_dict(load_file(str(tmp_path / "run" / "timm_model.safetensors")))
    pixels = model.model_.backbone.collate(test)["pixels"]
    with torch.no_grad():
        probabilities = plain(pixels).softmax(-1).numpy()
    assert np.allclose(probabilities, model.predict_proba(test), atol=1e-5)
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    assert manifest["native_export"]["library"] == "timm" and manifest["native_export"]["written"]


def test_every_data_form(tmp_path, image_folder):
    import datasets
    import pandas as pd

    rows = [(str(p.relative_to(image_folder)), p.parent.name) for p in sorted(image_folder.rglob("*.*"))]
    frame = pd.DataFrame(rows, columns=["image", "label"])
    frame.to_csv(image_folder / "labels.csv", index=False)
    frame.to_json(image_folder / "labels.jsonl", orient="records", lines=True)
    frame.to_parquet(image_folder / "labels.parquet")
    expected = sorted(load_examples(image_folder).labels)
    for name in ("labels.csv", "labels.jsonl", "labels.parquet"):
        examples = load_examples(image_folder / name)
        assert examples.modality == "image" and sorted(examples.labels) == expected
    pictures = [read_image(image_folder / path) for path, _ in rows]
    labels = [label for _, label in rows]
    assert load_examples(pictures, labels).modality == "image"
    assert load_examples([np.asarray(p) for p in pictures], labels).modality == "image"
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["blue", "red"])})
    dataset = datasets.Dataset.from_dict(
        {"image": pictures, "label": [0 if x == "blue" else 1 for x in labels]}, features=features
    )
    examples = load_examples(dataset)
    assert examples.modality == "image" and examples.labels == labels


def test_image_modes_and_orientation_become_rgb(tmp_path):
    grey = Image.fromarray(np.full((8, 8), 100, np.uint8))
    palette = Image.new("RGB", (8, 8), (10, 200, 30)).convert("P")
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent: composited on white
    sixteen = Image.fromarray(np.full((8, 8), 65535, np.uint16))
    assert read_image(grey).getpixel((0, 0)) == (100, 100, 100)
    assert read_image(palette).mode == "RGB"
    assert read_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert read_image(sixteen).getpixel((0, 0)) == (255, 255, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    path = tmp_path / "rotated.jpg"
    Image.new("RGB", (30, 10), (0, 0, 0)).save(path, exif=exif)
    assert read_image(path).size == (10, 30)


def test_bad_files_name_the_file_or_are_skipped_and_counted(tmp_path, image_folder):
    (image_folder / "red" / "corrupt.png").write_bytes(b"not a png at all")
    with pytest.raises(DataFileError, match=r"corrupt\.png.*--skip-bad-files"):
        load_examples(image_folder)
    (image_folder / "red" / "empty.png").write_bytes(b"")
    good = (image_folder / "blue" / "1.png").read_bytes()
    (image_folder / "blue" / "truncated.png").write_bytes(good[: len(good) // 2])
    (image_folder / "blue" / "bomb.png").write_bytes(_tiny_png_header(100000, 100000))
    examples = load_examples(image_folder, skip_bad_files=True)
    assert len(examples.skipped) == 4 and len(examples) == 24
    assert any("bomb.png" in s and "decompression bomb" in s.lower() for s in examples.skipped)
    model = tk.FineTuner(**{**TINY_IMAGE, "epochs": 1}, skip_bad_files=True).fit(image_folder, verbose=False)
    assert len(model.run_info_["data"]["skipped_files"]) == 4


def test_paths_may_not_escape_the_data_folder(tmp_path, image_folder):
    outside = tmp_path / "outside.png"
    _picture(COLOURS["red"], 1).save(outside)
    csv = image_folder / "labels.csv"
    csv.write_text("image,label\n../outside.png,red\nred/1.png,red\nblue/1.png,blue\n")
    with pytest.raises(DataError, match="points outside the data folder.*--allow-outside-paths"):
        load_examples(csv)
    assert len(load_examples(csv, allow_outside_paths=True)) == 3
    csv.write_text("image,label\nred/missing.png,red\n")
    with pytest.raises(DataFileError, match="missing.png.*does not exist"):
        load_examples(csv)


def test_empty_class_folder_is_an_error(image_folder):
    (image_folder / "green").mkdir()
    with pytest.raises(DataError, match="'green'.*hold no images"):
        load_examples(image_folder)


@pytest.mark.parametrize("strategy, options", [("probe", {}), ("freeze", {"trainable_blocks": 2})])
def test_frozen_batchnorm_statistics_do_not_change(image_folder, strategy, options):
    from transferkit.backbones import build_backbone

    before = {k: v.clone() for k, v in build_backbone("tiny-efficientnet").model.state_dict().items() if "running" in k}
    model = tk.FineTuner(**TINY_IMAGE, strategy=strategy, **options).fit(image_folder, verbose=False)
    backbone = model.model_.backbone
    trainable = {id(p) for block in backbone.blocks()[-2:] for p in block.parameters()} if options else set()
    checked = 0
    for name, module in backbone.model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d) and id(module.weight) not in trainable:
            assert torch.equal(module.running_mean, before[f"{name}.running_mean"]), f"{strategy}: {name} changed"
            assert torch.equal(module.running_var, before[f"{name}.running_var"]), f"{strategy}: {name} changed"
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("batchnorm", ["frozen", "train"])
def test_full_fine_tuning_keeps_batchnorm_statistics_unless_asked(image_folder, batchnorm):
    """Small batches would overwrite the pretrained statistics: by default BatchNorm stays in inference mode."""
    from transferkit.backbones import build_backbone

    before = {k: v.clone() for k, v in build_backbone("tiny-efficientnet").model.state_dict().items() if "running" in k}
    model = tk.FineTuner(**TINY_IMAGE, strategy="full", batchnorm=batchnorm).fit(image_folder, verbose=False)
    after = model.model_.backbone.model.state_dict()
    unchanged = all(torch.equal(after[k], v) for k, v in before.items())
    assert unchanged == (batchnorm == "frozen")
    trained = build_backbone("tiny-efficientnet").model.state_dict()
    assert not torch.equal(after["conv_stem.weight"], trained["conv_stem.weight"])  # the weights did train


def _small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 1000),
        torch.nn.Softmax(dim=1),
    )


def test_user_image_module_as_backbone(tmp_path, image_folder):
    cnn = _small_cnn()
    params = {**TINY_IMAGE, "backbone": cnn, "image_size": 32, "head_lr": 3e-2}
    model = tk.FineTuner(**params, strategy="probe").fit(image_folder, verbose=False)
    backbone = model.model_.backbone
    assert backbone.source == "torch_module_image" and backbone.num_features == 8
    assert backbone.data_config["input_size"] == [3, 32, 32]
    assert torch.equal(backbone.model[0].weight, cnn[0].weight)
    test = [_picture(COLOURS["red"], 1000 + i) for i in range(4)] + [
        _picture(COLOURS["blue"], 2000 + i) for i in range(4)
    ]
    assert model.predict(test) == ["red"] * 4 + ["blue"] * 4
    model.save(tmp_path / "cnn")
    reloaded = tk.load(tmp_path / "cnn")  # a Sequential of standard layers rebuilds without the user's code
    assert np.array_equal(reloaded.predict_proba(test), model.predict_proba(test))
    tuned = tk.FineTuner(**{**params, "backbone": _small_cnn()}, strategy="full").fit(image_folder, verbose=False)
    assert not torch.equal(tuned.model_.backbone.model[0].weight, cnn[0].weight)


def test_augmentation_only_in_training(image_folder):
    from transferkit.backbones import build_backbone

    backbone = build_backbone("tiny-efficientnet")
    picture = [_picture(COLOURS["red"], 5)]
    torch.manual_seed(0)
    assert torch.equal(backbone.collate(picture)["pixels"], backbone.collate(picture)["pixels"])
    assert not torch.equal(backbone.train_collate(picture)["pixels"], backbone.train_collate(picture)["pixels"])
    quiet = build_backbone("tiny-efficientnet", augment=False)
    assert torch.equal(quiet.train_collate(picture)["pixels"], quiet.collate(picture)["pixels"])


def test_cli_fit_and_predict_image_paths(tmp_path, image_folder, capsys):
    out = tmp_path / "run"
    flags = ["--backbone", "tiny-efficientnet", "--epochs", "2", "--lr", "3e-3", "--val-fraction", "0"]
    assert main(["fit", "--data", str(image_folder.parent), "--out", str(out), *flags]) == 0
    paths = [str(image_folder / "red" / "1.png"), str(image_folder / "blue" / "2.png")]
    assert main(["predict", str(out), *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[2] for line in lines] == paths
    assert main(["predict", str(out), "--data", str(image_folder / "red")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 12


def test_timm_arch_needs_local_weights(tmp_path):
    from transferkit.backbones import build_backbone
    from transferkit.backbones.testing import tiny_efficientnet_state
    from transferkit.errors import BackboneError

    with pytest.raises(BackboneError, match="needs a local weights file"):
        build_backbone("timm:test_efficientnet")
    from safetensors.torch import save_file

    save_file(tiny_efficientnet_state(), str(tmp_path / "w.safetensors"))
    backbone = build_backbone("timm:test_efficientnet", weights=str(tmp_path / "w.safetensors"))
    assert backbone.num_features == 256
    torch.save({"x": torch.zeros(1), "bad": object()}, tmp_path / "pickled.pth")
    with pytest.raises(BackboneError, match="weights_only"):
        build_backbone("timm:test_efficientnet", weights=str(tmp_path / "pickled.pth"))


@pytest.fixture
def tiny_vit_dir(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    directory = tmp_path / "tiny-vit"
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    torch.manual_seed(0)
    ViTModel(config).save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def test_local_hugging_face_image_model_directory(tmp_path, image_folder, tiny_vit_dir):
    from transformers import AutoModelForImageClassification

    model = tk.FineTuner(**{**TINY_IMAGE, "backbone": str(tiny_vit_dir)}).fit(image_folder, verbose=False)
    assert model.run_info_["backbone"]["source"] == "hf_vision"
    test = [_picture(COLOURS["red"], 1000 + i) for i in range(4)] + [
        _picture(COLOURS["blue"], 2000 + i) for i in range(4)
    ]
    assert model.score(test, ["red"] * 4 + ["blue"] * 4) >= 0.75
    model.save(tmp_path / "run")
    assert np.array_equal(tk.load(tmp_path / "run").predict_proba(test), model.predict_proba(test))
    plain = AutoModelForImageClassification.from_pretrained(tmp_path / "run").eval()
    with torch.no_grad():
        logits = plain(pixel_values=model.model_.backbone.collate(test)["pixels"]).logits
    assert np.allclose(logits.softmax(-1).numpy(), model.predict_proba(test), atol=1e-5)
