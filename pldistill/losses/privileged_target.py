"""The privileged modality as an auxiliary target: the student predicts it, no teacher involved.

The simplest use of privileged information, and the baseline to beat before
crediting a teacher: multi-task learning with the privileged modality as an
extra output (Caruana, *Multitask Learning*, Machine Learning 1997; depth as
an auxiliary target for RGB recognition is its best-known form). A
training-only decoder D reads the student's tapped stage and predicts the
privileged input x* of the same (augmented) sample:

    L_aux = mean( (D(F_s) − x*)² ),   D = 1×1 convolution c_s → c*, resized bilinearly to x*'s size,

and for a vector modality (or a student stage that is a vector) D is a
linear map of the pooled feature to x*'s values. x* is what the loader gives
(encoded and normalised, the geometry shared with the student's input by the
joint augmentation). The decoder is dropped with the other learned loss
parts: inference and export never see it. The entry's ``pairs`` name the
student stage; their ``teacher`` index is not used (write -1).

What is not settled by a paper here, and chosen: a linear decoder (a deeper
one would learn the target itself rather than shape the student), squared
error on the normalised input, and the student's stage −2 in the recipes (a
map with some spatial extent at 48 px).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pooling import global_pool
from .precision import at_least_float32
from .registry import LossSpec, register_loss

__all__ = ["PrivilegedTarget", "privileged_target_loss"]


def privileged_target_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error after resizing a predicted map to the target's size (vectors as they are)."""
    if len(prediction) != len(target):
        raise ValueError(f"the privileged target needs the same batch of samples: prediction has {len(prediction)}, "
                         f"target {len(target)}")
    p, t = at_least_float32(prediction), at_least_float32(target)
    if t.dim() == 4 and p.shape[-2:] != t.shape[-2:]:
        p = F.interpolate(p, size=t.shape[-2:], mode="bilinear", align_corners=False)
    return F.mse_loss(p, t.to(p.dtype))


class PrivilegedTarget(nn.Module):
    """The decoder D from the student's stage to the privileged input; ``forward(x*, F_s)`` → L_aux."""

    def __init__(self, student_channels: int, privileged_channels: int):
        super().__init__()
        self.decoder = nn.Conv2d(student_channels, privileged_channels, kernel_size=1)

    def forward(self, privileged: Tensor, student: Tensor) -> Tensor:
        weight, bias = self.decoder.weight, self.decoder.bias
        with torch.autocast(device_type=student.device.type, enabled=False):
            s = student.to(weight.dtype)
            if privileged.dim() == 2 or s.dim() != 4:  # a vector on either side: a linear map of the pooled feature
                prediction = global_pool(s) @ weight.flatten(1).t() + bias
                target = privileged if privileged.dim() == 2 else privileged.mean((2, 3))
                return privileged_target_loss(prediction, target)
            return privileged_target_loss(self.decoder(s), privileged)


register_loss(LossSpec(
    name="privileged_target", display="Aux target", what="the privileged modality as an auxiliary target",
    citation="Caruana, Multitask Learning, Machine Learning 28, 1997 (the privileged input as an extra output)",
    learned=PrivilegedTarget, inputs="privileged", preset={"weight": 1.0, "pairs": [{"teacher": -1, "student": -2}]},
))
