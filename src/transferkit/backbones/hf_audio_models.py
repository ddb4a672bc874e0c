"""Adapter for Hugging Face audio encoders (wav2vec2, HuBERT, WavLM, data2vec-audio, UniSpeech, SEW, AST).

Any local directory whose config.json names one of `AUDIO_MODEL_TYPES` loads as `AutoModel` (the base model, no
head) with its `AutoFeatureExtractor`, at the extractor's sampling rate. Every clip is brought to one window of
`clip_seconds` as in hf_audio.py (longer clips: a random crop while training, the centre crop for evaluation and
the feature cache; shorter ones: zero-padded), so a clip's features never depend on the rest of its batch.

Pooling, per model family:

- raw-waveform models (`input_values` are samples: wav2vec2, HuBERT, ...): the mean of `last_hidden_state` over
  the frames that cover the clip's real samples (`_get_feat_extract_output_lengths`; the zero padding of short
  clips is excluded). The extractor normalises each clip over its real samples only. The padding attention mask
  is passed to the model only where its extractor says the model was trained with one
  (`return_attention_mask`: models with layer-norm feature encoders, e.g. wav2vec2-large-lv60); group-norm models
  (wav2vec2-base, HuBERT-base) take zero-padded input without a mask, as Hugging Face documents.
  While training, the model's own SpecAugment (`mask_time_prob` in its config, NumPy's global RNG, which the
  trainer seeds and checkpoints) and LayerDrop run as in Hugging Face's *ForSequenceClassification fine-tuning.
- AST (`input_values` are a fixed `max_length` x `num_mel_bins` filterbank; the extractor zero-pads short clips in
  the filterbank domain): `pooler_output`, the mean of the CLS and distillation tokens, which is what
  `ASTForAudioClassification`'s head reads. AST's window is fixed (1024 frames = 10.24 s for the released
  checkpoints), so clips longer than it are truncated by the extractor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.backbones.audio_inputs import AudioInputs
from transferkit.backbones.hf_audio import AUDIO_CONFIG
from transferkit.errors import BackboneError

WAVEFORM_TYPES = {
    "wav2vec2",
    "wav2vec2-conformer",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "unispeech",
    "unispeech-sat",
    "sew",
    "sew-d",
}
SPECTROGRAM_TYPES = {"audio-spectrogram-transformer"}
AUDIO_MODEL_TYPES = WAVEFORM_TYPES | SPECTROGRAM_TYPES
# the attention projections LoRA targets, by naming scheme (the first one present in the model wins)
_QV_NAMES = (("q_proj", "v_proj"), ("query", "value"), ("query_proj", "value_proj"), ("linear_q", "linear_v"))
_LAYER_PATHS = ("encoder.layers", "encoder.layer", "layers", "encoder.encoder.layer")
_MIN_AST_SAMPLES = 400  # one 25 ms filterbank frame at 16 kHz


def is_audio_model_directory(path: str | Path) -> bool:
    """A local Hugging Face directory whose config.json `model_type` is one of `AUDIO_MODEL_TYPES`."""
    return _model_type(Path(path)) in AUDIO_MODEL_TYPES


def _model_type(directory: Path) -> str | None:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def _check_model_type(model_type: str | None, name: str) -> None:
    if model_type not in AUDIO_MODEL_TYPES:
        raise BackboneError(
            f"{name!r} is a {model_type!r} model, not an audio encoder this adapter takes: model types "
            f"{', '.join(sorted(AUDIO_MODEL_TYPES))} (Whisper directories have their own adapter)."
        )


class HFAudioBackbone(AudioInputs, nn.Module):
    source = "hf_audio_model"

    def __init__(
        self, model: nn.Module, feature_extractor, name: str, clip_seconds=1.0, augment=True, trim_silence=False
    ):
        super().__init__()
        config = model.config
        _check_model_type(config.model_type, name)
        self.model = model
        self.feature_extractor = feature_extractor
        self.name = name
        self.clip_seconds = float(clip_seconds)
        self.augment = augment
        self.trim_silence = trim_silence
        self.model_type = config.model_type
        self.spectrogram = self.model_type in SPECTROGRAM_TYPES
        adapter_width = getattr(config, "output_hidden_size", None) if getattr(config, "add_adapter", False) else None
        self.num_features = int(adapter_width or config.hidden_size)
        self.sampling_rate = int(feature_extractor.sampling_rate)
        self.input_name = feature_extractor.model_input_names[0]
        self.weights_id: str | None = None
        if self.clip_samples < 1:
            raise BackboneError(f"clip_seconds={clip_seconds!r} is shorter than one sample.")

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
    ) -> HFAudioBackbone:
        """The base model (no head) and feature extractor of a local Hugging Face audio model directory."""
        from transformers import AutoFeatureExtractor, AutoModel

        from transferkit.backbones.hf_text import _weights_file_id, quiet_transformers
        from transferkit.backbones.safety import pretrained_options

        quiet_transformers()
        directory = Path(directory)
        _check_model_type(_model_type(directory), str(directory))
        options = pretrained_options(directory, trust_remote_code)  # refuses unsafe pickles and untrusted code
        try:
            model = AutoModel.from_pretrained(directory, **options)
            features = AutoFeatureExtractor.from_pretrained(directory, trust_remote_code=options["trust_remote_code"])
        except (OSError, ValueError) as exc:
            raise BackboneError(
                f"Cannot load an audio model from {str(directory)!r}: {str(exc).splitlines()[0]}"
            ) from None
        backbone = cls(model, features, name or str(directory), clip_seconds or 1.0, augment, trim_silence)
        backbone.weights_id = _weights_file_id(directory)
        return backbone

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any], trust_remote_code: bool = False) -> HFAudioBackbone:
        """The architecture from saved config and extractor files; the caller loads the weights."""
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

        from transferkit.backbones.hf_text import quiet_transformers
        from transferkit.backbones.safety import check_remote_code

        quiet_transformers()
        check_remote_code(directory, trust_remote_code)
        trust = {"trust_remote_code": bool(trust_remote_code)}
        model = AutoModel.from_config(AutoConfig.from_pretrained(directory, **trust), **trust)
        features = AutoFeatureExtractor.from_pretrained(directory, **trust)
        return cls(
            model,
            features,
            spec["name"],
            spec.get("clip_seconds", 1.0),
            spec.get("augment", True),
            spec.get("trim_silence", False),
        )

    # -- inputs -----------------------------------------------------------------------------------
    def _features(self, waves: list[Any], lengths: list[int]) -> dict[str, torch.Tensor]:
        """Cropped waves -> model inputs; raw-waveform models also get the frames to pool over."""
        import numpy as np

        lengths = [max(1, n) for n in lengths]
        waves = [w[:n] for w, n in zip(waves, lengths)]  # unpadded: the extractor pads (and masks) to the window
        if self.spectrogram:  # the extractor pads the filterbank to its fixed max_length
            waves = [np.pad(w, (0, max(0, _MIN_AST_SAMPLES - len(w)))) for w in waves]
            extracted = self.feature_extractor(waves, sampling_rate=self.sampling_rate, return_tensors="pt")
            return {self.input_name: extracted[self.input_name]}
        extracted = self.feature_extractor(
            waves,
            sampling_rate=self.sampling_rate,
            padding="max_length",
            max_length=self.clip_samples,
            return_attention_mask=True,  # normalisation over each clip's real samples only
            return_tensors="pt",
        )
        batch = {self.input_name: extracted[self.input_name], "frames": self.frame_counts(lengths)}
        if getattr(self.feature_extractor, "return_attention_mask", False):
            batch["attention_mask"] = extracted["attention_mask"]
        return batch

    # -- features ---------------------------------------------------------------------------------
    def _base(self) -> nn.Module:
        """The transformers model, under peft's wrapper when LoRA adapters are injected."""
        return self.model.get_base_model() if hasattr(self.model, "peft_config") else self.model

    def frame_counts(self, lengths: list[int] | torch.Tensor) -> torch.Tensor:
        """Encoder frames covering each clip's first `lengths` samples (at least one)."""
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        base = self._base()
        if hasattr(base, "_get_feat_extract_output_lengths"):
            frames = base._get_feat_extract_output_lengths(lengths)
        else:
            frames = _conv_lengths(base.config, lengths)
        return torch.as_tensor(frames, dtype=torch.long).clamp(min=1)

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {self.input_name: batch[self.input_name]}
        if self.spectrogram:
            return self.model(**inputs).pooler_output
        if "attention_mask" in batch:
            inputs["attention_mask"] = batch["attention_mask"]
        values = batch[self.input_name]
        no_masking = self._spec_augment_guard(values)
        if no_masking is not None:
            inputs["mask_time_indices"] = no_masking
        hidden = self.model(**inputs).last_hidden_state
        frames = batch["frames"].to(hidden.device).clamp(max=hidden.shape[1])
        mask = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < frames[:, None]).to(hidden.dtype)
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)

    def _spec_augment_guard(self, values: torch.Tensor) -> torch.Tensor | None:
        """An all-False time mask when the window has fewer frames than one SpecAugment span (which HF refuses)."""
        config = self._base().config
        if not (self.model.training and getattr(config, "apply_spec_augment", True)):
            return None
        if getattr(config, "mask_time_prob", 0.0) <= 0:
            return None
        frames = int(_conv_lengths(config, torch.tensor(values.shape[-1])))
        if frames >= getattr(config, "mask_time_length", 1):
            return None
        return torch.zeros(values.shape[0], max(frames, 0), dtype=torch.bool, device=values.device)

    def blocks(self) -> list[nn.Module]:
        """The stem (feature encoder, projection, positional convolution / AST embeddings, and any norm or pooling
        applied before the first layer), each transformer layer in order, then what runs after the last layer (the
        final layer norm of AST and of pre-norm "stable layer norm" models, SEW's upsampling, a wav2vec2 adapter).
        Every parameter is in exactly one block."""
        model = self._base()
        path = next((p for p in _LAYER_PATHS if isinstance(_get(model, p), nn.ModuleList)), None)
        if path is None:
            raise BackboneError(f"Cannot find the transformer layers of this {self.model_type!r} model.")
        tail_names = set(_tail_names(model))
        stem, tail = [], []
        parts = path.split(".")
        container, prefix = model, ""
        for depth, part in enumerate(parts):
            own = [(n, p) for n, p in container.named_parameters(recurse=False)]  # e.g. masked_spec_embed
            if own:
                stem.append(_Holder(own))
            for child_name, child in container.named_children():
                full = prefix + child_name
                if child_name == part:
                    continue
                (tail if full in tail_names else stem).append(child)
            if depth < len(parts) - 1:
                container, prefix = getattr(container, part), prefix + part + "."
        layers = list(_get(model, path))
        return [nn.ModuleList(stem), *layers] + ([nn.ModuleList(tail)] if tail else [])

    @property
    def lora_targets(self) -> list[str]:
        names = {n.rsplit(".", 1)[-1] for n, _ in self._base().named_modules()}  # peft's wrappers are not nn.Linear
        for group in _QV_NAMES:
            if set(group) <= names:
                return list(group)
        raise BackboneError(f"No attention query/value projections found in this {self.model_type!r} model.")

    @property
    def data_config(self) -> dict[str, Any]:
        return {
            **self.audio_data_config(),
            "model_type": self.model_type,
            "pooling": "pooler_output" if self.spectrogram else "mean",
        }

    def spec(self) -> dict[str, Any]:
        return self.audio_spec()

    def save_files(self, directory: Path) -> None:
        from transferkit.backbones.safety import save_model_code

        save_model_code(self._base(), directory)  # a trusted model's own code files, if it has any
        self._base().config.save_pretrained(directory)
        self.feature_extractor.save_pretrained(directory)
        (Path(directory) / AUDIO_CONFIG).write_text(json.dumps(self.spec(), indent=2) + "\n")


class _Holder(nn.Module):
    """Parameters registered directly on a container (not in a submodule), so a block can hold them."""

    def __init__(self, named: list[tuple[str, nn.Parameter]]):
        super().__init__()
        for name, param in named:
            self.register_parameter(name, param)


def _get(module: nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _tail_names(model: nn.Module) -> list[str]:
    """Modules (dotted names from the model) that run after the last transformer layer."""
    names = ["layernorm", "adapter", "encoder.upsample"]  # AST's final norm; wav2vec2 adapter; SEW upsampling
    encoder = type(getattr(model, "encoder", None)).__name__
    # pre-norm encoders (the *EncoderStableLayerNorm classes, built for do_stable_layer_norm=True, and the
    # conformer) normalise after the layers; the others (and data2vec-audio, which ignores that flag) before them
    if encoder.endswith("StableLayerNorm") or model.config.model_type == "wav2vec2-conformer":
        names.append("encoder.layer_norm")
    return names


def _conv_lengths(config, lengths: torch.Tensor) -> torch.Tensor:
    """Frames out of the convolutional feature encoder (without any adapter) for `lengths` samples."""
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
    return lengths
