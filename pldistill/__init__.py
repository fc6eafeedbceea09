"""pldistill: privileged-learning and cross-modal knowledge distillation.

The public Python API, for use inside your own PyTorch code (see docs/python-api.md):

    import pldistill
    recipe = pldistill.load_recipe("recipes/depth_to_rgb.yaml", ["schedule.epochs=2"])
    out = pldistill.run_recipe(recipe, "recipes/depth_to_rgb.yaml")    # teacher → students → results
    pldistill.losses.<name>_loss(teacher_features, student_features)    # any loss, on your tensors
    pldistill.all_losses()                                              # the loss registry

Names are imported on first use, so ``import pldistill`` (and the CLI's
``--help``) stays fast: torch and timm load only when something needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name → the module that defines it (a module itself when the value is None)
_API: dict[str, tuple[str, str | None]] = {
    # recipes and runs
    "load_recipe": ("pldistill.recipe", "load_recipe"),
    "Recipe": ("pldistill.recipe", "Recipe"),
    "run_recipe": ("pldistill.run", "run_recipe"),
    "RunOutput": ("pldistill.run", "RunOutput"),
    # losses and their registry
    "losses": ("pldistill.losses", None),
    "all_losses": ("pldistill.losses", "all_losses"),
    "loss_spec": ("pldistill.losses", "loss_spec"),
    "register_loss": ("pldistill.losses", "register_loss"),
    "LossSpec": ("pldistill.losses", "LossSpec"),
    # models with taps
    "TappedModel": ("pldistill.models", "TappedModel"),
    "build_model": ("pldistill.models", "build_model"),
    # datasets
    "datasets": ("pldistill.data", None),
    "build_datasets": ("pldistill.data", "build_datasets"),
    "ModalityView": ("pldistill.data", "ModalityView"),
    "JointTransform": ("pldistill.data", "JointTransform"),
    "PairedDataset": ("pldistill.data", "PairedDataset"),
    "SyntheticShapes": ("pldistill.data", "SyntheticShapes"),
    # errors
    "PldistillError": ("pldistill.errors", "PldistillError"),
    "RecipeError": ("pldistill.errors", "RecipeError"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'pldistill' has no attribute {name!r}")
    module, attribute = _API[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
