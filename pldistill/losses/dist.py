"""DIST: distillation by Pearson relations of class probabilities (Huang, You, Wang, Qian & Xu, NeurIPS 2022).

With Y = softmax(z / τ) (b × C) for teacher and student, and
ρ(u, v) the Pearson correlation of two vectors (cosine similarity after centring):

    L_inter = 1 − (1/b) Σ_i ρ(Y_s[i, :], Y_t[i, :])      relations between classes, per sample
    L_intra = 1 − (1/C) Σ_c ρ(Y_s[:, c], Y_t[:, c])      relations between samples, per class
    L_DIST  = τ² (β · L_inter + γ · L_intra)

Pearson correlation ignores shifts and scales of the probabilities, so a
stronger teacher's sharper (or a weaker student's flatter) distribution is
not forced on the student, only its ranking relations: the exact match KL
asks for. The intra-class term relates the samples of a batch, as SP does
for features, so the loss needs b ≥ 2 and may run over the global batch.

Defaults are the official implementation's (β = γ = τ = 1). Not established
from the paper: the loss weight its CIFAR settings used beside CE; the
preset keeps 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from .checks import need_batch, same_batch
from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss

__all__ = ["dist_loss", "pearson_rows"]

_EPS = 1e-8


def pearson_rows(a: Tensor, b: Tensor) -> Tensor:
    """ρ between matching rows of a and b; a constant row has correlation 0 (not NaN)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    # the norms' square roots get an ε inside, so a constant row also has a finite gradient
    norms = (a.pow(2).sum(1) + _EPS**2).sqrt() * (b.pow(2).sum(1) + _EPS**2).sqrt()
    return (a * b).sum(1) / (norms + _EPS)


def dist_loss(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 1.0, inter: float = 1.0,
              intra: float = 1.0) -> Tensor:
    """τ² (β · L_inter + γ · L_intra) for one batch of logits (unweighted)."""
    same_batch(teacher_logits, student_logits, "DIST")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"DIST needs one label space: teacher logits {tuple(teacher_logits.shape)} vs "
                         f"student logits {tuple(student_logits.shape)}")
    need_batch(student_logits, 2, "DIST's intra-class relation")
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        y_t = F.softmax(at_least_float32(teacher_logits) / temperature, dim=1)
        y_s = F.softmax(at_least_float32(student_logits) / temperature, dim=1)
        inter_loss = 1 - pearson_rows(y_s, y_t).mean()
        intra_loss = 1 - pearson_rows(y_s.t(), y_t.t()).mean()
        return temperature**2 * (inter * inter_loss + intra * intra_loss)


class DISTParams(LossParams):
    temperature: float = Field(1.0, gt=0, description="softmax temperature τ")
    inter: float = Field(1.0, ge=0, description="β, weight of the inter-class (per-sample) relation")
    intra: float = Field(1.0, ge=0, description="γ, weight of the intra-class (per-class, across the batch) relation")


register_loss(LossSpec(
    name="dist", display="DIST", citation="Huang et al., Knowledge Distillation from A Stronger Teacher, NeurIPS 2022",
    fn=dist_loss, inputs="logits", relational=True, min_batch=2, params=DISTParams, symbols={"temperature": "τ"},
    preset={"weight": 1.0},
))
