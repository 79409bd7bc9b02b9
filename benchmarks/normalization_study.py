"""Normalization study: the notebook's claims about BatchNorm, measured with zoo's engine.

    python benchmarks/normalization_study.py --data-dir DIR            # the study (about 45 min on 2 CPU cores)
    python benchmarks/normalization_study.py --data-dir DIR --quick    # a one-minute smoke run
    python benchmarks/normalization_study.py --report-only             # redraw figure and tables from the JSON

Three experiments, every cell trained with the same recipe, data subset and seeds:
  norms  modern_gap_cnn and resnet20 with norm_layer in {batchnorm, groupnorm, layernorm, instancenorm, none},
         at the model's recipe learning rate and at 10x it;
  bias   modern_gap_cnn with BatchNorm, conv bias off (zoo's default) vs on (the notebook's habit);
  batch  modern_gap_cnn, batchnorm vs groupnorm, at batch 8 and 256 (learning rate scaled linearly).
Results go to ``OUT/data/normalization.json`` after every cell (a stopped study resumes where it was);
``OUT/figures/normalization.png`` and ``OUT/normalization.md`` are generated from that file, never typed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _throughput import bare_loop_images_per_s

import zoo
from zoo.engine import Trainer, build_config, configure_process
from zoo.engine.trainer import NonFiniteLossError

MODELS = ("modern_gap_cnn", "resnet20")
NORMS = ("batchnorm", "groupnorm", "layernorm", "instancenorm", "none")
LABELS = {
    "batchnorm": "BatchNorm",
    "groupnorm": "GroupNorm",
    "layernorm": "LayerNorm",
    "instancenorm": "InstanceNorm",
    "none": "no norm",
}
HIGH_LR = 10.0


def budget(quick: bool) -> dict[str, Any]:
    """The fixed training budget of every cell (the subset is the same for every cell and seed)."""
    if quick:
        return {"train": 128, "val": 32, "test": 64, "epochs": 1, "seeds": (0,), "batch_sizes": (8, 64),
                "speed_batch": 16}  # fmt: skip
    return {"train": 8000, "val": 2000, "test": None, "epochs": 5, "seeds": (0, 1), "batch_sizes": (8, 256),
            "speed_batch": 128}  # fmt: skip


def cells(quick: bool) -> list[dict[str, Any]]:
    """Every training run of the study, as a dict of what varies."""
    b = budget(quick)
    out = []
    for seed in b["seeds"]:
        for model in MODELS:
            for norm in NORMS:
                for lr_mult in (1.0, HIGH_LR):
                    out.append({"exp": "norms", "model": model, "norm": norm, "lr_mult": lr_mult, "seed": seed})
        for conv_bias in (False, True):
            out.append({"exp": "bias", "model": "modern_gap_cnn", "norm": "batchnorm", "conv_bias": conv_bias,
                        "seed": seed})  # fmt: skip
        for norm in ("batchnorm", "groupnorm"):
            for bs in b["batch_sizes"]:
                out.append({"exp": "batch", "model": "modern_gap_cnn", "norm": norm, "batch_size": bs, "seed": seed})
    return out


def cell_id(cell: dict[str, Any]) -> str:
    return "/".join(f"{k}={cell[k]}" for k in sorted(cell))


def run_cell(cell: dict[str, Any], data_dir: str | None, quick: bool, work: Path) -> dict[str, Any]:
    """Train one cell; a diverging run is a result (``diverged``), not an error."""
    b = budget(quick)
    hints = zoo.model_info(cell["model"]).recipe
    batch_size = cell.get("batch_size", hints["batch_size"])
    lr = hints["lr"] * cell.get("lr_mult", 1.0) * batch_size / hints["batch_size"]
    kwargs: dict[str, Any] = {"norm_layer": cell["norm"]}
    if "conv_bias" in cell:
        kwargs["conv_bias"] = cell["conv_bias"]
    cfg = build_config(
        cell["model"],
        overrides={
            "data_dir": data_dir,
            "download": False,
            "epochs": b["epochs"],
            "batch_size": batch_size,
            "lr": lr,
            "warmup_epochs": 0.0,
            "val_split": b["val"],
            "final_test": True,  # the study reports test accuracy; the validation curves only say how fast
            "limit_train": b["train"],
            "limit_test": b["test"],
            "seed": cell["seed"],
            "model_kwargs": kwargs,
            "progress": False,
            "plot": False,  # the cells' run folders are temporary
            "checkpoint_every": 10**6,
            "out": str(work),
            "run_name": cell_id(cell).replace("/", "_"),
        },
    )
    trainer = Trainer(cfg, argv=["benchmarks/normalization_study.py"])
    configure_process(trainer.device, trainer.cfg.threads)  # as zoo.train runs it
    params = sum(p.numel() for p in trainer.model.parameters())
    result: dict[str, Any] = {"cell": cell, "lr": lr, "batch_size": batch_size, "params": params}
    try:
        summary = trainer.fit()
        result.update(diverged=False, test_top1=summary["test_top1"])
    except NonFiniteLossError as exc:
        result.update(diverged=True, error=str(exc))
    rows = trainer.history
    result["val_top1"] = [r["eval_acc"] for r in rows]
    result["images_per_s"] = statistics.fmean(r["images_per_s"] for r in rows) if rows else None
    result["train_time_s"] = round(trainer.train_time, 1)
    return result


def run(out: Path, data_dir: str | None, quick: bool, work: Path) -> dict[str, Any]:
    """Run every cell not yet in ``out/data/normalization.json``, saving it after each one."""
    path = out / "data" / "normalization.json"
    store: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if store and store.get("budget", {}).get("quick") != quick:
        raise SystemExit(f"{path} holds a {'quick' if store['budget']['quick'] else 'full'} study; use another --out")
    b = budget(quick)
    store.setdefault(
        "budget", {**b, "quick": quick, "data": "CIFAR-10 (offline JPEG copy)" if not quick else "a smoke-test subset"}
    )
    store.setdefault("machine", zoo.engine.trainer.machine_info(torch.device("cpu")))
    speed = store.setdefault("speed", {})
    for model in MODELS:
        for norm in NORMS:
            if f"{model}/{norm}" not in speed:
                net = zoo.create(model, norm_layer=norm)  # timed alone, not while other cells train
                speed[f"{model}/{norm}"] = bare_loop_images_per_s(
                    net, b["speed_batch"], steps=2 if quick else 20, warmup=1 if quick else 3
                )
    results = store.setdefault("results", {})
    todo = [c for c in cells(quick) if cell_id(c) not in results]
    for i, cell in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {cell_id(cell)}", flush=True)
        results[cell_id(cell)] = run_cell(cell, data_dir, quick, work)
        r = results[cell_id(cell)]
        print("    -> diverged" if r["diverged"] else f"    -> test {r['test_top1']:.2f}%", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(store, indent=1) + "\n")
        os.replace(tmp, path)
    return store


# ------------------------------------------------------------------------------------------------ report
def _select(results: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [r for r in results.values() if all(r["cell"].get(k) == v for k, v in match.items())]


def _mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


CHANCE = 11.0  # CIFAR-10: 10% is guessing; a run that ends at or below 11% did not learn


def _failed(r: dict[str, Any]) -> bool:
    return r["diverged"] or r["test_top1"] <= CHANCE


def _acc(runs: list[dict[str, Any]]) -> str:
    """Mean ± sd of the runs that trained; diverged (NaN) and chance-level runs are counted, not averaged."""
    if not runs:
        return "-"
    ok = [r["test_top1"] for r in runs if not _failed(r)]
    nan = sum(r["diverged"] for r in runs)
    stuck = sum(not r["diverged"] and r["test_top1"] <= CHANCE for r in runs)
    notes = [f"{nan}/{len(runs)} diverged"] * bool(nan) + [f"{stuck}/{len(runs)} at chance"] * bool(stuck)
    if not ok:
        return ", ".join(notes)
    return _mean_sd(ok) + (f" ({', '.join(notes)})" if notes else "")


def _epochs_to(runs: list[dict[str, Any]], threshold: float) -> str:
    hits = []
    for r in runs:
        reached = [i + 1 for i, acc in enumerate(r["val_top1"]) if acc >= threshold]
        hits.append(reached[0] if reached else None)
    if all(h is None for h in hits):
        return "not reached"
    return ", ".join("-" if h is None else str(h) for h in hits)


def _rate(runs: list[dict[str, Any]]) -> str:
    rates = [r["images_per_s"] for r in runs if r["images_per_s"]]
    return f"{statistics.fmean(rates):.0f}" if rates else "-"


def _speed(store: dict[str, Any], model: str, norm: str) -> str:
    value = store.get("speed", {}).get(f"{model}/{norm}")
    return f"{value:.0f}" if value else "-"


def figure(store: dict[str, Any], path: Path) -> None:
    """Validation accuracy vs epoch, one panel per model, one colour per norm (dashed: 10x learning rate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = store["results"]
    fig, axes = plt.subplots(1, len(MODELS), figsize=(6 * len(MODELS), 4.2), sharey=True)
    for ax, model in zip(axes, MODELS):
        for color, norm in zip(plt.cm.tab10.colors, NORMS):
            for lr_mult, style in ((1.0, "-"), (HIGH_LR, "--")):
                runs = _select(results, exp="norms", model=model, norm=norm, lr_mult=lr_mult)
                curves = [r["val_top1"] for r in runs if r["val_top1"]]
                if not curves:
                    continue
                n = min(len(c) for c in curves)
                mean = [statistics.fmean(c[i] for c in curves) for i in range(n)]
                label = f"{LABELS[norm]}{'' if lr_mult == 1 else f' ({lr_mult:g}x lr)'}"
                ax.plot(range(1, n + 1), mean, style, color=color, marker="o", markersize=3, label=label)
                if len(curves) > 1:
                    lo = [min(c[i] for c in curves) for i in range(n)]
                    hi = [max(c[i] for c in curves) for i in range(n)]
                    ax.fill_between(range(1, n + 1), lo, hi, color=color, alpha=0.15)
        ax.set_title(model)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, ncol=5, loc="lower center")
    fig.suptitle("Normalization study (mean over seeds; band: min-max; dashed: 10x the recipe's learning rate)")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _best_norm(results: dict[str, Any], model: str, lr_mult: float) -> tuple[str, float]:
    scores = {}
    for norm in NORMS:
        finished = [r["test_top1"] for r in _select(results, exp="norms", model=model, norm=norm, lr_mult=lr_mult)
                    if not r["diverged"]]  # fmt: skip
        if finished:
            scores[norm] = statistics.fmean(finished)
    best = max(scores, key=scores.get)
    return best, scores[best]


