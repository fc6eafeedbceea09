"""Correlation congruence (Peng et al., ICCV 2019).

Embeddings are L2-normalised; the sample correlation matrix uses a Gaussian
RBF kernel k(x, y) = exp(−2γ + 2γ·x·y) (for unit vectors), approximated by its
P-th order Taylor expansion Σ_{p=0..P} e^{−2γ} (2γ)^p / p! · (x·y)^p. The loss
is ‖C_t − C_s‖²_F / b². Only b × b matrices meet, so widths may differ.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pydantic import Field

from .checks import need_batch, same_batch
from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss

__all__ = ["cc_loss", "correlation_matrix"]


def correlation_matrix(embeddings: Tensor, gamma: float = 0.4, order: int = 2) -> Tensor:
    e = F.normalize(at_least_float32(embeddings.reshape(embeddings.shape[0], -1)), dim=1)
    dots = e @ e.t()
    scale = math.exp(-2 * gamma)
    return sum(scale * (2 * gamma) ** p / math.factorial(p) * dots.pow(p) for p in range(order + 1))


def cc_loss(teacher: Tensor, student: Tensor, gamma: float = 0.4, order: int = 2) -> Tensor:
    same_batch(teacher, student, "correlation congruence")
    need_batch(student, 2, "correlation congruence")
    b = student.shape[0]
    with torch.autocast(device_type=student.device.type, enabled=False):
        diff = correlation_matrix(teacher, gamma, order) - correlation_matrix(student, gamma, order)
        return diff.pow(2).sum() / (b * b)


class CCParams(LossParams):
    gamma: float = Field(0.4, gt=0, description="γ of the Gaussian RBF kernel")
    order: int = Field(2, ge=1, le=8, description="P, the order of the kernel's Taylor expansion")


register_loss(LossSpec(
    name="cc", display="CC", what="correlation congruence",
    citation="Peng et al., Correlation Congruence for Knowledge Distillation, ICCV 2019",
    fn=cc_loss, relational=True, min_batch=2, poolable=True, params=CCParams,
    preset={"weight": 700.0, "pool": True, "pairs": [{"teacher": -1, "student": -1}]},
))
