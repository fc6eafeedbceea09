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
from typing import ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field

from .protocol import PairedDataset
from .registry import register_data_kind
from .section import DataSection, keyed


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

    def source(self, index: int, modality: str) -> str:
        if modality in self.primary.modalities:
            return self.primary.source(index, modality)
        return self.partner.source(int(self.partner_index[index]), modality)

    def source_files(self):
        files = [self.primary.source_files(), self.partner.source_files()]
        return None if None in files else files[0] + files[1]

    def split_record(self) -> dict:
        return {**self.primary.split_record(), **self.partner.split_record(),
                f"pairing/{self.split}": {"protocol": "each primary sample with a seeded random same-class "
                                          "partner sample (class, not instance)", "seed": self.seed,
                                          "partner_index": self.partner_index.tolist()}}


@register_data_kind
class ClassPairedData(DataSection):
    """Two one-modality sets paired by class, as AV-MNIST pairs digits with speech."""

    kind: Literal["class_paired"]
    # Which kinds can be a primary or partner: those flagged class_pairable (bound by the registry, see there).
    nested_kinds: ClassVar[dict[str, str]] = {"ClassPairableData": "class_pairable"}
    primary: ClassPairableData = Field(description="one sample per primary sample; its labels and classes")
    partner: ClassPairableData = Field(description="each primary sample gets a seeded same-class sample of this")
    pairing_seed: int = 0
    privileged: list[str] = Field(default_factory=list)

    def _parts(self):
        return [p.model_copy(update={"image_size": self.image_size}) for p in (self.primary, self.partner)]

    def build(self):
        (p_train, p_test), (q_train, q_test) = (p.build() for p in self._parts())
        return (ClassPaired(p_train, q_train, self.pairing_seed, "train"),
                ClassPaired(p_test, q_test, self.pairing_seed, "test"))

    def _layout(self):
        (mods_p, classes_p), (mods_q, classes_q) = (
            keyed(name, p.layout) for name, p in zip(("primary", "partner"), self._parts()))
        clash = sorted(set(mods_p) & set(mods_q))
        if clash:
            raise ValueError(f"partner.modality: {clash} is also the primary's modality; name them apart")
        missing = [c for c in classes_p if c not in classes_q]
        if missing:
            raise ValueError(f"partner: has no samples of the primary's classes {missing} (it has {classes_q})")
        return {**mods_p, **mods_q}, classes_p

    def input_size(self, modality: str) -> int:
        part = next((p for p in self._parts() if p.modality == modality), None)
        return part.input_size(modality) if part is not None else self.image_size