def _mean(runs: list[dict[str, Any]], key: str = "test_top1") -> float:
    """Mean of ``key`` over the runs that trained (diverged and chance-level runs are left out)."""
    values = [r[key] for r in runs if not _failed(r) and r.get(key) is not None]
    return statistics.fmean(values) if values else math.nan


def report(store: dict[str, Any], out: Path, threshold: float) -> str:
    """docs/normalization.md from the stored results."""
    results, b = store["results"], store["budget"]
    speed_batch = b.get("speed_batch", 128)  # studies stored before the budget recorded it were timed at 128
    seeds = ", ".join(str(s) for s in b["seeds"])
    lines = [
        "# Normalization study",
        "",
        "<!-- generated by benchmarks/normalization_study.py from docs/data/normalization.json: do not edit -->",
        "",
        "The study notebook this project grew out of claims that BatchNorm makes CNN training faster and more",
        "stable, that a CNN normalises each channel over (batch, height, width), that the conv bias before BN is",
        "redundant, and that Layer, Instance and Group normalization are the alternatives. This page measures",
        "those claims with zoo's engine. Reproduce it (about 45 minutes on 2 CPU cores):",
        "",
        "```bash",
        "python benchmarks/normalization_study.py --data-dir DIR   # DIR holds cifar-10-batches-bin/",
        "```",
        "",
        f"**Budget, identical for every cell:** {b['data']}, the first {b['train'] or 'all'} training images "
        f"(after holding out {b['val']} for validation), {b['epochs']} epochs, the model's registry recipe (SGD "
        "with Nesterov momentum 0.9, weight decay 5e-4, batch 128, one-cycle learning rate, no warmup), crop + "
        f"flip augmentation, bf16 autocast on the CPU; seeds {seeds}; test accuracy on the "
        f"{b['test'] or '10,000'}-image test split after the last epoch. Values are mean ± standard deviation "
        f"over seeds. Machine: {store['machine']['cpu']}, {store['machine']['threads']} threads. A short budget "
        "on purpose: it shows how fast each normalization learns, not how far it gets.",
        "",
        "![validation accuracy per epoch](figures/normalization.png)",
        "",
        "## Which normalization",
        "",
        f"Test top-1 (%) at the recipe's learning rate and at {HIGH_LR:g}x it, epochs until validation accuracy "
        f"first reached {threshold:g}% (one entry per seed, at the recipe's rate), and training images/s "
        f"(batch {speed_batch}, timed separately, one model at a time, so the other cells' runs do not disturb it).",
        "",
        f"| model | norm | test top-1, recipe lr | test top-1, {HIGH_LR:g}x lr | epochs to {threshold:g}% | images/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model in MODELS:
        lr = zoo.model_info(model).recipe["lr"]
        for norm in NORMS:
            base = _select(results, exp="norms", model=model, norm=norm, lr_mult=1.0)
            high = _select(results, exp="norms", model=model, norm=norm, lr_mult=HIGH_LR)
            lines.append(
                f"| {model} (lr {lr:g} / {lr * HIGH_LR:g}) | {LABELS[norm]} | {_acc(base)} | {_acc(high)} | "
                f"{_epochs_to(base, threshold)} | {_speed(store, model, norm)} |"
            )
    bias = {on: _select(results, exp="bias", conv_bias=on) for on in (False, True)}
    lines += [
        "",
        "## The conv bias before BatchNorm",
        "",
        "modern_gap_cnn with BatchNorm, the conv layers with and without a bias (recipe learning rate).",
        "",
        "| conv bias | parameters | test top-1 | images/s |",
        "| --- | --- | --- | --- |",
    ]
    for on in (False, True):
        params = bias[on][0]["params"] if bias[on] else "-"
        lines.append(f"| {'on' if on else 'off'} | {params:,} | {_acc(bias[on])} | {_rate(bias[on])} |")
    lines += [
        "",
        "## Batch size: BatchNorm's weak spot",
        "",
        "modern_gap_cnn, learning rate scaled linearly with the batch (the recipe's is for 128), same images and "
        "epochs.",
        "",
        "| norm | " + " | ".join(f"batch {bs}: test top-1" for bs in b["batch_sizes"]) + " | "
        + " | ".join(f"batch {bs}: images/s" for bs in b["batch_sizes"]) + " |",
        "| --- " * (1 + 2 * len(b["batch_sizes"])) + "|",
    ]  # fmt: skip
    for norm in ("batchnorm", "groupnorm"):
        runs = [_select(results, exp="batch", norm=norm, batch_size=bs) for bs in b["batch_sizes"]]
        lines.append(
            f"| {LABELS[norm]} | "
            + " | ".join(_acc(r) for r in runs)
            + " | "
            + " | ".join(_rate(r) for r in runs)
            + " |"
        )
    lines += ["", "## What the numbers show", "", *findings(store, threshold), ""]
    text = "\n".join(lines)
    (out / "normalization.md").write_text(text)
    return text


def _seed_spread(runs: list[dict[str, Any]]) -> str:
    accs = [r["test_top1"] for r in runs if not _failed(r)]
    if len(accs) < 2:
        return "one seed: no spread to compare with"
    return f"without the bias the seeds themselves span {max(accs) - min(accs):.2f} points"


def _failures(runs: list[dict[str, Any]]) -> str:
    nan = sum(r["diverged"] for r in runs)
    stuck = sum(not r["diverged"] and r["test_top1"] <= CHANCE for r in runs)
    if not nan and not stuck:
        return "trained in both runs" if len(runs) == 2 else f"trained in all {len(runs)} runs"
    parts = [f"diverged to NaN in {nan}"] * bool(nan) + [f"ended at chance ({CHANCE:g}% or less) in {stuck}"] * bool(
        stuck
    )
    return " and ".join(parts) + f" of {len(runs)} runs"


def findings(store: dict[str, Any], threshold: float) -> list[str]:
    """The paragraphs under the tables: every number and every comparison in them is computed from the results."""
    results, b = store["results"], store["budget"]
    out = []
    for model in MODELS:
        cell = {norm: {m: _select(results, exp="norms", model=model, norm=norm, lr_mult=m) for m in (1.0, HIGH_LR)}
                for norm in NORMS}  # fmt: skip
        bn, none = _mean(cell["batchnorm"][1.0]), _mean(cell["none"][1.0])
        ranking = sorted(NORMS, key=lambda n: -_mean(cell[n][1.0]) if not math.isnan(_mean(cell[n][1.0])) else 1e9)
        ranked = " > ".join(
            f"{LABELS[n]} {_mean(cell[n][1.0]):.1f}" if not math.isnan(_mean(cell[n][1.0])) else f"{LABELS[n]} (failed)"
            for n in ranking
        )
        failed = {n: sum(_failed(r) for r in cell[n][HIGH_LR]) for n in NORMS}
        robust = [LABELS[n] for n in NORMS if not failed[n] and cell[n][HIGH_LR]]
        text = (
            f"- **{model}**: at the recipe's learning rate, test top-1 (%, failed runs excluded): {ranked}. "
            f"Without normalization it {_failures(cell['none'][1.0])}"
            + (f" (BatchNorm {bn - none:+.1f} points over the runs that trained)" if not math.isnan(none) else "")
            + f". At {HIGH_LR:g}x the rate BatchNorm {_failures(cell['batchnorm'][HIGH_LR])} "
            f"({_mean(cell['batchnorm'][HIGH_LR]):.1f}%), the unnormalised net {_failures(cell['none'][HIGH_LR])}. "
            f"Norms with which every {HIGH_LR:g}x run trained: {', '.join(robust) or 'none'}."
        )
        per_sample = [
            n for n in ("instancenorm", "groupnorm", "layernorm") if _mean(cell[n][HIGH_LR]) > _mean(cell[n][1.0])
        ]
        if per_sample:
            text += (
                f" {', '.join(LABELS[n] for n in per_sample)} scored higher at {HIGH_LR:g}x than at the recipe's rate: "
                "in this 5-epoch budget the recipe's rate looks too low for them."
            )
        out.append(text)
    off, on = (_select(results, exp="bias", conv_bias=v) for v in (False, True))
    if off and on:
        out.append(
            f"- **Conv bias before BN**: {on[0]['params'] - off[0]['params']:,} extra parameters; test top-1 "
            f"{_mean(on):.2f}% with vs {_mean(off):.2f}% without ({_mean(on) - _mean(off):+.2f} points; "
            f"{_seed_spread(off)}), training images/s "
            f"{_mean(on, 'images_per_s'):.0f} vs {_mean(off, 'images_per_s'):.0f}. BatchNorm subtracts each "
            "channel's batch mean, which removes any per-channel constant: in train mode the bias cannot change the "
            "output and gets a zero gradient (`tests/test_layers.py::test_conv_bias_before_batchnorm_is_redundant` "
            "checks both); in eval mode the running mean has absorbed it. The notebook's `bias=False` is right. "
            "The two runs of a seed still differ a little: creating the biases draws extra random numbers, which "
            "changes the initialisation of every later layer, a difference of the same kind as another seed."
        )
    small, large = b["batch_sizes"][0], b["batch_sizes"][-1]
    acc = {n: {bs: _mean(_select(results, exp="batch", norm=n, batch_size=bs)) for bs in (small, large)}
           for n in ("batchnorm", "groupnorm")}  # fmt: skip
    lead = {bs: acc["batchnorm"][bs] - acc["groupnorm"][bs] for bs in (small, large)}
    weakness_seen = lead[small] < lead[large] - 1.0
    verdict = (
        f"BatchNorm's lead over GroupNorm shrank from {lead[large]:+.2f} points at batch {large} to "
        f"{lead[small]:+.2f} at batch {small}, the direction the GroupNorm paper reports (Wu & He 2018: on "
        "ImageNet, BatchNorm's error grows as the batch per device shrinks towards 2 images, GroupNorm's does not)"
        if weakness_seen
        else f"BatchNorm's lead over GroupNorm was {lead[large]:+.2f} points at batch {large} and {lead[small]:+.2f} "
        f"at batch {small}: no sign of BatchNorm's small-batch weakness at this size ({small} images x H x W "
        "positions still give usable per-channel statistics; Wu & He 2018 measured it growing towards 2 images "
        "per device)"
    )
    out.append(
        f"- **Batch size**: from batch {large} to batch {small} (same images and epochs, learning rate scaled "
        f"linearly), BatchNorm went from {acc['batchnorm'][large]:.2f}% to {acc['batchnorm'][small]:.2f}% and "
        f"GroupNorm from {acc['groupnorm'][large]:.2f}% to {acc['groupnorm'][small]:.2f}%. {verdict}. Batch "
        f"{small} also takes {large // small}x as many optimizer steps over the same images, which by itself helps "
        "a 5-epoch run."
    )
    speed = store.get("speed", {})
    ratios = {(m, n): speed[f"{m}/{n}"] / speed[f"{m}/batchnorm"] for m in MODELS for n in NORMS
              if n not in ("batchnorm", "none") and f"{m}/{n}" in speed and f"{m}/batchnorm" in speed}  # fmt: skip
    slower = [f"{LABELS[n]} {r:.2f}x on {m}" for (m, n), r in ratios.items() if r < 0.9]
    as_fast = [f"{LABELS[n]} {r:.2f}x on {m}" for (m, n), r in ratios.items() if r >= 0.9]
    behind = all(
        _mean(_select(results, exp="norms", model=m, norm=n, lr_mult=1.0))
        < _mean(_select(results, exp="norms", model=m, norm="batchnorm", lr_mult=1.0))
        for m in MODELS
        for n in ("groupnorm", "layernorm", "instancenorm")
    )
    r20_none = _select(results, exp="norms", model="resnet20", norm="none", lr_mult=1.0)
    bn_high = [r for m in MODELS for r in _select(results, exp="norms", model=m, norm="batchnorm", lr_mult=HIGH_LR)]
    confirmed = ["the conv bias before BatchNorm is dead weight"]
    if r20_none and all(_failed(r) for r in r20_none):
        confirmed.insert(0, "BatchNorm is what lets the 20-layer ResNet train at all with its recipe")
    if bn_high and not any(_failed(r) for r in bn_high):
        confirmed.insert(-1, f"BatchNorm kept every run stable at {HIGH_LR:g}x the learning rate")
    out.append(
        "- **Where this disagrees with the notebook**: the notebook presents Layer, Instance and Group "
        "normalization as the alternatives. They train, "
        + ("but each was behind BatchNorm at the recipe's learning rate on both models. " if behind else "and ")
        + "On this CPU their speed relative to BatchNorm was "
        + (f"{', '.join(slower)} (slower)" if slower else "")
        + ("; " if slower and as_fast else "")
        + (f"{', '.join(as_fast)} (about as fast or faster)" if as_fast else "")
        + ", and unlike BatchNorm they cannot be folded into the conv for inference. "
        + (f"BatchNorm's batch-size weakness did not show at batch {small}. " if not weakness_seen else "")
        + f"What the study confirms: {', '.join(confirmed)}. With only {b['epochs']} epochs on {b['train']} "
        "images the absolute accuracies are far below a full run; the comparison between cells is what this "
        "measures."
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", help="folder holding the official CIFAR-10 layout")
    p.add_argument("--out", default="docs", help="where data/normalization.json, figures/ and the .md go")
    p.add_argument("--work-dir", help="run folders of the cells (default: a temporary folder)")
    p.add_argument("--quick", action="store_true", help="tiny subset, 1 epoch, 1 seed: a smoke test")
    p.add_argument("--threshold", type=float, default=None, help="accuracy for 'epochs to' (default 40, quick 0)")
    p.add_argument("--report-only", action="store_true", help="regenerate the figure and page from the JSON")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.report_only:
        store = json.loads((out / "data" / "normalization.json").read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            store = run(out, args.data_dir, args.quick, Path(args.work_dir or tmp))
    threshold = args.threshold if args.threshold is not None else (0.0 if store["budget"]["quick"] else 40.0)
    figure(store, out / "figures" / "normalization.png")
    report(store, out, threshold)
    print(f"wrote {out / 'normalization.md'} and {out / 'figures' / 'normalization.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
