r"""Two recipes side by side in one invocation on this machine: time to accuracy over several seeds.

    python benchmarks/time_to_accuracy.py --data-dir DIR [--baseline fast] [--candidate fastest] [--seeds 0 1 2]
        [--set KEY=VALUE ...] [--set-baseline KEY=VALUE ...] [--out runs/time-to-accuracy] [--json FILE]

Every (recipe, seed) is a full training run of ``--model`` on the 50,000 training images, evaluated on the 10,000
test images with the recipe's test-time augmentation. The runs alternate (baseline seed 0, candidate seed 0,
baseline seed 1, ...), so whatever else the machine does falls on both. Prints, per recipe: every seed's test top-1
(with and without TTA) and training time (the engine's clock: training steps only), their mean ± standard
deviation, and the ratio candidate / baseline of the mean training times (and of their training FLOPs, counted by
``torch.utils.flop_counter``), with the machine (and a warning where a run, or a session of a resumed one, trained
on another); then the time ratio of each seed pair (two runs back to back) and their geometric mean, the estimate
that a host whose speed drifts between pairs disturbs least, and each pair's accuracy difference with their mean ±
sd (the two runs of a seed are measured on the same images). Runs go to ``--out/RECIPE-seedN``: a stopped
benchmark resumes where it was, a finished run is not run again. ``--set`` changes the candidate (ablations:
``--set optimizer="sgd"``), ``--set-baseline`` the baseline; ``--candidate none`` runs the baseline alone.

``--val-split N`` is the same benchmark for choosing a recipe: every run holds out N training images (drawn by
the run's seed, so the two recipes of a seed hold out the same ones), trains on the rest and is measured on those
N (with TTA as above); the test split is never evaluated. Its runs go to ``--out/LABEL-valN-seedS``. E.g. one
setting of ``fastest`` against the recipe as it is, on seeds no test run used:

    python benchmarks/time_to_accuracy.py --data-dir DIR --val-split 5000 --seeds 10 11 12 13 \
        --baseline fastest --candidate fastest --set muon_lr=0.5

``--finished`` trains nothing: it summarises the seeds whose runs have all finished (a screen that a time budget
stopped, or one that is still going on elsewhere).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch
from _throughput import forward_flops_per_image, train_flops_per_image
from torch.utils.flop_counter import FlopCounterMode

from zoo import create
from zoo._cli import run as run_cli
from zoo.data.augment import resize_size
from zoo.engine import RECIPES, TrainConfig, Trainer, build_config, configure_process
from zoo.engine.config import resumed_config
from zoo.engine.optim import build_optimizer
from zoo.engine.run import describe_cpu, machine_changes
from zoo.engine.select import kept_count, proxy_kwargs


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


def run_label(args: argparse.Namespace, label: str) -> str:
    """``LABEL``, or ``LABEL-valN`` with ``--val-split N``: the name of a recipe's runs in ``--out``."""
    return f"{label}-val{args.val_split}" if args.val_split else label


def run_path(args: argparse.Namespace, label: str, seed: int) -> Path:
    return Path(args.out) / f"{run_label(args, label)}-seed{seed}"


def finished(run_dir: Path) -> bool:
    run_json = run_dir / "run.json"
    return run_json.is_file() and "result" in json.loads(run_json.read_text())


