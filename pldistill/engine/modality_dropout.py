"""Modality dropout: a stacked teacher that also learns from each part alone.

A teacher on RGB + depth stacked learns whatever is easiest, often depth
alone, and then has little to pass on that an RGB student can compute
(Xue et al., *The Modality Focusing Hypothesis*, ICLR 2023). ModDrop
(Neverova, Wolf, Taylor & Nebout, *ModDrop: adaptive multi-modal gesture
recognition*, TPAMI 2016) zeroes whole modalities at random while the
multimodal network trains, so that its features must also work from every
part on its own. Here, per training sample and per part of the stack,

    x̃_m = δ_m · x_m,   δ_m ~ Bernoulli(1 − p),   and at least one δ_m = 1,

on the encoded (normalised) channels, so a dropped part reads as its mean;
a sample whose draw dropped every part keeps one part chosen uniformly.
ModDrop's own schedule (fusion layers trained first, p raised later) is not
reproduced: p is fixed for the whole teacher stage. Only the teacher's
training batches are touched; its test accuracy and every output a student
distils from see the whole stack.

The draw is seeded by (seed, rank, step), so a resumed stage drops what the
uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ModalityDropout:
    """Zero whole parts (channel ranges) of a stacked input per sample with probability ``p``."""

    parts: tuple[tuple[int, int], ...]  # (first channel, end channel) of each part, in stack order
    p: float
    seed: int
    rank: int = 0

    def __post_init__(self):
        if not 0 <= self.p < 1:
            raise ValueError(f"modality dropout p must be in [0, 1), not {self.p}")
        if len(self.parts) < 2:
            raise ValueError("modality dropout needs a stack of at least two parts")

    def keep(self, batch: int, step: int) -> Tensor:
        """(batch, parts) booleans: which parts each sample keeps; every row keeps at least one."""
        g = torch.Generator().manual_seed(((self.seed * 1_000_003 + self.rank) * 1_000_003 + step) % 2 ** 63)
        keep = torch.rand(batch, len(self.parts), generator=g) >= self.p
        rescue = torch.randint(len(self.parts), (batch,), generator=g)  # drawn always: the stream stays aligned
        none = ~keep.any(1)
        keep[none, rescue[none]] = True
        return keep

    def __call__(self, x: Tensor, step: int) -> Tensor:
        keep = self.keep(len(x), step).to(x.device)
        mask = torch.ones(len(x), x.shape[1], *([1] * (x.dim() - 2)), dtype=x.dtype, device=x.device)
        for j, (start, end) in enumerate(self.parts):
            mask[:, start:end] = keep[:, j].view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        return x * mask
