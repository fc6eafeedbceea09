"""Distillation losses: pure functions of tensors (plus thin modules where a loss learns), by name.

A loss file holds the function, its typed recipe parameters and a
``LossSpec`` registered with ``register_loss``; everything else reads the
registry (``all_losses()``, ``loss_spec(name)``). Adding a loss is one file
plus its tests: the package scan below finds it, and its public names
(``__all__``) become ``pldistill.losses.<name>``.

A loss takes the teacher's and the student's tapped features for one layer
pair (or their logits) and returns an unweighted scalar; the trainer applies
the recipe's weight.
"""

from __future__ import annotations

import importlib
import pkgutil

from .pooling import global_pool, on_pooled
from .registry import LossParams, LossSpec, all_losses, loss_names, loss_spec, register_loss
from .scope import across_ranks

__all__ = ["LossParams", "LossSpec", "across_ranks", "all_losses", "global_pool", "loss_names", "loss_spec",
           "on_pooled", "register_loss"]

for _module in pkgutil.iter_modules(__path__):
    _names = getattr(importlib.import_module(f"{__name__}.{_module.name}"), "__all__", ())
    globals().update({n: getattr(importlib.import_module(f"{__name__}.{_module.name}"), n) for n in _names})
    __all__ += [n for n in _names if n not in __all__]
del _module, _names
