"""Faults survived: kill -9 at 20 seeded points of real `fit` processes, then --resume; disk full, read-only and
permission denied while saving; two fits on one --out; corrupt feature-cache shards; the write path itself.

The kill test prints its summary line ("20 kills, 20 resumed, 0 corrupt"); see tests/fault_child.py for the
processes it kills and where.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import toy_sentiment
from transferkit.cli import main

HERE = Path(__file__).resolve().parent
SEED = 13
KILLS = 20
KINDS = ("forward", "checkpoint", "cache", "between-phases", "swap-1", "swap-2", "timed")
FRESH = ("cache", "between-phases")  # aimed at a run that starts from nothing (no cached features, no checkpoint)
STAGE = {"cache": 0, "between-phases": 0, "forward": 1, "checkpoint": 1, "timed": 1, "swap-1": 2, "swap-2": 2}


def _csv(path: Path, n: int = 32, seed: int = 0) -> Path:
    import pandas as pd

    texts, labels = toy_sentiment(n, seed)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def _fit_argv(data: Path, out: Path, backbone: Path, *extra: str) -> list[str]:
    """lp-ft (probe on cached features, then full fine-tuning) with dropout in the head and the backbone, a
    validation split, a checkpoint at every optimizer step: every kind of state a resume must restore."""
    return [
        *("fit", "--data", str(data), "--out", str(out), "--backbone", str(backbone), "--strategy", "lp-ft"),
        *("--epochs", "2", "--head-epochs", "3", "--batch-size", "16", "--head-batch-size", "16"),
        *("--lr", "5e-3", "--head-lr", "2e-2", "--head-dropout", "0.2", "--val-fraction", "0.25"),
        *("--checkpoint-steps", "1", "--no-check-data", *extra),
    ]


def _tree_digest(directory: Path) -> dict[str, str]:
    """Every file's SHA-256 (temp files aside: they are checked by _leftovers)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".tmp-" not in p.name
    }


def _leftovers(*directories: Path) -> list[Path]:
    """Temp files/directories, swap leftovers and lock files anywhere under `directories`."""
    found = []
    for directory in directories:
        for path in directory.rglob(".*"):
            if ".tmp-" in path.name or ".old-" in path.name or path.name.endswith(".lock"):
                found.append(path)
    return found


# -- kill -9 -------------------------------------------------------------------------------------------------------


class FaultServer:
    """tests/fault_child.py in server mode: forks one `fit` process per request (imports paid once)."""

    def __init__(self, workdir: Path) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        env["OMP_NUM_THREADS"] = "1"  # tiny model, two cores shared: one thread is faster, and fork-safe
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "fault_child.py"), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=workdir,
        )
        assert json.loads(self.process.stdout.readline()) == {"ready": True}

    def run(self, request: dict, kill_after: float | None = None) -> int:
        """The child's exit status (negative: killed by that signal)."""
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        pid = json.loads(self.process.stdout.readline())["pid"]
        timer = None
        if kill_after is not None:
            timer = threading.Timer(kill_after, _kill_quietly, (pid,))
            timer.start()
        answer = json.loads(self.process.stdout.readline())
        if timer is not None:
            timer.cancel()
        assert answer["pid"] == pid
        return answer["status"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it finished first


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "weights.safetensors"))


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


BAD_SIGNS = ("Traceback", "is corrupt", "cannot be read", "checksum")  # a half-written file read back


