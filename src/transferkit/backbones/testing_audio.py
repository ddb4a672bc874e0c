"""Tiny random-init Hugging Face audio model directories (wav2vec2, HuBERT, AST) for tests, written once per process.

Each is a real local directory (config, random weights, the model's own feature extractor), so tests exercise
the same loading code as a user's model directory. Weights are drawn inside `torch.random.fork_rng()`, so the
caller's RNG stream does not depend on whether a directory was written before.

The wav2vec2/HuBERT convolutional feature encoders use three convolutions with the released models' total
stride of 320 samples (20 ms at 16 kHz): 1 s of audio gives 49 frames, as wav2vec2-base does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

_DIRS: dict = {}  # (kind, seed) -> directory written in this process

RATE = 16000
_CONV = dict(conv_dim=(16, 16, 16), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8))  # 5 * 8 * 8 = 320
_TRANSFORMER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _write(kind: str, seed: int, model_factory, extractor) -> Path:
    import torch

    from transferkit.backbones.hf_text import quiet_transformers

    quiet_transformers()
    directory = Path(tempfile.mkdtemp(prefix=f"transferkit-tiny-{kind}-"))
    with torch.random.fork_rng():  # the caller's RNG stream (its seed) must not depend on whether this ran before
        torch.manual_seed(seed)
        model_factory().save_pretrained(directory)
    extractor.save_pretrained(directory)
    return directory


def tiny_wav2vec2_dir(seed: int = 0) -> Path:
    """A 2-layer, 32-wide random wav2vec2 with a layer-norm feature encoder and pre-norm ("stable layer norm")
    layers, like wav2vec2-large-lv60: its extractor returns an attention mask, which the model takes."""
    key = ("wav2vec2", seed)
    if key not in _DIRS:
        from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

        config = Wav2Vec2Config(
            **_TRANSFORMER,
            **_CONV,
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            vocab_size=8,
        )
        extractor = Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
        )
        _DIRS[key] = _write("wav2vec2", seed, lambda: Wav2Vec2Model(config), extractor)
    return _DIRS[key]


def tiny_hubert_dir(seed: int = 0) -> Path:
    """A 2-layer, 32-wide random HuBERT with a group-norm feature encoder, like hubert-base: no attention mask."""
    key = ("hubert", seed)
    if key not in _DIRS:
        from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

        config = HubertConfig(
            **_TRANSFORMER,
            **_CONV,
            feat_extract_norm="group",
            do_stable_layer_norm=False,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            vocab_size=8,
        )
        extractor = Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True, return_attention_mask=False
        )
        _DIRS[key] = _write("hubert", seed, lambda: HubertModel(config), extractor)
    return _DIRS[key]


def tiny_ast_dir(seed: int = 0) -> Path:
    """A 2-layer, 32-wide random Audio Spectrogram Transformer on a 128-frame (1.28 s), 32-bin filterbank
    (released ASTs: 1024 frames, 128 bins), 16x16 patches at stride 10 as released."""
    key = ("ast", seed)
    if key not in _DIRS:
        from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

        config = ASTConfig(
            **_TRANSFORMER, patch_size=16, frequency_stride=10, time_stride=10, max_length=128, num_mel_bins=32
        )
        extractor = ASTFeatureExtractor(feature_size=1, sampling_rate=RATE, num_mel_bins=32, max_length=128)
        _DIRS[key] = _write("ast", seed, lambda: ASTModel(config), extractor)
    return _DIRS[key]
