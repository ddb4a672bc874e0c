"""Audio on the tiny random Whisper encoder: data forms, windowing, augmentation, bad files, persistence, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import transferkit as tk
from transferkit.cli import main
from transferkit.errors import DataError, DataFileError

TINY_AUDIO = dict(
    backbone="tiny-whisper", epochs=10, head_epochs=60, probe_lr=1.0, lr=3e-3, val_fraction=0.0, batch_size=8
)  # random features differ little between clips: a probe needs a high rate
TONES = {"low": 300.0, "high": 2500.0}


def _tone(freq: float, seed: int, seconds: float = 0.6, rate: int = 8000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32), rate


@pytest.fixture
def audio_folder(tmp_path):
    root = tmp_path / "train"
    for name, freq in TONES.items():
        (root / name).mkdir(parents=True)
        for i in range(8):
            wave, rate = _tone(freq, seed=i + (100 if name == "high" else 0), seconds=0.4 + 0.1 * (i % 4))
            sf.write(root / name / f"{i}.{'flac' if i % 3 == 0 else 'wav'}", wave, rate)
    return root


def _test_clips():
    return [_tone(TONES["low"], 1000 + i) for i in range(3)] + [_tone(TONES["high"], 2000 + i) for i in range(3)]


def test_folder_fit_predict_save_load(tmp_path, audio_folder):
    model = tk.FineTuner(**TINY_AUDIO, strategy="full").fit(audio_folder, verbose=False)
    assert model.modality_ == "audio" and model.classes_ == ["high", "low"]
    assert model.predict(_test_clips()) == ["low"] * 3 + ["high"] * 3
    saved = model.save(tmp_path / "run")
    manifest = json.loads((saved / "transferkit.json").read_text())
    assert manifest["backbone_input"]["sampling_rate"] == 16000 and manifest["backbone_input"]["clip_seconds"] == 1.0
    assert np.array_equal(tk.load(saved).predict_proba(_test_clips()), model.predict_proba(_test_clips()))


@pytest.mark.parametrize("strategy", ["full", "lora", "lp-ft"])
def test_fine_tuning_strategies_train_and_reload(tmp_path, audio_folder, strategy):
    model = tk.FineTuner(**TINY_AUDIO, strategy=strategy).fit(audio_folder, verbose=False)
    saved = model.save(tmp_path / strategy)
    assert np.array_equal(tk.load(saved).predict_proba(_test_clips()), model.predict_proba(_test_clips()))


def test_every_data_form(tmp_path, audio_folder):
    import pandas as pd

    paths = sorted(str(p.relative_to(audio_folder)) for p in audio_folder.rglob("*.*"))
    labels = [p.split("/")[0] for p in paths]
    pd.DataFrame({"file": paths, "label": labels}).to_csv(audio_folder / "data.csv", index=False)
    clips = [sf.read(audio_folder / p, dtype="float32") for p in paths]
    forms = {
        "folder": (audio_folder, None),
        "csv": (audio_folder / "data.csv", None),
        "paths": ([str(audio_folder / p) for p in paths], labels),
        "tuples": ([(wave, rate) for wave, rate in clips], labels),
        "dicts": ([{"array": wave, "sampling_rate": rate} for wave, rate in clips], labels),
    }
    for name, (data, given) in forms.items():
        examples = tk.load_examples(data, given)
        assert examples.modality == "audio" and len(examples) == 16, name
        assert sorted(examples.labels) == sorted(labels), name


def test_hugging_face_audio_dataset(audio_folder):
    import datasets

    paths = sorted(str(p) for p in audio_folder.rglob("*.wav"))
    dataset = datasets.Dataset.from_dict(
        {"audio": paths, "label": [0 if "/high/" in p else 1 for p in paths]},
        features=datasets.Features(
            {"audio": datasets.Value("string"), "label": datasets.ClassLabel(names=["high", "low"])}
        ),
    ).cast_column("audio", datasets.Audio())  # encoding decoded audio would need torchcodec; paths do not
    examples = tk.load_examples(dataset)
    assert examples.modality == "audio" and set(examples.labels) == {"high", "low"}
    model = tk.FineTuner(**TINY_AUDIO, strategy="probe").fit(dataset, verbose=False)
    assert model.classes_ == ["high", "low"]


def test_long_clips_are_cropped_randomly_to_train_and_centred_to_evaluate():
    from transferkit.backbones import build_backbone

    backbone = build_backbone("tiny-whisper", clip_seconds=0.5)
    rate = 16000
    wave = np.concatenate(
        [np.zeros(rate, np.float32), np.ones(rate // 2, np.float32) * 0.5, np.zeros(rate, np.float32)]
    )
    centred = backbone.collate([(wave, rate)])
    assert centred["frames"].tolist() == [50]  # 0.5 s of 10 ms frames
    assert np.array_equal(centred["input_features"], backbone.collate([(wave, rate)])["input_features"])
    import torch

    torch.manual_seed(0)
    first = backbone.train_collate([(wave, rate)])["input_features"]
    second = backbone.train_collate([(wave, rate)])["input_features"]
    assert not torch.equal(first, second)  # random crop + augmentation while training
    quiet = build_backbone("tiny-whisper", clip_seconds=0.5, augment=False)
    assert quiet.data_config["evaluation_crop"] == "centre"


def test_bad_files_name_the_file_or_are_skipped_and_counted(tmp_path, audio_folder):
    (audio_folder / "low" / "broken.wav").write_bytes(b"RIFF....not audio at all")
    with pytest.raises(DataFileError, match="broken.wav"):
        tk.FineTuner(**TINY_AUDIO).fit(audio_folder, verbose=False)
    model = tk.FineTuner(**TINY_AUDIO, strategy="probe", skip_bad_files=True).fit(audio_folder, verbose=False)
    assert len(model.run_info_["data"]["skipped_files"]) == 1


def test_too_long_audio_is_refused(tmp_path, audio_folder):
    wave, rate = _tone(300.0, 0, seconds=3.0)
    sf.write(audio_folder / "low" / "long.wav", wave, rate)
    with pytest.raises(DataFileError, match=r"long.wav.*max-audio-seconds"):
        tk.FineTuner(**TINY_AUDIO, max_audio_seconds=2).fit(audio_folder, verbose=False)


def test_audio_data_with_a_text_backbone_is_explained(audio_folder):
    with pytest.raises(DataError, match="holds audio data but the backbone 'tiny-bert' takes text"):
        tk.FineTuner(backbone="tiny-bert").fit(audio_folder, verbose=False)


def test_cli_fit_and_predict_audio_paths(tmp_path, audio_folder, capsys):
    out = tmp_path / "run"
    flags = [
        "--backbone",
        "tiny-whisper",
        "--strategy",
        "full",
        "--epochs",
        "10",
        "--lr",
        "0.003",
        "--batch-size",
        "8",
        "--val-fraction",
        "0",
    ]
    assert main(["fit", "--data", str(audio_folder), "--out", str(out), *flags]) == 0
    clip = tmp_path / "clip.wav"
    sf.write(clip, *_tone(TONES["high"], 5))
    capsys.readouterr()
    assert main(["predict", str(out), str(clip)]) == 0
    assert capsys.readouterr().out.split("\t")[0] == "high"


@pytest.mark.parametrize(
    "backbone,strategy", [("tiny-wav2vec2", "lora"), ("tiny-hubert", "lp-ft"), ("tiny-ast", "full")]
)
def test_other_hugging_face_audio_models_fit_and_reload(tmp_path, audio_folder, backbone, strategy):
    model = tk.FineTuner(**{**TINY_AUDIO, "backbone": backbone, "epochs": 2}, strategy=strategy).fit(
        audio_folder, verbose=False
    )
    assert model.run_info_["backbone"]["source"] == "hf_audio_model"
    saved = model.save(tmp_path / backbone)
    assert np.array_equal(tk.load(saved).predict_proba(_test_clips()), model.predict_proba(_test_clips()))


def test_resemblyzer_speaker_encoder_as_backbone(tmp_path, audio_folder):
    model = tk.FineTuner(**{**TINY_AUDIO, "backbone": "resemblyzer", "epochs": 2}, strategy="lp-ft").fit(
        audio_folder, verbose=False
    )
    assert model.run_info_["backbone"]["source"] == "resemblyzer" and model.model_.backbone.num_features == 256
    saved = model.save(tmp_path / "resemblyzer")
    assert np.array_equal(tk.load(saved).predict_proba(_test_clips()), model.predict_proba(_test_clips()))


def test_multilabel_and_regression_on_audio(tmp_path):
    """Clips holding a low tone, a high tone or both (multi-label), and a tone's pitch as a number (regression)."""

    def mix(parts: tuple[str, ...], seed: int):
        waves = [_tone(TONES[name], seed * 10 + i)[0] for i, name in enumerate(parts)]
        return np.sum(waves, axis=0) / len(waves), 8000

    sets = [("low",), ("high",), ("high", "low")] * 8
    clips = [mix(s, i) for i, s in enumerate(sets)]
    tagger = tk.FineTuner(**TINY_AUDIO, task="multilabel", strategy="full").fit(clips, sets, verbose=False)
    test_sets = [("low",), ("high",), ("high", "low")] * 2
    test_clips = [mix(s, 100 + i) for i, s in enumerate(test_sets)]
    assert tagger.evaluate(test_clips, test_sets)["micro_f1"] >= 0.8
    saved = tagger.save(tmp_path / "tagger")
    assert tk.load(saved).predict(test_clips) == tagger.predict(test_clips)

    pitches = [300.0, 800.0, 1500.0, 2500.0] * 6
    tones = [_tone(f, seed=i) for i, f in enumerate(pitches)]
    pitch = tk.FineTuner(**TINY_AUDIO, task="regression", strategy="full").fit(tones, pitches, verbose=False)
    metrics = pitch.evaluate([_tone(f, seed=500 + i) for i, f in enumerate(pitches[:8])], pitches[:8])
    assert metrics["mae"] < 0.5 * metrics["mean_baseline"]["mae"], metrics
