"""CPU images/s of every registered model, for the speed columns of docs/models.md.

    python benchmarks/model_speed.py [--models NAME ...] [--seconds 3] [--json docs/data/model_speed.json]

Two numbers per model, both on random 32x32 inputs through the engine's device and precision policy
(channels_last, bf16 autocast on CPUs with bf16 units):

- inference: eval-mode forward passes at batch 256 with BatchNorm folded into the convs (the deployment path
  of docs/deploy.md), median batch time;
- training: SGD steps (forward, loss, backward, update) at the batch size of the model's own recipe, the
  throughput a bare loop gets, which bounds what ``python -m zoo.train NAME`` can reach.

With ``--models`` only those entries of an existing ``--json`` file are measured again; the file keeps one
machine, so adding to a file measured on another CPU, thread count or torch version is refused.
Then regenerate the page: ``python tools/gen_docs.py``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from _throughput import bare_loop_images_per_s, inference_images_per_s, machine_line

import zoo
from zoo.engine import resolve_device, tune_malloc
from zoo.engine.run import machine_info

_SAME_MACHINE = ("cpu", "cpu_id", "threads", "torch")


def measure(name: str, seconds: float) -> dict[str, Any]:
    """The speed entry for one registered model."""
    batch_size = int(zoo.model_info(name).recipe.get("batch_size", 128))
    torch.manual_seed(0)
    infer = inference_images_per_s(zoo.create(name), 256, seconds=seconds, device="cpu")
    train = bare_loop_images_per_s(zoo.create(name), batch_size, steps=3, warmup=2, seconds=seconds, device="cpu")
    return {
        "infer_images_per_s": round(infer, 1),
        "train_images_per_s": round(train, 1),
        "train_batch_size": batch_size,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="default: every built-in model")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing budget per number")
    parser.add_argument("--json", type=Path, default=None, help="write (or update) this results file")
    args = parser.parse_args(argv)

    tune_malloc()  # as the engine does: without it glibc re-faults activation buffers every step
    machine = machine_info(resolve_device("cpu"))
    data: dict[str, Any] = {"machine": machine, "models": {}}
    if args.json is not None and args.json.is_file() and args.models is not None:
        data = json.loads(args.json.read_text())
        mismatch = {
            k: (data["machine"].get(k), machine[k]) for k in _SAME_MACHINE if data["machine"].get(k) != machine[k]
        }
        if mismatch:
            print(f"{args.json} was measured on another machine {mismatch}; measure every model again", file=sys.stderr)
            return 2
    names = args.models or zoo.list_models(source="zoo")
    unknown = [n for n in names if not zoo.is_model(n)]
    if unknown:
        print(f"unknown model(s) {unknown}; expected names from python -m zoo.list", file=sys.stderr)
        return 2

    print(machine_line(machine=machine))
    print("| model | inference img/s (batch 256) | training img/s (batch) |")
    print("| --- | --- | --- |")
    for name in names:
        entry = measure(name, args.seconds)
        data["models"][name] = entry
        infer, train, batch = entry["infer_images_per_s"], entry["train_images_per_s"], entry["train_batch_size"]
        print(f"| {name} | {infer:.0f} | {train:.0f} ({batch}) |", flush=True)
    data["date"] = datetime.date.today().isoformat()
    data["models"] = dict(sorted(data["models"].items()))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=args.json.parent, delete=False, suffix=".tmp") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(f.name, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
