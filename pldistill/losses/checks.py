"""Input checks shared by the relational losses, with messages that say what to change."""

from __future__ import annotations

from torch import Tensor


def need_batch(x: Tensor, minimum: int, what: str) -> None:
    """Relations need several samples: a batch of one has no pairs, so its loss says nothing."""
    if x.shape[0] < minimum:
        raise ValueError(
            f"{what} compares samples within a batch and needs at least {minimum} of them, got {x.shape[0]}; "
            "raise schedule.batch_size (training drops the last incomplete batch)"
        )


def same_batch(teacher: Tensor, student: Tensor, what: str) -> None:
    if teacher.shape[0] != student.shape[0]:
        raise ValueError(
            f"{what} needs the same batch on both sides: teacher has {teacher.shape[0]} samples, "
            f"student {student.shape[0]}"
        )
