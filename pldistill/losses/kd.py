"""Hinton knowledge distillation (Hinton, Vinyals & Dean, 2015).

    L_KD = T² · KL( softmax(z_t / T) ‖ softmax(z_s / T) ),  averaged over the batch.

The T² keeps the gradient scale comparable across temperatures. Needs the
teacher and student to share one label space.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from .registry import LossParams, LossSpec, register_loss
from .tempered import tempered_kl

__all__ = ["kd_loss"]


def kd_loss(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 4.0) -> Tensor:
    return tempered_kl(teacher_logits, student_logits, temperature, "KD")


class KDParams(LossParams):
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")


register_loss(LossSpec(
    name="kd", display="KD", citation="Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, 2015",
    fn=kd_loss, inputs="logits", params=KDParams, symbols={"temperature": "T"},
    preset={"weight": 1.0, "temperature": 4.0},
))
