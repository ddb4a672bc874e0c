"""Loading is safe by default: no pickle runs code, no model directory runs its own code unless trusted.

A static scan of src/ for unsafe loading calls; pickled weights refused with how to convert them (and nothing
in them executed) while plain state dicts still load weights-only; trust_remote_code off by default, recorded
in transferkit.json, asked for again at load (Python API, predict, serve, evaluate, rerun); auto_map directories
refused without the flag and loaded, custom code and all, with it.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path

import pytest

import transferkit as tk
from conftest import TINY, toy_sentiment
from transferkit.errors import TransferkitError, UnsafeLoadError

SRC = Path(__file__).resolve().parents[1] / "src" / "transferkit"
UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
FAST = dict(TINY, epochs=1, strategy="probe", head_epochs=3, check_data=False)


# -- the static scan --------------------------------------------------------------------------------
def _dotted(node: ast.AST) -> str:
    """`torch.load` -> "torch.load", `np.load` -> "np.load"; "" for anything that is not a plain name chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def unsafe_loads(source: str) -> list[tuple[int, str]]:
    """(line, what) for each loading call that could run code from a file, in one module's source."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("torch.load", "torch.serialization.load") and not _is_true(_keyword(node, "weights_only")):
                found.append((node.lineno, f"{name} without weights_only=True"))
            elif name in ("np.load", "numpy.load") and not _is_false(_keyword(node, "allow_pickle")):
                found.append((node.lineno, f"{name} without allow_pickle=False"))
            elif name.split(".")[0] in UNPICKLERS and name.rsplit(".", 1)[-1] in ("load", "loads", "Unpickler"):
                found.append((node.lineno, f"{name} (unpickles arbitrary objects)"))
            elif name in ("pd.read_pickle", "pandas.read_pickle", "torch.jit.load"):
                found.append((node.lineno, f"{name} (runs code from the file)"))
            if _is_true(_keyword(node, "trust_remote_code")):
                found.append((node.lineno, "trust_remote_code=True hard-coded"))
            if _is_false(_keyword(node, "weights_only")):
                found.append((node.lineno, "weights_only=False"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNPICKLERS:
            for alias in node.names:
                if alias.name in ("load", "loads", "Unpickler"):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and _is_true(value):
                    found.append((node.lineno, '"trust_remote_code": True hard-coded'))
        elif isinstance(node, ast.AnnAssign) and _dotted(node.target).endswith("trust_remote_code"):
            if _is_true(node.value):
                found.append((node.lineno, "trust_remote_code defaults to True"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
            defaults += node.args.kw_defaults
            for arg, default in zip(args, defaults):
                if arg.arg == "trust_remote_code" and _is_true(default):
                    found.append((node.lineno, f"{node.name}(trust_remote_code=True) by default"))
    return found


def test_the_scan_finds_each_unsafe_pattern():
    source = """
import pickle, joblib, torch, numpy as np, pandas as pd
from dill import loads
from dataclasses import dataclass
torch.load(path)
torch.load(path, weights_only=False)
np.load(path, allow_pickle=True)
np.load(path)
pickle.load(handle)
pickle.loads(data)
joblib.load(path)
pd.read_pickle(path)
AutoModel.from_pretrained(path, trust_remote_code=True)
options = {"trust_remote_code": True}
def build(path, trust_remote_code=True): ...
@dataclass
class Config:
    trust_remote_code: bool = True