def run_overrides(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    """A recipe's overrides as its runs train with them: ``--set`` plus ``--val-split``."""
    return {**overrides, "val_split": args.val_split} if args.val_split else overrides


def run_config(args: argparse.Namespace, recipe: str, seed: int, overrides: dict[str, Any]) -> TrainConfig:
    """The config a run of ``recipe`` trains with (``overrides``: `run_overrides`)."""
    extra = {"data_dir": args.data_dir, "seed": seed, "progress": False, "plot": False}
    return build_config(args.model, recipe=recipe, overrides={**extra, **overrides})


def run_seed(args: argparse.Namespace, recipe: str, label: str, seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    split = "val" if args.val_split else "test"
    run_dir = run_path(args, label, seed)
    run_json = run_dir / "run.json"
    label = run_label(args, label)
    overrides = run_overrides(args, overrides)
    if finished(run_dir):
        print(f"{label} seed {seed}: finished earlier in {run_dir}", flush=True)
    else:
        if (run_dir / "checkpoint.safetensors").is_file():
            trainer = Trainer.resume(run_dir)
        else:
            cfg = run_config(args, recipe, seed, overrides)
            argv = ["python", "-m", "zoo.train", args.model, "--recipe", recipe, "--seed", str(seed)]
            for key, value in overrides.items():
                argv += [f"--{key.replace('_', '-')}", json.dumps(value) if not isinstance(value, str) else value]
            trainer = Trainer(cfg, run_dir=run_dir, argv=argv, recipe=recipe)
        configure_process(trainer.device, trainer.cfg.threads)  # threads, malloc, cuDNN: as zoo.train runs it
        if trainer.fit()["status"] != "finished":
            raise SystemExit(f"{label} seed {seed} was interrupted; run the benchmark again to resume it")
    meta = json.loads(run_json.read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    result = meta["result"]
    return {
        "seed": seed,
        "split": split,
        "top1": result[f"{split}_top1"],
        "top1_tta": result.get(f"{split}_top1_tta"),
        "tta_level": meta["config"]["tta"],
        "train_time_s": result["train_time_s"],
        "images_per_s": statistics.fmean(r["images_per_s"] for r in rows),
        "steps": (steps := meta["sessions"][-1]["to"]["global_step"]),
        "train_tflops": training_flops(meta["config"], steps) / 1e12,
        "epochs": result["epochs"],
        "run_dir": str(run_dir),
        "machines": [session["machine"] for session in meta["sessions"]],  # one a session: a resumed run may move
        "config": meta["config"],  # what the run trained, whatever the recipe's name means today
    }


def training_flops(config: dict[str, Any], steps: int, full_size: int = 32) -> float:
    """A run's training FLOPs, counted by torch.utils.flop_counter on ``config`` (a run.json's): forward + backward
    of every image a step trains on, at the size its epoch trains at (progressive resizing) and without the gradients
    its frozen submodules no longer need (``freeze``), plus the optimizer's own matmuls at every step (Muon's
    Newton-Schulz iterations, for every parameter); with batch selection, also the proxy's forward pass over every
    drawn image and its own steps (forward, backward, optimizer) on the kept ones."""
    cfg = resumed_config(config)
    sizes = [resize_size(cfg, epoch, full_size) for epoch in range(cfg.epochs)]
    frozen = [cfg.frozen_at(epoch) for epoch in range(cfg.epochs)]
    per_epoch = steps // cfg.epochs  # whole batches: the engine drops a partial one
    kept = kept_count(cfg.batch_size, cfg.select_fraction)
    model = create(cfg.model, **cfg.model_kwargs)
    flops = _flops(model, cfg, sizes, [per_epoch * kept] * cfg.epochs, [per_epoch] * cfg.epochs, frozen)
    if cfg.select_fraction < 1:
        proxy = create(cfg.select_proxy, **proxy_kwargs(cfg))
        ranked = sum(forward_flops_per_image(proxy, size) for size in sizes) * per_epoch * cfg.batch_size
        trained = [
            len(range(-e * per_epoch % cfg.select_every, per_epoch, cfg.select_every)) for e in range(cfg.epochs)
        ]
        flops += ranked + _flops(proxy, cfg, sizes, [n * kept for n in trained], trained, [()] * cfg.epochs)
    return flops


def _flops(
    model: torch.nn.Module, cfg: Any, sizes: list[int], images: list[int], steps: list[int], frozen: list[tuple]
) -> float:
    """FLOPs of training ``model`` on ``images[e]`` images in ``steps[e]`` optimizer steps in epoch ``e``, its
    submodules ``frozen[e]`` frozen."""
    per_image = {}
    for size, names in set(zip(sizes, frozen, strict=True)):
        for name in names:
            model.get_submodule(name).requires_grad_(False)
        per_image[size, names] = train_flops_per_image(model, size)
        model.requires_grad_(True)
    model(torch.randn(2, 3, 32, 32)).sum().backward()  # gradients for the optimizer step to use
    counter = FlopCounterMode(display=False)
    with counter:
        build_optimizer(model, cfg).step()
    trained = sum(per_image[key] * n for key, n in zip(zip(sizes, frozen, strict=True), images, strict=True))
    return trained + sum(steps) * counter.get_total_flops()


def _stats(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def summarise(label: str, recipe: str, overrides: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    acc_key = "top1_tta" if all(r["top1_tta"] is not None for r in runs) else "top1"
    accs, times = [r[acc_key] for r in runs], [r["train_time_s"] for r in runs]
    print(f"\n{label}: recipe {recipe}, overrides {overrides or 'none'}")
    split = runs[0]["split"]
    print(f"| seed | {split} top-1 | {split} top-1 (TTA) | training s | images/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in runs:
        tta = f"{r['top1_tta']:.2f}" if r["top1_tta"] is not None else "-"
        print(f"| {r['seed']} | {r['top1']:.2f} | {tta} | {r['train_time_s']:.0f} | {r['images_per_s']:.0f} |")
    print(
        f"| mean ± sd | {_stats([r['top1'] for r in runs])} | {_stats(accs) if acc_key == 'top1_tta' else '-'} | "
        f"{_stats(times)} | |"
    )
    return {
        "label": label,
        "recipe": recipe,
        "overrides": overrides,
        "accuracy_key": acc_key,
        "split": split,
        "tta_level": runs[0]["tta_level"],
        "accuracy_mean": statistics.fmean(accs),
        "accuracy_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "train_time_mean_s": statistics.fmean(times),
        "train_time_sd_s": statistics.stdev(times) if len(times) > 1 else 0.0,
        "train_tflops": statistics.fmean(r["train_tflops"] for r in runs),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder holding the official CIFAR-10 layout")
    p.add_argument("--model", default="airbench94_net")
    p.add_argument("--baseline", default="fast", choices=sorted(RECIPES))
    p.add_argument("--candidate", default="fastest", choices=[*sorted(RECIPES), "none"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="candidate overrides (ablations)")
    p.add_argument("--set-baseline", nargs="*", default=[], metavar="KEY=VALUE", help="baseline overrides")
    p.add_argument("--label", default=None, help="the candidate's name (default: its recipe, with any --set)")
    p.add_argument("--out", default="runs/time-to-accuracy", help="parent folder of the runs")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument(
        "--val-split", type=int, default=0, metavar="N", help="choose a recipe: measure on N held-out training images"
    )
    p.add_argument(
        "--finished",
        action="store_true",
        help="train nothing: summarise the seeds whose runs have all finished (a screen stopped part way)",
    )
    args = p.parse_args(argv)
    return run_cli("time_to_accuracy.py", lambda: benchmark(args))


def benchmark(args: argparse.Namespace) -> int:
    configs = [
        (args.baseline, args.baseline + "".join(f"-{k}" for k in args.set_baseline), parse_set(args.set_baseline))
    ]
    if args.candidate != "none":
        label = args.label or args.candidate + "".join(f"-{k}" for k in args.set)
        configs.append((args.candidate, label, parse_set(args.set)))
    for recipe, _, overrides in configs:  # a bad --set fails now, not after the baseline's first run
        run_config(args, recipe, min(args.seeds), run_overrides(args, overrides))
    runs: dict[str, list[dict[str, Any]]] = {label: [] for _, label, _ in configs}
    seeds = args.seeds
    if args.finished:
        seeds = [s for s in seeds if all(finished(run_path(args, label, s)) for _, label, _ in configs)]
        print(f"seeds whose runs have all finished: {' '.join(map(str, seeds)) or 'none'}")
        if not seeds:
            return 0
    for seed in seeds:  # interleaved: machine noise hits every recipe alike
        for recipe, label, overrides in configs:
            runs[label].append(run_seed(args, recipe, label, seed, overrides))
    machine = runs[configs[0][1]][0]["machines"][0]
    where = f"{describe_cpu(machine)}, {machine['threads']} threads, {machine['device']}"
    print(f"\nmachine: {where}, torch {machine['torch']}")
    sessions = [m for label_runs in runs.values() for r in label_runs for m in r["machines"]]
    moved = sorted({change for m in sessions for change in machine_changes(machine, m)})
    if moved:
        print(
            f"warning: not every run trained on this machine ({', '.join(moved)}); times from two machines do not "
            "compare"
        )
    summaries = [summarise(label, recipe, overrides, runs[label]) for recipe, label, overrides in configs]
    if len(summaries) == 2:
        base, cand = summaries
        ratio = cand["train_time_mean_s"] / base["train_time_mean_s"]
        flops = cand["train_tflops"] / base["train_tflops"]
        print(
            f"\ntraining time {cand['label']} / {base['label']}: {ratio:.3f} (training FLOPs: {flops:.3f}); accuracy "
            f"(TTA level {cand['tta_level']}): {cand['accuracy_mean']:.2f} vs {base['accuracy_mean']:.2f}"
        )
        pairs = {
            b["seed"]: c["train_time_s"] / b["train_time_s"] for b, c in zip(base["runs"], cand["runs"], strict=True)
        }
        pooled = statistics.geometric_mean(pairs.values())  # each pair ran back to back: robust to a drifting host
        print(
            "time ratio per seed pair: "
            + ", ".join(f"seed {seed} {r:.3f}" for seed, r in pairs.items())
            + f"; their geometric mean {pooled:.3f}"
        )
        key = cand["accuracy_key"]  # a seed's two runs are measured on the same images: differences pair
        diffs = {b["seed"]: c[key] - b[key] for b, c in zip(base["runs"], cand["runs"], strict=True)}
        mean, sd = statistics.fmean(diffs.values()), statistics.stdev(diffs.values()) if len(diffs) > 1 else 0.0
        print(
            f"{key} difference per seed pair: "
            + ", ".join(f"seed {seed} {d:+.2f}" for seed, d in diffs.items())
            + f"; mean {mean:+.2f} ± {sd:.2f}"
        )
        cand.update(time_ratio=ratio, time_ratio_per_pair=pairs, time_ratio_pairs_geomean=pooled, flops_ratio=flops)
        cand.update(accuracy_diff_per_pair=diffs, accuracy_diff_mean=mean)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"machine": machine, "machine_changes": moved, "model": args.model, "summaries": summaries}, indent=1
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
