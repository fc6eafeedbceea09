"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017).

A spatial attention map Q = Σ_c |A_c|^p (p = 2), flattened and L2-normalised
per sample; the loss is the mean squared difference of the teacher's and the
student's maps. When resolutions differ the student's map is resized
(bilinear) to the teacher's before normalising, so any two conv stages pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pydantic import Field

from .checks import same_batch
from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss

__all__ = ["at_loss", "attention_map"]


def attention_map(activations: Tensor, p: float = 2.0, size: tuple[int, int] | None = None) -> Tensor:
    """(b, c, h, w) → (b, h·w) unit-norm spatial attention, optionally resized first."""
    if activations.dim() != 4:
        raise ValueError(f"attention transfer needs (b, c, h, w) feature maps, got {tuple(activations.shape)}")
    q = at_least_float32(activations).abs().pow(p).mean(1, keepdim=True)
    if size is not None and tuple(q.shape[-2:]) != tuple(size):
        q = F.interpolate(q, size=size, mode="bilinear", align_corners=False)
    return F.normalize(q.flatten(1), dim=1)


def at_loss(teacher: Tensor, student: Tensor, p: float = 2.0) -> Tensor:
    same_batch(teacher, student, "attention transfer")
    with torch.autocast(device_type=student.device.type, enabled=False):
        q_t = attention_map(teacher, p)
        q_s = attention_map(student, p, size=tuple(teacher.shape[-2:]))
        return (q_t - q_s).pow(2).mean()


class ATParams(LossParams):
    p: float = Field(2.0, gt=0, description="exponent of the attention map Σ_c |A_c|^p")


register_loss(LossSpec(
    name="at", display="AT", what="attention transfer",
    citation="Zagoruyko & Komodakis, Paying More Attention to Attention, ICLR 2017",
    fn=at_loss, spatial=True, needs_extent=True, params=ATParams, preset={"weight": 1000.0, "pairs": "auto"},
))
