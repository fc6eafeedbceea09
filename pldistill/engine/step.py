"""The one step contract: a student's (and frozen teacher's) forward pass → weighted loss terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..terms import DistillTerm
from ..models import TappedModel
from .mixup import MixDraw, mixed_cross_entropy


@dataclass
class StepOutput:
    """``total == sum(terms.values())``; ``terms`` are already weighted (``ce`` first), ``raw`` are not."""

    total: Tensor
    logits: Tensor
    terms: dict[str, Tensor]
    raw: dict[str, Tensor] = field(default_factory=dict)

    def reweighed(self, weights: Mapping[str, float]) -> "StepOutput":
        """The same forward pass with other term weights (CE keeps weight 1): no second forward."""
        terms = {k: v if k == "ce" else weights[k] * v for k, v in self.raw.items()}
        return StepOutput(torch.stack(list(terms.values())).sum(), self.logits, terms, self.raw)


def distill_step(
    student: TappedModel,
    inputs: Tensor,
    labels: Tensor,
    teacher: TappedModel | None = None,
    teacher_inputs: Tensor | None = None,
    terms: Sequence[DistillTerm] = (),
    teacher_outputs: tuple[Tensor, list[Tensor]] | None = None,
    weights: Mapping[str, float] | None = None,
    mix: MixDraw | None = None,
) -> StepOutput:
    """Forward the student (and the frozen teacher) and return the weighted loss terms.

    ``teacher_outputs`` (logits, tapped features), e.g. read from a teacher cache,
    replace the teacher's forward pass. ``weights`` (by term key) replace the
    terms' own, e.g. weights calibrated relative to CE (``engine/balance.py``).
    ``mix`` is the joint mixup draw the inputs were mixed with (``engine/mixup.py``):
    CE is then taken against the mixed labels.
    """
    views = next((t.views for t in terms if t.views is not None), None)
    if views is not None:  # e.g. rotations: the same transformed copies of both modalities (losses/batch_views.py)
        inputs = views.expand(inputs)
        teacher_inputs = views.expand(teacher_inputs) if teacher_inputs is not None else None
    all_logits, all_feats = student(inputs)
    logits, s_feats = all_logits, all_feats
    if views is not None:  # CE and every other term see the original samples only
        logits, s_feats = views.originals(all_logits), [views.originals(f) for f in all_feats]
    raw = {"ce": F.cross_entropy(logits.float(), labels) if mix is None
           else mixed_cross_entropy(logits.float(), labels, mix)}
    if any(term.inputs != "privileged" for term in terms):  # an auxiliary target needs no teacher
        if teacher_outputs is not None:
            all_t_logits, all_t_feats = teacher_outputs
        else:
            with torch.set_grad_enabled(any(term.trains_teacher for term in terms)):  # frozen, unless C2KD
                all_t_logits, all_t_feats = teacher(teacher_inputs)
        t_logits, t_feats = all_t_logits, all_t_feats
        if views is not None:
            t_logits, t_feats = views.originals(all_t_logits), [views.originals(f) for f in all_t_feats]
    for term in terms:
        if term.inputs == "privileged":
            if teacher_inputs is None:
                raise ValueError(f"{term.key} predicts the privileged input, which this step was not given (a teacher "
                                 "cache or class-mean teacher replaces it); train with the live privileged input")
            privileged = views.originals(teacher_inputs) if views is not None else teacher_inputs
            raw[term.key] = term.fn(privileged, s_feats[term.student_tap])
        elif term.inputs == "outputs":
            raw[term.key] = term.fn((all_t_logits, all_t_feats[term.teacher_tap]),
                                    (all_logits, all_feats[term.student_tap]), labels)
        elif term.inputs == "logits":
            raw[term.key] = term.fn(t_logits, logits)
        else:
            raw[term.key] = term.fn(t_feats[term.teacher_tap], s_feats[term.student_tap])
    return StepOutput(raw["ce"], logits, {"ce": raw["ce"]}, raw).reweighed(
        {t.key: t.weight for t in terms} if weights is None else weights)
