"""Class-folder image sets: ``root/<split>/<class>/<file>`` (CIFAR-10 JPEG, MNIST PNG, ImageNet-style copies).

One image modality (named by the caller, ``rgb`` by default), read as RGB
uint8 H×W×3 or, with ``grayscale``, as H×W×1 (MNIST). Files with image
extensions are samples; hidden and other files are ignored.

Labels: ``labels="folders"`` takes the class folder; ``labels="csv"`` reads
``root/<split>.csv`` with a header holding ``filepath`` (relative to ``root``)
and ``label``, as the MNIST PNG copy ships them (``test/0/66062.png,0``); the
CSV then lists the samples. Classes are sorted (numerically when every name is
a number); the test split takes the train split's ``classes``.

``limit_per_class`` keeps a seeded random subset of each class (for CPU-sized
runs); the subset's files are returned by ``split_record()`` so a run can
record exactly what it trained on. Samples are ordered round-robin over the
classes (class 0's first file, class 1's first, …), so any prefix of a split
is class-balanced (the alignment probe reads the first test samples).
"""

from __future__ import annotations

import csv
import os
import zlib
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import numpy as np
from PIL import Image
from pydantic import Field

from .folders import IMAGE_EXTENSIONS
from .protocol import Modality, only_modality, PairedDataset
from .registry import register_data_kind
from .section import RealFilesData, keyed

RGB_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # ImageNet: what timm backbones expect
GRAY_STATS = ((0.449,), (0.226,))  # ImageNet's channel means, for one channel


