"""int8 inference on CPU: static quantization to an ONNX file (ONNX Runtime) or a PyTorch program (torchao's PT2E).

`quantize` folds BatchNorm, exports the model to ONNX, runs ONNX Runtime's pre-processing (graph optimisation,
shape inference) and its static quantizer in QDQ format: int8 weights per output channel, uint8 activations with
ranges calibrated on training images (never test images). The file keeps the float model's preprocessing in its
metadata. `OnnxModel` wraps any such file (int8 or float) as a module with zoo's contract, so ``python -m zoo.eval``
and ``python -m zoo.predict`` take ``model.onnx`` like any other weights. `quantize_pt2e` is the same recipe in
PyTorch (torch.export + torchao's X86InductorQuantizer): its int8 kernels come from ``torch.compile``. Why ONNX
Runtime is the default: see docs/deploy.md.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ._atomic import atomic_path
from .data import Split, normalize
from .deploy import export_onnx, onnx_metadata, require_onnx
from .errors import ConfigError, WeightsError
from .fuse import fuse_bn
from .weights import file_sha256

__all__ = ["OnnxModel", "calibration_batches", "quantize", "quantize_pt2e"]


def calibration_batches(model: nn.Module, split: Split, *, images: int = 512, batch_size: int = 32) -> list[np.ndarray]:
    """The first ``images`` images of ``split`` (a training split), normalised as ``model`` expects, in batches."""
    if not 0 < images <= len(split):
        raise ConfigError(f"calibration needs between 1 and {len(split)} images, got {images}")
    cfg = model.pretrained_cfg
    mean, std = torch.tensor(cfg["mean"]), torch.tensor(cfg["std"])
    x = normalize(split.images[:images], mean, std, channels_last=False)
    return [b.numpy() for b in x.split(batch_size)]


def quantize(
    model: nn.Module,
    calibration: list[np.ndarray],
    path: str | os.PathLike[str],
    *,
    per_channel: bool = True,
    method: str = "minmax",
    float_first_conv: bool = True,
    reduce_range: bool = False,
) -> OnnxModel:
    """Write a static int8 (QDQ) ONNX file of ``model`` at ``path`` and return it as an `OnnxModel`; calibrated on
    ``calibration`` (normalised NCHW batches, `calibration_batches`). ``method``: ``minmax``, ``percentile`` or
    ``entropy`` activation ranges. ``float_first_conv`` keeps the conv that reads the image in float (it has 3 input
    channels, so it costs little; airbench's whitening stem loses over a point of accuracy in int8). ``reduce_range``
    stores 7-bit weights: x86 CPUs without VNNI (AVX2 only) add pairs of u8 x s8 products in 16 bits, which saturate
    with 8-bit weights (ONNX Runtime's advice for such CPUs; docs/deploy.md measures both on one)."""
    require_onnx()
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise ConfigError(f"calibration method must be one of {', '.join(methods)}, got {method!r}")
    if not calibration:
        raise ConfigError("calibration needs at least one batch of training images")

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    path = Path(path)
    fused = fuse_bn(copy.deepcopy(model).float().eval())
    with tempfile.TemporaryDirectory() as tmp, atomic_path(path) as out:
        float_file, prepared = Path(tmp) / "float.onnx", Path(tmp) / "prepared.onnx"
        export_onnx(fused, float_file)
        quant_pre_process(str(float_file), str(prepared), skip_symbolic_shape=True)  # onnx's own inference suffices
        graph = onnx.load(str(prepared)).graph
        first = next((n.name for n in graph.node if n.op_type == "Conv"), None) if float_first_conv else None
        quantize_static(
            str(prepared),
            str(out),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,  # u8 activations x s8 weights: the VNNI instruction's operand types
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            nodes_to_exclude=[first] if first else None,
            reduce_range=reduce_range,
        )
        proto = onnx.load(str(out))
        meta = onnx_metadata(fused)
        weights = f"{'per-channel' if per_channel else 'per-tensor'} s8 weights{' in 7 bits' if reduce_range else ''}"
        meta["quantization"] = json.dumps(
            f"static int8 (ONNX Runtime QDQ, {weights}, u8 activations,"
            f" {method} ranges from {sum(len(b) for b in calibration)} training images)"
        )
        onnx.helper.set_model_props(proto, meta)
        onnx.save(proto, str(out))
    return OnnxModel(path)


def quantize_pt2e(model: nn.Module, calibration: list[np.ndarray]) -> nn.Module:
    """The same static int8 recipe in PyTorch: BatchNorm folded, ``torch.export`` with a dynamic batch, torchao's
    ``X86InductorQuantizer`` (per-channel weights), calibrated on ``calibration``. Eager, the result simulates int8
    (quantize/dequantize around float ops); ``torch.compile`` turns it into int8 kernels."""
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError:
        raise ConfigError("the PyTorch int8 path needs torchao: pip install 'zoo[int8]'") from None
    fused = fuse_bn(copy.deepcopy(model).float().eval())
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = torch.from_numpy(calibration[0])
    program = torch.export.export(fused, (example,), dynamic_shapes=({0: batch},)).module()
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(program, quantizer)
    with torch.no_grad():
        for batch_images in calibration:
            prepared(torch.from_numpy(batch_images))
    quantized = convert_pt2e(prepared)
    quantized.pretrained_cfg = dict(model.pretrained_cfg)
    quantized.num_classes = model.num_classes
    return quantized


def _json_or_text(value: str) -> Any:
    """A metadata value: zoo writes JSON; other exporters' free text stays text."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


class OnnxModel(nn.Module):
    """An ONNX file (float or int8) as a module: ``forward`` runs ONNX Runtime on CPU; ``pretrained_cfg`` comes
    from the file's metadata (written by `zoo.deploy.export_onnx` and `quantize`)."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        super().__init__()
        require_onnx()
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise WeightsError(f"ONNX file not found: {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types (Fail, InvalidGraph, ...) share no base class
            if type(exc).__module__.startswith("onnxruntime"):
                raise WeightsError(f"{self.path} is not an ONNX model ONNX Runtime can run: {exc}") from None
            raise
        meta = {k: _json_or_text(v) for k, v in self.session.get_modelmeta().custom_metadata_map.items()}
        self.num_classes = int(self.session.get_outputs()[0].shape[-1])
        input_size = tuple(meta.get("input_size", (3, 32, 32)))
        labels = meta.get("label_names")
        self.pretrained_cfg: dict[str, Any] = {
            "architecture": meta.get("architecture"),
            "input_size": input_size,
            "mean": tuple(meta.get("mean", (0.5,) * input_size[0])),
            "std": tuple(meta.get("std", (0.5,) * input_size[0])),
            "interpolation": meta.get("interpolation", "bilinear"),
            "num_classes": self.num_classes,
            "label_names": tuple(labels) if labels and len(labels) == self.num_classes else None,
            "file": str(self.path),
        }
        self.zoo_cfg = {
            "onnx": str(self.path),
            "sha256": file_sha256(self.path),
            "quantization": meta.get("quantization"),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"input": x.detach().float().cpu().contiguous().numpy()})
        return torch.from_numpy(logits).to(x.device)
