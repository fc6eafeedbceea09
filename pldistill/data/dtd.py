"""Describable Textures (DTD) in its original layout, ``images/<class>/<class>_NNNN.jpg``, with a seeded split.

DTD (Cimpoi et al., CVPR 2014) has 120 images per class and splits them
40/40/40 into train/val/test (its ``labels/train1.txt`` … files). A copy
without those files (like ``../shared/data/dtd10-images.tar.gz``, 10 of the
47 classes) gets a seeded split of the same sizes here: per class, the sorted
file names are permuted by a generator seeded with ``(seed, crc32(class))``
(so a class's split does not depend on which other classes are present) and
cut into 40 train, 40 val, 40 test; a class with fewer than 120 images is an
error, images beyond 120 are left out and listed as ``unused``.
``split_record()`` returns the whole split (every file of every part), which
the run writes to ``data_split.json``.

Splits: ``train``, ``val``, ``test`` or ``trainval`` (train + val: DTD's
usual training set when no model selection uses val).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field

from .image_classes import RGB_STATS, interleave, read_picture, scan_class_folders
from .protocol import Modality, only_modality, PairedDataset
from .registry import register_data_kind
from .section import RealFilesData, keyed

PARTS = ("train", "val", "test")
SIZES = (40, 40, 40)
PROTOCOL = "seeded 40/40/40 train/val/test per class (DTD's sizes; permutation seeded by (seed, crc32(class)))"


def dtd_split(by_class: dict[str, list[str]], seed: int, sizes: Sequence[int] = SIZES) -> dict[str, dict]:
    """part → class → sorted files, for parts train, val, test (and unused)."""
    import zlib

    need = sum(sizes)
    out: dict[str, dict] = {p: {} for p in (*PARTS, "unused")}
    for c, files in by_class.items():
        if len(files) < need:
            raise ValueError(f"DTD class {c!r} has {len(files)} images; the {'/'.join(map(str, sizes))} "
                             f"split needs {need}")
        order = np.random.default_rng([seed, zlib.crc32(c.encode())]).permutation(len(files))
        start = 0
        for part, n in zip(PARTS, sizes):
            out[part][c] = sorted(files[i] for i in order[start:start + n])
            start += n
        out["unused"][c] = sorted(files[i] for i in order[start:])
    return out


class DTDTextures(PairedDataset):
    """One part of a seeded DTD split; ``root`` holds ``images/``."""

    def __init__(self, root: str | Path, split: str = "trainval", seed: int = 0, modality: str = "rgb"):
        if split not in (*PARTS, "trainval"):
            raise ValueError(f"DTD split must be one of train, val, test, trainval; got {split!r}")
        self.root, self.split, self.seed, self.modality = Path(root), split, seed, modality
        by_class = scan_class_folders(self.root / "images")
        self.classes = sorted(by_class)
        self.parts = dtd_split(by_class, seed)
        wanted = ("train", "val") if split == "trainval" else (split,)
        chosen = {c: sorted(f for p in wanted for f in self.parts[p][c]) for c in self.classes}
        pairs = interleave(chosen, self.classes)
        self.files = [f for f, _ in pairs]
        self._labels = [self.classes.index(c) for _, c in pairs]
        self.modalities = {modality: Modality(modality, "image", 3, *RGB_STATS)}

    def __len__(self) -> int:
        return len(self.files)

    def label(self, index: int) -> int:
        return self._labels[index]

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        only_modality(names, self.modality)
        return {n: read_picture(self.root / self.files[index]) for n in names}

    def source(self, index: int, modality: str) -> str:
        return str(self.root / self.files[index])

    def source_files(self) -> list[Path]:
        return [self.root / f for f in self.files]

    def split_record(self) -> dict:
        return {"dtd": {"root": str(self.root), "seed": self.seed, "protocol": PROTOCOL,
                        **{p: self.parts[p] for p in (*PARTS, "unused")}}}


@register_data_kind
class DTDData(RealFilesData):
    """DTD, images/<class>/<class>_NNNN.jpg with a seeded 40/40/40 split per class."""

    class_pairable: ClassVar[bool] = True
    resolution_source: ClassVar[bool] = True

    kind: Literal["dtd"]
    modality: str = "rgb"
    split_seed: int = Field(0, description="seed of the 40/40/40 split; the split is written to data_split.json")
    train_on: Literal["train", "trainval"] = Field("trainval", description="DTD trains on train+val (80/class)")

    title: ClassVar[str] = "DTD"
    archive: ClassVar[str] = "dtd10-images.tar.gz"
    marker: ClassVar[str | None] = "images"

    def build(self):
        folder = self.folder()
        return tuple(keyed("root", lambda s=s: DTDTextures(folder, s, self.split_seed, self.modality))
                     for s in (self.train_on, "test"))

    def _layout(self):
        train = self.build()[0]
        return train.modalities, train.classes
