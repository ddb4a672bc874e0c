"""`Case`: one data source of the bad-input corpus and the outcome the CLI must give for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXPECTED = ("works", "warning", "error")  # exit 0; exit 0 with a warning line; exit 2 with one `error:` line
MODALITIES = ("text", "image", "audio", "vector")
Writer = Callable[[Path], Path]  # writes a case's files under a folder, returns the path given to --data


@dataclass(frozen=True)
class Case:
    """One data source and what `transferkit <command> --data <it>` must do with it."""

    name: str  # unique, snake_case: the test id and the README row
    modality: str  # which model family reads it (picks the tiny backbone)
    expect: str  # "works", "warning" or "error" (see EXPECTED)
    summary: str  # one line for the README: what is wrong with the data
    write: Writer  # writes the files under the given folder, returns the --data path
    names: str = ""  # error/warning: text the message must contain that names the file, row or column
    fix: str = ""  # error: text of the message that says how to fix it
    flags: tuple[str, ...] = ()  # extra CLI flags for this case (e.g. --skip-bad-files)
    command: str = "fit"  # "fit" trains for real; "check" only reads and checks the data
    needs_non_root: bool = False  # file permissions mean nothing to root: the case is skipped there

    def __post_init__(self) -> None:
        assert self.expect in EXPECTED, self.expect
        assert self.modality in MODALITIES, self.modality
        assert self.command in ("fit", "check"), self.command
        assert self.expect == "works" or self.names, f"{self.name}: say what the message must name"
        assert self.expect != "error" or self.fix, f"{self.name}: say how the message tells the fix"
