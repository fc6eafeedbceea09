"""SUN RGB-D frames in their original layout: RGB JPEG, 16-bit depth PNG, scene label per frame.

Layout (Song, Lichtenberg & Xiao, CVPR 2015): every frame is a folder, at any
depth under ``root`` (``SUNRGBD/kv1/NYUdata/NYU0001/``, …), holding

    image/<name>.jpg        the RGB image
    depth/<name>.png        raw depth, 16-bit (holes are 0)
    depth_bfx/<name>.png    the same depth with holes filled (the toolbox's refined depth)
    scene.txt               the scene label, e.g. ``office``
    intrinsics.txt, extrinsics/, fullres/, …   (not read here)

A frame is any folder with ``image/``, the chosen depth folder and
``scene.txt``.

Depth encoding. The PNGs do not hold millimetres directly: the toolbox's
``read3dPoints.m`` (and SUN3D's ``depthRead.m``) rotate the 16 bits right by
three, ``bitor(bitshift(d, -3), bitshift(d, 16 - 3))``, and divide by 1000
for metres — the stored value is millimetres rotated left by 3 bits. So
``decode_depth`` computes ``((d >> 3) | (d << 13)) & 0xFFFF`` / 1000. On the
two real frames of ``../shared/data/sunrgbd-toy.tar.gz`` every stored value
is a multiple of 8 (the rotation of a value below 8192), and the decoded
medians are 2.4 m and 2.0 m (an office), where the undecoded values / 1000
would be 19 m and 16 m. The toolbox clips at 8 m (``depthInpaint > 8``; some
copies use 10 m); ``max_depth`` does the same (None keeps everything).
Holes (0) stay 0.

Classes: ``"all"`` (every scene label found, sorted) or a list (others are
merged into ``other``, as for NYU). Split: ``test_list`` (a text file of
frame folders, one per line, relative to ``root``; a line may carry a prefix,
such as the absolute paths of the toolbox's split, as long as it ends with the
frame's relative path), or else a seeded split holding out ``test_fraction``
of the frames, recorded by ``split_record()``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import numpy as np
from PIL import Image
from pydantic import ConfigDict, Field

from .image_classes import RGB_STATS, read_picture
from .nyu import scene_class, scene_classes
from .protocol import Modality, PairedDataset
from .registry import register_data_kind
from .section import RealFilesData, keyed

DEPTH_FOLDERS = {"bfx": "depth_bfx", "raw": "depth"}
MODALITIES = {
    "rgb": Modality("rgb", "image", 3, *RGB_STATS),
    "depth": Modality("depth", "depth", 1, (2.8,), (1.4,)),  # rough indoor values, as for NYU
}


def decode_depth(stored: np.ndarray) -> np.ndarray:
    """SUN RGB-D's 16-bit depth PNG values → float32 metres (module docstring)."""
    if stored.dtype.kind not in "iu" or (stored.size and (stored.min() < 0 or stored.max() > 0xFFFF)):
        raise ValueError(f"SUN RGB-D depth must be a 16-bit PNG, got {stored.dtype} values")
    d = stored.astype(np.uint32)
    millimetres = ((d >> 3) | (d << 13)) & 0xFFFF
    return millimetres.astype(np.float32) / 1000.0


def _only_file(folder: Path, suffixes: tuple[str, ...]) -> Path:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))
    if len(files) != 1:
        raise ValueError(f"{folder}: expected one {'/'.join(suffixes)} file, found {[p.name for p in files]}")
    return files[0]


