"""Distillation losses: pure functions of tensors, found by name in ``LOSSES``.

A loss here takes the teacher's and the student's tapped features for one
layer pair (or their logits) and returns an unweighted scalar; the trainer
applies the recipe's weight. Adding a loss is one file plus one entry.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from .at import at_loss, attention_map
from .cc import cc_loss, correlation_matrix
from .kd import kd_loss
from .rkd import rkd_angle_loss, rkd_distance_loss
from .sp import similarity_matrix, sp_loss

PairLoss = Callable[[Tensor, Tensor], Tensor]

# Losses a recipe can name today. The baselines below are tested pure functions;
# their recipe wiring (logit taps for KD, FitNets regressors, applicability
# checks) is issue 3's remaining work.
LOSSES: dict[str, PairLoss] = {
    "sp": sp_loss,
}

__all__ = [
    "LOSSES",
    "PairLoss",
    "at_loss",
    "attention_map",
    "cc_loss",
    "correlation_matrix",
    "kd_loss",
    "rkd_angle_loss",
    "rkd_distance_loss",
    "similarity_matrix",
    "sp_loss",
]
