"""Paired image folders: one folder per modality, the same relative paths in each.

Layout (``split`` is a subfolder; ``split=None`` means ``root`` holds the
modality folders directly)::

    root/train/rgb/cat/001.png       root/train/depth/cat/001.png   (or .npy)
    root/train/rgb/dog/002.jpg       root/train/depth/dog/002.png
    root/test/rgb/...                root/test/depth/...

A sample is a path relative to its modality folder, without extension
(``cat/001``); every modality folder must hold exactly the same samples (the
extensions may differ). Files with other extensions, and hidden files, are
ignored. Samples are indexed in sorted order.

Labels, ``labels=``:
- ``"folders"`` (default): the first folder of the sample's path, as in
  torchvision's ``ImageFolder`` (``cat/001`` and ``cat/seq1/001`` are ``cat``).
- ``"csv"``: ``labels.csv`` next to the modality folders (``root/<split>/``),
  with a header row and at least the columns ``sample,label``, one row per
  sample of that split (``cat/001,cat``); other columns are ignored.

Classes are the sorted labels found in the split unless ``classes`` is given.
Pass the train split's ``classes`` to the test split so that class indices
agree even if the test split lacks a class; a label outside ``classes`` is an
error.

Modalities are declared by the caller, ``{"rgb": "image", "depth": "depth"}``
(or a ``Modality`` to set normalisation statistics). Images (PNG, JPEG, BMP,
TIFF, WebP) are read as RGB uint8: grayscale is repeated, alpha dropped.
Depth (single-channel PNG/TIFF, 8 or 16 bit read without loss, or ``.npy``)
is multiplied by ``depth_scale`` into float32 metres: 0.001 for the usual
16-bit PNGs in millimetres.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import ClassVar, Literal, Mapping, Sequence

import numpy as np
from PIL import Image
from pydantic import ConfigDict, Field

from .protocol import Modality, PairedDataset
from .archives import data_folder
from .registry import register_data_kind
from .section import DataSection, keyed

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEPTH_EXTENSIONS = (".png", ".tif", ".tiff", ".npy")
_EXTENSIONS = {"image": IMAGE_EXTENSIONS, "depth": DEPTH_EXTENSIONS}
# Pillow modes that hold one channel of numbers (I;16 = 16-bit PNG, kept as uint16).
_SINGLE_CHANNEL = {"L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_MAX_LISTED = 5


def default_modality(name: str, kind: str) -> Modality:
    """ImageNet statistics for images; depth in metres left as is (pass a Modality to change)."""
    if kind == "image":
        return Modality(name, "image", 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    if kind == "depth":
        return Modality(name, "depth", 1, (0.0,), (1.0,))
    raise ValueError(f"modality {name!r}: kind must be 'image' or 'depth', got {kind!r}")


def _as_modality(name: str, spec: str | Modality) -> Modality:
    if isinstance(spec, str):
        return default_modality(name, spec)
    if spec.name != name or spec.kind not in _EXTENSIONS:
        raise ValueError(
            f"modality {name!r}: got {spec}, expected kind 'image' or 'depth' and name {name!r}"
        )
    if spec.channels != (3 if spec.kind == "image" else 1):
        raise ValueError(f"modality {name!r}: images are read as 3-channel RGB, depth as 1 channel")
    return spec


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def scan_modality(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    """Sample name (relative path without extension) → file, for one modality folder."""
    if not folder.is_dir():
        siblings = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"no folder for modality {folder.name!r}: expected {folder} (found {siblings})"
        )
    files: dict[str, Path] = {}
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in names:
            path = Path(directory, name)
            if name.startswith(".") or path.suffix.lower() not in extensions:
                continue
            sample = path.relative_to(folder).with_suffix("").as_posix()
            if sample in files:
                raise ValueError(f"two files for sample {sample!r}: {files[sample]} and {path}")
            files[sample] = path
    if not files:
        raise ValueError(f"{folder} holds no files with extensions {', '.join(extensions)}")
    return files


def matching_samples(files: Mapping[str, Mapping[str, Path]], base: Path) -> list[str]:
    """The sorted samples, once every modality folder is known to hold the same ones."""
    every = sorted(set().union(*files.values()))
    missing = []
    for modality, found in files.items():
        for sample in every:
            if sample not in found:
                present = next(f[sample] for f in files.values() if sample in f)
                missing.append(f"{base / modality / sample}.* (for {present})")
    if missing:
        raise ValueError(
            f"the modality folders under {base} hold different samples; "
            f"{len(missing)} file(s) missing: {_listing(missing)}"
        )
    return every


def folder_labels(samples: Sequence[str], base: Path) -> list[str]:
    """The first folder of each sample's path."""
    loose = [s for s in samples if "/" not in s]
    if loose:
        raise ValueError(
            f"samples {_listing(loose)} under {base} are in no class folder: put them in "
            "<modality>/<class>/ folders, or use labels='csv'"
        )
    return [s.split("/", 1)[0] for s in samples]


def read_label_csv(path: Path) -> dict[str, str]:
    """``sample → label`` from a CSV with a header row holding ``sample`` and ``label``."""
    if not path.is_file():
        raise FileNotFoundError(f"labels='csv' needs {path} with columns sample,label")
    with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets write a BOM
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        if not {"sample", "label"} <= set(columns):
            raise ValueError(f"{path} needs a header with columns sample,label; found {columns}")
        reader.fieldnames = columns
        labels: dict[str, str] = {}
        for row in reader:
            sample, label = (row["sample"] or "").strip(), (row["label"] or "").strip()
            if not sample or not label:
                raise ValueError(f"{path}:{reader.line_num}: empty sample or label in {row}")
            if sample in labels:
                raise ValueError(f"{path}:{reader.line_num}: sample {sample!r} is listed twice")
            labels[sample] = label
    return labels


