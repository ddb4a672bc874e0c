"""Resemblyzer speaker encoder backbone: package weights, mel parity with librosa's definition, a real
same-speaker check (espeak-ng voices), and the backbone contract on a tiny random variant."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from transferkit.backbones.resemblyzer import (
    LOSS_KEYS,
    ResemblyzerBackbone,
    ResemblyzerEncoder,
    mel_spectrogram,
    package_weights,
    tiny_resemblyzer,
)
from transferkit.errors import BackboneError

# librosa 0.11.0 (outside this environment): filters.mel(sr=16000, n_fft=400, n_mels=40)[i, j], and
# feature.melspectrogram(y=sine, sr=16000, n_fft=400, hop_length=160, n_mels=40, pad_mode="reflect").T[t, k]
# for sine = float32(0.5 sin(2 pi 1000 t)), 8000 samples at 16 kHz.
LIBROSA_FILTERS = {(0, 1): 0.007390209473669529, (10, 19): 0.00448928028345108, (20, 44): 0.007191917393356562}
LIBROSA_FILTERS[(39, 190)] = 0.0012151539558544755
LIBROSA_SINE_MEL = {(0, 13): 14.008586883544922, (10, 12): 22.105159759521484, (10, 13): 26.129993438720703}
LIBROSA_SINE_MEL.update({(10, 14): 0.782134473323822, (50, 13): 9.976008415222168})


def _package_or_skip():
    try:
        return package_weights()
    except BackboneError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(exc))


# -- a direct NumPy transcription of librosa.feature.melspectrogram's defaults ---------------------
def _hz_to_mel(f):  # Slaney scale: linear below 1 kHz, logarithmic above
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), f * 3.0 / 200.0)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3.0)


def _reference_filters(sr=16000, n_fft=400, n_mels=40):
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff, ramps = np.diff(mel_f), mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    return weights * (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]  # Slaney area normalisation


def _reference_mel(wave, n_fft=400, hop=160, pad_mode="reflect"):
    padded = np.pad(np.asarray(wave, dtype=np.float64), n_fft // 2, mode=pad_mode)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann (scipy, fftbins=True)
    frames = np.stack([padded[t * hop : t * hop + n_fft] for t in range(1 + len(wave) // hop)])
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return power @ _reference_filters().T  # [frames, 40]: power mel, no log


def _test_signal(seconds=1.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    chirp = 0.4 * np.sin(2 * np.pi * (60 * t + 2500 * t**2))
    return (chirp + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


# -- real weights -----------------------------------------------------------------------------------
def test_package_weights_load_unchanged():
    path = _package_or_skip()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    encoder = ResemblyzerEncoder()
    state = checkpoint["model_state"]
    assert set(state) - set(encoder.state_dict()) == set(LOSS_KEYS)  # only the GE2E loss's scale and bias left out
    result = encoder.load_state_dict({k: v for k, v in state.items() if k not in LOSS_KEYS}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    backbone = ResemblyzerBackbone.from_package()
    assert backbone.num_features == 256 and backbone.clip_seconds == 1.6 and backbone.weights_id
    assert sum(p.numel() for p in backbone.parameters()) == 1_423_616  # LSTM 1,357,824 + linear 65,792
    for name, tensor in backbone.model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


# -- mel spectrogram --------------------------------------------------------------------------------
@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
@pytest.mark.parametrize("seconds", [1.6, 0.7731])
def test_mel_matches_librosa_definition(pad_mode, seconds):
    wave = _test_signal(seconds)
    reference = _reference_mel(wave, pad_mode=pad_mode)
    ours = mel_spectrogram(wave, pad_mode=pad_mode)[0].numpy()
    assert ours.shape == reference.shape == (1 + len(wave) // 160, 40) and ours.dtype == np.float32
    assert np.abs(ours - reference).max() <= 1e-6 * reference.max()


def test_mel_matches_recorded_librosa_values():
    from transferkit.backbones.resemblyzer import mel_filters

    filters = mel_filters().numpy()  # [201, 40]
    for (band, bin_), value in LIBROSA_FILTERS.items():
        assert filters[bin_, band] == pytest.approx(value, rel=1e-6)
        assert _reference_filters()[band, bin_] == pytest.approx(value, rel=1e-6)
    t = np.arange(8000) / 16000
    mel = mel_spectrogram((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))[0].numpy()
    assert mel.shape == (51, 40)
    for (frame, band), value in LIBROSA_SINE_MEL.items():
        assert mel[frame, band] == pytest.approx(value, rel=1e-5)


def test_mel_matches_librosa_when_installed():
    librosa = pytest.importorskip("librosa")
    wave = _test_signal(1.1, seed=3)
    for pad_mode in ("reflect", "constant"):
        reference = librosa.feature.melspectrogram(
            y=wave, sr=16000, n_fft=400, hop_length=160, n_mels=40, pad_mode=pad_mode
        ).T
        ours = mel_spectrogram(wave, pad_mode=pad_mode)[0].numpy()
        assert np.abs(ours - reference).max() <= 1e-5 * reference.max()


# -- a real speaker check ---------------------------------------------------------------------------
@pytest.mark.slow
def test_same_voice_is_closer_than_another_voice(tmp_path):
    _package_or_skip()
    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("CI needs espeak-ng (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed")
    sentences = [
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "She sells sea shells by the sea shore every summer morning.",
    ]
    paths = {}
    for voice in ("m3", "f4"):
        for i, sentence in enumerate(sentences):
            paths[voice, i] = tmp_path / f"{voice}-{i}.wav"
            subprocess.run(["espeak-ng", "-v", f"en-us+{voice}", "-w", str(paths[voice, i]), sentence], check=True)
    backbone = ResemblyzerBackbone.from_package().eval()
    keys = list(paths)
    with torch.no_grad():
        embeddings = backbone.forward_features(backbone.collate([str(paths[k]) for k in keys]))
    assert embeddings.shape == (4, 256)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(4), atol=1e-5) and (embeddings >= 0).all()
    cosine = {(a, b): float(embeddings[i] @ embeddings[j]) for i, a in enumerate(keys) for j, b in enumerate(keys)}
    same = [cosine[(v, 0), (v, 1)] for v in ("m3", "f4")]
    different = [cosine[("m3", i), ("f4", j)] for i in range(2) for j in range(2)]
    assert min(same) > max(different), (same, different)


# -- the backbone contract on a tiny random variant ---------------------------------------------------
def _clips():
    rng = np.random.default_rng(7)
    return [
        (_test_signal(2.5, seed=1), 16000),  # longer than the window: centre crop
        (0.2 * rng.standard_normal(11025).astype(np.float32), 22050),  # 0.5 s at another rate: resampled, padded
        {"array": _test_signal(1.6, seed=2), "sampling_rate": 16000},
    ]


def test_tiny_variant_collate_and_features():
    state = torch.random.get_rng_state()
    backbone = tiny_resemblyzer()
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG stream is untouched
    assert torch.equal(tiny_resemblyzer().model.linear.weight, backbone.model.linear.weight)  # seeded
    assert backbone.source == "resemblyzer" and backbone.num_features == 16
    batch = backbone.collate(_clips())
    assert set(batch) == {"mels"} and batch["mels"].shape == (3, 160, 40) and batch["mels"].dtype == torch.float32
    features = backbone.eval().forward_features(batch)
    assert features.shape == (3, 16) and torch.isfinite(features).all()
    assert torch.equal(backbone.collate(_clips())["mels"], batch["mels"])  # evaluation is deterministic
    assert backbone.item_length(_clips()[0]) == 1 and len(backbone.item_digest(_clips()[0])) == 16
    assert backbone.data_config["clip_seconds"] == 1.6 and backbone.data_config["sampling_rate"] == 16000
    longer = tiny_resemblyzer(clip_seconds=3.0)
    assert longer.collate(_clips()[:1])["mels"].shape == (1, 300, 40)


def test_train_collate_augments_reproducibly():
    backbone = tiny_resemblyzer()
    clean = backbone.collate(_clips())["mels"]
    torch.manual_seed(0)
    augmented = backbone.train_collate(_clips())["mels"]
    torch.manual_seed(0)
    assert torch.equal(backbone.train_collate(_clips())["mels"], augmented)
    assert augmented.shape == clean.shape and not torch.equal(augmented, clean)
    plain = tiny_resemblyzer(augment=False)
    torch.manual_seed(0)
    cropped = plain.train_collate(_clips()[1:])["mels"]  # clips no longer than the window: nothing random left
    assert torch.equal(cropped, plain.collate(_clips()[1:])["mels"])


def test_blocks_and_lora_targets():
    from transferkit.strategies.lora import LoraOptions, has_adapters, inject_adapters

    backbone = tiny_resemblyzer(layers=2)
    blocks = backbone.blocks()
    assert len(blocks) == 3
    ids = [id(p) for block in blocks for p in block.parameters()]
    assert sorted(ids) == sorted(id(p) for p in backbone.parameters())  # every parameter in exactly one block
    backbone.requires_grad_(False)
    blocks[1].requires_grad_(True)  # the second LSTM layer, through the view
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    assert trainable == {f"model.lstm.{kind}_l1" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    batch = backbone.collate(_clips())
    inject_adapters(backbone, LoraOptions(lora_targets=None))
    assert has_adapters(backbone) and any("lora_" in n for n, _ in backbone.named_parameters())
    assert backbone.forward_features(batch).shape == (3, 16)
    assert len(backbone.blocks()) == 3  # still reachable through the peft wrapper


def test_save_files_round_trip(tmp_path):
    import json

    backbone = tiny_resemblyzer(hidden=12, layers=2, clip_seconds=1.2, augment=False).eval()
    backbone.save_files(tmp_path)
    spec = json.loads((tmp_path / "transferkit_resemblyzer.json").read_text())
    assert spec == backbone.spec() and spec["source"] == "resemblyzer"
    assert (spec["hidden"], spec["layers"], spec["embedding"], spec["clip_seconds"]) == (12, 2, 12, 1.2)
    rebuilt = ResemblyzerBackbone.from_files(tmp_path, spec)
    assert rebuilt.spec() == backbone.spec()
    rebuilt.load_state_dict(backbone.state_dict())
    batch = backbone.collate(_clips())
    assert batch["mels"].shape == (3, 120, 40)
    assert torch.equal(rebuilt.eval().forward_features(batch), backbone.forward_features(batch))


def test_silence_and_quiet_clips():
    backbone = tiny_resemblyzer().eval()
    quiet = _test_signal(1.0) * 1e-3
    mels = backbone.collate([(np.zeros(8000, np.float32), 16000), (quiet, 16000), (quiet * 100, 16000)])["mels"]
    assert torch.equal(mels[0], torch.zeros_like(mels[0]))  # silence stays silent (no NaN from the volume step)
    assert torch.allclose(mels[1], mels[2], rtol=1e-4, atol=0)  # quieter than -30 dBFS: raised to it
    assert torch.isfinite(backbone.forward_features({"mels": mels})).all()
