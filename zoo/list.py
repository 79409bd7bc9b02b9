"""``python -m zoo.list``: the registered models as a terminal table, a markdown table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._cli import number, run
from .registry import list_models, model_info, safe_counts

__all__ = ["build_parser", "main", "markdown_table", "model_rows"]


def model_rows(names: Sequence[str], *, card_links: bool = False) -> list[dict[str, str]]:
    """One row per model: family, size, cost, weights and their top-1; a plugin model that fails to build is
    reported (a warning) and left out, the others stay."""
    rows = []
    for name in names:
        info = model_info(name)
        counts = safe_counts(info)
        if counts is None:
            continue
        top1 = [f"{spec.metrics['top1']:.2f}" for spec in info.weights.values() if "top1" in spec.metrics]
        tags = [f"[{t}](cards/{name}.{t}.md)" if card_links and s.card else t for t, s in info.weights.items()]
        rows.append(
            {
                "model": name,
                "family": info.family,
                "params": f"{counts[0] / 1e6:.3f} M",
                "MACs": f"{counts[1] / 1e6:.1f} M",
                "weights": ", ".join(tags) or "-",
                "top-1 %": ", ".join(top1) or "-",
                "paper": info.paper,
            }
        )
    return rows


def markdown_table(rows: Sequence[dict[str, str]]) -> str:
    """A markdown table of ``rows`` (dicts with the same keys, in column order)."""
    cols = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(r[c] for c in cols) + " |" for r in rows)]) + "\n"


def _text_table(rows: Sequence[dict[str, str]]) -> str:
    rows = [{k: v for k, v in r.items() if k != "paper"} for r in rows]
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
    filters.add_argument("--max-params", type=number(0), default=None, help="parameter budget, e.g. 1e6")
    filters.add_argument("--max-macs", type=number(0), default=None, help="MAC budget at 32x32, e.g. 100e6")
    filters.add_argument("--builtin", action="store_true", help="leave out plugin models")
    output = parser.add_argument_group("output")
    output.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    return parser


def _main(args: argparse.Namespace) -> int:
    names = list_models(
        args.pattern,
        source="zoo" if args.builtin else None,
        max_params=None if args.max_params is None else int(args.max_params),
        max_macs=None if args.max_macs is None else int(args.max_macs),
    )
    if args.pretrained:
        names = [n for n in names if model_info(n).weights]
    rows = model_rows(names)
    if args.format == "markdown":
        sys.stdout.write(markdown_table(rows))
    elif args.format == "json":
        kept = {r["model"] for r in rows}  # a plugin whose builder fails is reported and left out
        sys.stdout.write(json.dumps([model_info(n).to_dict() for n in names if n in kept], indent=2) + "\n")
    else:
        sys.stdout.write(_text_table(rows) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run("zoo.list", lambda: _main(args))


if __name__ == "__main__":
    raise SystemExit(main())
