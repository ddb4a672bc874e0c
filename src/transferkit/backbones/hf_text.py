"""Adapter for Hugging Face text encoders (BERT, MiniLM, RoBERTa, ...) from a local directory or the hub."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.errors import BackboneError

MAX_LENGTH_CAP = 512
CHARS_PER_TOKEN_CAP = 128  # no tokenizer makes tokens this long: text beyond max_length * this is never read


def clip_texts(texts: list[str], max_length: int) -> list[str]:
    """Cut each text to `max_length * CHARS_PER_TOKEN_CAP` characters before tokenising: the tokens kept are the
    same, and a 10 MB text no longer takes seconds to tokenise only to be truncated."""
    limit = max(1, int(max_length)) * CHARS_PER_TOKEN_CAP
    return [text[:limit] if len(text) > limit else text for text in texts]


def quiet_transformers() -> None:
    """transformers 5 prints a progress bar per load; a CLI run should show only its own progress."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def default_pooling(directory: Path) -> str:
    """The pooling the model was trained with: sentence-transformers records it in 1_Pooling/config.json."""
    pooling_file = directory / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        config = json.loads(pooling_file.read_text())
        if config.get("pooling_mode_mean_tokens"):
            return "mean"
        if config.get("pooling_mode_cls_token"):
            return "cls"
    return "cls"


def default_max_length(directory: Path, tokenizer) -> int:
    st_config = directory / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return min(int(getattr(tokenizer, "model_max_length", MAX_LENGTH_CAP) or MAX_LENGTH_CAP), MAX_LENGTH_CAP)


def _without_pooler(factory, argument):
    """Our own pooling replaces BERT's pretrained pooler; architectures without one reject the flag."""
    try:
        return factory(argument, add_pooling_layer=False)
    except TypeError:
        return factory(argument)


def _weights_file_id(directory: Path) -> str | None:
    """Identity of the pretrained weight files (path, size, mtime): cheap, and valid until training changes them."""
    files = sorted(p for p in directory.glob("*") if p.suffix in (".safetensors", ".bin")) if directory.is_dir() else []
    if not files:
        return None
    return ";".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


class HFTextBackbone(nn.Module):
    """A transformers AutoModel + tokenizer with mean or CLS pooling."""

    source = "hf_text"

    def __init__(self, model: nn.Module, tokenizer, pooling: str, max_length: int, name: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self.name = name
        self.num_features = int(model.config.hidden_size)
        self.weights_id: str | None = None  # set when the weights come unchanged from files (see feature cache)

    @classmethod
    def from_pretrained(
        cls,
        location: str | Path,
        *,
        name: str | None = None,
        pooling: str | None = None,
        max_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> HFTextBackbone:
        from transformers import AutoModel, AutoTokenizer

        from transferkit.backbones.safety import pretrained_options

        quiet_transformers()
        location = str(location)
        options = pretrained_options(location, trust_remote_code)  # refuses unsafe pickles and untrusted code
        try:
            tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=options["trust_remote_code"])
            model = _without_pooler(partial(AutoModel.from_pretrained, **options), location)
        except (OSError, ValueError) as exc:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
            hint = (
                " You are offline (HF_HUB_OFFLINE=1): download the model elsewhere and pass its local directory."
                if offline or not Path(location).exists()
                else ""
            )
            raise BackboneError(
                f"Cannot load a text model from {location!r}: {str(exc).splitlines()[0]}{hint}"
            ) from None
        directory = Path(location)
        backbone = cls(
            model,
            tokenizer,
            pooling or default_pooling(directory),
            max_length or default_max_length(directory, tokenizer),
            name or location,
        )
        backbone.weights_id = _weights_file_id(directory)
        return backbone

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any], trust_remote_code: bool = False) -> HFTextBackbone:
        """Rebuild the architecture (random weights) from saved config + tokenizer; weights load afterwards."""
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from transferkit.backbones.safety import check_remote_code

        quiet_transformers()
        check_remote_code(directory, trust_remote_code)
        trust = {"trust_remote_code": bool(trust_remote_code)}
        model = _without_pooler(partial(AutoModel.from_config, **trust), AutoConfig.from_pretrained(directory, **trust))
        tokenizer = AutoTokenizer.from_pretrained(directory, **trust)
        return cls(model, tokenizer, spec["pooling"], spec["max_length"], spec["name"])

    # -- inputs -----------------------------------------------------------------------------------
    def encode(self, inputs: list[str]) -> list[list[int]]:
        texts = clip_texts(list(inputs), self.max_length)
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def collate(self, items: list[list[int]]) -> dict[str, torch.Tensor]:
        """Pad to the longest item in the batch (dynamic padding)."""
        return dict(self.tokenizer.pad({"input_ids": items}, padding=True, return_tensors="pt"))

    def item_length(self, item: list[int]) -> int:
        return len(item)

    # -- features ---------------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def blocks(self) -> list[nn.Module]:
        """Embeddings first, then transformer layers in order (for partial freezing, layer-wise LR)."""
        layers = max((m for m in self.model.modules() if isinstance(m, nn.ModuleList)), key=len, default=[])
        embeddings = self.model.get_input_embeddings()
        parent = getattr(self.model, "embeddings", embeddings)
        return [parent, *layers]

    @property
    def lora_targets(self) -> list[str]:
        names = {n.rsplit(".", 1)[-1] for n, m in self.model.named_modules() if isinstance(m, nn.Linear)}
        for group in (["query", "key", "value"], ["q_lin", "k_lin", "v_lin"], ["q_proj", "k_proj", "v_proj"]):
            if set(group) <= names:
                return group
        return sorted(names)

    @property
    def data_config(self) -> dict[str, Any]:
        return {"modality": "text", "max_length": self.max_length, "pooling": self.pooling}

    def spec(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "pooling": self.pooling, "max_length": self.max_length}

    def save_files(self, directory: Path) -> None:
        """The model's own config and tokenizer files (weights are saved by the artifact)."""
        from transferkit.backbones.safety import save_model_code

        save_model_code(self.model, directory)  # a trusted model's own code files, if it has any
        self.model.config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
