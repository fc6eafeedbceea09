"""Distillation losses: pure functions of tensors, found by name in ``LOSSES``.

A loss here takes the teacher's and the student's tapped features for one
layer pair (or their logits) and returns an unweighted scalar; the trainer
applies the recipe's weight. Adding a loss is one file plus one entry.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from .sp import similarity_matrix, sp_loss

PairLoss = Callable[[Tensor, Tensor], Tensor]

LOSSES: dict[str, PairLoss] = {
    "sp": sp_loss,
}

__all__ = ["LOSSES", "PairLoss", "similarity_matrix", "sp_loss"]
