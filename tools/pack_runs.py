"""Pack finished run folders into a few size-capped files, for a machine that returns only a few small files.

    python tools/pack_runs.py RUNS DEST [--max-files 8] [--max-mib 16]

The device tool returns at most 8 files of at most 16 MiB each. Each finished run under ``RUNS`` (a folder with
``run.json`` holding a result) contributes what ``tools/publish.py`` reads: ``run.json``, ``metrics.jsonl``,
``metrics.csv`` and ``last.safetensors``. Runs that fit in one file go into ``DEST/runs-N.tar.gz``, largest first,
each into the first archive with room. The files left then take the larger runs, smallest first, each as one tar
cut into parts (``DEST/NAME.tar.part-K``); put one back together with ``cat NAME.tar.part-* | tar x``. A run that
fits nowhere is left out and named, with its size. Prints one line per file written and per run left out; exits 1
when something was left out.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import tarfile
from pathlib import Path

FILES = ("run.json", "metrics.jsonl", "metrics.csv", "last.safetensors")
TAR_SLACK = 8 * 1024  # a tar's headers and padding for four files, at most


def finished_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("run.json") if "result" in json.loads(p.read_text()))


def run_bytes(run: Path) -> int:
    return sum((run / name).stat().st_size for name in FILES if (run / name).is_file())


def plan(runs: list[Path], max_files: int, max_bytes: int) -> tuple[list[list[Path]], list[Path], list[Path]]:
    """Archives (each a list of runs, first-fit decreasing), runs cut into parts, and the runs left out. Sizes are
    uncompressed, so an archive never exceeds ``max_bytes`` (weights barely compress)."""
    sizes = {run: run_bytes(run) for run in runs}
    bins: list[list[Path]] = []
    used: list[int] = []
    big = sorted((r for r in runs if sizes[r] + TAR_SLACK > max_bytes), key=sizes.get)
    left: list[Path] = []
    for run in sorted((r for r in runs if r not in big), key=sizes.get, reverse=True):  # stable: ties keep order
        slot = next((i for i, u in enumerate(used) if u + sizes[run] <= max_bytes), None)
        if slot is None and len(bins) < max_files:
            bins.append([])
            used.append(0)
            slot = len(bins) - 1
        if slot is None:
            left.append(run)
            continue
        bins[slot].append(run)
        used[slot] += sizes[run]
    free = max_files - len(bins)
    split = []
    for run in big:
        parts = math.ceil((sizes[run] + TAR_SLACK) / max_bytes)
        if parts <= free:
            split.append(run)
            free -= parts
        else:
            left.append(run)
    return bins, split, left


def _add(tar: tarfile.TarFile, run: Path, root: Path) -> None:
    for name in FILES:
        if (run / name).is_file():
            tar.add(run / name, arcname=f"{run.relative_to(root)}/{name}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, help="folder holding run folders (searched recursively)")
    p.add_argument("dest", type=Path, help="where the archives go")
    p.add_argument("--max-files", type=int, default=8)
    p.add_argument("--max-mib", type=float, default=16)
    args = p.parse_args(argv)
    max_bytes = int(args.max_mib * 2**20)
    bins, split, left = plan(finished_runs(args.runs), args.max_files, max_bytes)
    args.dest.mkdir(parents=True, exist_ok=True)
    for i, runs in enumerate(bins):
        archive = args.dest / f"runs-{i}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for run in runs:
                _add(tar, run, args.runs)
        print(f"{archive}: {', '.join(r.name for r in runs)} ({archive.stat().st_size / 2**20:.1f} MiB)")
    for run in split:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            _add(tar, run, args.runs)
        data = buffer.getvalue()
        name = "--".join(run.relative_to(args.runs).parts) or run.name  # RUNS may be the run folder itself
        for k in range(0, len(data), max_bytes):
            (args.dest / f"{name}.tar.part-{k // max_bytes:02d}").write_bytes(data[k : k + max_bytes])
        print(f"{args.dest / name}.tar.part-*: {run.name} in {math.ceil(len(data) / max_bytes)} parts")
    for run in left:
        print(f"left out: {run} ({run_bytes(run) / 2**20:.1f} MiB does not fit)")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
