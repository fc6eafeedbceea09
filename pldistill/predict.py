"""Classify images with an exported student: only the student's own input, never the teacher's.

    pldistill predict exported/depth_to_rgb photo1.png photo2.jpg

Preprocessing follows the export's ``pldistill`` block (the same resize,
scaling and normalisation the student saw in evaluation), so predictions on
the dataset's own images match the run's evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from .export import ExportError, load_exported

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class Prediction:
    path: str
    label: str
    index: int
    probability: float
    top: list[tuple[str, float]]


def read_image(path: Path, channels: int) -> np.ndarray:
    """uint8 H×W×C (RGB order, or one gray channel); a clear error for unreadable files."""
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    image = cv2.imread(str(path), flag)
    if image is None:
        raise ExportError(f"{path}: not a readable image (png, jpg, bmp, tif, webp)")
    return image[..., None] if channels == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def preprocess(image: np.ndarray, info: dict) -> torch.Tensor:
    """uint8 H×W×C → normalised C×H×W float tensor at the student's input size."""
    size = info["input_size"]
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        image = image.reshape(size, size, -1)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(info["mean"]).view(-1, 1, 1)
    std = torch.tensor(info["std"]).view(-1, 1, 1)
    return (x - mean) / std


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders contribute their images (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise ExportError(f"{p}: no such image file or folder")
    if not out:
        raise ExportError("no images to classify (give image files or folders of them)")
    return out


@torch.no_grad()
def predict(folder: str | Path, images: Sequence[str | Path], top: int = 1, batch_size: int = 64) -> list[Prediction]:
    model, config = load_exported(folder)
    info, labels = config["pldistill"], config["label_names"]
    paths = expand(images)
    out: list[Prediction] = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        x = torch.stack([preprocess(read_image(p, info["channels"]), info) for p in chunk])
        probs = model(x).float().softmax(dim=1)
        values, indices = probs.topk(min(top, probs.shape[1]), dim=1)
        for p, v, i in zip(chunk, values.tolist(), indices.tolist()):
            out.append(Prediction(str(p), labels[i[0]], i[0], v[0], [(labels[k], pv) for k, pv in zip(i, v)]))
    return out
