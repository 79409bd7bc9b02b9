"""What a teacher costs a training step (``python -m zoo.train STUDENT --teacher TEACHER``), side by side in one run.

Times SGD steps of a fresh student (`zoo.engine.throughput.bare_loop_images_per_s`: the engine's device,
``--precision auto`` and channels_last) alone and with a frozen teacher built the way the engine builds it
(`zoo.engine.load_teacher`: eval mode, BatchNorm folded, no gradients) plus the distillation loss, in
interleaved rounds so both see the same machine state. Random inputs: data loading is the same for both and
left out.

    python benchmarks/distill_overhead.py [--student resnet20] [--teacher resnet56.cifar10] [--batch-size 128]
                                          [--compile]    # both compiled, as ``zoo.train --compile`` does

Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

import torch
from _throughput import bare_loop_images_per_s, machine_line

import zoo
from zoo.engine import load_teacher, resolve_device, resolve_precision
from zoo.engine.device import precision_name


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", default="resnet20")
    p.add_argument("--teacher", default="resnet56.cifar10", help="NAME.TAG of published weights or a zoo file")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile student and teacher, as --compile does")
    args = p.parse_args(argv)

    dev = resolve_device(args.device)
    info = zoo.model_info(args.student)
    teacher = load_teacher(
        args.teacher,
        num_classes=info.num_classes,
        student_mean=torch.tensor(info.mean),
        student_std=torch.tensor(info.std),
        device=dev,
        memory_format=torch.channels_last,
    )
    variants = {"student alone": None, f"student + teacher {args.teacher}": teacher}
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, with_teacher in variants.items():
            torch.manual_seed(0)
            speed = bare_loop_images_per_s(
                zoo.create(args.student),
                args.batch_size,
                steps=args.steps,
                device=args.device,
                teacher=with_teacher,
                compile="inductor" if args.compile else None,
            )
            speeds[name].append(speed)

    precision = precision_name(resolve_precision("auto", dev))
    mode = "compiled" if args.compile else "eager"
    print(machine_line(dev))
    print(f"{args.student}, batch {args.batch_size}, {dev}, {precision}, {mode}")
    print(f"median of {args.rounds} rounds of {args.steps} steps\n")
    print("| step | img/s | time / student alone |")
    print("| --- | --- | --- |")
    base = statistics.median(speeds["student alone"])
    for name, values in speeds.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {base / med:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
