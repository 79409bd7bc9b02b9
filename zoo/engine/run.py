"""The run folder: ``run.json``, per-epoch metrics, ``curves.png``, weights and the checkpoint, and who trained it.

A folder holds one run: a new run never reuses an existing folder (unless asked to overwrite it), a resume
reopens it, and a process holds an exclusive lock on it while it trains, so two processes never mix their files.
``run.json`` records the resolved config, the result, and one ``sessions`` entry per process that trained it
(argv, commit, machine, from/to position), so a run resumed on another machine says so.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import torch

from .._atomic import atomic_path
from .._version import __version__
from ..errors import CheckpointError, RunDirError, StorageError
from ..weights import save_weights
from .device import cpu_identity

__all__ = ["MACHINE_KEYS", "RunDir", "describe_cpu", "git_commit", "machine_changes", "machine_info", "plot_curves"]

RUN_FILES = (
    "run.json",
    "metrics.jsonl",
    "metrics.csv",
    "curves.png",
    "best.safetensors",
    "last.safetensors",
    "checkpoint.safetensors",
)


def git_commit() -> str | None:
    """``$ZOO_GIT_COMMIT`` when set (a copy of the tree whose git metadata may be missing or stale), else HEAD."""
    if os.environ.get("ZOO_GIT_COMMIT"):
        return os.environ["ZOO_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() if out.returncode == 0 else "") or None


MACHINE_KEYS = ("cpu", "cpu_id", "threads", "device", "gpu", "torch")  # what decides a run's speed and its floats


def machine_info(device: torch.device) -> dict[str, Any]:
    """What trained it: CPU (model name, x86 family/model/stepping, its bf16/int8/vector flags), threads, GPU,
    versions."""
    cpu = cpu_identity()
    info = {
        "cpu": cpu.get("model") or platform.processor() or platform.machine(),
        **{f"cpu_{key}": cpu[key] for key in ("id", "flags") if key in cpu},
        "threads": torch.get_num_threads(),
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "zoo": __version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Where two ``machine_info`` records differ in what decides a run's speed and floats, as "key (old -> new)";
    a key only one of them holds (a record written before the key existed) is no difference."""
    pairs = [(k, old.get(k), new.get(k)) for k in MACHINE_KEYS]
    return [f"{k} ({a} -> {b})" for k, a, b in pairs if a is not None and b is not None and a != b]


def describe_cpu(machine: dict[str, Any]) -> str:
    """``machine_info``'s CPU in one phrase: "AMD EPYC (family 23 model 1 stepping 2; avx2)"; records written
    before the id and flags were kept show the model name alone."""
    details = "; ".join(machine[k] for k in ("cpu_id", "cpu_flags") if machine.get(k))
    return f"{machine.get('cpu')} ({details})" if details else str(machine.get("cpu"))


