"""What a teacher costs a training step (``python -m zoo.train STUDENT --teacher TEACHER``), side by side in one run.

Times the engine's step (SGD, channels_last, ``--precision auto``) for the student alone and for the student
plus a frozen teacher built the way the engine builds it (`zoo.engine.load_teacher`: eval mode, BatchNorm
folded, no gradients) with the distillation loss, in interleaved rounds so both see the same machine state.
Random inputs: data loading is the same for both and left out.

    python benchmarks/distill_overhead.py [--student resnet20] [--teacher resnet56.cifar10] [--batch-size 128]

Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

import zoo
from zoo.engine import autocast, distillation_loss, load_teacher, resolve_device, resolve_precision
from zoo.engine.device import apply_training_precision_policy
from zoo.engine.throughput import time_calls


def training_step(
    student: nn.Module, teacher: nn.Module | None, batch_size: int, dev: torch.device, amp: torch.dtype | None
) -> Callable[[], None]:
    """One SGD step of ``student`` on a fixed random batch, with the distillation term when ``teacher`` is set."""
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch_size, 3, 32, 32, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,), device=dev)

    def step() -> None:
        with autocast(dev, amp):
            logits = student(x).float()
            loss = nn.functional.cross_entropy(logits, y)
            if teacher is not None:
                loss = 0.5 * loss + 0.5 * distillation_loss(logits, teacher(x).float(), 4.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", default="resnet20")
    p.add_argument("--teacher", default="resnet56.cifar10", help="NAME.TAG of published weights or a zoo file")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)

    dev = resolve_device(args.device)
    amp = resolve_precision("auto", dev)
    student = zoo.create(args.student).to(dev, memory_format=torch.channels_last).train()
    apply_training_precision_policy(student, dev, amp)
    cfg = student.pretrained_cfg
    teacher = load_teacher(
        args.teacher,
        num_classes=student.num_classes,
        student_mean=torch.tensor(cfg["mean"]),
        student_std=torch.tensor(cfg["std"]),
        device=dev,
        memory_format=torch.channels_last,
    )
    steps = {
        "student alone": training_step(student, None, args.batch_size, dev, amp),
        f"student + teacher {args.teacher}": training_step(student, teacher, args.batch_size, dev, amp),
    }
    speeds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times = time_calls(step, dev, args.steps, 2, 0.0)
            speeds[name].append(len(times) * args.batch_size / sum(times))

    precision = "fp32" if amp is None else str(amp).removeprefix("torch.")
    print(f"{args.student}, batch {args.batch_size}, {dev}, {precision}, {torch.get_num_threads()} threads")
    print(f"median of {args.rounds} rounds of {args.steps} steps\n")
    print("| step | img/s | time / student alone |")
    print("| --- | --- | --- |")
    base = statistics.median(next(iter(speeds.values())))
    for name, values in speeds.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {base / med:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
