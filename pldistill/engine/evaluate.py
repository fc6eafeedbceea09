"""Test accuracy on one modality: what a deployed student would see."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from .. import distributed
from ..models import TappedModel
from .device import autocast, to_device


@torch.no_grad()
def evaluate(
    model: TappedModel, loader: DataLoader, modality: str, device: torch.device, channels_last: bool,
    precision: str = "fp32",
) -> float:
    """Top-1 accuracy; reads only ``batch[modality]``: nothing else is needed to predict.

    A loader sharded over ranks (``distributed.EvalShard``) is counted on every
    rank and summed: each test sample exactly once.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    for batch in loader:
        with autocast(device, precision):
            logits, _ = model(to_device(batch[modality], device, channels_last))
        correct += (logits.argmax(1).cpu() == batch["label"]).sum().item()
        total += len(batch["label"])
    model.train(was_training)
    if isinstance(loader.sampler, distributed.EvalShard):
        correct, total = distributed.all_reduce_sum([correct, total])
    return correct / max(total, 1)
