"""Device and precision policy: pick the device, decide the autocast dtype, tune the process (explicitly).

Nothing here runs on import or as a side effect of building a trainer: `configure_process` (threads, glibc's
malloc, cuDNN autotuning) is one call that ``python -m zoo.train`` makes, and `apply_training_precision_policy`
is a step the trainer takes and logs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import sys
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import ConfigError, DeviceError
from .config import CHOICES

__all__ = [
    "Fp32Conv2d",
    "apply_training_precision_policy",
    "autocast",
    "configure_process",
    "cpu_identity",
    "cpu_supports_bf16",
    "fp32_strided_depthwise",
    "has_bf16_units",
    "is_strided_depthwise",
    "precision_name",
    "resolve_device",
    "resolve_precision",
    "tune_malloc",
]

_PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; a named device that is not there is an error, never a fallback."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; expected auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {spec!r} requested but CUDA is not available on this machine "
                "(use --device auto or --device cpu)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError(f"device {spec!r} requested but MPS is not available on this machine")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"unsupported device {spec!r}; expected auto, cpu, cuda, cuda:N or mps")
    return device


# The CPU features that decide which kernels train fastest here: bf16 and int8 dot products, vector width.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni", "amx_int8")
SPEED_FLAGS += ("sve", "bf16", "i8mm")  # aarch64


def cpu_identity(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, str]:
    """The CPU as /proc/cpuinfo names it: ``model`` (its model name), ``id`` (x86 family, model and stepping: a
    virtual machine often reports only "AMD EPYC", the same for Zen 1 and Zen 5) and ``flags`` (those of
    `SPEED_FLAGS` it has, in that order). Keys are absent where /proc/cpuinfo does not say (not Linux)."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return {}
    first: dict[str, str] = {}
    for key, _, value in (line.partition(":") for line in lines):
        first.setdefault(key.strip(), value.strip())
    out = {"model": first["model name"]} if first.get("model name") else {}
    if all(k in first for k in ("cpu family", "model", "stepping")):
        out["id"] = f"family {first['cpu family']} model {first['model']} stepping {first['stepping']}"
    flags = first.get("flags", first.get("Features"))  # x86, aarch64
    if flags is not None:
        out["flags"] = " ".join(f for f in SPEED_FLAGS if f in flags.split())
    return out


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 dot products (AVX512-BF16 or AMX), where bf16 autocast pays."""
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_identity().get("flags", "").split()))


def has_bf16_units(device: torch.device) -> bool:
    """True where bf16 matmuls run natively: a CPU per `cpu_supports_bf16`, a CUDA GPU of compute capability 8 or
    later (torch's own ``is_bf16_supported()`` also says yes where it can only emulate bf16, which is slow). MPS:
    True, untested (no Mac here), so torch's own choices stand there."""
    if device.type == "cpu":
        return cpu_supports_bf16()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "mps"


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None`` means plain fp32).

    ``auto``: bf16 on CPUs with bf16 hardware and on CUDA GPUs that support it, fp16 (with a grad
    scaler) on older CUDA GPUs, fp32 elsewhere.
    """
    if precision != "auto":
        if precision not in _PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(CHOICES['precision'])}, got {precision!r}")
        return _PRECISIONS[precision]
    if device.type == "cuda":
        return torch.bfloat16 if has_bf16_units(device) else torch.float16
    if device.type == "cpu" and has_bf16_units(device):
        return torch.bfloat16
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    """The ``--precision`` name of an autocast dtype from `resolve_precision` (``None`` is fp32)."""
    return next(name for name, value in _PRECISIONS.items() if value == dtype)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class Fp32Conv2d(nn.Conv2d):
    """An ``nn.Conv2d`` computed in fp32 even under autocast, its output in the input's dtype (so the layers
    after it see what autocast would give them); same parameters, same state-dict keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float()).to(x.dtype)


def is_strided_depthwise(module: nn.Module) -> bool:
    """A plain ``nn.Conv2d`` with one input channel per group and a stride above 1."""
    return (
        type(module) is nn.Conv2d
        and module.groups > 1
        and module.groups == module.in_channels
        and max(module.stride) > 1
    )


def fp32_strided_depthwise(model: nn.Module) -> int:
    """Compute ``model``'s strided depthwise convs in fp32 under autocast; return how many it converted.

    CPU policy for bf16 autocast: oneDNN has no bf16 depthwise kernel for the input gradient of a strided conv
    and falls back to a generic strided one (``ONEDNN_VERBOSE=1`` names it ``brgconv_strided``): on the
    development CPU (AVX512-BF16) that gradient took 20x the fp32 depthwise kernel's time, and forward +
    backward 4-24x; the rest of the net stays in bf16. ``benchmarks/depthwise_precision.py`` measures both on
    any machine. The modules change class in place (to `Fp32Conv2d`), so parameters, optimizer state and
    weight names are untouched.
    """
    convs = [m for m in model.modules() if is_strided_depthwise(m)]
    for m in convs:
        m.__class__ = Fp32Conv2d
    return len(convs)


def apply_training_precision_policy(model: nn.Module, device: torch.device, amp_dtype: torch.dtype | None) -> int:
    """The per-layer exceptions to autocast the engine trains with; returns how many layers compute in fp32.

    On CPU under bf16 autocast: `fp32_strided_depthwise`. Nothing elsewhere.
    """
    return fp32_strided_depthwise(model) if device.type == "cpu" and amp_dtype == torch.bfloat16 else 0


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def tune_malloc() -> bool:
    """Stop glibc from returning big activation buffers to the OS after every step (Linux only).

    By default glibc serves allocations above a (dynamic) threshold with fresh mmaps and unmaps them on free,
    so every training step page-faults its activations in again; on a 2-core CPU that cost about a third of
    the step time here. Serving them from the heap and never trimming it (``mallopt``) keeps them mapped.
    Returns whether the settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
        return ok and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):  # not glibc (musl) or no mallopt
        return False


def configure_process(device: torch.device, threads: int | None = None) -> dict[str, object]:
    """Tune this process for training on ``device``: ``threads`` CPU threads, glibc's malloc kept from unmapping
    activation buffers (CPU, `tune_malloc`), cuDNN autotuning for fixed shapes (CUDA). Process-wide, hence a call
    of its own; returns what it set."""
    if threads:
        torch.set_num_threads(threads)
    done: dict[str, object] = {"threads": torch.get_num_threads()}
    if device.type == "cpu":
        done["malloc_tuned"] = tune_malloc()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        done["cudnn_benchmark"] = True
    return done
