"""The one step contract: a student's (and frozen teacher's) forward pass → weighted loss terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..terms import DistillTerm
from ..models import TappedModel


@dataclass
class StepOutput:
    """``total == sum(terms.values())``; ``terms`` are already weighted (``ce`` first)."""

    total: Tensor
    logits: Tensor
    terms: dict[str, Tensor]


def distill_step(
    student: TappedModel,
    inputs: Tensor,
    labels: Tensor,
    teacher: TappedModel | None = None,
    teacher_inputs: Tensor | None = None,
    terms: Sequence[DistillTerm] = (),
    teacher_outputs: tuple[Tensor, list[Tensor]] | None = None,
) -> StepOutput:
    """Forward the student (and the frozen teacher) and return the weighted loss terms.

    ``teacher_outputs`` (logits, tapped features), e.g. read from a teacher cache,
    replace the teacher's forward pass.
    """
    logits, s_feats = student(inputs)
    named = {"ce": F.cross_entropy(logits.float(), labels)}
    if terms:
        if teacher_outputs is not None:
            t_logits, t_feats = teacher_outputs
        else:
            with torch.no_grad():
                t_logits, t_feats = teacher(teacher_inputs)
        for term in terms:
            if term.on_logits:
                value = term.fn(t_logits, logits)
            else:
                value = term.fn(t_feats[term.teacher_tap], s_feats[term.student_tap])
            named[term.key] = term.weight * value
    total = torch.stack(list(named.values())).sum()
    return StepOutput(total, logits, named)
