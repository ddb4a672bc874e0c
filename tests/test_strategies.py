"""One conformance table: every strategy through the same checks on the tiny backbone."""

import numpy as np
import pytest
import torch

import transferkit as tk
from conftest import TINY, toy_sentiment
from transferkit.backbones import build_backbone
from transferkit.errors import TrainingError
from transferkit.training import checkpoint as checkpoint_module
from transferkit.training import loop as loop_module

PROBE_TEXTS = ["good film", "awful boring movie, the worst", "it was fine", "love it love it really very much"]


def _base_name(name: str) -> str:
    """Backbone parameter names without peft's wrapping."""
    return name.replace("base_model.model.", "").replace(".base_layer", "")


# strategy, extra options, must-stay-identical(name), must-change(name)
TABLE = [
    ("probe", {}, lambda n: True, lambda n: False),
    (
        "freeze",
        {"trainable_blocks": 1},
        lambda n: not n.startswith("encoder.layer.1."),
        lambda n: n.startswith("encoder.layer.1.") and n.endswith("dense.weight"),
    ),
    ("lora", {"lora_r": 4}, lambda n: "lora_" not in n, lambda n: "lora_B" in n),
    ("full", {}, lambda n: False, lambda n: n.endswith("dense.weight")),
    ("lp-ft", {"head_epochs": 5}, lambda n: False, lambda n: n.endswith("dense.weight")),
    (
        "contrastive",
        {"lora_r": 4, "contrastive_epochs": 3, "head_epochs": 5},
        lambda n: "lora_" not in n,
        lambda n: "lora_B" in n,
    ),
]
IDS = [row[0] for row in TABLE]


def _fit(strategy, options, **kwargs):
    params = {**TINY, "strategy": strategy, **options, "val_fraction": 0.2, "checkpoint_steps": 3}
    return tk.FineTuner(**params).fit(*toy_sentiment(120), verbose=False, **kwargs)


@pytest.mark.parametrize("strategy, options, frozen, changes", TABLE, ids=IDS)
def test_frozen_stay_identical_and_trainable_change(strategy, options, frozen, changes):
    before = {k: v.clone() for k, v in build_backbone("tiny-bert").model.state_dict().items()}
    model = _fit(strategy, options)
    after = {_base_name(k): v for k, v in model.model_.backbone.model.state_dict().items()}
    for name, value in after.items():
        if name in before and frozen(name):
            assert torch.equal(value, before[name]), f"{strategy}: frozen {name} changed"
        if changes(name):
            assert name not in before or not torch.equal(value, before[name]), f"{strategy}: {name} did not train"
    assert any(changes(n) for n in after) or strategy == "probe"
    assert model.score(*toy_sentiment(40, seed=1)) >= 0.75
    share = model.run_info_["parameters"]["trainable_share"]
    assert 0 < share <= 1 and (share < 0.2) == (strategy in ("probe", "lora", "contrastive")), share


@pytest.mark.parametrize("strategy, options", [(row[0], row[1]) for row in TABLE], ids=IDS)
def test_save_load_identical_predictions(tmp_path, strategy, options):
    model = _fit(strategy, options)
    model.save(tmp_path / "run")
    reloaded = tk.load(tmp_path / "run")
    assert np.array_equal(reloaded.predict_proba(PROBE_TEXTS), model.predict_proba(PROBE_TEXTS))


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("strategy, options", [(row[0], row[1]) for row in TABLE], ids=IDS)
def test_resume_equals_uninterrupted(tmp_path, monkeypatch, strategy, options):
    original = checkpoint_module.Checkpointer.save
    saves = []

    def counting(self, phase, state):
        original(self, phase, state)
        saves.append(phase)

    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", counting)
    reference = _fit(strategy, options, checkpoint_dir=tmp_path / "a")
    stop_after = len(saves) // 2 + 1  # past the middle: inside the fine-tuning phase for lp-ft
    saves.clear()

    def crashing(self, phase, state):
        counting(self, phase, state)
        if len(saves) == stop_after:
            raise Interrupted(f"killed after checkpoint {stop_after} ({phase})")

    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", crashing)
    with pytest.raises(Interrupted):
        _fit(strategy, options, checkpoint_dir=tmp_path / "b")
    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", original)
    resumed = _fit(strategy, options, checkpoint_dir=tmp_path / "b", resume=True)

    resumed_phases = [p for p in resumed.run_info_["training"].values() if p["resumed_from_step"] is not None]
    assert resumed_phases, "the second run did not resume"
    ours, theirs = reference.model_.state_dict(), resumed.model_.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), f"{strategy}: {key} differs after resume"


