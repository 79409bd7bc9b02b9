"""What loading weights costs with and without a random initialisation first, side by side.

    python benchmarks/create_speed.py [--models resnet56 vgg16_bn wrn28_10] [--repeats 5] [--threads 2]

For each model a fresh model's weights are written to a temporary file; then, in turn, ``--repeats`` times each:
``zoo.create(NAME, weights=FILE)`` as it is (the model is built on the meta device, checked against the file, and
the file's tensors become its own) and the same call with that shortcut turned off (built on the meta device and
checked, then built for real, every tensor initialised at random, and overwritten with the file's: what every load
did before). Prints the median of each, their ratio, and the machine. Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

import torch
from _throughput import machine_line

import zoo
from zoo import _factory


def create(name: str, path: Path) -> object:
    return zoo.create(name, weights=path)


def create_initialised_first(name: str, path: Path) -> object:
    """``zoo.create`` as it loaded before the shortcut: as if the file did not cover the model."""
    with mock.patch.object(_factory, "_covers", return_value=False):
        return zoo.create(name, weights=path)


WAYS: dict[str, Callable[[str, Path], object]] = {"skip": create, "init": create_initialised_first}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet56", "vgg16_bn", "wrn28_10"])
    p.add_argument("--repeats", type=int, default=5, help="timed calls of each way, alternating (default: 5)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if unknown := [m for m in args.models if not zoo.is_model(m)]:
        p.error(f"unknown model(s) {', '.join(unknown)}; expected names from zoo.list_models()")
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"{machine_line()}; median of {args.repeats} calls each, alternating\n")
    print("| model | params | create(weights=) ms | the same, initialised first ms | ratio |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="create-speed-") as tmp:
        for name in args.models:
            path = Path(tmp) / f"{name}.safetensors"
            zoo.save_weights(zoo.create(name), path)
            times: dict[str, list[float]] = {way: [] for way in WAYS}
            for _ in range(args.repeats + 1):  # the first round warms up
                for way, fn in WAYS.items():
                    start = time.perf_counter()
                    fn(name, path)
                    times[way].append(time.perf_counter() - start)
            skip, init = (statistics.median(t[1:]) * 1e3 for t in times.values())
            print(f"| {name} | {zoo.model_info(name).params:,} | {skip:.1f} | {init:.1f} | {skip / init:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
