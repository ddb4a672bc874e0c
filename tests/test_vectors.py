"""Feature vectors and your own base model: the reference case, head replacement, input projection, user
modules, every data form and every bad input of the issue."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import transferkit as tk
from transferkit.cli import main
from transferkit.errors import BackboneError, DataError, DataFileError

FAST = dict(epochs=4, lr=3e-3, head_lr=3e-3, head_epochs=20, batch_size=32, val_fraction=0.0)


def clusters(classes: int, per_class: int, width: int, seed: int = 0, latent: int = 6):
    """Gaussian clusters in a low-dimensional space seen through a fixed random linear map (+ noise)."""
    rng = np.random.default_rng(seed)
    sensor = np.random.default_rng(width).standard_normal((latent, width)) / np.sqrt(latent)
    centres = np.random.default_rng(classes).standard_normal((classes, latent)) * 3
    z = np.concatenate([c + rng.standard_normal((per_class, latent)) for c in centres])
    x = z @ sensor + 0.5 * rng.standard_normal((len(z), width))
    return x.astype(np.float32), np.repeat(np.arange(classes), per_class)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """The reference source model, small: 1000 features -> Dense 128 (ReLU) -> 10 classes, Adam, 10 epochs."""
    x, y = clusters(10, 30, 1000)
    model = tk.FineTuner(backbone="mlp:1000-128", strategy="full", seed=0, **{**FAST, "epochs": 10}).fit(
        x, y, verbose=False
    )
    directory = model.save(tmp_path_factory.mktemp("runs") / "source")
    return model, directory


def test_reference_case_source_model(source_run):
    model, directory = source_run
    x, y = clusters(10, 10, 1000, seed=1)
    assert model.score(x, y) >= 0.9
    manifest = json.loads((directory / "transferkit.json").read_text())
    assert manifest["modality"] == "vector" and manifest["backbone"]["source"] == "torch_module"
    assert manifest["backbone"]["num_features"] == 128 and manifest["parameters"]["total"] == 1000 * 128 + 128 + 1290
    reloaded = tk.load(directory)  # an MLP spec rebuilds from the artifact alone
    assert np.array_equal(reloaded.predict_proba(x), model.predict_proba(x))


def test_new_task_with_other_classes_keeps_hidden_weights_under_probe(source_run):
    source, directory = source_run
    x, y = clusters(3, 20, 1000, seed=2)
    names = np.array(["a", "b", "c"])
    model = tk.FineTuner(backbone=str(directory), strategy="probe", **FAST).fit(x, names[y].tolist(), verbose=False)
    assert model.classes_ == ["a", "b", "c"] and model.model_.head.out.out_features == 3
    before = source.model_.backbone.state_dict()
    after = model.model_.backbone.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # hidden layer and standardiser untouched
    test_x, test_y = clusters(3, 30, 1000, seed=3)
    assert model.score(test_x, names[test_y].tolist()) >= 0.9


def test_input_projection_for_a_different_width(source_run, tmp_path):
    source, directory = source_run
    x, y = clusters(3, 20, 784, seed=4)
    lines: list[str] = []
    model = tk.FineTuner(backbone=str(directory), strategy="probe", **FAST)
    import transferkit.api as api

    original = api._stderr
    api._stderr = lines.append
    try:
        model.fit(x, y)
    finally:
        api._stderr = original
    assert any("input projection added" in line and "784" in line for line in lines)
    backbone = model.model_.backbone
    assert backbone.input_projection.in_features == 784 and backbone.input_projection.out_features == 1000
    body = {k: v for k, v in backbone.model.state_dict().items()}
    assert all(torch.equal(body[k], source.model_.backbone.model.state_dict()[k]) for k in body)  # frozen body
    saved = model.save(tmp_path / "wide")
    manifest = json.loads((saved / "transferkit.json").read_text())
    assert manifest["backbone_input"]["input_projection"] == {"from": 784, "to": 1000}
    assert np.array_equal(tk.load(saved).predict_proba(x), model.predict_proba(x))
    with pytest.raises(DataError, match="expects 784 features per row, got 1000"):
        model.predict(clusters(3, 2, 1000)[0])


@pytest.mark.parametrize(
    "strategy,options", [("freeze", {"trainable_blocks": 1}), ("lora", {"epochs": 12}), ("lp-ft", {}), ("full", {})]
)
def test_every_strategy_transfers_a_vector_model(source_run, tmp_path, strategy, options):
    _, directory = source_run
    x, y = clusters(3, 20, 1000, seed=5)
    model = tk.FineTuner(backbone=str(directory), strategy=strategy, **{**FAST, **options}).fit(x, y, verbose=False)
    assert model.score(*clusters(3, 20, 1000, seed=6)) >= 0.8
    saved = model.save(tmp_path / strategy)
    assert np.array_equal(tk.load(saved).predict_proba(x), model.predict_proba(x))


def test_reference_case_example_end_to_end(tmp_path, capsys):
    """examples/own_base_model.py, small: pretrain 1000 -> 128 -> 10, transfer to 3 classes and to 784 features."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "own_base_model.py"
    spec = importlib.util.spec_from_file_location("own_base_model", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.run(seeds=2, per_class=20, source_per_class=100, out=tmp_path)
    assert results["source_accuracy"] > 0.3  # 10 classes: chance is 0.1
    scores = results["new_classes"]
    assert np.mean(scores["transfer: probe"]) > np.mean(scores["from scratch"])
    assert results["backbone_input"]["input_projection"] == {"from": 784, "to": 1000}
    assert (tmp_path / "source" / "transferkit.json").is_file()
    assert "input projection added" in capsys.readouterr().err


class TwoLayerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(20, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def test_user_sequential_module_finds_its_output_layer(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4), nn.Softmax(dim=1))
    x, y = clusters(2, 30, 20)
    model = tk.FineTuner(backbone=net, strategy="probe", **FAST).fit(x, y, verbose=False)
    body = model.model_.backbone.model
    assert isinstance(body, nn.Sequential) and len(body) == 2 and torch.equal(body[0].weight, net[0].weight)
    assert model.config_.backbone.backbone == "module:torch.nn.modules.container.Sequential"
    saved = model.save(tmp_path / "seq")
    assert np.array_equal(tk.load(saved).predict_proba(x), model.predict_proba(x))  # a layer list: no code needed


def test_user_custom_module_asks_to_confirm_the_output_layer(tmp_path):
    x, y = clusters(2, 30, 20)
    with pytest.raises(BackboneError, match=r"output_layer='fc2'"):
        tk.FineTuner(backbone=TwoLayerNet(), **FAST).fit(x, y, verbose=False)
    net = TwoLayerNet()
    model = tk.FineTuner(backbone=net, output_layer="fc2", strategy="probe", **FAST).fit(x, y, verbose=False)
    assert torch.equal(model.model_.backbone.model.fc1.weight, net.fc1.weight)
    saved = model.save(tmp_path / "custom")
    with pytest.raises(BackboneError, match=r"module=YourNet\(\)"):
        tk.load(saved)
    assert np.array_equal(tk.load(saved, module=TwoLayerNet()).predict_proba(x), model.predict_proba(x))
    # the saved run as the base of a new task: the class is supplied again, the trained weights come from the run
    again = tk.FineTuner(backbone=str(saved), module=TwoLayerNet(), strategy="probe", **FAST).fit(
        x, 1 - y, verbose=False
    )
    assert torch.equal(again.model_.backbone.model.fc1.weight, model.model_.backbone.model.fc1.weight)


def test_user_module_with_a_safetensors_state_dict(tmp_path):
    from safetensors.torch import save_file

    trained = TwoLayerNet()
    save_file(trained.state_dict(), str(tmp_path / "net.safetensors"))
    x, y = clusters(2, 30, 20)
    model = tk.FineTuner(
        backbone=TwoLayerNet(), output_layer="fc2", weights=str(tmp_path / "net.safetensors"), strategy="probe", **FAST
    ).fit(x, y, verbose=False)
    assert torch.equal(model.model_.backbone.model.fc1.weight, trained.fc1.weight)
    (tmp_path / "bad.safetensors").write_bytes(b"")
    save_file({"fc1.weight": torch.zeros(3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(BackboneError, match="does not match the module"):
        tk.FineTuner(backbone=TwoLayerNet(), weights=str(tmp_path / "bad.safetensors"), **FAST).fit(x, y)


def test_mlp_spec_errors_and_default_backbone():
    x, y = clusters(2, 30, 12)
    with pytest.raises(BackboneError, match="mlp:1000-128"):
        tk.FineTuner(backbone="mlp:abc").fit(x, y)
    model = tk.FineTuner(**FAST).fit(x, y, verbose=False)  # no backbone named: an MLP on the data's width
    assert model.model_.backbone.name == "mlp:256" and model.model_.backbone.input_width == 12
    with pytest.raises(DataError, match="takes text inputs"):
        tk.FineTuner(backbone="tiny-bert").fit(x, y)


def test_standardisation_is_fitted_on_training_rows_only():
    x, y = clusters(2, 30, 8)
    val_x, val_y = clusters(2, 10, 8, seed=7)
    model = tk.FineTuner(backbone="mlp:8-4", **FAST).fit(x, y, val=val_x * 100, val_labels=val_y, verbose=False)
    backbone = model.model_.backbone
    assert torch.allclose(backbone.feature_mean, torch.from_numpy(x.mean(axis=0)), atol=1e-5)
    assert torch.allclose(backbone.feature_std, torch.from_numpy(x.std(axis=0)), atol=1e-5)
    off = tk.FineTuner(backbone="mlp:8-4", standardize=False, **FAST).fit(x, y, verbose=False)
    assert not off.model_.backbone.standardize


# -- data forms --------------------------------------------------------------------------------------
def test_every_data_form(tmp_path):
    import pandas as pd

    x, y = clusters(2, 20, 5)
    names = ["cat", "dog"]
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)]).assign(label=[names[i] for i in y])
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_parquet(tmp_path / "train.parquet")
    np.savez(tmp_path / "train.npz", X=x, y=y)
    np.save(tmp_path / "x.npy", x)
    one_hot = np.eye(2, dtype=np.int64)[y]
    forms = {
        "array": (x, y),
        "one-hot": (x, one_hot),
        "lists": (x.tolist(), y.tolist()),
        "npz": (tmp_path / "train.npz", None),
        "npy": (str(tmp_path / "x.npy"), y),
        "csv": (tmp_path / "train.csv", None),
        "parquet": (tmp_path / "train.parquet", None),
        "frame": (frame, None),
    }
    for name, (data, labels) in forms.items():
        examples = tk.load_examples(data, labels)
        assert examples.modality == "vector" and len(examples) == 40, name
        assert np.allclose(np.stack(examples.inputs), x, atol=1e-6), name
        expected = [names[i] for i in y] if name in ("csv", "parquet", "frame") else y.tolist()
        assert examples.labels == expected, name
    assert tk.load_examples(frame).columns == [f"f{i}" for i in range(5)]


def test_table_columns_are_matched_by_name_at_predict_time(tmp_path):
    import pandas as pd

    x, y = clusters(2, 30, 4)
    frame = pd.DataFrame(x, columns=list("abcd")).assign(label=y)
    model = tk.FineTuner(backbone="mlp:8", **FAST).fit(frame, verbose=False)
    shuffled = frame[["label", "d", "c", "b", "a"]]
    assert np.array_equal(model.predict_proba(shuffled), model.predict_proba(x))
    with pytest.raises(DataError, match="lacks feature column"):
        model.predict(frame.drop(columns=["c"]))
    subset = tk.FineTuner(backbone="mlp:8", feature_columns="a,b", **FAST).fit(frame, verbose=False)
    assert subset.model_.backbone.data_width == 2


# -- bad inputs ------------------------------------------------------------------------------------
def test_labels_that_are_not_one_index_per_row_are_refused():
    x = np.zeros((6, 3), dtype=np.float32)
    wrong = np.random.default_rng(0).integers(0, 10, size=(6, 10))  # the classic toy-data mistake
    with pytest.raises(DataError, match=r"shape \(6, 10\).*not a\s+one-hot matrix.*row 0 is \[") as error:
        tk.FineTuner(backbone="mlp:4", **FAST).fit(x, wrong)
    assert "one class index per row" in str(error.value)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_features_name_rows_and_columns(value):
    x, y = clusters(2, 10, 5)
    x[3, 1] = x[7, 4] = value
    with pytest.raises(DataError, match=r"2 row\(s\) have NaN or infinite features \(rows 3, 7; columns 1, 4\)"):
        tk.FineTuner(backbone="mlp:4").fit(x, y)


def test_nan_cell_in_a_csv_names_the_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,x\n3,,y\n5,6,x\n")
    with pytest.raises(DataError, match=r"rows 2; columns b"):  # table rows count from 1, as in other messages
        tk.load_examples(tmp_path / "d.csv")


def test_x_and_y_lengths_differ():
    with pytest.raises(DataError, match="X has 10 rows but y has 9 labels"):
        tk.FineTuner(backbone="mlp:4").fit(np.zeros((10, 3)), np.zeros(9, dtype=int))


def test_object_column_in_numeric_csv(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,colour,label\n1,2,red,x\n3,4,blue,y\n5,6,red,x\n")
    with pytest.raises(DataError, match=r"column 'colour' is not numeric \(row 1 holds 'red'"):
        tk.load_examples(tmp_path / "d.csv", modality="vector")


def test_bad_npz_files(tmp_path):
    np.savez(tmp_path / "keys.npz", features_matrix=np.zeros((3, 2)))
    with pytest.raises(DataFileError, match="none is named X"):
        tk.load_examples(tmp_path / "keys.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataFileError, match="object arrays are refused"):
        tk.load_examples(tmp_path / "objects.npy", need_labels=False)


def test_cli_fit_predict_and_bad_data_exit_2_without_writing(tmp_path, capsys):
    import pandas as pd

    x, y = clusters(2, 30, 6)
    pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]).assign(label=y).to_csv(tmp_path / "train.csv", index=False)
    out = tmp_path / "run"
    flags = ["--backbone", "mlp:6-8", "--epochs", "3", "--lr", "0.003", "--head-lr", "0.003", "--val-fraction", "0"]
    assert main(["fit", "--data", str(tmp_path / "train.csv"), "--out", str(out), *flags]) == 0
    np.save(tmp_path / "rows.npy", x[:3])
    assert main(["predict", str(out), "--data", str(tmp_path / "rows.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split("\t")[2] == "1"
    assert main(["predict", str(out), "--", ",".join(map(str, x[0].tolist()))]) == 0  # -- : rows may start with -
    assert capsys.readouterr().out.split("\t")[0] == lines[0].split("\t")[0]
    bad = x.copy()
    bad[2, 2] = np.nan
    np.savez(tmp_path / "bad.npz", X=bad, y=y)
    assert main(["fit", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "never"), *flags]) == 2
    assert "NaN" in capsys.readouterr().err and not (tmp_path / "never").exists()
    np.save(tmp_path / "narrow.npy", x[:2, :4])
    assert main(["predict", str(out), "--data", str(tmp_path / "narrow.npy")]) == 2
    assert "expects 6 features per row, got 4" in capsys.readouterr().err
