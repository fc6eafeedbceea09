"""The dataset protocol: one sample, several named modalities, one label.

Adapters (one per data kind, in ``pldistill/data/``) implement
``PairedDataset``: raw NumPy arrays per modality, read lazily, so that a view
over a subset of modalities never touches the others. ``ModalityView`` is the
only thing the training loop sees: it picks the modalities a model is allowed
to see, applies one joint augmentation, and encodes arrays as tensors.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .depth_encoding import encode_depth
from .modality import Modality  # adapters import it from here too


# What readers raise on a bad file: Pillow (OSError, SyntaxError for some broken PNGs), NumPy, h5py, zlib, wave.
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, SyntaxError, zlib.error)


class PairedDataset(Dataset):
    """Base class of every adapter: ``load(i, names)`` returns raw arrays of those modalities."""

    modalities: dict[str, Modality]
    classes: list[str]

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Raw arrays for the requested modalities only."""
        raise NotImplementedError  # pragma: no cover - abstract

    def label(self, index: int) -> int:
        raise NotImplementedError  # pragma: no cover - abstract

    def inputs_of(self, names: Sequence[str]) -> list[str]:
        """The stored modalities a view of ``names`` reads (stacks expand to their parts)."""
        return list(names)

    def split_record(self) -> dict:
        """How pldistill chose this split's samples (seeded splits and subsets), for the run folder; {} if given."""
        return {}

    def source(self, index: int, modality: str) -> str:
        """Where sample ``index``'s ``modality`` is read from, for messages: its file, or file and position."""
        return f"sample {index}"

    def source_files(self) -> list[Path] | None:
        """Every file this split reads (the data check's cache key: their sizes and times); None if unknown."""
        return None

    def __getitem__(self, index: int) -> dict:
        sample = dict(self.load(index, list(self.modalities)))
        sample["label"] = self.label(index)
        return sample


class DerivedDataset(PairedDataset):
    """A dataset made from ``base`` (a subset, a re-pairing): the base's modalities, classes and other attributes.

    Subclasses override what they change (``load``, ``label``, ``__len__``, …); stacks,
    ``finalize`` and anything else not defined here are the base's own.
    """

    def __init__(self, base: PairedDataset):
        self.base = base
        self.modalities, self.classes = base.modalities, base.classes

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str):
        if name == "base":  # not set yet (e.g. while unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.base, name)

    def inputs_of(self, names: Sequence[str]) -> list[str]:
        return self.base.inputs_of(names)


def only_modality(names: Sequence[str], modality: str) -> None:
    """One-modality adapters: a request for anything else is a KeyError naming what there is."""
    unknown = [n for n in names if n != modality]
    if unknown:
        raise KeyError(f"no modality {unknown} here (it has {[modality]})")


def encode(array: np.ndarray, modality: Modality) -> torch.Tensor:
    """Raw array → normalised float32 C×H×W tensor (a vector: its C features, standardised by the adapter)."""
    if modality.kind == "vector":
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if modality.kind == "image":
        x = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255.0)
    else:
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    mean = torch.tensor(modality.mean).view(-1, 1, 1)
    std = torch.tensor(modality.std).view(-1, 1, 1)
    return (x - mean) / std


class ModalityView(Dataset):
    """A dataset restricted to some modalities, with a joint transform.

    The student's evaluation view names only the student's modality, so the
    privileged arrays are never read (a test proves it).
    """

    def __init__(
        self,
        dataset: PairedDataset,
        names: Sequence[str],
        transform: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
        depth_encoding: str = "metric",
        with_index: bool = False,
    ):
        missing = [n for n in names if n not in dataset.modalities]
        if missing:
            raise KeyError(
                f"modalities {missing} are not in this dataset (it has {sorted(dataset.modalities)})"
            )
        self.dataset = dataset
        self.names = list(names)
        self.transform = transform
        self.depth_encoding = depth_encoding
        self.with_index = with_index  # batches carry sample indices (what a teacher cache is read by)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        arrays = self._read(index)
        if self.transform is not None:
            arrays = self.transform(arrays)
        if hasattr(self.dataset, "finalize"):  # derived modalities, made from the augmented arrays
            arrays = self.dataset.finalize(arrays)
        modalities = self.dataset.modalities
        sample = {n: self._encode(arrays if modalities[n].kind == "stack" else arrays[n], modalities[n])
                  for n in self.names}
        sample["label"] = self.dataset.label(index)
        if self.with_index:
            sample["index"] = index
        return sample

    def _read(self, index: int) -> dict[str, np.ndarray]:
        """The raw arrays; a file that fails now (changed since the data check) is named; missing depth is 0."""
        try:
            arrays = dict(self.dataset.load(index, self.names))
        except READ_ERRORS as exc:
            files = ", ".join(dict.fromkeys(self.dataset.source(index, n) for n in self.dataset.inputs_of(self.names)))
            detail = " ".join(str(exc).split())[:160]
            raise DataError(f"{files}: cannot be read during training ({type(exc).__name__}: {detail}); "
                            "was it changed after the data check?") from exc
        for name, array in arrays.items():
            if self.dataset.modalities[name].kind == "depth" and not np.isfinite(array).all():
                arrays[name] = np.where(np.isfinite(array), array, 0).astype(np.float32)  # missing (NYU's 0)
        return arrays

    def _encode(self, array: np.ndarray | dict, modality: Modality) -> torch.Tensor:
        if modality.kind == "stack":  # each part encoded as itself, then the channels concatenated
            parts = self.dataset.stacks[modality.name]
            return torch.cat([self._encode(array[p], self.dataset.modalities[p]) for p in parts])
        if modality.kind == "depth" and self.depth_encoding != "metric":
            return encode_depth(array, modality, self.depth_encoding)
        return encode(array, modality)
