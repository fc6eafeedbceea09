"""Teachers and students are timm models built by name, with taps through timm's API.

Vector modalities have no timm model: their MLPs come from the product's own
registry (``pldistill/nets``) through the same ``create_model``, and present
timm's interface, so nothing past this module tells them apart.

``TappedModel`` returns logits and the features of the requested stages from
one forward pass (``forward_intermediates`` + ``forward_head``): no module-path
strings, no hand-placed hooks that break when a model changes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import timm
import torch
from torch import Tensor, nn

from .errors import PldistillError
from .nets import build_net, is_net
from .model_names import UnknownModelError, check_model_name  # noqa: F401 - where callers looked for them


class WeightsError(PldistillError, ValueError):
    """A local weights file that is missing, unreadable or does not fit the model."""


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a local file, loaded without unpickling code (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} not found: pldistill never downloads weights; "
            "point the recipe's 'weights' at a local .pt/.pth state dict"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200]
        raise WeightsError(
            f"{path}: not a loadable tensor file ({type(exc).__name__}: {detail}); pldistill loads weights with "
            "weights_only=True, so files holding code or arbitrary objects are refused"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a pldistill checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict (parameter name → tensor)")
    return state


def _cfg_keys(model: nn.Module, what: str) -> list[str]:
    keys = model.pretrained_cfg.get(what) or ()
    return [keys] if isinstance(keys, str) else list(keys)


def create_model(name: str, in_chans: int = 3, num_classes: int = 1000, image_size: int | None = None) -> nn.Module:
    """A fresh, untrained model by name: one of the product's vector models, else timm's (never downloads)."""
    if is_net(name):
        return build_net(name, in_chans, num_classes)
    return timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=num_classes,
                             **size_kwargs(name, image_size))


def takes_vectors(name: str) -> bool:
    """Whether ``name`` reads (batch, features) vectors rather than (batch, channels, height, width) images."""
    return is_net(name)


def example_input(name: str, in_chans: int, image_size: int, batch: int = 2) -> Tensor:
    """An empty input batch of the shape ``name`` reads (allocated on the current default device)."""
    shape = (batch, in_chans) if takes_vectors(name) else (batch, in_chans, image_size, image_size)
    return torch.empty(*shape)


def classifier_outputs(name: str, state: dict[str, Tensor]) -> int | None:
    """How many classes a state dict's classifier predicts (None: it has no classifier)."""
    with torch.device("meta"):
        model = create_model(name)  # only its config's classifier key is read
    for key in _cfg_keys(model, "classifier"):
        if f"{key}.weight" in state:
            return int(state[f"{key}.weight"].shape[0])
    return None


def checked_state(model: nn.Module, name: str, path: str | Path, quiet: bool = False) -> dict[str, Tensor]:
    """A local weights file made to fit ``model``, or a WeightsError saying why it cannot.

    Adapted the way timm adapts pretrained weights: a classifier for another
    label space is dropped (the head starts fresh) and a stem for another
    channel count is converted with timm's ``adapt_input_conv`` (e.g. RGB
    weights for a 1-channel depth teacher). Works on a meta-device model, so
    recipes check their weights at load without building anything.
    """
    from timm.models import adapt_input_conv

    path = Path(path)
    state = dict(read_state_dict(path))
    own = {k: v.shape for k, v in model.state_dict().items()}
    heads = _cfg_keys(model, "classifier")
    for key in heads:
        for k in (key + ".weight", key + ".bias"):
            if k in state and k in own and state[k].shape != own[k]:
                if not quiet:
                    print(f"{path}: classifier {k} {tuple(state[k].shape)} does not fit {tuple(own[k])}; "
                          "the head starts fresh")
                del state[k]
    for key in _cfg_keys(model, "first_conv"):
        k = key + ".weight"
        if k in state and k in own and state[k].shape[1] != own[k][1]:
            state[k] = adapt_input_conv(own[k][1], state[k])
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise WeightsError(f"{path}: keys not in {name}: {unexpected[:5]} (weights of another architecture?)")
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k])}" for k, v in state.items() if v.shape != own[k]]
    if wrong:
        raise WeightsError(f"{path}: {len(wrong)} tensors do not fit {name}, e.g. {wrong[:3]}")
    missing = [k for k in own if k not in state and not any(k.startswith(h + ".") for h in heads)]
    if missing:
        raise WeightsError(f"{path}: {len(missing)} {name} parameters missing, e.g. {missing[:3]}")
    return state


@functools.lru_cache(maxsize=None)
def _fixed_input_size(name: str) -> bool:
    if is_net(name):
        return False
    with torch.device("meta"):
        return bool(timm.create_model(name, pretrained=False).pretrained_cfg.get("fixed_input_size", False))


def size_kwargs(name: str, image_size: int | None) -> dict:
    """Models built for one input size (ViT, MLP-Mixer) are told the data's size; CNNs take any."""
    if image_size is None:
        return {}
    return {"img_size": image_size} if _fixed_input_size(name) else {}


def build_model(
    name: str,
    in_chans: int,
    num_classes: int,
    weights: str | Path | None = None,
    image_size: int | None = None,
) -> nn.Module:
    """A model with ``in_chans`` inputs; ``weights`` is a local state-dict file, never a download."""
    check_model_name(name)
    model = create_model(name, in_chans, num_classes, image_size)
    if weights is not None:
        model.load_state_dict(checked_state(model, name, weights), strict=False)
    return model


@functools.lru_cache(maxsize=256)
def feature_shapes(name: str, in_chans: int, image_size: int) -> tuple[tuple[int, ...], ...]:
    """Per-stage feature shapes for one ``image_size`` input, from a forward on the meta device.

    Costs no memory and no real compute, so recipes can check at load that a
    loss fits the layers it pairs; remembered per (model, channels, size), because
    building the model is most of a recipe's load time and sweeps load one per cell.
    """
    with torch.device("meta"):
        model = create_model(name, in_chans, 1000, image_size).eval()
        _, features = model.forward_intermediates(example_input(name, in_chans, image_size))
    return tuple(tuple(f.shape[1:]) for f in features)


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
