import pytest

from transferkit.config import RunConfig, load_config_file
from transferkit.errors import ConfigError, TransferkitError


def test_flat_and_nested_mappings_build_the_same_config():
    flat = RunConfig.from_dict({"epochs": 5, "backbone": "tiny-bert", "head": "mlp"})
    nested = RunConfig.from_dict(
        {"train": {"epochs": 5}, "backbone": {"backbone": "tiny-bert"}, "head": {"head": "mlp"}}
    )
    assert flat == nested
    assert flat.train.epochs == 5 and flat.head.head == "mlp"
    assert RunConfig.from_dict(flat.to_dict()) == flat
    assert RunConfig.from_dict(flat.to_flat_dict()) == flat


def test_unknown_keys_are_all_reported_with_a_suggestion():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"epoch": 3, "learning_rate_x": 1, "lr": 1e-4})
    message = str(info.value)
    assert "'epoch'" in message and "'learning_rate_x'" in message
    assert 'Did you mean "epochs"' in message
    assert "Valid keys:" in message and "head_lr" in message


def test_invalid_values_are_reported_together():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"epochs": 0, "batch_size": 0, "schedule": "exp"})
    message = str(info.value)
    assert "epochs must be >= 1" in message and "batch_size must be >= 1" in message and "schedule" in message
    assert isinstance(info.value, (TransferkitError, ValueError))


def test_unknown_strategy_lists_valid_ones():
    with pytest.raises(
        ConfigError, match=r"Unknown strategy 'prob'.*Did you mean \"probe\".*freeze, full, lora, lp-ft, probe"
    ):
        RunConfig.from_dict({"strategy": "prob"})


def test_yaml_config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  epochs: 7\nbackbone: tiny-bert\nlr: 0.001\n")
    config = RunConfig.from_dict(load_config_file(path))
    assert config.train.epochs == 7 and config.backbone.backbone == "tiny-bert" and config.train.lr == 0.001
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(tmp_path / "bad.yaml")
