"""Weights I/O: safetensors only, with a self-describing header. The one place weights are read or written.

A zoo weight file is a plain safetensors file whose string header carries JSON values: the architecture
name and builder kwargs (enough for `load` to rebuild the model), num_classes, mean/std, label names,
the zoo version and any metrics. Loading checks everything before touching the model, so a failed load
leaves the model exactly as it was. Pickle is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.parse
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file
from timm.models import adapt_input_conv

__all__ = ["WeightsError", "file_sha256", "load", "load_named", "load_weights", "read_weights", "save_weights"]

PathOrUrl = str | os.PathLike[str]
_STRIP_PREFIXES = ("module.", "_orig_mod.")
_MAX_LISTED = 12


class WeightsError(ValueError):
    """A weight file that cannot be loaded into the model (the model is left unchanged)."""


def file_sha256(path: PathOrUrl) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ writing
def _json_default(obj: Any) -> Any:
    if isinstance(obj, tuple | set):
        return list(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)  # classes/partials in builder kwargs: recorded, but `load` cannot rebuild from them


def save_weights(model: nn.Module, path: PathOrUrl, *, dtype: torch.dtype | None = None, **metadata: Any) -> str:
    """Write ``model``'s state dict to ``path`` as safetensors with a descriptive header; return its sha256.

    ``metadata`` values (any JSON-able value) are stored JSON-encoded next to the architecture, builder
    kwargs, num_classes, mean/std, label names and zoo version. ``dtype`` (e.g. ``torch.float16``) stores
    floating tensors at that precision. The file is written to a temp file and renamed into place.
    """
    from . import __version__

    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    model = getattr(model, "module", model)  # DistributedDataParallel / DataParallel
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    header: dict[str, Any] = {
        "format": "zoo",
        "zoo_version": __version__,
        "architecture": cfg.get("architecture"),
        "model_kwargs": cfg.get("model_kwargs", {}),
        "num_classes": getattr(model, "num_classes", cfg.get("num_classes")),
        "mean": cfg.get("mean"),
        "std": cfg.get("std"),
        "label_names": cfg.get("label_names"),
        "fused": bool(cfg.get("fused", False)),
        "metrics": {},
    }
    header.update(metadata)
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu", copy=True)
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    str_header = {k: json.dumps(v, default=_json_default) for k, v in header.items()}
    write_safetensors_atomic(tensors, path, str_header)
    return file_sha256(path)


def write_safetensors_atomic(tensors: dict[str, torch.Tensor], path: PathOrUrl, metadata: dict[str, str]) -> None:
    """Write a safetensors file so that a crash at any moment leaves either the old file or the new one.

    Temp file in the same folder, fsync, rename over the target, fsync of the folder (the rename itself).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors writes 0600; a weight file gets the usual permissions
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ------------------------------------------------------------------------------------------------ reading
def _is_url(location: PathOrUrl) -> bool:
    return isinstance(location, str) and urllib.parse.urlparse(location).scheme in {"http", "https", "file"}


def _download(url: str, sha256: str | None, progress: bool) -> Path:
    """Fetch ``url`` into torch.hub's checkpoint cache (once) and return the local path."""
    filename = os.path.basename(urllib.parse.urlparse(url).path) or "weights.safetensors"
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    cache_dir.mkdir(parents=True, exist_ok=True)
    dest = cache_dir / filename
    if dest.exists() and (sha256 is None or file_sha256(dest) == sha256):
        return dest
    try:
        torch.hub.download_url_to_file(url, str(dest), progress=progress)
    except Exception as exc:
        raise WeightsError(
            f"could not download weights from {url}: {exc}. Download the file yourself and pass "
            "its path (weights=PATH) to load it offline."
        ) from exc
    return dest


def _sniff(path: Path) -> None:
    """Recognise the common non-safetensors files up front, for a useful message."""
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path} is empty (0 bytes); expected a safetensors file")
    with open(path, "rb") as f:
        head = f.read(16)
    if size >= 9 and int.from_bytes(head[:8], "little") <= size - 8 and head[8:9] == b"{":
        return  # a safetensors header: 8-byte little-endian length, then JSON
    if head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}):
        raise WeightsError(
            f"{path} looks like a PyTorch pickle checkpoint (torch.save). zoo never loads pickle: "
            "convert it once in a trusted session with safetensors.torch.save_file"
            "(torch.load(f, weights_only=True), 'model.safetensors')"
        )
    raise WeightsError(f"{path} is not a safetensors file (bad or truncated header)")


