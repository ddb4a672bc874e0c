"""The bad-input corpus: one `Case` per malformed, hostile or merely unusual data source, written at test time.

Nothing here is checked in as data: each case's `write(folder)` creates its files under a temporary folder
and returns the path given to `--data`. `tests/test_bad_inputs.py` runs every case through the CLI and checks
the promised outcome; `README.md` next to this file lists them (a test keeps that list in sync with CASES).
"""

from __future__ import annotations

from bad_inputs.audio_cases import AUDIO_CASES
from bad_inputs.case import EXPECTED, MODALITIES, Case
from bad_inputs.image_cases import IMAGE_CASES
from bad_inputs.text_cases import TEXT_CASES
from bad_inputs.vector_cases import VECTOR_CASES

CASES: list[Case] = [*TEXT_CASES, *IMAGE_CASES, *AUDIO_CASES, *VECTOR_CASES]
BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"

OUTCOME = {"works": "works", "warning": "works with warning", "error": "error"}  # the README's words


def readme_table() -> str:
    """The README's case table, one row per case in CASES order (`python -m bad_inputs.cases` prints it)."""
    lines = ["| case | modality | expected | the message names / says | the data |", "|---|---|---|---|---|"]
    for case in CASES:
        said = " / ".join(f"`{part}`" for part in (case.names, case.fix) if part) or "(trains and saves a run)"
        flags = f" (`{' '.join(case.flags)}`)" if case.flags else ""
        lines.append(f"| `{case.name}` | {case.modality} | {OUTCOME[case.expect]} | {said} | {case.summary}{flags} |")
    return "\n".join(lines) + "\n"


__all__ = ["CASES", "BY_NAME", "EXPECTED", "MODALITIES", "OUTCOME", "Case", "readme_table"]

if __name__ == "__main__":
    print(readme_table(), end="")
