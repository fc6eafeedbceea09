"""FitNets hints (Romero et al., ICLR 2015).

A learned regressor maps the student's hint layer onto the teacher's guided
layer and the loss is their mean squared difference:

    L_hint = ‖ W_t(x) − r(W_s(x)) ‖² / n

Here r is a 1×1 convolution (student → teacher channels) followed by a
bilinear resize to the teacher's spatial size, so mismatched widths and
resolutions pair. The regressor is trained with the student and discarded
afterwards: it is never needed at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import same_batch
from .precision import at_least_float32
from .registry import LossSpec, register_loss

__all__ = ["FitNetHint", "fitnet_loss"]


def fitnet_loss(teacher: Tensor, regressed_student: Tensor) -> Tensor:
    """MSE after resizing the (already channel-matched) student map to the teacher's size."""
    same_batch(teacher, regressed_student, "a FitNets hint")
    if regressed_student.shape[1] != teacher.shape[1]:
        raise ValueError(
            f"FitNets: regressed student has {regressed_student.shape[1]} channels, teacher {teacher.shape[1]}"
        )
    s = at_least_float32(regressed_student)
    if s.shape[-2:] != teacher.shape[-2:]:
        s = F.interpolate(s, size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    return F.mse_loss(s, teacher.to(s.dtype))


class FitNetHint(nn.Module):
    """Regressor + hint loss for one layer pair; its parameters join the student's optimiser."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.regressor = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False)

    def forward(self, teacher: Tensor, student: Tensor) -> Tensor:
        with torch.autocast(device_type=student.device.type, enabled=False):
            return fitnet_loss(teacher, self.regressor(student.to(self.regressor.weight.dtype)))


register_loss(LossSpec(
    name="fitnet", display="FitNet", what="a FitNets hint",
    citation="Romero et al., FitNets: Hints for Thin Deep Nets, ICLR 2015",
    learned=FitNetHint, spatial=True, preset={"weight": 100.0, "pairs": [{"teacher": 2, "student": 2}]},
))