def read_safetensors(path: PathOrUrl) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on the CPU) and the raw string header of a safetensors file."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118 - not a mapping


def read_weights(
    location: PathOrUrl, *, sha256: str | None = None, progress: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file (path or URL) into CPU tensors and its decoded header metadata."""
    path = _download(location, sha256, progress) if _is_url(location) else Path(location)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    _sniff(path)
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256.lower():
            raise WeightsError(
                f"sha256 mismatch for {path}: expected {sha256}, got {actual}. "
                "The file is corrupt or not the published one."
            )
    try:
        tensors, raw_meta = read_safetensors(path)
    except Exception as exc:
        raise WeightsError(f"{path} is not a valid safetensors file (truncated or corrupt?): {exc}") from exc
    meta: dict[str, Any] = {}
    for key, value in raw_meta.items():
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            meta[key] = value  # foreign files may store plain strings
    return tensors, meta


def _strip_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def _classifier_prefix(model: nn.Module) -> str | None:
    get_classifier = getattr(model, "get_classifier", None)
    if get_classifier is None:
        return None
    fc = get_classifier()
    for name, module in model.named_modules():
        if module is fc:
            return name + "."
    return None


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... ({len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def _classifier_differs(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], head: str) -> bool:
    """True when only the number of classes differs: same feature width, other row count (or no classifier)."""
    weight = state.get(head + "weight")
    if weight is None or weight.ndim != 2:
        return False
    model_weight = target.get(head + "weight")
    if model_weight is None:  # num_classes=0: the model has no classifier
        return True
    return weight.shape[1] == model_weight.shape[1] and weight.shape[0] != model_weight.shape[0]


def _input_conv_differs(weight: torch.Tensor, model_weight: torch.Tensor | None, in_chans: int) -> bool:
    """True for a conv weight that reads the image: the model's takes ``in_chans`` channels, the file's others."""
    if model_weight is None or weight.ndim != 4 or model_weight.ndim != 4:
        return False
    same_elsewhere = weight.shape[0] == model_weight.shape[0] and weight.shape[2:] == model_weight.shape[2:]
    return same_elsewhere and model_weight.shape[1] == in_chans != weight.shape[1]


def load_state_dict_checked(
    model: nn.Module, state: Mapping[str, torch.Tensor], *, strict: bool = True, source: str = "weights"
) -> None:
    """Validate ``state`` against ``model`` completely, then load it; on any error the model is unchanged."""
    state = _strip_prefixes(state)
    filter_fn = getattr(model, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state)
    target = model.state_dict()

    head = _classifier_prefix(model)
    if head is not None and _classifier_differs(state, target, head):
        warnings.warn(
            f"{source}: classifier shape differs from the model's (num_classes="
            f"{getattr(model, 'num_classes', '?')}); it is left freshly initialised (fine-tuning)",
            UserWarning,
            stacklevel=3,
        )
        state = {k: v for k, v in state.items() if not k.startswith(head)}
        target = {k: v for k, v in target.items() if not k.startswith(head)}

    in_chans = getattr(model, "in_chans", None)
    inputs = []
    if isinstance(in_chans, int):
        inputs = [k for k in state if _input_conv_differs(state[k], target.get(k), in_chans)]
    if inputs:
        warnings.warn(
            f"{source}: {_listing(inputs)} adapted from {state[inputs[0]].shape[1]} to {in_chans} input channels "
            "(timm's adapt_input_conv: summed for 1 channel, else repeated and rescaled)",
            UserWarning,
            stacklevel=3,
        )
        state = {**state, **{k: adapt_input_conv(in_chans, state[k]) for k in inputs}}

    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in state and state[k].shape != target[k].shape
    ]
    dtypes = [
        f"{k}: file {state[k].dtype} vs model {target[k].dtype}"
        for k in target
        if k in state and state[k].is_floating_point() != target[k].is_floating_point()
    ]
    problems = []
    if shapes:
        problems.append(f"mis-shaped keys: {_listing(shapes)}")
    if dtypes:
        problems.append(f"wrong dtype: {_listing(dtypes)}")
    if strict and missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if problems:
        arch = getattr(model, "pretrained_cfg", {}).get("architecture") or type(model).__name__
        raise WeightsError(f"{source} does not fit {arch} (is it for another architecture?): " + "; ".join(problems))
    bad = [k for k in target if k in state and state[k].is_floating_point() and not torch.isfinite(state[k]).all()]
    if bad:
        raise WeightsError(f"{source} holds NaN or Inf values in: {_listing(bad)}")

    ready = {k: state[k].to(dtype=target[k].dtype) for k in target if k in state}
    model.load_state_dict(ready, strict=False)


def load_weights(
    model: nn.Module, location: PathOrUrl, *, sha256: str | None = None, strict: bool = True
) -> dict[str, Any]:
    """Load a safetensors file or URL into ``model`` after checking it completely; return the header.

    Keys prefixed with ``module.`` (DDP) or ``_orig_mod.`` (torch.compile) are accepted. Floating tensors
    stored at another precision (fp16, bf16) are cast to the model's dtype; any other dtype change,
    a missing/unexpected/mis-shaped key, NaN/Inf or a hash mismatch raises `WeightsError`.
    """
    tensors, meta = read_weights(location, sha256=sha256)
    cfg = getattr(model, "pretrained_cfg", None)
    model_fused = bool(isinstance(cfg, dict) and cfg.get("fused"))
    if meta.get("format") == "zoo" and bool(meta.get("fused")) != model_fused:
        raise WeightsError(
            f"{location} holds {'BatchNorm-fused' if meta.get('fused') else 'unfused'} weights but the "
            f"model is {'fused' if model_fused else 'not fused'}: use zoo.load(path), or call "
            "model.eval(); zoo.fuse_bn(model) before loading fused weights"
        )
    load_state_dict_checked(model, tensors, strict=strict, source=str(location))
    _apply_header(model, meta)
    return meta


def _apply_header(model: nn.Module, meta: dict[str, Any]) -> None:
    """Take the preprocessing (mean/std), label names and metrics a zoo file records into ``pretrained_cfg``."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or meta.get("format") != "zoo":
        return
    if meta.get("num_classes") == getattr(model, "num_classes", None) and meta.get("label_names"):
        cfg["label_names"] = tuple(meta["label_names"])
    for key in ("mean", "std"):
        if meta.get(key):
            cfg[key] = tuple(meta[key])
    if meta.get("metrics"):
        cfg["metrics"] = meta["metrics"]


def load(location: PathOrUrl, *, sha256: str | None = None, **kwargs: Any) -> nn.Module:
    """Rebuild a model from a zoo weight file's header alone and load its weights."""
    from .registry import create

    tensors, meta = read_weights(location, sha256=sha256)
    arch = meta.get("architecture")
    if meta.get("format") != "zoo" or not isinstance(arch, str):
        raise WeightsError(
            f"{location} has no zoo header naming its architecture; use zoo.create(NAME, weights=PATH) instead"
        )
    model_kwargs = dict(meta.get("model_kwargs") or {})
    model_kwargs.update(kwargs)
    model = create(arch, **model_kwargs)
    if meta.get("fused"):
        from .fuse import fuse_bn

        fuse_bn(model.eval())
    load_state_dict_checked(model, tensors, source=str(location))
    _apply_header(model, meta)
    return model


def load_named(spec: str) -> tuple[nn.Module, str | None]:
    """``spec`` as the command line takes it: a zoo ``.safetensors`` file (path or URL) or ``NAME[.TAG]`` of
    published weights. Returns the model with its weights and their sha256.
    """
    from .registry import create

    if _is_url(spec):
        spec = str(_download(spec, None, progress=True))
    if spec.endswith(".safetensors") or Path(spec).is_file():
        return load(spec), file_sha256(spec)
    model = create(spec, pretrained=True)
    return model, model.pretrained_cfg.get("sha256")
