"""Pack finished run folders into a few size-capped archives, for a machine that returns only a few small files.

    python tools/pack_runs.py RUNS DEST [--max-files 8] [--max-mib 16]

The device tool returns at most 8 files of at most 16 MiB each. Each finished run under ``RUNS`` (a folder with
``run.json`` holding a result) contributes what ``tools/publish.py`` reads: ``run.json``, ``metrics.jsonl``,
``metrics.csv`` and ``last.safetensors``. Runs go into ``DEST/runs-N.tar.gz``, largest first, each into the first
archive with room; a run that fits nowhere is left out and named, with its size. Prints one line per archive and
per run left out; exits 1 when something was left out.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

FILES = ("run.json", "metrics.jsonl", "metrics.csv", "last.safetensors")


def finished_runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("run.json") if "result" in json.loads(p.read_text()))


def run_bytes(run: Path) -> int:
    return sum((run / name).stat().st_size for name in FILES if (run / name).is_file())


def plan(runs: list[Path], max_files: int, max_bytes: int) -> tuple[list[list[Path]], list[Path]]:
    """First-fit decreasing: archives (each a list of runs) and the runs left out. Sizes are uncompressed, so an
    archive never exceeds ``max_bytes`` (weights barely compress)."""
    bins: list[list[Path]] = []
    used: list[int] = []
    left: list[Path] = []
    for run in sorted(runs, key=run_bytes, reverse=True):
        size = run_bytes(run)
        slot = next((i for i, u in enumerate(used) if u + size <= max_bytes), None)
        if slot is None and len(bins) < max_files and size <= max_bytes:
            bins.append([])
            used.append(0)
            slot = len(bins) - 1
        if slot is None:
            left.append(run)
            continue
        bins[slot].append(run)
        used[slot] += size
    return bins, left


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, help="folder holding run folders (searched recursively)")
    p.add_argument("dest", type=Path, help="where the archives go")
    p.add_argument("--max-files", type=int, default=8)
    p.add_argument("--max-mib", type=float, default=16)
    args = p.parse_args(argv)
    bins, left = plan(finished_runs(args.runs), args.max_files, int(args.max_mib * 2**20))
    args.dest.mkdir(parents=True, exist_ok=True)
    for i, runs in enumerate(bins):
        archive = args.dest / f"runs-{i}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for run in runs:
                for name in FILES:
                    if (run / name).is_file():
                        tar.add(run / name, arcname=f"{run.relative_to(args.runs)}/{name}")
        print(f"{archive}: {', '.join(r.name for r in runs)} ({archive.stat().st_size / 2**20:.1f} MiB)")
    for run in left:
        print(f"left out: {run} ({run_bytes(run) / 2**20:.1f} MiB does not fit)")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
