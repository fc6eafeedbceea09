"""A seeded, class-stratified hold-out of a training split: validation data that is not the test set.

Anything that *chooses* a setting (``pldistill calibrate``) must judge it on
data that the final result is not measured on; this carves that data out of
the training split, the same way for the same seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .protocol import DerivedDataset, PairedDataset


class IndexSubset(DerivedDataset):
    """The samples ``indices`` of ``base``, renumbered 0…n−1; everything else is the base's."""

    def __init__(self, base: PairedDataset, indices: Sequence[int], role: str):
        super().__init__(base)
        self.indices, self.role = np.asarray(indices, dtype=np.int64), role

    def __len__(self) -> int:
        return len(self.indices)

    def label(self, index: int) -> int:
        return self.base.label(int(self.indices[index]))

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        return self.base.load(int(self.indices[index]), names)

    def source(self, index: int, modality: str) -> str:
        return self.base.source(int(self.indices[index]), modality)

    def split_record(self) -> dict:
        return {**self.base.split_record(), self.role: {"indices_into_train": self.indices.tolist()}}


def holdout_split(train: PairedDataset, fraction: float, seed: int,
                  roles: tuple[str, str] = ("calibration_fit", "calibration_holdout")) -> tuple[IndexSubset, IndexSubset]:
    """(fit part, held-out part): ``fraction`` of each class held out, at least one sample of each class kept.

    ``roles`` name the two parts in the run folder's split record (data_split.json).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction must be between 0 and 1, got {fraction}")
    labels = np.array([train.label(i) for i in range(len(train))])
    rng = np.random.default_rng([seed, 0x401D])
    held: list[int] = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        held.extend(members[: min(len(members) - 1, round(fraction * len(members)))].tolist())
    held_set = set(held)
    kept = [i for i in range(len(train)) if i not in held_set]
    if not held:
        raise ValueError(f"a hold-out of {fraction:.0%} of {len(train)} training samples is empty; raise it")
    return IndexSubset(train, kept, roles[0]), IndexSubset(train, sorted(held), roles[1])


def noise_points(accuracy: float, n: int) -> float:
    """The standard error of a difference of two hold-out accuracies near ``accuracy`` on ``n`` samples."""
    return (2 * accuracy * (1 - accuracy) / max(n, 1)) ** 0.5
