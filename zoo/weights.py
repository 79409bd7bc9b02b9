"""Weights I/O: safetensors only, with a self-describing header. The one place weight files are read or written.

A zoo weight file is a plain safetensors file whose string header carries JSON values: the architecture
name and builder kwargs (enough for `zoo.load` to rebuild the model), num_classes, mean/std, label names,
the zoo version and any metrics. Reading checks the header's values and loading checks every tensor before
touching the model, so a failed load leaves the model exactly as it was. Pickle is never loaded.
This module knows nothing of the registry: building models from headers is `zoo._factory`'s job.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from timm.models import adapt_input_conv
from tqdm.auto import tqdm

from ._atomic import atomic_path
from ._version import __version__
from .errors import WeightsError

__all__ = [
    "WeightsError",
    "download",
    "file_sha256",
    "load_state_dict_checked",
    "load_weights",
    "read_weights",
    "save_weights",
    "write_safetensors_atomic",
]

PathOrUrl = str | os.PathLike[str]
_STRIP_PREFIXES = ("module.", "_orig_mod.")
_MAX_LISTED = 12
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation: a server that accepts and never answers is an error, not a hang


def file_sha256(path: PathOrUrl) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ writing
def _json(name: str, value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, tuple | set):
            return list(obj)
        if isinstance(obj, Path):
            return str(obj)
        if isinstance(obj, torch.Tensor):
            return obj.tolist()
        raise TypeError(type(obj).__name__)

    try:
        return json.dumps(value, default=default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"header value {name!r} is not JSON ({exc}): {value!r}") from None


def save_weights(
    model: nn.Module, path: PathOrUrl, *, dtype: torch.dtype | None = None, weights_only: bool = False, **metadata: Any
) -> str:
    """Write ``model``'s state dict to ``path`` as safetensors with a descriptive header; return its sha256.

    The header records what `zoo.load` needs to rebuild the model (architecture and builder kwargs, which must
    be JSON), so a model that could not be rebuilt (built from its class, or with a class or partial among its
    kwargs) is refused here, unless ``weights_only=True`` asks for a file of tensors that `zoo.load` then
    reports as weights-only. ``metadata`` (JSON values) is stored beside; ``dtype`` (e.g. ``torch.float16``)
    stores floating tensors at that precision. The file is written to a temp file and renamed into place.
    """
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    model = getattr(model, "module", model)  # DistributedDataParallel / DataParallel
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    zoo_cfg = dict(getattr(model, "zoo_cfg", None) or {})
    num_classes = getattr(model, "num_classes", cfg.get("num_classes"))
    labels = cfg.get("label_names")
    header: dict[str, Any] = {
        "format": "zoo",
        "zoo_version": __version__,
        "architecture": None if weights_only else cfg.get("architecture"),
        "model_kwargs": {} if weights_only else zoo_cfg.get("model_kwargs", {}),
        "weights_only": weights_only,
        "num_classes": num_classes,
        "mean": cfg.get("mean"),
        "std": cfg.get("std"),
        "label_names": labels if labels is not None and len(labels) == num_classes else None,
        "fused": bool(zoo_cfg.get("fused", False)),
        "metrics": {},
    }
    if not weights_only and not (isinstance(header["architecture"], str) and "model_kwargs" in zoo_cfg):
        raise WeightsError(
            f"zoo.load could not rebuild this {type(model).__name__}: it was not built by zoo.create, so no "
            "architecture is known. Build it with zoo.create(NAME, ...) or save with weights_only=True "
            "(then load it with zoo.create(NAME, weights=PATH) or zoo.load_weights(model, PATH))"
        )
    header.update(metadata)
    str_header = {k: _json(k, v) for k, v in header.items()}
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu", copy=True)
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    write_safetensors_atomic(tensors, path, str_header)
    return file_sha256(path)


def write_safetensors_atomic(tensors: dict[str, torch.Tensor], path: PathOrUrl, metadata: dict[str, str]) -> None:
    """Write a safetensors file so that a crash at any moment leaves either the old file or the new one
    (`zoo._atomic.atomic_path`); a full disk is a `StorageError` naming the folder and the bytes needed."""
    needed = sum(t.numel() * t.element_size() for t in tensors.values())
    with atomic_path(path, needed=needed) as tmp:
        save_file(tensors, tmp, metadata=metadata)


# ------------------------------------------------------------------------------------------------ reading
def is_url(location: PathOrUrl) -> bool:
    return isinstance(location, str) and urllib.parse.urlparse(location).scheme in {"http", "https"}


def cache_dir() -> Path:
    """Downloaded weights: ``$ZOO_CACHE`` or torch.hub's folder, ``.../zoo/weights``."""
    root = os.environ.get("ZOO_CACHE") or os.path.join(torch.hub.get_dir(), "zoo")
    return Path(root).expanduser() / "weights"


