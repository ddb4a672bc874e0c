"""Fingerprints for the data checks, and the pair searches that compare them.

One fingerprint per example and modality: text is compared raw, normalised (case, punctuation and spacing
dropped) and by word-shingle Jaccard; images by their decoded pixels and a perceptual hash (dHash + aHash,
64 bits each) compared by Hamming distance, confirmed by a grey thumbnail; audio by its decoded samples (a hash
of them rounded to 16-bit steps, and a short random projection that also matches the same clip re-encoded
as WAV or FLAC); vectors by their float32 rows. Imports NumPy, Pillow and (through data/audio.py) soundfile.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferkit.data.examples import ExampleSet

_PUNCTUATION = re.compile(r"[^\w\s]|_")  # \w is Unicode-aware: letters of every script stay
SHINGLE_WORDS = 2  # words per shingle: pairs keep word order, so "not good, bad" differs from "not bad, good"
SHINGLE_MAX_WORDS = 5_000  # a longer text is compared on its start: a 10 MB text would take seconds
HASH_SIDE = 8  # dHash and aHash are HASH_SIDE x HASH_SIDE bits
THUMB_SIDE = 16  # grey thumbnails that confirm a perceptual-hash match (their correlation)
AUDIO_SEGMENTS = 64  # numbers in an audio signature
AUDIO_TOLERANCE = 0.01  # signatures this close (relative) are one clip; a rounding step moves them ~1e-4
HAMMING_CHUNK = 2048  # rows per block of the distance matrix (2048 x 10k float32: 80 MB)


def normalise_text(text: str) -> str:
    """Lowercase, punctuation removed, whitespace collapsed: "The film, GREAT!" -> "the film great"."""
    return " ".join(_PUNCTUATION.sub(" ", text.casefold()).split())


def shingles(normalised: str, size: int = SHINGLE_WORDS) -> frozenset[str]:
    words = normalised.split(maxsplit=SHINGLE_MAX_WORDS)[:SHINGLE_MAX_WORDS]
    if not words:
        return frozenset()  # nothing to compare: never a near copy
    if len(words) <= size:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def image_keys(item: Any) -> tuple[bytes, Any, Any]:
    """(hash of the decoded RGB pixels, 128 perceptual-hash bits: dHash then aHash, unit-norm zero-mean
    THUMB_SIDE x THUMB_SIDE grey thumbnail) of one image input."""
    import numpy as np
    from PIL import Image

    from transferkit.data.images import read_image

    image = read_image(item)
    pixels = np.asarray(image)
    gray = image.convert("L")
    wide = np.asarray(gray.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.LANCZOS), dtype=np.float32)
    small = np.asarray(gray.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.LANCZOS), dtype=np.float32)
    dhash = wide[:, 1:] > wide[:, :-1]  # brightness gradients: survive rescaling, re-encoding, small colour shifts
    ahash = small > small.mean()
    bits = np.concatenate([dhash.ravel(), ahash.ravel()]).astype(np.uint8)
    thumb = np.asarray(gray.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS), dtype=np.float32).ravel()
    thumb -= thumb.mean()
    thumb /= float(np.linalg.norm(thumb)) or 1.0  # a flat image stays all zeros: it correlates with nothing
    return _digest(pixels.tobytes() + str(pixels.shape).encode()), bits, thumb


@functools.lru_cache(maxsize=8)
def _signs(length: int) -> Any:
    import numpy as np

    return (np.random.default_rng(0).integers(0, 2, length, dtype=np.int8) * 2 - 1).astype(np.int8)


def audio_keys(item: Any) -> tuple[bytes, tuple[int, int], Any]:
    """(hash of the decoded mono samples rounded to 16-bit steps and the rate, (rate, length), signature).

    The signature sums the samples with fixed random signs over AUDIO_SEGMENTS stretches: a random projection,
    so two clips of one length are about as far apart in it as in their samples. It matches a lossless re-encode
    whose samples moved by a rounding step (libsndfile's WAV and FLAC writers round floats differently), which
    the hash misses. Lossy re-encodes (MP3, Ogg) or resampled copies change the length or the samples: no match.
    """
    import numpy as np

    from transferkit.data.audio import _decode  # the loader's own decoder: the samples training sees

    samples, rate = _decode(item)
    steps = np.round(samples.astype(np.float64) * 32768.0).astype(np.int32)
    weighted = samples * _signs(len(samples))
    starts = np.linspace(0, len(samples), AUDIO_SEGMENTS, endpoint=False).astype(int)
    sums = np.add.reduceat(weighted, starts, dtype=np.float64)
    signature = sums * (np.diff(np.append(starts, len(samples))) > 0)  # clips under 64 samples: empty stretches
    return _digest(steps.tobytes() + f"@{rate}".encode()), (rate, len(samples)), signature


def raw_audio_key(item: Any) -> bytes | None:
    """Hash of the undecoded bytes (for files that do not decode), None when even those cannot be read."""
    from transferkit.data.audio import audio_digest

    try:
        return audio_digest(item)
    except Exception:  # missing file, permission denied, or samples that are not audio at all
        return None


@dataclass
class Fingerprints:
    """What the duplicate and leakage checks compare, one entry per example (None where it cannot be read)."""

    exact: list[Any]  # equal keys: the same example (raw text; hash of pixels, samples or the row)
    loose: list[Any]  # equal keys: the same after normalising (text) or by perceptual hash (images); else exact
    bits: Any = None  # images: (n, 128) uint8 perceptual-hash bits, compared by Hamming distance
    thumbs: Any = None  # images: (n, THUMB_SIDE**2) normalised grey thumbnails, to confirm close hashes
    texts: list[str] | None = None  # text: the normalised texts, for word shingles
    signatures: Any = None  # audio: (n, AUDIO_SEGMENTS) projections of the samples, compared within one shape
    shapes: list[Any] | None = None  # audio: (rate, length) per clip, None where unreadable
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (index, why) of inputs that fail to decode


def _where(item: Any, index: int) -> str:
    if isinstance(item, (str, Path)):
        return str(item)
    if isinstance(item, dict) and isinstance(item.get("path"), (str, Path)):
        return str(item["path"])
    return f"#{index + 1}"


def _image_prints(inputs: list[Any]) -> Fingerprints:
    import numpy as np

    exact, bits, unreadable = [], np.zeros((len(inputs), 2 * HASH_SIDE * HASH_SIDE), dtype=np.uint8), []
    thumbs = np.zeros((len(inputs), THUMB_SIDE * THUMB_SIDE), dtype=np.float32)
    for i, item in enumerate(inputs):
        try:
            key, bits[i], thumbs[i] = image_keys(item)
        except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, bomb errors)
            unreadable.append((i, f"{_where(item, i)}: {exc}"))
            key = None
        exact.append(key)
    loose = [None if key is None else bits[i].tobytes() for i, key in enumerate(exact)]  # same perceptual hash
    return Fingerprints(exact, loose, bits=bits, thumbs=thumbs, unreadable=unreadable)


def _audio_prints(inputs: list[Any]) -> Fingerprints:
    import numpy as np

    exact, shapes, unreadable = [], [], []
    signatures = np.zeros((len(inputs), AUDIO_SEGMENTS))
    for i, item in enumerate(inputs):
        try:
            key, shape, signatures[i] = audio_keys(item)
        except Exception as exc:  # the decoder's reason (corrupt, truncated, empty, unsupported format)
            unreadable.append((i, f"{_where(item, i)}: {exc}"))
            key, shape = raw_audio_key(item), None
        exact.append(key)
        shapes.append(shape)
    return Fingerprints(exact, list(exact), signatures=signatures, shapes=shapes, unreadable=unreadable)


def fingerprints(examples: ExampleSet) -> Fingerprints:
    """The fingerprints of every example in the set (reads and decodes every image and audio file once)."""
    if examples.modality == "text":
        normalised = [normalise_text(t) for t in examples.inputs]
        loose = [n or t for n, t in zip(normalised, examples.inputs)]  # "!!!" normalises to nothing: keep it whole
        return Fingerprints(list(examples.inputs), loose, texts=normalised)
    if examples.modality == "image":
        return _image_prints(examples.inputs)
    if examples.modality == "audio":
        return _audio_prints(examples.inputs)
    from transferkit.data.vectors import row_digest

    keys = [row_digest(row) for row in examples.inputs]
    return Fingerprints(keys, list(keys))


def hamming_pairs(a: Any, b: Any | None, max_bits: int) -> list[tuple[int, int]]:
    """(i, j) with at most `max_bits` differing bits between a[i] and b[j]; b=None compares a with itself (i < j)."""
    import numpy as np

    left = a.astype(np.float32)
    right = left if b is None else b.astype(np.float32)
    left_ones, right_ones = left.sum(axis=1), right.sum(axis=1)
    pairs = []
    for start in range(0, len(left), HAMMING_CHUNK):
        block = left[start : start + HAMMING_CHUNK]
        # |x xor y| = |x| + |y| - 2 x.y for 0/1 vectors: one matrix product per block
        distance = left_ones[start : start + len(block), None] + right_ones[None, :] - 2.0 * (block @ right.T)
        close = distance <= max_bits + 0.5
        if b is None:
            close &= np.arange(len(right))[None, :] > np.arange(start, start + len(block))[:, None]
        rows, cols = np.nonzero(close)
        pairs.extend(zip((rows + start).tolist(), cols.tolist()))
    return pairs


def jaccard_pairs(
    a: list[frozenset], b: list[frozenset] | None, threshold: float, budget: int | None = None
) -> list[tuple[int, int]] | None:
    """(i, j) whose shingle sets have Jaccard similarity >= threshold; b=None compares a with itself (i < j).
    None when more than `budget` candidate pairs would need comparing (common tokens in every set).

    Prefix filtering (Chaudhuri et al. 2006): with tokens in one global rarest-first order, two sets that reach
    the threshold share a token within the first |x| - ceil(threshold |x|) + 1 tokens of each. So only pairs
    sharing a rare token are compared, instead of all n^2.
    """
    sets_b = a if b is None else b
    frequency = Counter(token for group in (a, b or []) for s in group for token in s)

    def prefix(s: frozenset) -> list[str]:
        ordered = sorted(s, key=lambda token: (frequency[token], token))
        return ordered[: len(s) - math.ceil(threshold * len(s)) + 1]

    index: dict[str, list[int]] = {}
    for j, s in enumerate(sets_b):
        for token in prefix(s):
            index.setdefault(token, []).append(j)
    prefixes = [prefix(s) for s in a]
    if budget is not None and sum(len(index.get(t, ())) for p in prefixes for t in p) > budget:
        return None
    pairs = []
    for i, s in enumerate(a):
        candidates = {j for token in prefixes[i] for j in index.get(token, ())}
        for j in sorted(candidates):
            if b is None and j <= i:
                continue
            other = sets_b[j]
            shared = len(s & other)
            if shared >= threshold * (len(s) + len(other) - shared):
                pairs.append((i, j))
    return pairs


def close_signature_pairs(a: Any, b: Any | None, tolerance: float) -> list[tuple[int, int]]:
    """(i, j) with |a[i] - b[j]| <= tolerance * max(|a[i]|, |b[j]|); b=None compares a with itself (i < j)."""
    import numpy as np

    right = a if b is None else b
    left_norms, right_norms = (a**2).sum(axis=1), (right**2).sum(axis=1)
    pairs = []
    for start in range(0, len(a), HAMMING_CHUNK):
        block = a[start : start + HAMMING_CHUNK]
        block_norms = left_norms[start : start + len(block), None]
        squared = np.maximum(block_norms + right_norms[None, :] - 2.0 * (block @ right.T), 0.0)
        close = squared <= tolerance**2 * np.maximum(block_norms, right_norms[None, :])
        if b is None:
            close &= np.arange(len(right))[None, :] > np.arange(start, start + len(block))[:, None]
        rows, cols = np.nonzero(close)
        pairs.extend(zip((rows + start).tolist(), cols.tolist()))
    return pairs
