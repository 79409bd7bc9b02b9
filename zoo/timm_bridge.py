"""zoo's models in timm's registry, so timm's tools take them: after `register_timm_models()`,
``timm.create_model("zoo_resnet20.cifar10", pretrained=True)`` builds zoo's resnet20 with its shipped weights.

The names are prefixed (``zoo_``) because some zoo names are timm's own too (resnet18, vgg11_bn, ...), for other
networks. timm builds them through its ``build_model_with_cfg``, so its pretrained loading (files, the Hugging Face
Hub), ``features_only``, ``num_classes`` and ``in_chans`` adaptation and ``save_for_hf`` all work as for its own.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from safetensors import safe_open
from timm.models import PretrainedCfg, build_model_with_cfg, generate_default_cfgs, register_model

from ._factory import create
from .hub import TIMM_PREFIX as PREFIX
from .hub import zoo_name
from .registry import list_models, model_info

__all__ = ["PREFIX", "register_timm_models", "zoo_name"]

_MODULE = "zoo.timm_models"  # a module of its own: timm's register_model writes into its __all__ and default_cfgs


def _pretrained_cfgs(name: str) -> dict[str, PretrainedCfg]:
    """One timm pretrained cfg per weight tag (the file's own mean/std), or an untagged one without weights."""
    with torch.device("meta"):  # the model's cfg (first conv, classifier, pool size) without building it for real
        cfg = dict(create(name).pretrained_cfg)
    cfg.pop("architecture"), cfg.pop("tag"), cfg.pop("file"), cfg.pop("url")
    cfgs = {}
    for tag, spec in model_info(name).weights.items():
        header: dict[str, Any] = {}
        if spec.file is not None:
            with safe_open(spec.location, "pt") as f:
                header = {k: json.loads(v) for k, v in (f.metadata() or {}).items() if k in ("mean", "std")}
        labels = tuple(spec.label_names) if spec.label_names else None
        weights = {"file": spec.location if spec.file else None, "url": spec.url}
        own = {
            **cfg,
            **{k: tuple(v) for k, v in header.items()},
            "num_classes": spec.num_classes,
            "label_names": labels,
        }
        cfgs[f"{PREFIX}{name}.{tag}"] = PretrainedCfg(**own, **weights)
    return cfgs or {f"{PREFIX}{name}": PretrainedCfg(**cfg)}


def _entrypoint(name: str) -> Callable[..., nn.Module]:
    def entry(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return build_model_with_cfg(
            lambda **kw: create(name, **kw), PREFIX + name, pretrained, feature_cfg={"feature_cls": "getter"}, **kwargs
        )

    entry.__name__, entry.__qualname__, entry.__module__ = PREFIX + name, PREFIX + name, _MODULE
    entry.__doc__ = f"zoo's {name}: {model_info(name).paper}"
    return entry


def register_timm_models() -> list[str]:
    """Register every zoo model (plugins included) as ``zoo_<name>`` in timm's registry; returns the timm names.

    Call it again after registering more zoo models: names timm has already are left as they are.
    """
    module = sys.modules.get(_MODULE)
    if module is None:
        module = sys.modules[_MODULE] = types.ModuleType(_MODULE, "zoo's models, registered in timm's registry")
        module.default_cfgs, module.__all__ = {}, []
    added = []
    for name in list_models():
        if PREFIX + name in module.default_cfgs:
            continue
        module.default_cfgs.update(generate_default_cfgs(_pretrained_cfgs(name)))
        register_model(_entrypoint(name))
        added.append(PREFIX + name)
    return sorted(module.default_cfgs)