def sort_classes(names) -> list[str]:
    names = set(names)
    if all(n.isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def interleave(by_class: dict[str, list], classes: Sequence[str]) -> list[tuple]:
    """(item, class) pairs, round-robin over classes: any prefix is as balanced as it can be."""
    out, depth = [], max((len(v) for v in by_class.values()), default=0)
    for j in range(depth):
        out.extend((by_class[c][j], c) for c in classes if j < len(by_class.get(c, ())))
    return out


def seeded_subset(items: Sequence, n: int, seed: int, *salt: str) -> list:
    """``n`` of ``items`` (all when fewer), chosen by ``seed`` and ``salt``, in their original order."""
    if n >= len(items):
        return list(items)
    rng = np.random.default_rng([seed, *(zlib.crc32(s.encode()) for s in salt)])
    return [items[i] for i in sorted(rng.choice(len(items), n, replace=False))]


def read_picture(path: Path, grayscale: bool = False) -> np.ndarray:
    """H×W×3 (or H×W×1 with ``grayscale``) uint8 from an 8-bit image file."""
    with Image.open(path) as image:
        if image.mode.startswith("I") or image.mode == "F":
            raise ValueError(f"{path} is a {image.mode} image (16/32-bit or float), not an 8-bit picture")
        return np.array(image.convert("L"))[..., None] if grayscale else np.array(image.convert("RGB"))


def scan_class_folders(base: Path) -> dict[str, list[str]]:
    """class → sorted file paths relative to ``base``'s parent, for ``base/<class>/...``."""
    if not base.is_dir():
        found = sorted(p.name for p in base.parent.iterdir() if p.is_dir()) if base.parent.is_dir() else []
        raise FileNotFoundError(f"{base}: no such split folder (found {found})")
    by_class: dict[str, list[str]] = {}
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        files = []
        for directory, subdirs, names in os.walk(entry.path):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            files += [Path(directory, n).relative_to(base.parent).as_posix() for n in names
                      if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTENSIONS]
        if files:
            by_class[entry.name] = sorted(files)
    if not by_class:
        raise ValueError(f"{base}: no class folders with images ({', '.join(IMAGE_EXTENSIONS)}) in it")
    return by_class


def read_split_csv(path: Path) -> dict[str, list[str]]:
    """class → files from a ``filepath,label`` CSV."""
    if not path.is_file():
        raise FileNotFoundError(f"labels: csv needs {path} with columns filepath,label")
    by_class: dict[str, list[str]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        if not {"filepath", "label"} <= set(columns):
            raise ValueError(f"{path} needs a header with columns filepath,label; found {columns}")
        reader.fieldnames = columns
        for row in reader:
            file, label = (row["filepath"] or "").strip(), (row["label"] or "").strip()
            if not file or not label:
                raise ValueError(f"{path}:{reader.line_num}: empty filepath or label in {row}")
            by_class.setdefault(label, []).append(file)
    return {c: sorted(files) for c, files in by_class.items()}


class ImageClasses(PairedDataset):
    """One split of a class-folder image set (layout: module docstring)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        modality: str = "rgb",
        grayscale: bool = False,
        labels: Literal["folders", "csv"] = "folders",
        classes: Sequence[str] | None = None,
        limit_per_class: int | None = None,
        seed: int = 0,
    ):
        self.root, self.split, self.grayscale = Path(root), split, grayscale
        if labels == "folders":
            by_class = scan_class_folders(self.root / split)
        elif labels == "csv":
            by_class = read_split_csv(self.root / f"{split}.csv")
            missing = [f for files in by_class.values() for f in files if not (self.root / f).is_file()]
            if missing:
                raise FileNotFoundError(f"{self.root / split}.csv lists {len(missing)} file(s) not under "
                                        f"{self.root}, e.g. {missing[0]}")
        else:
            raise ValueError(f"labels must be 'folders' or 'csv', got {labels!r}")
        self.classes = list(classes) if classes is not None else sort_classes(by_class)
        unknown = sorted(set(by_class) - set(self.classes))
        if unknown:
            hint = ("; a test split holds only the training split's classes: add training samples of them or "
                    "remove them from the test split") if classes is not None else ""
            raise ValueError(f"{self.root / split}: classes {unknown} are not among {self.classes}{hint}")
        self.limit_per_class, self.seed = limit_per_class, seed
        if limit_per_class is not None:
            by_class = {c: seeded_subset(f, limit_per_class, seed, split, c) for c, f in by_class.items()}
        pairs = interleave(by_class, self.classes)
        self.files = [f for f, _ in pairs]
        index = {c: i for i, c in enumerate(self.classes)}
        self._labels = np.array([index[c] for _, c in pairs], dtype=np.int64)
        stats = GRAY_STATS if grayscale else RGB_STATS
        self.modality = modality
        self.modalities = {modality: Modality(modality, "image", 1 if grayscale else 3, *stats)}

    def __len__(self) -> int:
        return len(self.files)

    def label(self, index: int) -> int:
        return int(self._labels[index])

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        only_modality(names, self.modality)
        return {n: read_picture(self.root / self.files[index], self.grayscale) for n in names}

    def source(self, index: int, modality: str) -> str:
        return str(self.root / self.files[index])

    def source_files(self) -> list[Path]:
        return [self.root / f for f in self.files]

    def split_record(self) -> dict:
        if self.limit_per_class is None:
            return {}
        return {f"{self.modality}/{self.split}": {
            "root": str(self.root), "split": self.split, "seed": self.seed,
            "limit_per_class": self.limit_per_class, "files": sorted(self.files)}}


@register_data_kind
class ImageClassesData(RealFilesData):
    """Class-folder images, root/<split>/<class>/<file> (CIFAR-10 JPEG, MNIST PNG)."""

    class_pairable: ClassVar[bool] = True
    resolution_source: ClassVar[bool] = True

    kind: Literal["image_classes"]
    modality: str = "rgb"
    grayscale: bool = Field(False, description="read as one channel (MNIST)")
    labels: Literal["folders", "csv"] = Field("folders", description="csv: root/<split>.csv, filepath,label")
    train_split: str = "train"
    test_split: str = "test"
    limit_per_class: int | None = Field(None, gt=0, description="seeded subset of the training split per class")
    test_limit_per_class: int | None = Field(None, gt=0, description="seeded subset of the test split per class")
    subset_seed: int = 0

    title: ClassVar[str] = "a class-folder image set"
    archive: ClassVar[str] = "cifar10-jpeg.tar.gz or mnist-png.tar.gz"

    def _marker(self) -> str | None:
        return self.train_split

    def _split(self, split: str, limit: int | None, classes=None):
        folder = self.folder()
        return keyed("root", lambda: ImageClasses(folder, split, self.modality, self.grayscale, self.labels,
                                                   classes, limit, self.subset_seed))

    def build(self):
        train = self._split(self.train_split, self.limit_per_class)
        return train, self._split(self.test_split, self.test_limit_per_class, train.classes)

    def _layout(self):
        train = self._split(self.train_split, self.limit_per_class)
        return train.modalities, train.classes
