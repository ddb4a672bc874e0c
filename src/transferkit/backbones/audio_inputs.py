"""What every audio backbone does with its inputs: decode, trim, augment and window each clip, batch by batch.

A backbone mixes in `AudioInputs`, sets `sampling_rate`, `clip_seconds`, `augment` and `trim_silence`, and turns
the prepared windows into model inputs in `_features(waves, lengths)` (`lengths`: each clip's real samples in
its window). Randomness (crop position, augmentation) comes from torch's seeded, checkpointed RNG.
"""

from __future__ import annotations

from typing import Any

import torch


class AudioInputs:
    source: str
    name: str
    sampling_rate: int
    clip_seconds: float
    augment: bool
    trim_silence: bool

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sampling_rate))

    def encode(self, inputs: list[Any]) -> list[Any]:
        return list(inputs)  # decoded batch by batch: a dataset of waveforms may not fit in memory

    def _prepare_wave(self, wave: Any) -> Any:
        """A backbone's own step after decoding and trimming (e.g. volume normalisation); none by default."""
        return wave

    def _features(self, waves: list[Any], lengths: list[int]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _waves(self, items: list[Any], training: bool) -> dict[str, torch.Tensor]:
        """Each clip at the backbone's rate, fit to the window: a random crop (and augmentation) when training,
        the centre crop otherwise; short clips zero-padded."""
        import numpy as np

        from transferkit.data.audio import augment, fit_length, read_audio, trim_silence

        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item())) if training else None
        waves, lengths = [], []
        for item in items:
            wave = read_audio(item, self.sampling_rate)
            if self.trim_silence:
                wave = trim_silence(wave, self.sampling_rate)
            wave = self._prepare_wave(wave)
            if rng is not None and self.augment:
                wave = augment(wave, rng, self.sampling_rate)
            lengths.append(min(len(wave), self.clip_samples))
            waves.append(fit_length(wave, self.clip_samples, "random" if rng is not None else "centre", rng))
        return self._features(waves, lengths)

    def collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        return self._waves(items, training=False)

    def train_collate(self, items: list[Any]) -> dict[str, torch.Tensor]:
        return self._waves(items, training=True)

    def item_length(self, item: Any) -> int:
        return 1

    def item_digest(self, item: Any) -> bytes:
        from transferkit.data.audio import audio_digest

        return audio_digest(item)

    def audio_spec(self) -> dict[str, Any]:
        """What a saved run records to rebuild this backbone's input pipeline (plus the backbone's own keys)."""
        return {
            "source": self.source,
            "name": self.name,
            "clip_seconds": self.clip_seconds,
            "augment": self.augment,
            "trim_silence": self.trim_silence,
        }

    def audio_data_config(self) -> dict[str, Any]:
        return {
            "modality": "audio",
            "sampling_rate": self.sampling_rate,
            "clip_seconds": self.clip_seconds,
            "training_crop": "random",
            "evaluation_crop": "centre",
        }