class KillCampaign:
    """Chains of runs on one --out: the first run and each --resume are killed at a seeded point until a run
    finishes; the finished run's weights must equal the uninterrupted reference's."""

    def __init__(self, server: FaultServer, root: Path, data: Path, backbone: Path) -> None:
        self.server, self.root, self.data, self.backbone = server, root, data, backbone
        self.rng = random.Random(SEED)
        self.kills = self.resumed = self.corrupt = 0
        self.chains = 0
        self.problems: list[str] = []
        self.records: list[str] = []

    def reference(self) -> None:
        out, cache = self.root / "reference" / "run", self.root / "reference" / "cache"
        started = time.perf_counter()
        counts = self.root / "reference" / "counts.json"
        status = self._run(out, cache, None, 0, counts=counts)
        self.seconds = time.perf_counter() - started
        assert status == 0, (self.root / "reference" / "log.txt").read_text()[-3000:]
        self.counts = json.loads(counts.read_text())
        self.expected = _weights(out)
        assert self.counts["forward"] > 4 and self.counts["checkpoint"] > 4 and self.counts["cache"] >= 2

    def _run(self, out: Path, cache: Path, kill: str | None, n: int, resume: bool = False, counts=None, after=None):
        out.parent.mkdir(parents=True, exist_ok=True)
        request = {
            "argv": _fit_argv(self.data, out, self.backbone, *(["--resume"] if resume else [])),
            "kill": kill,
            "n": n,
            "log": str(out.parent / "log.txt"),
            "env": {"TRANSFERKIT_CACHE": str(cache)},
        }
        if counts:
            request["counts"] = str(counts)
        return self.server.run(request, kill_after=after)

    def _draw(self, kind: str) -> tuple[str | None, int, float | None]:
        if kind == "timed":
            return None, 0, self.rng.uniform(0.15, 0.85) * self.seconds
        if kind in ("swap-1", "swap-2"):
            return kind, 1, None
        if kind == "between-phases":  # the probe's last checkpoint is written, fine-tuning's first is not
            return "checkpoint", self.counts["checkpoint-probe"] + 1, None
        top = self.counts[kind] if kind == "cache" else max(1, self.counts[kind] // 3)  # a resumed run has less left
        return kind, self.rng.randint(1, top), None

    def run_chain(self, kinds: list[str]) -> None:
        """Kill the chain's runs at `kinds` in turn (a kind not reached lets that run finish), then finish it."""
        self.chains += 1
        chain = self.root / f"chain-{self.chains}"
        out, cache, log = chain / "run", chain / "cache", chain / "log.txt"
        killed_here, finished = 0, False
        for kind in kinds:
            kill, n, after = self._draw(kind)
            began = time.perf_counter()
            status = self._run(out, cache, kill, n, resume=self._started(out), after=after)
            self.records.append(
                f"chain {self.chains} {kind} n={n} after={after} -> {status} in {time.perf_counter() - began:.1f} s"
            )
            if status == -signal.SIGKILL:
                killed_here += 1
                self.kills += 1
                if kind == "swap-2" or self.kills == 1:  # the hardest state: no run directory until recovered
                    self._check_suggests_resume(out, cache, log)
                continue
            if status != 0:
                self.problems.append(f"chain {self.chains}: {kind} {n} exited {status}")
            finished = True
            break
        if not finished and self._run(out, cache, None, 0, resume=self._started(out)) != 0:
            self.problems.append(f"chain {self.chains}: the final --resume failed")
        text = log.read_text()
        saved = (out / "weights.safetensors").is_file()
        if any(sign in text for sign in BAD_SIGNS) or not saved or not _same_weights(_weights(out), self.expected):
            self.corrupt += killed_here or 1
            self.problems.append(f"chain {self.chains}: weights differ or a bad file was read\n{text[-3000:]}")
        else:
            self.resumed += killed_here
        if (out / "checkpoints").exists() or _leftovers(chain):
            self.problems.append(f"chain {self.chains}: leftovers {_leftovers(chain)}")

    @staticmethod
    def _started(out: Path) -> bool:
        """Whether a killed run got as far as creating its run directory (else there is nothing to resume: a user
        is told so by --resume, and starts again without it). After a kill inside the directory swap, the run
        directory is only there as .NAME.old-*, which the next fit puts back."""
        return out.exists() or any(out.parent.glob(f".{out.name}.old-*"))

    def _check_suggests_resume(self, out: Path, cache: Path, log: Path) -> None:
        before = len(log.read_text())
        status = self._run(out, cache, None, 0)
        said = log.read_text()[before:]
        if status != 2 or "--resume" not in said:
            self.problems.append(f"fit into an interrupted run: exit {status}, said {said[-500:]!r}")


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory):
    server = FaultServer(tmp_path_factory.mktemp("fault-server"))
    yield server
    server.close()


