"""Classical features as ranking candidates, so a ranking shows what a pretrained model buys over them.

* `tfidf` (text): TF-IDF of word unigrams and bigrams (top 5,000 by document frequency, seen in >= 2 texts,
  sublinear term frequency, L2-normalised rows), the features of the classic TF-IDF + linear model.
* `pixels` (images): the image at 32x32 RGB, scaled to [0, 1] (3,072 values).
* `waveform` (audio): statistics of the 16 kHz waveform: mean and spread over time of 64 log-power spectrum
  bands (25 ms frames, 10 ms hop), plus loudness and zero-crossing rate (130 values).
* `raw` (feature vectors): the vectors themselves.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

BASELINES = {"text": "tfidf", "image": "pixels", "audio": "waveform", "vector": "raw"}
VOCABULARY = 5000
IMAGE_SIDE = 32
AUDIO_RATE, FRAME, HOP, BANDS = 16000, 400, 160, 64


def _terms(text: str) -> list[str]:
    words = re.findall(r"\w+", text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def tfidf_features(texts: list[str]) -> np.ndarray:
    documents = [Counter(_terms(t)) for t in texts]
    frequency = Counter(term for doc in documents for term in doc)
    vocabulary = [t for t, df in sorted(frequency.items(), key=lambda kv: (-kv[1], kv[0])) if df >= 2][:VOCABULARY]
    index = {term: i for i, term in enumerate(vocabulary)}
    idf = np.array([math.log((1 + len(texts)) / (1 + frequency[t])) + 1.0 for t in vocabulary], dtype=np.float32)
    matrix = np.zeros((len(texts), max(len(vocabulary), 1)), dtype=np.float32)
    for row, doc in enumerate(documents):
        for term, count in doc.items():
            if term in index:
                matrix[row, index[term]] = (1.0 + math.log(count)) * idf[index[term]]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def pixel_features(images: list) -> np.ndarray:
    from transferkit.data.images import read_image

    rows = [np.asarray(read_image(i).convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE)), dtype=np.float32) for i in images]
    return np.stack(rows).reshape(len(rows), -1) / 255.0


def waveform_features(clips: list) -> np.ndarray:
    from transferkit.data.audio import read_audio

    window = np.hanning(FRAME).astype(np.float32)
    rows = []
    for clip in clips:
        wave = np.asarray(read_audio(clip, AUDIO_RATE), dtype=np.float32)
        wave = np.pad(wave, (0, max(0, FRAME - len(wave))))
        starts = np.arange(0, len(wave) - FRAME + 1, HOP)
        frames = np.stack([wave[s : s + FRAME] for s in starts]) * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        bands = np.log(np.stack([b.sum(axis=1) for b in np.array_split(power, BANDS, axis=1)], axis=1) + 1e-10)
        crossings = np.mean(np.abs(np.diff(np.signbit(wave).astype(np.int8))))
        loudness = np.log(np.mean(wave**2) + 1e-10)
        rows.append(np.concatenate([bands.mean(axis=0), bands.std(axis=0), [loudness, crossings]]))
    return np.stack(rows).astype(np.float32)


def baseline_features(name: str, inputs: list) -> np.ndarray:
    """Features of a classical baseline for these inputs (see the module docstring)."""
    if name == "tfidf":
        return tfidf_features(inputs)
    if name == "pixels":
        return pixel_features(inputs)
    if name == "waveform":
        return waveform_features(inputs)
    return np.stack([np.asarray(row, dtype=np.float32) for row in inputs])  # raw vectors
