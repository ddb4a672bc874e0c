"""Pooled Whisper encoder features for short clips without encoding 30 s of padding.

HF's `WhisperEncoder.forward` insists on 3000 mel frames (30 s): a 1 s clip pays for 1500 encoder positions of
which 50 hold the clip. `encode_clip` runs the same modules (conv1, conv2, the first positions of the sinusoidal
position table, the layers, the final layer norm) on a window of a few seconds and mean-pools the states over the
clip's own frames. In the full-length encoder the clip's states also attend to the silence padding, so the result
is close to, not equal to, the full-window states pooled over the same frames.

Measured on Whisper tiny.en (CPU, 1 thread, ten 1 s espeak-ng digit clips; cosine to the full-window features
pooled over the same 50 positions): window 100 frames 21x faster, cosine 0.85 (min 0.80); 200 (the default for
1 s: the clip + 1 s of silence) 15x, 0.91 (0.88); 400 9x, 0.94; 1000 3.5x, 0.97; 3000 exact. The nearest
full-window neighbour of every short-window feature was the same digit at every window.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

SECOND = 100  # mel frames per second (hop 160 at 16 kHz)


def _encoder(model: nn.Module) -> nn.Module:
    if hasattr(model, "conv1") and hasattr(model, "embed_positions"):
        return model  # already a WhisperEncoder
    if hasattr(model, "get_encoder"):
        return model.get_encoder()
    raise TypeError(f"encode_clip needs a Whisper model or encoder, got {type(model).__name__}")


def _lengths(frames, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(frames, device=like.device).reshape(-1).expand(like.shape[0]).long()


def _pool(hidden: torch.Tensor, lengths: torch.Tensor, stride: int) -> torch.Tensor:
    """Mean over the encoder positions that cover each clip's frames (conv2 halves the time axis)."""
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    mask = (positions[None, :] < (lengths[:, None] + stride - 1) // stride).to(hidden.dtype)
    return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def encode_clip(
    model: nn.Module,
    input_features: torch.Tensor,
    frames: int | Sequence[int] | torch.Tensor,
    window: int | None = None,
    silence: int = SECOND,
) -> torch.Tensor:
    """Mean of the Whisper encoder states over each clip's first `frames` mel frames: `[batch, d_model]`.

    `input_features` `[batch, n_mels, T]` come from `WhisperFeatureExtractor` (usually padded to 3000 frames);
    `frames` is the number of real mel frames per clip (`len(audio) // hop_length`, 100 per second). Each clip is
    encoded on its first `window` frames: by default its own length plus `silence` frames of the extractor's
    padding, rounded up to whole seconds (a 1 s clip: 200 frames instead of 3000). Clips are grouped by window,
    so a clip's features do not depend on the rest of the batch. `window=3000` gives the full encoder's states.
    """
    encoder = _encoder(model)
    lengths = _lengths(frames, input_features)
    stride = encoder.conv1.stride[0] * encoder.conv2.stride[0]
    max_frames = encoder.embed_positions.weight.shape[0] * stride
    if window is None:
        windows = (lengths + silence + SECOND - 1) // SECOND * SECOND
    else:
        windows = torch.full_like(lengths, window)
    windows = windows.clamp(stride, max_frames)
    if int(lengths.min()) < 1 or bool((lengths > windows).any()):
        raise ValueError(f"frames must be in 1..window ({windows.tolist()}), got {lengths.tolist()}")

    pooled = torch.empty(len(lengths), encoder.layer_norm.normalized_shape[0], device=input_features.device)
    for size in windows.unique().tolist():
        rows = windows == size
        hidden = _encode_window(encoder, input_features[rows], int(size))
        pooled[rows] = _pool(hidden, lengths[rows], stride).to(pooled.dtype)
    return pooled


def window_sizes(clip_frames: int, silence: int = SECOND) -> list[int]:
    """Every window `encode_clip` can pick for clips of 1..`clip_frames` real frames (whole seconds, ascending)."""
    first = (1 + silence + SECOND - 1) // SECOND * SECOND
    last = (max(1, clip_frames) + silence + SECOND - 1) // SECOND * SECOND
    return list(range(first, last + 1, SECOND))


def encode_clip_static(
    model: nn.Module, input_features: torch.Tensor, frames: torch.Tensor, sizes: Sequence[int], silence: int = SECOND
) -> torch.Tensor:
    """`encode_clip` without data-dependent control flow, for tracing (ONNX export): the whole batch is encoded at
    each window in `sizes` (all the windows the backbone's clips can need, usually one) and each clip keeps the
    states of its own window. `sizes` must cover every clip's window; the result equals `encode_clip`'s."""
    encoder = _encoder(model)
    lengths = _lengths(frames, input_features)
    stride = encoder.conv1.stride[0] * encoder.conv2.stride[0]
    max_frames = encoder.embed_positions.weight.shape[0] * stride
    windows = ((lengths + silence + SECOND - 1) // SECOND * SECOND).clamp(stride, max_frames)
    pooled = None
    for size in sizes:
        current = _pool(_encode_window(encoder, input_features, int(size)), lengths, stride)
        pooled = current if pooled is None else torch.where((windows == size)[:, None], current, pooled)
    return pooled


def _encode_window(encoder: nn.Module, features: torch.Tensor, window: int) -> torch.Tensor:
    """WhisperEncoder.forward on `window` mel frames, with the position table cut to match."""
    features = features[..., :window]
    if features.shape[-1] < window:  # pad as the extractor pads: with the floor (silence) value of each clip
        floor = features.amin(dim=(1, 2), keepdim=True).expand(-1, features.shape[1], window - features.shape[-1])
        features = torch.cat([features, floor], dim=-1)
    features = features.to(encoder.conv1.weight.dtype)

    hidden = nn.functional.gelu(encoder.conv1(features))
    hidden = nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
    for layer in encoder.layers:
        hidden = layer(hidden, None)
    return encoder.layer_norm(hidden)


def pool_full(model: nn.Module, input_features: torch.Tensor, frames: int | Sequence[int] | torch.Tensor):
    """Reference for `encode_clip`: the standard 30 s encoder, states mean-pooled over the clip's frames."""
    encoder = _encoder(model)
    hidden = encoder(input_features).last_hidden_state
    stride = encoder.conv1.stride[0] * encoder.conv2.stride[0]
    return _pool(hidden, _lengths(frames, hidden), stride)
