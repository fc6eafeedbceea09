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
from .fitnet import FitNetHint, fitnet_loss
from .kd import kd_loss
from .pooling import global_pool, on_pooled
from .rkd import rkd_angle_loss, rkd_distance_loss, rkd_loss
from .scope import across_ranks
from .sp import similarity_matrix, sp_loss

PairLoss = Callable[[Tensor, Tensor], Tensor]

# Losses a recipe can name. Feature losses take (teacher features, student
# features) of one layer pair; "kd" takes (teacher logits, student logits).
LOSSES: dict[str, PairLoss] = {
    "sp": sp_loss,
    "at": at_loss,
    "rkd": rkd_loss,
    "cc": cc_loss,
    "kd": kd_loss,
}

# Losses that relate the samples of a batch: the ones a recipe may compute over the global batch
# of a multi-process run (``scope: global``, see scope.py); the others are per-sample means.
RELATIONAL = {"sp", "rkd", "cc"}

# Losses with learned parameters, built per layer pair from (student, teacher) channels.
PARAMETRIC_LOSSES = {"fitnet": FitNetHint}

__all__ = [
    "LOSSES",
    "PARAMETRIC_LOSSES",
    "RELATIONAL",
    "FitNetHint",
    "fitnet_loss",
    "global_pool",
    "on_pooled",
    "PairLoss",
    "across_ranks",
    "at_loss",
    "attention_map",
    "cc_loss",
    "correlation_matrix",
    "kd_loss",
    "rkd_angle_loss",
    "rkd_distance_loss",
    "rkd_loss",
    "similarity_matrix",
    "sp_loss",
]
