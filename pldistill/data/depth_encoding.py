"""How a depth map becomes network input: metric, inverse, or colourised.

* ``metric``: metres standardised with the modality's mean and std (1 channel).
* ``inverse``: mean/d − 1, i.e. disparity-like (1 channel): resolves near
  structure finely and compresses the far background; missing depth (0) → −1.
* ``colour``: depth through the jet colour map, then ImageNet-standardised
  (3 channels), the encoding Eitel et al. (IROS 2015) used to reuse
  ImageNet-style 3-channel networks on depth; range mean ± 2 std, clipped.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from .modality import Modality

DepthEncoding = Literal["metric", "inverse", "colour"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def encoded_channels(encoding: DepthEncoding) -> int:
    return 3 if encoding == "colour" else 1


def _jet(t: np.ndarray) -> np.ndarray:
    """Matplotlib's jet for t in [0, 1] → (…, 3) in [0, 1] (piecewise linear, no matplotlib needed)."""
    r = np.clip(1.5 - np.abs(4 * t - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * t - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * t - 1), 0, 1)
    return np.stack([r, g, b], axis=-1)


def encode_depth(depth: np.ndarray, modality: Modality, encoding: DepthEncoding) -> torch.Tensor:
    """H×W metres → C×H×W float32 network input."""
    d = np.asarray(depth, dtype=np.float32)
    mean, std = modality.mean[0], modality.std[0]
    if encoding == "metric":
        x = ((d - mean) / std)[None]
    elif encoding == "inverse":
        x = (np.where(d > 0, mean / np.maximum(d, 1e-6), 0.0) - 1.0)[None]
    elif encoding == "colour":
        t = np.clip((d - (mean - 2 * std)) / (4 * std), 0, 1)
        rgb = _jet(t).transpose(2, 0, 1)
        x = (rgb - np.reshape(IMAGENET_MEAN, (3, 1, 1))) / np.reshape(IMAGENET_STD, (3, 1, 1))
    else:
        raise ValueError(f"unknown depth encoding {encoding!r}; use metric, inverse or colour")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
