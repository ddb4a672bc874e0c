"""Reading /predict requests: JSON inputs (texts, feature rows) and multipart uploads (images, audio), with limits.

Every refusal is a RequestError with the HTTP status, a short code and a message that says what was wrong and
how to fix it. Uploads are decoded from memory, never written anywhere: an image's pixel count is checked from its
header before any pixel is decoded, an audio clip's duration from its header before any sample is decoded.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from transferkit.data.examples import is_unicode
from transferkit.errors import RequestError
from transferkit.serving.config import ServeConfig

JSON_KEYS = ("inputs", "top_k")
IMAGE_FORMATS = ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"]  # no EPS/PSD/...: fewer decoders facing the network
MAX_AUDIO_CHANNELS = 16
MAX_AUDIO_RATE = 384_000
FLOAT32_MAX = 3.4028234663852886e38  # feature rows are float32: larger magnitudes would become infinity


def unprocessable(code: str, detail: str) -> RequestError:
    return RequestError(422, code, detail)


def too_large(code: str, detail: str) -> RequestError:
    return RequestError(413, code, detail)


def parse_top_k(value: Any, default: int) -> int:
    """A request's top_k (JSON field or query parameter), or the server default."""
    if value is None:
        return default
    try:
        if isinstance(value, (bool, float)):  # 2.0, Infinity (int() would overflow), NaN: not whole numbers
            raise ValueError
        k = int(value)
        if k < 1:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise unprocessable("invalid_top_k", f"top_k must be a whole number >= 1, got {value!r}.") from None
    return k


