"""Does the teacher agreement predict the privileged gain? One point per run, one line per recipe, drawn.

Every run with the same-modality control records, before the control student
trains, how much of the privileged teacher a network on the student's input
reproduces (``control.teacher_agreement``: docs/controls.md) and, at the end,
the privileged gain (distilled − control student). This gathers both from
every ``results.json`` under the given folders (run folders, sweep folders),
and from every ``pldistill compare`` folder whose same-modality controls recorded
it (``agreement.jsonl``: one point per seed and controlled row),
groups the runs by recipe (and sweep cell), and reports per group the mean
agreement at the last distilled teacher stage and the privileged gain, mean ±
std over seeds, plus the rank correlation across groups and a scatter plot.

    python -m experiments.agreement_vs_gain runs/q_rgbd runs/q_flagship --out experiments/results/agreement
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

METRICS = ("cka", "simcorr", "simcorr_within_class")
_MODEL_KEYS = ("teacher.model", "student.model")  # overrides that make a comparison file another pair


def _last_stage(agreement: dict[str, float], metric: str) -> float:
    """The metric at the deepest distilled teacher stage (``<metric>/t<i>`` with the largest i)."""
    keys = [k for k in agreement if k.split("/")[0] == metric]
    return agreement[max(keys, key=lambda k: int(k.split("/t")[1]))]


def gather(folders: list[Path]) -> list[dict]:
    """One row per finished run with a control and its agreement: group, seed, metrics, privileged gain."""
    rows = []
    for folder in folders:
        for path in sorted(folder.rglob("results.json")):
            results = json.loads(path.read_text())
            control = results.get("control") or {}
            if "teacher_agreement" not in control:
                continue
            cell = path.parent.parent.name if path.parent.name.startswith("seed") else ""
            group = results["recipe"] + (f" [{cell}]" if cell else "")
            rows.append({"group": group, "seed": results["seed"], "run": str(path.parent),
                         "privileged_gain": control["privileged_gain"],
                         **{m: _last_stage(control["teacher_agreement"], m) for m in METRICS}})
        for path in sorted(folder.rglob("comparison.json")):
            rows += _comparison_rows(path)
    return rows


def _comparison_rows(path: Path) -> list[dict]:
    """A comparison folder: one row per seed and same-modality control pair (row − control), with that seed's
    agreement of the privileged teacher with the control's teacher (agreement.jsonl, written by compare)."""
    import yaml

    results = json.loads(path.read_text())
    if not results.get("agreement"):
        return []
    recorded = yaml.safe_load((path.parent / "comparison.yaml").read_text()) or {}
    variants = recorded.get("variants", {})
    models = [o.split("=", 1)[1] for o in recorded.get("overrides", []) if o.split("=")[0] in _MODEL_KEYS]
    name = results["comparison"] + (f" ({' → '.join(models)})" if models else "")  # one file, several pairs
    acc = {(c["seed"], c["row"]): c["test_acc"] for c in results["cells"]}
    rows = []
    for gain in results.get("controlled_gains", []):
        modality = (variants.get(gain["control"]) or {}).get("teacher_modality")
        if not isinstance(modality, str):  # shuffled or class-mean controls say nothing about the modality
            continue
        for record in results["agreement"]:
            seed = record["seed"]
            if record["modality"] != modality or (seed, gain["row"]) not in acc or (seed, gain["control"]) not in acc:
                continue
            rows.append({"group": f"{name} [{gain['row']}]", "seed": seed, "run": str(path.parent),
                         "privileged_gain": acc[seed, gain["row"]] - acc[seed, gain["control"]],
                         **{m: _last_stage(record, m) for m in METRICS}})
    return rows


def _ranks(values: list[float]) -> list[float]:
    """Ranks from 0, ties sharing their mean rank (Spearman): groups distilled from one teacher pair share its agreement."""
    order = sorted(values)
    return [order.index(v) + (order.count(v) - 1) / 2 for v in values]


def _spearman(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    try:
        return statistics.correlation([float(a) for a in rx], [float(b) for b in ry])
    except statistics.StatisticsError:  # one side constant: no ranking to compare
        return None


def summarise(rows: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    out = []
    for name, runs in sorted(groups.items()):
        gains = [r["privileged_gain"] for r in runs]
        out.append({"group": name, "seeds": sorted(r["seed"] for r in runs),
                    "privileged_gain": statistics.fmean(gains),
                    "privileged_gain_std": statistics.stdev(gains) if len(gains) > 1 else 0.0,
                    **{m: statistics.fmean(r[m] for r in runs) for m in METRICS}})
    rho = {m: _spearman([g[m] for g in out], [g["privileged_gain"] for g in out]) for m in METRICS}
    return {"groups": out, "spearman": rho, "runs": rows}


def table(summary: dict) -> str:
    lines = ["| recipe [cell] | seeds | CKA | similarity r | within-class r | privileged gain |",
             "|---|---|---:|---:|---:|---:|"]
    for g in summary["groups"]:
        lines.append(f"| {g['group']} | {' '.join(map(str, g['seeds']))} | {g['cka']:.2f} | {g['simcorr']:.2f} | "
                     f"{g['simcorr_within_class']:.2f} | {100 * g['privileged_gain']:+.1f} ± "
                     f"{100 * g['privileged_gain_std']:.1f} |")
    rho = summary["spearman"]
    lines += ["", "Rank correlation with the privileged gain across the groups (Spearman): " + ", ".join(
        f"{m} {'n/a (fewer than 3 groups, or constant)' if v is None else f'{v:+.2f}'}" for m, v in rho.items()) + "."]
    return "\n".join(lines) + "\n"


def draw(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric, label in zip(axes, ("simcorr", "simcorr_within_class"),
                                 ("similarity r (all pairs)", "similarity r (within class)")):
        for g in summary["groups"]:
            runs = [r for r in summary["runs"] if r["group"] == g["group"]]
            dots = ax.scatter([r[metric] for r in runs], [100 * r["privileged_gain"] for r in runs], alpha=0.5)
            ax.errorbar(g[metric], 100 * g["privileged_gain"], yerr=100 * g["privileged_gain_std"], fmt="o",
                        color=dots.get_facecolor()[0], label=g["group"], capsize=3)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel(f"teacher agreement: {label}")
        ax.set_ylabel("privileged gain (points)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Privileged teacher against the same-modality teacher, measured before the student trains")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="run, sweep or compare folders (searched for results.json and comparison.json)")
    parser.add_argument("--out", type=Path, required=True, help="where agreement.json, .md and .png go")
    parser.add_argument("--include", type=Path, nargs="*", default=[],
                        help="earlier agreement.json files whose runs join these (their folders need not exist)")
    args = parser.parse_args(argv)
    rows = [row for path in args.include for row in json.loads(path.read_text())["runs"]] + gather(args.folders)
    if not rows:
        print("no finished run with a same-modality control and its teacher agreement under these folders")
        return 1
    summary = summarise(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "agreement.json").write_text(json.dumps(summary, indent=2))
    (args.out / "agreement.md").write_text(table(summary))
    draw(summary, args.out / "agreement.png")
    print(table(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