def plot_curves(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> bool:
    """Draw train/eval loss and eval accuracy against epoch into ``path`` (replaced atomically); return False when
    matplotlib is missing.

    Uses a bare ``Figure`` (no pyplot), so training inside a notebook leaves its matplotlib backend alone.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    epochs = [r["epoch"] for r in rows]
    eval_name = rows[0].get("eval_split", "eval") if rows else "eval"
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, label, place in (
        (ax_loss, "loss", "cross-entropy loss", "upper right"),
        (ax_acc, "acc", "top-1 accuracy (%)", "lower right"),
    ):
        ax.plot(epochs, [r[f"train_{key}"] for r in rows], label="train")
        ax.plot(epochs, [r[f"eval_{key}"] for r in rows], label=eval_name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(loc=place)  # a fixed place: "best" searches the data and costs more than the drawing
    fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.9, wspace=0.22)  # tight_layout's result, fixed
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format=Path(path).suffix[1:].lower() or "png")
    return True


class RunDir:
    """One run's folder. `create` makes a new one, `reopen` takes an existing one to resume; both lock it.

    ``writer=False`` (the non-zero ranks of a torchrun job) touches nothing on disk.
    """

    def __init__(self, path: str | os.PathLike[str], *, writer: bool = True) -> None:
        self.path, self.writer = Path(path), writer
        self._lock: IO[str] | None = None
        self.sessions: list[dict[str, Any]] = []  # the earlier processes' entries

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, overwrite: bool = False, writer: bool = True) -> RunDir:
        """A fresh folder for a new run; an existing one is an error unless ``overwrite`` (then its run files go)."""
        run = cls(path, writer=writer)
        if not writer:
            return run
        blocked = next((p for p in (run.path, *run.path.parents) if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise RunDirError(f"cannot create run folder {run.path}: {blocked} is a file, not a folder")
        try:
            run.path.mkdir(parents=True, exist_ok=overwrite)
        except FileExistsError:
            raise RunDirError(
                f"run folder {run.path} already exists: continue it with --resume {run.path}, pick another --name, "
                "or replace it with --overwrite"
            ) from None
        run.lock()
        for name in RUN_FILES:
            (run.path / name).unlink(missing_ok=True)
        return run

    @classmethod
    def reopen(cls, path: str | os.PathLike[str], *, writer: bool = True) -> tuple[RunDir, dict[str, Any]]:
        """An existing run to resume, and its ``run.json``; the folder is locked and stale temp files removed."""
        run = cls(path, writer=writer)
        run_json, ckpt = run.path / "run.json", run.path / "checkpoint.safetensors"
        if not run_json.is_file() or not ckpt.is_file():
            raise CheckpointError(f"cannot resume from {run.path}: expected run.json and checkpoint.safetensors there")
        try:
            meta = json.loads(run_json.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"cannot resume from {run.path}: run.json is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
            raise CheckpointError(f"cannot resume from {run.path}: run.json holds no config")
        if not isinstance(meta.get("sessions"), list):
            raise CheckpointError(
                f"cannot resume from {run.path}: it was written by a zoo before 0.1 recorded sessions; its weights "
                "load with zoo.load, but the run must be started again"
            )
        run.sessions = meta["sessions"]
        if writer:
            run.lock()
        return run, meta

    def lock(self) -> None:
        """Hold an exclusive lock on the folder while this process trains in it; clear a killed save's leftovers."""
        self._lock = open(self.path / ".lock", "w")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise RunDirError(f"run folder {self.path} is in use by another process training in it") from None
        for stale in [*self.path.glob(".*.tmp"), *self.path.glob("*.json.tmp")]:
            stale.unlink(missing_ok=True)  # a save killed half way: the file it was replacing is intact

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ------------------------------------------------------------------------------------------- run.json
    def read_meta(self) -> dict[str, Any]:
        path = self.path / "run.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_meta(self, **values: Any) -> None:
        """Update ``run.json`` with ``values``, atomically."""
        if not self.writer:
            return
        meta = {**self.read_meta(), **values}
        with self._writing(str(self.path / "run.json")), atomic_path(self.path / "run.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """A write error in the block (other than atomic_path's own full-disk one) is a `StorageError` naming
        ``what`` and the free space: the checkpoint, written atomically, is what a run must not lose."""
        try:
            yield
        except StorageError:
            raise
        except OSError as exc:
            free = shutil.disk_usage(self.path).free
            raise StorageError(f"cannot write {what}: {exc.strerror} ({free:,} bytes free)") from None

    def write_sessions(self, current: dict[str, Any]) -> None:
        self.write_meta(sessions=[*self.sessions, current])

    def changes(self, now: dict[str, Any]) -> list[str]:
        """What this session changed against the one before it, of what decides the floats."""
        if not self.sessions:
            return []
        last = self.sessions[-1]
        pairs = [(k, last.get(k), now.get(k)) for k in ("precision", "muon_precision", "world_size")]
        changed = [f"{k} ({old} -> {new})" for k, old, new in pairs if old is not None and old != new]
        return machine_changes(last.get("machine", {}), now["machine"]) + changed

    def save_weights(self, model: torch.nn.Module, name: str, current: dict[str, Any], **header: Any) -> None:
        """``name`` in the folder, its header holding ``header``, every session so far (``current`` the one running)
        and the command that started the run."""
        if self.writer:
            sessions = [*self.sessions, current]
            save_weights(model, self.path / name, sessions=sessions, command=" ".join(sessions[0]["argv"]), **header)

    # ------------------------------------------------------------------------------------------- metrics
    def write_metrics(self, rows: Sequence[dict[str, Any]], *, plot: bool, title: str) -> None:
        """Rewrite ``metrics.jsonl`` and ``metrics.csv`` whole (so the CSV header can grow and a resumed run keeps
        exactly the rows of its finished epochs) and, with ``plot``, ``curves.png``; each file is replaced
        atomically, so a run stopped mid-write keeps the last epoch's files intact."""
        if not self.writer:
            return
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        with self._writing(f"the metrics in {self.path}"):
            with atomic_path(self.path / "metrics.jsonl") as tmp, open(tmp, "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)
            with atomic_path(self.path / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
            if plot:
                plot_curves(rows, self.path / "curves.png", title=title)


def session_record(argv: Sequence[str], device: torch.device, precision: str, **extra: Any) -> dict[str, Any]:
    """Who runs this process: command, commit, machine (run.json's top level holds the first session's)."""
    return {
        "argv": list(argv),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": machine_info(device),
        "precision": precision,
        **extra,
    }