def parse_json(body: bytes, modality: str, features: int | None, config: ServeConfig) -> tuple[list[Any], Any]:
    """(inputs, top_k) from `{"inputs": [...], "top_k": 3}`: texts for a text model, number rows for vectors."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise unprocessable(
            "malformed_json", f'The body is not valid JSON ({exc}). Send {{"inputs": [...]}}.'
        ) from None
    except RecursionError:
        raise unprocessable(
            "malformed_json", 'The body nests JSON arrays or objects too deeply. Send {"inputs": [...]}.'
        ) from None
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise unprocessable(
            "missing_inputs", 'Expected a JSON object with an "inputs" list, e.g. {"inputs": ["text"]}.'
        )
    unknown = [k for k in payload if k not in JSON_KEYS]
    if unknown:
        raise unprocessable("unknown_field", f"Unknown field(s) {unknown}; valid fields: {list(JSON_KEYS)}.")
    inputs = payload["inputs"]
    if isinstance(inputs, str) or (modality == "vector" and _is_row(inputs)):
        inputs = [inputs]  # one input given bare
    if not isinstance(inputs, list) or not inputs:
        raise unprocessable("invalid_inputs", f'"inputs" must be a non-empty list, got {_shown(inputs)}.')
    check_count(len(inputs), config)
    if modality == "text":
        _check_texts(inputs, config)
    else:
        _check_rows(inputs, features)
    return inputs, payload.get("top_k")


def check_count(n: int, config: ServeConfig) -> None:
    if n > config.max_items:
        raise too_large(
            "too_many_items",
            f"{n} inputs in one request; the limit is {config.max_items}. Split them over several requests.",
        )


def _check_texts(texts: list[Any], config: ServeConfig) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise unprocessable(
                "invalid_inputs", f"This is a text model: input {i + 1} is {_shown(text)}, not a string."
            )
        if not is_unicode(text):
            raise unprocessable(
                "invalid_inputs",
                f"Input {i + 1} holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is not "
                "text; send valid Unicode.",
            )
        if len(text) > config.max_text_chars:
            raise too_large(
                "text_too_long",
                f"Input {i + 1} has {len(text):,} characters; the limit is {config.max_text_chars:,}. Shorten it "
                "(the model reads only the first few hundred tokens anyway).",
            )


def _check_rows(rows: list[Any], features: int | None) -> None:
    for i, row in enumerate(rows):
        if not _is_row(row):
            raise unprocessable("invalid_inputs", f"This model takes rows of numbers: input {i + 1} is {_shown(row)}.")
        if not all(isinstance(v, int) or math.isfinite(v) for v in row):
            raise unprocessable("invalid_inputs", f"Input {i + 1} holds NaN or infinite numbers; send finite values.")
        big = next((v for v in row if abs(v) > FLOAT32_MAX), None)
        if big is not None:
            raise unprocessable(
                "invalid_inputs",
                f"Input {i + 1} holds {_shown(big)}, beyond the float32 range the model computes in (+-3.4e38); "
                "rescale the features as they were in training.",
            )
        if features is not None and len(row) != features:
            raise unprocessable(
                "wrong_width", f"Input {i + 1} has {len(row)} numbers; this model takes {features} per row."
            )


def _is_row(value: Any) -> bool:
    numbers = (int, float)
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, numbers) and not isinstance(v, bool) for v in value)
    )


def _shown(value: Any) -> str:
    text = json.dumps(value)[:60] if not isinstance(value, bytes) else repr(value[:60])
    return f"{type(value).__name__} {text}"


def read_image(data: bytes, name: str, config: ServeConfig):
    """An uploaded image as an RGB PIL image; its header's pixel count is checked before decoding."""
    from PIL import Image, UnidentifiedImageError

    from transferkit.data.images import to_rgb

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:  # reads the header only
            width, height = image.size
            _check_pixels(width * height, f"{width}x{height}", name, config)
            image.load()
            return to_rgb(image)  # EXIF orientation, transparency on white: as in training
    except RequestError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard (twice Image.MAX_IMAGE_PIXELS) fires at open
        raise too_large(
            "image_too_large",
            f"{name!r} is refused from its header: {exc} The limit here is {config.max_image_pixels:,} pixels; "
            "downscale it first.",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise unprocessable(
            "unreadable_image",
            f"Cannot read {name!r} as an image ({exc}). Send PNG, JPEG, WebP, BMP, GIF or TIFF files.",
        ) from None


def _check_pixels(pixels: int, size: str, name: str, config: ServeConfig) -> None:
    if pixels > config.max_image_pixels:
        raise too_large(
            "image_too_large",
            f"{name!r} is {size} pixels; the limit is {config.max_image_pixels:,} pixels. Downscale it first "
            "(the model sees a few hundred pixels a side).",
        )


def read_audio(data: bytes, name: str, config: ServeConfig) -> tuple[Any, int]:
    """An uploaded clip as (float32 samples, sampling rate); its duration is checked from the header first."""
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        if not (0 < info.channels <= MAX_AUDIO_CHANNELS and 0 < info.samplerate <= MAX_AUDIO_RATE):
            raise ValueError(f"{info.channels} channels at {info.samplerate} Hz is not a plausible recording")
        seconds = info.frames / info.samplerate
        if seconds > config.max_audio_seconds:
            raise too_large(
                "audio_too_long",
                f"{name!r} lasts {seconds:.1f} s; the limit is {config.max_audio_seconds:g} s. Cut it into shorter clips.",
            )
        limit = int(config.max_audio_seconds * info.samplerate) + 1  # a header that under-states cannot overrun
        samples, rate = sf.read(io.BytesIO(data), frames=limit, dtype="float32", always_2d=False)
    except RequestError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise unprocessable(
            "unreadable_audio", f"Cannot read {name!r} as audio ({exc}). Send WAV, FLAC, OGG or MP3 files."
        ) from None
    if len(samples) == 0:
        raise unprocessable("unreadable_audio", f"{name!r} holds no audio samples.")
    return samples, int(rate)


def read_upload(data: bytes, name: str, modality: str, config: ServeConfig) -> Any:
    """One uploaded file as the model's input (an image or an (samples, rate) pair)."""
    if modality == "image":
        return read_image(data, name, config)
    return read_audio(data, name, config)