def test_probe_runs_the_backbone_once_per_example(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    first = _fit("probe", {})
    assert first.run_info_["feature_cache"]["computed"] > 0
    second = _fit("probe", {"head_lr": 0.05})  # a different head sweep point, same data and backbone
    cache = second.run_info_["feature_cache"]
    assert cache["computed"] == 0 and cache["hits"] == 120


def test_corrupt_cache_shard_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    first = _fit("probe", {})
    shards = list((tmp_path / "features").rglob("shard-*.safetensors"))
    assert shards
    for shard in shards:
        shard.write_bytes(b"garbage")
    again = _fit("probe", {})
    assert again.run_info_["feature_cache"]["computed"] == 120
    assert np.array_equal(first.predict_proba(PROBE_TEXTS), again.predict_proba(PROBE_TEXTS))


def test_nan_loss_names_the_step_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}

    class NanAfterEpochOne(torch.nn.CrossEntropyLoss):
        def forward(self, logits, targets):
            calls["n"] += 1
            loss = super().forward(logits, targets)
            return loss * float("nan") if calls["n"] > 8 else loss

    monkeypatch.setattr(loop_module.nn, "CrossEntropyLoss", NanAfterEpochOne)
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, step \d+.*Lower the learning rate"):
        _fit("full", {"checkpoint_steps": None}, checkpoint_dir=tmp_path)
    saved = torch.load(tmp_path / "full.pt", weights_only=True)
    assert saved["loop"]["epoch"] == 2 and saved["loop"]["batches_done"] == 0  # epoch 1's checkpoint, untouched


def test_lora_merge_at_save(tmp_path):
    import json

    model = _fit("lora", {"merge_adapters": True})
    before = model.predict_proba(PROBE_TEXTS)
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    assert manifest["strategy_info"]["merged"] is True and not (tmp_path / "run" / "adapter").exists()
    assert np.allclose(model.predict_proba(PROBE_TEXTS), before, atol=1e-5)
    assert np.array_equal(tk.load(tmp_path / "run").predict_proba(PROBE_TEXTS), model.predict_proba(PROBE_TEXTS))
    assert manifest["native_export"]["written"] is True


def test_unmerged_lora_saves_peft_adapter_and_plain_transformers_model(tmp_path):
    import json

    from peft import PeftModel
    from transformers import AutoModel

    model = _fit("lora", {})
    model.save(tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "transferkit.json").read_text())
    assert manifest["strategy_info"]["merged"] is False and manifest["native_export"]["written"] is True
    peft_dir = tmp_path / "run" / "adapter"
    assert (peft_dir / "adapter_config.json").is_file() and (peft_dir / "adapter_model.safetensors").is_file()
    # The adapter is peft's own format: base model + adapter with plain transformers + peft gives the same features.
    from transferkit.backbones.testing import tiny_bert_dir

    base = AutoModel.from_pretrained(tiny_bert_dir(), add_pooling_layer=False)
    plain = PeftModel.from_pretrained(base, peft_dir).eval()
    batch = model.model_.backbone.collate(model.model_.backbone.encode(PROBE_TEXTS))
    with torch.no_grad():
        ours = model.model_.backbone.model(**batch).last_hidden_state
        theirs = plain(**batch).last_hidden_state
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_layer_lr_decay_gives_lower_rates_to_earlier_blocks():
    from transferkit.config import RunConfig
    from transferkit.training.fit import build_model

    config = RunConfig.from_dict({**TINY, "strategy": "freeze", "trainable_blocks": 3, "layer_lr_decay": 0.5})
    model, strategy = build_model(config, 2)
    phase = strategy.phases(config)[0]
    phase.prepare(model)
    groups = phase.param_groups(model, config.train)
    rates = {}
    for group in groups:
        for param in group["params"]:
            rates[id(param)] = group["lr"]
    blocks = model.backbone.blocks()  # embeddings, layer 0, layer 1
    block_rates = [rates[id(next(block.parameters()))] for block in blocks]
    assert block_rates == [TINY["lr"] * 0.25, TINY["lr"] * 0.5, TINY["lr"]]
    assert rates[id(model.head.out.weight)] == TINY["head_lr"]


def test_freeze_rejects_more_blocks_than_the_backbone_has():
    from transferkit.errors import ConfigError

    with pytest.raises(ConfigError, match="trainable_blocks=9 but this backbone has only 3 blocks"):
        _fit("freeze", {"trainable_blocks": 9})


def test_probe_evaluation_reads_features_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    model = _fit("probe", {})
    test = toy_sentiment(40, seed=1)
    first = model.evaluate(*test)
    calls = []
    original = model.model_.backbone.forward_features
    monkeypatch.setattr(model.model_.backbone, "forward_features", lambda batch: calls.append(1) or original(batch))
    again = model.evaluate(*test)
    assert calls == [] and again["accuracy"] == first["accuracy"]
    assert np.allclose(model.predict_proba(test[0]), model._probabilities(test[0], cached=True), atol=1e-6)
