"""The base of every recipe section: frozen, strict, and unknown keys are errors.

Neutral ground: both the recipe (``pldistill/recipe.py``) and the data kinds'
sections (``pldistill/data/``) build on it, and neither may import the other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
