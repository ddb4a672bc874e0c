"""The bad-input corpus (tests/bad_inputs/) through the CLI: every case ends as promised, in one clean line.

A case that must work trains for real (a tiny backbone, a few head epochs) and saves a run; a case that must warn
does too and names the problem on stderr; a case that must fail exits 2 with exactly one `error:` line that
names the offending file, row or column and says how to fix it. No case prints a traceback, and a failed
`fit` leaves nothing behind: no run directory, no temporary files. Cases run in-process for speed; a few run
again as real `python -m transferkit` processes to prove the exit status and the clean output end to end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bad_inputs.case import Case
from bad_inputs.cases import BY_NAME, CASES
from bad_inputs.vector_cases import MARKER
from transferkit.cli import main

FAST = ["--val-fraction", "0", "--batch-size", "8", "--seed", "0"]
BACKBONE_FLAGS = {  # tiny random models; probe trains the head on cached features: seconds per run
    "text": ["--backbone", "tiny-bert", "--strategy", "probe", "--head-epochs", "3"],
    "image": ["--backbone", "tiny-efficientnet", "--strategy", "probe", "--head-epochs", "3"],
    "audio": ["--backbone", "tiny-whisper", "--strategy", "probe", "--head-epochs", "3"],
    "vector": ["--backbone", "mlp:4-8", "--strategy", "full", "--epochs", "1"],
}
HANG_S = 90  # far above any case (imports included): only a loader that hangs or crawls gets near it
README = Path(__file__).parent / "bad_inputs" / "README.md"


def argv(case: Case, data: Path, out: Path) -> list[str]:
    if case.command == "check":
        return ["check", "--data", str(data), *case.flags]
    return ["fit", "--data", str(data), "--out", str(out), *BACKBONE_FLAGS[case.modality], *FAST, *case.flags]


def skip_if_root(case: Case) -> None:
    if case.needs_non_root and hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip(f"{case.name}: file permissions do not apply to root")


def check_outcome(case: Case, code: int, out: str, err: str, runs: Path, data: Path) -> None:
    """The promises of the README: exit status, one error line naming the problem and the fix, no traceback,
    nothing half-written."""
    shown = f"\n--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}"
    assert "Traceback" not in out + err, shown
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if case.expect == "error":
        assert code == 2, f"{case.name}: exit {code}, expected 2{shown}"
        assert len(errors) == 1, f"{case.name}: expected one error line{shown}"
        line = errors[0]
        assert case.names in line, f"{case.name}: the error does not name {case.names!r}: {line}"
        assert case.fix in line, f"{case.name}: the error does not say how to fix it ({case.fix!r}): {line}"
        assert err.rstrip().splitlines()[-1] == line, f"{case.name}: the message goes on after its line{shown}"
        assert len(line) < 1200, f"{case.name}: a {len(line)}-character message: {line[:300]}..."
        leftovers = list(runs.iterdir()) if runs.exists() else []
        assert not leftovers, f"{case.name}: a failed run left {leftovers}"
    else:
        assert code == 0, f"{case.name}: exit {code}, expected 0{shown}"
        assert not errors, f"{case.name}: {errors}"
        warned = "(warning)" in err or "WARNING" in out or "skipped" in err
        assert warned == (case.expect == "warning"), f"{case.name}: expected {case.expect!r}{shown}"
        if case.command == "fit":
            assert (runs / "out" / "transferkit.json").is_file(), f"{case.name}: no saved run{shown}"
            assert not [p for p in runs.iterdir() if ".tmp-" in p.name], "temporary files left next to the run"
    if case.expect == "warning":  # fit logs to stderr; check prints its report on stdout
        said = err if case.command == "fit" else out
        assert "warning" in said.lower(), f"{case.name}: no warning{shown}"
        assert case.names in said, f"{case.name}: the warning does not name {case.names!r}{shown}"
    assert not (data.parent / MARKER).exists() and not (data / MARKER).exists(), "a pickle was loaded"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_through_cli(case: Case, tmp_path, capsys):
    skip_if_root(case)
    data = case.write(tmp_path / "input")
    runs = tmp_path / "runs"
    capsys.readouterr()
    started = time.perf_counter()
    try:
        code = main(argv(case, data, runs / "out"))
    except SystemExit as exc:  # argparse
        code = exc.code
    elapsed = time.perf_counter() - started
    out, err = capsys.readouterr()
    check_outcome(case, code, out, err, runs, data)
    assert elapsed < HANG_S, f"{case.name} took {elapsed:.1f} s"


SUBPROCESS_CASES = [
    "csv_unclosed_quote",
    "png_bomb_header",
    "npz_pickled_objects",
    "wav_truncated",
    "vector_npz_baseline",
]


def test_cases_as_processes(tmp_path):
    """The real command, a few cases at once: exit status and output as a user's shell sees them."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    running = []
    for name in SUBPROCESS_CASES:
        case, folder = BY_NAME[name], tmp_path / name
        data = case.write(folder / "input")
        command = [sys.executable, "-m", "transferkit", *argv(case, data, folder / "runs" / "out")]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        running.append((case, folder, data, process))
    try:
        for case, folder, data, process in running:
            out, err = process.communicate(timeout=180)
            check_outcome(case, process.returncode, out, err, folder / "runs", data)
    finally:
        for *_, process in running:
            if process.poll() is None:
                process.kill()
                process.communicate()


