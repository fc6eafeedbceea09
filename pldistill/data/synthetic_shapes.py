"""The embedded default data: paired RGB-D renders of 3D primitives.

``synthetic_shapes`` needs no download. A split is rendered once from its seed
(a few seconds), written to an uncompressed HDF5 cache keyed by every knob
that changes the pixels, and read back on later runs. Same knobs, same seed →
the same bytes. See ``datasets/synthetic_shapes.md`` for the data card.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import ClassVar, Literal, Sequence

import h5py
import numpy as np
from pydantic import Field

from .cache import default_cache_dir  # run.py and cli.py import it from here too
from .protocol import Modality, PairedDataset
from .registry import register_data_kind
from .render import FAR, SHAPES, draw_scenes, render
from .section import DataSection

GENERATOR_VERSION = 1  # bump when the renderer's output changes
_CHUNK = 500  # scenes rendered per call: bounds memory at ~100 MB

MODALITIES = {
    "rgb": Modality("rgb", "image", 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    "depth": Modality("depth", "depth", 1, (FAR / 2,), (FAR / 4,)),
}


def _split_seed(seed: int, split: str) -> int:
    # Train and test draw from disjoint streams of the same seed.
    return int.from_bytes(hashlib.sha256(f"{seed}/{split}".encode()).digest()[:8], "little")


def render_split(
    num_samples: int,
    image_size: int,
    seed: int,
    split: str,
    noise: float,
    camouflage: float,
    ambient: float,
    contrast: float = 0.3,
) -> dict:
    """Render a class-balanced split in memory: rgb, depth, labels."""
    rng = np.random.default_rng(_split_seed(seed, split))
    labels = np.arange(num_samples) % len(SHAPES)
    rng.shuffle(labels)
    rgb = np.empty((num_samples, image_size, image_size, 3), np.uint8)
    depth = np.empty((num_samples, image_size, image_size), np.float32)
    for start in range(0, num_samples, _CHUNK):
        stop = min(start + _CHUNK, num_samples)
        params = draw_scenes(rng, labels[start:stop], camouflage, contrast)
        rgb[start:stop], depth[start:stop] = render(params, image_size, noise=noise, ambient=ambient, rng=rng)
    return {"rgb": rgb, "depth": depth, "label": labels.astype(np.int64)}


def cached_split(
    num_samples: int,
    image_size: int,
    seed: int,
    split: str,
    noise: float = 0.04,
    camouflage: float = 0.5,
    ambient: float = 0.4,
    contrast: float = 0.3,
    cache_dir: Path | None = None,
) -> Path:
    """Path of the HDF5 file for this split, rendering and writing it if missing."""
    knobs = dict(
        version=GENERATOR_VERSION,
        n=num_samples,
        size=image_size,
        seed=seed,
        split=split,
        noise=noise,
        camouflage=camouflage,
        ambient=ambient,
        contrast=contrast,
    )
    key = hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / "synthetic_shapes" / f"{split}-{key}.h5"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"rendering synthetic_shapes {split} split: {num_samples} samples at {image_size}px (cached in {path})")
    data = render_split(num_samples, image_size, seed, split, noise, camouflage, ambient, contrast)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    # Uncompressed: random reads from compressed chunks are ~30x slower here.
    with h5py.File(tmp, "w") as f:
        for name, array in data.items():
            f.create_dataset(name, data=array)
        f.attrs["classes"] = json.dumps(list(SHAPES))
        f.attrs["knobs"] = json.dumps(knobs)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache
    return path


class SyntheticShapes(PairedDataset):
    """Paired ``rgb`` (uint8) / ``depth`` (metres) renders; class = the object's shape."""

    modalities = MODALITIES
    classes = list(SHAPES)

    def __init__(
        self,
        split: str,
        num_samples: int,
        image_size: int = 48,
        seed: int = 0,
        noise: float = 0.04,
        camouflage: float = 0.5,
        ambient: float = 0.4,
        contrast: float = 0.3,
        cache_dir: Path | None = None,
    ):
        self.path = cached_split(
            num_samples, image_size, seed, split, noise, camouflage, ambient, contrast, cache_dir
        )
        # The default splits are tens of MB: hold them in memory, read once.
        with h5py.File(self.path, "r") as f:
            self._arrays = {name: f[name][()] for name in ("rgb", "depth", "label")}

    def __len__(self) -> int:
        return len(self._arrays["label"])

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {n: self._arrays[n][index] for n in names}

    def label(self, index: int) -> int:
        return int(self._arrays["label"][index])

    def source(self, index: int, modality: str) -> str:
        return f"{self.path}: {modality}[{index}]"

    def source_files(self) -> list[Path]:
        return [self.path]


@register_data_kind
class SyntheticShapesData(DataSection):
    """The embedded paired RGB-D set (see datasets/synthetic_shapes.md)."""

    resolution_source: ClassVar[bool] = True

    kind: Literal["synthetic_shapes"] = "synthetic_shapes"
    num_train: int = Field(4000, gt=0)
    num_test: int = Field(1000, gt=0)
    noise: float = Field(0.04, ge=0, description="std of RGB pixel noise (0-1 scale)")
    camouflage: float = Field(0.5, ge=0, le=1, description="P(object wears the wall's colours)")
    ambient: float = Field(0.4, ge=0, le=1, description="unshaded share of light in RGB")
    contrast: float = Field(0.3, ge=0, le=1, description="stripe contrast of the textures")
    seed: int = 0
    cache_dir: str | None = None

    needs_resize: ClassVar[bool] = False

    def _layout(self):
        return MODALITIES, SyntheticShapes.classes

    def build(self):
        common = dict(image_size=self.image_size, seed=self.seed, noise=self.noise, camouflage=self.camouflage,
                      ambient=self.ambient, contrast=self.contrast,
                      cache_dir=Path(self.cache_dir) if self.cache_dir else None)
        return SyntheticShapes("train", self.num_train, **common), SyntheticShapes("test", self.num_test, **common)
