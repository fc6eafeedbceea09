"""Relational knowledge distillation (Park, Kim, Lu & Cho, CVPR 2019).

Distance term: pairwise Euclidean distances of the embeddings, each divided by
the mean non-zero distance of its batch, compared with the Huber loss.
Angle term: for every triplet (i, j, k), cos∠ = ⟨e_ij, e_kj⟩ with
e_ij = (x_i − x_j)/‖x_i − x_j‖, compared with the Huber loss. Both compare
batch-internal structure, so embedding widths may differ; both need b ≥ 2
(distance) or b ≥ 3 (angle).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pydantic import Field

from .checks import need_batch, same_batch
from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss

__all__ = ["rkd_angle_loss", "rkd_distance_loss", "rkd_loss"]


def _embed(x: Tensor) -> Tensor:
    return at_least_float32(x.reshape(x.shape[0], -1))


def _normalised_distances(e: Tensor) -> Tensor:
    d = torch.cdist(e, e)
    positive = d[d > 0]
    mean = positive.mean() if positive.numel() else d.new_tensor(1.0)
    return d / mean.clamp_min(1e-12)


def _relation_loss(teacher: Tensor, student: Tensor, relation, minimum: int, what: str) -> Tensor:
    """Huber loss between a batch-internal relation of the student and of the (fixed) teacher."""
    same_batch(teacher, student, "RKD")
    need_batch(student, minimum, what)
    with torch.autocast(device_type=student.device.type, enabled=False):
        with torch.no_grad():
            target = relation(_embed(teacher))
        return F.smooth_l1_loss(relation(_embed(student)), target)


def rkd_distance_loss(teacher: Tensor, student: Tensor) -> Tensor:
    return _relation_loss(teacher, student, _normalised_distances, 2, "RKD's distance term")


def _angles(e: Tensor) -> Tensor:
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)  # diff[j, i] = e_i - e_j
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def rkd_angle_loss(teacher: Tensor, student: Tensor) -> Tensor:
    return _relation_loss(teacher, student, _angles, 3, "RKD's angle term")


def rkd_loss(teacher: Tensor, student: Tensor, angle_weight: float = 2.0) -> Tensor:
    """Distance + angle terms in the paper's 25:50 proportion (scale with the recipe weight)."""
    return rkd_distance_loss(teacher, student) + angle_weight * rkd_angle_loss(teacher, student)


class RKDParams(LossParams):
    angle_weight: float = Field(2.0, ge=0, description="angle term relative to the distance term (paper: 50:25)")


register_loss(LossSpec(
    name="rkd", display="RKD", what="relational KD",
    citation="Park, Kim, Lu & Cho, Relational Knowledge Distillation, CVPR 2019",
    fn=rkd_loss, relational=True, min_batch=3, poolable=True, params=RKDParams,  # the angle term needs triplets
    preset={"weight": 25.0, "pool": True, "pairs": [{"teacher": -1, "student": -1}]},
))
