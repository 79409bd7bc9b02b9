"""What loading weights costs: ``zoo.create(NAME, weights=FILE)`` against initialising the model, then loading.

    python benchmarks/create_speed.py [--models resnet56 vgg16_bn wrn28_10] [--repeats 5] [--threads 2]

For each model a fresh model's weights are written to a temporary file; then, in turn, ``--repeats`` times each:
``zoo.create(NAME, weights=FILE)`` (built on the meta device; the file's tensors become the model's, with no random
initialisation) and ``zoo.load_weights(zoo.create(NAME), FILE)`` (every tensor initialised, then overwritten).
Prints the median of each, their ratio, and the machine. Run it with nothing else on the cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from _throughput import machine_line

import zoo


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
    print("| model | params | create(weights=) ms | create() + load_weights ms | ratio |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="create-speed-") as tmp:
        for name in args.models:
            path = Path(tmp) / f"{name}.safetensors"
            zoo.save_weights(zoo.create(name), path)
            ways: dict[str, Callable[[], object]] = {
                "meta": lambda: zoo.create(name, weights=path),  # noqa: B023 - called in this iteration only
                "init": lambda: zoo.load_weights(zoo.create(name), path),  # noqa: B023
            }
            times: dict[str, list[float]] = {way: [] for way in ways}
            for _ in range(args.repeats + 1):  # the first round warms up
                for way, fn in ways.items():
                    start = time.perf_counter()
                    fn()
                    times[way].append(time.perf_counter() - start)
            meta, init = (statistics.median(t[1:]) * 1e3 for t in times.values())
            print(f"| {name} | {zoo.model_info(name).params:,} | {meta:.1f} | {init:.1f} | {meta / init:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
