"""What ``--compile`` buys a training run on this machine: eager vs ``torch.compile`` SGD steps, side by side.

For each model this builds two identical setups (`_throughput.training_step`: the engine's device,
precision and channels_last policy; one with the model wrapped in ``torch.compile`` as ``--compile`` does),
times the first compiled step (the compilation a run pays once), then times both in interleaved rounds so
they see the same machine state. ``compiled / eager`` above 1 means ``--compile`` trains faster; the
break-even column is how many CIFAR-10 epochs a run needs to win the compilation back. Inductor compiles into
a fresh cache folder, as a first run does (``--warm-cache`` keeps the user's, as later runs of a model do).

    python benchmarks/compile_speed.py [--models modern_gap_cnn resnet20 vgg11_bn] [--batch-size 128]

Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Sequence
from unittest import mock

import torch
from _throughput import machine_line, time_calls, training_step

import zoo
from zoo.engine.device import precision_name, resolve_device, resolve_precision

TRAIN_IMAGES = 50_000  # CIFAR-10's training split: one epoch, for the break-even column


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["modern_gap_cnn", "resnet20", "vgg11_bn"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default: auto)")
    p.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | fp16 (default: auto, as the engine)")
    p.add_argument("--backend", default="inductor", help="torch.compile backend (default: inductor, as --compile)")
    p.add_argument("--warm-cache", action="store_true", help="compile with inductor's usual cache folder")
    args = p.parse_args(argv)
    unknown = [m for m in args.models if m not in zoo.list_models()]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; expected names from zoo.list_models()")
    if args.warm_cache:
        return run(args)
    with (
        tempfile.TemporaryDirectory(prefix="inductor-cache-") as cache,
        mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache}),
    ):
        return run(args)


def run(args: argparse.Namespace) -> int:
    dev = resolve_device(args.device)
    prec = precision_name(resolve_precision(args.precision, dev))
    print(f"{machine_line(dev)}, precision {prec}")
    cache = "warm cache" if args.warm_cache else "fresh cache"
    print(f"batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps, backend {args.backend} ({cache})\n")
    print("| model | eager img/s | compiled img/s | compiled / eager | first compiled step s | break-even epochs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        torch._dynamo.reset()  # each model compiles from scratch, as in a fresh run
        steps = {}
        for variant in ("eager", "compiled"):
            torch.manual_seed(0)
            steps[variant], _ = training_step(
                zoo.create(name),
                args.batch_size,
                device=args.device,
                precision=args.precision,
                compile=args.backend if variant == "compiled" else None,
            )
        first = time_calls(steps["compiled"], dev, steps=1, warmup=0)[0]  # compiles
        speeds: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(args.rounds):
            for variant, step in steps.items():
                times = time_calls(step, dev, args.steps, warmup=1)
                speeds[variant].append(len(times) * args.batch_size / sum(times))
        eager, compiled = (statistics.median(speeds[v]) for v in ("eager", "compiled"))
        # a run pays the compilation once and then saves (1/eager - 1/compiled) seconds per image
        saved_per_epoch = TRAIN_IMAGES * (1 / eager - 1 / compiled)
        extra = first - args.batch_size / compiled
        even = f"{extra / saved_per_epoch:.2f}" if saved_per_epoch > 0 else "never"
        print(f"| {name} | {eager:.1f} | {compiled:.1f} | {compiled / eager:.2f} | {first:.1f} | {even} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
