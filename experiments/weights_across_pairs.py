"""One table from several weight comparisons: the paper's absolute γ against a weight relative to CE, per pair.

Each argument is a finished ``pldistill compare`` folder of a comparison with
the rows ``sp-paper`` (γ = 3000) and ``sp-relative`` (``relative: true``), one
folder per teacher–student pair (``recipes/compare/depth_to_rgb_weights.yaml``
with ``teacher.model=… student.model=…``, ``speech_to_digits_weights.yaml``).
The table gives, per pair: scratch, both rows with their gain over scratch
paired by seed, how many seeds are below scratch and, for a negative mean gain,
the paired t-test's two-sided p (significant below 0.05), the weight each
row trained with and its measured gradient ratio to CE, and any health finding.

    python -m experiments.weights_across_pairs runs/a/<stamp> runs/b/<stamp> --out experiments/results/weights
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

ROWS = ("sp-paper", "sp-relative", "sp-projected")  # sp-projected (conflicts: project) where a folder has it


def paired_t(gains: list[float]) -> tuple[float, float] | None:
    """Student's t of the paired gains and its two-sided p (n − 1 degrees of freedom); None below 2 seeds."""
    if len(gains) < 2:
        return None
    from scipy import stats

    sd = statistics.stdev(gains)
    if sd == 0:
        return (float("inf") if statistics.fmean(gains) > 0 else float("-inf")), 0.0
    t = statistics.fmean(gains) / (sd / len(gains) ** 0.5)
    return t, float(2 * stats.t.sf(abs(t), len(gains) - 1))


def _below(row: dict) -> str:
    """'2/3, p = 0.04' — seeds below scratch, and the paired test's p where the mean gain is negative."""
    text = f"{row['below_scratch']}/{len(row['gains'])}"
    test = paired_t(row["gains"])
    if test is not None and statistics.fmean(row["gains"]) < 0:
        text += f", p = {test[1]:.2f}" + (" (significant)" if test[1] < 0.05 else "")
    return text


def _mean_std(values: list[float]) -> str:
    if not values:
        return ""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):+.1f} ± {100 * std:.1f}"


def pair_summary(folder: Path) -> dict:
    """Scratch and both rows of one comparison folder, paired by seed."""
    results = json.loads((folder / "comparison.json").read_text())
    recipe = (folder / "comparison.yaml").read_text()
    cells = {(c["seed"], c["row"]): c for c in results["cells"]}
    seeds = sorted({s for s, row in cells if row == "scratch"})
    out = {"folder": str(folder), "comparison": results["comparison"], "overrides": _overrides(recipe),
           "seeds": seeds, "scratch": [cells[s, "scratch"]["test_acc"] for s in seeds],
           "teacher": [cells[s, "teacher"]["test_acc"] for s in seeds if (s, "teacher") in cells], "rows": {}}
    for row in ROWS:
        mine = [s for s in seeds if (s, row) in cells]
        if not mine and row == "sp-projected":
            continue
        gains = [cells[s, row]["test_acc"] - cells[s, "scratch"]["test_acc"] for s in mine]
        weights = [next(iter(cells[s, row].get("weights", {}).values()), {}) for s in mine]
        out["rows"][row] = {
            "seeds": mine, "test_acc": [cells[s, row]["test_acc"] for s in mine], "gains": gains,
            "below_scratch": sum(g < 0 for g in gains),
            "weight": [w.get("weight") for w in weights], "grad_ratio": [w.get("grad_ratio") for w in weights],
            "health": sorted({f["kind"] for s in mine for f in cells[s, row].get("health", [])}),
        }
    return out


def _overrides(comparison_yaml: str) -> list[str]:
    import yaml

    return list((yaml.safe_load(comparison_yaml) or {}).get("overrides") or [])


def table(pairs: list[dict]) -> str:
    projected = any("sp-projected" in p["rows"] for p in pairs)
    extra = " SP relative, conflicts projected: gain | below scratch |" if projected else ""
    lines = [
        "| pair (teacher → student) | seeds | scratch | SP γ = 3000: gain | below scratch | its gradient ÷ CE's "
        f"| SP relative (1× CE): gain | below scratch | calibrated γ | health (γ = 3000) |{extra}",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|" + ("---:|---:|" if projected else ""),
    ]
    for p in pairs:
        proj = p["rows"].get("sp-projected")
        tail = ("" if not projected else
                f" {_mean_std(proj['gains'])} ({len(proj['gains'])} seeds) | {_below(proj)} |" if proj else " | |")
        paper, rel = p["rows"]["sp-paper"], p["rows"]["sp-relative"]
        ratio = [r for r in paper["grad_ratio"] if r is not None]
        gamma = [w for w in rel["weight"] if w is not None]
        lines.append(
            f"| {p['name']} | {len(p['seeds'])} | {100 * statistics.fmean(p['scratch']):.1f} "
            f"| {_mean_std(paper['gains'])} | {_below(paper)} "
            f"| {statistics.fmean(ratio):.1f}× | {_mean_std(rel['gains'])} | {_below(rel)} "
            f"| {statistics.fmean(gamma):.0f} | {', '.join(paper['health']) or 'none'} |{tail}"
        )
    return "\n".join(lines) + "\n"


def copy_pair_folders(pairs: list[dict], folders: list[Path], out: Path) -> None:
    """Each pair's own table and cells into ``out``/<its name>, beside the summary."""
    out.mkdir(parents=True, exist_ok=True)
    for p, folder in zip(pairs, folders):
        dest = out / "".join(c if c.isascii() and c.isalnum() else "_" for c in p["name"])
        dest.mkdir(exist_ok=True)
        for name in ("comparison.md", "comparison.json", "cells.jsonl", "comparison.yaml"):
            if (folder / name).exists():
                shutil.copy(folder / name, dest / name)


def write_pairs(pairs: list[dict], folders: list[Path], out: Path, text: str) -> int:
    """The pairs' folders, pairs.json and the table ``text`` (pairs.md) into ``out``; the table printed."""
    copy_pair_folders(pairs, folders, out)
    (out / "pairs.json").write_text(json.dumps(pairs, indent=2))
    (out / "pairs.md").write_text(text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="finished compare folders, one per pair")
    parser.add_argument("--names", nargs="+", default=None, help="a name per folder for the table")
    parser.add_argument("--out", type=Path, required=True, help="where pairs.json, pairs.md and the folders' tables go")
    args = parser.parse_args(argv)
    pairs = [pair_summary(f) for f in args.folders]
    for p, name in zip(pairs, args.names or [p["comparison"] + " " + " ".join(p["overrides"]) for p in pairs]):
        p["name"] = name
    return write_pairs(pairs, args.folders, args.out, table(pairs))


if __name__ == "__main__":
    raise SystemExit(main())
