"""Relational losses over the global batch: under torchrun, SP/CC/RKD can relate every process's samples.

A relational loss compares samples within a batch, so with DDP each process
sees only its local b / world_size. ``scope: local`` (the default) keeps the
paper's definition at that local batch; ``scope: global`` gathers teacher and
student features from every process first (gradients flow back to each
process's own samples), so n processes × b/n give the loss and the gradients
of one process × b. In one process the two are the same function.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from ..distributed import gather_with_grad

PairLoss = Callable[[Tensor, Tensor], Tensor]


def across_ranks(loss: PairLoss) -> PairLoss:
    """``loss`` on the batch gathered from every process, in rank order (relations ignore order)."""

    def global_batch(teacher: Tensor, student: Tensor) -> Tensor:
        return loss(gather_with_grad(teacher), gather_with_grad(student))

    global_batch.__name__ = f"{getattr(loss, '__name__', 'loss')}_across_ranks"
    return global_batch
