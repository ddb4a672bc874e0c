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


def test_render_fewshot_from_its_fits_with_targets_and_autos_picks():
    fit = {"dataset": "sst2", "shots": 8, "predict_s": 1.0}
    fits = [
        {**fit, "method": "setfit", "seed": 0, "accuracy": 0.8, "fit_s": 10.0},
        {**fit, "method": "setfit", "seed": 1, "accuracy": 0.9, "fit_s": 12.0},
        {**fit, "method": "contrastive", "seed": 0, "accuracy": 0.9, "fit_s": 2.0},
        {**fit, "method": "auto", "seed": 0, "accuracy": 0.7, "fit_s": 5.0, "chosen": "contrastive"},
        {**fit, "method": "auto", "seed": 1, "accuracy": 0.8, "fit_s": 7.0, "chosen": "lp-ft"},
    ]
    section = run_all.render({"fewshot": {"settings": {"seeds": 2, "test_rows": 200}, "fits": fits}}, META)
    assert "| dataset | per class | setfit | contrastive | auto |" in section
    row = "| sst2 | 8 | 0.850 ± 0.071 (11.0 s; 12.0 s) | 0.900 ± 0.000 (2.0 s; 3.0 s) | 0.750 ± 0.071 (6.0 s; 7.0 s) |"
    assert row in section
    assert "- sst2 8/class: contrastive - SetFit +5.0 points; time ratio 0.18 (training), 0.25" in section
    assert "target (>= 0 points at <= 0.33 of the time): met" in section
    assert "- auto chose: sst2 8/class: contrastive x1, lp-ft x1" in section
    assert "- sst2 8/class: 1 seed(s) only" in section  # contrastive has 1 fit of the 2 seeds asked for
    complete = run_all.render({"fewshot": {"settings": {"seeds": 1, "test_rows": 200}, "fits": fits}}, META)
    assert "seed(s) only" not in complete


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


def test_run_all_use_takes_saved_results_into_the_readme_without_running(tmp_path, monkeypatch):
    saved = tmp_path / "mfu.json"
    saved.write_text('{"table": {"caption": "MFU here.", "columns": ["x"], "rows": [["56.9%"]], "notes": []}}')
    readme = tmp_path / "README.md"
    readme.write_text(README)
    monkeypatch.setattr(run_all, "run_one", lambda *a: pytest.fail("--use must not run the script"))
    monkeypatch.setattr(run_all, "_peer_versions", lambda: {})
    argv = ["run_all.py", "--use", f"mfu={saved}", "--only", "mfu", "--readme", str(readme)]
    monkeypatch.setattr(sys, "argv", [*argv, "--results-dir", str(tmp_path / "results")])
    run_all.main()
    text = readme.read_text()
    assert "MFU here." in text and "| 56.9% |" in text and text.index(run_all.START) < text.index("## Tests")
    (results,) = (tmp_path / "results").glob("*.json")
    assert "from_file" in results.read_text()


def test_run_all_use_refuses_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--use", f"mfu={tmp_path / 'nope.json'}"])
    with pytest.raises(SystemExit, match="no such file"):
        run_all.main()