@pytest.mark.slow  # about a minute: 27 fits in forked processes
def test_kill9_at_20_points_then_resume_equals_an_uninterrupted_run(tmp_path, fault_server, capsys):
    from transferkit.backbones.testing import tiny_bert_dir

    started = time.perf_counter()
    campaign = KillCampaign(fault_server, tmp_path, _csv(tmp_path / "train.csv"), tiny_bert_dir())
    campaign.reference()
    rng = random.Random(SEED)
    targeted = [k for k in KINDS for _ in range(2)]  # every kind twice, then timed kills up to 20
    rng.shuffle(targeted)
    queue = targeted + ["timed"] * KILLS
    try:
        while campaign.kills < KILLS:
            assert queue and campaign.chains < 15, f"only {campaign.kills} kills landed"
            chain = [queue.pop(0)]
            while queue and len(chain) < 4 and not (queue[0] in FRESH and any(k in FRESH for k in chain)):
                chain.append(queue.pop(0))
            chain.sort(key=STAGE.get)  # a fresh run's kill first, the directory swap's last
            campaign.run_chain(chain[: KILLS - campaign.kills])
    finally:
        summary = f"{campaign.kills} kills, {campaign.resumed} resumed, {campaign.corrupt} corrupt"
        with capsys.disabled():
            print(f"\n{summary} ({campaign.chains} chains, {time.perf_counter() - started:.1f} s)")
            if os.environ.get("FAULTS_VERBOSE") or campaign.problems:
                print("\n".join(campaign.records), f"\nreference run {campaign.seconds:.1f} s")
    assert not campaign.problems, "\n".join(campaign.problems)
    assert summary == f"{KILLS} kills, {KILLS} resumed, 0 corrupt"


# -- a finished phase's RNG state ----------------------------------------------------------------------------------


def test_lp_ft_resumed_between_its_phases_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    """Killed after the probe's last checkpoint, before fine-tuning began: the fine-tuning phase must start from the
    RNG state the probe ended with (head dropout draws from it), not from the one after building the model."""
    import transferkit as tk
    from transferkit.training import checkpoint as checkpoint_module

    options = dict(backbone="tiny-bert", strategy="lp-ft", epochs=1, head_epochs=2, head_dropout=0.2, batch_size=16)
    options.update(lr=5e-3, head_lr=2e-2, val_fraction=0.2, check_data=False)
    data = toy_sentiment(24)
    reference = tk.FineTuner(**options).fit(*data, verbose=False, checkpoint_dir=tmp_path / "a")
    original = checkpoint_module.Checkpointer.save

    def killed_after_the_probe(self, phase, state):
        original(self, phase, state)
        if phase == "probe" and state["loop"]["done"]:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", killed_after_the_probe)
    with pytest.raises(KeyboardInterrupt):
        tk.FineTuner(**options).fit(*data, verbose=False, checkpoint_dir=tmp_path / "b")
    monkeypatch.setattr(checkpoint_module.Checkpointer, "save", original)
    resumed = tk.FineTuner(**options).fit(*data, verbose=False, checkpoint_dir=tmp_path / "b", resume=True)
    assert resumed.run_info_["training"]["probe"]["resumed_from_step"] is not None
    assert _same_weights(reference.model_.state_dict(), resumed.model_.state_dict())


# -- disk full, permission denied, read-only -----------------------------------------------------------------------

PROBE_FLAGS = ["--backbone", "tiny-bert", "--strategy", "probe", "--head-epochs", "3", "--head-batch-size", "16"]
PROBE_FLAGS += ["--val-fraction", "0", "--checkpoint-steps", "1", "--no-check-data"]


