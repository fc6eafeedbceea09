"""Run-folder I/O: fresh folders, per-stage checkpoints, and what a resumed run may reuse.

    <run>/recipe.yaml                the recipe as resolved
    <run>/checkpoints/<stage>.pt     a finished stage: final weights + its results (a resumed run skips it)
    <run>/checkpoints/<stage>.progress.pt   the stage in training (engine.ProgressCheckpoint)
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml

from .. import distributed
from ..checkpoint import load_checkpoint, save_atomic
from ..errors import PldistillError
from ..models import TappedModel
from ..recipe import Recipe


class ResumeError(PldistillError, ValueError):
    """A run folder that cannot be resumed with this recipe."""


def new_run_dir(root: Path, name: str) -> Path:
    """``root/name/<timestamp>``, with a numeric suffix when two runs start in the same second."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in ["", *(f"-{i}" for i in range(1, 100))]:
        path = root / name / f"{stamp}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a fresh run folder under {root / name}")


class RunFolder:
    """The stage files of one run folder (a control run has its own, under ``control/``)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def checkpoint(self, stage: str) -> Path:
        return self.path / "checkpoints" / f"{stage}.pt"

    def progress_file(self, stage: str) -> Path:
        return self.path / "checkpoints" / f"{stage}.progress.pt"

    def finished(self, stage: str) -> dict | None:
        """A stage this run folder already completed (a resumed run skips it).

        Rank 0 reads the checkpoint; every rank gets its results (weights: rank 0 only).
        """
        path = self.checkpoint(stage)
        state: dict = {}

        def read() -> dict | None:
            if path.exists():
                state.update(load_checkpoint(path))
            return state.get("result")

        result = distributed.on_main(read)
        return None if result is None else {**state, "result": result}

    def finish(self, stage: str, model: TappedModel, result: dict) -> None:
        """Final weights plus the stage's results in one atomic file; then drop the progress file."""
        if not distributed.is_main():  # rank 0 writes the run folder
            return
        save_atomic({"state_dict": model.model.state_dict(), "model": result["model"],
                     "modality": result["modality"], "result": result}, self.checkpoint(stage))
        self.progress_file(stage).unlink(missing_ok=True)


def write_recipe(run_dir: Path, resolved: dict) -> None:
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))


def recipe_differences(run_dir: Path, resolved: dict) -> list[str]:
    """Dotted keys whose values differ between ``run_dir/recipe.yaml`` and ``resolved``."""
    saved = yaml.safe_load((run_dir / "recipe.yaml").read_text())

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(saved), flat(resolved)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def find_interrupted(recipe: Recipe, runs_dir: str | Path | None = None) -> Path | None:
    """The newest run folder of this exact recipe that never finished, if any."""
    root = Path(runs_dir or recipe.logging.runs_dir) / recipe.name
    resolved = recipe.to_dict()
    for run_dir in sorted(root.glob("*"), reverse=True):
        if (run_dir / "recipe.yaml").exists() and not (run_dir / "results.json").exists():
            if not recipe_differences(run_dir, resolved):
                return run_dir
    return None


def check_resumable(run_dir: Path, resolved: dict) -> None:
    """Raise ResumeError unless ``run_dir`` is an unfinished run of exactly this recipe."""
    if not (run_dir / "recipe.yaml").exists():
        raise ResumeError(f"{run_dir}: not a run folder (no recipe.yaml); nothing to resume")
    if (run_dir / "results.json").exists():
        raise ResumeError(f"{run_dir}: this run already finished (results.json exists); start a new run instead")
    changed = recipe_differences(run_dir, resolved)
    if changed:
        raise ResumeError(
            f"{run_dir}: the run folder was started with a different recipe ({', '.join(changed[:5])} differ); "
            "resume with the same recipe and seed, or start a new run"
        )
