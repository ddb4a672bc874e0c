"""One result format for the side-by-side benchmarks, and its Markdown rendering.

Each comparison script (trainer.py, vision_peers.py, mfu.py, inference.py) puts a `table` in its JSON:
`{"caption": str, "columns": [str], "rows": [[str]], "notes": [str]}`, cells already formatted. The script
prints it with `markdown_table`, and run_all.py renders the same dict into the README, so what a script
prints and what the README shows cannot drift apart. Pure functions only: no model, no file, no clock.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def spread(values: Sequence[float], digits: int = 1) -> str:
    """`median (min-max)` of repeated measurements; a single value alone."""
    if not values:
        return "-"
    middle = f"{statistics.median(values):.{digits}f}"
    if len(values) == 1:
        return middle
    return f"{middle} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def markdown_table(table: dict) -> str:
    """The table as Markdown: caption paragraph, header, rows, then notes as a bullet list."""
    columns, rows = table["columns"], table["rows"]
    lines = [table["caption"], ""] if table.get("caption") else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    notes = table.get("notes") or []
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    """How a target reads in a table or note: never softened."""
    return "met" if met else "NOT met"