def _fit(data: Path, out: Path, *extra: str) -> int:
    return main(["fit", "--data", str(data), "--out", str(out), *PROBE_FLAGS, *extra])


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_disk_full_while_checkpointing_names_the_path_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    data, out = _csv(tmp_path / "train.csv"), tmp_path / "run"
    real_save, saves, before = torch.save, [], {}

    def filling_up(obj, handle, *args, **kwargs):
        saves.append(1)
        if len(saves) == 3:
            before.update(_tree_digest(out))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", filling_up)
    assert _fit(data, out) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: No space left on device while writing {out / 'checkpoints' / 'probe.pt'}; free space or choose "
        "another --out, then continue with --resume."
    )
    assert _tree_digest(out) == before and before  # the checkpoint before the failed one, byte for byte
    assert not _leftovers(tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    assert _fit(data, out, "--resume") == 0
    assert "resumed probe" in capsys.readouterr().err


def test_permission_denied_while_saving_the_artifact_keeps_the_checkpoints(tmp_path, monkeypatch, capsys):
    import safetensors.torch

    data, out = _csv(tmp_path / "train.csv"), tmp_path / "run"
    real_save_file, before = safetensors.torch.save_file, {}

    def denied(tensors, path, *args, **kwargs):
        before.update(_tree_digest(out))
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(safetensors.torch, "save_file", denied)
    assert _fit(data, out) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: Permission denied while writing {out}; make it writable or choose another --out."
    assert _tree_digest(out) == before and "checkpoints/probe.pt" in before
    assert not _leftovers(tmp_path)
    monkeypatch.setattr(safetensors.torch, "save_file", real_save_file)
    assert _fit(data, out, "--resume") == 0
    assert (out / "weights.safetensors").is_file() and not (out / "checkpoints").exists()


@pytest.fixture
def mounts():
    """Mount helper for the real-filesystem tests: skips where this process may not mount (not root, no
    CAP_SYS_ADMIN, no mount binary); everything it mounted is unmounted afterwards."""
    done: list[Path] = []

    def mount(*args: str) -> None:
        try:
            result = subprocess.run(["mount", *args], capture_output=True, text=True)
        except FileNotFoundError:
            pytest.skip("no `mount` command here")
        if result.returncode != 0:
            pytest.skip(f"cannot mount here ({result.stderr.strip() or result.returncode})")
        done.append(Path(args[-1]))

    yield mount
    for target in reversed(done):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _fill(directory: Path, leave: int) -> Path:
    """A file that leaves `leave` bytes free on `directory`'s file system."""
    stat = os.statvfs(directory)
    filler = directory / "filler"
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


def test_real_full_tmpfs_keeps_the_previous_run_then_resumes(tmp_path, mounts, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounts("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk))
    data, out = _csv(tmp_path / "train.csv"), disk / "run"
    assert _fit(data, out) == 0
    previous = _tree_digest(out)
    filler = _fill(disk, leave=48 * 1024)  # room for the lock and the head's checkpoints, not for the artifact
    capsys.readouterr()
    assert _fit(data, out, "--overwrite") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: No space left on device while writing {out}; free space or choose another --out."
    after = _tree_digest(out)
    assert {k: v for k, v in after.items() if not k.startswith("checkpoints/")} == previous  # the old run, intact
    assert not _leftovers(disk)
    filler.unlink()
    assert _fit(data, out, "--resume") == 0  # the space is back: continue from the checkpoints
    assert "resumed probe" in capsys.readouterr().err and not _leftovers(disk)


def test_read_only_mount_is_one_clear_error_and_changes_nothing(tmp_path, mounts, capsys):
    writable, readonly = tmp_path / "rw", tmp_path / "ro"
    (writable / "run").mkdir(parents=True)
    (writable / "run" / "transferkit.json").write_text("{}")  # a saved run (its state is all that matters here)
    readonly.mkdir()
    mounts("--bind", str(writable), str(readonly))
    mounts("-o", "remount,bind,ro", str(readonly))
    before = _tree_digest(writable)
    assert _fit(_csv(tmp_path / "train.csv"), readonly / "run", "--overwrite") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: Read-only file system while writing {readonly / '.run.lock'}; make it writable or choose another "
        "--out."
    )
    assert _tree_digest(writable) == before


# -- the run lock and interrupted runs -----------------------------------------------------------------------------


def test_second_fit_on_the_same_out_is_refused_and_a_killed_holder_never_blocks(tmp_path, capsys):
    import socket

    from transferkit.training.run_lock import lock_path, run_lock

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom transferkit.training.run_lock import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert _fit(_csv(tmp_path / "train.csv"), out) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"pid {holder.pid} on {socket.gethostname()}, started 20" in line and "choose another --out" in line
        assert not out.exists()  # refused before anything was written
    finally:
        holder.kill()  # SIGKILL: no cleanup runs, the lock file stays
        holder.wait()
    assert lock_path(out).exists()
    with run_lock(out) as path:  # the kernel dropped the dead holder's flock
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()


def test_fit_that_fails_before_its_first_checkpoint_leaves_nothing_to_resume(tmp_path, capsys):
    data, out = _csv(tmp_path / "train.csv"), tmp_path / "run"
    assert _fit(data, out, "--text-column", "no_such_column") == 2
    assert "no_such_column" in _one_error_line(capsys.readouterr().err)
    assert not out.exists() and not _leftovers(tmp_path)


# -- feature-cache checksums ---------------------------------------------------------------------------------------


def _cache(tmp_path: Path):
    from transferkit.training.feature_cache import FeatureCache

    warnings: list[str] = []
    return FeatureCache(tmp_path, "key", warn=warnings.append), warnings


def _features(cache, n: int = 6):
    computed: list[int] = []

    def compute(indices: list[int]) -> torch.Tensor:
        computed.extend(indices)
        return torch.arange(len(indices) * 4, dtype=torch.float32).reshape(-1, 4) + torch.tensor(indices)[:, None]

    features, _ = cache.features([[i, i + 1] for i in range(n)], compute)
    return features, computed


@pytest.mark.parametrize("damage", ["flip a byte", "truncate"])
def test_corrupt_cache_shard_is_deleted_with_a_warning_and_recomputed(tmp_path, damage):
    cache, warnings = _cache(tmp_path)
    first, computed = _features(cache)
    assert computed == list(range(6)) and _features(cache)[1] == []  # the second read: all from the cache
    (shard,) = cache.directory.glob("shard-*.safetensors")
    raw = bytearray(shard.read_bytes())
    if damage == "flip a byte":
        raw[-1] ^= 0xFF  # inside the tensors, past the header: only the checksum can tell
    else:
        raw = raw[: len(raw) // 2]
    shard.write_bytes(bytes(raw))
    again, computed = _features(cache)
    assert computed == list(range(6)) and torch.equal(first, again)
    assert len(warnings) == 1 and str(shard) in warnings[0] and "corrupt" in warnings[0]
    assert not shard.exists() and len(list(cache.directory.glob("shard-*.safetensors"))) == 1


def test_shards_without_a_checksum_are_dropped_with_one_note_per_directory(tmp_path):
    from safetensors.torch import save_file

    cache, warnings = _cache(tmp_path)
    cache.directory.mkdir(parents=True)
    for name in ("a", "b"):  # what transferkit wrote before shards carried checksums
        tensors = {"features": torch.zeros(2, 4), "digests": torch.zeros(2, 16, dtype=torch.uint8)}
        save_file(tensors, str(cache.directory / f"shard-{name}.safetensors"))
    _, computed = _features(cache)
    assert computed == list(range(6))
    assert len(warnings) == 1 and "dropped 2 shard(s)" in warnings[0] and "no checksum" in warnings[0]
    assert len(list(cache.directory.glob("shard-*.safetensors"))) == 1


def test_cache_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    from transferkit.export import atomic

    cache, warnings = _cache(tmp_path)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic, "commit", read_only)
    features, computed = _features(cache)
    assert computed == list(range(6)) and features.shape == (6, 4)
    assert len(warnings) == 1 and warnings[0].startswith("Read-only file system while writing ")
    assert "TRANSFERKIT_CACHE" in warnings[0] and not _leftovers(tmp_path)


# -- the write path ------------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_write_bytes_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    from transferkit.errors import DiskWriteError, TransferkitError
    from transferkit.export import atomic

    target = tmp_path / "file.json"
    atomic.write_bytes(target, "old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskWriteError) as caught:
        atomic.write_bytes(target, "new")
    assert isinstance(caught.value, (TransferkitError, OSError)) and caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"No space left on device while writing {target}; free space or choose another --out."
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_leftovers_of_dead_writers_are_removed_and_a_half_swap_is_rolled_back(tmp_path):
    from transferkit.export import atomic

    dead, host = _dead_pid(), atomic._HOST
    run = tmp_path / "run"
    old = tmp_path / f".run.old-{host}-{dead}-0123abcd"  # killed between the swap's two renames
    new = tmp_path / f".run.tmp-{host}-{dead}-89abcdef"
    (old / "checkpoints").mkdir(parents=True)
    (old / "checkpoints" / "full.pt").write_bytes(b"state")
    new.mkdir()
    live = tmp_path / f".run.tmp-{host}-{os.getppid()}-00000000"  # a live writer's temp: not ours to remove
    live.mkdir()
    atomic.recover_directory(run)
    assert (run / "checkpoints" / "full.pt").read_bytes() == b"state"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", live.name])

    stale = tmp_path / "run" / f".x.pt.tmp-{host}-{dead}-00000000"
    stale.write_bytes(b"half")
    assert atomic.remove_stale_temps(tmp_path / "run") == 1 and not stale.exists()
