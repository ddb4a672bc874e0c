"""Audio: class folders and audio inputs, decoding to mono float32 at the backbone's rate, and bad files.

Imports NumPy, soundfile (libsndfile) and soxr only (windowing, augmentation and VAD: audio_clips.py).
`read_audio` is the one decode entry point: it takes a file path (.wav .flac .ogg, and .mp3 where the installed
libsndfile decodes it), an `(array, sampling_rate)` pair, a `{"array", "sampling_rate"}` dict (older
`datasets` Audio columns), a `{"path", "bytes"}` dict (`datasets` Audio with decode=False) or a decoder object
with `get_all_samples()` (what `datasets` 4+ Audio columns yield). Channels are averaged to mono and integer
PCM is scaled to [-1, 1].
"""

from __future__ import annotations

import functools
import hashlib
import io
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferkit.data.audio_clips import augment, fit_length, sliding_windows, trim_silence  # noqa: F401 (re-exported)
from transferkit.errors import ConfigError, DataError, DataFileError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_SHORTFALL = 0.02  # a file whose header promises more than this fraction beyond what is there is truncated
_UNSET_WAV_SIZE = 0x7FFFF000  # streaming WAV writers leave huge placeholder sizes (0xFFFFFFFF, 0x7FFFF000)


class _Unreadable(Exception):
    """Why an input cannot be decoded (a clause for an error message); `where` names the input."""


class _TooLong(_Unreadable):
    def __init__(self, seconds: float):
        super().__init__(f"{seconds:.1f} s long")
        self.seconds = seconds


def is_audio_path(value: Any) -> bool:
    return isinstance(value, (str, Path)) and str(value).lower().endswith(AUDIO_SUFFIXES)


def is_audio_object(value: Any) -> bool:
    """An `(array, rate)` pair, a `datasets` Audio dict (decoded or not) or an audio decoder object."""
    if isinstance(value, tuple) and len(value) == 2:
        return hasattr(value[0], "__array__") and _is_rate(value[1])
    if isinstance(value, dict):
        if "array" in value:
            return _is_rate(value.get("sampling_rate"))
        return value.get("bytes") is not None or is_audio_path(value.get("path"))
    return callable(getattr(value, "get_all_samples", None))


