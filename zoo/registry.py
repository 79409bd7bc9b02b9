"""The model registry: names -> keyword-only builders, their metadata, and plugin discovery.

Built-in families register on ``import zoo``. Third-party packages add models through the entry-point
group ``zoo.models``; those are imported lazily, on the first registry lookup, each in isolation: a
plugin that fails to import is reported with a warning and the other models stay usable.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import functools
import importlib.metadata
import json
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn as nn

from .data.constants import CIFAR10_MEAN, CIFAR10_STD
from .errors import PluginError, UnknownModelError

__all__ = [
    "ModelInfo",
    "PluginError",
    "UnknownModelError",
    "WeightSpec",
    "attach_published_weights",
    "is_model",
    "list_models",
    "load_plugins",
    "model_info",
    "register_model",
    "safe_counts",
    "split_model_name",
]

ENTRY_POINT_GROUP = "zoo.models"

B = TypeVar("B", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class WeightSpec:
    """One published weight file of a model: where it lives, its pinned hash and what it scored."""

    tag: str
    file: str | None = None  # path relative to the zoo package (shipped with it)
    url: str | None = None
    sha256: str | None = None
    num_classes: int = 10
    label_names: tuple[str, ...] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    recipe: str | None = None
    card: str | None = None  # docs/cards/<name>.md

    @property
    def location(self) -> str:
        """A local path (for shipped files) or a URL."""
        if self.file is not None:
            return str(Path(__file__).parent / self.file)
        if self.url is not None:
            return self.url
        raise ValueError(f"weight {self.tag!r} has neither a file nor a url")


@dataclass
class ModelInfo:
    """Everything the registry knows about one model name."""

    name: str
    builder: Callable[..., nn.Module]
    family: str
    paper: str = ""
    source: str = "zoo"  # "zoo" for built-ins, else the plugin (entry point or module) that registered it
    input_size: tuple[int, int, int] = (3, 32, 32)
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD
    num_classes: int = 10
    recipe: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, WeightSpec] = field(default_factory=dict)
    default_tag: str | None = None

    @property
    def tags(self) -> list[str]:
        return list(self.weights)

    @functools.cached_property
    def _counts(self) -> tuple[int, int]:
        return count_params_and_macs(self.builder, self.input_size)

    @functools.cached_property
    def feature_size(self) -> tuple[int, ...] | None:
        """``(h, w)`` of ``forward_features``' map at ``input_size`` (timm's ``pool_size``), from a meta-device
        forward pass; None for a model without ``forward_features``."""
        with torch.device("meta"):
            model = self.builder()
            if not callable(getattr(model, "forward_features", None)):
                return None
            with torch.no_grad():
                return tuple(model.eval().forward_features(torch.empty(1, *self.input_size)).shape[2:])

    @property
    def params(self) -> int:
        """Parameter count for the default ``num_classes`` (built on the meta device: no memory, no init cost)."""
        return self._counts[0]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass at ``input_size``, from ``torch.utils.flop_counter``."""
        return self._counts[1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (used by ``python -m zoo.list --json`` and the docs generator)."""
        return {
            "name": self.name,
            "family": self.family,
            "paper": self.paper,
            "source": self.source,
            "params": self.params,
            "macs": self.macs,
            "input_size": list(self.input_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "tags": self.tags,
            "default_tag": self.default_tag,
            "recipe": self.recipe,
        }


def safe_counts(info: ModelInfo) -> tuple[int, int] | None:
    """``(params, macs)`` of ``info``; ``None``, with a warning, when a plugin's builder fails (third-party code
    must not break listing the other models). A built-in model that fails to build is a bug and raises."""
    try:
        return info.params, info.macs
    except Exception as exc:
        if info.source == "zoo":
            raise
        warnings.warn(
            f"zoo plugin model {info.name!r} ({info.source}) failed to build and was skipped: "
            f"{type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def count_params_and_macs(builder: Callable[..., nn.Module], input_size: tuple[int, int, int]) -> tuple[int, int]:
    """Build on the meta device and count parameters and MACs (FLOPs / 2) of one image."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = builder()
        params = sum(p.numel() for p in model.parameters())
        model.eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, *input_size))
    return params, counter.get_total_flops() // 2


# --------------------------------------------------------------------------------------------------- state
_models: dict[str, ModelInfo] = {}
_lock = threading.RLock()
_plugins_loaded = False
_staging: dict[str, ModelInfo] | None = None  # registrations of the plugin being imported right now
_staging_source: str | None = None


def register_model(
    fn: B | None = None,
    *,
    name: str | None = None,
    family: str | None = None,
    paper: str = "",
    input_size: tuple[int, int, int] = (3, 32, 32),
    mean: tuple[float, ...] = CIFAR10_MEAN,
    std: tuple[float, ...] = CIFAR10_STD,
    recipe: dict[str, Any] | None = None,
    weights: Iterable[WeightSpec] = (),
    default_tag: str | None = None,
) -> Any:
    """Register a keyword-only model builder; usable bare (``@register_model``) or with metadata.

    A name that is already registered is an error, for built-ins and plugins alike.
    """

    def decorator(builder: B) -> B:
        model_name = name or builder.__name__
        if not re.fullmatch(r"[a-z0-9_]+", model_name):
            raise ValueError(f"model names are lower_snake_case (letters, digits, '_'), got {model_name!r}")
        specs = {w.tag: w for w in weights}
        info = ModelInfo(
            name=model_name,
            builder=builder,
            family=family or builder.__module__.rsplit(".", 1)[-1],
            paper=paper,
            input_size=tuple(input_size),
            mean=tuple(mean),
            std=tuple(std),
            recipe=dict(recipe or {}),
            weights=specs,
            default_tag=default_tag or next(iter(specs), None),
        )
        with _lock:
            if _staging is not None:
                info.source = _staging_source or info.source
                if model_name in _models or model_name in _staging:
                    owner = _models[model_name].source if model_name in _models else info.source
                    raise PluginError(
                        f"plugin {info.source!r} tried to register {model_name!r}, which {owner!r} already registered"
                    )
                _staging[model_name] = info
            else:
                if model_name in _models:
                    raise ValueError(f"model {model_name!r} is already registered (by {_models[model_name].source!r})")
                if not builder.__module__.startswith("zoo."):
                    info.source = builder.__module__
                _models[model_name] = info
        builder.model_info = info  # type: ignore[attr-defined]
        return builder

    return decorator(fn) if fn is not None else decorator


