"""Example files carried inside the report: image thumbnails and audio clips as data URIs.

An example's input is the path it was read from. Relative paths are looked up from the working directory,
the run directory and the evaluated data's folder, in that order; a file that is gone, unreadable or too
large is shown by its path only.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

THUMBNAIL_PX = 128  # longest side of an inlined image; keeps a 20-example table small
MAX_AUDIO_BYTES = 2_000_000  # larger clips are listed, not embedded (the report would balloon)
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}


def find_file(text: str, bases: Sequence[Path]) -> Path | None:
    """The file an example path names: as given, else relative to each of `bases`; None if none exists."""
    if not text or len(text) > 4096 or "\n" in text:
        return None
    path = Path(text).expanduser()
    candidates = [path] if path.is_absolute() else [path, *(base / path for base in bases)]
    return next((c for c in candidates if c.is_file()), None)


def thumbnail_uri(path: Path, size: int = THUMBNAIL_PX) -> str | None:
    """A PNG thumbnail (longest side `size`) of an image file, or None when it cannot be decoded."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at reduced scale, cheap for large photos
            picture = ImageOps.exif_transpose(image)
            picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
            picture.thumbnail((size, size))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def audio_uri(path: Path, max_bytes: int = MAX_AUDIO_BYTES) -> str | None:
    """The audio file itself as a data URI for an <audio> player; None for unknown formats or large files."""
    kind = AUDIO_TYPES.get(path.suffix.lower())
    try:
        if kind is None or path.stat().st_size > max_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return f"data:{kind};base64," + base64.b64encode(data).decode("ascii")
