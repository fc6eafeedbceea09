"""The loss registry: each loss file declares, next to its function, what the rest of the code needs.

A loss file calls ``register_loss(LossSpec(...))`` once. Recipe validation,
the ``distill.loss=`` presets, the load-time checks, reports and the building
of training terms all read these specs; no other module keeps a list of loss
names. ``all_losses()`` imports every module of this package first (a package
scan), so adding a loss is one new file plus its tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from .batch_views import BatchViews


class LossParams(BaseModel):
    """A loss's own recipe keys (beside name, weight, pairs, pool, scope); none by default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class LossSpec:
    """What a loss compares and what it needs; data the rest of the code reads, never a list it keeps.

    Exactly one of ``fn`` (a pure function ``fn(teacher, student, **params)``)
    and ``learned`` (``learned(student_channels, teacher_channels, **params)``
    → an ``nn.Module`` called as ``module(teacher, student)``, trained with
    the student and dropped afterwards) is given.
    """

    name: str  # what a recipe writes: distill.losses[i].name
    display: str  # how tables and reports name it
    citation: str
    fn: Callable[..., Tensor] | None = None
    learned: Callable[..., nn.Module] | None = None
    # tapped stage outputs, the classifier's logits, or both with the labels: fn((t_logits, t_feat),
    # (s_logits, s_feat), labels) on one layer pair (SSKD); or the privileged input itself against a student
    # stage, no teacher (fn(x_privileged, s_feat): an auxiliary target)
    inputs: Literal["features", "logits", "outputs", "privileged"] = "features"
    relational: bool = False  # relates the samples of a batch: may run over the global batch (scope: global)
    min_batch: int = 1  # the smallest batch the loss is defined on
    poolable: bool = False  # also defined on globally pooled embeddings (pool: true)
    spatial: bool = False  # needs (channels, height, width) maps
    needs_extent: bool = False  # a 1×1 map makes it constant (attention transfer)
    views: BatchViews | None = None  # transformed copies of each batch the trainer adds (losses/batch_views.py)
    needs_mixup: bool = False  # defined on jointly mixed samples: the recipe must set student.mixup (engine/mixup.py)
    needs_classes: bool = False  # its learned parts predict classes: ``learned(..., classes=number of classes)``
    trains_teacher: bool = False  # the teacher trains with the student (C2KD): live, in training mode, optimised
    # some of its terms stop the gradient through the student's own outputs (C2KD's mutual KLs), so a
    # finite-difference check of the whole loss does not apply; its tests check the gradient by hand instead
    stops_gradient: bool = False
    params: type[LossParams] = LossParams
    symbols: dict[str, str] = field(default_factory=dict)  # params always shown in reports, by symbol (T for KD)
    weight_symbol: str | None = None  # the paper's name for the weight (γ for SP)
    preset: dict[str, Any] = field(default_factory=dict)  # the paper's defaults, for distill.loss=NAME
    what: str = ""  # a phrase for messages ("attention transfer"); defaults to the display name

    def __post_init__(self) -> None:
        if (self.fn is None) == (self.learned is None):
            raise TypeError(f"loss {self.name!r}: give exactly one of fn and learned")
        if self.relational and self.min_batch < 2:
            raise TypeError(f"loss {self.name!r}: a relational loss needs min_batch >= 2")

    @property
    def phrase(self) -> str:
        return self.what or self.display


_REGISTRY: dict[str, LossSpec] = {}
_SCANNED = False


def register_loss(spec: LossSpec) -> LossSpec:
    """Add ``spec``; called once at the bottom of the loss's own file."""
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"two losses are registered as {spec.name!r}")
    _REGISTRY[spec.name] = spec
    return spec


def _scan() -> None:
    global _SCANNED
    if _SCANNED:
        return
    _SCANNED = True
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{module.name}")


def all_losses() -> dict[str, LossSpec]:
    """Every registered loss by name, in file order."""
    _scan()
    return dict(sorted(_REGISTRY.items()))


def loss_spec(name: str) -> LossSpec:
    """The spec of ``name``; a KeyError naming the known losses otherwise."""
    losses = all_losses()
    if name not in losses:
        raise KeyError(f"no loss named {name!r}; known losses: {sorted(losses)}")
    return losses[name]


def loss_names(predicate: Callable[[LossSpec], bool] = lambda spec: True) -> list[str]:
    """Names of the losses for which ``predicate(spec)`` holds, sorted (for messages)."""
    return [name for name, spec in all_losses().items() if predicate(spec)]
