"""Datasets: the paired-modality protocol, adapters and joint transforms."""

from __future__ import annotations

from pathlib import Path

from .protocol import Modality, ModalityView, PairedDataset, encode
from .synthetic_shapes import SyntheticShapes
from .transforms import JointTransform


def build_datasets(cfg) -> tuple[PairedDataset, PairedDataset]:
    """(train, test) for a recipe's ``data`` section."""
    if cfg.kind == "synthetic_shapes":
        common = dict(
            image_size=cfg.image_size,
            seed=cfg.seed,
            noise=cfg.noise,
            camouflage=cfg.camouflage,
            ambient=cfg.ambient,
            contrast=cfg.contrast,
            cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None,
        )
        return (
            SyntheticShapes("train", cfg.num_train, **common),
            SyntheticShapes("test", cfg.num_test, **common),
        )
    raise ValueError(f"unknown dataset kind {cfg.kind!r}")  # the recipe schema prevents this


__all__ = [
    "JointTransform",
    "Modality",
    "ModalityView",
    "PairedDataset",
    "SyntheticShapes",
    "build_datasets",
    "encode",
]
