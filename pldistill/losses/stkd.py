"""Similarity Transfer for Knowledge Distillation (STKD; Zhao, Gong, Sun, Dong & Yu, arXiv:2103.10047, 2021).

STKD distils the teacher's category similarities on *virtual* samples made
by mixup, so the student also learns how the teacher relates two instances
and the wrong-class similarities carried by the mixed labels. With
x̃ = λ·x_i + (1 − λ)·x_j and ỹ = λ·y_i + (1 − λ)·y_j (λ ~ Beta(α, α)), the
student minimises

    L = CE(ỹ, σ(z_s(x̃)))  +  w · T² · KL( σ(z_t(x̃) / T) ‖ σ(z_s(x̃) / T) ),

where z_t(x̃) is the teacher's response to the *same* virtual sample. In a
paired pipeline the teacher's x̃ is the mix of the privileged modality with
the same partner j and the same λ (``engine/mixup.py``, ``student.mixup``);
this file is the second term, the mixed CE is the trainer's.

What the paper's text available here did not settle, and what was chosen:
the weight between the terms (w = 1, as KD here), the temperature (T = 4, as
KD here) and the mixup α (1.0, mixup's CIFAR setting, in ``student.mixup``);
one λ per batch, as mixup's reference code; no extra instance-similarity term
beyond what the mixed teacher outputs carry.
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor

from .registry import LossParams, LossSpec, register_loss
from .tempered import tempered_kl

__all__ = ["stkd_loss"]


def stkd_loss(teacher_logits: Tensor, student_logits: Tensor, temperature: float = 4.0) -> Tensor:
    """T² · KL between the teacher's and the student's tempered predictions on the same mixed samples."""
    return tempered_kl(teacher_logits, student_logits, temperature, "STKD")


class STKDParams(LossParams):
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")


register_loss(LossSpec(
    name="stkd", display="STKD", what="similarity transfer on mixed samples",
    citation="Zhao, Gong, Sun, Dong & Yu, Similarity Transfer for Knowledge Distillation, arXiv:2103.10047, 2021",
    fn=stkd_loss, inputs="logits", params=STKDParams, symbols={"temperature": "T"}, needs_mixup=True,
    preset={"weight": 1.0, "temperature": 4.0},
))
