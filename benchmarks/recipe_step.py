"""What one training step of each recipe costs, side by side in one process: step time and its optimizer share.

    python benchmarks/recipe_step.py --data-dir DIR [--model airbench94_net] [--recipes fast fastest]
        [--epoch N] [--steps 6] [--rounds 3] [--threads 2] [--no-process-tuning]
    python benchmarks/recipe_step.py --data-dir DIR --recipes fast fastest fastest,muon_precision=bf16

Builds an engine `Trainer` per recipe on the same data, then times ``--steps`` of each recipe's real steps
(`Trainer.batch` + `Trainer.train_step`: gather, augmentation, forward, backward, optimizer, lookahead) in turn,
``--rounds`` times, so whatever else the machine does falls on all of them. The steps are those of epoch
``--epoch`` (default: each recipe's last, at full image size, with the stem frozen where the recipe freezes it).
Prints, per recipe: the median step time, the median time inside ``optimizer.step`` (a step hook), images/s, and
each recipe's time per image relative to the first recipe's (the step time's ratio where the batches are equal):
what a whole run's time ratio should be, epoch for epoch, when the host holds still. The process is set up as
``python -m zoo.train`` sets it up (`configure_process`); ``--no-process-tuning`` leaves it as Python starts it,
which is what that setup buys. A recipe may carry overrides after commas (``RECIPE,KEY=VALUE,...``, values as in
time_to_accuracy.py's ``--set``): one setting's cost, side by side with the recipe as it is.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import torch
from _throughput import machine_line
from time_to_accuracy import parse_set

from zoo.engine import RECIPES, Trainer, build_config, configure_process


def split_spec(spec: str) -> list[str]:
    """``RECIPE,KEY=VALUE,...`` split at its commas, not at those inside a JSON value (``freeze={"a":1,"b":2}``)."""
    return re.split(r",(?![^{\[]*[}\]])", spec)


def recipe_spec(spec: str) -> str:
    """``RECIPE[,KEY=VALUE...]``, checked: an argparse type."""
    recipe, *sets = split_spec(spec)
    if recipe not in RECIPES:
        raise argparse.ArgumentTypeError(f"unknown recipe {recipe!r}; expected one of {', '.join(sorted(RECIPES))}")
    if bad := [item for item in sets if "=" not in item]:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected RECIPE,KEY=VALUE,..., got {bad[0]!r} without =VALUE")
    return spec


def build(model: str, spec: str, data_dir: str, batch_size: int | None) -> Trainer:
    recipe, *sets = split_spec(spec)
    batch = {} if batch_size is None else {"batch_size": batch_size}  # a recipe's own override wins
    overrides = {"data_dir": data_dir, "progress": False, **batch, **parse_set(sets)}
    return Trainer(build_config(model, recipe=recipe, overrides=overrides), argv=["benchmarks/recipe_step.py"])


def time_steps(trainer: Trainer, epoch: int, steps: int) -> tuple[list[float], list[float]]:
    """Seconds of each of ``steps`` training steps of ``epoch``, and of the optimizer step inside each."""
    trainer.train_mode(epoch)
    started: list[float] = []
    opt_times: list[float] = []
    pre = trainer.optimizer.register_step_pre_hook(lambda *_: started.append(time.perf_counter()))
    post = trainer.optimizer.register_step_post_hook(lambda *_: opt_times.append(time.perf_counter() - started[-1]))
    perm = torch.randperm(len(trainer.train_split))
    step_times = []
    try:
        for step in range(steps):
            in_epoch = step % trainer.steps_per_epoch
            trainer.global_step = epoch * trainer.steps_per_epoch + in_epoch  # what step-dependent work keys on
            tick = time.perf_counter()
            trainer.train_step(*trainer.batch(perm, epoch, in_epoch))
            step_times.append(time.perf_counter() - tick)
    finally:
        pre.remove()
        post.remove()
    return step_times, opt_times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder holding the official CIFAR-10 layout")
    p.add_argument("--model", default="airbench94_net")
    p.add_argument(
        "--recipes", nargs="+", type=recipe_spec, default=["fast", "fastest"], help="RECIPE or RECIPE,KEY=VALUE,..."
    )
    p.add_argument("--epoch", type=int, default=None, help="0-based epoch whose steps are timed (default: the last)")
    p.add_argument("--steps", type=int, default=6, help="steps per recipe per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds of every recipe in turn (after one warm-up step)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--batch-size", type=int, default=None, help="the recipes' batch size (RECIPE,batch_size=N wins)")
    p.add_argument(
        "--no-process-tuning", action="store_true", help="skip configure_process (and --threads): what it buys"
    )
    args = p.parse_args(argv)
    trainers = {r: build(args.model, r, args.data_dir, args.batch_size) for r in args.recipes}
    if not args.no_process_tuning:
        configure_process(trainers[args.recipes[0]].device, args.threads)  # threads and malloc, as zoo.train sets them
    epochs = {r: t.cfg.epochs - 1 if args.epoch is None else args.epoch for r, t in trainers.items()}
    for recipe, trainer in trainers.items():
        time_steps(trainer, epochs[recipe], 1)  # warm-up: allocator, oneDNN primitives
    steps = {r: ([], []) for r in trainers}
    for _ in range(args.rounds):
        for recipe, trainer in trainers.items():
            for into, got in zip(steps[recipe], time_steps(trainer, epochs[recipe], args.steps), strict=True):
                into.extend(got)
    first = statistics.median(steps[args.recipes[0]][0]) / trainers[args.recipes[0]].cfg.batch_size  # s per image
    print(machine_line())
    print(f"{args.model}, {args.rounds} rounds x {args.steps} steps per recipe")
    print("| recipe | epoch | batch | step ms (median) | optimizer ms | images/s | time per image vs first |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for recipe, (step_times, opt_times) in steps.items():
        step, batch = statistics.median(step_times), trainers[recipe].cfg.batch_size
        print(
            f"| {recipe} | {epochs[recipe]} | {batch} | {1000 * step:.0f} | "
            f"{1000 * statistics.median(opt_times):.1f} | {batch / step:.0f} | {step / batch / first:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
