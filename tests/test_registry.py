import pytest

from transferkit.backbones import BACKBONES, build_backbone, list_backbones
from transferkit.errors import BackboneError
from transferkit.registry import Registry


def test_duplicate_registration_raises():
    registry = Registry("thing")
    registry.register("a")(object)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(object)


def test_unknown_backbone_lists_available_and_closest():
    with pytest.raises(BackboneError) as info:
        build_backbone("minlm")
    message = str(info.value)
    assert 'Did you mean "minilm"' in message and "tiny-bert" in message


def test_hub_id_fails_clearly_offline():
    with pytest.raises(BackboneError, match="offline"):
        build_backbone("someone/not-a-real-model-xyz")


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(BackboneError, match="no config.json"):
        build_backbone(str(tmp_path))


def test_list_backbones_describes_embedded_default():
    names = [row["name"] for row in list_backbones()]
    assert "minilm" in names and "minilm" in BACKBONES
    assert all(row["description"] for row in list_backbones())
