"""The row-normalised b × b similarity matrix: SP's core, also read by the alignment metrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def similarity_matrix(activations: Tensor) -> Tensor:
    """Row-normalised b × b Gram matrix of a batch of activations, in at least float32.

    Rows of zeros stay zero (``F.normalize`` clamps the norm) instead of NaN.
    """
    a = activations.reshape(activations.shape[0], -1)
    a = a if a.dtype == torch.float64 else a.float()  # half precision loses the matrix's digits
    return F.normalize(a @ a.t(), p=2, dim=1)
