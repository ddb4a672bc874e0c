"""Audio data, no model: decoding and resampling, input forms, crop/pad/windows, augmentation, bad files, VAD."""

import hashlib
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from transferkit.data.audio import (
    audio_digest,
    augment,
    check_audio,
    fit_length,
    folder_examples,
    is_audio_object,
    is_audio_path,
    mp3_supported,
    read_audio,
    sliding_windows,
    trim_silence,
)
from transferkit.errors import ConfigError, DataError, DataFileError

FORMATS = ["wav", "flac", "ogg"] + (["mp3"] if mp3_supported() else [])


def _tone(freq, rate, seconds=1.0, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def _peak_hz(wave, rate):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()]


def _amplitude_at(wave, rate, freq):
    """Amplitude of a sinusoid at `freq` (an exact FFT bin for whole-second clips)."""
    spectrum = np.abs(np.fft.rfft(wave)) * 2 / len(wave)
    return spectrum[round(freq * len(wave) / rate)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_resampled_to_target_rate_keeps_length_and_pitch(tmp_path, fmt, rate):
    path = tmp_path / f"tone.{fmt}"
    sf.write(path, _tone(440, rate), rate)
    wave = read_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 1
    assert abs(_peak_hz(wave, 16000) - 440) < 2


def test_stereo_is_averaged_to_mono(tmp_path):
    left = _tone(440, 16000)
    sf.write(tmp_path / "cancel.wav", np.stack([left, -left], axis=1), 16000, subtype="FLOAT")
    assert np.abs(read_audio(tmp_path / "cancel.wav", 16000)).max() < 1e-6

    sf.write(tmp_path / "two.flac", np.stack([_tone(440, 16000), _tone(1000, 16000)], axis=1), 16000)
    wave = read_audio(tmp_path / "two.flac", 16000)
    assert _amplitude_at(wave, 16000, 440) == pytest.approx(0.25, abs=0.01)
    assert _amplitude_at(wave, 16000, 1000) == pytest.approx(0.25, abs=0.01)


def test_integer_pcm_is_scaled_to_unit_range(tmp_path):
    pcm = np.array([0, 16384, -32768, 32767] * 100, dtype=np.int16)
    sf.write(tmp_path / "pcm.wav", pcm, 8000, subtype="PCM_16")
    from_file = read_audio(tmp_path / "pcm.wav", 8000)
    from_array = read_audio((pcm, 8000), 8000)
    assert np.allclose(from_file[:4], [0, 0.5, -1, 32767 / 32768])
    assert np.array_equal(from_file, from_array)
    assert np.allclose(read_audio((np.array([0, 128, 255], dtype=np.uint8), 8000), 8000), [-1, 0, 127 / 128])


def test_pair_and_dict_inputs(tmp_path):
    tone = _tone(440, 8000)
    pair = read_audio((tone, 8000), 16000)
    assert len(pair) == 16000 and abs(_peak_hz(pair, 16000) - 440) < 2
    as_dict = {"array": tone.astype(np.float64), "sampling_rate": 8000, "path": "clip.wav"}
    assert np.array_equal(read_audio(as_dict, 16000), pair)
    channels_first = np.stack([tone, tone])  # (2, frames), as torch-style decoders return it
    assert np.allclose(read_audio((channels_first, 8000), 16000), pair)
    assert audio_digest((tone, 8000)) == audio_digest(as_dict) != audio_digest((tone, 16000))

    sf.write(tmp_path / "clip.flac", tone, 8000)
    raw = (tmp_path / "clip.flac").read_bytes()
    assert audio_digest(tmp_path / "clip.flac") == hashlib.blake2b(raw, digest_size=16).digest()
    undecoded = {"path": "clip.flac", "bytes": raw}  # a `datasets` Audio(decode=False) row
    assert np.allclose(read_audio(undecoded, 8000), tone, atol=1e-4)
    assert audio_digest(undecoded) == audio_digest(tmp_path / "clip.flac")

    class Decoder:  # the shape of torchcodec's AudioDecoder (what `datasets` 4+ Audio columns yield)
        def get_all_samples(self):
            return type("Samples", (), {"data": channels_first, "sample_rate": 8000})()

    assert np.allclose(read_audio(Decoder(), 16000), pair)
    with pytest.raises(DataError, match="positive integer"):
        read_audio((tone, 0), 16000)
    with pytest.raises(DataError, match="NaN"):
        read_audio((np.array([0.1, np.nan], dtype=np.float32), 8000), 8000)


def test_recognising_audio_inputs(tmp_path):
    assert is_audio_path("a/b.WAV") and is_audio_path(tmp_path / "x.flac") and not is_audio_path("x.png")
    assert is_audio_object((np.zeros(10), 16000)) and is_audio_object({"array": [0.0], "sampling_rate": 8000})
    assert is_audio_object({"path": "x.mp3", "bytes": None}) and is_audio_object({"path": None, "bytes": b"RIFF"})
    assert not is_audio_object((np.zeros(10), True)) and not is_audio_object(("text", 3))
    assert not is_audio_object({"array": [0.0]}) and not is_audio_object("x.wav")


def test_fit_length_crops_and_pads():
    wave = np.arange(1000, dtype=np.float32)
    crops = [fit_length(wave, 100, "random", np.random.default_rng(seed)) for seed in range(20)]
    for crop in crops:
        assert len(crop) == 100 and 0 <= crop[0] <= 900 and np.array_equal(crop, np.arange(crop[0], crop[0] + 100))
    assert len({crop[0] for crop in crops}) > 1
    again = fit_length(wave, 100, "random", np.random.default_rng(3))
    assert np.array_equal(again, crops[3])
    assert np.array_equal(fit_length(wave, 100, "centre"), np.arange(450, 550))
    for mode, rng in (("centre", None), ("random", np.random.default_rng(0))):
        padded = fit_length(wave[:50], 80, mode, rng)
        assert np.array_equal(padded[:50], wave[:50]) and not padded[50:].any() and padded.dtype == np.float32
    assert np.array_equal(fit_length(wave, 1000, "centre"), wave)
    with pytest.raises(ValueError, match="rng"):
        fit_length(wave, 100, "random")
    with pytest.raises(ConfigError, match="'centre'"):
        fit_length(wave, 100, "center")


def test_sliding_windows_cover_the_clip():
    wave = np.arange(1000, dtype=np.float32)
    windows = sliding_windows(wave, 300, 200)
    assert windows.shape == (5, 300) and windows.dtype == np.float32
    assert [w[0] for w in windows] == [0, 200, 400, 600, 700]  # the last one is aligned to the end
    assert np.array_equal(np.unique(windows), wave)
    assert np.array_equal(sliding_windows(wave, 250, 250)[:, 0], [0, 250, 500, 750])
    short = sliding_windows(wave[:10], 300, 100)
    assert short.shape == (1, 300) and np.array_equal(short[0, :10], wave[:10]) and not short[0, 10:].any()
    with pytest.raises(ValueError, match="hop"):
        sliding_windows(wave, 100, 150)


def test_augment_changes_but_is_reproducible():
    wave = _tone(440, 16000)
    original = wave.copy()
    first = augment(wave, np.random.default_rng(7), 16000)
    assert first.shape == wave.shape and first.dtype == np.float32
    assert not np.allclose(first, wave, atol=1e-3) and np.array_equal(wave, original)
    assert np.array_equal(first, augment(wave, np.random.default_rng(7), 16000))
    assert not np.array_equal(first, augment(wave, np.random.default_rng(8), 16000))
    # SNR at least 10 dB and at most +6 dB of gain: the result is still mostly the (scaled, shifted) tone
    assert np.sqrt(np.mean(first**2)) < 2.0 * 1.2 * np.sqrt(np.mean(wave**2))
    assert not augment(np.zeros(100, np.float32), np.random.default_rng(0), 16000).any()


def _bad_files(tmp_path):
    """name -> path of a bad file, each bad in its own way (too_long is fine except for its length)."""
    good = _tone(440, 8000)
    sf.write(tmp_path / "ok.wav", good, 8000)
    sound = (tmp_path / "ok.wav").read_bytes()
    sf.write(tmp_path / "ok.flac", good, 8000)
    flac = (tmp_path / "ok.flac").read_bytes()
    files = {
        "zero_length": ("zero_length.wav", None),
        "empty": ("empty.wav", b""),
        "truncated_wav": ("truncated.wav", sound[: len(sound) // 2]),
        "truncated_flac": ("truncated.flac", flac[: len(flac) // 2]),
        "random_bytes": ("noise.wav", np.random.default_rng(0).bytes(4000)),
        "wrong_extension": ("clip.xyz", sound),
        "missing": ("missing.wav", False),
        "folder": ("folder.wav", True),
        "too_long": ("long.wav", None),
    }
    paths = {}
    for name, (filename, content) in files.items():
        path = tmp_path / filename
        if name == "zero_length":
            sf.write(path, np.zeros(0, np.float32), 8000)
        elif name == "too_long":
            sf.write(path, _tone(440, 8000, seconds=3.0), 8000)
        elif content is True:
            path.mkdir()
        elif content is not False:
            path.write_bytes(content)
        paths[name] = str(path)
    return paths


REASONS = {
    "zero_length": "zero length",
    "empty": "empty",
    "truncated_wav": "truncated",
    "truncated_flac": "corrupt",
    "random_bytes": "corrupt or not in a supported audio format",
    "wrong_extension": "'.xyz' is not a supported audio format",
    "missing": "does not exist",
    "folder": "folder",
}


@pytest.mark.parametrize("name", list(REASONS))
def test_bad_file_names_the_file_or_is_skipped(tmp_path, name):
    path = _bad_files(tmp_path)[name]
    good = str(tmp_path / "ok.wav")
    with pytest.raises(DataFileError, match=REASONS[name]) as caught:
        check_audio([good, path], ["a", "b"], skip_bad=False, max_seconds=2)
    assert repr(path) in str(caught.value) and "--skip-bad-files" in str(caught.value)
    with pytest.raises(DataFileError, match=REASONS[name]):
        read_audio(path, 16000)
    items, labels, bad = check_audio([path, good], ["b", "a"], skip_bad=True, max_seconds=2)
    assert items == [good] and labels == ["a"] and len(bad) == 1 and bad[0].startswith(f"{path}: ")


def test_too_long_clip_is_refused_with_the_limit(tmp_path):
    path = _bad_files(tmp_path)["too_long"]
    with pytest.raises(DataFileError) as caught:
        check_audio([path], None, skip_bad=False, max_seconds=2)
    message = str(caught.value)
    assert repr(path) in message and "3.0 s" in message and "2 s" in message and "--max-audio-seconds" in message
    good = str(tmp_path / "ok.wav")
    items, labels, bad = check_audio([good, path], None, skip_bad=True, max_seconds=2)
    assert (
        items == [good] and labels is None and bad == [f"{path}: 3.0 s long, over the 2 s limit (--max-audio-seconds)"]
    )
    assert check_audio([path], None, skip_bad=False, max_seconds=None)[0] == [path]
    assert len(read_audio(path, 8000)) == 24000  # reading has no limit; only the data check does
    with pytest.raises(DataFileError, match="over the limit"):
        check_audio([(_tone(440, 8000, seconds=3.0), 8000)], None, skip_bad=False, max_seconds=2)


def test_all_bad_is_a_data_error(tmp_path):
    paths = _bad_files(tmp_path)
    names = list(REASONS) + ["too_long"]
    with pytest.raises(DataError, match=f"None of the {len(names)} audio clips"):
        check_audio([paths[name] for name in names], None, skip_bad=True, max_seconds=2)
    with pytest.raises(DataError, match="audio #2"):
        check_audio([(_tone(440, 8000), 8000), (np.zeros(0), 8000)], None, skip_bad=False, max_seconds=None)


@pytest.mark.skipif(not mp3_supported(), reason="this libsndfile has no MP3 support")
def test_truncated_mp3_is_refused(tmp_path):
    sf.write(tmp_path / "ok.mp3", _tone(440, 16000), 16000)
    sound = (tmp_path / "ok.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(sound[: len(sound) // 2])
    with pytest.raises(DataFileError, match="truncated"):
        read_audio(tmp_path / "cut.mp3", 16000)


def test_folder_examples(tmp_path):
    for label, suffixes in {"yes": ["wav", "flac"], "no": ["ogg", "WAV"]}.items():
        (tmp_path / label).mkdir()
        for i, suffix in enumerate(suffixes):
            sf.write(tmp_path / label / f"{i}.{suffix}", _tone(440, 8000, 0.1), 8000)
    (tmp_path / "yes" / "notes.txt").write_text("not audio")
    paths, labels = folder_examples(tmp_path)
    assert labels == ["no", "no", "yes", "yes"] and all(is_audio_path(p) for p in paths)
    (tmp_path / "maybe").mkdir()
    with pytest.raises(DataError, match="'maybe'.*hold no audio"):
        folder_examples(tmp_path)
    with pytest.raises(DataFileError, match="no class folders"):
        folder_examples(tmp_path / "yes")


def _require(available, what):
    """Skip locally when a tool the VAD test needs is missing; in CI that is a failure."""
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is required in CI for the VAD test.")
        pytest.skip(f"{what} is not installed; it is needed for the VAD test.")


def test_trim_silence_keeps_speech_and_drops_padding(tmp_path):
    _require(shutil.which("espeak-ng") is not None, "espeak-ng (apt-get install espeak-ng) to synthesise speech")
    _require(__import__("importlib").util.find_spec("silero_vad") is not None, "silero-vad (pip install --no-deps)")
    import torch

    subprocess.run(["espeak-ng", "-w", str(tmp_path / "seven.wav"), "seven"], check=True, capture_output=True)
    speech, rate = sf.read(tmp_path / "seven.wav", dtype="float32")  # espeak-ng writes 22.05 kHz: VAD resamples
    silence = np.zeros(rate // 2, np.float32)
    clip = np.concatenate([silence, speech, silence])
    threads = torch.get_num_threads()
    trimmed = trim_silence(clip, rate)
    assert torch.get_num_threads() == threads  # importing silero_vad sets 1 thread; trim_silence restores it
    removed = len(clip) - len(trimmed)
    assert removed > 0.8 * len(silence) * 2  # most of the second of padding is gone
    assert np.sum(trimmed**2) > 0.99 * np.sum(clip**2)  # and the speech is kept
    at_16k = read_audio((clip, rate), 16000)
    assert abs(len(trim_silence(at_16k, 16000)) - len(trimmed) * 16000 / rate) < 0.05 * 16000

    quiet = np.zeros(16000, np.float32)
    assert np.array_equal(trim_silence(quiet, 16000), quiet)
