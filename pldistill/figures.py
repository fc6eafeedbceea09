"""Pictures of a run, drawn with matplotlib (Agg: no display needed), saved as PNG.

One function per figure; each takes plain data (histories, probe snapshots)
so the report can be rebuilt from a run folder long after training.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from .probe import ProbeSnapshot  # noqa: E402

COLOURS = {"teacher": "0.35", "student_scratch": "tab:orange", "student_distilled": "tab:blue"}


def _colour(name: str, i: int) -> str:
    return COLOURS.get(name, f"C{i % 10}")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def similarity_figure(snapshots: dict[str, ProbeSnapshot], path: Path) -> Path:
    """Teacher's and each student's row-normalised similarity matrix, samples grouped by class."""
    first = next(iter(snapshots.values()))
    panels = [("teacher", first.teacher_similarity)] + [(k, s.student_similarity) for k, s in snapshots.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.4))
    labels = first.labels
    edges = np.flatnonzero(np.diff(labels)) + 0.5
    for ax, (name, matrix) in zip(np.atleast_1d(axes), panels):
        image = ax.imshow(matrix, cmap="viridis", interpolation="nearest")
        for e in edges:
            ax.axhline(e, color="w", lw=0.6)
            ax.axvline(e, color="w", lw=0.6)
        ax.set_title(name.replace("student_", "student: "), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle("similarity matrices G̃ on the probe set (SP matches these); white lines: class blocks", fontsize=9)
    return _save(fig, path)


def cka_grid_figure(snapshots: dict[str, ProbeSnapshot], path: Path) -> Path:
    """Linear CKA of every teacher stage against every student stage, one grid per student."""
    fig, axes = plt.subplots(1, len(snapshots), figsize=(3.6 * len(snapshots), 3.3))
    for ax, (name, snap) in zip(np.atleast_1d(axes), snapshots.items()):
        grid = snap.cka_grid
        ax.imshow(grid, cmap="magma", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
        ax.set_xlabel("student stage")
        ax.set_ylabel("teacher stage")
        ax.set_xticks(range(grid.shape[1]))
        ax.set_yticks(range(grid.shape[0]))
        ax.set_title(f"CKA, {name.replace('student_', '')}", fontsize=9)
    return _save(fig, path)


def curves_figure(histories: dict[str, list[dict]], path: Path) -> Path:
    """Training loss and test accuracy per epoch for every model of the run."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    for i, (name, history) in enumerate(histories.items()):
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h["train/terms/ce"] if "train/terms/ce" in h else h["train/loss"] for h in history],
                     color=_colour(name, i), label=name)
        ax_acc.plot(epochs, [100 * h["val/acc"] for h in history], color=_colour(name, i), label=name)
    ax_loss.set_title("training cross-entropy", fontsize=9)
    ax_acc.set_title("test accuracy (%), each on its own modality", fontsize=9)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    return _save(fig, path)


def alignment_figure(histories: dict[str, list[dict]], path: Path) -> Path:
    """Each alignment metric per epoch: distilled against scratch is the point."""
    keys = sorted({k for h in histories.values() for row in h for k in row
                   if k.startswith("align/") and k not in ("align/seconds", "align/cka_grid_mean")})
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(3.2 * max(len(keys), 1), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for i, (name, history) in enumerate(histories.items()):
            rows = [h for h in history if key in h]
            if rows:
                ax.plot([h["epoch"] for h in rows], [h[key] for h in rows], color=_colour(name, i), label=name)
        ax.set_title(key.removeprefix("align/"), fontsize=9)
        ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)  # all metrics live in [0, 1] (simcorr in [-1, 1])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if keys:
        axes[0][0].legend(fontsize=7)
    else:  # say why the panel is empty instead of leaving a blank frame
        axes[0][0].text(0.5, 0.5, "no alignment metrics were logged\n(logging.probe_size: 0 turns them off)",
                        ha="center", va="center", fontsize=8, transform=axes[0][0].transAxes)
        axes[0][0].set_axis_off()
    fig.suptitle("student ↔ teacher alignment on the probe set", fontsize=9)
    return _save(fig, path)