@contextlib.contextmanager
def _plugin_scope(source: str) -> Iterator[dict[str, ModelInfo]]:
    """Collect a plugin's registrations; they are committed only if its import succeeds."""
    global _staging, _staging_source
    _staging, _staging_source = {}, source
    try:
        yield _staging
    finally:
        _staging, _staging_source = None, None


def load_plugins(*, force: bool = False) -> list[str]:
    """Import every ``zoo.models`` entry point once (isolated); return the names of those that failed.

    Set ``ZOO_DISABLE_PLUGINS=1`` to skip discovery.
    """
    global _plugins_loaded
    with _lock:
        if _plugins_loaded and not force:
            return []
        _plugins_loaded = True
        if os.environ.get("ZOO_DISABLE_PLUGINS", "").lower() in {"1", "true", "yes"}:
            return []
        failed = []
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                with _plugin_scope(f"{ep.name} ({ep.value})") as staged:
                    obj = ep.load()
                    if callable(obj) and not isinstance(obj, type):
                        obj()  # an entry point may name a function that registers models
                _models.update(staged)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failed.append(ep.name)
                warnings.warn(
                    f"zoo plugin {ep.name!r} ({ep.value}) failed to load and was skipped: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return failed


MANIFEST = Path(__file__).parent / "pretrained" / "manifest.json"


def attach_published_weights(manifest: str | os.PathLike[str] = MANIFEST) -> None:
    """Attach the weights listed in the package's manifest (file, pinned sha256, metrics) to their models."""
    path = Path(manifest)
    if not path.is_file():
        return
    for name, tags in json.loads(path.read_text()).items():
        info = _models.get(name)
        if info is None:
            raise ValueError(f"{path} lists weights for {name!r}, which is not registered")
        for tag, entry in tags.items():
            info.weights[tag] = WeightSpec(
                tag=tag,
                file=entry["file"],
                sha256=entry["sha256"],
                num_classes=entry["num_classes"],
                label_names=tuple(entry["label_names"]),
                metrics=dict(entry["metrics"]),
                recipe=entry.get("recipe"),
                card=entry.get("card"),
            )
            if entry.get("default") or info.default_tag is None:
                info.default_tag = tag


def _registry() -> dict[str, ModelInfo]:
    load_plugins()
    return _models


# --------------------------------------------------------------------------------------------------- lookup
def split_model_name(model_name: str) -> tuple[str, str | None]:
    """``"resnet20.cifar10"`` -> ``("resnet20", "cifar10")``; ``"resnet20"`` -> ``("resnet20", None)``."""
    name, dot, tag = model_name.partition(".")
    if dot and not tag:
        raise UnknownModelError(f"{model_name!r} ends in '.' with no weight tag; expected NAME or NAME.TAG")
    return name, tag or None


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _unknown(name: str) -> UnknownModelError:
    names = list(_registry())
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownModelError(f"unknown model {name!r}.{hint} See zoo.list_models() for all {len(names)} models.")


def model_info(model_name: str) -> ModelInfo:
    """Metadata of a registered model (a ``.tag`` suffix is accepted and ignored)."""
    name, _ = split_model_name(model_name)
    info = _registry().get(name)
    if info is None:
        raise _unknown(name)
    return info


def is_model(model_name: str) -> bool:
    """True when ``model_name`` (optionally ``name.tag`` with a known tag) is registered."""
    name, tag = split_model_name(model_name)
    info = _registry().get(name)
    return info is not None and (tag is None or tag in info.weights)


def list_models(
    pattern: str | Iterable[str] = "*",
    *,
    pretrained: bool | None = None,
    family: str | None = None,
    source: str | None = None,
    max_params: int | None = None,
    max_macs: int | None = None,
) -> list[str]:
    """Registered names matching fnmatch ``pattern`` (one or several), naturally sorted.

    ``pretrained=True`` lists ``name.tag`` for every published weight (like timm), ``pretrained=False``
    only models without weights. ``source="zoo"`` keeps the built-ins (a plugin's name keeps its models).
    ``max_params`` / ``max_macs`` filter by budget (10 classes, 32x32).
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"pattern must be a string or strings, got {pattern!r}")
    for key, budget in (("max_params", max_params), ("max_macs", max_macs)):
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)):
            raise TypeError(f"{key} must be a number (e.g. 1_000_000 or 1e6) or None, got {budget!r}")
    out = []
    for name, info in _registry().items():
        if not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        if family is not None and info.family != family:
            continue
        if source is not None and info.source != source:
            continue
        if max_params is not None or max_macs is not None:
            counts = safe_counts(info)
            if counts is None or (max_params is not None and counts[0] > max_params):
                continue
            if max_macs is not None and counts[1] > max_macs:
                continue
        if pretrained is True:
            out.extend(f"{name}.{tag}" for tag in info.weights)
        elif pretrained is None or not info.weights:
            out.append(name)
    return sorted(out, key=_natural_key)