def find_frames(root: Path, depth_folder: str) -> list[str]:
    """Frame folders under ``root`` (relative posix paths, sorted)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such SUN RGB-D folder")
    frames = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if "image" in subdirs and depth_folder in subdirs and "scene.txt" in names:
            frames.append(Path(directory).relative_to(root).as_posix())
            subdirs[:] = []  # a frame's own folders hold no frames
    if not frames:
        raise ValueError(f"{root}: no SUN RGB-D frames (folders with image/, {depth_folder}/ and scene.txt)")
    return sorted(frames)


class SUNRGBDFrames(PairedDataset):
    """One split of SUN RGB-D frames: ``rgb`` (uint8) and ``depth`` (metres), scene class (module docstring)."""

    modalities = MODALITIES

    def __init__(self, root: str | Path, split: str = "train", depth: str = "bfx",
                 classes: str | Sequence[str] = "all", test_list: str | Path | None = None,
                 test_fraction: float = 0.5, seed: int = 0, max_depth: float | None = 8.0):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if depth not in DEPTH_FOLDERS:
            raise ValueError(f"depth must be one of {sorted(DEPTH_FOLDERS)}, got {depth!r}")
        self.root, self.split, self.depth_folder, self.max_depth = Path(root), split, DEPTH_FOLDERS[depth], max_depth
        frames = find_frames(self.root, self.depth_folder)
        scenes = {f: (self.root / f / "scene.txt").read_text().strip() for f in frames}
        self.classes = scene_classes(classes, list(scenes.values()))
        self.test_list, self.test_fraction, self.seed = test_list, test_fraction, seed
        if test_list is not None:
            listed = [ln.strip().rstrip("/") for ln in Path(test_list).read_text().splitlines() if ln.strip()]
            test = {f for f in frames if any(ln == f or ln.endswith("/" + f) for ln in listed)}
        else:
            rng = np.random.default_rng(seed)
            n_test = int(round(test_fraction * len(frames)))
            test = {frames[i] for i in rng.permutation(len(frames))[:n_test]}
        self.frames = [f for f in frames if (f in test) == (split == "test")]
        self._labels = [scene_class(scenes[f], self.classes) for f in self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def label(self, index: int) -> int:
        return self._labels[index]

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        unknown = [n for n in names if n not in self.modalities]
        if unknown:
            raise KeyError(f"no modality {unknown} here (it has {sorted(self.modalities)})")
        frame = self.root / self.frames[index]
        out = {}
        if "rgb" in names:
            out["rgb"] = read_picture(_only_file(frame / "image", (".jpg", ".jpeg", ".png")))
        if "depth" in names:
            with Image.open(_only_file(frame / self.depth_folder, (".png",))) as image:
                metres = decode_depth(np.array(image))
            out["depth"] = np.minimum(metres, self.max_depth) if self.max_depth else metres
        return {n: out[n] for n in names}

    def source(self, index: int, modality: str) -> str:
        frame = self.root / self.frames[index]
        folder = frame / ("image" if modality == "rgb" else self.depth_folder)
        try:
            return str(_only_file(folder, (".jpg", ".jpeg", ".png")))
        except (OSError, ValueError):
            return str(folder)

    def source_files(self) -> list[Path]:
        return [p for f in self.frames for d in ("image", self.depth_folder)
                for p in sorted((self.root / f / d).iterdir())]

    def split_record(self) -> dict:
        if self.test_list is not None:
            return {}
        return {f"sunrgbd/{self.split}": {"root": str(self.root), "protocol": "seeded hold-out",
                                          "seed": self.seed, "test_fraction": self.test_fraction,
                                          "frames": self.frames}}


@register_data_kind
class SUNRGBDData(RealFilesData):
    """SUN RGB-D frames in their original layout: image/*.jpg, 16-bit depth PNG, scene.txt."""

    resolution_source: ClassVar[bool] = True

    kind: Literal["sunrgbd"]
    depth: Literal["bfx", "raw"] = Field("bfx", description="bfx: depth_bfx/ (holes filled); raw: depth/")
    classes_protocol: Literal["all"] | list[str] = Field("all", alias="classes",
                                                         description="all, or a list (others → 'other')")
    test_list: str | None = Field(None, description="text file of test frame folders (relative to root)")
    test_fraction: float = Field(0.5, gt=0, lt=1, description="without test_list: seeded hold-out share")
    split_seed: int = 0
    max_depth: float | None = Field(8.0, gt=0, description="metres; the toolbox clips at 8 m")
    image_size: int = Field(64, ge=16, le=512)
    privileged: list[str] = Field(default_factory=lambda: ["depth"])

    title: ClassVar[str] = "SUN RGB-D"
    archive: ClassVar[str] = "sunrgbd-toy.tar.gz"
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    def build(self):
        folder = self.folder()
        return tuple(keyed("root", lambda s=s: SUNRGBDFrames(
            folder, s, self.depth, self.classes_protocol, self.test_list, self.test_fraction, self.split_seed,
            self.max_depth)) for s in ("train", "test"))

    def _layout(self):
        train, test = self.build()
        return MODALITIES, train.classes
