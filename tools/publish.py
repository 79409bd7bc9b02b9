"""``python tools/publish.py RUN_DIR --tag TAG``: ship a finished run's last weights with the package (maintainers).

Evaluates ``RUN_DIR/last.safetensors`` once on the test split in ``--data-dir`` (never downloaded) in fp32:
plain, flip TTA, flip + translate TTA. Stores it in fp16 when that changes top-1 by at most 0.05 points (else
fp32) as ``zoo/pretrained/NAME.TAG.safetensors``, pins its sha256 and metrics in ``zoo/pretrained/manifest.json``,
writes the model card ``docs/cards/NAME.TAG.md`` with the training log ``docs/cards/NAME.TAG.metrics.csv`` next
to it, and regenerates ``docs/models.md``. It writes into this checkout (``zoo/pretrained``, ``docs``), never into
an installed package.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from gen_docs import load_speed, models_markdown

from zoo import load, push_to_hub
from zoo._cli import run
from zoo.data import load_cifar
from zoo.engine import TrainConfig
from zoo.engine.run import describe_cpu
from zoo.errors import ConfigError
from zoo.eval import evaluate_model
from zoo.registry import attach_published_weights, list_models, model_info
from zoo.weights import file_sha256, read_weights, save_weights

__all__ = ["main", "publish"]

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "zoo"
DATA_NOTE = "CIFAR-10 (offline JPEG copy)"


def _split_note(cfg: dict[str, Any]) -> str:
    if cfg.get("val_split"):
        return (
            f"trained on {50_000 - cfg['val_split']:,} training images, {cfg['val_split']:,} held out for "
            "per-epoch validation; the test split was evaluated at the end only"
        )
    return (
        "trained on all 50,000 training images; the per-epoch evaluation in the log is on the test split, "
        "shown for information and used for no choice"
    )


_TECHNIQUES = (
    "flip_mode",
    "momentum",
    "decoupled_wd",
    "norm_lr_scale",
    "freeze_norm_scale",
    "warmup_epochs",
    "warmup_start_factor",
    "final_lr_factor",
    "lookahead",
    "ema",
    "data_init",
    "freeze",
)


def _techniques(cfg: dict[str, Any]) -> str:
    """The engine options a run changed from TrainConfig's defaults (airbench's techniques and the like)."""
    defaults = TrainConfig().to_dict()
    changed = [f"{k} {cfg[k]}" for k in _TECHNIQUES if k in cfg and cfg[k] != defaults[k]]
    return "; " + ", ".join(changed) if changed else ""


def _teacher_row(cfg: dict[str, Any], header: dict[str, Any]) -> list[str]:
    """The distillation teacher of a run that had one (``--teacher``), pinned by the sha256 of its weights."""
    if not cfg.get("teacher"):
        return []
    return [
        f"| teacher | `{cfg['teacher']}` (sha256 `{header.get('teacher_sha256')}`), distillation weight "
        f"{cfg.get('distill_weight')}, temperature {cfg.get('distill_temperature')} |"
    ]


def _machine(machine: dict[str, Any], precision: str = "", fp32_convs: int = 0) -> str:
    gpu = f" ({machine['gpu']})" if machine.get("gpu") else ""
    amp = f"{precision} autocast, " if precision else ""
    if fp32_convs:
        amp = f"{precision} autocast ({fp32_convs} strided depthwise convs in fp32), "
    threads = machine.get("threads")
    where = f"{describe_cpu(machine)}, {threads} thread{'' if threads == 1 else 's'}, {machine.get('device')}{gpu}"
    return f"{where}, {amp}torch {machine.get('torch')}"


def _sessions_section(sessions: list[dict[str, Any]]) -> list[str]:
    """A table of the processes that trained a run that was stopped and resumed (on one machine or several)."""
    if len(sessions) < 2:
        return []

    def at(pos: dict[str, Any]) -> str:
        return f"{pos['global_step'] / pos['steps_per_epoch']:.2f}"

    lines = [
        "## Sessions",
        "",
        "The run was stopped and continued with `python -m zoo.train --resume`; the sessions, in order",
        "(epochs as completed optimizer steps / steps per epoch):",
        "",
        "| # | epochs | training time | machine | zoo commit | command |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    killed = []
    for i, sess in enumerate(sessions, 1):
        start, end = sess["from"], sess.get("to") or sess["from"]
        after = sessions[i]["from"] if i < len(sessions) else end
        if after["global_step"] > end["global_step"]:  # it left no record of its end: the process was killed
            end, mark = after, "*"
            killed.append(str(i))
        else:
            mark = ""
        lines.append(
            f"| {i}{mark} | {at(start)} → {at(end)} | {end['train_time_s'] - start['train_time_s']:.0f} s "
            f"| {_machine(sess.get('machine') or {}, sess.get('precision', ''), sess.get('fp32_convs', 0))} "
            f"| {sess.get('git_commit')} "
            f"| `{' '.join(sess.get('argv') or [])}` |"
        )
    if killed:
        lines += [
            "",
            f"\\* Session{'s' if len(killed) > 1 else ''} {', '.join(killed)} ended without recording where "
            "(the process was killed): the row runs to the checkpoint the next session resumed from; what it "
            "trained after that checkpoint was lost and is not counted.",
        ]
    if sessions[0].get("legacy"):
        lines += [
            "",
            "Session 1 was run by a zoo that did not record sessions yet: its row is run.json's first session, and",
            "any resume between it and session 2 is not listed separately.",
        ]
    return [*lines, ""]


def _card(
    name: str, tag: str, entry: dict[str, Any], header: dict[str, Any], run: dict[str, Any], note: str = ""
) -> str:
    m = entry["metrics"]
    cfg = header.get("config", {})
    sessions = header.get("sessions", [])
    several = len(sessions) > 1
    machine = (
        f"{len(sessions)} sessions, see below"
        if several
        else _machine(header.get("machine", {}), run.get("precision", ""), run.get("fp32_convs", 0))
    )
    lines = [
        f"# {name}.{tag}",
        "",
        f"{model_info(name).paper}. Weights trained with zoo's engine; every number below was measured by",
        f"`python -m zoo.eval {name}.{tag} --data-dir DIR` (fp32) on {entry['data']}.",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| top-1 | {m['top1']:.2f}% |",
        f"| top-1 with flip TTA (`--tta`) | {m['top1_tta']:.2f}% |",
        *([f"| top-1 with flip + translate TTA (`--tta 2`) | {m['top1_tta2']:.2f}% |"] if "top1_tta2" in m else []),
        f"| top-5 | {m['top5']:.2f}% |",
        f"| test loss | {m['loss']:.4f} |",
        f"| parameters | {model_info(name).params:,} |",
        f"| MACs (32x32) | {model_info(name).macs / 1e6:.1f} M |",
        f"| file | `zoo/{entry['file']}` ({entry['storage']}), sha256 `{entry['sha256']}` |",
        "",
        "## How it was trained",
        "",
        "| | |",
        "| --- | --- |",
        f"| command | `{header.get('command', '')}` |",
        f"| recipe | {entry.get('recipe')}: {cfg.get('optimizer')} lr {cfg.get('lr')}, batch {cfg.get('batch_size')}, "
        f"{cfg.get('epochs')} epochs, {cfg.get('schedule')} schedule, weight decay {cfg.get('weight_decay')}, "
        f"label smoothing {cfg.get('label_smoothing')}, crop {cfg.get('crop')}, flip {cfg.get('flip')}, "
        f"cutout {cfg.get('cutout')}{_techniques(cfg)} |",
        *_teacher_row(cfg, header),
        f"| seed | {header.get('seed')} |",
        f"| training wall time | {header.get('train_time_s')} s |",
        f"| machine | {machine} |",
        f"| zoo commit | {'per session, see below' if several else header.get('git_commit')} |",
        f"| data | {entry['data']}; {_split_note(cfg)} |",
        "",
        "The shipped weights are the last epoch of that run: no checkpoint was selected on the test set.",
        "",
        *([note, ""] if note else []),
        f"Per-epoch log: [{name}.{tag}.metrics.csv]({name}.{tag}.metrics.csv).",
        "",
        "```python",
        "import zoo",
        "",
        f'model = zoo.create("{name}.{tag}")'
        + (f'  # or zoo.create("{name}", pretrained=True)' if entry.get("default") else ""),
        "```",
        "",
        *_sessions_section(sessions),
    ]
    return "\n".join(lines)


def publish(
    run_dir: str | Path,
    tag: str,
    *,
    data_dir: str | None = None,
    default: bool = True,
    data_note: str = DATA_NOTE,
    note: str = "",
) -> dict[str, Any]:
    """Ship ``run_dir``'s last weights as ``NAME.TAG``; return the manifest entry.

    Raises ConfigError before anything is evaluated or written when the tag is not lower_snake_case or the
    run folder is not a finished run.
    """
    run_dir = Path(run_dir)
    if not re.fullmatch(r"[a-z0-9_]+", tag):
        raise ConfigError(f"weight tags are lower_snake_case (letters, digits, '_'), got {tag!r}")
    missing = [f for f in ("run.json", "metrics.csv") if not (run_dir / f).is_file()]
    if missing:
        raise ConfigError(f"{run_dir} is not a run folder: {' and '.join(missing)} missing")
    source = run_dir / "last.safetensors"
    if not source.is_file():
        raise ConfigError(
            f"{run_dir} has not finished (no last.safetensors): finish it with python -m zoo.train --resume {run_dir}"
        )
    model = load(source).eval()  # a file without a zoo header is refused here
    _, header = read_weights(source)
    name = header["architecture"]
    # never download: the card names the data copy (``data_note``) its numbers come from, so use the one given
    test = load_cifar(header.get("config", {}).get("dataset", "cifar10"), "test", data_dir, download=False)
    fp32 = evaluate_model(model, test, progress=True)
    out_rel = f"pretrained/{name}.{tag}.safetensors"
    out = PACKAGE / out_rel
    meta = {
        k: header[k]
        for k in ("recipe", "config", "command", "seed", "train_time_s", "machine", "git_commit", "sessions")
        if k in header
    }
    meta["data"] = data_note
    half = copy.deepcopy(model).half().float()  # exactly what loading an fp16 file gives
    result = evaluate_model(
        half, test, tta=2, progress=True
    )  # by_tta: plain, flip and flip + translate, from one set of passes
    if abs(result["by_tta"][0]["top1"] - fp32["top1"]) <= 0.05:
        storage, shipped = "fp16", half
    else:
        storage, shipped, result = "fp32", model, evaluate_model(model, test, tta=2, progress=True)
    plain, tta, tta2 = result["by_tta"]
    metrics = {
        "top1": round(plain["top1"], 2),
        "top5": round(plain["top5"], 2),
        "loss": round(plain["loss"], 4),
        "top1_tta": round(tta["top1"], 2),
        "top1_tta2": round(tta2["top1"], 2),
    }
    dtype = torch.float16 if storage == "fp16" else None
    save_weights(shipped, out, dtype=dtype, **meta, metrics=metrics)  # the header carries the card's numbers
    entry = {
        "file": out_rel,
        "sha256": file_sha256(out),
        "num_classes": model.num_classes,
        "label_names": list(model.pretrained_cfg["label_names"]),
        "metrics": metrics,
        "recipe": header.get("recipe"),
        "card": f"docs/cards/{name}.{tag}.md",
        "default": default,
        "storage": storage,
        "data": data_note,
    }
    manifest_path = PACKAGE / "pretrained" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    tags = manifest.setdefault(name, {})
    if default:
        for other in tags.values():
            other["default"] = False
    tags[tag] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    cards = REPO / "docs" / "cards"
    cards.mkdir(parents=True, exist_ok=True)
    run = json.loads((run_dir / "run.json").read_text())
    (cards / f"{name}.{tag}.md").write_text(_card(name, tag, entry, header, run, note))
    shutil.copyfile(run_dir / "metrics.csv", cards / f"{name}.{tag}.metrics.csv")
    attach_published_weights(manifest_path)
    names = list_models(source="zoo")
    speed_file = REPO / "docs" / "data" / "model_speed.json"  # keep the page's CPU speed columns
    speed = load_speed(speed_file) if speed_file.is_file() else None
    (REPO / "docs" / "models.md").write_text(models_markdown(names, speed))
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python tools/publish.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run_dir", help="a finished run folder (holding last.safetensors, run.json, metrics.csv)")
    p.add_argument("--tag", required=True, help="weight tag, e.g. cifar10 or notebook")
    p.add_argument("--data-dir", default=None, help="the test split (never downloaded: the copy --data-note names)")
    p.add_argument("--not-default", dest="default", action="store_false", help="do not make this the default tag")
    p.add_argument("--data-note", default=DATA_NOTE, help="how the data is described in the card")
    p.add_argument("--note", default="", help="a paragraph for the card (e.g. how the recipe was chosen)")
    p.add_argument("--hub", metavar="ORG/REPO", help="also upload the shipped file and its card to this Hub repo")
    args = p.parse_args(argv)

    def body() -> int:
        entry = publish(
            args.run_dir,
            args.tag,
            data_dir=args.data_dir,
            default=args.default,
            data_note=args.data_note,
            note=args.note,
        )
        print(json.dumps(entry, indent=2))
        if args.hub:
            shipped, card = load(PACKAGE / entry["file"]), (REPO / entry["card"]).read_text()
            print(push_to_hub(shipped, args.hub, card=card, commit_message=f"Add {entry['file']}"))
        return 0

    return run("tools/publish.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
