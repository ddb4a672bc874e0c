"""Tiny random-init models registered like real ones, so unit tests run in well under a second.

`tiny-bert` is written once per process as a real local Hugging Face directory (config, WordPiece
vocabulary, random weights, a sentence-transformers pooling file), so tests exercise the same loading
code as a user's own model directory.
"""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

_DIRS: dict = {}  # seed or name -> directory written in this process

WORDS = (
    "the a an and or but not no is was are be been good bad great terrible awful fine love hate like film movie "
    "book food service place price quality it this that i you we they he she very really so too of to in on for "
    "with at by from up down out about what best worst happy sad angry fun boring nice poor excellent"
).split()


def _vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return specials + chars + ["##" + c for c in string.ascii_lowercase + string.digits] + WORDS


def _save_model(model, directory: Path) -> None:
    """config.json + model.safetensors, written by every process: transformers' save_pretrained writes nothing outside
    rank 0 once a process group exists, and each worker of a multi-process test run builds its own copy."""
    from safetensors.torch import save_file

    model.config.to_json_file(directory / "config.json")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, directory / "model.safetensors")


def tiny_bert_dir(seed: int = 0) -> Path:
    """Create (once) and return a directory holding a 2-layer, 32-wide random BERT and its tokenizer."""
    if seed in _DIRS:
        return _DIRS[seed]
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from transferkit.backbones.hf_text import quiet_transformers

    quiet_transformers()
    directory = Path(tempfile.mkdtemp(prefix="transferkit-tiny-bert-"))
    vocab = {token: i for i, token in enumerate(_vocab())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)  # transformers 5 signature
    tokenizer.save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
        pad_token_id=0,
    )
    with torch.random.fork_rng():  # the caller's RNG stream (its seed) must not depend on whether this ran before
        torch.manual_seed(seed)
        _save_model(BertModel(config), directory)
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    _DIRS[seed] = directory
    return directory


_TINY_EFFICIENTNET: dict = {}


def tiny_efficientnet_state(seed: int = 0) -> dict:
    """Random weights for timm's test_efficientnet, the same in every process (the caller's RNG untouched)."""
    if seed not in _TINY_EFFICIENTNET:
        import timm
        import torch

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = timm.create_model("test_efficientnet", pretrained=False, num_classes=0)
        _TINY_EFFICIENTNET[seed] = {k: v.clone() for k, v in model.state_dict().items()}
    return _TINY_EFFICIENTNET[seed]


def tiny_whisper_dir(seed: int = 0) -> Path:
    """Create (once) and return a directory holding a 2-layer, 32-wide random Whisper and its feature extractor."""
    key = f"whisper-{seed}"
    if key in _DIRS:
        return _DIRS[key]
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=32,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    directory = Path(tempfile.mkdtemp(prefix="transferkit-tiny-whisper-"))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        _save_model(WhisperModel(config), directory)
    WhisperFeatureExtractor(feature_size=80, sampling_rate=16000).save_pretrained(directory)
    _DIRS[key] = directory
    return directory
