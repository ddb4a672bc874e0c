"""Atomic, resumable checkpoints: model, optimizer, scheduler, RNG and data-order state.

One file per training phase (`<dir>/<phase>.pt`), written through export/atomic.py (temp name, fsync, rename),
so a kill at any moment leaves the previous checkpoint intact, and a full disk raises DiskWriteError with it
intact. A checkpoint carries the fingerprint of the run (config + data); resuming with anything else is refused
rather than silently mixing two runs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferkit.errors import ArtifactError


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].copy()),
            "pos": int(np_state[2]),
            "gauss": [int(np_state[3]), float(np_state[4])],
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy(), numpy["pos"], numpy["gauss"][0], numpy["gauss"][1]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


HINT = " or choose another --out, then continue with --resume"  # after "free space" / "make it writable"


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


class Checkpointer:
    def __init__(self, directory: str | Path | None, fingerprint: str, every_steps: int | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self.fingerprint = fingerprint
        self.every_steps = every_steps
        self._swept = False

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def path(self, phase: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{phase}.pt"

    def save(self, phase: str, state: dict[str, Any]) -> None:
        if self.directory is None:
            return
        from transferkit.export.atomic import make_dirs, remove_stale_temps, writing

        make_dirs(self.directory, HINT)
        if not self._swept:  # temps of a killed earlier run
            remove_stale_temps(self.directory)
            self._swept = True
        with writing(self.path(phase), HINT) as tmp, open(tmp, "wb") as handle:
            torch.save({"fingerprint": self.fingerprint, **state}, handle)  # a handle: a full disk raises OSError

    def load(self, phase: str) -> dict[str, Any] | None:
        if self.directory is None or not self.path(phase).is_file():
            return None
        try:
            state = torch.load(self.path(phase), map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file
            raise ArtifactError(
                f"Checkpoint {str(self.path(phase))!r} cannot be read ({exc}). Delete it or pass --overwrite to start over."
            ) from None
        if state.get("fingerprint") != self.fingerprint:
            raise ArtifactError(
                f"Checkpoint {str(self.path(phase))!r} belongs to a run with a different configuration or data. "
                "Resume with the same options and data, or pass --overwrite to start over."
            )
        state["rng"]["python"] = _as_tuple(state["rng"]["python"])
        return state
