"""Resemblyzer's speaker encoder (GE2E, 3-layer LSTM, 256-d) as a light audio backbone (1.4M parameters).

The network and its weights come from the `Resemblyzer` package (`resemblyzer/pretrained.pt`, installed with
`pip install --no-deps Resemblyzer`: its librosa and webrtcvad dependencies are not needed and the package is
never imported). Both are re-implemented here in plain torch with the same parameter names, so the package's
state dict loads unchanged:

- input: 16 kHz audio; volume raised to -30 dBFS when quieter (Resemblyzer's `normalize_volume`, increase
  only); a power mel spectrogram (no log) with 40 bands, 25 ms Hann windows (n_fft 400) every 10 ms (hop 160),
  centred frames (reflect padding, the librosa default when the model was trained), Slaney mel scale and
  Slaney-normalised filters (librosa's `melspectrogram` defaults), frames x bands;
- network: `lstm` = nn.LSTM(40, 256, 3 layers) -> last layer's final hidden state -> `linear` = Linear(256, 256)
  -> ReLU -> L2 normalisation: Resemblyzer's embedding of one partial utterance.

Every clip is brought to one window of `clip_seconds` (default 1.6 s = 160 frames, Resemblyzer's partial
utterance; longer clips: a random crop while training, the centre crop for evaluation and the feature cache;
shorter ones: zero-padded at the end, as Resemblyzer pads an utterance shorter than a partial). For a clip up to
1.6 s long the feature is Resemblyzer's `embed_utterance` of the volume-normalised clip (identical to 1e-7 when
both pad the edge frames alike; librosa 0.10+ pads with zeros, cosine 0.996 or more to the reflect-padded one);
for longer clips Resemblyzer averages partials every ~0.77 s, here one crop is encoded. Resemblyzer's webrtcvad
silence trimming is replaced by the library's optional Silero VAD trimming (`trim_silence`, off by default).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from transferkit.backbones.audio_inputs import AudioInputs
from transferkit.errors import BackboneError, ConfigError

SAMPLING_RATE = 16000
N_FFT = 400  # 25 ms window
HOP = 160  # 10 ms step
MEL_BANDS = 40
PARTIAL_FRAMES = 160  # 1.6 s: the length of the partial utterances Resemblyzer was trained and embeds on
TARGET_DBFS = -30.0  # Resemblyzer's audio_norm_target_dBFS (quieter clips are raised to it, louder ones kept)
CONFIG_FILE = "transferkit_resemblyzer.json"
PACKAGE_PIN = "Resemblyzer==0.1.4"
LOSS_KEYS = ("similarity_weight", "similarity_bias")  # GE2E loss parameters stored with the encoder's weights


class ResemblyzerEncoder(nn.Module):
    """Resemblyzer's VoiceEncoder network: mels [B, T, 40] -> L2-normalised embeddings [B, embedding]."""

    def __init__(self, mel_bands: int = MEL_BANDS, hidden: int = 256, layers: int = 3, embedding: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(mel_bands, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        # Resemblyzer divides by the norm; the eps only matters for an all-zero embedding (0 instead of NaN)
        return F.normalize(self.relu(self.linear(hidden[-1])), dim=1, eps=1e-12)


class _LSTMLayer(nn.Module):
    """One layer of a multi-layer nn.LSTM as a module of its own: the same Parameter objects, not copies, so
    freezing or a learning rate per block acts on the LSTM itself. Built on demand, never registered."""

    def __init__(self, lstm: nn.LSTM, layer: int):
        super().__init__()
        pattern = re.compile(rf"_l{layer}(_reverse)?$")
        for name, param in lstm.named_parameters():
            if pattern.search(name):
                self.register_parameter(name, param)


@functools.lru_cache(maxsize=1)
def mel_filters() -> torch.Tensor:
    """[201, 40] Slaney-scale, Slaney-normalised triangular filters over 0-8 kHz (librosa.filters.mel defaults)."""
    import numpy as np
    from transformers.audio_utils import mel_filter_bank

    filters = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=MEL_BANDS,
        min_frequency=0.0,
        max_frequency=SAMPLING_RATE / 2,
        sampling_rate=SAMPLING_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(np.asarray(filters, dtype=np.float64))


def mel_spectrogram(waves: Any, pad_mode: str = "reflect") -> torch.Tensor:
    """Waves [B, N] (or one [N]) at 16 kHz -> power mel spectrograms [B, 1 + N // 160, 40] float32 (no log).

    Resemblyzer's `wav_to_mel_spectrogram` (librosa.feature.melspectrogram(sr=16000, n_fft=400, hop_length=160,
    n_mels=40), transposed). `pad_mode` pads the centred edge frames: "reflect" as in the librosa versions the
    model was trained with; librosa 0.10+ defaults to "constant" (zeros), which changes only the first and last
    two frames. Computed in float64, returned as float32.
    """
    import numpy as np

    x = torch.as_tensor(np.asarray(waves, dtype=np.float64))
    if x.ndim == 1:
        x = x[None]
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    stft = torch.stft(x, N_FFT, HOP, N_FFT, window, center=True, pad_mode=pad_mode, return_complex=True)
    power = stft.real**2 + stft.imag**2  # [B, 201, frames]
    return (power.transpose(1, 2) @ mel_filters()).to(torch.float32)


def normalize_volume(wave: Any, target_dbfs: float = TARGET_DBFS) -> Any:
    """Raise a quieter clip's RMS level to `target_dbfs` (Resemblyzer's normalize_volume, increase_only=True)."""
    import numpy as np

    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0
    if rms == 0.0:
        return wave  # silence stays silence (Resemblyzer would give NaN)
    change = target_dbfs - 20.0 * np.log10(rms)
    if change <= 0:
        return wave
    return (wave * 10.0 ** (change / 20.0)).astype(np.float32)


def package_weights() -> Path:
    """`resemblyzer/pretrained.pt` of the installed Resemblyzer package, found without importing it (its
    __init__ imports librosa and webrtcvad, which are not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("resemblyzer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "pretrained.pt"
        if path.is_file():
            return path
    raise BackboneError(
        "The Resemblyzer speaker encoder's weights ship in the Resemblyzer package, which is not installed: run "
        f"`pip install --no-deps {PACKAGE_PIN}` (its librosa and webrtcvad dependencies are not needed)."
    )


def load_package_state(path: Path) -> dict[str, torch.Tensor]:
    """The encoder's state dict from a Resemblyzer checkpoint ({"model_state", "optimizer_state", "step"})."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint["model_state"]
    except Exception as exc:  # noqa: BLE001 (unpickling raises many kinds)
        raise BackboneError(f"Cannot read the Resemblyzer weights {str(path)!r}: {exc}") from None
    return {k: v for k, v in state.items() if k not in LOSS_KEYS}


class ResemblyzerBackbone(AudioInputs, nn.Module):
    source = "resemblyzer"

    def __init__(
        self, encoder: ResemblyzerEncoder, name: str, clip_seconds=None, augment=True, trim_silence=False
    ) -> None:
        super().__init__()
        self.model = encoder
        self.name = name
        self.sampling_rate = SAMPLING_RATE
        self.clip_seconds = float(clip_seconds or PARTIAL_FRAMES * HOP / SAMPLING_RATE)
        if self.clip_samples < N_FFT:
            raise ConfigError(f"clip_seconds must be at least {N_FFT / SAMPLING_RATE} s, got {clip_seconds!r}.")
        self.augment = augment
        self.trim_silence = trim_silence
        self.hidden = int(encoder.lstm.hidden_size)
        self.layers = int(encoder.lstm.num_layers)
        self.num_features = int(encoder.linear.out_features)
        self.weights_id: str | None = None

    @classmethod
    def from_package(cls, name: str = "resemblyzer", clip_seconds=None, augment=True, trim_silence=False):
        """The pretrained encoder shipped inside the Resemblyzer package (nothing is downloaded)."""
        path = package_weights()
        encoder = ResemblyzerEncoder()
        encoder.load_state_dict(load_package_state(path))
        backbone = cls(encoder, name, clip_seconds, augment, trim_silence)
        stat = path.stat()
        backbone.weights_id = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return backbone

    @classmethod
    def from_files(cls, directory: Path, spec: dict[str, Any]) -> ResemblyzerBackbone:
        """The architecture from an artifact's spec, random weights (the artifact's weights are loaded after)."""
        encoder = ResemblyzerEncoder(
            hidden=spec.get("hidden", 256), layers=spec.get("layers", 3), embedding=spec.get("embedding", 256)
        )
        return cls(
            encoder, spec["name"], spec["clip_seconds"], spec.get("augment", True), spec.get("trim_silence", False)
        )

    # -- inputs -----------------------------------------------------------------------------------
    @property
    def clip_frames(self) -> int:
        """Mel frames per clip: 160 for 1.6 s (the centred STFT's extra last frame is dropped, as Resemblyzer's
        partial slices do)."""
        return self.clip_samples // HOP

    def _prepare_wave(self, wave: Any) -> Any:
        return normalize_volume(wave)

    def _features(self, waves: list[Any], lengths: list[int]) -> dict[str, torch.Tensor]:
        import numpy as np

        return {"mels": mel_spectrogram(np.stack(waves))[:, : self.clip_frames]}

    # -- features ---------------------------------------------------------------------------------
    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["mels"])

    def blocks(self) -> list[nn.Module]:
        """Each LSTM layer (views on the one nn.LSTM's parameters), then the linear projection."""
        lstm = self.model.lstm
        return [*(_LSTMLayer(lstm, i) for i in range(lstm.num_layers)), self.model.linear]

    @property
    def lora_targets(self) -> list[str]:
        # peft has no LoRA for nn.LSTM: the adapter goes on the output projection only
        return ["linear"]

    @property
    def data_config(self) -> dict[str, Any]:
        return self.audio_data_config()

    def spec(self) -> dict[str, Any]:
        return {
            **self.audio_spec(),
            "hidden": self.hidden,
            "layers": self.layers,
            "embedding": self.num_features,
        }

    def save_files(self, directory: Path) -> None:
        (Path(directory) / CONFIG_FILE).write_text(json.dumps(self.spec(), indent=2) + "\n")


def tiny_resemblyzer(hidden: int = 16, layers: int = 1, seed: int = 0, **options: Any) -> ResemblyzerBackbone:
    """The same architecture, `hidden`-wide and random (for tests); the caller's RNG stream is left untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = ResemblyzerEncoder(hidden=hidden, layers=layers, embedding=hidden)
    return ResemblyzerBackbone(encoder, options.pop("name", "tiny-resemblyzer"), **options)