torch.load(path, weights_only=True)
np.load(path, allow_pickle=False)
AutoModel.from_pretrained(path, trust_remote_code=flag)
"""
    lines = sorted({line for line, _ in unsafe_loads(source)})
    assert lines == [3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18], unsafe_loads(source)


def test_no_loader_in_the_package_can_run_code_from_a_file():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50  # the scan really reads the package
    problems = [
        f"{path.relative_to(SRC.parents[1])}:{line}: {what}"
        for path in files
        for line, what in unsafe_loads(path.read_text(encoding="utf-8"))
    ]
    assert not problems, "unsafe loading calls:\n" + "\n".join(problems)


# -- pickled weights ----------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates `marker`: proof that code in the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def evil_pickle(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"weight": torch.zeros(2), "payload": _Payload(marker)}, path)
    return path


def tiny_bert_copy(directory: Path, weights: bool = True) -> Path:
    from transferkit.backbones.testing import tiny_bert_dir

    shutil.copytree(tiny_bert_dir(), directory, ignore=None if weights else shutil.ignore_patterns("*.safetensors"))
    return directory


def test_a_pickle_that_is_no_plain_state_dict_is_refused_and_never_runs(tmp_path):
    from transferkit.backbones import build_backbone

    marker = tmp_path / "code-ran"
    evil = evil_pickle(tmp_path / "weights.pth", marker)
    with pytest.raises(UnsafeLoadError, match=r"Refusing to load .*weights\.pth.*Convert it to safetensors"):
        build_backbone("timm:test_efficientnet", weights=str(evil))
    model_dir = tiny_bert_copy(tmp_path / "bert", weights=False)
    evil_pickle(model_dir / "pytorch_model.bin", marker)
    with pytest.raises(UnsafeLoadError, match=r"pytorch_model\.bin.*weights_only=True.*safetensors"):
        build_backbone(str(model_dir))
    assert not marker.exists()


def test_a_pickled_user_file_is_refused_on_the_command_line(tmp_path, capsys):
    from transferkit.cli import main

    train = tmp_path / "train.csv"
    texts, labels = toy_sentiment(20)
    train.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in zip(texts, labels)) + "\n")
    model_dir = tiny_bert_copy(tmp_path / "bert", weights=False)
    evil_pickle(model_dir / "pytorch_model.bin", tmp_path / "code-ran")
    code = main(["fit", "--data", str(train), "--backbone", str(model_dir), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Refusing to load" in err and "safetensors" in err and "Traceback" not in err
    assert not (tmp_path / "code-ran").exists() and not (tmp_path / "run" / "transferkit.json").exists()


def test_a_plain_state_dict_in_a_pickle_still_loads_weights_only(tmp_path):
    import torch
    from safetensors.torch import load_file

    from transferkit.backbones import build_backbone

    model_dir = tiny_bert_copy(tmp_path / "bert", weights=False)
    from transferkit.backbones.testing import tiny_bert_dir

    state = load_file(str(tiny_bert_dir() / "model.safetensors"))
    torch.save(state, model_dir / "pytorch_model.bin")
    backbone = build_backbone(str(model_dir))
    loaded = backbone.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k in loaded)


# -- trust_remote_code ---------------------------------------------------------------------------------
def test_trust_remote_code_is_off_by_default_everywhere():
    from transferkit.cli import build_parser
    from transferkit.config import RunConfig

    assert RunConfig().backbone.trust_remote_code is False
    assert RunConfig.from_dict({"trust_remote_code": True}).backbone.trust_remote_code is True
    parser = build_parser()
    for command in (["fit"], ["evaluate"], ["rank", "--backbones", "tiny-bert"], ["tune"]):
        args = parser.parse_args([*command, "--data", "x.csv", "--trust-remote-code"])
        assert args.trust_remote_code is True, command
    for command in (
        ["predict", "run"],
        ["serve", "run"],
        ["generate", "run", "hi"],
        ["rerun", "run"],
        ["export", "run"],
    ):
        assert parser.parse_args(command).trust_remote_code is False
        assert parser.parse_args([*command, "--trust-remote-code"]).trust_remote_code is True
    # a permission changes no weight: the run's fingerprint (checkpoint resume key) is the same either way
    assert RunConfig.from_dict({"trust_remote_code": True}).fingerprint() == RunConfig().fingerprint()


@pytest.fixture(scope="module")
def trusted_run(tmp_path_factory):
    """A tiny run trained with trust_remote_code=True (its backbone needs none, but the permission is recorded)."""
    texts, labels = toy_sentiment(40)
    model = tk.FineTuner(**FAST, trust_remote_code=True).fit(texts, labels, verbose=False)
    return model.save(tmp_path_factory.mktemp("trusted") / "run"), model


def test_the_permission_is_recorded_and_asked_for_again_at_load(trusted_run, tmp_path):
    run, model = trusted_run
    manifest = json.loads((run / "transferkit.json").read_text())
    assert manifest["trust_remote_code"] is True and manifest["config"]["backbone"]["trust_remote_code"] is True
    with pytest.raises(UnsafeLoadError, match=r"trained with trust_remote_code=True.*--trust-remote-code"):
        tk.load(run)
    loaded = tk.load(run, trust_remote_code=True)
    assert loaded.predict(["good fun", "awful sad"]) == model.predict(["good fun", "awful sad"])
    with pytest.raises(UnsafeLoadError):  # a new task on top of it asks too
        tk.FineTuner(**dict(FAST, backbone=str(run))).fit(*toy_sentiment(20), verbose=False)

    default = tk.FineTuner(**FAST).fit(*toy_sentiment(20), verbose=False).save(tmp_path / "default")
    assert json.loads((default / "transferkit.json").read_text())["trust_remote_code"] is False
    tk.load(default)  # no flag needed


def test_predict_serve_evaluate_rerun_and_export_ask_for_the_flag(trusted_run, tmp_path, capsys):
    from transferkit.cli import main

    run, _ = trusted_run
    test = tmp_path / "test.csv"
    texts, labels = toy_sentiment(10, seed=3)
    test.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in zip(texts, labels)) + "\n")
    for command in (
        ["predict", str(run), "good fun"],
        ["serve", str(run), "--port", "9"],
        ["evaluate", str(run), "--data", str(test)],
        ["rerun", str(run)],
        ["export", str(run)],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert "--trust-remote-code" in err and "Traceback" not in err, command
    assert main(["predict", str(run), "good fun", "--trust-remote-code", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("pos", "neg")


def test_a_directory_with_its_own_code_is_refused_without_the_flag(tmp_path, capsys):
    from transferkit.backbones import build_backbone
    from transferkit.cli import main
    from transferkit.generation.models import load_causal_lm
    from transferkit.generation.testing import tiny_llama_dir

    model_dir = tiny_bert_copy(tmp_path / "bert")
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeLoadError, match=r"auto_map in config\.json.*--trust-remote-code"):
        build_backbone(str(model_dir))
    texts, labels = toy_sentiment(20)
    with pytest.raises(UnsafeLoadError):
        tk.FineTuner(**dict(FAST, backbone=str(model_dir))).fit(texts, labels, verbose=False)
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in zip(texts, labels)) + "\n")
    assert main(["fit", "--data", str(train), "--backbone", str(model_dir), "--out", str(tmp_path / "r")]) == 2
    assert "pass --trust-remote-code" in capsys.readouterr().err

    llama = tmp_path / "llama"
    shutil.copytree(tiny_llama_dir(), llama)
    settings = json.loads((llama / "tokenizer_config.json").read_text())
    (llama / "tokenizer_config.json").write_text(json.dumps({**settings, "auto_map": {"AutoTokenizer": ["t.T", None]}}))
    with pytest.raises(UnsafeLoadError, match=r"tokenizer_config\.json"):
        load_causal_lm(llama)


def test_a_saved_run_whose_files_name_their_own_code_is_refused(tmp_path):
    run = tk.FineTuner(**FAST).fit(*toy_sentiment(20), verbose=False).save(tmp_path / "run")
    config_file = run / "backbone" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "auto_map": {"AutoModel": "m.M"}}))
    with pytest.raises(UnsafeLoadError, match=r"backbone/config\.json"):
        tk.load(run)


CUSTOM_CONFIG = """
from transformers import BertConfig


