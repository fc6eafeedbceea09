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
import torch.nn.functional as F
from torch import Tensor

from .checks import need_batch, same_batch
from .precision import at_least_float32


def similarity_matrix(activations: Tensor) -> Tensor:
    """Row-normalised b × b Gram matrix of a batch of activations, in float32.

    Rows of zeros stay zero (``F.normalize`` clamps the norm) instead of NaN.
    """
    a = at_least_float32(activations.reshape(activations.shape[0], -1))
    return F.normalize(a @ a.t(), p=2, dim=1)


def sp_loss(teacher: Tensor, student: Tensor) -> Tensor:
    """‖G̃_t − G̃_s‖²_F / b² for one layer pair (unweighted)."""
    same_batch(teacher, student, "SP")
    need_batch(student, 2, "SP")
    b = teacher.shape[0]
    with torch.autocast(device_type=teacher.device.type, enabled=False):
        diff = similarity_matrix(teacher) - similarity_matrix(student)
        return diff.pow(2).sum() / (b * b)
