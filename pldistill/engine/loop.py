"""The training loop: one function trains any classifier, with or without a teacher.

``fit`` is used three times by a run: the teacher (CE on the privileged
modality), the scratch student (CE on the restricted modality) and the
distilled student (CE + weighted distillation terms against the frozen
teacher, both fed the *same* augmented sample). Everything optional
(resume, probe, logging, the divergence guard, printing) is a callback.

Under torchrun the student (and any learned loss parts) train inside
DistributedDataParallel: each rank runs the same loop on its share of every
global batch, gradients are averaged, and epoch metrics are summed over ranks.
``precision`` runs forward passes under autocast (bf16/fp16); losses are
computed in float32 whatever the activations' dtype.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import distributed
from ..terms import DistillTerm
from ..models import TappedModel
from ..teacher_cache import TeacherCache
from .balance import TermBalance
from .conflict import ConflictProjection
from .mixup import MIXUP_ALPHA, JointMixup
from .modality_dropout import ModalityDropout
from .callbacks import Callback, DivergenceGuard, TrainState
from .device import autocast, check_precision, to_device
from .evaluate import evaluate
from .optim import Schedule, build_optimisation, wrap_for_ranks
from .step import StepOutput, distill_step


@dataclass
class FitResult:
    test_acc: float
    seconds: float
    history: list[dict] = field(default_factory=list)
    health: list[dict] = field(default_factory=list)  # findings of the health check (health.py), if it ran


def fit(
    model: TappedModel,
    modality: str,
    train_loader: DataLoader,
    test_loader: DataLoader,
    *,
    schedule: Schedule,
    device: torch.device,
    teacher: TappedModel | None = None,
    teacher_modality: str | None = None,
    terms: Sequence[DistillTerm] = (),
    teacher_cache: TeacherCache | None = None,
    name: str = "model",
    callbacks: Sequence[Callback] | None = None,
    calibration_steps: int = 10,
    probe_steps: int = 0,
    input_dropout: ModalityDropout | None = None,
    mixup: JointMixup | None = None,
    conflicts: str = "keep",
) -> FitResult:
    """Train ``model`` for ``schedule.epochs``; ``callbacks`` default to the divergence guard alone.

    Under torchrun ``train_loader`` yields this rank's share of each global batch
    (``distributed.train_sampler``; reshuffled per epoch). With ``teacher_cache``
    the teacher's outputs are read by ``batch["index"]`` instead of computed, and
    ``batch[teacher_modality]`` is never needed. Relative term weights are set on
    the first ``calibration_steps`` steps, measured again on the first ``probe_steps``
    of every later epoch and, for terms that rebalance, set again there (``balance.py``).
    ``input_dropout`` zeroes whole parts of a stacked training input (``modality_dropout.py``).
    ``mixup`` mixes every training batch, the teacher's input with the student's (``mixup.py``).
    ``conflicts="project"`` removes the part of the terms' gradient that opposes CE's (``conflict.py``);
    ``"measure"`` only records how often it does.
    """
    if teacher_cache is not None and any(t.trains_teacher for t in terms):
        raise ValueError("a loss that trains the teacher with the student (C2KD) needs the live teacher, not its "
                         "cached outputs; set distill.teacher_cache: false")
    if mixup is not None and teacher_cache is not None:
        raise ValueError("joint mixup shows the teacher mixed samples, which its cached outputs never saw; "
                         "set distill.teacher_cache: false")
    check_precision(schedule.precision, device)
    callbacks = [DivergenceGuard()] if callbacks is None else list(callbacks)
    learned = _place(model, teacher, terms, device, schedule.channels_last)
    optimisation = build_optimisation(nn.ModuleList([model, learned]), schedule, len(train_loader), device)
    state = TrainState(name, schedule.epochs, model, learned, optimisation, train_loader,
                       balance=TermBalance(terms, calibration_steps, probe_steps, len(train_loader)))
    for callback in callbacks:
        callback.on_fit_start(state)  # e.g. resume: before DDP copies rank 0's weights
    step = _BatchStep(wrap_for_ranks(model, learned, device), modality, teacher, teacher_modality, terms,
                      teacher_cache, device, schedule, state.balance, input_dropout, mixup)
    projection = ConflictProjection(project=conflicts == "project") if conflicts != "keep" and terms else None
    for epoch in range(state.epoch, schedule.epochs):
        if state.stop:  # a callback ended training (the health check's on_harm: stop)
            break
        record = _train_epoch(state, step, callbacks, epoch, projection)
        if mixup is not None:  # its training CE is on mixed samples: the health check must know (health.py)
            record[MIXUP_ALPHA] = mixup.alpha
        record.update(state.balance.epoch_metrics())
        record.update(projection.epoch_metrics() if projection is not None else {})
        record["val/acc"] = evaluate(model, test_loader, modality, device, schedule.channels_last, schedule.precision)
        for callback in callbacks:
            record.update(callback.epoch_metrics(state))
        record["lr"] = optimisation.scheduler.get_last_lr()[0]
        record["epoch"] = state.epoch = epoch + 1
        state.history.append(record)
        for callback in callbacks:
            callback.on_epoch_end(state, record)
    return FitResult(state.history[-1]["val/acc"], state.elapsed(), state.history, state.health)


def _place(model: TappedModel, teacher: TappedModel | None, terms: Sequence[DistillTerm], device: torch.device,
           channels_last: bool) -> nn.ModuleList:
    """Models on ``device`` (teacher frozen: its BN statistics never move); returns the losses' learned parts."""
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory).train()
    trained_teacher = any(t.trains_teacher for t in terms)  # C2KD: the teacher is optimised with the student
    if teacher is not None:
        teacher.to(device, memory_format=memory).train(trained_teacher)
        teacher.requires_grad_(trained_teacher)
    # Losses with learned parts (FitNets regressors) train alongside the student, and so does such a teacher.
    learned = [t.fn for t in terms if isinstance(t.fn, nn.Module)] + ([teacher] if trained_teacher else [])
    return nn.ModuleList(learned).to(device)


