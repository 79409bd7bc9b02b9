"""``python -m zoo.list``: the registered models as a terminal table, markdown (docs/models.md) or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .registry import list_models, model_info

__all__ = ["load_speed", "main", "models_markdown"]

DOCS_HEADER = """# Models

Generated from the registry by `python -m zoo.list --format markdown --builtin --speed docs/data/model_speed.json
--output docs/models.md`; `tests/test_docs.py` fails when this file is stale. Parameters are for 10 classes;
MACs are one 32x32 forward pass, counted by `torch.utils.flop_counter`. Accuracy is CIFAR-10 top-1 on the test
split of the data named in each weight's card (`python -m zoo.eval NAME.TAG` re-measures it).
"""

SPEED_NOTE = """
CPU images/s, measured by `python benchmarks/model_speed.py --json docs/data/model_speed.json` on {cpu},
{threads} threads, torch {torch}, on {date}: *infer* is eval-mode batches of 256 with BatchNorm folded into the
convs, channels_last and bf16 autocast (the deployment path, docs/deploy.md); *train* is bare SGD steps at the
batch size of the model's recipe (in brackets) with the engine's precision policy, an upper bound for
`python -m zoo.train NAME` on that machine. A model without a measurement shows `-`.
"""


def load_speed(path: str | Path) -> dict[str, Any]:
    """A results file of ``benchmarks/model_speed.py``: ``{"machine": {...}, "date": ..., "models": {name: {...}}}``."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not {"machine", "date", "models"} <= data.keys():
        raise ValueError(f"{path}: expected the JSON that benchmarks/model_speed.py writes (machine, date, models)")
    return data


def _speed_cols(entry: Mapping[str, Any] | None) -> dict[str, str]:
    if entry is None:
        return {"CPU infer img/s": "-", "CPU train img/s": "-"}
    return {
        "CPU infer img/s": f"{entry['infer_images_per_s']:,.0f}",
        "CPU train img/s": f"{entry['train_images_per_s']:,.0f} ({entry['train_batch_size']})",
    }


def _rows(names: Sequence[str], links: bool = False, speed: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    rows = []
    for name in names:
        info = model_info(name)
        top1 = [f"{spec.metrics['top1']:.2f}" for spec in info.weights.values() if "top1" in spec.metrics]
        tags = [f"[{t}](cards/{name}.{t}.md)" if links and s.card else t for t, s in info.weights.items()]
        rows.append(
            {
                "model": name,
                "family": info.family,
                "params": f"{info.params / 1e6:.3f} M",
                "MACs": f"{info.macs / 1e6:.1f} M",
                "weights": ", ".join(tags) or "-",
                "top-1 %": ", ".join(top1) or "-",
                **({} if speed is None else _speed_cols(speed["models"].get(name))),
                "paper": info.paper,
            }
        )
    return rows


def models_markdown(names: Sequence[str], speed: Mapping[str, Any] | None = None) -> str:
    """The docs/models.md page for ``names``, with CPU speed columns from ``speed`` (see `load_speed`)."""
    rows = _rows(names, links=True, speed=speed)
    cols = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    note = "" if speed is None else SPEED_NOTE.format(date=speed["date"], **speed["machine"])
    return DOCS_HEADER + note + "\n" + "\n".join(lines) + "\n"


def _text_table(names: Sequence[str], speed: Mapping[str, Any] | None = None) -> str:
    rows = [{k: v for k, v in r.items() if k != "paper"} for r in _rows(names, speed=speed)]
    if not rows:
        return "no models match"
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    out = ["  ".join(c.ljust(widths[c]) for c in cols)]
    out += ["  ".join(r[c].ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m zoo.list", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("pattern", nargs="*", default=["*"], help="fnmatch patterns, e.g. 'resnet*'")
    filters = parser.add_argument_group("filters")
    filters.add_argument("--pretrained", action="store_true", help="only models with published weights")
    filters.add_argument("--max-params", type=float, default=None, help="parameter budget, e.g. 1e6")
    filters.add_argument("--max-macs", type=float, default=None, help="MAC budget at 32x32, e.g. 100e6")
    filters.add_argument("--builtin", action="store_true", help="leave out plugin models")
    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    output.add_argument(
        "--speed", type=Path, default=None, help="add CPU images/s columns from this benchmarks/model_speed.py JSON"
    )
    output.add_argument("--output", type=Path, default=None, help="write to this file instead of stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = list_models(
        args.pattern,
        source="zoo" if args.builtin else None,
        max_params=None if args.max_params is None else int(args.max_params),
        max_macs=None if args.max_macs is None else int(args.max_macs),
    )
    if args.pretrained:
        names = [n for n in names if model_info(n).weights]
    try:
        speed = None if args.speed is None else load_speed(args.speed)
    except (OSError, ValueError) as err:
        print(f"zoo.list: --speed: {err}", file=sys.stderr)
        return 2
    if args.format == "markdown":
        text = models_markdown(names, speed)
    elif args.format == "json":
        text = json.dumps([model_info(n).to_dict() for n in names], indent=2) + "\n"
    else:
        text = _text_table(names, speed) + "\n"
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