def download(url: str, *, sha256: str | None = None, progress: bool = False, timeout: float | None = None) -> Path:
    """Fetch ``url`` into the cache once and return the local path.

    The cache is keyed by the pinned ``sha256`` when there is one, else by the URL itself, so two URLs with the
    same file name never share an entry. A download enters the cache only after it is checked (a safetensors
    header, and the hash when pinned): an error page is never cached. Socket operations time out after
    ``timeout`` seconds (`DOWNLOAD_TIMEOUT_S`).
    """
    name = os.path.basename(urllib.parse.urlparse(url).path) or "weights.safetensors"
    key = sha256.lower() if sha256 else "url-" + hashlib.sha256(url.encode()).hexdigest()[:32]
    dest = cache_dir() / key / name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout or DOWNLOAD_TIMEOUT_S) as r:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        _sniff(Path(tmp), source=url)
        if sha256 is not None and file_sha256(tmp) != sha256.lower():
            raise WeightsError(f"sha256 mismatch for {url}: the download is not the published file")
        os.replace(tmp, dest)
    except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
        reason = getattr(exc, "reason", exc)
        raise WeightsError(
            f"could not download weights from {url}: {reason}. Download the file yourself and pass its path "
            "to load it offline."
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _sniff(path: Path, source: str | None = None) -> None:
    """Recognise the common non-safetensors files up front, for a useful message."""
    source = source or str(path)
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{source} is empty (0 bytes); expected a safetensors file")
    with open(path, "rb") as f:
        head = f.read(16)
    if size >= 9 and int.from_bytes(head[:8], "little") <= size - 8 and head[8:9] == b"{":
        return  # a safetensors header: 8-byte little-endian length, then JSON
    if head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}):
        raise WeightsError(
            f"{source} looks like a PyTorch pickle checkpoint (torch.save). zoo never loads pickle: "
            "convert it once in a trusted session with safetensors.torch.save_file"
            "(torch.load(f, weights_only=True), 'model.safetensors')"
        )
    raise WeightsError(f"{source} is not a safetensors file (bad or truncated header)")


def read_safetensors(path: PathOrUrl) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on the CPU) and the raw string header of a safetensors file."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118 - not a mapping


def _numbers(value: Any, *, positive: bool = False) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        and (not positive or all(v > 0 for v in value))
    )


def check_header(meta: dict[str, Any], source: str) -> None:
    """Range-check the values of a zoo header where they are read: a bad one would give silent wrong answers."""
    if meta.get("format") != "zoo":
        return
    problems = []
    n = meta.get("num_classes")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        problems.append(f"num_classes must be an integer >= 0, got {n!r}")
    for key in ("mean", "std"):
        if meta.get(key) is not None and not _numbers(meta[key], positive=key == "std"):
            each = ", each > 0" if key == "std" else ""
            problems.append(f"{key} must be a list of finite numbers{each}, got {meta[key]!r}")
    if _numbers(meta.get("mean")) and _numbers(meta.get("std")) and len(meta["mean"]) != len(meta["std"]):
        problems.append(f"mean and std must have one value per channel each, got {meta['mean']!r} and {meta['std']!r}")
    labels = meta.get("label_names")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        problems.append(f"label_names must be a list of strings, got {labels!r}")
    elif labels is not None and isinstance(n, int) and len(labels) != n:
        problems.append(f"label_names has {len(labels)} names for {n} classes")
    if not isinstance(meta.get("model_kwargs", {}), dict):
        problems.append(f"model_kwargs must be a JSON object, got {meta['model_kwargs']!r}")
    if meta.get("architecture") is not None and not isinstance(meta["architecture"], str):
        problems.append(f"architecture must be a model name, got {meta['architecture']!r}")
    if problems:
        raise WeightsError(f"{source} has a malformed zoo header: " + "; ".join(problems))


