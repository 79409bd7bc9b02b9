"""In-place activations that copy their input: a training step with them in place vs out of place, side by side.

ReLU6, SiLU, Hardswish and Mish in place save a copy of their input for the backward pass (their gradient needs
the input the op overwrites; pytorch/pytorch#95432), so `zoo.layers.create_act` builds them out of place
(``COPIES_WHEN_INPLACE``). This script measures what that buys on the machine it runs on: SGD steps of each model
as zoo builds it, and of the same model with those activations switched back to in place, in interleaved rounds
(`_throughput.bare_loop_images_per_s`: the engine's precision policy and channels_last, random inputs).

    python benchmarks/inplace_act.py [--models mobilenetv2_x0_5 mobilenetv2_x1_0] [--batch-size 128] [--rounds 3]

Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

import torch
import torch.nn as nn
from _throughput import bare_loop_images_per_s, machine_line

import zoo
from zoo.engine import resolve_device, resolve_precision
from zoo.engine.device import precision_name
from zoo.layers.create import COPIES_WHEN_INPLACE


def build(name: str, inplace: bool) -> nn.Module:
    torch.manual_seed(0)
    model = zoo.create(name)
    for module in model.modules():
        if isinstance(module, COPIES_WHEN_INPLACE):
            module.inplace = inplace
    return model


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["mobilenetv2_x0_5", "mobilenetv2_x1_0"])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=4, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    unknown = [m for m in args.models if m not in zoo.list_models()]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; expected names from zoo.list_models()")

    dev = resolve_device(args.device)
    print(machine_line(dev))
    precision = precision_name(resolve_precision("auto", dev))
    print(f"batch {args.batch_size}, {precision}, median of {args.rounds} rounds of {args.steps} steps\n")
    print("| model | activations changed | in place img/s | out of place img/s | out of place / in place |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.models:
        changed = sum(isinstance(m, COPIES_WHEN_INPLACE) for m in build(name, False).modules())
        speeds: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for inplace in speeds:  # interleaved, so both see the same machine state
                model = build(name, inplace)
                speed = bare_loop_images_per_s(model, args.batch_size, steps=args.steps, device=str(dev))
                speeds[inplace].append(speed)
        before, after = (statistics.median(speeds[v]) for v in (True, False))
        print(f"| {name} | {changed} | {before:.1f} | {after:.1f} | {after / before:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
