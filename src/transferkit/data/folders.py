"""A folder per class (`<root>/<class>/<files>`): the layout image and audio data share."""

from __future__ import annotations

from pathlib import Path

from transferkit.errors import DataError, DataFileError


def class_folder_files(directory: Path, suffixes: tuple[str, ...], kind: str) -> tuple[list[str], list[str]]:
    """(paths, class names) of the files with `suffixes` under each class folder; empty class folders are errors.

    `kind` names the data in messages ("images", "audio clips").
    """
    directory = Path(directory)
    classes = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataFileError(
            f"{str(directory)!r} has no class folders. Put the {kind} in a folder per class: "
            f"{directory}/<class>/*{suffixes[0]} (or {', '.join(suffixes[1:])})."
        )
    paths, labels, empty = [], [], []
    for class_dir in classes:
        files = sorted(
            str(p) for p in class_dir.rglob("*") if p.suffix.lower() in suffixes and not p.name.startswith(".")
        )
        if not files:
            empty.append(class_dir.name)
        paths += files
        labels += [class_dir.name] * len(files)
    if empty:
        raise DataError(
            f"Class folder(s) {', '.join(map(repr, empty))} in {str(directory)!r} hold no {kind} "
            f"({', '.join(suffixes)}). Add some or remove the folder."
        )
    return paths, labels
