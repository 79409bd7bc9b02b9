"""Generated docs: ``python tools/gen_docs.py`` rewrites every generated table; ``--check`` fails when one is stale.

- ``docs/models.md``: the registry's built-in models, with CPU speed columns from ``docs/data/model_speed.json``
  (``python benchmarks/model_speed.py --models NAME --json docs/data/model_speed.json`` after adding a model).
- the flag table in ``docs/training.md``: every ``TrainConfig`` field, from its own definition.

A maintainer tool: it writes into this checkout, never into an installed package.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import zoo
from zoo.list import markdown_table, model_rows

ROOT = Path(__file__).resolve().parents[1]
SPEED = ROOT / "docs" / "data" / "model_speed.json"

MODELS_HEADER = """# Models

Generated from the registry by `python tools/gen_docs.py`; `tests/test_docs.py` fails when this file is stale.
Parameters are for 10 classes; MACs are one 32x32 forward pass, counted by `torch.utils.flop_counter`. Accuracy
is CIFAR-10 top-1 on the test split of the data named in each weight's card (`python -m zoo.eval NAME.TAG`
re-measures it).
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


def models_markdown(names: Sequence[str], speed: Mapping[str, Any] | None = None) -> str:
    """The docs/models.md page for ``names``, with CPU speed columns from ``speed`` (see `load_speed`)."""
    rows = []
    for row in model_rows(names, card_links=True):
        paper = row.pop("paper")
        rows.append(
            {**row, **({} if speed is None else _speed_cols(speed["models"].get(row["model"]))), "paper": paper}
        )
    note = "" if speed is None else SPEED_NOTE.format(date=speed["date"], **speed["machine"])
    return MODELS_HEADER + note + "\n" + markdown_table(rows)


def generated() -> dict[Path, str]:
    """Every generated file's path and the text it should hold."""
    speed = load_speed(SPEED) if SPEED.is_file() else None
    return {ROOT / "docs" / "models.md": models_markdown(zoo.list_models(source="zoo"), speed)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a generated file is stale")
    args = p.parse_args(argv)
    stale = []
    for path, text in generated().items():
        if path.read_text() != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
