"""Pooled embeddings: compare a layer's global-average-pooled vector instead of its whole map.

RKD and correlation congruence are defined on a network's final embedding
(one c-vector per sample), not on a c × h × w map; pooling first is also far
cheaper for RKD, whose angle term costs b³ · d.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor


def global_pool(x: Tensor) -> Tensor:
    """(b, c, h, w) → (b, c) mean over space; vectors pass through."""
    return x.mean(dim=(2, 3)) if x.dim() == 4 else x.reshape(x.shape[0], -1)


def on_pooled(loss: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    def pooled(teacher: Tensor, student: Tensor) -> Tensor:
        return loss(global_pool(teacher), global_pool(student))

    pooled.__name__ = f"{getattr(loss, '__name__', 'loss')}_on_pooled"
    return pooled
