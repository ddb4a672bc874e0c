"""Audio cases: WAV/FLAC/OGG files that are truncated, empty, corrupt, too long, or merely stereo / odd-rate."""

from __future__ import annotations

import io
from pathlib import Path

from bad_inputs.case import Case, Writer

CLASSES = ("low", "high")
PER_CLASS = 6  # the data checks warn about classes under 5 rows: a "works" case must not
RATE = 16_000


def tone(index: int, rate: int = RATE, seconds: float = 0.25, channels: int = 1):
    """A short tone: the low class near 220 Hz, the high class near 1760 Hz; (frames,) or (frames, channels)."""
    import numpy as np

    t = np.arange(int(rate * seconds)) / rate
    freq = (220.0 if index % 2 == 0 else 1760.0) * (1 + 0.05 * (index // 2))
    wave = (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave * (1 - 0.2 * c) for c in range(channels)], axis=1)


def wav_bytes(index: int, rate: int = RATE, channels: int = 1, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, tone(index, rate, channels=channels), rate, subtype=subtype, format=fmt)
    return buffer.getvalue()


def audio_folder(folder: Path, extra: dict[str, bytes] | None = None, make=None) -> Path:
    """`folder/clips/<low|high>/<i>.wav` (make(i) -> (name, bytes) overrides each file), plus `extra` files."""
    root = folder / "clips"
    for c, label in enumerate(CLASSES):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            index = 2 * i + c
            name, data = make(index) if make else (f"{i}.wav", wav_bytes(index))
            (root / label / name).write_bytes(data)
    for relative, data in (extra or {}).items():
        (root / relative).write_bytes(data)
    return root


def _with(relative: str, data: bytes, **options) -> Writer:
    return lambda folder: audio_folder(folder, {relative: data}, **options)


def _made(make) -> Writer:
    return lambda folder: audio_folder(folder, make=make)


def _odd_rates(index: int) -> tuple[str, bytes]:
    rates = (8_000, 11_025, 22_050, 44_100, 7_919, 48_000, 12_345, 32_000, 96_000, 6_000, 24_000, 37_800)
    rate = rates[index % len(rates)]
    return f"{index}_{rate}.wav", wav_bytes(index, rate=rate)


def _formats(index: int) -> tuple[str, bytes]:
    kind = index % 4
    if kind == 0:
        return f"{index}.flac", wav_bytes(index, fmt="FLAC")
    if kind == 1:
        return f"{index}.ogg", wav_bytes(index, fmt="OGG", subtype="VORBIS")
    return f"{index}.wav", wav_bytes(index, subtype="FLOAT" if kind == 2 else "PCM_U8")


def _truncated_wav() -> bytes:
    data = wav_bytes(3)
    return data[: len(data) // 2]


def _zero_samples() -> bytes:
    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(0, dtype=np.float32), RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def _nan_wav() -> bytes:
    import numpy as np
    import soundfile as sf

    wave = tone(2)
    wave[100:110] = np.nan
    buffer = io.BytesIO()
    sf.write(buffer, wave, RATE, subtype="FLOAT", format="WAV")
    return buffer.getvalue()


def _long_wav() -> bytes:
    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(RATE * 3, dtype=np.float32), RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def path_table(folder: Path, replace: dict[int, str]) -> Path:
    """`folder/data/clips.csv` with audio,label rows; `replace` swaps the paths of some rows."""
    data = folder / "data"
    (data / "wav").mkdir(parents=True)
    lines = ["audio,label"]
    for i in range(2 * PER_CLASS):
        (data / "wav" / f"{i}.wav").write_bytes(wav_bytes(i))
        lines.append(f"{replace.get(i + 1, f'wav/{i}.wav')},{CLASSES[i % 2]}")
    (data / "clips.csv").write_text("\n".join(lines) + "\n")
    return data / "clips.csv"


def _empty_class(folder: Path) -> Path:
    root = audio_folder(folder)
    (root / "silence").mkdir()
    return root


AUDIO_CASES = [
    Case("audio_baseline", "audio", "works", "a class folder of 16 kHz mono WAVs (the control)", audio_folder),
    Case(
        "audio_stereo",
        "audio",
        "works",
        "stereo WAVs: averaged to mono",
        _made(lambda i: (f"{i}.wav", wav_bytes(i, channels=2))),
    ),
    Case(
        "audio_multichannel_24bit",
        "audio",
        "works",
        "6-channel 24-bit WAVs: averaged to mono",
        _made(lambda i: (f"{i}.wav", wav_bytes(i, channels=6, subtype="PCM_24"))),
    ),
    Case(
        "audio_odd_rates",
        "audio",
        "works",
        "8, 11.025, 44.1, 7.919, 12.345 kHz ...: resampled to the model's rate",
        _made(_odd_rates),
    ),
    Case("audio_formats", "audio", "works", "FLAC, Ogg Vorbis, 32-bit float and 8-bit unsigned WAV", _made(_formats)),
    Case(
        "audio_skip_bad_files",
        "audio",
        "warning",
        "a truncated WAV with --skip-bad-files: left out and counted",
        _with("high/cut.wav", _truncated_wav()),
        names="cut.wav",
        flags=("--skip-bad-files",),
    ),
    Case(
        "wav_truncated",
        "audio",
        "error",
        "a WAV cut in half (its header promises more)",
        _with("high/cut.wav", _truncated_wav()),
        names="cut.wav",
        fix="--skip-bad-files",
    ),
    Case(
        "wav_zero_samples",
        "audio",
        "error",
        "a valid WAV header with 0 samples",
        _with("low/nothing.wav", _zero_samples()),
        names="nothing.wav",
        fix="--skip-bad-files",
    ),
    Case(
        "zero_byte_wav",
        "audio",
        "error",
        "an empty (0-byte) .wav",
        _with("low/empty.wav", b""),
        names="empty.wav",
        fix="--skip-bad-files",
    ),
    Case(
        "wav_corrupt",
        "audio",
        "error",
        "a RIFF/WAVE header followed by random bytes",
        _with("high/noise.wav", b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(range(256)) * 4),
        names="noise.wav",
        fix="--skip-bad-files",
    ),
    Case(
        "wav_nan_samples",
        "audio",
        "error",
        "a float WAV holding NaN samples",
        _with("low/nan.wav", _nan_wav()),
        names="nan.wav",
        fix="--skip-bad-files",
    ),
    Case(
        "audio_too_long",
        "audio",
        "error",
        "a 3 s clip with --max-audio-seconds 1",
        _with("low/long.wav", _long_wav()),
        names="long.wav",
        fix="--max-audio-seconds",
        flags=("--max-audio-seconds", "1"),
    ),
    Case(
        "audio_empty_class_folder",
        "audio",
        "error",
        "a class folder 'silence' with no clips",
        _empty_class,
        names="'silence'",
        fix="remove the folder",
    ),
    Case(
        "audio_csv_path_escapes",
        "audio",
        "error",
        "a path table row '../../etc/passwd.wav'",
        lambda folder: path_table(folder, {2: "../../etc/passwd.wav"}),
        names="row 2",
        fix="--allow-outside-paths",
    ),
    Case(
        "audio_csv_missing_file",
        "audio",
        "error",
        "a path table row naming a clip that does not exist",
        lambda folder: path_table(folder, {7: "wav/gone.wav"}),
        names="row 7",
        fix="drop the row",
    ),
]
