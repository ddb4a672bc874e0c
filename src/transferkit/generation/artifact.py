"""The run directory of a generative fit, loadable without transferkit.

transferkit.json                     task, base model, strategy, training record, metrics, versions
tokenizer files, chat template       the tokenizer the model was trained with
adapter_config.json + adapter_model.safetensors
                                     lora (unmerged): `peft.AutoPeftModelForCausalLM.from_pretrained(run)`
                                     (the adapter config points at the base model's directory)
config.json + model.safetensors + generation_config.json
                                     full, or lora with merge_adapters: a standalone model,
                                     `transformers.AutoModelForCausalLM.from_pretrained(run)`
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from transferkit.errors import ArtifactError

ADAPTER_CONFIG = "adapter_config.json"


def has_adapters(model) -> bool:
    return hasattr(model, "peft_config")


def save_generation_run(directory: str | Path, model, tokenizer, manifest: dict[str, Any], overwrite: bool) -> Path:
    from transferkit.export.artifact import write_atomically, write_manifest

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():  # transformers 5 deprecation noise from inside peft
            warnings.simplefilter("ignore", FutureWarning)
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp, manifest)

    return write_atomically(directory, overwrite, write)


def load_generation_model(directory: Path, manifest: dict[str, Any], trust_remote_code: bool = False):
    """(model, tokenizer) of a saved generative run; an unmerged adapter is put back on its base model.

    `trust_remote_code`: the caller's permission for a model with code of its own (auto_map) to run it."""
    from transferkit.generation.models import load_causal_lm, load_tokenizer, resolve_causal_lm

    if (directory / ADAPTER_CONFIG).is_file():
        from peft import PeftModel

        base_name = manifest.get("base_model")
        try:
            base_dir = resolve_causal_lm(base_name)
        except Exception:  # a local base that moved: fall back to where it was when trained
            base_dir = Path(manifest.get("base_dir", ""))
        if not (base_dir / "config.json").is_file():
            raise ArtifactError(
                f"The base model of {str(directory)!r} ({base_name}) is not available here. Put it back at "
                f"{manifest.get('base_dir')}, or save runs with --merge-adapters to make them standalone."
            )
        base, _ = load_causal_lm(base_dir, trust_remote_code)
        with warnings.catch_warnings():  # transformers 5 deprecation noise from inside peft
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(base, str(directory))
        tokenizer = load_tokenizer(directory, trust_remote_code)
    else:
        model, tokenizer = load_causal_lm(directory, trust_remote_code)
    model.requires_grad_(False)
    return model.eval(), tokenizer
