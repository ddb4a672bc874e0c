"""Image cases: class folders and path tables with corrupt, truncated, huge, looping or escaping files."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from bad_inputs.case import Case, Writer

CLASSES = ("cat", "dog")
PER_CLASS = 6  # the data checks warn about classes under 5 rows: a "works" case must not


def png_bytes(seed: int, size: int = 16, mode: str = "RGB") -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = np.full((size, size, 3), 40 if seed % 2 else 215, dtype=np.uint8)
    pixels = np.clip(base + rng.integers(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(seed: int, size: int = 32, mode: str = "RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(png_bytes(seed, size))).convert(mode).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def class_folder(folder: Path, extra: dict[str, bytes] | None = None, name: str = "images") -> Path:
    """`folder/images/<cat|dog>/<i>.png`, plus `extra` files ({"cat/x.png": bytes}); returns the root."""
    root = folder / name
    for c, label in enumerate(CLASSES):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(PER_CLASS):
            (root / label / f"{i}.png").write_bytes(png_bytes(2 * i + c))
    for relative, data in (extra or {}).items():
        (root / relative).write_bytes(data)
    return root


def _with(relative: str, data: bytes) -> Writer:
    return lambda folder: class_folder(folder, {relative: data})


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small valid-looking PNG whose header claims width x height pixels (decoding it would need ~30 GB)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def _modes(folder: Path) -> Path:
    from PIL import Image

    extra = {
        "cat/gray.png": png_bytes(10, mode="L"),
        "cat/rgba.png": png_bytes(12, mode="RGBA"),
        "cat/palette.png": png_bytes(14, mode="P"),
        "cat/tiny.PNG": png_bytes(16, size=1),
        "dog/cmyk.jpg": jpeg_bytes(11, mode="CMYK"),
        "dog/gray.jpeg": jpeg_bytes(13, mode="L"),
    }
    root = class_folder(folder, extra)
    import numpy as np

    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(root / "dog" / "deep.png")  # 16-bit
    frames = [Image.new("RGB", (8, 8), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(root / "dog" / "anim.gif", save_all=True, append_images=frames[1:])
    return root


def _symlink_loop(folder: Path) -> Path:
    root = class_folder(folder)
    os.symlink("b.png", root / "cat" / "a.png")
    os.symlink("a.png", root / "cat" / "b.png")
    os.symlink("..", root / "dog" / "up")  # a folder loop: must not be walked forever
    return root


def _unreadable(folder: Path) -> Path:
    root = class_folder(folder)
    (root / "dog" / "0.png").chmod(0)
    return root


def _fifo(folder: Path) -> Path:
    root = class_folder(folder)
    os.mkfifo(root / "dog" / "pipe.png")
    return root


def _empty_class(folder: Path) -> Path:
    root = class_folder(folder)
    (root / "bird").mkdir()
    return root


def _flat(folder: Path) -> Path:
    root = folder / "flat"
    root.mkdir(parents=True)
    for i in range(4):
        (root / f"{i}.png").write_bytes(png_bytes(i))
    return root


def path_table(folder: Path, replace: dict[int, str] | None = None) -> Path:
    """`folder/data/labels.csv` with image,label rows (paths relative to it); `replace` swaps row paths."""
    data = folder / "data"
    (data / "img").mkdir(parents=True)
    lines = ["image,label"]
    for i in range(2 * PER_CLASS):
        (data / "img" / f"{i}.png").write_bytes(png_bytes(i))
        lines.append(f"{(replace or {}).get(i + 1, f'img/{i}.png')},{CLASSES[i % 2]}")
    (data / "labels.csv").write_text("\n".join(lines) + "\n")
    return data / "labels.csv"


def _escaping_symlink(folder: Path) -> Path:
    outside = folder / "elsewhere.png"
    folder.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(png_bytes(99))
    table = path_table(folder, {4: "img/link.png"})
    os.symlink(outside, table.parent / "img" / "link.png")
    return table


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _skip_bad(folder: Path) -> Path:
    return class_folder(folder, {"dog/broken.png": _truncated(png_bytes(5, size=64))})


IMAGE_CASES = [
    Case("image_baseline", "image", "works", "a class folder of small PNGs (the control)", class_folder),
    Case(
        "image_modes",
        "image",
        "works",
        "grayscale, RGBA, palette, 16-bit, 1x1 px, CMYK JPEG, animated GIF, .PNG",
        _modes,
    ),
    Case(
        "image_skip_bad_files",
        "image",
        "warning",
        "a truncated PNG with --skip-bad-files: left out and counted",
        _skip_bad,
        names="broken.png",
        flags=("--skip-bad-files",),
    ),
    Case(
        "png_truncated",
        "image",
        "error",
        "a PNG cut in half",
        _with("dog/cut.png", _truncated(png_bytes(3, 64))),
        names="cut.png",
        fix="--skip-bad-files",
    ),
    Case(
        "png_corrupt",
        "image",
        "error",
        "a PNG signature followed by random bytes",
        _with("cat/noise.png", b"\x89PNG\r\n\x1a\n" + os.urandom(200)),
        names="noise.png",
        fix="--skip-bad-files",
    ),
    Case(
        "jpeg_truncated",
        "image",
        "error",
        "a JPEG cut in half",
        _with("dog/cut.jpg", _truncated(jpeg_bytes(4, 64))),
        names="cut.jpg",
        fix="--skip-bad-files",
    ),
    Case(
        "jpeg_corrupt",
        "image",
        "error",
        "a JPEG start marker followed by zeros",
        _with("cat/zeros.jpg", b"\xff\xd8\xff\xe0" + bytes(300)),
        names="zeros.jpg",
        fix="--skip-bad-files",
    ),
    Case(
        "zero_byte_png",
        "image",
        "error",
        "an empty (0-byte) .png",
        _with("cat/empty.png", b""),
        names="empty.png",
        fix="--skip-bad-files",
    ),
    Case(
        "png_bomb_header",
        "image",
        "error",
        "a 300-byte PNG whose header claims 100000x100000 pixels",
        _with("cat/bomb.png", bomb_png()),
        names="100000x100000",
        fix="downscale",
    ),
    Case(
        "text_as_jpeg",
        "image",
        "error",
        "a text file named .jpg",
        _with("dog/notes.jpg", b"just some words\n"),
        names="notes.jpg",
        fix="--skip-bad-files",
    ),
    Case(
        "symlink_loop",
        "image",
        "error",
        "a.png -> b.png -> a.png, and a folder link back up",
        _symlink_loop,
        names="a.png",
        fix="--skip-bad-files",
    ),
    Case(
        "unreadable_file",
        "image",
        "error",
        "a PNG with permissions 000",
        _unreadable,
        names="0.png",
        fix="make the file readable",
        needs_non_root=True,
    ),
    Case(
        "fifo_as_png",
        "image",
        "error",
        "a named pipe called pipe.png (reading it would hang)",
        _fifo,
        names="pipe.png",
        fix="regular file",
    ),
    Case(
        "empty_class_folder",
        "image",
        "error",
        "a class folder 'bird' with no images",
        _empty_class,
        names="'bird'",
        fix="remove the folder",
    ),
    Case(
        "no_class_folders",
        "image",
        "error",
        "images directly in the folder, no class folders",
        _flat,
        names="flat",
        fix="folder per class",
    ),
    Case(
        "csv_path_escapes",
        "image",
        "error",
        "a path table row '../../etc/passwd'",
        lambda folder: path_table(folder, {3: "../../etc/passwd"}),
        names="row 3",
        fix="--allow-outside-paths",
    ),
    Case(
        "csv_absolute_path",
        "image",
        "error",
        "a path table row '/etc/passwd'",
        lambda folder: path_table(folder, {2: "/etc/passwd"}),
        names="row 2",
        fix="--allow-outside-paths",
    ),
    Case(
        "csv_symlink_escapes",
        "image",
        "error",
        "a path that is a symlink to a file outside the data folder",
        _escaping_symlink,
        names="row 4",
        fix="--allow-outside-paths",
    ),
    Case(
        "csv_missing_file",
        "image",
        "error",
        "a path table row naming a file that does not exist",
        lambda folder: path_table(folder, {5: "img/gone.png"}),
        names="row 5",
        fix="drop the row",
    ),
    Case(
        "csv_empty_path",
        "image",
        "error",
        "a path table row with an empty path",
        lambda folder: path_table(folder, {6: ""}),
        names="row 6",
        fix="drop the row",
    ),
]
