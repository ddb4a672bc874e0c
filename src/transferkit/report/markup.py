"""Small HTML building blocks for report.html. Every value from a run is escaped on the way out; only `Raw`
strings (markup this package built from escaped parts) pass through unchanged."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any


class Raw(str):
    """Markup built by this package from escaped parts: inserted as is."""


def esc(value: Any) -> str:
    return value if isinstance(value, Raw) else html.escape(str(value), quote=True)


def number(value: Any, decimals: int = 4) -> str:
    """Numbers for people: 0.8125, 22,566,531, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        small = value != 0 and abs(value) < 10 ** -(decimals - 1)  # 5e-05 stays 5e-05, not 0.0001
        return f"{value:.{decimals - 1}g}" if small else f"{value:.{decimals}f}"
    return str(value)


def interval(bounds: Any) -> str:
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds):
        return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]"
    return ""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], css: str = "") -> Raw:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return Raw(f'<table class="{esc(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def pairs(rows: Iterable[tuple[str, Any]]) -> Raw:
    """A two-column name/value table."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return Raw(f'<table class="pairs"><tbody>{body}</tbody></table>')


def image(uri: str | None, alt: str, css: str = "plot") -> Raw:
    return Raw(f'<img class="{esc(css)}" src="{esc(uri)}" alt="{esc(alt)}">') if uri else Raw("")


class Section(Raw):
    """A page section's markup, knowing its anchor and title (for the navigation bar)."""

    anchor: str
    title: str


def section(anchor: str, title: str, *parts: Any) -> Section:
    anchor = re.sub(r"[^A-Za-z0-9_-]+", "-", anchor)  # a valid id and #fragment whatever the eval file's name
    inner = "\n".join(esc(p) for p in parts if p)
    markup = Section(f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{inner}\n</section>')
    markup.anchor, markup.title = anchor, title
    return markup


def tag(name: str, content: Any, css: str = "") -> Raw:
    attribute = f' class="{esc(css)}"' if css else ""
    return Raw(f"<{name}{attribute}>{esc(content)}</{name}>")


def details(summary: str, content: Any) -> Raw:
    return Raw(f"<details><summary>{esc(summary)}</summary>{esc(content)}</details>")


def note(text: str) -> Raw:
    return tag("p", text, "note")
