"""Hugging Face audio encoders (wav2vec2, HuBERT, AST) as backbones, on tiny random models written per process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transferkit.backbones.hf_audio_models import HFAudioBackbone, is_audio_model_directory
from transferkit.backbones.testing_audio import tiny_ast_dir, tiny_hubert_dir, tiny_wav2vec2_dir

RATE = 16000
DIRS = {"wav2vec2": tiny_wav2vec2_dir, "hubert": tiny_hubert_dir, "ast": tiny_ast_dir}


def _tone(freq: float, seconds: float, rate: int = RATE, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32), rate


def _features(backbone, items):
    backbone.eval()
    with torch.no_grad():
        return backbone.forward_features(backbone.collate(items))


@pytest.fixture(params=sorted(DIRS))
def backbone(request):
    return HFAudioBackbone.from_pretrained(DIRS[request.param](), name=f"tiny-{request.param}")


def test_collate_and_features(backbone):
    items = [_tone(300.0, 0.5), _tone(2500.0, 1.5, rate=8000), _tone(900.0, 1.0, rate=22050)]
    batch = backbone.collate(items)
    features = _features(backbone, items)
    assert features.shape == (3, backbone.num_features) == (3, 32)
    assert torch.isfinite(features).all()
    assert backbone.data_config["modality"] == "audio" and backbone.data_config["sampling_rate"] == RATE
    if backbone.spectrogram:
        assert set(batch) == {"input_values"} and batch["input_values"].shape == (3, 128, 32)
        assert backbone.data_config["pooling"] == "pooler_output"
    else:
        assert batch["input_values"].shape == (3, RATE)  # every clip fit to the 1 s window
        assert batch["frames"].tolist() == [24, 49, 49]  # 20 ms frames: 0.5 s -> 24, the full window -> 49
        assert ("attention_mask" in batch) == (backbone.model_type == "wav2vec2")  # only where the model wants it


def test_a_clip_does_not_depend_on_its_batch(backbone):
    short, long = _tone(300.0, 0.3), _tone(2500.0, 2.0, seed=1)
    alone = _features(backbone, [short])
    together = _features(backbone, [short, long])
    assert torch.allclose(alone[0], together[0], atol=1e-5)
    assert torch.equal(alone, _features(backbone, [short]))  # deterministic in evaluation
    assert not torch.allclose(together[0], together[1], atol=1e-3)


def test_wav2vec2_pools_over_the_real_frames_and_masks_attention():
    backbone = HFAudioBackbone.from_pretrained(tiny_wav2vec2_dir())
    short = _tone(300.0, 0.3)
    batch = backbone.collate([short])
    assert batch["attention_mask"].sum().item() == int(0.3 * RATE) and batch["frames"].tolist() == [14]
    hidden = backbone.eval().model(input_values=batch["input_values"], attention_mask=batch["attention_mask"])
    expected = hidden.last_hidden_state[0, :14].mean(0)
    assert torch.allclose(_features(backbone, [short])[0], expected, atol=1e-6)
    longer = HFAudioBackbone.from_pretrained(tiny_wav2vec2_dir(), clip_seconds=2.0)  # more padding, masked out
    assert torch.allclose(_features(longer, [short]), _features(backbone, [short]), atol=1e-4)


def test_train_collate_augments_reproducibly(backbone):
    items = [_tone(300.0, 2.0), _tone(2500.0, 0.6, seed=1)]
    key = backbone.input_name
    torch.manual_seed(0)
    first = backbone.train_collate(items)
    torch.manual_seed(0)
    again = backbone.train_collate(items)
    assert torch.equal(first[key], again[key])
    assert not torch.equal(first[key], backbone.collate(items)[key])
    assert not torch.equal(first[key], backbone.train_collate(items)[key])
    plain = HFAudioBackbone.from_pretrained(
        DIRS["ast" if backbone.spectrogram else backbone.model_type](), augment=False
    )
    torch.manual_seed(0)
    cropped = plain.train_collate([items[1]])[key]  # short clip, no augmentation: only the (no-op) crop
    assert torch.equal(cropped, plain.collate([items[1]])[key])


def test_training_forward_and_backward(backbone):
    backbone.train()
    np.random.seed(0)
    torch.manual_seed(0)
    features = backbone.forward_features(backbone.train_collate([_tone(300.0, 1.0), _tone(900.0, 0.4)]))
    features.sum().backward()
    assert features.shape == (2, 32)
    assert any(p.grad is not None for p in backbone.blocks()[0].parameters())


def test_short_windows_train_without_spec_augment_errors():
    backbone = HFAudioBackbone.from_pretrained(tiny_wav2vec2_dir(), clip_seconds=0.15)  # 7 frames < mask span 10
    backbone.train()
    features = backbone.forward_features(backbone.train_collate([_tone(300.0, 1.0)]))
    assert features.shape == (1, 32)


def test_save_files_and_from_files_round_trip(backbone, tmp_path):
    items = [_tone(300.0, 0.5), _tone(2500.0, 1.2, seed=1)]
    backbone.save_files(tmp_path)
    spec = json.loads((tmp_path / "transferkit_audio.json").read_text())
    assert spec == backbone.spec() and spec["source"] == "hf_audio_model"
    assert (tmp_path / "config.json").is_file() and (tmp_path / "preprocessor_config.json").is_file()
    assert not list(tmp_path.glob("*.safetensors"))  # weights travel in the caller's state dict
    rebuilt = HFAudioBackbone.from_files(tmp_path, spec)
    rebuilt.load_state_dict(backbone.state_dict())
    assert torch.equal(_features(rebuilt, items), _features(backbone, items))
    assert rebuilt.data_config == backbone.data_config


def test_blocks_cover_every_parameter_once_in_order(backbone):
    blocks = backbone.blocks()
    ids = [id(p) for block in blocks for p in block.parameters()]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in backbone.parameters()}
    layers = list(backbone.model.layers if backbone.spectrogram else backbone.model.encoder.layers)
    assert blocks[1 : 1 + len(layers)] == layers and len(layers) == 2
    stem = {id(p) for p in blocks[0].parameters()}
    if backbone.spectrogram:
        assert {id(p) for p in backbone.model.embeddings.parameters()} == stem
        assert list(blocks[-1].parameters()) == list(backbone.model.layernorm.parameters())
    else:
        assert {id(p) for p in backbone.model.feature_extractor.parameters()} <= stem
        final_norm = backbone.model.encoder.layer_norm.parameters()
        stable = backbone.model_type == "wav2vec2"  # pre-norm layers: the encoder's norm runs after them
        assert {id(p) for p in final_norm} <= ({id(p) for p in blocks[-1].parameters()} if stable else stem)
        assert len(blocks) == (4 if stable else 3)


def test_lora_targets_are_attention_projections(backbone):
    from transferkit.strategies.lora import LoraOptions, inject_adapters

    assert backbone.lora_targets == ["q_proj", "v_proj"]
    items = [_tone(300.0, 0.5)]
    before = _features(backbone, items)
    inject_adapters(backbone, LoraOptions())
    assert any("lora_A" in name for name, _ in backbone.named_parameters())
    assert torch.allclose(_features(backbone, items), before, atol=1e-6)  # adapters start at zero
    assert backbone.lora_targets == ["q_proj", "v_proj"]  # still found under peft's wrappers (recorded at save)
    assert len(backbone.blocks()) >= 3


def test_audio_model_directories_are_recognised(tmp_path):
    from transferkit.backbones.testing import tiny_bert_dir, tiny_whisper_dir

    assert all(is_audio_model_directory(make()) for make in DIRS.values())
    assert not is_audio_model_directory(tiny_whisper_dir())
    assert not is_audio_model_directory(tiny_bert_dir())
    assert not is_audio_model_directory(tmp_path)  # no config.json
    (tmp_path / "config.json").write_text("not json")
    assert not is_audio_model_directory(tmp_path)


def test_tiny_directories_leave_the_callers_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_wav2vec2_dir(seed=7)
    tiny_ast_dir(seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_other_model_types_are_refused(tmp_path):
    from transferkit.backbones.testing import tiny_bert_dir
    from transferkit.errors import BackboneError

    with pytest.raises(BackboneError, match="'bert' model"):
        HFAudioBackbone.from_pretrained(tiny_bert_dir())