NOBODY = 65534  # the unprivileged user the permission case runs as when the tests run as root


def _as_nobody(command: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")  # util-linux; without it there is no portable way to drop root here
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot run a command as an unprivileged user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="runs in the case table when not root")
def test_unreadable_file_as_an_unprivileged_user():
    """Root reads any file, so `unreadable_file` runs here as user `nobody`, in a folder that user can reach."""
    case = BY_NAME["unreadable_file"]
    root = Path(tempfile.mkdtemp(prefix="transferkit-unreadable-"))
    try:
        data = case.write(root / "input")
        for path in [root, *root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o777)
        env = {**os.environ, "HOME": str(root), "TRANSFERKIT_CACHE": str(root / "cache"), "PYTHONWARNINGS": "ignore"}
        command = [sys.executable, "-m", "transferkit", *argv(case, data, root / "runs" / "out")]
        done = subprocess.run(_as_nobody(command), capture_output=True, text=True, env=env, timeout=120, cwd=root)
        if done.returncode != 2 and "error:" not in done.stderr:  # nobody cannot run this Python install at all
            pytest.skip(f"cannot run transferkit as an unprivileged user here: {done.stderr[-300:]}")
        check_outcome(case, done.returncode, done.stdout, done.stderr, root / "runs", data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_pickle_trap_would_fire(tmp_path):
    """npz_pickled_objects proves nothing unless loading its pickle really creates the marker."""
    import numpy as np

    data = BY_NAME["npz_pickled_objects"].write(tmp_path)
    with np.load(data, allow_pickle=True) as loaded:
        loaded["y"]
    assert (tmp_path / MARKER).exists()


def test_a_10mb_text_is_cut_before_tokenising():
    """Tokenising 10 MB takes ~10 s; only max_length tokens are kept, so the text is cut first (and counted cut)."""
    from transferkit.backbones import build_backbone
    from transferkit.backbones.text_tokenizer import token_counter

    text = "good " * 2_000_000
    backbone = build_backbone("tiny-bert")
    started = time.perf_counter()
    assert len(backbone.encode([text])[0]) == backbone.max_length
    count_tokens, max_length = token_counter("tiny-bert")
    assert count_tokens([text])[0] > max_length
    assert time.perf_counter() - started < 5


def _readme_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*(\w+)\s*\|\s*([\w ]+?)\s*\|", line)
        if match:
            rows.append(match.groups())
    return rows


def test_readme_lists_every_case_with_its_outcome():
    expected = {"works": "works", "warning": "works with warning", "error": "error"}
    listed = _readme_rows()
    wanted = [(c.name, c.modality, expected[c.expect]) for c in CASES]
    assert listed == wanted, "tests/bad_inputs/README.md is out of date: regenerate its table from CASES"


def test_corpus_covers_every_modality_and_outcome():
    by_modality = {m: [c for c in CASES if c.modality == m] for m in ("text", "image", "audio", "vector")}
    assert len(CASES) >= 40
    assert all(len(cases) >= 10 for cases in by_modality.values()), {m: len(c) for m, c in by_modality.items()}
    assert {c.expect for c in CASES} == {"works", "warning", "error"}
