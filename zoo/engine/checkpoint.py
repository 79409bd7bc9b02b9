"""Training checkpoints: one safetensors file holding every tensor, with the rest of the state as JSON.

Writes are atomic (temp file in the same folder, fsync, rename, fsync of the folder): a process killed
mid-save leaves the previous checkpoint intact. Nested state (optimizer and scheduler state dicts, RNG
states) is flattened: tensors go into the safetensors body, everything else into a JSON skeleton.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from ..errors import CheckpointError
from ..weights import read_safetensors, write_safetensors_atomic

__all__ = ["CheckpointError", "load_checkpoint", "pack", "save_checkpoint", "unpack"]

_FORMAT = "zoo-checkpoint-v1"


def pack(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace every tensor in ``obj`` by a reference into ``tensors``; keep dict key types."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}#{len(tensors)}"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: pack(v, tensors, f"{prefix}.{k}") for k, v in obj.items()}
        return {"__items__": [[k, pack(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        packed = [pack(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": packed} if isinstance(obj, tuple) else packed
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {prefix}")


def unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `pack`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: unpack(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(unpack(v, tensors) for v in obj["__tuple__"])
        return {k: unpack(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Atomically write ``state`` (nested dicts/lists of tensors and JSON values) to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = pack(state, tensors, "s")
    write_safetensors_atomic(tensors, path, {"format": _FORMAT, "state": json.dumps(skeleton)})


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`."""
    try:
        tensors, meta = read_safetensors(path)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if meta.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a zoo training checkpoint")
    return unpack(json.loads(meta["state"]), tensors)
