"""A student-side projector: the distillation loss sees a learned linear map of the student's features.

Relational losses such as SP constrain the Gram matrix of the tapped layer
itself. When that layer feeds the classifier directly (RegNetX's last stage
goes straight to pooling and the linear head), matching a teacher whose
similarities the student's modality cannot reproduce pulls the very features
the label is read from. A learned projector P between the student's layer
and the loss (Miles & Mikolajczyk, *Understanding the Role of the Projector
in Knowledge Distillation*, AAAI 2024; the embedding heads of CRD and SSKD)
decouples the two:

    L = L_distill( F_t,  P(F_s) ),   P = 1×1 convolution c_s → c_s (a linear map for vectors),

so with a relational loss only P(F_s)·P(F_s)ᵀ = F_s·PᵀP·F_sᵀ must match: P may
weigh down the directions of F_s that carry the label and clash with the
teacher's similarities. P trains with the student and is dropped afterwards;
inference never runs it. It is initialised as timm initialises a 1×1
convolution (Kaiming-uniform), not as the identity, so the loss does not
start out acting on the raw features.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

PairLoss = Callable[[Tensor, Tensor], Tensor]


class StudentProjector(nn.Module):
    """``loss(teacher, P(student))`` with P learned; maps (b, c, h, w) and vectors (b, c) alike."""

    def __init__(self, loss: PairLoss, channels: int):
        super().__init__()
        self.loss = loss
        self.projector = nn.Conv2d(channels, channels, kernel_size=1, bias=False)

    def project(self, student: Tensor) -> Tensor:
        weight = self.projector.weight
        if student.dim() == 2:  # a pooled or vector feature: the same map as a linear layer
            return student.to(weight.dtype) @ weight.flatten(1).t()
        if student.dim() != 4:
            raise ValueError(f"the student projector takes (b, c) or (b, c, h, w) features, not {tuple(student.shape)}")
        return self.projector(student.to(weight.dtype))

    def forward(self, teacher: Tensor, student: Tensor) -> Tensor:
        with torch.autocast(device_type=student.device.type, enabled=False):
            return self.loss(teacher, self.project(student))
