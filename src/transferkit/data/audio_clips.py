"""Audio clips: windowing (crop/pad, sliding windows), training augmentation and Silero VAD silence trimming.

All functions take and return 1-D float32 NumPy waves; randomness comes from a NumPy Generator the caller
seeds, so augmented batches are reproducible.
"""

from __future__ import annotations

import threading
from typing import Any

from transferkit.errors import ConfigError

FIT_MODES = ("random", "centre")
VAD_RATES = (8000, 16000)  # the rates Silero VAD runs at; anything else is resampled to 16 kHz for detection


def fit_length(wave: Any, length: int, mode: str, rng: Any = None) -> Any:
    """Crop or zero-pad a clip to exactly `length` samples (a new float32 array).

    Longer clips are cropped: `mode="random"` takes a window at a uniformly random offset drawn from `rng` (a
    NumPy Generator, for training), `mode="centre"` takes the middle window (evaluation). Shorter clips are
    zero-padded at the end in both modes, so training and evaluation see speech aligned the same way; random
    placement is `augment`'s time shift's job.
    """
    import numpy as np

    if mode not in FIT_MODES:
        raise ConfigError(f"Unknown clip mode {mode!r}; expected one of {', '.join(map(repr, FIT_MODES))}.")
    if int(length) != length or length < 1:
        raise ValueError(f"length must be a positive whole number of samples, got {length!r}.")
    if mode == "random" and rng is None:
        raise ValueError("mode='random' needs rng (a numpy.random.Generator) so crops are reproducible.")
    wave = np.asarray(wave, dtype=np.float32)
    length, n = int(length), len(wave)
    if n >= length:
        start = int(rng.integers(0, n - length + 1)) if mode == "random" else (n - length) // 2
        return wave[start : start + length].copy()
    out = np.zeros(length, dtype=np.float32)
    out[:n] = wave
    return out


def sliding_windows(wave: Any, length: int, hop: int) -> Any:
    """Windows of `length` samples every `hop` samples, as a (windows, length) float32 array.

    The last window is aligned to the clip's end so the tail is covered (it may overlap the one before by more
    than usual); a clip shorter than `length` gives one zero-padded window. Average the model's outputs over
    the windows for a clip-level prediction.
    """
    import numpy as np

    if int(length) != length or length < 1 or int(hop) != hop or not 1 <= hop <= length:
        raise ValueError(f"need 1 <= hop <= length (whole samples) so windows cover the clip, got {length=}, {hop=}.")
    wave = np.asarray(wave, dtype=np.float32)
    length, hop, n = int(length), int(hop), len(wave)
    if n <= length:
        return fit_length(wave, length, "centre")[None, :]
    starts = list(range(0, n - length + 1, hop))
    if starts[-1] + length < n:
        starts.append(n - length)
    return np.stack([wave[start : start + length] for start in starts])


def augment(
    wave: Any,
    rng: Any,
    sampling_rate: int,
    gain_db: float = 6.0,
    max_shift: float = 0.1,
    snr_db: tuple[float, float] = (10.0, 30.0),
) -> Any:
    """Training-time augmentation (never for evaluation or cached features); the same `rng` state gives the same
    result. Returns a new float32 array of the same length:

    - time shift by up to ±`max_shift` of the clip's length, filling with zeros (not wrapping around);
    - gain drawn uniformly in ±`gain_db` dB (not clipped: the backbones take float input);
    - Gaussian noise at an SNR drawn uniformly from `snr_db` dB, relative to the shifted, scaled clip
      (an all-zero clip stays silent).

    `sampling_rate` is checked but not used yet; it is in the signature for rate-dependent augmentations.
    """
    import numpy as np

    from transferkit.data.audio import _is_rate

    if not _is_rate(sampling_rate):
        raise ValueError(f"sampling_rate must be a positive integer, got {sampling_rate!r}.")
    wave = np.asarray(wave, dtype=np.float32)
    n = len(wave)
    limit = int(max_shift * n)
    shift = int(rng.integers(-limit, limit + 1))
    gain = 10.0 ** (rng.uniform(-gain_db, gain_db) / 20.0)
    snr = rng.uniform(*snr_db)
    noise = rng.standard_normal(n)
    out = np.zeros(n, dtype=np.float64)
    if shift >= 0:
        out[shift:] = wave[: n - shift]
    else:
        out[:shift] = wave[-shift:]
    out *= gain
    power = float(np.mean(out**2)) if n else 0.0
    out += noise * np.sqrt(power / 10.0 ** (snr / 10.0))
    return out.astype(np.float32)


_VAD: dict[str, Any] = {}
_VAD_LOCK = threading.Lock()  # the model keeps state between frames: one caller at a time


def _load_vad() -> None:
    """Load Silero VAD once (the TorchScript model ships inside the silero-vad wheel; no download)."""
    import warnings

    import torch

    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():  # its own deprecated importlib/torch.jit calls
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            from silero_vad import get_speech_timestamps, load_silero_vad

            _VAD.update(model=load_silero_vad(), timestamps=get_speech_timestamps)
    except ImportError:
        raise ConfigError(
            "Trimming silence needs the silero-vad package, which is not installed: run "
            "`pip install --no-deps silero-vad` (it needs only torch), or turn silence trimming off."
        ) from None
    finally:
        torch.set_num_threads(threads)  # importing silero_vad sets torch to one thread for the whole process


def trim_silence(wave: Any, sampling_rate: int, pad_ms: int = 100) -> Any:
    """Cut leading and trailing non-speech found by Silero VAD; pauses between words are kept.

    Keeps one span, from the first detected speech start to the last speech end, widened by `pad_ms` each side
    (soft consonants at the edges score low); nothing inside is removed, so the rhythm of speech survives.
    Detection runs at 8 or 16 kHz (other rates are resampled for detection only; the cut is made on the
    original samples). A clip with no speech, or under 32 ms, comes back unchanged.
    """
    import numpy as np
    import torch

    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < sampling_rate * 0.032:
        return wave
    vad_rate = sampling_rate if sampling_rate in VAD_RATES else 16000
    from transferkit.data.audio import resample

    probe = resample(wave, sampling_rate, vad_rate)
    with _VAD_LOCK:
        if not _VAD:
            _load_vad()
        with torch.no_grad():
            spans = _VAD["timestamps"](
                torch.from_numpy(probe), _VAD["model"], sampling_rate=vad_rate, speech_pad_ms=pad_ms
            )
    if not spans:
        return wave
    scale = sampling_rate / vad_rate
    start = max(0, int(spans[0]["start"] * scale))
    end = min(len(wave), int(np.ceil(spans[-1]["end"] * scale)))
    return wave[start:end].copy()
