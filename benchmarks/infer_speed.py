"""Inference speed on this CPU, side by side in one run: batch-1 latency and batch-256 throughput of

    eager fp32 | BN-fused fp32 | fused + channels_last + bf16 autocast | torch.compile of the fastest

for modern_gap_cnn, resnet20, resnet56 and resnet9, with ratios to eager fp32.

    python benchmarks/infer_speed.py [--models ...] [--seconds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics

import torch
from _throughput import machine_line, time_calls

import zoo
from zoo.engine import cpu_supports_bf16


def measure(model: torch.nn.Module, channels_last: bool, bf16: bool, seconds: float) -> tuple[float, float]:
    """(batch-1 median latency in ms, batch-256 images/s)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x1 = torch.randn(1, 3, 32, 32).to(memory_format=fmt)
    x256 = torch.randn(256, 3, 32, 32).to(memory_format=fmt)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        latency = statistics.median(time_calls(lambda: model(x1), torch.device("cpu"), seconds=seconds)) * 1e3
        throughput = 256 / statistics.median(time_calls(lambda: model(x256), torch.device("cpu"), seconds=seconds))
    return latency, throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["modern_gap_cnn", "resnet20", "resnet56", "resnet9"])
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per measurement")
    args = parser.parse_args()
    bf16 = cpu_supports_bf16()
    print(f"{machine_line()}, CPU bf16 units: {bf16}")
    print("| model | variant | batch-1 latency (ms) | x eager | batch-256 img/s | x eager |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        torch.manual_seed(0)
        eager = zoo.create(name).eval()
        with torch.no_grad():  # realistic BN statistics
            eager.train()(torch.randn(64, 3, 32, 32))
        eager.eval()
        fused = zoo.fuse_bn(copy.deepcopy(eager))
        results = {
            "eager fp32": measure(eager, False, False, args.seconds),
            "fused fp32": measure(fused, False, False, args.seconds),
            "fused + channels_last + bf16": measure(fused, True, True, args.seconds),
        }
        best = max(results, key=lambda k: results[k][1])
        compiled = torch.compile(copy.deepcopy(fused))
        results[f"torch.compile({best})"] = measure(compiled, "channels_last" in best, "bf16" in best, args.seconds)
        base_lat, base_tp = results["eager fp32"]
        for variant, (lat, tp) in results.items():
            print(
                f"| {name} | {variant} | {lat:.2f} | {base_lat / lat:.2f} | {tp:.0f} | {tp / base_tp:.2f} |", flush=True
            )


if __name__ == "__main__":
    main()
