"""report.html: one self-contained page per run (figures and example media inlined as data URIs, no network,
no JavaScript needed), built from transferkit.json and the run's eval_*.json files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transferkit.report import evaluations, sections
from transferkit.report.markup import esc, note, section

REPORT = "report.html"

# Only inline data may load: a report opened offline looks the same as online, and never calls out.
CSP = "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

# Optional, for automated checks: marks <body data-images-ok="true"> once every image decoded.
IMAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var ok = Array.prototype.every.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images-ok", ok ? "true" : "false");
});
</script>"""

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
       max-width: 1200px; padding: 0 24px 48px; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 36px; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f3f3; } table.pairs th { background: #fafafa; font-weight: 600; }
td .text { white-space: pre-wrap; word-break: break-word; max-width: 640px; display: inline-block; }
img.plot { max-width: 100%; height: auto; display: block; margin: 8px 0; }
img.thumb { max-width: 128px; max-height: 128px; display: block; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.note { color: #666; font-style: italic; } .path { color: #555; font-size: 12px; word-break: break-all; }
.severity.error { color: #b00020; font-weight: 600; } .severity.warning { color: #a15c00; font-weight: 600; }
.severity.info { color: #2a5d9f; }
pre { background: #f7f7f7; padding: 12px; overflow-x: auto; font-size: 12px; }
"""


def read_evaluations(run_dir: Path) -> dict[str, dict[str, Any]]:
    """{name: metrics} of every eval_<name>.json in the run directory; unreadable files are reported as such."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(run_dir.glob("eval_*.json")):
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            metrics = {"error": f"could not read {path.name}: {exc}"}
        found[path.stem[len("eval_") :]] = (
            metrics if isinstance(metrics, dict) else {"error": f"{path.name}: not an object"}
        )
    return found


def _example_bases(run_dir: Path, metrics: dict[str, Any]) -> list[Path]:
    """Folders a relative example path may be relative to: the run's, and the evaluated data's."""
    bases = [run_dir]
    data = metrics.get("data")
    if isinstance(data, str) and data:
        source = Path(data).expanduser()
        bases += [source if source.is_dir() else source.parent]
    return bases


def render_report(manifest: dict[str, Any], evaluations_by_name: dict[str, dict[str, Any]], run_dir: Path) -> str:
    """The whole page as a string."""
    name = run_dir.resolve().name
    eval_sections = []
    for stem, metrics in evaluations_by_name.items():
        if "error" in metrics:
            eval_sections.append(section(f"eval-{stem}", f"Evaluation: {stem}", note(metrics["error"])))
        else:
            eval_sections.append(evaluations.evaluation(stem, metrics, _example_bases(run_dir, metrics)))
    if not eval_sections:
        hint = f"No evaluation yet: run `transferkit evaluate {run_dir} --data test.csv`, then `transferkit report {run_dir}`."
        eval_sections.append(section("evaluation", "Evaluation", note(hint)))
    body = [
        sections.summary(manifest),
        sections.learning_curves(manifest),
        *eval_sections,
        sections.data_checks(manifest),
        sections.configuration(manifest),
        sections.manifest_dump(manifest),
    ]
    links = "".join(f'<a href="#{esc(part.anchor)}">{esc(part.title)}</a>' for part in body)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>transferkit report: {esc(name)}</title>\n<style>{STYLE}</style></head>\n<body>\n"
        f"<h1>transferkit report: {esc(name)}</h1>\n<nav>{links}</nav>\n"
        + "\n".join(body)
        + f"\n{IMAGE_CHECK}\n</body></html>\n"
    )


def build_report(run_dir: str | Path) -> Path:
    """Write run_dir/report.html from transferkit.json and the eval_*.json files; returns its path."""
    from transferkit.export.artifact import read_manifest
    from transferkit.export.atomic import write_bytes

    run_dir = Path(run_dir)
    page = render_report(read_manifest(run_dir), read_evaluations(run_dir), run_dir)
    target = run_dir / REPORT
    write_bytes(target, page, f", then run `transferkit report {run_dir}`")  # never a half-written report
    return target


def refresh_report(run_dir: str | Path) -> Path | None:
    """build_report after a save: a report that cannot be drawn is a warning, never a lost run."""
    import sys

    try:
        return build_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - the weights are saved; the page is a convenience
        print(
            f"warning: could not write report.html ({type(exc).__name__}: {exc}); try `transferkit report {run_dir}`",
            file=sys.stderr,
        )
        return None
