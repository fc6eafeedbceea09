"""How much of SP's target a student can learn when its pairs share only a class.

In AV-MNIST-style data (a handwritten digit paired with a random recording of
the same digit) the teacher's partner sample is a draw from the student's class,
not the same instance. The teacher's b × b similarity matrix then has two parts:
what the batch's classes fix, which the student can learn from its own inputs,
and what the particular draws add, which is noise to it. The second part is a
floor under SP's loss that no student can go below. It is estimated here by
redrawing every partner within its class many times for the same batch of
classes: the spread of the teacher's matrix around its mean over redraws.
With instance pairing (depth and RGB of one scene) the floor is zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from pldistill.losses import similarity_matrix


@dataclass
class PairingFloor:
    """SP's unlearnable part under class pairing, averaged over batches (unweighted SP units)."""

    floor: float  # E‖G̃ − E[G̃ | classes]‖²_F / b²: SP loss of the best possible student
    target: float  # E‖G̃ − flat‖²_F / b², flat = G̃'s mean diagonal and off-diagonal values: all its structure
    within_share: float  # off-diagonal variance left after fixing the classes, over the total
    batch_size: int
    batches: int
    redraws: int

    def as_dict(self) -> dict:
        return asdict(self)


def partner_draws(labels: Tensor, batch_classes: Tensor, redraws: int, generator: torch.Generator) -> Tensor:
    """``redraws × b`` indices into the pool: for each batch position, a uniform draw among its class's samples."""
    draws = torch.empty(redraws, len(batch_classes), dtype=torch.long)
    for position, c in enumerate(batch_classes.tolist()):
        members = torch.nonzero(labels == c).flatten()
        if len(members) == 0:
            raise ValueError(f"class {c} has no sample in the pool to draw a partner from")
        draws[:, position] = members[torch.randint(len(members), (redraws,), generator=generator)]
    return draws


def _off_diagonal(m: Tensor) -> Tensor:
    b = m.shape[-1]
    return m[..., ~torch.eye(b, dtype=torch.bool)]


def floor_of_draws(features: Tensor, draws: Tensor, unbiased: bool = True) -> tuple[float, float, float]:
    """(floor, target, within-class off-diagonal variance share) for one batch of classes.

    ``draws`` (r × b) are equally likely partner assignments for the same classes.
    ``unbiased`` corrects the spread for estimating the mean from the same r
    draws (r / (r − 1)); pass False when ``draws`` enumerate every assignment.
    """
    r, b = draws.shape
    if r < 2 or b < 2:
        raise ValueError(f"need at least 2 redraws of at least 2 samples, got {r} × {b}")
    grams = torch.stack([similarity_matrix(features[d]) for d in draws])  # r × b × b
    mean = grams.mean(0)
    correction = r / (r - 1) if unbiased else 1.0
    floor = (grams - mean).pow(2).sum((1, 2)).mean() / (b * b) * correction
    off = _off_diagonal(grams)  # r × b(b−1)
    eye = torch.eye(b, dtype=torch.bool)
    diagonal = grams[:, eye]  # r × b
    flat = torch.where(eye, diagonal.mean(1).view(r, 1, 1), off.mean(1).view(r, 1, 1))
    target = (grams - flat).pow(2).sum((1, 2)).mean() / (b * b)
    within = (off - _off_diagonal(mean)).pow(2).mean() * correction
    total = (off - off.mean(1, keepdim=True)).pow(2).mean()
    share = within / total if total > 0 else torch.tensor(0.0)
    return float(floor), float(target), float(share)


def sp_class_pairing_floor(
    features: Tensor, labels: Tensor, batch_size: int, batches: int = 20, redraws: int = 32, seed: int = 0
) -> PairingFloor:
    """Average the floor over ``batches`` random batches of ``batch_size`` classes drawn from the pool.

    ``features``: the teacher's activations of the paired layer on a pool of its
    own inputs (n × anything); ``labels``: their classes (n). Batches take their
    class composition from the pool, as a shuffled loader would.
    """
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if batch_size > len(labels):
        raise ValueError(f"batch_size {batch_size} is larger than the pool ({len(labels)} samples)")
    generator = torch.Generator().manual_seed(seed)
    features = features.reshape(len(features), -1).float()
    results = []
    for _ in range(batches):
        batch_classes = labels[torch.randperm(len(labels), generator=generator)[:batch_size]]
        results.append(floor_of_draws(features, partner_draws(labels, batch_classes, redraws, generator)))
    floor, target, share = (sum(x) / len(results) for x in zip(*results))
    return PairingFloor(floor, target, share, batch_size, batches, redraws)
