"""Adapter for Whisper's encoder as an audio backbone: log-mel features, a short window, mean-pooled states.

Every clip is brought to one window of `clip_seconds` (longer clips: a random crop while training, the
centre crop for evaluation and the feature cache; shorter ones: zero-padded), turned into log-mel features
by the model's own `WhisperFeatureExtractor`, and encoded on that window plus a second of padding instead of
Whisper's 30 s (see whisper_clip.py: 15x faster for 1 s clips, features close to the full-window ones).
The pooled feature is the mean of the encoder states over the clip's own frames (padding excluded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.backbones.audio_inputs import AudioInputs
from transferkit.errors import BackboneError

AUDIO_CONFIG = "transferkit_audio.json"


class WhisperAudioBackbone(AudioInputs, nn.Module):
    source = "hf_audio"

    def __init__(
        self, encoder: nn.Module, feature_extractor, name: str, clip_seconds=1.0, augment=True, trim_silence=False
    ):
        super().__init__()
        self.trim_silence = trim_silence
        self.model = encoder
        self.feature_extractor = feature_extractor
        self.name = name
        self.clip_seconds = float(clip_seconds)
        self.augment = augment
        self.num_features = int(encoder.config.d_model)
        self.sampling_rate = int(feature_extractor.sampling_rate)
        self.weights_id: str | None = None

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        *,
        name: str | None = None,
        clip_seconds=None,
        augment=True,
        trim_silence=False,
        trust_remote_code: bool = False,
    ):
        """The encoder of a local Hugging Face Whisper directory (the decoder is dropped)."""
        from transformers import WhisperFeatureExtractor, WhisperModel

        from transferkit.backbones.hf_text import quiet_transformers
        from transferkit.backbones.safety import check_remote_code, weight_options

        quiet_transformers()
        directory = Path(directory)
        # transformers' own Whisper class runs no remote code; a directory asking for it is refused all the same
        check_remote_code(directory, trust_remote_code)
        weights = weight_options(directory)  # safetensors, or pickles that load weights-only
        try:
            encoder = WhisperModel.from_pretrained(directory, **weights).get_encoder()
            features = WhisperFeatureExtractor.from_pretrained(directory)
        except (OSError, ValueError) as exc:
            raise BackboneError(f"Cannot load a Whisper model from {str(directory)!r}: {exc}") from None
        backbone = cls(encoder, features, name or str(directory), clip_seconds or 1.0, augment, trim_silence)
        safetensors = directory / "model.safetensors"
        if safetensors.is_file():
            stat = safetensors.stat()
            backbone.weights_id = f"{safetensors.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return backbone

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any]) -> WhisperAudioBackbone:
        from transformers import WhisperConfig, WhisperFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        config = WhisperConfig.from_pretrained(directory)
        encoder = WhisperEncoder(config)
        features = WhisperFeatureExtractor.from_pretrained(directory)
        return cls(
            encoder, features, spec["name"], spec["clip_seconds"], spec.get("augment", True), spec.get("trim_silence")
        )

    # -- inputs -----------------------------------------------------------------------------------
    def _features(self, waves: list[Any], lengths: list[int]) -> dict[str, torch.Tensor]:
        hop = self.feature_extractor.hop_length
        window = (-(-self.clip_samples // self.sampling_rate) + 1) * self.sampling_rate  # clip + 1 s, whole seconds
        extracted = self.feature_extractor(
            waves, sampling_rate=self.sampling_rate, padding="max_length", max_length=window, return_tensors="pt"
        )
        frames = torch.tensor([max(1, n // hop) for n in lengths])
        return {"input_features": extracted["input_features"], "frames": frames}

    # -- features ---------------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from transferkit.backbones.whisper_clip import encode_clip, encode_clip_static, window_sizes

        if torch.jit.is_tracing():  # ONNX export: no loop over the batch's windows, every possible window in the graph
            sizes = window_sizes(self.clip_samples // self.feature_extractor.hop_length)
            return encode_clip_static(self.model, batch["input_features"], batch["frames"], sizes)
        return encode_clip(self.model, batch["input_features"], batch["frames"])

    def blocks(self) -> list[nn.Module]:
        """The convolutional stem with the position table, each transformer layer, the final layer norm."""
        model = self.model
        stem = nn.ModuleList([model.conv1, model.conv2, model.embed_positions])
        return [stem, *model.layers, nn.ModuleList([model.layer_norm])]

    @property
    def lora_targets(self) -> list[str]:
        return ["q_proj", "v_proj"]

    @property
    def data_config(self) -> dict[str, Any]:
        return self.audio_data_config()

    def spec(self) -> dict[str, Any]:
        return self.audio_spec()

    def save_files(self, directory: Path) -> None:
        self.model.config.save_pretrained(directory)
        self.feature_extractor.save_pretrained(directory)
        (directory / AUDIO_CONFIG).write_text(json.dumps(self.spec(), indent=2) + "\n")


def is_whisper_directory(path: Path) -> bool:
    try:
        return json.loads((path / "config.json").read_text()).get("model_type") == "whisper"
    except (OSError, ValueError):
        return False
