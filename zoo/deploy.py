"""Ways out of the zoo: ONNX and torch.export programs, and image-file inference with a model's own preprocessing."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ._atomic import atomic_path
from ._version import __version__
from .data.folder import read_image
from .errors import ConfigError, DataError

__all__ = ["export_onnx", "export_program", "load_image", "onnx_metadata", "predict_images", "require_onnx"]


def _example(model: nn.Module, batch_size: int = 2) -> torch.Tensor:
    c, h, w = getattr(model, "pretrained_cfg", {}).get("input_size", (3, 32, 32))
    return torch.randn(batch_size, c, h, w)


def export_program(model: nn.Module, path: str | os.PathLike[str] | None = None) -> torch.export.ExportedProgram:
    """A `torch.export` program of the eval-mode model with a dynamic batch dimension (saved if ``path``)."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(model, (_example(model),), dynamic_shapes=({0: batch},))
    if path is not None:
        with atomic_path(path) as tmp:
            torch.export.save(program, str(tmp))
    return program


def require_onnx() -> None:
    """Raise a clear error when the ``onnx`` extra (onnx, onnxscript, onnxruntime) is not installed."""
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX needs {', '.join(missing)}: pip install 'zoo[onnx]'")


def onnx_metadata(model: nn.Module) -> dict[str, str]:
    """What a user of the ONNX file needs besides the graph: the preprocessing and the class names, as strings
    (ONNX ``metadata_props``; onnxruntime's ``get_modelmeta().custom_metadata_map``; JSON values)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    values = {
        "architecture": cfg.get("architecture"),
        "input_size": list(cfg.get("input_size", (3, 32, 32))),
        "mean": list(cfg.get("mean") or ()),
        "std": list(cfg.get("std") or ()),
        "interpolation": cfg.get("interpolation"),
        "label_names": list(cfg.get("label_names") or ()),
        "input_format": "float32 NCHW, RGB scaled to [0, 1], then (x - mean) / std",
        "zoo_version": __version__,
    }
    return {key: json.dumps(value) for key, value in values.items() if value not in (None, [])}


def export_onnx(model: nn.Module, path: str | os.PathLike[str], opset: int | None = None) -> Path:
    """An ONNX file (input ``input``: float N x C x H x W, output ``logits``) with a dynamic batch dimension; its
    metadata holds the preprocessing and label names (`onnx_metadata`)."""
    require_onnx()
    import onnx

    model.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    kwargs: dict[str, Any] = {"opset_version": opset} if opset else {}
    with atomic_path(path) as tmp:
        torch.onnx.export(
            model,
            (_example(model),),
            str(tmp),
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
            **kwargs,
        )
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, onnx_metadata(model))
        onnx.save(proto, str(tmp))
    return Path(path)


def load_image(path: str | os.PathLike[str], cfg: dict[str, Any]) -> torch.Tensor:
    """An image file as the normalised ``(C, H, W)`` float tensor the model expects (resized to its input)."""
    c, h, w = cfg.get("input_size", (3, 32, 32))
    x = torch.from_numpy(read_image(path, (h, w), c))
    mean = torch.tensor(cfg.get("mean", (0.5,) * c)).view(c, 1, 1)
    std = torch.tensor(cfg.get("std", (0.5,) * c)).view(c, 1, 1)
    return (x.float() / 255 - mean) / std


@torch.no_grad()
def predict_images(model: nn.Module, paths: Sequence[str | os.PathLike[str]], top_k: int = 5) -> list[dict[str, Any]]:
    """Top-k classes with probabilities for each image; an unreadable image gets an ``error`` entry instead."""
    model.eval()
    cfg = getattr(model, "pretrained_cfg", {})
    labels = cfg.get("label_names") or [str(i) for i in range(model.num_classes)]
    results: list[dict[str, Any]] = []
    good: list[tuple[int, torch.Tensor]] = []
    for i, path in enumerate(paths):
        try:
            good.append((i, load_image(path, cfg)))
            results.append({"image": str(path)})
        except DataError as exc:
            results.append({"image": str(path), "error": str(exc)})
    if good:
        probs = model(torch.stack([x for _, x in good])).float().softmax(1)
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        for (i, _), v, idx in zip(good, values, indices):
            results[i]["top_k"] = [
                {"label": labels[j], "index": int(j), "probability": float(p)} for p, j in zip(v.tolist(), idx.tolist())
            ]
    return results
