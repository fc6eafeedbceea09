"""The tempered KL divergence that logit losses share: τ² · KL(softmax(t/τ) ‖ softmax(s/τ)), batch mean."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .precision import at_least_float32


def tempered_kl(teacher_logits: Tensor, student_logits: Tensor, temperature: float, what: str) -> Tensor:
    """In float32 whatever the autocast; ``what`` names the loss when the label spaces differ."""
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"{what} needs one label space: teacher logits {tuple(teacher_logits.shape)} vs "
                         f"student logits {tuple(student_logits.shape)}")
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        t = F.log_softmax(at_least_float32(teacher_logits) / temperature, dim=1)
        s = F.log_softmax(at_least_float32(student_logits) / temperature, dim=1)
        return F.kl_div(s, t, reduction="batchmean", log_target=True) * temperature**2
