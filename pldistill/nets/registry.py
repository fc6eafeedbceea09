"""Vector models by name: ``mlp_256x3`` is a 3-hidden-layer MLP of width 256.

timm builds every image model; it has nothing for a feature vector. The few
models a vector modality needs are named here, by pattern, and behave like a
timm model towards the rest of the code (``feature_info``,
``forward_intermediates``, ``forward_head``, ``pretrained_cfg``; see
``mlp.py``), so taps, losses, probes, checkpoints and weights work unchanged.
A new family is one file in this package that calls ``register_net``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import nn

_FAMILIES: dict[str, "NetFamily"] = {}
_scanned = False


@dataclass(frozen=True)
class NetFamily:
    """Names matching ``pattern`` (a full-match regex with named groups) build ``build(in_chans, num_classes, **groups)``."""

    prefix: str  # what names start with, for messages ("mlp")
    pattern: str
    example: str  # a valid name, for messages
    build: Callable[..., nn.Module]
    summary: str


def register_net(family: NetFamily) -> NetFamily:
    if _FAMILIES.get(family.prefix, family) is not family:
        raise ValueError(f"two vector-model families are registered as {family.prefix!r}")
    _FAMILIES[family.prefix] = family
    return family


def _families() -> dict[str, NetFamily]:
    global _scanned
    if not _scanned:
        _scanned = True
        package = importlib.import_module(__package__)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{__package__}.{module.name}")
    return _FAMILIES


def _match(name: str) -> tuple[NetFamily, dict] | None:
    for family in _families().values():
        found = re.fullmatch(family.pattern, name)
        if found:
            return family, {k: int(v) for k, v in found.groupdict().items()}
    return None


def is_net(name: str) -> bool:
    """Whether ``name`` is one of the product's vector models (else it is timm's to build)."""
    return _match(name) is not None


def net_names() -> list[str]:
    """One example name per family, with what the family is (for messages and docs)."""
    return [f"{f.example} ({f.summary})" for f in _families().values()]


def near_miss(name: str) -> str | None:
    """A hint when ``name`` starts like a family's names but does not fit its pattern."""
    for family in _families().values():
        if name.startswith(family.prefix + "_"):
            return f"{name!r} does not fit {family.prefix}'s names ({family.summary}), e.g. {family.example!r}"
    return None


def build_net(name: str, in_chans: int, num_classes: int) -> nn.Module:
    """A fresh vector model of ``name`` taking ``in_chans`` features and predicting ``num_classes``."""
    found = _match(name)
    if found is None:
        raise KeyError(f"no vector model named {name!r}; known: {net_names()}")
    family, sizes = found
    return family.build(in_chans=in_chans, num_classes=num_classes, **sizes)
