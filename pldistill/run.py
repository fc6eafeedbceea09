"""A run, end to end: teacher → scratch student → distilled student → results.

Reads top to bottom: check the recipe against the job, make (or resume) the
run folder, run the stages (``stages.run_stages``: obtain the teacher, train
the restricted-modality student twice from the same initialisation, CE only
and CE + distillation, then the same-modality control), and write the run folder:

    runs/<recipe>/<timestamp>/
        recipe.yaml        the recipe as resolved (every default filled in)
        checkpoints/       teacher.pt, student_scratch.pt, student_distilled.pt
        control/           the same-modality control's own checkpoints
        metrics.jsonl      every logged row (also sent to W&B)
        results.json       machine-readable results (schema in the README)
        results.md         the results table
        wandb/             the offline W&B run
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import __version__, distributed
from .data.check import checked_datasets
from .data.splits import write_split_record
from .errors import DataError
from .html_report import build_report
from .recipe import Recipe, RecipeError
from .losses.registry import loss_spec
from .report import results_table
from .stages import (ResumeError, Run, StageResults, check_resumable, find_interrupted, new_run_dir, run_stages,
                     write_recipe)
from .tracking import NullTracker, Tracker

__all__ = ["RESULTS_SCHEMA_VERSION", "ResumeError", "Run", "RunOutput", "find_interrupted", "run_recipe"]

RESULTS_SCHEMA_VERSION = 1


@dataclass
class RunOutput:
    run_dir: Path
    results: dict


def _report(run_dir: Path, tracker: Tracker) -> None:
    """report.html and its figures, also sent to W&B; a drawing failure never costs the results."""
    try:
        page = build_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run's results are already on disk
        print(f"pldistill: could not draw the report ({type(exc).__name__}: {exc}); "
              f"rebuild it later with: pldistill report {run_dir}")
        return
    tracker.log_images({f"figures/{p.stem}": p for p in sorted((run_dir / "figures").glob("*.png"))})
    print(f"report: {page}")


def _check_batch(recipe: Recipe, recipe_path: str | Path) -> None:
    """Under torchrun: the global batch splits evenly, and each local batch still has room for relations."""
    try:
        per_rank = distributed.per_rank_batch(recipe.schedule.batch_size)
    except ValueError as exc:
        raise RecipeError(f"{recipe_path}: {exc}") from None
    for i, loss in enumerate(recipe.distill.losses):
        need = loss_spec(loss.name).min_batch
        if loss.scope == "local" and per_rank < need:
            raise RecipeError(
                f"{recipe_path}: distill.losses.{i}: {loss_spec(loss.name).display} relates the samples of each process's "
                f"batch ({recipe.schedule.batch_size} / {distributed.world_size()} processes = {per_rank}) and "
                f"needs at least {need}; raise schedule.batch_size or set scope: global"
            )


def _follow_rank_zero(recipe: Recipe, datasets: tuple) -> RunOutput:
    """Ranks > 0 of a torchrun job: train every stage in step with rank 0, in its run folder, writing nothing.

    Rank 0 speaks for the job: the others' printing is silenced (their errors still reach stderr).
    """
    run_dir = Path(distributed.share_text())
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        run_stages(Run(recipe, run_dir, NullTracker(), progress=False, datasets=datasets))
    return RunOutput(run_dir, {})


def _open_run_dir(recipe: Recipe, resolved: dict, runs_dir, resume, run_dir) -> Path:
    """The run folder: ``run_dir`` as named (a sweep's cell), ``resume`` checked, or a fresh timestamped one."""
    if run_dir is not None and resume is None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=False)
        write_recipe(run_dir, resolved)
    elif resume is not None:
        run_dir = Path(resume)
        check_resumable(run_dir, resolved)
        print(f"resuming {run_dir}: finished stages are kept, the stage in progress continues from its last epoch")
    else:
        run_dir = new_run_dir(Path(runs_dir or recipe.logging.runs_dir), recipe.name)
        write_recipe(run_dir, resolved)
    return run_dir


