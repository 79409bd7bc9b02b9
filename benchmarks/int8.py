"""int8 against float on this CPU, side by side in one run, for every shipped weight:

    fp32 eager | BN-fused fp32 | fp32 ONNX Runtime (the fused model exported) | int8 (ONNX Runtime static QDQ,
    zoo.int8.quantize)

images/s at batch 1 and batch 256 (median call, same thread count for PyTorch and ONNX Runtime; PyTorch in
channels_last, its faster CPU layout) and top-1 on the
full test split, with the ratios int8 / fused fp32 (the issue's comparison) and int8 / fp32 ONNX Runtime (what
int8 itself buys in the same runtime), and the CPU's int8 dot-product units (VNNI, AMX). ``--reduce-range`` adds
int8 with 7-bit weights (`quantize`'s ``reduce_range``), for CPUs without VNNI.
Calibration uses the first ``--calibration-images`` training images, never test images.

    python benchmarks/int8.py --data-dir DIR [--models NAME.TAG ...] [--seconds 2] [--reduce-range] [--json FILE]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _throughput import machine_line, time_calls

import zoo
from zoo.data import load_cifar
from zoo.deploy import export_onnx
from zoo.engine.run import machine_info
from zoo.eval import evaluate_model
from zoo.int8 import OnnxModel, calibration_batches, quantize


def int8_units(machine: dict[str, Any]) -> str:
    """The CPU's int8 dot-product extensions, from a `machine_info` record's flags."""
    flags = machine.get("cpu_flags")
    if flags is None:
        return "unknown"
    found = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8") if f in flags.split()]
    return ", ".join(found) or "none (no VNNI)"


def speed(model: torch.nn.Module, batch: int, seconds: float) -> float:
    x = torch.randn(batch, 3, 32, 32)
    if any(True for _ in model.parameters()):  # PyTorch: channels_last, the layout oneDNN's CPU convolutions prefer
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        return batch / statistics.median(time_calls(lambda: model(x), torch.device("cpu"), seconds=seconds))


def measure(name_tag: str, train: Any, test: Any, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    eager = zoo.create(name_tag).eval()
    fused = zoo.fuse_bn(copy.deepcopy(eager))
    batches = calibration_batches(eager, train, images=args.calibration_images)
    int8 = quantize(eager, batches, folder / f"{name_tag}.int8.onnx")
    onnx_fp32 = OnnxModel(export_onnx(fused, folder / f"{name_tag}.fp32.onnx"))
    row: dict[str, Any] = {}
    variants = [("fp32 eager", eager), ("fused fp32", fused), ("fp32 onnxruntime", onnx_fp32), ("int8", int8)]
    if args.reduce_range:
        variants.append(("int8 7-bit", quantize(eager, batches, folder / f"{name_tag}.int8r.onnx", reduce_range=True)))
    for variant, model in variants:
        scored = variant not in ("fused fp32", "fp32 onnxruntime")  # the same function as fp32 eager
        row[variant] = {
            "batch1_images_per_s": speed(model, 1, args.seconds),
            "batch256_images_per_s": speed(model, 256, args.seconds),
            "top1": evaluate_model(model, test, batch_size=500)["top1"] if scored else None,
        }
    return row


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="CIFAR-10 in an official layout (never downloaded)")
    p.add_argument("--models", nargs="+", default=None, help="NAME.TAG of shipped weights (default: all of them)")
    p.add_argument("--seconds", type=float, default=2.0, help="timing budget per measurement")
    p.add_argument("--calibration-images", type=int, default=512)
    p.add_argument("--limit-test", type=int, default=None, help="evaluate on the first N test images (smoke runs)")
    p.add_argument("--reduce-range", action="store_true", help="also int8 with 7-bit weights (quantize's reduce_range)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    names = args.models or zoo.list_models(pretrained=True)
    unknown = [n for n in names if not zoo.is_model(n) or "." not in n]
    if unknown:
        print(f"not shipped weights (NAME.TAG): {', '.join(unknown)}", file=sys.stderr)
        return 2
    train = load_cifar("cifar10", "train", args.data_dir, download=False)
    test = load_cifar("cifar10", "test", args.data_dir, download=False)
    if args.limit_test:
        test = test.subset(slice(args.limit_test))
    machine = machine_info(torch.device("cpu"))
    machine["int8_units"] = int8_units(machine)
    print(f"{machine_line(machine=machine)}, int8 units: {machine['int8_units']}")
    print("| weights | variant | batch-1 img/s | batch-256 img/s | top-1 % |")
    print("| --- | --- | --- | --- | --- |")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            row = results[name] = measure(name, train, test, args, Path(tmp))
            for variant, r in row.items():
                top1 = "-" if r["top1"] is None else f"{r['top1']:.2f}"
                rates = f"{r['batch1_images_per_s']:,.0f} | {r['batch256_images_per_s']:,.0f}"
                print(f"| {name} | {variant} | {rates} | {top1} |", flush=True)
    print(
        "\n| weights | variant | int8 / fused fp32, batch 1 | int8 / fused fp32, batch 256 "
        "| int8 / fp32 onnxruntime, batch 256 | top-1 int8 - fp32 |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, row in results.items():
        rate = {v: (r["batch1_images_per_s"], r["batch256_images_per_s"]) for v, r in row.items()}
        for variant in (v for v in row if v.startswith("int8")):  # 8-bit, and 7-bit with --reduce-range
            b1, b256 = rate[variant][0] / rate["fused fp32"][0], rate[variant][1] / rate["fused fp32"][1]
            own = rate[variant][1] / rate["fp32 onnxruntime"][1]
            drop = row[variant]["top1"] - row["fp32 eager"]["top1"]
            print(f"| {name} | {variant} | {b1:.2f} | {b256:.2f} | {own:.2f} | {drop:+.2f} |")
    if args.json:
        date = datetime.date.today().isoformat()
        args.json.write_text(
            json.dumps({"machine": machine, "date": date, "test_images": len(test), "models": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
