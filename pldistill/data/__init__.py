"""Datasets: the paired-modality protocol, adapters and joint transforms."""

from __future__ import annotations

from .protocol import Modality, ModalityView, PairedDataset, encode
from .synthetic_shapes import SyntheticShapes
from .transforms import JointTransform


def build_datasets(cfg) -> tuple[PairedDataset, PairedDataset]:
    """(train, test) for a recipe's ``data`` section (each kind knows how to build itself)."""
    return cfg.build()


__all__ = [
    "JointTransform",
    "Modality",
    "ModalityView",
    "PairedDataset",
    "SyntheticShapes",
    "build_datasets",
    "encode",
]
