"""Integration: the embedded SmolLM2-135M-Instruct (GGUF in a pip package), converted, generating, adapted."""

from __future__ import annotations

import json

import pytest

import transferkit as tk

pytestmark = pytest.mark.slow
DIGITS = [
    ("Write in digits: seven hundred and twelve", "712"),
    ("Write in digits: forty thousand and three", "40003"),
    ("Write in digits: nineteen", "19"),
    ("Write in digits: six thousand five hundred", "6500"),
    ("Write in digits: eighty-one thousand two hundred and nine", "81209"),
    ("Write in digits: three hundred and thirty", "330"),
    ("Write in digits: ninety-nine", "99"),
    ("Write in digits: two thousand and twenty-four", "2024"),
] * 2


def test_smollm2_converts_once_answers_and_adapts_with_lora(tmp_path):
    from transformers import AutoConfig

    from transferkit.generation.models import smollm2_dir

    directory = smollm2_dir()
    assert smollm2_dir() == directory  # cached: the GGUF file is dequantised once
    config = AutoConfig.from_pretrained(str(directory))
    assert config.model_type == "llama" and config.num_hidden_layers == 30 and config.hidden_size == 576
    assert "quantization_config" not in json.loads((directory / "config.json").read_text())

    base = tk.GenerativeFineTuner.from_base("smollm2")
    assert "Paris" in base.generate("What is the capital of France?", max_new_tokens=12)[0]

    model = tk.FineTuner(task="generation", epochs=2, batch_size=8, val_fraction=0.0).fit(DIGITS, verbose=False)
    history = model.run_info_["training"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert model.run_info_["parameters"]["trainable_share"] < 0.01  # LoRA trains under 1% of the weights
    prompts = ["Write in digits: five hundred and one", "Write in digits: twelve thousand"]
    answers = model.generate(prompts, max_new_tokens=8)
    assert tk.load(model.save(tmp_path / "run")).generate(prompts, max_new_tokens=8) == answers
