"""The data-size curve of privileged learning: one comparison at several training-set sizes, one plot.

Privileged information is said to help most when data is scarce (Vapnik &
Vashist 2009; Lopez-Paz et al., ICLR 2016). This runs a comparison file
(``pldistill compare``: scratch, the distilled rows and their controls, every
row paired by seed) once per training size — ``data.train_per_class=N``, the
test split fixed — and draws each row's paired gain over scratch against N.

Every size gets the same number of optimisation steps (``--steps``; epochs =
steps × batch size / training samples, at least 1) for the teacher and every
student, so a small set is not also a short training. Each size's comparison
lives in ``<out>/size<N>/`` and is resumed when the command is run again.

    python -m experiments.data_size_curve recipes/compare/mfeat_fac_to_zer.yaml \
        --sizes 10 20 50 100 160 --seeds 10 --out runs/mfeat_curve

writes ``curve.json`` (every size's rows), ``curve.md`` (the tables) and
``curve.png`` (gain over scratch ± std against N, one line per row).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Sequence

SIZE_KEY = "data.train_per_class"


def epochs_for(size: int, classes: int, batch_size: int, steps: int) -> int:
    """Epochs that give about ``steps`` optimisation steps on ``size`` samples per class (whole batches only)."""
    per_epoch = max(1, (size * classes) // batch_size)
    return max(1, math.ceil(steps / per_epoch))


def _finished(folder: Path) -> Path | None:
    """The comparison folder already under ``folder`` (resumed), if any."""
    found = sorted(p.parent for p in folder.glob("*/*/comparison.yaml"))
    return found[-1] if found else None


def run_curve(comparison: str | Path, sizes: Sequence[int], seeds: Sequence[int], out: str | Path,
              steps: int = 600, overrides: Sequence[str] = (), progress: bool = True) -> dict:
    """Every size's comparison (resumed where finished), then curve.json / curve.md / curve.png in ``out``."""
    from pldistill.compare import load_comparison, run_comparison

    out = Path(out)
    _, base, _ = load_comparison(comparison, list(overrides))
    classes, batch = len(base.data.classes), base.schedule.batch_size
    per_size = {}
    for size in sizes:
        epochs = epochs_for(size, classes, batch, steps)
        extra = [*overrides, f"{SIZE_KEY}={size}", f"schedule.epochs={epochs}"]
        folder = out / f"size{size}"
        if progress:
            print(f"== {size} training samples per class: {epochs} epochs (~{steps} steps)", flush=True)
        run_dir, summary = run_comparison(comparison, runs_dir=folder, resume=_finished(folder),
                                          seeds=list(seeds), progress=progress, overrides=extra)
        per_size[size] = json.loads((run_dir / "comparison.json").read_text()) | {"epochs": epochs,
                                                                                  "folder": str(run_dir)}
    curve = {"comparison": str(comparison), "sizes": list(sizes), "seeds": list(seeds), "steps": steps,
             "overrides": list(overrides), "per_size": {str(k): v for k, v in per_size.items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(curve, indent=1))
    (out / "curve.md").write_text(curve_table(curve))
    plot_curve(curve, out / "curve.png")
    return curve


def curve_rows(curve: dict) -> list[str]:
    """The rows every size has, in the comparison's order."""
    rows = [r["row"] for r in next(iter(curve["per_size"].values()))["rows"]]
    return [r for r in rows if all(any(x["row"] == r for x in s["rows"]) for s in curve["per_size"].values())]


def curve_table(curve: dict) -> str:
    """Accuracy (mean ± std over seeds) per row and size; then gain over scratch and the controlled gains."""
    sizes = curve["sizes"]
    rows = curve_rows(curve)
    seeds = len(curve["seeds"])
    head = "| row | " + " | ".join(f"{n}/class" for n in sizes) + " |\n|---|" + "---:|" * len(sizes) + "\n"
    acc = gain = ""
    for row in rows:
        cells_a, cells_g = [], []
        for n in sizes:
            r = next(x for x in curve["per_size"][str(n)]["rows"] if x["row"] == row)
            cells_a.append(f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}")
            cells_g.append(f"{100 * r['gain_mean']:+.1f} ± {100 * r['gain_std']:.1f}" if "gain_mean" in r else "")
        acc += f"| {row} | " + " | ".join(cells_a) + " |\n"
        if any(cells_g):
            gain += f"| {row} | " + " | ".join(cells_g) + " |\n"
    controlled = ""
    pairs = [(g["row"], g["control"]) for g in next(iter(curve["per_size"].values()))["controlled_gains"]]
    for row, control in pairs:
        cells = []
        for n in sizes:
            g = next((x for x in curve["per_size"][str(n)]["controlled_gains"]
                      if x["row"] == row and x["control"] == control), None)
            cells.append(f"{100 * g['mean']:+.1f} ± {100 * g['std']:.1f}" if g else "")
        controlled += f"| {row} − {control} | " + " | ".join(cells) + " |\n"
    device = next(iter(curve["per_size"].values()))["device"]
    return (f"# Data-size curve: {curve['comparison']}, {seeds} seeds per size, ~{curve['steps']} steps each "
            f"(device {device})\n\nTest accuracy (%), mean ± std over seeds:\n\n{head}{acc}\n"
            f"Gain over scratch (points, paired by seed):\n\n{head}{gain}\n"
            f"Row minus its control (points, paired by seed):\n\n{head}{controlled}")


def plot_curve(curve: dict, path: Path) -> None:
    """Gain over scratch against training samples per class, ± std over seeds, one line per distilled row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = curve["sizes"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for row in curve_rows(curve):
        points = [next(x for x in curve["per_size"][str(n)]["rows"] if x["row"] == row) for n in sizes]
        if "gain_mean" not in points[0]:
            continue
        control = any(k in row for k in ("shuffled", "class-mean", "same-view"))
        ax.errorbar(sizes, [100 * p["gain_mean"] for p in points], yerr=[100 * p["gain_std"] for p in points],
                    label=row, capsize=3, marker="o", ms=4, linestyle="--" if control else "-")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("training samples per class")
    ax.set_ylabel("gain over the student alone (points)")
    ax.set_title(f"{Path(curve['comparison']).stem}: {len(curve['seeds'])} seeds per size (mean ± std)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("comparison", help="a comparison file (recipes/compare/*.yaml)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50, 100, 160])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per size")
    parser.add_argument("--steps", type=int, default=600, help="optimisation steps per training, at every size")
    parser.add_argument("--out", default="runs/data_size_curve")
    parser.add_argument("overrides", nargs="*", help="key=value settings for the base recipe")
    args = parser.parse_args(argv)
    curve = run_curve(args.comparison, args.sizes, range(args.seeds), args.out, args.steps, args.overrides)
    print(curve_table(curve))


if __name__ == "__main__":
    main()
