"""Run the side-by-side benchmarks (issue 12), keep their results, and put them in the README.

Runs, one after another (never in parallel: they time things), each comparison script with `--json`:
  trainer.py (HF Trainer vs `full`), fewshot.py (SetFit vs few-shot strategies; SetFit only when
  .venv-peers exists, `make bench-env`), vision_peers.py (plain timm loop vs `full` / `lp-ft`), mfu.py (MFU),
  inference.py (PyTorch vs ONNX Runtime vs int8).
Collects their JSON with the machine (CPU model, cores) and package versions into
`benchmarks/results/<YYYY-MM-DD>.json` (merged with that day's earlier results, so `--only` adds to them),
renders one Markdown section and replaces the README's block between `<!-- benchmarks:start -->` and
`<!-- benchmarks:end -->` (added at the end of "## Benchmarks" when missing).

`--quick` passes --quick to every script: a smoke test of the harness. Its numbers are not the README's (those
come from the full mode), so it writes `<date>-quick.json` and only prints the section.

    .venv/bin/python benchmarks/run_all.py                       # full mode (hours on 2 cores): README updated
    .venv/bin/python benchmarks/run_all.py --quick               # every script's --quick; prints only
    .venv/bin/python benchmarks/run_all.py --only trainer,mfu    # a subset, merged into today's results
    .venv/bin/python benchmarks/run_all.py --no-readme           # full mode, print the section only
    .venv/bin/python benchmarks/run_all.py --only fewshot --use fewshot=benchmarks/results/fewshot-2026-12-07.json
                                          # a full-mode JSON a script wrote earlier today, instead of running it
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fewshot  # noqa: E402
from bench_report import markdown_table  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
SCRIPTS = {  # name -> (script, section title), in the order they run and render
    "trainer": ("trainer.py", "Hugging Face Trainer vs transferkit `full` (SST-2, all-MiniLM-L6-v2)"),
    "fewshot": ("fewshot.py", "Few-shot: SetFit vs transferkit (same MiniLM)"),
    "vision": ("vision_peers.py", "Vision: plain timm loop vs transferkit (MNIST, EfficientNet-Lite0)"),
    "mfu": ("mfu.py", "Hardware efficiency: MFU of the training loop"),
    "inference": ("inference.py", "Inference: PyTorch eager vs ONNX Runtime vs int8"),
}
PACKAGES = ("torch", "transformers", "timm", "onnxruntime", "accelerate")


# -- running --------------------------------------------------------------------------------------
def command(name: str, quick: bool, out: Path) -> list[str]:
    """The script's command line: --json always, --quick when asked, SetFit's venv for fewshot when present."""
    cmd = [sys.executable, str(HERE / SCRIPTS[name][0]), "--json", str(out)] + (["--quick"] if quick else [])
    if name == "fewshot" and PEERS_PYTHON.exists():
        cmd += ["--setfit-python", str(PEERS_PYTHON)]
    return cmd


def run_one(name: str, quick: bool, scratch: Path) -> dict:
    """One script, its output shown as it runs; its JSON, or what went wrong."""
    out = scratch / f"{name}.json"
    cmd = command(name, quick, out)
    print(f"\n[run_all] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode or not out.exists():
        return {"error": f"`{' '.join(cmd[1:])}` exited with status {done.returncode}", "wall_s": seconds}
    return {**json.loads(out.read_text()), "wall_s": seconds}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def _peer_versions() -> dict[str, str]:
    """Versions inside .venv-peers (SetFit pins its own transformers), or nothing when it is not built."""
    if not PEERS_PYTHON.exists():
        return {}
    code = (
        "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in ('setfit', 'transformers')}))"
    )
    done = subprocess.run([str(PEERS_PYTHON), "-c", code], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def machine(quick: bool) -> dict:
    """Date, CPU, cores and package versions: what the README states next to the numbers."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    peers = _peer_versions()
    if peers:
        versions["setfit"] = peers["setfit"]
        versions["transformers (SetFit venv)"] = peers["transformers"]
    today = datetime.date.today().isoformat()
    return {"date": today, "cpu": _cpu_model(), "cores": os.cpu_count(), "versions": versions, "quick": quick}


# -- rendering (pure) -------------------------------------------------------------------------------
def fewshot_table(result: dict) -> dict:
    """fewshot.py's JSON (one row per fit) as a table: mean +- std accuracy and mean fit time per method, then the
    target per cell and which strategy auto picked."""
    cells: dict[tuple, dict[str, list[dict]]] = {}
    for fit in result.get("fits", []):
        cells.setdefault((fit["dataset"], fit["shots"]), {}).setdefault(fit["method"], []).append(fit)
    methods = list(dict.fromkeys(fit["method"] for fit in result.get("fits", [])))
    rows = [[d, k] + [fewshot.cell(by[m]) if m in by else "-" for m in methods] for (d, k), by in cells.items()]
    picks = [f"{d} {k}/class: {picked(by['auto'])}" for (d, k), by in cells.items() if "auto" in by]
    settings = result.get("settings", {})
    caption = (
        f"Test accuracy, mean ± std over {settings.get('seeds', '?')} seed(s) (mean wall time per fit: training; "
        "training + predicting the test rows), "
        f"<= {settings.get('test_rows', '?')} test rows per dataset"
    )
    seeds = settings.get("seeds")
    short = [(d, k, min(map(len, by.values()))) for (d, k), by in cells.items()]
    notes = [f"{d} {k}/class: {n} seed(s) only" for d, k, n in short if seeds and n < seeds]
    notes += [line.removeprefix("- ") for line in fewshot.target_lines(cells)]
    notes += ["auto chose: " + "; ".join(picks)] if picks else []
    return {"caption": caption, "columns": ["dataset", "per class", *methods], "rows": rows, "notes": notes}


