"""Resolution pairs from any image dataset: the teacher sees full resolution, the student a cheap copy.

``ResolutionPairs`` wraps an adapter and adds ``<modality>_hires`` (the
original image: privileged) next to ``<modality>`` (a low-resolution copy:
what the student gets). The low-resolution copy is made *after* the joint
augmentation (``finalize``), from the very same augmented crop as the
high-resolution one, so the two always show the same content: downsampled by
``factor`` with area averaging, optionally blurred first (Gaussian, sigma in
high-resolution pixels) and noised after (std on the 0–255 scale).
"""

from __future__ import annotations

from typing import ClassVar, Literal, Sequence

import cv2
import numpy as np
from pydantic import Field, model_validator

from .protocol import Modality, PairedDataset
from .registry import register_data_kind
from .section import DataSection, keyed


class ResolutionPairs(PairedDataset):
    def __init__(self, source: PairedDataset, modality: str = "rgb", factor: int = 4,
                 blur: float = 0.0, noise: float = 0.0):
        if modality not in source.modalities or source.modalities[modality].kind != "image":
            raise ValueError(f"resolution pairs need an image modality; {modality!r} is not one of "
                             f"{[n for n, m in source.modalities.items() if m.kind == 'image']}")
        if factor < 2:
            raise ValueError(f"factor must be at least 2, got {factor}")
        self.base, self.modality, self.factor, self.blur, self.noise = source, modality, factor, blur, noise
        self.hires = f"{modality}_hires"
        base = source.modalities[modality]
        self.modalities = {**source.modalities, self.hires: Modality(self.hires, "image", base.channels,
                                                                      base.mean, base.std)}
        self.classes = source.classes
        self._rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.base)

    def label(self, index: int) -> int:
        return self.base.label(index)

    def split_record(self) -> dict:
        return self.base.split_record()

    def source(self, index: int, modality: str) -> str:
        return self.base.source(index, self.modality if modality == self.hires else modality)

    def source_files(self):
        return self.base.source_files()

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        wanted = [self.modality if n == self.hires else n for n in names]
        arrays = self.base.load(index, list(dict.fromkeys(wanted)))
        out = {n: arrays[n] for n in names if n != self.hires}
        if self.hires in names:
            out[self.hires] = arrays[self.modality]
        return out  # still full resolution: ``finalize`` degrades after the shared augmentation

    def degrade(self, image: np.ndarray) -> np.ndarray:
        """H×W×C uint8 → (H/factor)×(W/factor)×C uint8."""
        x = image
        if self.blur > 0:
            x = cv2.GaussianBlur(x, (0, 0), self.blur)
        h, w = x.shape[:2]
        x = cv2.resize(x, (max(1, w // self.factor), max(1, h // self.factor)), interpolation=cv2.INTER_AREA)
        if x.ndim == 2:
            x = x[:, :, None]
        if self.noise > 0:
            x = np.clip(x + self._rng.normal(0.0, self.noise, x.shape), 0, 255).astype(np.uint8)
        return x

    def finalize(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.modality in arrays:
            arrays = {**arrays, self.modality: self.degrade(arrays[self.modality])}
        return arrays


@register_data_kind
class ResolutionPairsData(DataSection):
    """Any image dataset as a resolution pair: ``<modality>_hires`` privileged, ``<modality>`` low-res."""

    kind: Literal["resolution_pairs"]
    # Which kinds can be the source: those flagged resolution_source (bound by the registry, see there).
    nested_kinds: ClassVar[dict[str, str]] = {"ResolutionSourceData": "resolution_source"}
    source: ResolutionSourceData
    modality: str = "rgb"
    factor: int = Field(4, ge=2, le=16, description="student resolution = image_size / factor")
    blur: float = Field(0.0, ge=0, description="Gaussian sigma (high-res pixels) before downsampling")
    noise: float = Field(0.0, ge=0, description="pixel noise std (0-255) after downsampling")

    @model_validator(mode="before")
    @classmethod
    def _hires_is_privileged(cls, raw):
        if isinstance(raw, dict) and "privileged" not in raw:
            raw = {**raw, "privileged": [f"{raw.get('modality', 'rgb')}_hires"]}
        return raw

    @property
    def needs_resize(self) -> bool:  # type: ignore[override]
        return self.source.needs_resize

    def _source(self):
        return self.source.model_copy(update={"image_size": self.image_size})

    def build(self):
        return tuple(ResolutionPairs(ds, self.modality, self.factor, self.blur, self.noise)
                     for ds in self._source().build())

    def _layout(self):
        modalities, classes = keyed("source", self._source().layout)
        if self.modality not in modalities:
            raise ValueError(f"data.modality: {self.modality!r} is not a modality of the source ({list(modalities)})")
        base = modalities[self.modality]
        hires = f"{self.modality}_hires"
        return {**modalities, hires: Modality(hires, "image", base.channels, base.mean, base.std)}, classes

    def input_size(self, modality: str) -> int:
        return self.image_size // self.factor if modality == self.modality else self.image_size
