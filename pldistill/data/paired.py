"""Two single-modality data sets paired by class, as AV-MNIST pairs MNIST digits with spoken digits.

``ClassPaired(primary, partner, seed, split)`` has one sample per sample of
``primary``; each is paired once, at construction, with a random sample of
the same class from ``partner`` (uniform among that class's partner samples,
with replacement, drawn by a generator seeded with ``(seed, crc32(split))``):
the same seed gives the same pairs, and the train split pairs within the
partner's train split, the test split within its test split. The pairs
share a class, never an instance: whatever the partner's modality teaches
the other about a sample, it can only be about its class.

Classes are matched by name (MNIST's and FSDD's are both ``0`` … ``9``); the
labels and the class order are the primary's, and every primary class must
exist in the partner. The two modality names must differ.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from .protocol import PairedDataset


class ClassPaired(PairedDataset):
    def __init__(self, primary: PairedDataset, partner: PairedDataset, seed: int = 0, split: str = "train"):
        clash = sorted(set(primary.modalities) & set(partner.modalities))
        if clash:
            raise ValueError(f"class pairing needs distinct modality names; both data sets have {clash}")
        missing = [c for c in primary.classes if c not in partner.classes]
        if missing:
            raise ValueError(f"classes {missing} of the primary data set have no samples to pair with in the "
                             f"partner (its classes: {partner.classes})")
        self.primary, self.partner, self.seed, self.split = primary, partner, seed, split
        self.classes = list(primary.classes)
        self.modalities = {**primary.modalities, **partner.modalities}
        partner_labels = np.array([partner.label(i) for i in range(len(partner))])
        pools = {c: np.flatnonzero(partner_labels == partner.classes.index(c)) for c in self.classes}
        empty = [c for c, pool in pools.items() if len(pool) == 0]
        if empty:
            raise ValueError(f"the partner's {split} split has no samples of classes {empty}")
        rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
        labels = np.array([primary.label(i) for i in range(len(primary))])
        self.partner_index = np.empty(len(primary), np.int64)
        for k, c in enumerate(self.classes):  # per class: the draws do not depend on sample order elsewhere
            members = np.flatnonzero(labels == k)
            self.partner_index[members] = pools[c][rng.integers(0, len(pools[c]), len(members))]

    def __len__(self) -> int:
        return len(self.primary)

    def label(self, index: int) -> int:
        return self.primary.label(index)

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        unknown = [n for n in names if n not in self.modalities]
        if unknown:
            raise KeyError(f"no modality {unknown} here (it has {sorted(self.modalities)})")
        out = {}
        mine = [n for n in names if n in self.primary.modalities]
        theirs = [n for n in names if n in self.partner.modalities]
        if mine:
            out.update(self.primary.load(index, mine))
        if theirs:
            out.update(self.partner.load(int(self.partner_index[index]), theirs))
        return {n: out[n] for n in names}

    def finalize(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for ds in (self.primary, self.partner):
            if hasattr(ds, "finalize"):
                arrays = ds.finalize(arrays)
        return arrays

    def split_record(self) -> dict:
        return {**self.primary.split_record(), **self.partner.split_record(),
                f"pairing/{self.split}": {"protocol": "each primary sample with a seeded random same-class "
                                          "partner sample (class, not instance)", "seed": self.seed,
                                          "partner_index": self.partner_index.tolist()}}
