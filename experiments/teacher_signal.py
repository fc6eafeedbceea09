"""What a teacher's soft targets carry beyond the label, on the images it distils from.

KD transfers the probability a teacher puts on the *wrong* classes ("dark
knowledge"); a teacher that memorised its training images puts almost none
there on exactly those images, however well it tests. Comparing this mass on
the training set against the test set tells a teacher that generalises from
one that memorises (RESULTS.md, dtd10_hires_to_lowres).
"""

from __future__ import annotations

import torch
from torch import Tensor


def non_label_mass(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> Tensor:
    """Per sample, 1 − softmax(logits / T)[label]: the part of the soft target the label does not already say."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (n, classes) and labels (n,); got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    probs = torch.softmax(logits.float() / temperature, dim=1)
    return 1.0 - probs.gather(1, labels.long()[:, None]).squeeze(1)


def signal_summary(logits: Tensor, labels: Tensor, temperature: float) -> dict[str, float]:
    """Accuracy, mean true-class confidence (T = 1) and mean non-label mass at T, for one split."""
    return {
        "acc": (logits.argmax(1) == labels).float().mean().item(),
        "true_class_prob": 1.0 - non_label_mass(logits, labels, 1.0).mean().item(),
        "non_label_mass": non_label_mass(logits, labels, temperature).mean().item(),
    }
