"""A text backbone's tokenizer and max length without its weights: counts tokens for the data checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from transferkit.errors import BackboneError
from transferkit.registry import closest_match_hint

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")


def _embedded_text_dirs() -> dict[str, Callable[[], Path]]:
    """Registered text backbones -> the directory holding their tokenizer (no model is built for minilm)."""
    from transferkit.backbones.embedded import minilm_dir
    from transferkit.backbones.testing import tiny_bert_dir

    return {"minilm": minilm_dir, "tiny-bert": tiny_bert_dir}


def _not_text(path: Path) -> bool:
    """A local model directory of an audio or vision model (whisper's holds tokenizer files too)."""
    from transferkit.backbones.hf_audio import is_whisper_directory
    from transferkit.backbones.hf_audio_models import is_audio_model_directory
    from transferkit.backbones.hf_vision import is_vision_directory

    return is_whisper_directory(path) or is_audio_model_directory(path) or is_vision_directory(path)


def _tokenizer_source(name: str) -> tuple[str | None, int | None]:
    """(where the tokenizer is, the run's max_length when recorded); (None, None) for non-text backbones."""
    from transferkit.backbones import BACKBONES
    from transferkit.export.artifact import BACKBONE_DIR, is_run_dir, read_manifest

    embedded = _embedded_text_dirs()
    if name in embedded:
        return str(embedded[name]()), None
    path = Path(name).expanduser()
    if is_run_dir(path):
        spec = read_manifest(path).get("backbone") or {}
        if spec.get("source") != "hf_text":
            return None, None
        return str(path / BACKBONE_DIR), spec.get("max_length")
    if name in BACKBONES or name.startswith(("mlp:", "timm:", "module:")):
        return None, None  # image, audio and vector backbones: nothing is truncated by tokens
    if path.is_dir():
        if _not_text(path) or not any((path / f).is_file() for f in TOKENIZER_FILES):
            return None, None
        return str(path), None
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1:
        return name, None  # a hub id: found in the local cache, or a clear error offline
    raise BackboneError(
        f"Unknown backbone {name!r}: not a registered name and not an existing directory."
        f"{closest_match_hint(name, BACKBONES.names())} Text backbones: {', '.join(_embedded_text_dirs())}, a saved "
        "transferkit run, a local model directory, or a hub id."
    )


def token_counter(
    backbone: str, trust_remote_code: bool = False
) -> tuple[Callable[[list[str]], list[int]], int] | None:
    """(count_tokens, max_length) of a text backbone: a registered name (minilm), a saved run, a local model
    directory or a cached hub id. Only the tokenizer loads. None when the backbone does not read text.

    Counts include the special tokens ([CLS], [SEP]), as the backbone's own encoding does before it truncates.
    """
    source, max_length = _tokenizer_source(backbone)
    if source is None:
        return None
    from transformers import AutoTokenizer

    from transferkit.backbones.hf_text import clip_texts, default_max_length, quiet_transformers
    from transferkit.backbones.safety import pretrained_options

    quiet_transformers()
    options = pretrained_options(source, trust_remote_code, weights=False)  # a tokenizer may bring code too
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
    except (OSError, ValueError) as exc:
        raise BackboneError(
            f"Cannot load the tokenizer of {backbone!r}: {str(exc).splitlines()[0]} Pass a registered text backbone "
            "(see `transferkit backbones`), a saved run, or a local model directory."
        ) from None
    max_length = int(max_length or default_max_length(Path(source), tokenizer))

    def count_tokens(texts: list[str]) -> list[int]:  # far beyond max_length, only "too long" matters: clipped
        return [len(ids) for ids in tokenizer(clip_texts(list(texts), max_length), truncation=False)["input_ids"]]

    return count_tokens, max_length
