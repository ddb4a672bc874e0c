"""Keep the decodable files of a data set: a bad one stops the run with its name, or is skipped and listed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from transferkit.errors import DataError, DataFileError


class UnusableFile(Exception):
    """Raised by a check: `error` is the message when the run stops, `note` the log line when it is skipped."""

    def __init__(self, error: str, note: str) -> None:
        super().__init__(error)
        self.error, self.note = error, note


def keep_usable(
    items: Sequence[Any], labels: list | None, skip_bad: bool, check: Callable[[Any, int], None], kind: str
) -> tuple[list[Any], list | None, list[str]]:
    """Run `check(item, index)` on every item; (kept inputs, their labels, notes on the skipped ones)."""
    keep_inputs, keep_labels, bad = [], [] if labels is not None else None, []
    for i, item in enumerate(items):
        try:
            check(item, i)
        except UnusableFile as exc:
            if not skip_bad:
                raise DataFileError(exc.error) from None
            bad.append(exc.note)
            continue
        keep_inputs.append(item)
        if keep_labels is not None:
            keep_labels.append(labels[i])
    if not keep_inputs:
        raise DataError(f"None of the {len(items)} {kind} could be used (first problem: {bad[0]}).")
    return keep_inputs, keep_labels, bad
