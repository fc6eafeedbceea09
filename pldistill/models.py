"""Teachers and students are timm models built by name, with taps through timm's API.

``TappedModel`` returns logits and the features of the requested stages from
one forward pass (``forward_intermediates`` + ``forward_head``): no module-path
strings, no hand-placed hooks that break when a model changes.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Sequence

import timm
import torch
from torch import Tensor, nn


class UnknownModelError(ValueError):
    pass


def check_model_name(name: str) -> None:
    """Raise with close matches when timm does not know ``name``."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise UnknownModelError(f"timm has no model named {name!r}{hint}")


def build_model(
    name: str, in_chans: int, num_classes: int, weights: str | Path | None = None
) -> nn.Module:
    """A timm model with ``in_chans`` inputs; ``weights`` is a local state-dict file, never a download."""
    check_model_name(name)
    model = timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=num_classes)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file {path} not found: pldistill never downloads weights; "
                "point the recipe's 'weights' at a local .pt/.pth state dict"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:
            raise ValueError(f"{path}: keys not in {name}: {unexpected[:5]}")
    return model


def num_stages(model: nn.Module) -> int:
    return len(model.feature_info)


def resolve_stage(index: int, stages: int) -> int:
    """Stage index with Python's negative indexing; raises when out of range."""
    if not -stages <= index < stages:
        raise IndexError(f"stage {index} out of range: the model has {stages} stages (0..{stages - 1})")
    return index % stages


class TappedModel(nn.Module):
    """Wraps a timm model: ``forward(x) -> (logits, [features of each tapped stage])``."""

    def __init__(self, model: nn.Module, stages: Sequence[int] = ()):
        super().__init__()
        self.model = model
        n = num_stages(model)
        self.stages = [resolve_stage(i, n) for i in stages]
        self._unique = sorted(set(self.stages))  # timm wants each index once, ascending

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        if not self.stages:
            return self.model(x), []
        final, features = self.model.forward_intermediates(x, indices=self._unique)
        by_stage = dict(zip(self._unique, features))
        return self.model.forward_head(final), [by_stage[i] for i in self.stages]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
