"""``Modality``, in a module of its own so that the protocol and the depth encodings can both use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModalityKind = Literal["image", "depth", "spectrogram", "stack", "vector"]


@dataclass(frozen=True)
class Modality:
    """What a modality is: its channel count and how it is augmented and encoded.

    ``image`` modalities are uint8 H×W×C and get photometric augmentation;
    ``depth`` modalities are float32 H×W in metres, get the same geometry as
    the images (as an albumentations mask target) and no colour changes;
    ``spectrogram`` modalities are float32 H×W (frequency × time), already at
    their input size, and are never augmented (image geometry is meaningless
    for them: a flip reverses time);
    ``vector`` modalities are float32 feature vectors of ``channels`` values
    (no spatial axes), already standardised by their adapter (``mean`` and
    ``std`` are empty), never augmented, and read by vector models
    (``pldistill/nets/``), not timm.
    """

    name: str
    kind: ModalityKind
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
