"""Losses run in at least float32: half-precision activations are promoted, float64 is kept.

Under autocast a layer's activations may arrive as float16/bfloat16, where the
b × b matrices and normalisations of relational losses lose most of their
digits. Float64 passes through untouched so ``gradcheck`` can test the very
functions training uses.
"""

from __future__ import annotations

import torch
from torch import Tensor


def at_least_float32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float64 else x.float()
