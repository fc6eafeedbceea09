"""One table from several comparisons run with ``student.holdout``: what the run delivers, per pair.

Each argument is a finished ``pldistill compare`` folder trained with
``student.holdout=…`` (every student on the training split less the hold-out;
``stages/delivery.py``), one folder per teacher–student pair. Per pair and
distilled row: scratch, the distilled student's gain over scratch and the
delivered student's (the distilled one unless it scored below scratch on the
hold-out), both paired by seed, with the seeds below scratch and, for a
negative mean, the paired t-test's p, and the seeds on which distillation was
declined.

``--whole-split`` names, per pair, the same comparison trained without the
hold-out. A run under ``student.refit`` trains its delivered students on the
whole split from the same seed, so they are those cells
(tests/test_delivery.py proves the equality): the table adds the gain of the
student a refit run delivers, the hold-out's choice applied to them.

    python -m experiments.delivery_across_pairs runs/a/<stamp> runs/b/<stamp> --names a b --out experiments/results/delivery
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from experiments.weights_across_pairs import _below, _mean_std, write_pairs


def _cells(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "cells.jsonl").read_text().splitlines() if line.strip()]


def refit_gains(pair: dict, whole: Path) -> None:
    """Add to each row of ``pair`` the gains of the whole-split students its hold-out decisions deliver."""
    cells = _cells(whole)
    scratch = {c["seed"]: c["test_acc"] for c in cells if c["row"] == "scratch"}
    accs = {(c["row"], c["seed"]): c["test_acc"] for c in cells}
    for name, row in pair["rows"].items():
        missing = [s for s in row["seeds"] if (name, s) not in accs or s not in scratch]
        if missing:
            raise SystemExit(f"{whole}: no whole-split cells of row {name!r} for seeds {missing}")
        row["refit_gains"] = [(0.0 if s in row["declined"] else accs[(name, s)] - scratch[s]) for s in row["seeds"]]
        row["whole_split_gains"] = [accs[(name, s)] - scratch[s] for s in row["seeds"]]
    pair["whole_split_scratch"] = [scratch[s] for s in sorted(scratch)]


def pair_rows(folder: Path) -> dict:
    """Scratch and every delivered row of one comparison folder, paired by seed."""
    cells = _cells(folder)
    scratch = {c["seed"]: c["test_acc"] for c in cells if c["row"] == "scratch"}
    rows: dict[str, dict] = {}
    for c in sorted(cells, key=lambda c: c["seed"]):
        if "delivered" not in c or c["seed"] not in scratch:
            continue
        row = rows.setdefault(c["row"], {"seeds": [], "gains": [], "delivered_gains": [], "declined": []})
        row["seeds"].append(c["seed"])
        row["gains"].append(c["test_acc"] - scratch[c["seed"]])
        row["delivered_gains"].append(c["delivered_acc"] - scratch[c["seed"]])
        if c["delivered"] == "scratch":
            row["declined"].append(c["seed"])
    for row in rows.values():
        row["below_scratch"] = sum(g < 0 for g in row["gains"])
    return {"folder": str(folder), "scratch": [scratch[s] for s in sorted(scratch)], "rows": rows}


def _gains(gains: list[float]) -> dict:
    return {"gains": gains, "below_scratch": sum(g < 0 for g in gains)}


def table(pairs: list[dict]) -> str:
    refit = any("refit_gains" in row for p in pairs for row in p["rows"].values())
    lines = ["| pair (teacher → student) | row | seeds | scratch | distilled: gain | below scratch "
             "| delivered: gain | below scratch | declined on seeds |"
             + (" whole split: scratch | distilled: gain | refit delivers: gain | below scratch |" if refit else ""),
             "|---|---|---:|---:|---:|---:|---:|---:|---|" + ("---:|---:|---:|---:|" if refit else "")]
    for p in pairs:
        for name, row in p["rows"].items():
            line = (f"| {p['name']} | {name} | {len(row['seeds'])} | {100 * statistics.fmean(p['scratch']):.1f} "
                    f"| {_mean_std(row['gains'])} | {_below(row)} | {_mean_std(row['delivered_gains'])} "
                    f"| {_below(_gains(row['delivered_gains']))} | {', '.join(map(str, row['declined'])) or 'none'} |")
            if refit:
                line += (f" {100 * statistics.fmean(p['whole_split_scratch']):.1f} | "
                         f"{_mean_std(row['whole_split_gains'])} | {_mean_std(row['refit_gains'])} "
                         f"| {_below(_gains(row['refit_gains']))} |")
            lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="finished compare folders trained with student.holdout")
    parser.add_argument("--names", nargs="+", required=True, help="a name per folder for the table")
    parser.add_argument("--out", type=Path, required=True, help="where pairs.json, pairs.md and the folders' cells go")
    parser.add_argument("--whole-split", type=Path, nargs="+", default=[],
                        help="per folder, the same comparison trained without the hold-out (what student.refit trains)")
    args = parser.parse_args(argv)
    if len(args.names) != len(args.folders):
        parser.error(f"{len(args.folders)} folders need {len(args.folders)} --names, got {len(args.names)}")
    if args.whole_split and len(args.whole_split) != len(args.folders):
        parser.error(f"{len(args.folders)} folders need {len(args.folders)} --whole-split folders, "
                     f"got {len(args.whole_split)}")
    pairs = [{**pair_rows(f), "name": n} for f, n in zip(args.folders, args.names)]
    for pair, whole in zip(pairs, args.whole_split):
        refit_gains(pair, whole)
    return write_pairs(pairs, args.folders, args.out, table(pairs))


if __name__ == "__main__":
    raise SystemExit(main())
