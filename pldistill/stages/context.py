"""What every stage of a run shares: recipe, device, data, run folder, tracker, and how a stage trains."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..engine import FitResult, Schedule, check_precision, fit, pick_device, standard_callbacks
from ..engine.health import HealthCheck, HealthPolicy
from ..models import TappedModel, build_model
from ..probe import AlignmentProbe
from ..recipe import Recipe, RecipeError
from ..tracking import Tracker
from .data import RunData
from .folder import RunFolder


class Run:
    """One run's shared state; the stages (``stages.teacher``, ``stages.student``) are functions of it.

    ``tap`` wraps a timm model so its stage features are returned (``TappedModel``;
    a benchmark may pass another implementation).
    """

    def __init__(self, recipe: Recipe, run_dir: Path, tracker: Tracker, progress: bool = True, log_prefix: str = "",
                 datasets: tuple | None = None, tap: Callable[..., TappedModel] = TappedModel):
        self.recipe = recipe
        self.log_prefix = log_prefix  # e.g. "control/": the same-modality control logs beside the main run
        self.folder = RunFolder(run_dir)
        self.tracker = tracker
        self.progress = progress
        self.tap = tap
        self.device = pick_device(recipe.schedule.device)
        try:
            check_precision(recipe.schedule.precision, self.device)
        except ValueError as exc:
            raise RecipeError(str(exc)) from None
        self.data = RunData(recipe, datasets)
        self.probe: AlignmentProbe | None = None  # set by stages.student.attach_probe
        # the scratch student's epoch records: the health check's reference for every later student
        self.scratch_history: list[dict] | None = None
        # training samples no student of this run trains on (student.holdout; stages/delivery.py)
        self.holdout_set = None

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    @property
    def train_set(self):
        return self.data.train_set

    @property
    def test_set(self):
        return self.data.test_set

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def sub_run(self, recipe: Recipe, run_dir: Path, log_prefix: str, train_set=None) -> "Run":
        """A run of ``recipe`` (e.g. a control teacher's) on this run's data, tracker and device settings.

        ``train_set`` replaces the training set (a control's, e.g. shuffled pairing); the test set is the same.
        """
        sub = Run(recipe, run_dir, self.tracker, self.progress, log_prefix,
                  datasets=(self.train_set if train_set is None else train_set, self.test_set), tap=self.tap)
        sub.scratch_history, sub.holdout_set = self.scratch_history, self.holdout_set
        return sub

    def build(self, spec, stages=()) -> TappedModel:
        """A fresh model of ``spec`` (the recipe's teacher or student), tapped at ``stages``."""
        channels = self.recipe.data.channels(spec.modality)
        size = self.recipe.data.input_size(spec.modality)
        return self.tap(build_model(spec.model, channels, self.num_classes, spec.weights, size), stages)

    def fit(self, model: TappedModel, modality: str, stage: str, epochs: int, seed: int, *,
            epoch_metrics=None, settings=None, **distill) -> FitResult:
        """Train one stage: its loaders (seeded by ``seed``), the recipe's schedule, the standard callbacks.

        ``distill`` are fit's teacher/teacher_modality/terms/teacher_cache. A distilled
        stage is health-checked against ``scratch_history``. ``settings`` (a ``distill``
        section, e.g. a comparison row's) replaces the recipe's health policy and calibration steps.
        """
        s = self.recipe.schedule
        settings = self.recipe.distill if settings is None else settings
        health = None
        if distill.get("terms"):
            health = HealthCheck(HealthPolicy(**settings.health.model_dump()), self.scratch_history)
        outputs = distill.get("teacher_cache")
        cached = outputs is not None  # the teacher's inputs are never loaded
        wanted = [modality] + ([distill["teacher_modality"]] if distill.get("terms") and not cached else [])
        modalities = list(dict.fromkeys(wanted))  # same-modality teacher: load it once
        callbacks = standard_callbacks(log=lambda row, _step: self.tracker.log(row), progress=self.progress,
                                       progress_file=self.folder.progress_file(stage),
                                       checkpoint_every=s.checkpoint_every, epoch_metrics=epoch_metrics,
                                       health=health)
        return fit(
            model,
            modality,
            self.data.train_loader(modalities, seed, with_index=cached, replay=getattr(outputs, "replay", None)),
            self.data.test_loader(modality),
            schedule=Schedule.from_recipe(s, epochs),
            device=self.device,
            name=self.log_prefix + stage,
            callbacks=callbacks,
            calibration_steps=settings.calibration_steps,
            probe_steps=settings.probe_steps,
            conflicts=settings.conflicts,
            **distill,
        )
