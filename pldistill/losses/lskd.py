"""KD after logit standardisation (Sun, Ren, Li, Wang & Cao, *Logit Standardization in KD*, CVPR 2024).

With Z(z) = (z − mean(z)) / (std(z) + ε) per sample (over classes; std with
Bessel's correction, ε = 1e-7, as the official code computes it) and a base
temperature τ:

    L_LS-KD = τ² · KL( softmax(Z(z_t) / τ) ‖ softmax(Z(z_s) / τ) ),  averaged over the batch

Z makes the loss invariant to a shift and a positive scale of either side's
logits: the student matches the teacher's logit *relations*, not their range,
which a weaker student or a teacher on another modality cannot match. It is
one more logit term, so it adds to any other loss of a recipe. Preset: the
official CIFAR-100 setting, τ = 2, weight 9. Not carried over: that code also
lowers the cross-entropy weight to 0.1; pldistill's CE weight is 1.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss
from .tempered import tempered_kl

__all__ = ["lskd_loss", "standardise_logits"]

EPS = 1e-7


def standardise_logits(logits: Tensor) -> Tensor:
    """Z-score per sample over the classes (unbiased std, as the paper's code)."""
    z = at_least_float32(logits)
    return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + EPS)


def lskd_loss(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 2.0) -> Tensor:
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        return tempered_kl(standardise_logits(teacher_logits), standardise_logits(student_logits), temperature,
                           "LS-KD")


class LSKDParams(LossParams):
    temperature: float = Field(2.0, gt=0, description="base temperature τ, applied after standardising")


register_loss(LossSpec(
    name="lskd", display="LS-KD", what="KD on standardised logits",
    citation="Sun et al., Logit Standardization in Knowledge Distillation, CVPR 2024",
    fn=lskd_loss, inputs="logits", params=LSKDParams, symbols={"temperature": "τ"},
    preset={"weight": 9.0, "temperature": 2.0},
))
