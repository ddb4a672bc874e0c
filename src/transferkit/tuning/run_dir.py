"""Where a tuning study and its best run live: the study database inside the run directory, saved around.

By default the study is SQLite at `<out>/tune.db`. Saving a run replaces its directory as a whole (written
beside it, then renamed into place), so the study files are carried into the new directory by hard link before
the swap; `out` may hold only a study and an earlier tuned run, never someone else's files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from transferkit.errors import ArtifactError
from transferkit.tuning.result import TuneResult

DB_NAME = "tune.db"  # the default study database, inside the run directory


def masked_url(url: str | None) -> str:
    """The storage URL without its password (it goes into transferkit.json and messages)."""
    if url is None:
        return "memory"
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: say so without echoing it
        return "<unparsable storage URL>"


def study_files(url: str | None, out: Path | None) -> list[str]:
    """Files of a SQLite study inside `out` (relative names): they must survive saving the run there."""
    if url is None or out is None or not url.startswith("sqlite:///"):
        return []
    database = Path(url[len("sqlite:///") :]).resolve()
    if not database.is_relative_to(out.resolve()):
        return []
    name = database.relative_to(out.resolve()).as_posix()
    return [name, *(name + suffix for suffix in ("-journal", "-wal", "-shm"))]


def check_out(out: Path, study_files: list[str]) -> None:
    """`out` may be new, empty, or hold this study and an earlier tuned run (replaced at the end); nothing else."""
    from transferkit.export.artifact import MANIFEST, read_manifest

    if out.exists() and not out.is_dir():
        raise ArtifactError(f"--out {str(out)!r} is a file, not a directory. Choose another path.")
    if not out.exists():
        return
    others = {p.relative_to(out).as_posix() for p in out.iterdir()} - {f.split("/")[0] for f in study_files}
    if not others or (MANIFEST in others and "tuning" in read_manifest(out)):
        return
    raise ArtifactError(
        f"--out {str(out)!r} already holds files that are not a tuning study ({', '.join(sorted(others)[:3])}). "
        "tune keeps its study and saves the best run there: choose another --out, or an empty directory."
    )


def saved_run(out: Path, result: TuneResult, trust_remote_code: bool = False):
    """(model, refit score) when `out` already holds the refit of this study's best trial, else None."""
    from transferkit.api import load
    from transferkit.export.artifact import is_run_dir, read_manifest

    if not is_run_dir(out):
        return None
    saved = read_manifest(out).get("tuning") or {}
    if (saved.get("study_name"), saved.get("best_trial")) != (result.study_name, result.best_trial):
        return None
    return load(out, trust_remote_code=trust_remote_code), saved.get("refit_value")


def save_beside_study(model, out: Path, study_files: list[str], tuning: dict[str, Any]) -> Path:
    """Save `model` to `out` as a normal run with a "tuning" block, keeping the study database that lives there.

    The run is written to a temp directory beside `out`, the study files are hard-linked into it (copied where
    links are not possible), and it replaces `out` by rename: at every moment the database is under `out` or
    under the directory renamed into its place, never only in a temp copy.
    """
    from transferkit.export.artifact import update_manifest, write_atomically
    from transferkit.report.html import refresh_report

    def write(tmp: Path) -> None:
        model.save(tmp)
        update_manifest(tmp, {"tuning": tuning})
        for name in study_files:
            if (out / name).is_file():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(out / name, tmp / name)
                except OSError:
                    shutil.copy2(out / name, tmp / name)

    write_atomically(out, True, write)
    refresh_report(out)  # the report was drawn under the temp name
    return out
