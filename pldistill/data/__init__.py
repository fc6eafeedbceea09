"""Datasets: the paired-modality protocol, adapters and joint transforms.

Each data kind is one module here, its adapter beside its recipe section;
``registry.py`` finds them all (see there for what a new kind needs).
"""

from __future__ import annotations

from .protocol import Modality, ModalityView, PairedDataset, encode
from .synthetic_shapes import SyntheticShapes
from .transforms import JointTransform


def build_datasets(cfg) -> tuple[PairedDataset, PairedDataset]:
    """(train, test) for a recipe's ``data`` section (each kind knows how to build itself).

    Stacks (``data.stack``, e.g. ``rgbd: [rgb, depth]``) wrap both splits.
    """
    train, test = cfg.build()
    if not getattr(cfg, "stack", None):
        return train, test
    from .stacked import StackedModalities

    channels = {name: cfg.channels(name) for name in cfg.stack}
    return StackedModalities(train, cfg.stack, channels), StackedModalities(test, cfg.stack, channels)


__all__ = [
    "JointTransform",
    "Modality",
    "ModalityView",
    "PairedDataset",
    "SyntheticShapes",
    "build_datasets",
    "encode",
]