def read_weights(
    location: PathOrUrl, *, sha256: str | None = None, progress: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file (path or http(s) URL) into CPU tensors and its decoded, checked header."""
    path = download(location, sha256=sha256, progress=progress) if is_url(location) else Path(location)
    if not path.is_file():
        raise WeightsError(
            f"{path} is a folder; expected a weights file" if path.is_dir() else f"weights file not found: {path}"
        )
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
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path} is not a valid safetensors file (truncated or corrupt?): {exc}") from None
    meta: dict[str, Any] = {}
    for key, value in raw_meta.items():
        try:
            meta[key] = json.loads(value)
        except json.JSONDecodeError:
            meta[key] = value  # foreign files may store plain strings
    check_header(meta, str(location))
    return tensors, meta


# ------------------------------------------------------------------------------------------------ loading
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


def match_state_dict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
    adapt: bool = False,
    source: str = "weights",
    name: str | None = None,
) -> dict[str, torch.Tensor]:
    """Check ``state`` against ``model`` (which may live on the meta device; ``name`` is what errors call it) and
    return what to load.

    ``adapt=True`` (fine-tuning, asked for with another ``num_classes`` or ``in_chans``) leaves a classifier of
    another size freshly initialised and adapts the input conv with timm's ``adapt_input_conv``; otherwise any
    difference is a `WeightsError` listing every key problem.
    """
    state = _strip_prefixes(state)
    filter_fn = getattr(model, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state)
    target = model.state_dict()

    head = _classifier_prefix(model)
    if adapt and head is not None and _classifier_differs(state, target, head):
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
    if adapt and isinstance(in_chans, int):
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
        arch = name or (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
        raise WeightsError(f"{source} does not fit {arch} (is it for another architecture?): " + "; ".join(problems))
    bad = [k for k in target if k in state and state[k].is_floating_point() and not torch.isfinite(state[k]).all()]
    if bad:
        raise WeightsError(f"{source} holds NaN or Inf values in: {_listing(bad)}")
    return {k: state[k].to(dtype=target[k].dtype) for k in target if k in state}


def load_state_dict_checked(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
    adapt: bool = False,
    source: str = "weights",
) -> None:
    """Validate ``state`` against ``model`` completely (`match_state_dict`), then load it; on error the model
    is unchanged."""
    model.load_state_dict(match_state_dict(model, state, strict=strict, adapt=adapt, source=source), strict=False)


def load_weights(
    model: nn.Module, location: PathOrUrl, *, sha256: str | None = None, strict: bool = True, adapt: bool = False
) -> dict[str, Any]:
    """Load a safetensors file or URL into ``model`` after checking it completely; return the header.

    Keys prefixed with ``module.`` (DDP) or ``_orig_mod.`` (torch.compile) are accepted. Floating tensors
    stored at another precision (fp16, bf16) are cast to the model's dtype; any other dtype change,
    a missing/unexpected/mis-shaped key, NaN/Inf or a hash mismatch raises `WeightsError`.
    """
    tensors, meta = read_weights(location, sha256=sha256)
    model_fused = bool((getattr(model, "zoo_cfg", None) or {}).get("fused"))
    if meta.get("format") == "zoo" and bool(meta.get("fused")) != model_fused:
        raise WeightsError(
            f"{location} holds {'BatchNorm-fused' if meta.get('fused') else 'unfused'} weights but the "
            f"model is {'fused' if model_fused else 'not fused'}: use zoo.load(path), or call "
            "model.eval(); zoo.fuse_bn(model) before loading fused weights"
        )
    load_state_dict_checked(model, tensors, strict=strict, adapt=adapt, source=str(location))
    return meta
