"""Similarity-Preserving knowledge distillation (Tung & Mori, ICCV 2019).

For a batch of b samples and a layer's activations A (b × anything):

    G = A · Aᵀ,   G̃ = G / ‖G[i,:]‖₂ (row-wise),   L_SP = ‖G̃_t − G̃_s‖²_F / b²

Only b × b matrices are compared, so teacher and student may differ in
channels, spatial size, depth and input modality.

b is whatever batch the function is given. Under torchrun each process holds
b / n samples: ``scope: local`` calls this on them (the paper's loss at the
per-process batch), ``scope: global`` on the features gathered from every
process (``losses.scope.across_ranks``), which is this loss at the full b.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..similarity import similarity_matrix
from .checks import need_batch, same_batch
from .registry import LossSpec, register_loss

__all__ = ["similarity_matrix", "sp_loss"]


def sp_loss(teacher: Tensor, student: Tensor) -> Tensor:
    """‖G̃_t − G̃_s‖²_F / b² for one layer pair (unweighted)."""
    same_batch(teacher, student, "SP")
    need_batch(student, 2, "SP")
    b = teacher.shape[0]
    with torch.autocast(device_type=teacher.device.type, enabled=False):
        diff = similarity_matrix(teacher) - similarity_matrix(student)
        return diff.pow(2).sum() / (b * b)


register_loss(LossSpec(
    name="sp", display="SP", citation="Tung & Mori, Similarity-Preserving Knowledge Distillation, ICCV 2019",
    fn=sp_loss, relational=True, min_batch=2, poolable=True, weight_symbol="γ",
    preset={"weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]},
))
