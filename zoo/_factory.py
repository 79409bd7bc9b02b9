"""Models from names, tags and files: `create`, `load`, and `resolve_model`, the one resolver that every CLI and
``torch.hub`` use. A model's ``pretrained_cfg`` (timm's keys) and ``zoo_cfg`` (zoo's own) are built here, once.

A weight file is checked against the model it describes before anything real is built: the model is first built
on the meta device (no memory, no init), its state-dict shapes compared with the file's tensors, and only then
built for real. A header cannot make zoo allocate more than its own tensors hold, nor fetch anything.
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from timm.models._features import FeatureGetterNet

from .data.constants import CIFAR10_CLASSES
from .errors import ModelKwargsError, UnknownModelError, WeightsError
from .hub import CONFIG, download_repo, folder_kwargs, is_hub, read_folder
from .layers.head import check_count
from .registry import ModelInfo, WeightSpec, is_model, list_models, model_info, split_model_name
from .weights import file_sha256, is_url, match_state_dict, read_weights

__all__ = ["accepted_kwargs", "create", "load", "resolve_model"]

PathOrUrl = str | os.PathLike[str]
_FACTORY_ARGS = ("pretrained", "weights", "sha256")  # never builder kwargs: a file must not name other files


def accepted_kwargs(info: ModelInfo) -> frozenset[str] | None:
    """The keyword arguments ``info``'s builder takes, following ``**kwargs`` into the model class its return
    annotation names; ``None`` when that cannot be known (an unannotated plugin builder)."""
    names: set[str] = set()
    fn: Any = info.builder
    while True:
        params = inspect.signature(fn).parameters.values()
        names |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return frozenset(names)
        if fn is not info.builder:
            return None
        ret = typing.get_type_hints(info.builder).get("return")
        if not (isinstance(ret, type) and issubclass(ret, nn.Module)):
            return None
        fn = ret.__init__


def _check_kwargs(info: ModelInfo, kwargs: dict[str, Any]) -> None:
    accepted = accepted_kwargs(info)
    unknown = sorted(set(kwargs) - accepted) if accepted is not None else []
    if unknown:
        raise ModelKwargsError(
            f"{info.name} does not take {', '.join(unknown)}; its builder takes {', '.join(sorted(accepted or ()))}"
        )


def _weight_spec(info: ModelInfo, tag: str | None, pretrained: bool) -> WeightSpec | None:
    if tag is None and not pretrained:
        return None
    tag = tag or info.default_tag
    if tag is None:
        raise UnknownModelError(
            f"model {info.name!r} has no pretrained weights; models with weights: "
            f"{', '.join(list_models(pretrained=True)) or 'none yet'}"
        )
    if tag not in info.weights:
        raise UnknownModelError(f"model {info.name!r} has no weights tagged {tag!r}; available: {', '.join(info.tags)}")
    return info.weights[tag]


def _first(model: nn.Module, kind: type[nn.Module]) -> str | None:
    return next((name for name, m in model.named_modules() if isinstance(m, kind)), None)


def _configure(
    model: nn.Module,
    info: ModelInfo,
    kwargs: dict[str, Any],
    *,
    spec: WeightSpec | None = None,
    header: dict[str, Any] | None = None,
    source: str | None = None,
    sha256: str | None = None,
    fused: bool = False,
) -> nn.Module:
    """Set ``model.pretrained_cfg`` (= ``default_cfg``, timm's keys only, so ``timm.models.PretrainedCfg(**cfg)``
    and timm's data helpers take it) and ``model.zoo_cfg`` (builder kwargs, metrics, hash, the training split),
    from the registry entry and the weights' manifest entry or file header."""
    header = header or {}
    num_classes = getattr(model, "num_classes", info.num_classes)
    in_chans = getattr(model, "in_chans", info.input_size[0])
    labels = spec.label_names if spec is not None else header.get("label_names")
    if labels is None or len(labels) != num_classes:
        labels = CIFAR10_CLASSES if num_classes == 10 and spec is None and not header else None
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    size = info.input_size[1:]
    model.pretrained_cfg = model.default_cfg = {
        "architecture": info.name,
        "tag": spec.tag if spec is not None else None,
        "file": source if source and not is_url(source) else None,
        "url": source if source and is_url(source) else None,
        "input_size": (in_chans, *size),
        "fixed_input_size": False,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "center",
        "mean": tuple(header.get("mean") or info.mean),
        "std": tuple(header.get("std") or info.std),
        "num_classes": num_classes,
        "label_names": tuple(labels) if labels is not None else None,
        "pool_size": info.feature_size,
        "first_conv": _first(model, nn.Conv2d),
        "classifier": next((n for n, m in model.named_modules() if m is classifier), None),
        "license": "mit",
        "paper_name": info.paper or None,
    }
    metrics = dict(spec.metrics) if spec is not None else dict(header.get("metrics") or {})
    model.zoo_cfg = {
        "model_kwargs": dict(kwargs),
        "recipe": dict(info.recipe),
        "metrics": metrics,
        "sha256": sha256,
        "fused": fused,
        "trained_on": _trained_on(header.get("config")),
    }
    return model


def _trained_on(run: Any) -> dict[str, Any] | None:
    """Data set, ``val_split``, seed and ``limit_train`` of the zoo.train run that wrote a weight file (its header's
    ``config``), or None where the header has no such record or a malformed one."""
    record = {k: run.get(k) for k in ("dataset", "val_split", "seed", "limit_train")} if isinstance(run, dict) else {}
    valid = (
        isinstance(record.get("dataset"), str)
        and all(type(record.get(k)) is int and record[k] >= 0 for k in ("val_split", "seed"))
        and (record["limit_train"] is None or (type(record["limit_train"]) is int and record["limit_train"] > 0))
    )
    return record if valid else None


def _build(info: ModelInfo, kwargs: dict[str, Any], device: str | None = None) -> nn.Module:
    if device is None:
        return info.builder(**kwargs)
    with torch.device(device):
        return info.builder(**kwargs)


def _from_tensors(
    info: ModelInfo,
    kwargs: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    *,
    adapt: bool,
    fused: bool,
    source: str,
) -> nn.Module:
    """Check ``tensors`` against the model built on the meta device and make them its tensors; where they do not
    cover all of it (a new classifier, a buffer no file holds), build it for real and load them."""
    from .fuse import fuse_bn

    meta = _build(info, kwargs, device="meta")
    if fused:
        fuse_bn(meta.eval())
    ready = match_state_dict(meta, tensors, adapt=adapt, source=source, name=info.name)
    if _covers(meta, ready):
        # no random initialisation to pay for; copies, as load_state_dict makes: a tensor read from the file keeps
        # its offset there (8-byte aligned), and the CPU kernels round differently on unaligned data
        meta.load_state_dict({k: v.clone() for k, v in ready.items()}, assign=True)
        return meta
    del meta
    model = _build(info, kwargs)
    if fused:
        fuse_bn(model.eval())
    model.load_state_dict(ready, strict=False)
    return model


def _covers(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` holds every parameter and buffer of ``model``, each under one name (a tied or
    non-persistent tensor makes the counts differ)."""
    keys = model.state_dict().keys()
    return len(keys) == len(list(model.parameters())) + len(list(model.buffers())) and keys <= state.keys()


def create(
    model_name: str | os.PathLike[str],
    *,
    pretrained: bool = False,
    weights: PathOrUrl | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model by name, optionally with weights.

    ``model_name`` may carry a weight tag (``"resnet20.cifar10"``, which implies ``pretrained=True``), or be a
    Hub repo (``"hf-hub:ORG/REPO"``) or a folder in its layout (a path).
    ``weights`` is a safetensors path or URL (its classes, when its header names them, unless ``num_classes``
    says otherwise). With ``num_classes`` different from the weights', the classifier is re-initialised
    (fine-tuning) and every other tensor loads; with ``in_chans`` different from them, the input conv is adapted
    as timm does (summed for 1 channel, else repeated). ``num_classes=0`` builds the model without a classifier
    (timm's convention: ``forward`` returns the pooled features). ``features_only=True`` returns timm's feature
    extractor around the model: ``forward`` gives the maps of the ``feature_info`` stages ``out_indices`` (all by
    default), and ``feature_info.channels()`` / ``.reduction()`` describe them.
    """
    if not features_only and out_indices is not None:
        raise ModelKwargsError("out_indices selects feature maps: it needs features_only=True")
    model_name = os.fspath(model_name) if isinstance(model_name, os.PathLike) else model_name
    if not isinstance(model_name, str):
        raise TypeError(f"model_name must be a model name, hf-hub:ORG/REPO or a folder, got {model_name!r}")
    if _is_repo(model_name):  # a Hub repo, or a folder in its layout
        if weights is not None:
            raise WeightsError(f"{model_name} holds its weights: give no other weights")
        model = _from_folder(model_name, num_classes=num_classes, in_chans=in_chans, **kwargs)
        return _features(model, out_indices) if features_only else model
    model = _create(
        model_name, pretrained=pretrained, weights=weights, num_classes=num_classes, in_chans=in_chans, **kwargs
    )
    return _features(model, out_indices) if features_only else model


def _features(model: nn.Module, out_indices: int | Sequence[int] | None) -> nn.Module:
    if not getattr(model, "feature_info", None):
        raise ModelKwargsError(f"{model.pretrained_cfg['architecture']} has no feature_info: no features_only")
    n = len(model.feature_info)
    indices = tuple(range(n)) if out_indices is None else out_indices
    if not (1 <= indices <= n if isinstance(indices, int) else all(-n <= i < n for i in indices)):
        raise ModelKwargsError(
            f"out_indices={out_indices!r} is out of range: {model.pretrained_cfg['architecture']} has {n} feature "
            f"stages, so give indices in 0..{n - 1} (or an integer 1..{n}: the last that many)"
        )
    features = FeatureGetterNet(model, indices, prune=False)
    features.pretrained_cfg = features.default_cfg = model.pretrained_cfg
    features.zoo_cfg = model.zoo_cfg
    return features


def _create(
    model_name: str,
    *,
    pretrained: bool,
    weights: PathOrUrl | None,
    num_classes: int | None,
    in_chans: int | None,
    **kwargs: Any,
) -> nn.Module:
    check_count("num_classes", num_classes, 0)
    check_count("in_chans", in_chans, 1)
    for key in ("drop_rate", "drop_path_rate"):
        rate = kwargs.get(key)
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1):
            raise ModelKwargsError(f"{key} must be a probability in [0, 1), got {rate!r}")
    name, tag = split_model_name(model_name)
    info = model_info(name)
    spec = _weight_spec(info, tag, pretrained)
    if spec is not None and weights is not None:
        raise WeightsError(f"give published weights ({name}.{spec.tag}) or weights={weights!r}, not both")
    source = spec.location if spec is not None else weights
    tensors, header = read_weights(source, sha256=spec.sha256 if spec else None) if source is not None else ({}, {})
    if num_classes is None:
        num_classes = spec.num_classes if spec is not None else header.get("num_classes")
    for key, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if value is not None:
            kwargs[key] = value
    _check_kwargs(info, kwargs)
    if source is None:
        return _configure(_build(info, kwargs), info, kwargs)
    adapt = "num_classes" in kwargs or in_chans is not None
    model = _from_tensors(info, kwargs, tensors, adapt=adapt, fused=bool(header.get("fused")), source=str(source))
    digest = spec.sha256 if spec is not None else None
    if digest is None and not is_url(source):
        digest = file_sha256(source)
    fused = bool(header.get("fused"))
    return _configure(model, info, kwargs, spec=spec, header=header, source=str(source), sha256=digest, fused=fused)


def _is_repo(spec: str) -> bool:
    """``hf-hub:ORG/REPO``, or a folder holding a Hub config (a registered name always means the model)."""
    return is_hub(spec) or (Path(spec, CONFIG).is_file() and not is_model(spec))


def _from_folder(spec: str, sha256: str | None = None, **kwargs: Any) -> nn.Module:
    """The model in a Hub repo (``hf-hub:ORG/REPO[@REV]``) or a folder in its layout (``save_for_hf``'s)."""
    folder = download_repo(spec) if is_hub(spec) else Path(spec)
    weights, config = read_folder(folder, sha256=sha256)
    _, header = read_weights(weights)
    given = {k: v for k, v in kwargs.items() if v is not None}
    if isinstance(header.get("architecture"), str) and not given:
        return load(weights)  # a zoo weight file: its header says how to rebuild it
    name, saved = folder_kwargs(config)
    return create(name, weights=weights, **{**saved, **given})


def load(location: PathOrUrl, *, sha256: str | None = None) -> nn.Module:
    """Rebuild a model from a zoo weight file's header alone and load its weights: a path, an http(s) URL, a Hub
    repo (``hf-hub:ORG/REPO[@REVISION]``) or a folder in the Hub's layout (timm's ``save_for_hf``).

    The header's builder kwargs are checked against the builder's signature and its tensors against the model
    built on the meta device before anything is allocated; a header never makes zoo fetch another file.
    """
    if _is_repo(str(location)):
        return _from_folder(str(location), sha256=sha256)
    tensors, meta = read_weights(location, sha256=sha256)
    if meta.get("format") == "zoo" and meta.get("weights_only"):
        raise WeightsError(
            f"{location} is a weights-only file (saved with weights_only=True): it names no architecture. "
            "Build the model yourself and load it with zoo.create(NAME, weights=PATH) or zoo.load_weights(model, PATH)"
        )
    arch = meta.get("architecture")
    if meta.get("format") != "zoo" or not isinstance(arch, str):
        raise WeightsError(
            f"{location} has no zoo header naming its architecture; use zoo.create(NAME, weights=PATH) instead"
        )
    info = model_info(arch)
    kwargs = dict(meta.get("model_kwargs") or {})
    named = sorted(set(kwargs) & set(_FACTORY_ARGS))
    if named:
        raise WeightsError(f"{location}: model_kwargs may not name {', '.join(named)} (a file never names another)")
    if meta.get("num_classes") is not None:
        kwargs.setdefault("num_classes", meta["num_classes"])
    try:
        _check_kwargs(info, kwargs)
    except ModelKwargsError as exc:
        raise WeightsError(f"{location}: the header's model_kwargs do not fit: {exc}") from None
    model = _from_tensors(info, kwargs, tensors, adapt=False, fused=bool(meta.get("fused")), source=str(location))
    digest = sha256 or (None if is_url(location) else file_sha256(location))
    fused = bool(meta.get("fused"))
    return _configure(model, info, kwargs, header=meta, source=str(location), sha256=digest, fused=fused)


def resolve_model(spec: str, *, weights: PathOrUrl | None = None, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """What every CLI and torch.hub take as "a model": ``NAME`` (with ``weights`` or ``pretrained``), ``NAME.TAG``
    of published weights, a zoo ``.safetensors`` file or http(s) URL whose header names the architecture
    (``pretrained`` is then implied), ``hf-hub:ORG/REPO``, or an ``.onnx`` file (float or int8, ONNX Runtime)."""
    if _is_repo(spec):
        return create(spec, weights=weights, **kwargs)
    if spec.endswith(".onnx"):  # an exported (or int8) ONNX file: run by ONNX Runtime
        if weights is not None or kwargs:
            raise WeightsError(f"{spec} is an ONNX model: give no other weights or model options")
        from .int8 import OnnxModel

        return OnnxModel(spec)
    if spec.endswith(".safetensors") or is_url(spec) or Path(spec).is_file():  # weights, so pretrained holds
        if weights is not None or kwargs:
            raise WeightsError(f"{spec} is a weight file that names its model: give no other weights or model options")
        return load(spec)
    return create(spec, pretrained=pretrained, weights=weights, **kwargs)
