"""Accuracy table: every loss (and the teacher and the scratch student), 3 seeds, mean ± std.

Runs `pldistill compare` on the flagship recipe (recipes/compare/depth_to_rgb_losses.yaml)
and on hires_to_lowres (recipes/compare/hires_to_lowres_losses.yaml), then writes both
tables with the command, the machine and the wall time to bench/results/accuracy.{json,md}.

    .venv/bin/python bench/accuracy.py              # ~1.5-2 h on 2 CPU cores (teachers cached: less)
    .venv/bin/python bench/accuracy.py --collect runs/depth_to_rgb_losses/<stamp> runs/hires_to_lowres_losses/<stamp>

``--collect`` summarises finished comparison folders instead of training (their own
comparison.json says what produced them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe_machine  # noqa: E402

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
COMPARISONS = ["recipes/compare/depth_to_rgb_losses.yaml", "recipes/compare/hires_to_lowres_losses.yaml"]


def reading(rows: list[dict]) -> str:
    """One honest sentence per table, computed from it: where SP stands against scratch and the best row."""
    by = {r["row"]: r for r in rows}
    students = [r for r in rows if "gain_mean" in r]
    best = max(students, key=lambda r: r["mean"])
    sp = by.get("sp")
    text = f"Best student row: {best['row']} ({100 * best['mean']:.1f}%, {100 * best['gain_mean']:+.1f} over scratch)."
    if sp is not None:
        verdict = "beats" if sp["gain_mean"] - sp["gain_std"] > 0 else (
            "does not beat" if sp["gain_mean"] + sp["gain_std"] < 0 else "is within one std of")
        text += f" SP alone {verdict} scratch ({100 * sp['gain_mean']:+.1f} ± {100 * sp['gain_std']:.1f} points, paired)."
    if "sp+kd" in by:
        text += f" SP + KD: {100 * by['sp+kd']['gain_mean']:+.1f} ± {100 * by['sp+kd']['gain_std']:.1f}."
    return text


def _relative(path: str) -> str:
    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_absolute() and ROOT in p.parents else path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collect", nargs="+", type=Path, default=None, help="finished comparison folders")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the files' seeds")
    parser.add_argument("--note", default=None, help="a line for the results file, e.g. how collected folders were checked")
    args = parser.parse_args()
    import torch

    from pldistill.compare import run_comparison

    folders = []
    if args.collect:
        folders = [(folder, None) for folder in args.collect]
    else:
        for file in COMPARISONS:
            started = time.perf_counter()
            folder, _ = run_comparison(ROOT / file, seeds=args.seeds, progress=True)
            folders.append((folder, time.perf_counter() - started))
    tables = []
    for folder, wall in folders:
        data = json.loads((folder / "comparison.json").read_text())
        tables.append({"folder": str(folder), "file": data["file"], "device": data["device"],
                       "wall_seconds": wall, "train_seconds": sum(c["seconds"] for c in data["cells"]),
                       "rows": data["rows"], "table": (folder / "comparison.md").read_text(),
                       "reading": reading(data["rows"])})
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--note" and (i == 0 or sys.argv[i] != "--note")]
    command = " ".join(["python bench/accuracy.py", *shown]) + (" --note …" if args.note else "")
    results = {"command": command, **describe_machine(torch), "tables": tables}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps(results, indent=2))
    lines = ["# Accuracy: every loss, the teacher and the scratch student, mean ± std over seeds", "",
             f"Command: `{command}`  ",
             f"Machine: {results['machine']}; torch {results['torch']}; {results['date']}.", ""]
    for t in tables:
        body = t["table"].replace("\n# ", "\n## ").lstrip("# ")
        wall = f"{t['wall_seconds'] / 60:.0f} min wall" if t["wall_seconds"] else "collected from the folder"
        lines += [f"## {body.strip()}", "",
                  f"Folder `{t['folder']}` (`pldistill compare {_relative(t['file'])}`); "
                  f"{t['train_seconds'] / 60:.0f} min of training over all cells, {wall}.", "",
                  t["reading"], ""]
    if args.note:
        lines += [args.note, ""]
    (RESULTS / "accuracy.md").write_text("\n".join(lines))
    print((RESULTS / "accuracy.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
