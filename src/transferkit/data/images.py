"""Images: class folders and path columns, decoding to RGB, and clear handling of bad files.

Imports Pillow and NumPy only. Decoding honours EXIF orientation and converts grayscale, palette, RGBA
(composited on white) and 16-bit images to 8-bit RGB. Pillow's decompression-bomb guard stays on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferkit.errors import DataError, DataFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
SPLIT_NAMES = ("train", "val", "valid", "validation", "test")


def is_image_path(value: Any) -> bool:
    return isinstance(value, (str, Path)) and str(value).lower().endswith(IMAGE_SUFFIXES)


def is_image_object(value: Any) -> bool:
    """A PIL image or a 2-D/3-D NumPy array (one image)."""
    import numpy as np
    from PIL import Image

    return isinstance(value, Image.Image) or (isinstance(value, np.ndarray) and value.ndim in (2, 3))


def to_rgb(image) -> Any:
    """Any PIL image -> 8-bit RGB, orientation fixed."""
    import numpy as np
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        image = Image.fromarray((array * (255.0 / peak)).clip(0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def read_image(item: Any):
    """A path, PIL image or array (HxW or HxWxC, uint8) -> RGB PIL image."""
    import numpy as np
    from PIL import Image

    if isinstance(item, (str, Path)):
        if Path(item).exists() and not Path(item).is_file():  # a named pipe would block open() forever
            raise OSError("it is not a regular file (a folder, named pipe, socket or device)")
        try:
            with Image.open(item) as opened:
                opened.load()
                return to_rgb(opened)
        except Image.DecompressionBombError:  # raised from the header, before any pixel is decoded
            raise Image.DecompressionBombError(_bomb_message(Path(item))) from None
    if isinstance(item, Image.Image):
        return to_rgb(item)
    array = np.asarray(item)
    if array.dtype != np.uint8:
        array = (array.astype(np.float64) * (255.0 if array.max() <= 1.0 else 1.0)).clip(0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # CHW -> HWC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return to_rgb(Image.fromarray(array))


def claimed_size(path: Path) -> tuple[int, int] | None:
    """The (width, height) an image file's header claims, read as Image.open would but without its
    decompression-bomb check (which refuses before the size can be asked); None when no format accepts the file."""
    from PIL import Image

    Image.init()
    with open(path, "rb") as handle:
        prefix = handle.read(16)
        for name in Image.ID:
            factory, accept = Image.OPEN[name]
            accepted = accept(prefix) if accept else True
            if not accepted or isinstance(accepted, str):
                continue
            handle.seek(0)
            try:
                return factory(handle, str(path)).size
            except Exception:  # noqa: BLE001 - a plugin that cannot parse the header: try the next
                continue
    return None


def _bomb_message(path: Path) -> str:
    from PIL import Image

    size = claimed_size(path)
    claimed = f"{size[0]}x{size[1]} pixels ({size[0] * size[1]:,})" if size else "more pixels than allowed"
    return (
        f"its header claims {claimed}, over the limit of {Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?), "
        "so it is refused before decoding; downscale it"
    )


def item_digest(item: Any) -> bytes:
    """Content hash of an image input: the file's bytes for a path, the pixels otherwise."""
    import numpy as np

    if isinstance(item, (str, Path)):
        return hashlib.blake2b(Path(item).read_bytes(), digest_size=16).digest()
    array = np.asarray(read_image(item))
    return hashlib.blake2b(array.tobytes() + str(array.shape).encode(), digest_size=16).digest()


def check_images(paths: Sequence[Any], labels: list | None, skip_bad: bool) -> tuple[list[Any], list | None, list[str]]:
    """Decode every image once. Bad ones raise an error naming the file, or are dropped (and listed) with skip_bad."""
    from PIL import Image

    from transferkit.data.file_checks import UnusableFile, keep_usable

    def check(item: Any, i: int) -> None:
        try:
            read_image(item)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            where = str(item) if isinstance(item, (str, Path)) else f"image #{i + 1}"
            if isinstance(exc, PermissionError):
                exc = "permission denied; make the file readable (e.g. chmod a+r)"
            raise UnusableFile(
                f"Cannot read image {where!r}: {exc}. Fix or remove the file, or pass --skip-bad-files to skip "
                "unreadable images (they are counted in the log).",
                f"{where}: {exc}",
            ) from None

    return keep_usable(paths, labels, skip_bad, check, "images")


def folder_examples(directory: Path) -> tuple[list[str], list[str]]:
    """`directory/<class>/*.png|jpg|...` -> (paths, class names). Empty class folders are an error."""
    from transferkit.data.folders import class_folder_files

    return class_folder_files(directory, IMAGE_SUFFIXES, "images")


def resolve_paths(
    values: Sequence[Any], base: Path, allow_outside: bool, source: str, kind: str = "image"
) -> list[str]:
    """Paths from a data file, relative to that file's folder; none may escape it unless allowed (symlinks are
    followed first, so a link inside the folder to a file outside it counts as outside). `kind` names the files."""
    resolved, root = [], base.resolve()
    for row, value in enumerate(values, start=1):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{source}: row {row} has no {kind} path. Fill it in or drop the row.")
        path = (base / value).resolve()
        if not allow_outside and os.path.commonpath([root, path]) != str(root):
            raise DataError(
                f"{source}: row {row} points outside the data folder ({value!r} -> {path}). Move the {kind} file "
                f"under {root}, or pass --allow-outside-paths (allow_outside_paths=True) if that is intended."
            )
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            raise DataFileError(
                f"{source}: row {row}: {kind} file {str(path)!r} {what} (the row says {value!r}, relative to "
                f"{root}). Fix the path or drop the row."
            )
        resolved.append(str(path))
    return resolved
