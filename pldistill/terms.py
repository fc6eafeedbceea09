"""Distillation terms: a recipe's loss entries turned into weighted functions on tapped features.

The trainer sees only ``DistillTerm``s; which loss, which layer pair, pooled
or over the global batch is decided here once, from the loss registry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

from torch import Tensor

from .losses.batch_views import BatchViews

from .losses.pooling import on_pooled
from .losses.projector import StudentProjector
from .losses.registry import loss_spec
from .losses.scope import across_ranks


@dataclass(frozen=True)
class DistillTerm:
    """One weighted loss on one layer pair; indices point into the tapped feature lists."""

    key: str
    fn: Callable[[Tensor, Tensor], Tensor]
    weight: float
    teacher_tap: int
    student_tap: int
    # what fn compares (LossSpec.inputs): tapped features; logits (KD); whole outputs and the labels (SSKD);
    # the privileged input itself, no teacher (an auxiliary target)
    inputs: str = "features"
    relative: bool = False  # weight is a multiple of CE's gradient norm (engine/balance.py), not absolute
    rebalance: bool = False  # a relative weight set again every epoch (engine/balance.py), not only at the start
    warmup_epochs: float = 0.0  # the weight ramps linearly from 0 over these epochs (engine/balance.py)
    trains_teacher: bool = False  # the teacher is optimised with the student through this term (LossSpec)
    views: BatchViews | None = None  # transformed copies of the batch this term needs (losses/batch_views.py)


@dataclass(frozen=True)
class Terms:
    """The terms, and the teacher and student stages they tap (in tap order)."""

    terms: list[DistillTerm]
    teacher_stages: list[int]
    student_stages: list[int]


def loss_function(entry, teacher_channels: Callable[[int], int], student_channels: Callable[[int], int],
                  pair=None, privileged_channels: Callable[[], int] | None = None,
                  classes: int | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """The unweighted ``fn(teacher, student)`` of one recipe entry (on one layer pair for feature losses).

    A loss on the privileged input (no teacher) is sized by ``privileged_channels()``, the input's channels;
    one whose learned parts predict classes (C2KD's proxies) by ``classes``.
    """
    spec, params = loss_spec(entry.name), entry.params()
    if spec.needs_classes:
        if classes is None:
            raise ValueError(f"{spec.display}'s learned parts predict classes: give the number of classes")
        params = {**params, "classes": classes}
    if spec.learned is not None:
        other = (privileged_channels() if spec.inputs == "privileged" and privileged_channels is not None
                 else teacher_channels(pair.teacher))
        return spec.learned(student_channels(pair.student), other, **params)
    return functools.partial(spec.fn, **params) if params else spec.fn


def build_terms(losses: Sequence, teacher_channels: Callable[[int], int],
                student_channels: Callable[[int], int], privileged_channels: Callable[[], int] | None = None,
                classes: int | None = None) -> Terms:
    """One term per (loss, layer pair), plus one per logit loss.

    ``*_channels(stage)`` give a stage's channel count, for losses with learned
    parts (a FitNets regressor is sized student → teacher channels); ``privileged_channels()``
    the privileged input's, for a decoder that predicts it.
    """
    terms: list[DistillTerm] = []
    teacher_stages: list[int] = []
    student_stages: list[int] = []
    tap = 0
    for loss in losses:
        if loss_spec(loss.name).inputs == "logits":
            fn, key = loss_function(loss, teacher_channels, student_channels), loss.name
            if loss.scope == "global":  # a relational loss on logits (DIST) over the global batch
                fn, key = across_ranks(fn), key + "/global"
            terms.append(DistillTerm(key, fn, loss.weight, -1, -1, inputs="logits", relative=loss.relative,
                                     rebalance=loss.rebalance == "every_epoch", warmup_epochs=loss.warmup_epochs))
        for pair in loss.pairs:
            key = f"{loss.name}/t{pair.teacher}-s{pair.student}"
            fn = loss_function(loss, teacher_channels, student_channels, pair, privileged_channels, classes)
            if loss.scope == "global":  # pooled first (below), then gathered: less to send
                fn, key = across_ranks(fn), key + "/global"
            if loss.pool:
                fn, key = on_pooled(fn), key + "/pooled"
            if loss.project:  # outermost: the projector sees the student's map before pooling or gathering
                fn, key = StudentProjector(fn, student_channels(pair.student)), key + "/projected"
            spec = loss_spec(loss.name)
            terms.append(DistillTerm(key, fn, loss.weight, tap, tap, relative=loss.relative,
                                     rebalance=loss.rebalance == "every_epoch", inputs=spec.inputs,
                                     views=spec.views, warmup_epochs=loss.warmup_epochs,
                                     trains_teacher=spec.trains_teacher))
            teacher_stages.append(pair.teacher)
            student_stages.append(pair.student)
            tap += 1
    return Terms(terms, teacher_stages, student_stages)
