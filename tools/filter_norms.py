"""How far a run's conv filters grew: each trainable filter bank's mean filter norm at the end against at init.

    python tools/filter_norms.py RUN [RUN ...]

RUN is a run folder (its ``last.safetensors``) or a zoo weight file. With BatchNorm after a conv the filters' scale
is free, so a step of fixed size turns a filter by about step / |w| radians: Muon's orthogonalised update is about
1 per filter times the learning rate, so as |w| grows the same learning rate turns the filters less and less.
airbench94_muon rescales each bank to norm sqrt(out channels) before every step (``--muon-normalize``), which
holds the mean filter norm at 1; ``fastest`` does since 2026-12-05 (before, at lr 0.4, it did not). The init is a
fresh model of the file's architecture built after ``torch.manual_seed(seed)`` (the header's seed, else 0): the
engine's own init may differ in its draws, not in its scale. A bank the engine sets from data (airbench94_net's
whitening stem) shows that init's scale, not what training did.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

import zoo
from zoo._cli import run as run_cli
from zoo.engine.optim import conv_filters
from zoo.errors import WeightsError
from zoo.weights import read_weights


def filter_norms(location: str | Path) -> list[tuple[str, tuple[int, ...], float, float]]:
    """``(name, shape, mean filter norm at init, at the end)`` for each trainable conv filter bank of a weight
    file (a run folder: its ``last.safetensors``)."""
    path = Path(location)
    path = path / "last.safetensors" if path.is_dir() else path
    tensors, meta = read_weights(path)
    if not meta.get("architecture"):
        raise WeightsError(f"{path} names no architecture (a weights-only file?): expected a zoo run's weights")
    torch.manual_seed(int(meta.get("seed", 0)))
    init = zoo.create(meta["architecture"], **meta.get("model_kwargs", {}))
    banks = {id(p) for p in conv_filters(init)}
    return [
        (name, tuple(p.shape), _mean_norm(p.detach()), _mean_norm(tensors[name]))
        for name, p in init.named_parameters()
        if id(p) in banks
    ]


def _mean_norm(weight: torch.Tensor) -> float:
    return weight.float().flatten(1).norm(dim=1).mean().item()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="a run folder or a zoo weight file")
    args = parser.parse_args(argv)

    def body() -> int:
        for run in args.runs:
            rows = filter_norms(run)  # before printing: a bad file leaves no half table
            print(f"{run}\n| filter bank | shape | mean filter norm: init | end | end / init |")
            print("| --- | --- | --- | --- | --- |")
            for name, shape, start, end in rows:
                print(f"| {name} | {'x'.join(map(str, shape))} | {start:.2f} | {end:.2f} | {end / start:.1f} |")
        return 0

    return run_cli("filter_norms", body)


if __name__ == "__main__":
    sys.exit(main())
