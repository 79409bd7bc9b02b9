"""Atomic file output: every file the zoo writes for a user (weights, checkpoints, ONNX, torch.export programs)
appears whole or not at all, so a crash or a failed writer never leaves a half file in place of a good one."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import StorageError

__all__ = ["atomic_path", "check_target"]


def check_target(path: Path) -> None:
    """Raise a `StorageError` unless ``path`` can be a file (not a folder; its folder is made if missing)."""
    if path.is_dir():
        raise StorageError(f"cannot write {path}: it is a folder; expected a file path")
    if path.parent.exists() and not path.parent.is_dir():
        raise StorageError(f"cannot write {path}: {path.parent} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StorageError(f"cannot write {path}: a part of {path.parent} is a file, not a folder") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, needed: int | None = None) -> Iterator[Path]:
    """A temp path (``.NAME.*.tmp``) next to ``path`` for the block to write; when the block ends without error it
    is fsynced and renamed over ``path`` (and the folder fsynced), otherwise removed and ``path`` left as it was.

    A full disk is a `StorageError` naming the folder (and ``needed`` bytes, when the caller knows them).
    """
    path = Path(path)
    check_target(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp (and safetensors) create 0600; an output gets the usual permissions
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free = shutil.disk_usage(path.parent).free
        size = f"about {needed:,} bytes needed, " if needed is not None else ""
        raise StorageError(
            f"no space left to write {path}: {size}{free:,} free in {path.parent}; "
            "free some space and try again (nothing was replaced)"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
