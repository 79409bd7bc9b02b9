"""Train the zoo's missing and below-target weights in one batch on one large GPU, ready to fire when one is lent.

    python benchmarks/train_zoo.py --device cuda --data-dir DIR [--models NAME ...] [--jobs 8] [--stage both]

Every row is ``python -m zoo.train`` with the model's registry recipe and the overrides in `PLAN` (the same engine,
whole data set in GPU memory), several processes at once (small CIFAR nets leave a large GPU launch-bound, so
concurrent runs fill it). ``--stage val`` trains on 45,000 images with 5,000 held out (the protocol's choice of
recipe), ``final`` on all 50,000 (what ships), ``both`` runs val then final. Run folders land in
``OUT/NAME-STAGE`` where ``python tools/publish.py OUT/NAME-final --tag cifar10 --data-dir DIR`` ships them.
The epoch counts are sized for about 10 minutes on one H200 with all rows side by side (a guess from resnet20's
7,900 img/s there, next to other runs; not measured for the batch as a whole). On a CPU, ``--epochs 1
--limit-train N`` makes a smoke run of the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zoo

# model -> (extra zoo.train flags, target top-1 on the offline JPEG copy: best published clean numbers - 3.5)
PLAN: dict[str, tuple[list[str], float]] = {
    "resnet20": (["--epochs", "200", "--label-smoothing", "0.1"], 89.5),
    "resnet32": (["--epochs", "200", "--label-smoothing", "0.1"], 90.0),
    "resnet44": (["--epochs", "200", "--label-smoothing", "0.1"], 90.5),
    "resnet56": (["--epochs", "200", "--label-smoothing", "0.1"], 91.0),
    "resnet110": (["--epochs", "160", "--label-smoothing", "0.1"], 90.0),
    "mobilenetv2_x1_0": (["--epochs", "150", "--cutout", "16"], 90.5),
    "mobilenetv2_x1_4": (["--epochs", "150", "--cutout", "16"], 91.0),
    "vgg11_bn": (["--epochs", "120", "--cutout", "16"], 90.0),
    "vgg13_bn": (["--epochs", "100", "--cutout", "16"], 91.0),
    "vgg16_bn": (["--epochs", "100", "--cutout", "16"], 91.0),
    "vgg19_bn": (["--epochs", "100", "--cutout", "16"], 90.5),
    "resnet18": (["--epochs", "60", "--cutout", "16"], 91.5),
    "preact_resnet18": (["--epochs", "60", "--cutout", "16"], 91.5),
    "wrn16_4": (["--epochs", "80", "--cutout", "16"], 91.5),
    "wrn28_10": (["--epochs", "20"], 92.0),
    "airbench94_net": (["--recipe", "fast", "--epochs", "15", "--warmup-epochs", "3.45"], 90.5),  # val-chosen (card)
}


def command(name: str, stage: str, args: argparse.Namespace) -> list[str]:
    run_dir = args.out / f"{name}-{stage}"
    if (run_dir / "checkpoint.safetensors").is_file():  # a stopped batch: continue each row where it was
        return [sys.executable, "-m", "zoo.train", "--resume", str(run_dir), "--device", args.device]
    flags, _ = PLAN[name]
    cmd = [
        sys.executable,
        "-m",
        "zoo.train",
        name,
        *flags,
        "--device",
        args.device,
        "--out",
        str(args.out),
        "--name",
        f"{name}-{stage}",
        "--no-progress",
        "--no-plot",
        "--seed",
        str(args.seed),
    ]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir, "--no-download"]
    if stage == "val":
        cmd += ["--val-split", str(args.val_split)]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]  # a later flag wins: smoke runs
    if args.limit_train:
        cmd += ["--limit-train", str(args.limit_train), "--batch-size", "16", "--eval-batch-size", "64"]
    return cmd


def run(name: str, stage: str, args: argparse.Namespace) -> dict[str, object]:
    cmd = command(name, stage, args)
    log = args.out / f"{name}-{stage}.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    row: dict[str, object] = {
        "model": name,
        "stage": stage,
        "exit": code.returncode,
        "seconds": time.perf_counter() - start,
    }
    run_json = args.out / f"{name}-{stage}" / "run.json"
    if run_json.is_file():
        row.update(json.loads(run_json.read_text()).get("result") or {})
    return row


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--data-dir", default=None)
    p.add_argument(
        "--models", nargs="+", default=None, help="default: every row of PLAN without weights or below target"
    )
    p.add_argument("--stage", choices=["val", "final", "both"], default="both")
    p.add_argument("--jobs", type=int, default=8, help="training processes at once")
    p.add_argument("--out", type=Path, default=Path("runs/gpu"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-split", type=int, default=5000, help="training images the val stage holds out")
    p.add_argument("--epochs", type=int, default=None, help="override every row's epochs (smoke runs)")
    p.add_argument("--limit-train", type=int, default=None, help="train on N images, batch 16 (smoke runs)")
    args = p.parse_args(argv)
    names = args.models or [n for n, (_, target) in PLAN.items() if _below(n, target)]
    unknown = [n for n in names if n not in PLAN]
    if unknown:
        print(f"not in PLAN: {', '.join(unknown)}; known: {', '.join(PLAN)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    stages = ["val", "final"] if args.stage == "both" else [args.stage]
    rows = []
    for stage in stages:
        with ThreadPoolExecutor(args.jobs) as pool:
            rows += list(pool.map(lambda n, s=stage: run(n, s, args), names))
    print("| model | stage | exit | seconds | val top-1 | test top-1 | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else "-"  # noqa: E731
        print(
            f"| {r['model']} | {r['stage']} | {r['exit']} | {r['seconds']:.0f} | {fmt(r.get('val_top1'))} | "
            f"{fmt(r.get('test_top1'))} | {PLAN[r['model']][1]} |"
        )
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["exit"] == 0 for r in rows) else 1


def _below(name: str, target: float) -> bool:
    """No shipped weights yet, or the best shipped top-1 below ``target``."""
    top1 = [spec.metrics.get("top1", 0.0) for spec in zoo.model_info(name).weights.values()]
    return not top1 or max(top1) < target


if __name__ == "__main__":
    raise SystemExit(main())