def csv_labels(samples: Sequence[str], path: Path) -> list[str]:
    """Each sample's label from ``labels.csv``; the CSV and the folders must list the same samples."""
    labels = read_label_csv(path)
    unlisted = [s for s in samples if s not in labels]
    if unlisted:
        raise ValueError(f"{path} has no row for sample(s) {_listing(unlisted)}")
    stray = sorted(set(labels) - set(samples))
    if stray:
        raise ValueError(
            f"{path} lists sample(s) with no files: {_listing(stray)} "
            "(a sample is its path under the modality folder, without extension)"
        )
    return [labels[s] for s in samples]


def read_image(path: Path) -> np.ndarray:
    """H×W×3 uint8 RGB."""
    with Image.open(path) as image:
        if image.mode.startswith("I") or image.mode == "F":
            raise ValueError(
                f"{path} is a {image.mode} image (16/32-bit or float), not 8-bit colour: "
                "declare its modality as 'depth', or convert it"
            )
        return np.array(image.convert("RGB"))


def read_depth(path: Path, scale: float) -> np.ndarray:
    """H×W float32 metres: the stored values (16-bit PNGs kept exact) times ``scale``."""
    if path.suffix.lower() == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    else:
        with Image.open(path) as image:
            if image.mode not in _SINGLE_CHANNEL:
                raise ValueError(f"{path}: depth must be single-channel, got a {image.mode} image")
            values = np.array(image)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    real = np.issubdtype(values.dtype, np.number) and values.dtype.kind != "c"
    if values.ndim != 2 or not real:
        raise ValueError(
            f"{path}: depth must be an H×W array of numbers, got {values.dtype} {values.shape}"
        )
    if scale == 1.0:
        return values.astype(np.float32)
    return (values.astype(np.float64) * scale).astype(np.float32)  # one rounding, not two


class PairedFolders(PairedDataset):
    """Samples of one split read from per-modality folders (layout: module docstring)."""

    def __init__(
        self,
        root: str | Path,
        modalities: Mapping[str, str | Modality],
        split: str | None = None,
        labels: Literal["folders", "csv"] = "folders",
        classes: Sequence[str] | None = None,
        depth_scale: float = 1.0,
    ):
        self.root = Path(root)
        self.split = split
        self.base = self.root / split if split else self.root
        if not self.base.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {self.base}")
        if not modalities:
            raise ValueError("declare at least one modality, e.g. {'rgb': 'image', 'depth': 'depth'}")
        if not (np.isfinite(depth_scale) and depth_scale > 0):
            raise ValueError(f"depth_scale must be a positive number, got {depth_scale}")
        self.modalities = {name: _as_modality(name, spec) for name, spec in modalities.items()}
        self.depth_scale = float(depth_scale)
        self._files = {
            name: scan_modality(self.base / name, _EXTENSIONS[m.kind])
            for name, m in self.modalities.items()
        }
        self.samples = matching_samples(self._files, self.base)
        if labels == "folders":
            names = folder_labels(self.samples, self.base)
        elif labels == "csv":
            names = csv_labels(self.samples, self.base / "labels.csv")
        else:
            raise ValueError(f"labels must be 'folders' or 'csv', got {labels!r}")
        self.classes = list(classes) if classes is not None else sorted(set(names))
        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(set(names) - set(index))
        if unknown:
            source = self.base / "labels.csv" if labels == "csv" else self.base
            hint = ("; a test split holds only the training split's classes: add training samples of them or "
                    "remove them from the test split") if classes is not None else ""
            raise ValueError(f"{source}: labels {_listing(unknown)} are not among classes {self.classes}{hint}")
        self._labels = [index[name] for name in names]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        unknown = [n for n in names if n not in self.modalities]
        if unknown:
            raise KeyError(f"no modality {unknown} here (declared: {sorted(self.modalities)})")
        sample = self.samples[index]
        out = {}
        for name in names:
            path = self._files[name][sample]
            if self.modalities[name].kind == "image":
                out[name] = read_image(path)
            else:
                out[name] = read_depth(path, self.depth_scale)
        return out

    def label(self, index: int) -> int:
        return self._labels[index]

    def source(self, index: int, modality: str) -> str:
        return str(self._files[modality][self.samples[index]])

    def source_files(self) -> list[Path]:
        return [self._files[m][s] for s in self.samples for m in self.modalities]


@register_data_kind
class FoldersData(DataSection):
    """Paired image folders: root/<split>/<modality>/<class>/<sample>.<ext> (see pldistill/data/folders.py)."""

    resolution_source: ClassVar[bool] = True

    kind: Literal["folders"]
    root: str
    modalities_: dict[str, Literal["image", "depth"]] = Field(alias="modalities")
    labels: Literal["folders", "csv"] = "folders"
    depth_scale: float = Field(1.0, gt=0, description="depth file units → metres, e.g. 0.001 for millimetres")
    train_split: str = "train"
    test_split: str = "test"

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    def folder(self) -> Path:
        """``root``, or the archive it names unpacked once into the cache."""
        return keyed("root", lambda: data_folder(self.root, "the paired folders",
                                                 "a folder holding <split>/<modality>/<class>/ files"))

    def build(self):
        kw = dict(modalities=self.modalities_, labels=self.labels, depth_scale=self.depth_scale)
        train = PairedFolders(self.folder(), split=self.train_split, **kw)
        return train, PairedFolders(self.folder(), split=self.test_split, classes=train.classes, **kw)

    def _layout(self):
        train = PairedFolders(self.folder(), self.modalities_, split=self.train_split, labels=self.labels,
                              depth_scale=self.depth_scale)
        return {n: default_modality(n, k) for n, k in self.modalities_.items()}, train.classes
