"""NYU Depth v2, labeled set: paired ``rgb``/``depth`` scene classification.

Data. ``nyu_depth_v2_labeled.mat`` (1449 aligned Kinect RGB-D frames, about
2.8 GB) from the official page (``NYU_PAGE``); pldistill never downloads it.
The file is MATLAB v7.3, i.e. HDF5 behind a 512-byte MATLAB header, read with
h5py. MATLAB stores arrays column-major, so h5py sees every axis reversed:
``images`` (N, 3, W, H) uint8, ``depths`` (N, W, H) float32 metres, ``labels``
(N, W, H) per-pixel object ids (0 = unlabeled, else 1-based into ``names``);
``sceneTypes``, ``scenes`` and ``names`` are cell arrays of strings (object
references to uint16 character codes in ``#refs#``). Samples are transposed
back to H×W(×C) on read.

Label protocol. The 1449 frames carry 27 scene types (``bedroom``,
``living_room``, ..., MATLAB-style names with underscores), most of them with
a handful of frames. Scene classification on this set conventionally keeps
the 9 most frequent types and merges the rest into one class, giving 10
classes (``classes="gupta10"``, ``GUPTA10``): the protocol introduced with
Gupta, Arbelaez & Malik, "Perceptual organization and recognition of indoor
scenes from RGB-D images", CVPR 2013, on the data and standard 795/654 split
of Silberman et al., "Indoor segmentation and support inference from RGBD
images", ECCV 2012, and reused by later RGB-D scene-recognition papers. We
are confident of the 9 kept types (they match the file's most frequent
ones); the attribution and the name of the merged class ("others" in some
code bases, ``other`` here) are from memory, so check them against the paper
you compare with. ``classes="all"`` keeps every scene type in the file
(sorted); a list of scene types keeps those and merges the rest into ``other``.

Splits are never guessed: pass ``split_file``, one of
- the standard ``splits.mat`` (MATLAB v5, read with scipy) or an HDF5/v7.3
  version of it, holding ``trainNdxs`` and ``testNdxs``; ``split`` picks one;
- a text file with one 1-based frame index per line (blank lines and ``#``
  comments ignored) listing the frames of this split; ``split`` is then only
  a name.

Indices in split files are 1-based, as MATLAB writes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import h5py
import numpy as np
from pydantic import ConfigDict, Field, model_validator

from .protocol import Modality, PairedDataset
from .registry import register_data_kind
from .section import DataSection

NYU_PAGE = "https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html"

GUPTA10 = (
    "bedroom",
    "kitchen",
    "living_room",
    "bathroom",
    "dining_room",
    "office",
    "home_office",
    "classroom",
    "bookstore",
    "other",
)
OTHER = "other"

# ImageNet statistics for RGB (timm backbones expect them); depth statistics
# are rough values for indoor Kinect depth (about 0.7–10 m), not measured here.
MODALITIES = {
    "rgb": Modality("rgb", "image", 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "depth": Modality("depth", "depth", 1, (2.8,), (1.4,)),
}
# Which HDF5 dataset holds each modality.
_SOURCE = {"rgb": "images", "depth": "depths"}
_REQUIRED = ("images", "depths", "labels", "sceneTypes")


def read_matlab_string(f: h5py.File, ref: h5py.Reference) -> str:
    """One MATLAB char array (uint16 codes, any shape) pointed to by ``ref``."""
    node = f[ref]
    if node.attrs.get("MATLAB_empty", 0):  # '' is stored as a placeholder, not as codes
        return ""
    return "".join(map(chr, np.asarray(node[()]).ravel(order="F")))


def read_cell_strings(f: h5py.File, name: str) -> list[str]:
    """A MATLAB cell array of strings (a dataset of object references), flattened."""
    return [read_matlab_string(f, ref) for ref in np.asarray(f[name][()]).ravel()]


def scene_classes(protocol: str | Sequence[str], scene_types: Sequence[str]) -> list[str]:
    """The class list for a label protocol; ``scene_types`` are all types in the file."""
    if protocol == "gupta10":
        return list(GUPTA10)
    if protocol == "all":
        return sorted(set(scene_types))
    if isinstance(protocol, str):
        raise ValueError(f"unknown NYU class protocol {protocol!r}: use 'gupta10', 'all' or a list")
    kept = list(dict.fromkeys(protocol))
    return kept if OTHER in kept else kept + [OTHER]


def scene_class(scene_type: str, classes: Sequence[str]) -> int:
    """Index of a raw scene type under a class list; types not listed go to ``other``."""
    if scene_type in classes:
        return classes.index(scene_type)
    if OTHER in classes:
        return classes.index(OTHER)
    raise ValueError(f"scene type {scene_type!r} is not one of the classes {list(classes)}")


def _read_text_indices(path: Path) -> np.ndarray:
    values = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            values.append(int(line))
        except ValueError:
            raise ValueError(
                f"{path}:{number}: expected one 1-based index per line, got {line!r}"
            ) from None
    return np.asarray(values, dtype=np.int64)


def _read_mat_splits(path: Path) -> dict[str, np.ndarray]:
    """``trainNdxs``/``testNdxs`` from a v7.3 (HDF5) or v5 ``splits.mat``."""
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            return {k: np.asarray(f[k][()]).ravel() for k in ("trainNdxs", "testNdxs") if k in f}
    from scipy.io import loadmat  # v5 MAT files only; scipy comes with albumentations

    mat = loadmat(path)
    return {k: np.asarray(mat[k]).ravel() for k in ("trainNdxs", "testNdxs") if k in mat}


def _is_mat(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(8)
    return head.startswith(b"MATLAB") or h5py.is_hdf5(path)


def _as_zero_based(raw: np.ndarray, num_samples: int, where: str) -> np.ndarray:
    """Checked 1-based indices (MATLAB stores them as doubles) → 0-based int64."""
    raw = np.asarray(raw)
    if raw.size == 0:
        raise ValueError(f"{where} lists no frames")
    if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
        bad = raw[raw != np.round(raw)][:5].tolist()
        raise ValueError(f"{where} holds non-integer indices: {bad}")
    indices = raw.astype(np.int64)
    bad = indices[(indices < 1) | (indices > num_samples)]
    if bad.size:
        raise ValueError(
            f"{where} holds indices outside 1..{num_samples} (they are 1-based frame numbers "
            f"of the labeled file): {bad[:5].tolist()}"
        )
    unique, counts = np.unique(indices, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{where} lists frames more than once: {unique[counts > 1][:5].tolist()}")
    return indices - 1


def read_split(split_file: str | Path | None, split: str, num_samples: int) -> np.ndarray:
    """0-based frame indices of ``split`` from a split file (formats: module docstring)."""
    if split_file is None:
        raise ValueError(
            "NYUDepthV2 needs split_file: the standard splits.mat (trainNdxs/testNdxs, from the "
            f"NYU Depth v2 page {NYU_PAGE}), or a text file with one 1-based frame index per line"
        )
    path = Path(split_file)
    if not path.is_file():
        raise FileNotFoundError(f"NYU split file not found: {path}")
    if not _is_mat(path):
        return _as_zero_based(_read_text_indices(path), num_samples, f"split file {path}")
    splits = _read_mat_splits(path)
    key = {"train": "trainNdxs", "test": "testNdxs"}.get(split)
    if key is None:
        raise ValueError(f"split {split!r}: a .mat split file holds only 'train' and 'test'")
    if key not in splits:
        raise ValueError(f"split file {path} has no {key!r} (it has {sorted(splits)})")
    indices = {k: _as_zero_based(v, num_samples, f"{k} in {path}") for k, v in splits.items()}
    if len(indices) == 2:
        shared = np.intersect1d(indices["trainNdxs"], indices["testNdxs"]) + 1
        if shared.size:
            raise ValueError(f"{path}: train and test share frames {shared[:5].tolist()}")
    return indices[key]


class NYUDepthV2(PairedDataset):
    """The labeled set's frames of one split: ``rgb`` uint8, ``depth`` metres, scene class.

    The file is opened on first read in each process (DataLoader workers get
    their own handle) and only the requested frame and modality are read.
    """

    modalities = MODALITIES

    def __init__(
        self,
        path: str | Path,
        split: str,
        split_file: str | Path | None = None,
        classes: str | Sequence[str] = "gupta10",
    ):
        self.path = Path(path)
        self.split = split
        self._file: h5py.File | None = None
        self._pid: int | None = None
        if not self.path.is_file():
            raise FileNotFoundError(
                f"NYU Depth v2 labeled file not found at {self.path}. Download "
                f"nyu_depth_v2_labeled.mat (about 2.8 GB) from the official page {NYU_PAGE} and "
                "pass its path; pldistill never downloads data."
            )
        if not h5py.is_hdf5(self.path):
            raise ValueError(
                f"{self.path} is not an HDF5 (MATLAB v7.3) file; expected nyu_depth_v2_labeled.mat"
            )
        # Metadata and scene names only: a few kB, read once here so labels need no file.
        with h5py.File(self.path, "r") as f:
            self.num_frames = self._check_layout(f)
            self._scene_types = read_cell_strings(f, "sceneTypes")
        if len(self._scene_types) != self.num_frames:
            raise ValueError(
                f"{self.path}: 'sceneTypes' has {len(self._scene_types)} entries for "
                f"{self.num_frames} frames"
            )
        self._indices = read_split(split_file, split, self.num_frames)
        self.classes = scene_classes(classes, self._scene_types)
        self._labels = [scene_class(self._scene_types[i], self.classes) for i in self._indices]

    def _check_layout(self, f: h5py.File) -> int:
        missing = [name for name in _REQUIRED if name not in f]
        if missing:
            raise ValueError(
                f"{self.path} lacks dataset(s) {missing} (it has {sorted(f)}); "
                "is it nyu_depth_v2_labeled.mat?"
            )
        images, depths, labels = (f[k].shape for k in ("images", "depths", "labels"))
        if len(images) != 4 or images[1] != 3 or not depths == labels == (images[0], *images[2:]):
            raise ValueError(
                f"{self.path}: expected 'images' (N, 3, W, H), 'depths' and 'labels' (N, W, H) as "
                f"h5py reads MATLAB's arrays, got {images}, {depths} and {labels}"
            )
        if h5py.check_ref_dtype(f["sceneTypes"].dtype) is None:
            raise ValueError(f"{self.path}: 'sceneTypes' is not a MATLAB cell array of strings")
        return images[0]

    def __getstate__(self) -> dict:
        # h5py handles cannot cross processes; each process reopens its own.
        return {**self.__dict__, "_file": None, "_pid": None}

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            # A handle inherited through fork is not safe to use: open a fresh one.
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def _dataset(self, name: str) -> h5py.Dataset:
        f = self._h5()
        if name not in f:
            raise ValueError(f"{self.path} lacks dataset {name!r} (it has {sorted(f)})")
        return f[name]

    def _frame(self, name: str, index: int) -> np.ndarray:
        """Frame ``index`` of this split from dataset ``name``, as h5py sees it."""
        return self._dataset(name)[self._indices[index]]

    def __len__(self) -> int:
        return len(self._indices)

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        unknown = [n for n in names if n not in _SOURCE]
        if unknown:
            raise KeyError(f"NYUDepthV2 has no modality {unknown} (it has {sorted(_SOURCE)})")
        out = {}
        for name in names:
            frame = self._frame(_SOURCE[name], index)
            if name == "rgb":  # (3, W, H) → (H, W, 3)
                out[name] = np.ascontiguousarray(frame.transpose(2, 1, 0))
            else:  # (W, H) → (H, W)
                out[name] = np.ascontiguousarray(frame.T, dtype=np.float32)
        return out

    def label(self, index: int) -> int:
        return self._labels[index]

    def source(self, index: int, modality: str) -> str:
        return f"{self.path}: {_SOURCE.get(modality, modality)}, frame {self.frame_number(index)}"

    def source_files(self) -> list[Path]:
        return [self.path]

    def scene_type(self, index: int) -> str:
        """The raw scene type of a frame (one of the 27, before merging)."""
        return self._scene_types[self._indices[index]]

    def frame_number(self, index: int) -> int:
        """The 1-based frame number in the labeled file, as split files name it."""
        return int(self._indices[index]) + 1

    def scene(self, index: int) -> str:
        """The scene instance the frame was taken in, e.g. ``bedroom_0001``."""
        ref = np.asarray(self._dataset("scenes")[()]).ravel()[self._indices[index]]
        return read_matlab_string(self._h5(), ref)

    def pixel_labels(self, index: int) -> np.ndarray:
        """H×W int64 object ids (0 = unlabeled, i ≥ 1 → ``object_names()[i - 1]``)."""
        return np.ascontiguousarray(self._frame("labels", index).T, dtype=np.int64)

    def object_names(self) -> list[str]:
        """The 894 object class names that ``pixel_labels`` ids point into (1-based)."""
        self._dataset("names")  # a clear error if absent
        return read_cell_strings(self._h5(), "names")


@register_data_kind
class NYUData(DataSection):
    """NYU Depth v2 labeled set (``nyu_depth_v2_labeled.mat``), scene classification."""

    resolution_source: ClassVar[bool] = True

    kind: Literal["nyu_depth_v2"]
    path: str = Field(description="local nyu_depth_v2_labeled.mat; never downloaded")
    split_file: str | None = Field(None, description="splits.mat with trainNdxs/testNdxs")
    train_split: str | None = Field(None, description="text file of 1-based train frame indices")
    test_split: str | None = Field(None, description="text file of 1-based test frame indices")
    classes_protocol: Literal["gupta10", "all"] | list[str] = Field(
        "gupta10", alias="classes", description="gupta10: 9 frequent scene types + other"
    )
    image_size: int = Field(64, ge=16, le=512)

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_split_source(self) -> "NYUData":
        texts = (self.train_split, self.test_split)
        if not ((self.split_file and not any(texts)) or (not self.split_file and all(texts))):
            raise ValueError("give either split_file (splits.mat) or both train_split and test_split (text files)")
        return self

    def _split(self, name: str):
        return (self.split_file, name) if self.split_file else (getattr(self, f"{name}_split"), name)

    def build(self):
        return tuple(NYUDepthV2(self.path, split, split_file, self.classes_protocol)
                     for split_file, split in (self._split("train"), self._split("test")))

    def _layout(self):
        split_file, split = self._split("train")  # reads the header and scene names: checks file and split
        return MODALITIES, NYUDepthV2(self.path, split, split_file, self.classes_protocol).classes
