"""Joint augmentation with albumentations: one geometry, per-modality photometrics.

Every modality of a sample goes through the *same* random geometric transform
(one ``A.Compose`` call). Image modalities are image targets and also get
photometric changes; depth modalities are mask targets, so they get the same
geometry (nearest-neighbour, no mixing of depths across edges) and no colour
jitter. Modalities of one sample at different sizes (Kinect v2 colour is
1920 × 1080, its depth 512 × 424) are each resized to the input size first —
images bilinear, depth nearest — so that the shared geometry applies to all.
Spectrogram and vector modalities bypass the transform entirely (a feature
vector has no geometry to share); for spectrograms, a flip would
reverse time and a rotation mix time with frequency, and they come at their
input size already (a spectrogram is never pixel-aligned with an image of
another modality: such pairs share a class, not a geometry).
"""

from __future__ import annotations

import os
import random
from typing import Mapping, Sequence

import cv2
import numpy as np

from ..errors import DataError
from .protocol import Modality


def _albumentations():
    """albumentations, imported when a transform is first built: loading a recipe does not pay for it."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations


def _geometric(hflip: bool, shift: float, scale: float, rotate: float) -> list:
    A = _albumentations()
    ops: list = []
    if hflip:
        ops.append(A.HorizontalFlip(p=0.5))
    if shift or scale or rotate:
        ops.append(
            A.Affine(
                translate_percent=(-shift, shift),
                scale=(1 - scale, 1 + scale),
                rotate=(-rotate, rotate),
                border_mode=cv2.BORDER_REFLECT_101,
                p=1.0,
            )
        )
    return ops


class JointTransform:
    """Callable on ``{modality: raw array}`` that augments all modalities together."""

    def __init__(
        self,
        modalities: Mapping[str, Modality],
        hflip: bool = True,
        shift: float = 0.0,
        scale: float = 0.0,
        rotate: float = 0.0,
        color_jitter: float = 0.0,
        seed: int | None = None,
        size: int | None = None,
    ):
        self.modalities = dict(modalities)
        self.untouched = [n for n, m in self.modalities.items() if m.kind in ("spectrogram", "vector")]
        spatial = {n: m for n, m in self.modalities.items() if n not in self.untouched}
        images = [n for n, m in spatial.items() if m.kind == "image"]
        # albumentations needs an ``image`` argument; when a view holds only depth,
        # a 1×1-channel placeholder carries the geometry and is dropped afterwards.
        self.primary = images[0] if images else None
        targets = {n: ("image" if m.kind == "image" else "mask") for n, m in spatial.items()}
        if self.primary is not None:
            del targets[self.primary]
        # Real files come in their own sizes: one resize to size × size first (depth: nearest, as a mask).
        A = _albumentations()
        ops = ([A.Resize(size, size)] if size else []) + _geometric(hflip, shift, scale, rotate)
        if color_jitter and images:
            j = color_jitter
            ops.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(j, 0.5) / 4, p=0.8))
        self.compose = A.Compose(ops, additional_targets=targets, seed=seed)
        self.size = size

    def _same_size(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Arrays of different sizes, each resized to size × size (the data check reported them)."""
        if len({a.shape[:2] for a in arrays.values()}) < 2:
            return arrays
        if not self.size:
            shown = ", ".join(f"{n} {a.shape[0]}×{a.shape[1]}" for n, a in arrays.items())
            raise DataError(f"modalities of one sample differ in size ({shown}) and this data kind is not resized")
        out = {}
        for name, a in arrays.items():
            nearest = self.modalities[name].kind != "image"
            r = cv2.resize(a, (self.size, self.size), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
            out[name] = r[:, :, None] if a.ndim == 3 and r.ndim == 2 else r
        return out

    def _random_parts(self) -> list:
        # albumentations gives the pipeline and every transform their own generators
        return [self.compose, *self.compose.transforms]

    def rng_state(self) -> list[dict]:
        """Every NumPy and Python generator of the pipeline: enough to replay its next draws."""
        return [{"numpy": part.random_generator.bit_generator.state, "python": part.py_random.getstate()}
                for part in self._random_parts()]

    def set_rng_state(self, state: list[dict]) -> None:
        for part, saved in zip(self._random_parts(), state, strict=True):
            part.random_generator.bit_generator.state = saved["numpy"]
            part.py_random.setstate(saved["python"])

    def reseed(self, seed: Sequence[int]) -> None:
        """Make the next call draw exactly what any transform of the same settings draws after ``reseed(seed)``.

        Each part gets its own child of ``seed`` (albumentations' ``set_random_seed``
        gives every transform the same seed, which would tie the flip decision to the
        affine draws). Parts are keyed by position; colour jitter, the only part that
        depends on the modalities present, comes last, so a depth-only view and an
        RGB-only view of the same seed replay the same geometry (cached views,
        ``data/views.py``).
        """
        for k, part in enumerate(self._random_parts()):
            child = np.random.SeedSequence([*seed, k])
            part.random_generator = np.random.default_rng(child)
            part.py_random = random.Random(int(child.generate_state(1, np.uint64)[0]))

    def __call__(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        kept = {n: arrays[n] for n in self.untouched if n in arrays}
        if kept:
            arrays = {n: a for n, a in arrays.items() if n not in kept}
            return {**(self(arrays) if arrays else {}), **kept}
        arrays = self._same_size(arrays)
        kwargs = {n: a for n, a in arrays.items() if n != self.primary}
        if self.primary is not None:
            kwargs["image"] = arrays[self.primary]
        else:
            h, w = next(iter(arrays.values())).shape[:2]
            kwargs["image"] = np.zeros((h, w, 1), dtype=np.uint8)
        out = self.compose(**kwargs)
        result = {n: out[n] for n in arrays if n != self.primary}
        if self.primary is not None:
            result[self.primary] = out["image"]
        return result
