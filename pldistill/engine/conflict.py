"""Gradient surgery: the distillation terms may add to CE's gradient on the student, never oppose it.

A teacher whose knowledge the student cannot compute from its own input pulls
the student's parameters against its labels; at any fixed weight that pull can
leave the student below scratch (a RegNetX student under the flagship's SP,
docs/weights.md). ``distill.conflicts: project`` removes the opposing part, step
by step, with one-sided PCGrad (Yu, Kumar, Gupta, Levine, Hausman & Finn,
*Gradient Surgery for Multi-Task Learning*, NeurIPS 2020, Alg. 1): with

    g_ce = ∇_θ CE,   g_d = ∇_θ Σ_k w_k L_k        (θ: every trained parameter of the student, one vector)

the step uses g_ce + g_d', where

    g_d' = g_d − min(0, g_d · g_ce) / ‖g_ce‖² · g_ce.

Where the two agree (g_d · g_ce ≥ 0) nothing changes; where they conflict, g_d'
is orthogonal to g_ce, so to first order the distillation terms cannot raise
the batch's CE. Unlike PCGrad, CE is never projected: it is the task, the terms
are its helpers (as in Du et al., *Adapting Auxiliary Losses Using Gradient
Similarity*, 2018, which drops a conflicting auxiliary gradient whole instead).
The losses' own learned parts (regressors, projectors) read only the terms and
are left as they are. Under torchrun both gradients are the global batch's.

Cost: one more backward pass of CE through the student per step. Each epoch
records how often the terms conflicted with CE and their mean cosine before
projection (``conflict/``), which says how far the teacher pulls against the labels;
``distill.conflicts: measure`` records them and leaves the gradients as they are
(a diagnostic: e.g. a privileged teacher against a same-modality one).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from .. import distributed

__all__ = ["ConflictProjection", "project_away_conflict"]


def project_away_conflict(g_ce: Tensor, g_total: Tensor) -> tuple[Tensor, float]:
    """(g_ce + g_d', cos(g_d, g_ce)) for g_d = g_total − g_ce, both flat vectors; see the module's equation."""
    g_d = g_total - g_ce
    dot, ce_sq, d_sq = torch.dot(g_d, g_ce), torch.dot(g_ce, g_ce), torch.dot(g_d, g_d)
    cosine = float(dot / (ce_sq.sqrt() * d_sq.sqrt())) if ce_sq > 0 and d_sq > 0 else 0.0
    if dot >= 0 or ce_sq == 0:
        return g_total, cosine
    return g_total - (dot / ce_sq) * g_ce, cosine


class ConflictProjection:
    """Per step: CE's gradient before the backward pass, then the projection of what the terms added."""

    def __init__(self, project: bool = True):
        self.project = project  # False: only measure
        self._reset()

    def _reset(self) -> None:
        self.steps = self.conflicts = 0
        self.cosine_sum = 0.0

    def prepare(self, ce: Tensor, params: Sequence[nn.Parameter],
                scale: Callable[[Tensor], Tensor]) -> Callable[[], None]:
        """CE's gradient (scaled as the loss will be) → a function that projects ``params``' gradients after backward.

        ``params``: the student's trained parameters (the loop's list, already without frozen ones).
        """
        grads = torch.autograd.grad(scale(ce), params, retain_graph=True, allow_unused=True)
        g_ce = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).float()
                          for p, g in zip(params, grads)])
        if distributed.is_distributed():  # DDP averages the total's gradient over ranks: average CE's too
            torch.distributed.all_reduce(g_ce)
            g_ce /= distributed.world_size()

        def project() -> None:
            g_total = torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1).float()
                                 for p in params])
            projected, cosine = project_away_conflict(g_ce, g_total)
            self.steps += 1
            self.conflicts += cosine < 0
            self.cosine_sum += cosine
            if projected is g_total or not self.project:
                return
            offset = 0
            for p in params:
                n = p.numel()
                if p.grad is not None:  # a parameter no term reached keeps no gradient (the optimiser skips it)
                    p.grad = projected[offset:offset + n].view_as(p).to(p.dtype)
                offset += n

        return project

    def epoch_metrics(self) -> dict:
        """This epoch's share of conflicting steps and mean cosine (before projection); starts the next epoch."""
        if not self.steps:
            return {}
        out = {"conflict/fraction": self.conflicts / self.steps, "conflict/cosine": self.cosine_sum / self.steps,
               "conflict/projected": float(self.project)}
        self._reset()
        return out
