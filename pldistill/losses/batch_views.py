"""Batch views: transformed copies of every training batch that a loss asks the trainer for.

A loss such as SSKD learns from how the teacher sees transformed copies of
each sample. It declares the transform once (``LossSpec.views``); the trainer
applies it to the student's and the teacher's input alike, so both see the
same transformed copies of the same samples, and gives cross-entropy and
every other loss the original samples only. Which modality kinds the
transform makes sense for is part of the declaration: a recipe whose student
or teacher reads another kind is refused at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor


@dataclass(frozen=True)
class BatchViews:
    """``expand(x)`` → (copies · b, …): the originals first, then each transformed copy of the whole batch."""

    name: str  # how messages name it ("rotations")
    expand: Callable[[Tensor], Tensor]
    copies: int  # originals included
    kinds: tuple[str, ...]  # modality kinds (data/modality.py) the transform applies to
    why: str = ""  # why other kinds are refused

    def originals(self, x: Tensor) -> Tensor:
        """The first b rows: what cross-entropy and the other losses see."""
        return x[: len(x) // self.copies]