def picked(fits: list[dict]) -> str:
    """How often auto chose each strategy over a cell's seeds, e.g. "contrastive x4, lp-ft x1"."""
    from collections import Counter

    return ", ".join(f"{name} x{count}" for name, count in Counter(f.get("chosen", "?") for f in fits).most_common())


def render(results: dict[str, dict], meta: dict) -> str:
    """The README section: where and with what it was measured, then one table per benchmark."""
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    mode = "`--quick` mode (a smoke test, not for quoting)" if meta.get("quick") else "full mode"
    lines = [
        f"Measured {meta['date']} by `benchmarks/run_all.py` in {mode} on {meta['cpu']}, {meta['cores']} cores; "
        f"{versions}. Each comparison ran in one session on this machine; ratios are within a run.",
    ]
    taken = [name for name, result in results.items() if "from_file" in result]
    if taken:  # --use: the scripts ran on their own (full mode, --json), one at a time, and run_all collected them
        lines[0] += f" Taken from the scripts' own full-mode runs (`--use`): {', '.join(taken)}."
    for name, (_, title) in SCRIPTS.items():
        if name not in results:
            continue
        result = results[name]
        lines += ["", f"#### {title}", ""]
        if "error" in result:
            lines.append(f"Not measured: {result['error']}.")
        elif "table" in result:
            lines.append(markdown_table(result["table"]))
        elif name == "fewshot":
            lines.append(markdown_table(fewshot_table(result)))
        else:
            lines.append("No table in this script's results.")
    return "\n".join(lines) + "\n"


def replace_block(readme: str, section: str) -> str:
    """README text with `section` between the markers; markers added at the end of "## Benchmarks" if absent."""
    block = f"{START}\n{section.strip()}\n{END}"
    lines = readme.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if starts and ends and starts[0] < ends[-1]:
        return "".join(lines[: starts[0]]) + block + "\n" + "".join(lines[ends[-1] + 1 :])
    heading = next((i for i, line in enumerate(lines) if line.rstrip() == "## Benchmarks"), None)
    if heading is None:
        return readme.rstrip("\n") + "\n\n## Benchmarks\n\n" + block + "\n"
    after = next((i for i in range(heading + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    before = "".join(lines[:after]).rstrip("\n") + "\n\n"
    rest = "".join(lines[after:])
    return before + block + "\n" + ("\n" + rest if rest else "")


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every script's --quick; prints, never the README")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(SCRIPTS)}")
    parser.add_argument("--no-readme", action="store_true", help="print the section, leave README.md alone")
    parser.add_argument("--results-dir", default=str(HERE / "results"), help="where <date>.json goes")
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument(
        "--use",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="take NAME's results from PATH (the --json a script wrote in full mode) instead of running it; repeatable",
    )
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SCRIPTS)
    used = dict(item.split("=", 1) for item in args.use if "=" in item)
    if len(used) != len(args.use):
        sys.exit("--use takes NAME=PATH, e.g. --use fewshot=benchmarks/results/fewshot-2026-12-07.json")
    missing = [path for path in used.values() if not Path(path).is_file()]
    if missing:
        sys.exit(f"--use: no such file {missing[0]}")
    names += [name for name in used if name not in names]  # a --use NAME counts as asked for
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")
    meta = machine(args.quick)
    path = Path(args.results_dir) / f"{meta['date']}{'-quick' if args.quick else ''}.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    results = saved.get("results", {})
    with tempfile.TemporaryDirectory(prefix="transferkit-run-all-") as scratch:
        for name in names:
            if name in used:
                results[name] = {**json.loads(Path(used[name]).read_text()), "from_file": used[name]}
            else:
                results[name] = run_one(name, args.quick, Path(scratch))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"machine": meta, "results": results}, indent=2, default=str) + "\n")
    section = render(results, meta)
    print("\n" + section)
    print(f"[run_all] results: {path}", file=sys.stderr)
    if not args.quick and not args.no_readme:
        readme = Path(args.readme)
        readme.write_text(replace_block(readme.read_text(encoding="utf-8"), section), encoding="utf-8")
        print(f"[run_all] {readme} updated between {START} and {END}", file=sys.stderr)


if __name__ == "__main__":
    main()
