"""Joint mixup: one partner and one λ for every modality of a sample, so teacher and student see one virtual sample.

Mixup (Zhang, Cisse, Dauphin & Lopez-Paz, *mixup: Beyond Empirical Risk
Minimization*, ICLR 2018) trains on convex combinations of two samples and
their labels:

    x̃ = λ·x_i + (1 − λ)·x_j,   ỹ = λ·y_i + (1 − λ)·y_j,   λ ~ Beta(α, α),

with j = π(i) for a random permutation π of the batch and one λ per batch.
The cross-entropy against ỹ is λ·CE(z, y_i) + (1 − λ)·CE(z, y_j).

In a paired pipeline the mix must be *joint*: the student's RGB and the
teacher's depth of a sample are mixed with the same partner j and the same
λ, so the teacher's outputs describe the virtual sample the student sees
(STKD, ``losses/stkd.py``, distils exactly those). Modalities are mixed as
the loader gives them (encoded and normalised, as ModDrop does). The draw is
seeded by (seed, rank, step), so a resumed stage mixes what the
uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class MixDraw:
    """One batch's mix: sample i is mixed with sample ``partner[i]`` with weight ``lam`` on itself."""

    partner: Tensor  # (b,) long: a permutation of the batch
    lam: float

    def mix(self, x: Tensor) -> Tensor:
        return self.lam * x + (1.0 - self.lam) * x[self.partner.to(x.device)]


MIXUP_ALPHA = "train/mixup_alpha"  # in the epoch record of a stage that trained on mixed samples


@dataclass(frozen=True)
class JointMixup:
    """Draws one (partner permutation, λ) per step; every modality of the batch is mixed with that draw."""

    alpha: float
    seed: int
    rank: int = 0

    def __post_init__(self):
        if self.alpha <= 0:
            raise ValueError(f"mixup alpha must be > 0 (Beta(α, α)), not {self.alpha}")

    def draw(self, batch: int, step: int) -> MixDraw:
        g = torch.Generator().manual_seed(((self.seed * 1_000_003 + self.rank) * 1_000_003 + step + 7) % 2 ** 63)
        partner = torch.randperm(batch, generator=g)
        # torch's Beta sampler takes no generator; numpy's, seeded from this step's stream, does
        lam = np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=g))).beta(self.alpha, self.alpha)
        return MixDraw(partner, float(lam))


def mixed_cross_entropy(logits: Tensor, labels: Tensor, draw: MixDraw) -> Tensor:
    """CE against the mixed labels: λ·CE(z, y) + (1 − λ)·CE(z, y[partner])."""
    partner_labels = labels[draw.partner.to(labels.device)]
    return draw.lam * F.cross_entropy(logits, labels) + (1.0 - draw.lam) * F.cross_entropy(logits, partner_labels)
