"""Extension points of the training loop, as explicit objects passed to ``fit(callbacks=...)``.

A callback may implement any of four hooks (the base class's are no-ops):

    on_fit_start(state)           before the first epoch (e.g. resume from a progress file)
    check_step(state, out)        after each forward pass, before backward (e.g. the divergence guard)
    epoch_metrics(state) -> dict  extra entries for the epoch's record (e.g. the alignment probe)
    on_epoch_end(state, record)   the finished record (log, checkpoint, print)

Callbacks run in list order. Under torchrun every rank runs every callback
(``check_step`` may be collective); the ones that write or print act on rank 0 only.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import distributed
from ..models import TappedModel
from ..resume import load_progress, save_progress
from .balance import TermBalance
from .optim import Optimisation
from .step import StepOutput

Log = Callable[[dict, int], None]


@dataclass
class TrainState:
    """What the loop and its callbacks share while one model trains."""

    name: str  # the log prefix, e.g. "teacher" or "control/student_distilled"
    epochs: int
    model: TappedModel
    learned: nn.ModuleList  # the losses' learned parts (FitNets regressors)
    optimisation: Optimisation
    loader: DataLoader
    balance: TermBalance  # the distillation terms' weights (relative ones calibrated on the first steps)
    epoch: int = 0  # epochs finished
    step: int = 0  # optimiser steps taken
    history: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    show_bar: bool = False  # a live per-step bar (set by ConsolePrinter on a terminal)
    stop: bool = False  # set by a callback (the health check's on_harm: stop) to end training after this epoch
    health: list[dict] = field(default_factory=list)  # the health check's findings (health.py)
    resumed_from: Path | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def resumable_parts(self) -> dict:
        """Everything resume.py saves and restores besides counters and history."""
        o = self.optimisation
        return {"model": self.model.model, "learned": self.learned, "optimizer": o.optimizer,
                "scheduler": o.scheduler, "loader": self.loader, "scaler": o.scaler, "balance": self.balance}


class Callback:
    """No-op hooks; subclass and override the ones you need."""

    def on_fit_start(self, state: TrainState) -> None:
        pass

    def check_step(self, state: TrainState, out: StepOutput) -> None:
        pass

    def epoch_metrics(self, state: TrainState) -> dict[str, float]:
        return {}

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        pass


class DivergenceGuard(Callback):
    """Stop at the first non-finite loss, on every rank at once (a NaN on one rank stops them all)."""

    def check_step(self, state: TrainState, out: StepOutput) -> None:
        if distributed.any_rank(not torch.isfinite(out.total)):
            bad = [k for k, v in out.terms.items() if not torch.isfinite(v)] or "(on another process)"
            raise FloatingPointError(f"{state.name}: loss term(s) {bad} became non-finite at step {state.step}")


class ProgressCheckpoint(Callback):
    """The complete training state in ``path`` every ``every`` epochs; an existing file is resumed from.

    A crash costs at most the epochs since the last save. The file of the last
    epoch is never written: the stage's final checkpoint replaces it.
    """

    def __init__(self, path: Path, every: int = 1):
        self.path, self.every = path, every

    def on_fit_start(self, state: TrainState) -> None:
        if not distributed.on_main(self.path.exists):
            return
        if not self.path.exists():
            raise distributed.DistributedError(
                f"rank {distributed.rank()}: cannot see {self.path}, which rank 0 resumes from; resuming a "
                "multi-node run needs the run folder on a file system every node shares"
            )
        # ranks > 0 keep their own augmentation streams: the file holds rank 0's
        restored = load_progress(self.path, **state.resumable_parts(), restore_augment=distributed.is_main())
        state.epoch, state.step, state.history = restored["epoch"], restored["step"], restored["history"]
        state.started -= restored["seconds"]
        state.resumed_from = self.path

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        done = record["epoch"]
        if distributed.is_main() and done % self.every == 0 and done < state.epochs:
            save_progress(self.path, **state.resumable_parts(), epoch=done, step=state.step,
                          seconds=state.elapsed(), history=state.history)


class EpochMetrics(Callback):
    """Extra per-epoch numbers from ``measure(model)``, e.g. teacher/student alignment on the probe set."""

    def __init__(self, measure: Callable[[TappedModel], dict[str, float]]):
        self.measure = measure

    def epoch_metrics(self, state: TrainState) -> dict[str, float]:
        return self.measure(state.model) if distributed.is_main() else {}


class MetricsLog(Callback):
    """Each epoch's record, keys prefixed with the model's name, to ``log(row, step)`` (e.g. a tracker)."""

    def __init__(self, log: Log):
        self.log = log

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if distributed.is_main():
            self.log({f"{state.name}/{k}": v for k, v in record.items()}, state.step)


class ConsolePrinter(Callback):
    """A one-line summary per epoch; a live bar only on a terminal (logs from CI or nohup stay short)."""

    def on_fit_start(self, state: TrainState) -> None:
        state.show_bar = distributed.is_main() and sys.stderr.isatty()
        if state.resumed_from is not None and distributed.is_main():
            print(f"  {state.name}: resuming after epoch {state.epoch}/{state.epochs} from {state.resumed_from}")

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if distributed.is_main():
            tqdm.write(
                f"  {state.name} epoch {record['epoch']}/{state.epochs}: loss {record['train/loss']:.3f} "
                f"train acc {record['train/acc']:.3f} test acc {record['val/acc']:.3f}"
            )


def standard_callbacks(*, log: Log | None = None, progress: bool = True, progress_file: Path | None = None,
                       checkpoint_every: int = 1,
                       epoch_metrics: Callable[[TappedModel], dict[str, float]] | None = None,
                       health: Callback | None = None) -> list[Callback]:
    """The callbacks a run's stage uses, in the order that matters: the record is complete before it is
    checked, logged and checkpointed (a lowered weight is in the checkpoint), and a resume is known
    before it is announced."""
    callbacks: list[Callback] = [DivergenceGuard()]
    if epoch_metrics is not None:
        callbacks.append(EpochMetrics(epoch_metrics))
    if health is not None:
        callbacks.append(health)
    if log is not None:
        callbacks.append(MetricsLog(log))
    if progress_file is not None:
        callbacks.append(ProgressCheckpoint(progress_file, checkpoint_every))
    if progress:
        callbacks.append(ConsolePrinter())
    return callbacks