def _is_rate(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


@functools.lru_cache(maxsize=1)
def mp3_supported() -> bool:
    """Whether the libsndfile behind soundfile decodes MP3 (libsndfile 1.1+, soundfile 0.12+ wheels)."""
    import soundfile

    return "MP3" in soundfile.available_formats()


def read_audio(item: Any, sampling_rate: int) -> Any:
    """Any audio input -> 1-D float32 mono samples at `sampling_rate` (resampled with soxr when needed)."""
    if not _is_rate(sampling_rate):
        raise ValueError(f"sampling_rate must be a positive integer, got {sampling_rate!r}.")
    try:
        samples, rate = _decode(item)
    except _Unreadable as exc:
        where = _where(item, None)
        if where is None:
            raise DataError(f"Cannot read audio (in-memory samples): {exc}.") from None
        raise DataFileError(f"Cannot read audio {where!r}: {exc}.") from None
    return resample(samples, rate, sampling_rate)


def resample(wave: Any, from_rate: int, to_rate: int) -> Any:
    """Band-limited resampling (soxr, high quality); the input comes back as float32 when the rates match."""
    import numpy as np

    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if from_rate == to_rate or wave.size == 0:
        return wave
    import soxr

    return np.ascontiguousarray(soxr.resample(wave, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def audio_digest(item: Any) -> bytes:
    """Content hash: the file's bytes for a path (or undecoded bytes), the float32 mono samples and rate otherwise."""
    if isinstance(item, (str, Path)):
        return hashlib.blake2b(Path(item).read_bytes(), digest_size=16).digest()
    if isinstance(item, dict) and "array" not in item and item.get("bytes") is not None:
        return hashlib.blake2b(bytes(item["bytes"]), digest_size=16).digest()
    if isinstance(item, dict) and "array" not in item and item.get("path") is not None:
        return audio_digest(item["path"])
    try:
        samples, rate = _decode(item)
    except _Unreadable as exc:
        raise DataError(f"Cannot read audio (in-memory samples): {exc}.") from None
    return hashlib.blake2b(samples.tobytes() + str(rate).encode(), digest_size=16).digest()


def _where(item: Any, index: int | None) -> str | None:
    """The file an input came from, else `audio #n` (None when index is None and there is no file)."""
    if isinstance(item, (str, Path)):
        return str(item)
    if isinstance(item, dict) and isinstance(item.get("path"), (str, Path)):
        return str(item["path"])
    return None if index is None else f"audio #{index + 1}"


def _decode(item: Any, max_seconds: float | None = None) -> tuple[Any, int]:
    """Decode once -> (float32 mono samples at the native rate, rate). Raises _Unreadable with the reason."""
    import numpy as np

    if isinstance(item, (str, Path)):
        samples, rate = _decode_file(Path(item), max_seconds)
    elif isinstance(item, dict) and "array" not in item and (item.get("bytes") is not None or item.get("path")):
        if item.get("bytes") is None:
            samples, rate = _decode_file(Path(item["path"]), max_seconds)
        else:
            samples, rate = _decode_stream(io.BytesIO(bytes(item["bytes"])), max_seconds)
    else:
        array, rate = unpack_audio(item)
        samples = _to_mono(array)
        if max_seconds is not None and samples.size / rate > max_seconds:
            raise _TooLong(samples.size / rate)
    if samples.size == 0:
        raise _Unreadable("it holds no audio samples (zero length)")
    if not np.isfinite(samples).all():
        raise _Unreadable("it contains NaN or infinite samples")
    return samples, rate


def unpack_audio(item: Any) -> tuple[Any, int]:
    """(array, rate) from a pair, a decoded `datasets` dict or a decoder object with get_all_samples()."""
    if isinstance(item, tuple) and len(item) == 2:
        array, rate = item
    elif isinstance(item, dict) and "array" in item:
        array, rate = item["array"], item.get("sampling_rate")
    elif callable(getattr(item, "get_all_samples", None)):
        decoded = item.get_all_samples()
        array, rate = decoded.data, decoded.sample_rate  # (channels, frames) tensor
    else:
        raise _Unreadable(
            f"expected a file path, an (array, sampling_rate) pair or a dict with 'array' and 'sampling_rate', "
            f"got {type(item).__name__}"
        )
    if not _is_rate(rate):
        raise _Unreadable(f"the sampling rate must be a positive integer (in Hz), got {rate!r}")
    return array, int(rate)


def _to_mono(array: Any, channel_axis: int | None = None) -> Any:
    """Samples -> float32 mono. Integer PCM is scaled to [-1, 1]; channels (unless given: the shorter axis of a
    2-D array) are averaged."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype.kind in "iu":
        half = 2.0 ** (8 * array.dtype.itemsize - 1)
        array = (array.astype(np.float64) - (half if array.dtype.kind == "u" else 0.0)) / half
    elif array.dtype.kind != "f":
        raise _Unreadable(f"samples must be integer PCM or floating point, got dtype {array.dtype}")
    if array.ndim == 2 and array.size == 0:
        array = array.reshape(0)
    elif array.ndim == 2:
        if channel_axis is None:
            channel_axis = 0 if array.shape[0] < array.shape[1] else 1
        array = array.mean(axis=channel_axis)
    elif array.ndim != 1:
        raise _Unreadable(f"samples must be 1-D (mono) or 2-D (channels x frames), got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _decode_file(path: Path, max_seconds: float | None) -> tuple[Any, int]:
    suffix = path.suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise _Unreadable(
            f"the extension {suffix or '(none)'!r} is not a supported audio format ({', '.join(AUDIO_SUFFIXES)}); "
            f"convert it, for example `ffmpeg -i {path.name} {path.stem}.flac`"
        )
    if suffix == ".mp3" and not mp3_supported():
        raise _Unreadable(
            "the installed libsndfile cannot decode MP3 (it needs libsndfile 1.1 or later, bundled with "
            "soundfile 0.12+ wheels); upgrade soundfile or convert the file to FLAC or WAV"
        )
    if not path.exists():
        raise _Unreadable("the file does not exist")
    if path.is_dir():
        raise _Unreadable("it is a folder, not an audio file")
    if not path.is_file():  # a named pipe would block open() forever
        raise _Unreadable("it is not a regular file (a named pipe, socket or device)")
    try:
        with open(path, "rb") as handle:
            if path.stat().st_size == 0:
                raise _Unreadable("the file is empty (0 bytes)")
            if suffix == ".wav":
                _check_wav_size(handle, path.stat().st_size)
            return _decode_stream(handle, max_seconds)
    except PermissionError:
        raise _Unreadable("permission denied; make the file readable") from None
    except OSError as exc:
        raise _Unreadable(f"it cannot be opened ({exc.strerror or exc})") from None


def _decode_stream(handle: Any, max_seconds: float | None) -> tuple[Any, int]:
    """Decode a seekable binary stream with libsndfile, refusing over-long audio before reading the samples."""
    import soundfile

    try:
        with soundfile.SoundFile(handle) as sound:
            declared, rate = sound.frames, sound.samplerate
            if max_seconds is not None and rate > 0 and declared / rate > max_seconds:
                raise _TooLong(declared / rate)
            data = sound.read(dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        reason = getattr(exc, "error_string", None) or exc  # without "Error opening <_io.BufferedReader ...>"
        raise _Unreadable(f"it is corrupt or not in a supported audio format ({reason})") from None
    if declared > 0 and len(data) < declared * (1 - _SHORTFALL):
        raise _Unreadable(f"the file is truncated: its header declares {declared} frames but only {len(data)} decode")
    return _to_mono(data, channel_axis=1), rate  # libsndfile gives (frames, channels)


def _check_wav_size(handle: Any, size: int) -> None:
    """libsndfile silently reads a cut-off WAV's remaining samples, so compare the data chunk's size with the file."""
    head = handle.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        handle.seek(0)
        return  # RF64, Wave64 or not a WAV at all: libsndfile judges it
    offset = 12
    while (chunk := handle.read(8)) and len(chunk) == 8:
        length, offset = int.from_bytes(chunk[4:], "little"), offset + 8
        if chunk[:4] == b"data":
            present = size - offset
            if length < _UNSET_WAV_SIZE and present < length * (1 - _SHORTFALL):
                raise _Unreadable(
                    f"the file is truncated: its header declares {length} bytes of audio but only {present} are "
                    "present (an interrupted copy or download?)"
                )
            break
        offset += length + (length & 1)  # chunks are word-aligned
        handle.seek(offset)
    handle.seek(0)


def check_audio(
    items: Sequence[Any], labels: list | None, skip_bad: bool, max_seconds: float | None
) -> tuple[list[Any], list | None, list[str]]:
    """Decode every clip once; bad ones raise an error naming the file, or are dropped and listed with skip_bad.

    Bad means: missing or unreadable path, unsupported extension, empty, zero-length, corrupt or truncated file.
    Clips longer than `max_seconds` (None: no limit) are treated the same way: an error saying how to raise
    the limit, or, with skip_bad, dropped and listed as "path: N s long, over the limit". Long files are
    refused from their header, before decoding.
    """
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_audio_seconds must be positive (or None for no limit), got {max_seconds!r}.")
    if not items:
        raise DataError("No audio clips were given. Pass at least one file path or (array, sampling_rate) pair.")
    from transferkit.data.file_checks import UnusableFile, keep_usable

    def check(item: Any, i: int) -> None:
        where = _where(item, i)
        try:
            _decode(item, max_seconds)
        except _TooLong as exc:
            raise UnusableFile(
                f"Audio {where!r} is {exc.seconds:.1f} s long, over the limit of {max_seconds:g} s. Cut it into "
                f"shorter clips, raise the limit (--max-audio-seconds {int(exc.seconds) + 1}, or "
                "max_audio_seconds= in Python), or pass --skip-bad-files to skip over-long clips (they are "
                "counted in the log).",
                f"{where}: {exc}, over the {max_seconds:g} s limit (--max-audio-seconds)",
            ) from None
        except _Unreadable as exc:
            raise UnusableFile(
                f"Cannot read audio {where!r}: {exc}. Fix or remove it, or pass --skip-bad-files to skip "
                "unreadable audio (they are counted in the log).",
                f"{where}: {exc}",
            ) from None

    return keep_usable(items, labels, skip_bad, check, "audio clips")


def folder_examples(directory: Path) -> tuple[list[str], list[str]]:
    """`directory/<class>/*.wav|flac|ogg|mp3` -> (paths, class names). Empty class folders are an error."""
    from transferkit.data.folders import class_folder_files

    return class_folder_files(directory, AUDIO_SUFFIXES, "audio clips")
