"""Replayable augmented views: K fixed views per training sample, each defined by a seed.

A teacher cache built under augmentation (``teacher_cache.py``) stores the
teacher's outputs for K views of every sample. The student must then see
*exactly* the view the stored outputs belong to. A view is therefore not a
stream of random draws but a seed, ``(cache seed, sample, view)``: the joint
transform is reseeded with it before the sample is transformed
(``JointTransform.reseed``), so the teacher's modality (when the cache is
built) and the student's modality (every later epoch) get the same geometry,
whichever modalities each view reads. The seed does not depend on the rank,
so a cache built by rank 0 serves every process.

A flat row ``i * K + v`` names sample ``i``'s view ``v``; it is what the cache is
indexed by and what batches carry as ``index``. ``ViewSampler`` walks the
samples in the usual order (one permutation per epoch) and picks one of the K
views of each, afresh every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sized

import numpy as np
from torch.utils.data import Sampler

from .protocol import ModalityView

CACHE_VIEWS = 4  # views per sample cached under augmentation when a recipe does not say (bench/teacher_cache.py:
# within noise of the live teacher on the flagship and CIFAR-10, and faster than it even for a single student)


def views_per_sample(requested: int | None, augmented: bool) -> int:
    """``distill.teacher_cache_views``, or its default: one view without augmentation, CACHE_VIEWS with it."""
    if requested is not None:
        return requested
    return CACHE_VIEWS if augmented else 1


@dataclass(frozen=True)
class ViewReplay:
    """K views per sample, all derived from ``seed``."""

    count: int
    seed: int

    def seed_of(self, row: int) -> tuple[int, int, int]:
        sample, view = divmod(row, self.count)
        return self.seed, sample, view


class ReplayedViews(ModalityView):
    """A ``ModalityView`` of N × K rows: row ``i·K + v`` is sample ``i`` through view ``v``'s transform."""

    def __init__(self, view: ModalityView, replay: ViewReplay):
        super().__init__(view.dataset, view.names, view.transform, view.depth_encoding, with_index=True)
        self.replay = replay

    def __len__(self) -> int:
        return len(self.dataset) * self.replay.count

    def __getitem__(self, row: int) -> dict:
        if self.transform is not None:
            self.transform.reseed(self.replay.seed_of(row))
        sample = super().__getitem__(row // self.replay.count)
        sample["index"] = row
        return sample


class ViewSampler(Sampler[int]):
    """Rows ``i·K + v``: the samples in ``base``'s order, each with a view drawn per (seed, epoch).

    ``base`` yields sample indices (a RandomSampler in one process, a
    DistributedSampler under torchrun); the draw of views depends only on the
    seed and the epoch, so every rank and a resumed run pick the same ones.
    """

    def __init__(self, base: Sampler[int] | Sized, num_samples: int, replay: ViewReplay):
        self.base, self.num_samples, self.replay = base, num_samples, replay
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __iter__(self) -> Iterator[int]:
        k = self.replay.count
        views = np.random.default_rng([self.replay.seed, self.epoch]).integers(k, size=self.num_samples)
        for i in self.base:
            yield int(i) * k + int(views[i])

