"""The engine's ``--precision auto`` on this machine: fp32 vs bf16 training steps, side by side in one run.

``auto`` means bf16 autocast on CPUs with bf16 units (AVX512-BF16 or AMX) and fp32 elsewhere
(``zoo.engine.device.resolve_precision``). Without those units PyTorch still runs bf16, converting on every
op, so the choice matters in both directions. For each model this times SGD training steps (channels_last,
the engine's precision policy) in fp32 and in bf16, interleaved round by round so both see the same machine
state, and prints the bf16/fp32 ratio next to what ``auto`` picks here.

    python benchmarks/precision_policy.py [--models modern_gap_cnn resnet20 vgg11_bn] [--batch-size 128]

Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

import torch
from _throughput import bare_loop_images_per_s, machine_line

import zoo
from zoo.engine.device import cpu_supports_bf16, precision_name, resolve_precision

PRECISIONS = ("fp32", "bf16")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["modern_gap_cnn", "resnet20", "vgg11_bn"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="timed steps per precision and round")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    unknown = [m for m in args.models if m not in zoo.list_models()]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; expected names from zoo.list_models()")

    cpu = torch.device("cpu")
    auto = precision_name(resolve_precision("auto", cpu))
    units = "has bf16 units (AVX512-BF16 or AMX)" if cpu_supports_bf16() else "has no bf16 units"
    print(f"{machine_line()}, {units}; --precision auto picks {auto}")
    print(f"torch {torch.__version__}, batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps\n")
    print("| model | fp32 img/s | bf16 img/s | bf16 / fp32 | auto picks | auto / best |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        speeds: dict[str, list[float]] = {prec: [] for prec in PRECISIONS}
        for _ in range(args.rounds):
            for prec in PRECISIONS:
                torch.manual_seed(0)
                model = zoo.create(name)
                speeds[prec].append(
                    bare_loop_images_per_s(model, args.batch_size, steps=args.steps, device="cpu", precision=prec)
                )
        med = {prec: statistics.median(v) for prec, v in speeds.items()}
        print(
            f"| {name} | {med['fp32']:.1f} | {med['bf16']:.1f} | {med['bf16'] / med['fp32']:.2f} | {auto} "
            f"| {med[auto] / max(med.values()):.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