def _results(recipe: Recipe, recipe_path, run: Run, stages: StageResults, started: float) -> dict:
    """results.json (schema in the README; ``RESULTS_SCHEMA_VERSION``)."""
    data = recipe.data
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "pldistill_version": __version__,
        "recipe": recipe.name,
        "recipe_file": str(recipe_path),
        "seed": recipe.seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run.run_dir),
        "device": str(run.device),
        "distributed": {"world_size": distributed.world_size(), "backend": distributed.backend()},
        "host": {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads()},
        "dataset": {
            "kind": data.kind,
            "classes": run.train_set.classes,
            "num_train": len(run.train_set),
            "num_test": len(run.test_set),
            # how each input is encoded: what `pldistill export` needs to preprocess without the data
            "modalities": {m: {"kind": v.kind, "channels": data.channels(m), "mean": list(v.mean),
                               "std": list(v.std), "input_size": data.input_size(m)}
                           for m, v in run.train_set.modalities.items()},
        },
        "teacher": stages.teacher,
        "students": {"scratch": stages.scratch, "distilled": stages.distilled},
        "distill_gain": stages.distilled["test_acc"] - stages.scratch["test_acc"],
        "delivered": stages.delivered,  # student.holdout: the student the run delivers, and why; else null
        "control": stages.control,
        "instance_controls": stages.instance,
        "seconds_total": time.perf_counter() - started,
    }


def _summary(results: dict) -> dict:
    """The headline numbers for the tracker's run summary."""
    control, students = results["control"], results["students"]
    return {
        "teacher/test_acc": results["teacher"]["test_acc"],
        "student_scratch/test_acc": students["scratch"]["test_acc"],
        "student_distilled/test_acc": students["distilled"]["test_acc"],
        "distill_gain": results["distill_gain"],
        **({"delivered_gain": results["delivered"]["gain"]} if results.get("delivered") else {}),
        **({"control/student_distilled/test_acc": control["student"]["test_acc"],
            "privileged_gain": control["privileged_gain"]} if control else {}),
        **({"instance_gain": results["instance_controls"]["instance_gain"],
            "beyond_class_mean": results["instance_controls"]["beyond_class_mean"]}
           if results.get("instance_controls") else {}),
        **{f"student_{k}/{m}": v for k in ("scratch", "distilled") for m, v in students[k]["alignment"].items()},
    }


def run_recipe(
    recipe: Recipe,
    recipe_path: str | Path,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    resume: str | Path | None = None,
    run_dir: str | Path | None = None,
    group: str | None = None,
) -> RunOutput:
    """Run a validated recipe end to end (or continue ``resume``) and return its run folder and results.

    ``run_dir`` names a new run folder instead of a timestamped one (a sweep's
    cells); ``group`` is the W&B group (default: the recipe's name).
    """
    started = time.perf_counter()
    resolved = recipe.to_dict()
    _check_batch(recipe, recipe_path)
    # Every file read once before anything trains or a run folder exists (rank 0 first: it caches the pass).
    datasets = distributed.main_first(lambda: checked_datasets(recipe.data, progress and distributed.is_main()))
    if not distributed.is_main():
        return _follow_rank_zero(recipe, datasets)
    run_dir = _open_run_dir(recipe, resolved, runs_dir, resume, run_dir)
    distributed.share_text(str(run_dir))  # the job's one run folder, for ranks > 0
    tracker = Tracker(
        run_dir,
        resolved,
        project=recipe.logging.project,
        group=group or recipe.name,
        name=f"{recipe.name}-seed{recipe.seed}-{run_dir.name}" if group is None else f"{run_dir.parent.name}-{run_dir.name}",
        tags=[recipe.name, f"seed{recipe.seed}"],
        mode=recipe.logging.wandb,
    )
    try:
        run = Run(recipe, run_dir, tracker, progress, datasets=datasets)
        write_split_record(run_dir, run.train_set, run.test_set)  # data_split.json: splits pldistill chose
        if progress:
            print(f"run folder: {run_dir} (interrupted? `pldistill run {recipe_path}` resumes it)")
        try:
            stages = run_stages(run)
        except FloatingPointError as exc:
            raise FloatingPointError(
                f"{exc}; training stopped and the last good epoch is kept in {run_dir / 'checkpoints'} "
                "(*.progress.pt); lower schedule.lr or set schedule.grad_clip and start a new run"
            ) from None
        except DataError as exc:
            raise DataError(f"{exc}; training stopped and the last finished epoch is kept in "
                            f"{run_dir / 'checkpoints'}: fix the file, then `pldistill run --resume {run_dir}`") from None
        results = _results(recipe, recipe_path, run, stages, started)
        tracker.summary(_summary(results))
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        _report(run_dir, tracker)
    finally:
        tracker.finish()
    results["wandb"] = {"mode": tracker.mode, "dir": str(tracker.wandb_dir or ""), "sync": tracker.sync_hint}
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    (run_dir / "results.md").write_text(results_table(results, recipe))
    return RunOutput(run_dir, results)
