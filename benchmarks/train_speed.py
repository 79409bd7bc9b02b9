"""Training speed, side by side in one run: the notebook's loop vs a conventional torchvision pipeline vs zoo's engine.

(a) notebook:     batch 4, DataLoader with 4 workers, ToTensor + Normalize(0.5), Adam 1e-4, fp32
(b) conventional: batch 256, DataLoader with 2 workers, RandomCrop(32, 4) + flip + ToTensor + Normalize, SGD, fp32
(c) zoo engine:   its defaults (whole split in memory, batched on-device augmentation, bf16 autocast where the
                  CPU has bf16 units, channels_last, malloc tuning)

(a) and (b) of every model run first, in the process as Python starts it; (c) of every model after the engine's
process setup (`configure_process`, as ``python -m zoo.train`` applies it), which cannot be undone in a process.

Prints images/s and the ratios c/a and c/b per model, the engine's achieved FLOP/s as a fraction of this
machine's matmul peak (measured here) in the precision the engine trains in (bf16 or fp32), and with
--time-to-accuracy the time the engine needs to reach the notebook loop's first-epoch test accuracy.

    python benchmarks/train_speed.py --data-dir DIR [--models modern_gap_cnn resnet20] [--time-to-accuracy]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torchvision.transforms as T
from _throughput import machine_line, train_flops_per_image
from torch.utils.data import DataLoader, Dataset

import zoo
from zoo.data import Split, load_cifar
from zoo.engine import Trainer, build_config, configure_process, evaluate, resolve_device, resolve_precision
from zoo.engine.device import precision_name


class PilCifar(Dataset):
    """What torchvision's CIFAR10 does per item: uint8 HWC array -> PIL image -> transforms."""

    def __init__(self, split: Split, transform: Callable) -> None:
        self.images = split.images.permute(0, 2, 3, 1).numpy()
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    """Achieved FLOP/s of a large square matmul: the practical peak of this CPU for ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


def loader_loop(
    model: nn.Module, loader: DataLoader, opt: torch.optim.Optimizer, images: int, warmup: int = 2
) -> float:
    """images/s of a plain DataLoader training loop (fp32), after ``warmup`` batches."""
    model.train()
    criterion = nn.CrossEntropyLoss()
    seen, start = 0, None
    for i, (x, y) in enumerate(itertools.chain.from_iterable(itertools.repeat(loader))):  # epochs until timed
        if i == warmup:
            start, seen = time.perf_counter(), 0
        loss = criterion(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
        if start is not None and seen >= images:
            break
    return seen / (time.perf_counter() - start)


def notebook_loader(train: Split, batch: int = 4, workers: int = 4) -> DataLoader:
    tf = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    return DataLoader(PilCifar(train, tf), batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=True)


def conventional_loader(train: Split, mean, std) -> DataLoader:
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    return DataLoader(PilCifar(train, tf), batch_size=256, shuffle=True, num_workers=2, persistent_workers=True)


def engine_trainer(name: str, data_dir: str, out: str, **overrides) -> Trainer:
    cfg = build_config(
        name,
        overrides={"data_dir": data_dir, "out": out, "progress": False, "plot": False, **overrides},
    )
    return Trainer(cfg, argv=["benchmarks/train_speed.py"])


def engine_speed(trainer: Trainer, images: int, warmup: int = 3) -> float:
    perm = torch.randperm(len(trainer.train_split))
    steps = max(1, images // trainer.cfg.batch_size)
    for i in range(warmup):
        trainer.train_step(*trainer.batch(perm, 0, i % trainer.steps_per_epoch))
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        trainer.train_step(*trainer.batch(perm, i // trainer.steps_per_epoch, i % trainer.steps_per_epoch))
    return steps * trainer.cfg.batch_size / (time.perf_counter() - start)


def two_loops(name: str, train: Split, images: int) -> tuple[float, float]:
    """images/s of (a) the notebook loop and (b) the conventional loop, training ``name``."""
    torch.manual_seed(0)
    model = zoo.create(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    a = loader_loop(model, notebook_loader(train), opt, images=min(images, 4000))
    info = zoo.model_info(name)
    model = zoo.create(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    b = loader_loop(model, conventional_loader(train, info.mean, info.std), opt, images=images)
    return a, b


def time_to_accuracy(name: str, data_dir: str, out: str, train: Split, test: Split) -> None:
    """Notebook loop for one epoch vs the engine's defaults until they reach the notebook's accuracy."""
    torch.manual_seed(0)
    model = zoo.create(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = notebook_loader(train)
    start = time.perf_counter()
    loader_loop(model, loader, opt, images=len(train), warmup=0)
    notebook_time = time.perf_counter() - start
    half = torch.tensor((0.5,) * 3)
    target = evaluate(model, test, mean=half, std=half, device=torch.device("cpu"), channels_last=False)["top1"]
    print(f"(a) notebook loop, 1 epoch: {target:.2f}% test top-1 in {notebook_time:.1f} s of training")

    every, eval_time, reached = 0, 0.0, {}

    def race(trainer: Trainer, epoch: int, step: int) -> None:  # evaluate 8 times per epoch, off the clock
        nonlocal eval_time
        if trainer.global_step % every:
            return
        start = time.perf_counter()
        acc = trainer.evaluate(test)["top1"]
        eval_time += time.perf_counter() - start
        if acc >= target:
            reached.update(acc=acc, steps=trainer.global_step)
            trainer.request_stop("target accuracy reached")

    trainer = engine_trainer(name, data_dir, out, run_name="time-to-accuracy")
    trainer.callbacks.append(race)
    every = max(1, trainer.steps_per_epoch // 8)
    trainer.fit()  # its stop line names a resumable run folder; this one is temporary and removed on return
    print("(the race's run folder is a temporary one: it is removed when the benchmark returns)")
    train_time = trainer.train_time - eval_time
    print(
        f"(c) zoo engine defaults: {reached.get('acc', float('nan')):.2f}% after {train_time:.1f} s of training "
        f"({reached.get('steps')} steps of {trainer.cfg.batch_size})"
    )
    print(f"time to the notebook's first-epoch accuracy: c/a = {train_time / notebook_time:.3f} (target <= 0.333)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models", nargs="+", default=["modern_gap_cnn", "resnet20"])
    parser.add_argument("--images", type=int, default=10240, help="images timed per pipeline")
    parser.add_argument("--matmul-size", type=int, default=2048, help="side of the square matmul that sets the peak")
    parser.add_argument("--time-to-accuracy", action="store_true", help="also run the time-to-accuracy race")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in zoo.list_models()]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; expected names from zoo.list_models()")

    train = load_cifar("cifar10", "train", args.data_dir, download=False)
    test = load_cifar("cifar10", "test", args.data_dir, download=False)
    engine_dtype = resolve_precision("auto", torch.device("cpu"))
    engine_precision = precision_name(engine_dtype)
    # the engine is measured against the matmul peak of the precision it trains in
    peak = matmul_peak(engine_dtype, n=args.matmul_size)
    print(machine_line())
    print(f"{engine_precision} matmul peak here ({args.matmul_size}^2): {peak / 1e12:.3f} TFLOP/s")

    # Every model's (a) and (b) first, in the process as Python starts it; then the engine's process setup, as
    # zoo.train applies it (threads, malloc kept from unmapping buffers), which no call can undo; then every (c).
    loops = {name: two_loops(name, train, args.images) for name in args.models}
    print(f"process setup for (c): {configure_process(resolve_device('auto'))}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-train-speed-") as out:  # the engine's run folders
        for name in args.models:
            (a, b), c = loops[name], engine_speed(engine_trainer(name, args.data_dir, out), args.images)
            flops = train_flops_per_image(zoo.create(name)) * c
            rows.append((name, a, b, c, flops))
            print(
                f"{name}: (a) {a:.0f} img/s  (b) {b:.0f} img/s  (c) {c:.0f} img/s  c/a {c / a:.2f}  c/b {c / b:.2f}  "
                f"engine {flops / 1e9:.0f} GFLOP/s = {100 * flops / peak:.1f}% of the {engine_precision} matmul peak",
                flush=True,
            )

    print(
        "\n| model | (a) notebook img/s | (b) conventional img/s | (c) zoo engine img/s | c/a | c/b | "
        f"engine GFLOP/s | % of {engine_precision} matmul peak |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, a, b, c, flops in rows:
        print(
            f"| {name} | {a:.0f} | {b:.0f} | {c:.0f} | {c / a:.2f} | {c / b:.2f} | {flops / 1e9:.0f} | "
            f"{100 * flops / peak:.1f} |"
        )
    if args.time_to_accuracy:
        print()
        with tempfile.TemporaryDirectory(prefix="zoo-train-speed-") as out:
            time_to_accuracy("modern_gap_cnn", args.data_dir, out, train, test)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
