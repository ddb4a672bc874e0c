"""benchmarks/run_all.py's pure parts: the Markdown section and the README block replacement (no model runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import run_all  # noqa: E402
from bench_report import markdown_table, spread  # noqa: E402

META = {
    "date": "2026-12-08",
    "cpu": "AMD EPYC",
    "cores": 2,
    "versions": {"python": "3.11.7", "torch": "2.14.1", "setfit": "1.2.0"},
    "quick": False,
}
TABLE = {
    "caption": "Two tools.",
    "columns": ["tool", "examples/s"],
    "rows": [["a", "1.0"], ["b", "2.0"]],
    "notes": ["n1"],
}


def test_spread_and_table():
    assert spread([3.0, 1.0, 2.0]) == "2.0 (1.0-3.0)"
    assert spread([1.25], digits=2) == "1.25"
    assert spread([]) == "-"
    assert markdown_table(TABLE).splitlines() == [
        "Two tools.",
        "",
        "| tool | examples/s |",
        "|---|---|",
        "| a | 1.0 |",
        "| b | 2.0 |",
        "",
        "- n1",
    ]


def test_render_states_machine_and_versions_and_keeps_script_order():
    results = {"mfu": {"table": TABLE}, "trainer": {"table": TABLE}, "vision": {"error": "`vision_peers.py` exited 1"}}
    section = run_all.render(results, META)
    assert "2026-12-08" in section and "AMD EPYC, 2 cores" in section and "setfit 1.2.0" in section
    assert "full mode" in section and "--quick" not in section
    titles = [line for line in section.splitlines() if line.startswith("#### ")]
    assert titles == [f"#### {run_all.SCRIPTS[n][1]}" for n in ("trainer", "vision", "mfu")]
    assert "Not measured: `vision_peers.py` exited 1." in section
    assert section.count("| a | 1.0 |") == 2


def test_render_fewshot_from_its_fits():
    fits = [
        {"dataset": "sst2", "shots": 8, "method": "setfit", "seed": 0, "accuracy": 0.8, "fit_s": 10.0},
        {"dataset": "sst2", "shots": 8, "method": "setfit", "seed": 1, "accuracy": 0.9, "fit_s": 12.0},
        {"dataset": "sst2", "shots": 8, "method": "probe", "seed": 0, "accuracy": 0.7, "fit_s": 2.0},
    ]
    section = run_all.render({"fewshot": {"settings": {"seeds": 2, "test_rows": 200}, "fits": fits}}, META)
    assert "| dataset | per class | setfit | probe |" in section
    assert "| sst2 | 8 | 0.850 ± 0.071 (11.0 s) | 0.700 ± 0.000 (2.0 s) |" in section


README = """# transferkit

## Benchmarks

Some text.

### Images

Old table.

## Tests

make test
"""


def test_replace_block_adds_markers_at_the_end_of_the_benchmarks_section():
    updated = run_all.replace_block(README, "NEW\n")
    assert updated.index("Old table.") < updated.index(run_all.START) < updated.index("NEW")
    assert updated.index("NEW") < updated.index(run_all.END) < updated.index("## Tests")
    assert updated.replace(f"{run_all.START}\nNEW\n{run_all.END}\n\n", "") == README


@pytest.mark.parametrize("readme", [README, "# no benchmarks heading\n"])
def test_replace_block_replaces_only_the_block_and_is_idempotent(readme):
    once = run_all.replace_block(readme, "first")
    twice = run_all.replace_block(once, "second")
    assert "first" not in twice and twice.count("second") == 1
    assert twice == once.replace("first", "second")
    assert run_all.replace_block(twice, "second") == twice