class TkCustomConfig(BertConfig):
    model_type = "tk-custom-bert"
"""
CUSTOM_MODEL = """
from transformers import BertModel

from .configuration_tkcustom import TkCustomConfig


class TkCustomModel(BertModel):
    config_class = TkCustomConfig
    ran_custom_code = True
"""


def test_with_the_flag_the_models_own_code_runs_and_the_run_reloads(tmp_path, monkeypatch):
    """End to end with real remote code: fit -> save (the code files travel with the run) -> load with the flag."""
    import transformers.dynamic_module_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))  # not the user's ~/.cache
    monkeypatch.setattr(sys, "path", list(sys.path))
    model_dir = tiny_bert_copy(tmp_path / "custom-bert")
    (model_dir / "configuration_tkcustom.py").write_text(CUSTOM_CONFIG)
    (model_dir / "modeling_tkcustom.py").write_text(CUSTOM_MODEL)
    config = json.loads((model_dir / "config.json").read_text())
    config["model_type"] = "tk-custom-bert"
    config["auto_map"] = {
        "AutoConfig": "configuration_tkcustom.TkCustomConfig",
        "AutoModel": "modeling_tkcustom.TkCustomModel",
    }
    (model_dir / "config.json").write_text(json.dumps(config))

    texts, labels = toy_sentiment(40)
    model = tk.FineTuner(**dict(FAST, backbone=str(model_dir)), trust_remote_code=True).fit(
        texts, labels, verbose=False
    )
    assert getattr(model.model_.backbone.model, "ran_custom_code", False)
    run = model.save(tmp_path / "run")
    with pytest.raises(UnsafeLoadError, match="auto_map"):
        tk.load(run)
    loaded = tk.load(run, trust_remote_code=True)
    assert getattr(loaded.model_.backbone.model, "ran_custom_code", False)
    assert loaded.predict(texts[:6]) == model.predict(texts[:6])


def test_errors_are_transferkit_errors():
    assert issubclass(UnsafeLoadError, TransferkitError) and issubclass(UnsafeLoadError, ValueError)
