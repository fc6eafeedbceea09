"""Hinton knowledge distillation (Hinton, Vinyals & Dean, 2015).

    L_KD = T² · KL( softmax(z_t / T) ‖ softmax(z_s / T) ),  averaged over the batch.

The T² keeps the gradient scale comparable across temperatures. Needs the
teacher and student to share one label space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pydantic import Field

from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss

__all__ = ["kd_loss"]


def kd_loss(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 4.0) -> Tensor:
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"KD needs one label space: teacher logits {tuple(teacher_logits.shape)} vs "
            f"student logits {tuple(student_logits.shape)}"
        )
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        t = F.log_softmax(at_least_float32(teacher_logits) / temperature, dim=1)
        s = F.log_softmax(at_least_float32(student_logits) / temperature, dim=1)
        return F.kl_div(s, t, reduction="batchmean", log_target=True) * temperature**2


class KDParams(LossParams):
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")


register_loss(LossSpec(
    name="kd", display="KD", citation="Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, 2015",
    fn=kd_loss, inputs="logits", params=KDParams, symbols={"temperature": "T"},
    preset={"weight": 1.0, "temperature": 4.0},
))