@dataclass(frozen=True)
class _BatchStep:
    """One batch → ``distill_step``'s output: inputs moved, teacher live or read from its cache."""

    forward: nn.Module  # the student, or DDP around it
    modality: str
    teacher: TappedModel | None
    teacher_modality: str | None
    terms: Sequence[DistillTerm]
    teacher_cache: TeacherCache | None
    device: torch.device
    schedule: Schedule
    balance: TermBalance
    input_dropout: ModalityDropout | None = None
    mixup: JointMixup | None = None

    def __call__(self, batch: dict, step: int) -> tuple[StepOutput, Tensor]:
        device, channels_last, cache = self.device, self.schedule.channels_last, self.teacher_cache
        labels = batch["label"].to(device)
        inputs = batch[self.modality]
        if self.input_dropout is not None:
            inputs = self.input_dropout(inputs, step)
        live_teacher = self.terms and cache is None
        teacher_inputs = batch[self.teacher_modality] if live_teacher else None
        mix = self.mixup.draw(len(labels), step) if self.mixup is not None else None
        if mix is not None:  # one partner and one λ for the student's and the teacher's modality
            inputs = mix.mix(inputs)
            teacher_inputs = mix.mix(teacher_inputs) if teacher_inputs is not None else None
        with autocast(device, self.schedule.precision):
            out = distill_step(
                self.forward,
                to_device(inputs, device, channels_last),
                labels,
                self.teacher,
                to_device(teacher_inputs, device, channels_last) if teacher_inputs is not None else None,
                self.terms,
                cache.lookup(batch["index"], device, channels_last) if cache else None,
                self.balance.weights,
                mix,
            )
        return out, labels


def _train_epoch(state: TrainState, step: _BatchStep, callbacks: Sequence[Callback], epoch: int,
                 projection: ConflictProjection | None = None) -> dict:
    """One pass over the training loader; returns the epoch's train/* record (summed over ranks)."""
    loader = state.loader
    if hasattr(loader.sampler, "set_epoch"):  # DistributedSampler, or the cached views' ViewSampler
        loader.sampler.set_epoch(epoch)  # a new permutation (and draw of views) each epoch, the same on every rank
    started = time.perf_counter()
    meter = _EpochMeter()
    # Created every epoch, shown or not: tqdm.auto's bar calls iter(loader) once itself, which draws the
    # loader generator's base seed; dropping it would change every later batch order.
    bar = tqdm(loader, desc=f"{state.name} {epoch + 1}/{state.epochs}", leave=False, disable=not state.show_bar)
    params = [p for p in state.model.parameters() if p.requires_grad]
    state.balance.start_epoch()
    for batch in bar:
        state.balance.at_step(state.step)
        out, labels = step(batch, state.step)
        out = state.balance.observe(out, params)
        for callback in callbacks:
            callback.check_step(state, out)
        adjust = (projection.prepare(out.terms["ce"], params, state.optimisation.scaler.scale)
                  if projection is not None else None)
        state.optimisation.step(out.total, state.model.parameters(), adjust)
        state.step += 1
        meter.add(out, labels)
        bar.set_postfix(loss=f"{meter.mean_loss():.3f}")
    record = meter.reduce()
    record["train/seconds"] = time.perf_counter() - started
    return record


class _EpochMeter:
    """Sample-weighted sums of the loss terms and the training accuracy over one epoch."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.correct = self.seen = 0

    def add(self, out: StepOutput, labels: Tensor) -> None:
        n = len(labels)
        self.seen += n
        self.correct += (out.logits.argmax(1) == labels).sum().item()
        for k, v in {"loss": out.total, **{f"terms/{k}": v for k, v in out.terms.items()}}.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.item() * n

    def mean_loss(self) -> float:
        return self.sums["loss"] / self.seen

    def reduce(self) -> dict:
        keys = list(self.sums)  # the same terms, in the same order, on every rank
        *totals, correct, seen = distributed.all_reduce_sum([self.sums[k] for k in keys] + [self.correct, self.seen])
        record = {f"train/{k}": v / seen for k, v in zip(keys, totals)}
        record["train/acc"] = correct / seen
        return record
