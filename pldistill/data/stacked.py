"""Stacked modalities: several modalities as one multi-channel input (``rgbd`` = rgb + depth).

The parts are read, augmented together (one geometry, photometric changes on
the image parts only) and encoded separately, each with its own mean, std and
depth encoding; only then are their channels concatenated. A stack holding a
privileged part is privileged itself.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .protocol import Modality, PairedDataset


class StackedModalities(PairedDataset):
    """A dataset plus named stacks of its modalities; reads only the parts a view asks for."""

    def __init__(self, source: PairedDataset, stacks: dict[str, list[str]], channels: dict[str, int]):
        self.base = source
        self.stacks = {name: list(parts) for name, parts in stacks.items()}
        self.classes = source.classes
        self.modalities = dict(source.modalities)
        for name in self.stacks:
            self.modalities[name] = Modality(name, "stack", channels[name], (), ())

    def __len__(self) -> int:
        return len(self.base)

    def inputs_of(self, names: Sequence[str]) -> list[str]:
        """The stored modalities behind ``names``: a stack's parts in place of the stack."""
        out: list[str] = []
        for name in names:
            out += self.stacks.get(name, [name])
        return list(dict.fromkeys(out))

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        return self.base.load(index, self.inputs_of(names))

    def label(self, index: int) -> int:
        return self.base.label(index)

    def finalize(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        finalize = getattr(self.base, "finalize", None)
        return finalize(arrays) if finalize is not None else arrays

    def split_record(self) -> dict:
        record = getattr(self.base, "split_record", None)
        return record() if record is not None else {}

    def source(self, index: int, modality: str) -> str:
        return self.base.source(index, modality)

    def source_files(self):
        return self.base.source_files()

    def __getitem__(self, index: int) -> dict:
        return self.base[index]
