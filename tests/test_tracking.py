"""--report-to: TensorBoard event files and a local MLflow store get the options, epochs, scores and artifact."""

import pytest

from conftest import TINY
from transferkit.errors import ConfigError


def test_tensorboard_and_mlflow_receive_epochs_evaluation_and_artifact(tmp_path, toy_data):
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import transferkit as tk

    (x, y), (test_x, test_y) = toy_data
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = {**TINY, "epochs": 3, "val_fraction": 0.1, "report_to": "tensorboard,mlflow"}
    model = tk.FineTuner(**params, tracking_dir=str(tmp_path / "tb"), tracking_uri=uri).fit(x, y, verbose=False)
    model.evaluate(test_x, test_y)
    out = model.save(tmp_path / "run")

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    losses = events.Scalars("full/train_loss")
    assert [e.step for e in losses] == [1, 2, 3]
    assert len(events.Scalars("full/val_accuracy")) == 3 and events.Scalars("eval_data/accuracy")

    info = model.run_info_["tracking"]
    assert info["tensorboard"] == str((tmp_path / "tb").resolve())
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(info["mlflow"]["run_id"])
    assert run.data.params["epochs"] == "3" and run.data.params["backbone"] == "tiny-bert"
    history = client.get_metric_history(run.info.run_id, "full/val_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert run.data.metrics["eval_data/accuracy"] == pytest.approx(model.evaluate(test_x, test_y)["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "run")}
    assert "run/transferkit.json" in artifacts and (out / "transferkit.json").is_file()
    assert run.info.status == "FINISHED"


def test_unknown_tracker_is_refused_before_training(toy_data):
    import transferkit as tk

    (x, y), _ = toy_data
    with pytest.raises(ConfigError, match="report_to takes tensorboard and/or mlflow"):
        tk.FineTuner(**TINY, report_to="wandb").fit(x, y, verbose=False)
