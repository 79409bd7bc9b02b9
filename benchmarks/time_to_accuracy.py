"""Time to accuracy of `python -m zoo.train MODEL --recipe fast`, over several seeds, through the generic engine.

    python benchmarks/time_to_accuracy.py --data-dir DIR [--model airbench94_net] [--recipe fast] [--seeds 0 1 2]
        [--set KEY=VALUE ...] [--label NAME] [--out runs/time-to-accuracy] [--json FILE]

Every seed is a full training run on the 50,000 training images, evaluated on the 10,000 test images (with the
recipe's test-time augmentation when it has one). Prints, per seed and as mean ± standard deviation: test top-1,
training wall time (the engine's clock: training steps only, not the per-epoch evaluations), images/s, and the
achieved FLOP/s as a fraction of this machine's bf16 matmul peak, measured in the same script. It also times a
plain loop (same model, batch, precision and memory format, no engine) for a few steps, so the engine's overhead
is measured side by side. Runs go to ``--out/LABEL-seedN``: a stopped benchmark resumes where it was, and a
finished seed is not run again. ``--set`` switches a technique off for an ablation, e.g. ``--set lookahead=false``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch
from _throughput import bare_loop_images_per_s
from train_speed import matmul_peak, train_flops_per_image

import zoo
from zoo.engine import RECIPES, Trainer, build_config


def parse_set(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are JSON (``false``, ``0.5``, ``"random"``) or else plain strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out


def run_seed(args: argparse.Namespace, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    run_dir = Path(args.out) / f"{args.label}-seed{seed}"
    run_json = run_dir / "run.json"
    if run_json.is_file() and "result" in json.loads(run_json.read_text()):
        print(f"seed {seed}: finished earlier in {run_dir}", flush=True)
    else:
        if (run_dir / "checkpoint.safetensors").is_file():
            trainer = Trainer.resume(run_dir)
        else:
            cfg = build_config(
                args.model,
                recipe=args.recipe,
                overrides={"data_dir": args.data_dir, "seed": seed, "progress": False, "plot": False, **overrides},
            )
            argv = ["python", "-m", "zoo.train", args.model, "--recipe", args.recipe, "--seed", str(seed)]
            for key, value in overrides.items():
                argv += [f"--{key.replace('_', '-')}", json.dumps(value) if not isinstance(value, str) else value]
            trainer = Trainer(cfg, run_dir=run_dir, argv=argv, recipe=args.recipe)
        if trainer.fit()["status"] != "finished":
            raise SystemExit(f"seed {seed} was interrupted; run the benchmark again to resume it")
    meta = json.loads(run_json.read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    result = meta["result"]
    return {
        "seed": seed,
        "top1": result["test_top1"],
        "top1_tta": result.get("test_top1_tta"),
        "tta_level": result.get("tta_level", 0),
        "train_time_s": result["train_time_s"],
        "images_per_s": statistics.fmean(r["images_per_s"] for r in rows),
        "epochs": result["epochs"],
        "run_dir": str(run_dir),
        "machine": meta["machine"],
    }


def _stats(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    return f"{mean:.2f} ± {sd:.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder holding the official CIFAR-10 layout")
    p.add_argument("--model", default="airbench94_net")
    p.add_argument("--recipe", default="fast", choices=sorted(RECIPES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig overrides (ablations)")
    p.add_argument("--label", default=None, help="name of this configuration (default: MODEL-RECIPE)")
    p.add_argument("--out", default="runs/time-to-accuracy", help="parent folder of the runs")
    p.add_argument("--target", type=float, default=90.5, help="accuracy to report against (default: 90.5)")
    p.add_argument("--reference-s", type=float, default=403.0, help="time to compare with (default: 403 s)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    overrides = parse_set(args.set)
    args.label = args.label or f"{args.model}-{args.recipe}"

    peak = matmul_peak(torch.bfloat16)
    cfg = build_config(args.model, recipe=args.recipe, overrides=overrides)
    plain = bare_loop_images_per_s(zoo.create(args.model), cfg.batch_size, momentum=cfg.momentum)
    flops_per_image = train_flops_per_image(zoo.create(args.model))
    steps = cfg.epochs * (50_000 // cfg.batch_size)
    print(
        f"bf16 matmul peak here: {peak / 1e12:.3f} TFLOP/s; plain loop: {plain:.0f} images/s, so the recipe's "
        f"{steps} steps of {cfg.batch_size} take {steps * cfg.batch_size / plain:.0f} s without any engine",
        flush=True,
    )

    results = [run_seed(args, seed, overrides) for seed in args.seeds]
    acc_key = "top1_tta" if all(r["top1_tta"] is not None for r in results) else "top1"
    level = results[0]["tta_level"] if acc_key == "top1_tta" else 0
    print(f"\n{args.label}: {args.model}, recipe {args.recipe}, overrides {overrides or 'none'}")
    print("| seed | test top-1 | test top-1 (TTA) | training s | images/s | % of bf16 matmul peak |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        frac = 100 * r["images_per_s"] * flops_per_image / peak
        tta = f"{r['top1_tta']:.2f}" if r["top1_tta"] is not None else "-"
        print(
            f"| {r['seed']} | {r['top1']:.2f} | {tta} | {r['train_time_s']:.0f} | {r['images_per_s']:.0f} | "
            f"{frac:.0f} |"
        )
    accs = [r[acc_key] for r in results]
    times = [r["train_time_s"] for r in results]
    rate = statistics.fmean(r["images_per_s"] for r in results)
    summary = {
        "label": args.label,
        "model": args.model,
        "recipe": args.recipe,
        "overrides": overrides,
        "seeds": args.seeds,
        "accuracy_key": acc_key,
        "tta_level": level,
        "accuracy_mean": statistics.fmean(accs),
        "accuracy_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "train_time_mean_s": statistics.fmean(times),
        "train_time_sd_s": statistics.stdev(times) if len(times) > 1 else 0.0,
        "images_per_s": rate,
        "plain_loop_images_per_s": plain,
        "plain_loop_train_time_s": steps * cfg.batch_size / plain,
        "engine_vs_plain_loop": rate / plain,
        "train_flops_per_image": flops_per_image,
        "bf16_matmul_peak_flops": peak,
        "fraction_of_bf16_matmul_peak": rate * flops_per_image / peak,
        "runs": results,
    }
    print(f"\naccuracy{' with TTA level ' + str(level) if level else ''}: {_stats(accs)} %")
    print(f"training time: {_stats(times)} s (reference {args.reference_s:g} s)")
    print(
        f"images/s: engine {rate:.0f}, plain loop {plain:.0f} ({rate / plain:.2f}x); "
        f"{rate * flops_per_image / 1e12:.3f} TFLOP/s = {100 * summary['fraction_of_bf16_matmul_peak']:.0f}% of "
        "the bf16 matmul peak"
    )
    hit = summary["accuracy_mean"] >= args.target and summary["train_time_mean_s"] < args.reference_s
    print(f"target ({args.target:g}% in < {args.reference_s:g} s): {'met' if hit else 'not met'}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
