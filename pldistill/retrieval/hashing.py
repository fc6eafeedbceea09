"""Multimodal similarity-preserving hashing (Masci, Bronstein, Bronstein & Schmidhuber, TPAMI 2014).

Two networks, ξ for modality X and η for modality Y, map their inputs into
one b-bit Hamming space, so a query of one modality ranks a database of the
other by Hamming distance. Each is a pldistill backbone followed by a linear
layer to b outputs and tanh: relaxed codes in (−1, 1) while training, their
signs (``metrics.to_codes``) afterwards.

With similar pairs P (same class) and dissimilar pairs N, the paper trains
the coupled siamese networks jointly on

    L(ξ, η) = L_XY + α·L_X + β·L_Y

    L_XY = ½ Σ_{(x,y)∈P_XY} ‖ξ(x) − η(y)‖² + ½ Σ_{(x,y)∈N_XY} max(0, m_XY − ‖ξ(x) − η(y)‖)²
    L_X  = ½ Σ_{(x,x')∈P_X} ‖ξ(x) − ξ(x')‖² + ½ Σ_{(x,x')∈N_X} max(0, m_X − ‖ξ(x) − ξ(x')‖)²
    L_Y  = the same as L_X, with η and m_Y

so similar pairs are pulled together, within and across modalities, and
dissimilar pairs pushed apart until their distance reaches the margin.

What the paper does not pin down for this setting, or what we could not
establish from it, and what is chosen here (docs/retrieval.md):

* **distances on relaxed codes**: ‖·‖ is the Euclidean distance between the
  tanh outputs (sign has no gradient). For ±1 codes ‖a − b‖² = 4·hamming(a, b).
* **margin**: one margin for all three terms, set in bits: ``margin_bits``
  (default b/2) gives m = 2·√(margin_bits), the distance of ±1 codes that
  differ in that many bits. Random codes differ in b/2 bits on average, so
  dissimilar pairs are pushed at least as far apart as chance puts them.
* **weights**: α = β = 1 (``intra_x``, ``intra_y``; ``cross`` weighs L_XY).
* **pairs**: all n × n pairs of a minibatch of n paired samples; for the
  intra-modal terms the n pairs of a sample with itself are left out. Each
  term is its sum over those pairs divided by their number (the paper's sum
  up to a constant, so the loss does not grow with the batch).
* **the ½ factors and the term names** follow our reading of the paper
  (arXiv 1207.1522), whose loss section was not at hand to check word for
  word; a constant factor only rescales the step size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ..losses.checks import need_batch, same_batch
from ..models import build_model, create_model, example_input

_TINY = 1e-12  # under the square root: the distance of identical codes has a finite gradient (zero)


class HashingNet(nn.Module):
    """One modality's hash function: backbone → linear to ``bits`` → tanh (relaxed codes in (−1, 1))."""

    def __init__(self, backbone: nn.Module, width: int, bits: int):
        super().__init__()
        self.backbone = backbone
        self.project = nn.Linear(width, bits)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.project(self.backbone(x)))


def backbone_width(name: str, in_chans: int, image_size: int | None) -> int:
    """Width of ``name``'s pooled output without a classifier, measured on the meta device (no compute)."""
    with torch.device("meta"):
        model = create_model(name, in_chans, 0, image_size)
        return int(model(example_input(name, in_chans, image_size or 1)).shape[-1])


def build_hashing_net(name: str, in_chans: int, bits: int, image_size: int | None = None) -> HashingNet:
    """A fresh ``HashingNet`` on any pldistill model (timm's for images, ``mlp_*`` for vectors)."""
    backbone = build_model(name, in_chans, 0, weights=None, image_size=image_size)
    return HashingNet(backbone, backbone_width(name, in_chans, image_size), bits)


class CoupledHashing(nn.Module):
    """ξ and η, one ``HashingNet`` per modality, named by the modality each reads (X first)."""

    def __init__(self, x: str, y: str, nets: dict[str, HashingNet]):
        super().__init__()
        if x == y or set(nets) != {x, y}:
            raise ValueError(f"coupled hashing needs two modalities with one net each, got {x!r}, {y!r}, "
                             f"nets for {sorted(nets)}")
        self.x, self.y = x, y
        self.nets = nn.ModuleDict(nets)

    def forward(self, batch: dict) -> tuple[Tensor, Tensor]:
        return self.nets[self.x](batch[self.x]), self.nets[self.y](batch[self.y])


def pair_costs(a: Tensor, b: Tensor, similar: Tensor, margin: float) -> Tensor:
    """(len(a) × len(b)) costs: ‖a_i − b_j‖² if similar, else max(0, m − ‖a_i − b_j‖)² (the hinge)."""
    squared = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)
    hinge = (margin - squared.clamp_min(_TINY).sqrt()).clamp_min(0).pow(2)
    return torch.where(similar, squared, hinge)


@dataclass(frozen=True)
class MMSPHLoss:
    """The loss above with its choices: one margin (Euclidean, on relaxed codes) and the terms' weights."""

    margin: float
    cross: float = 1.0
    intra_x: float = 1.0
    intra_y: float = 1.0

    @classmethod
    def for_bits(cls, bits: int, margin_bits: float | None = None, **weights: float) -> "MMSPHLoss":
        """Margin m = 2·√(margin_bits): the distance of ±1 codes differing in that many bits (default b/2)."""
        return cls(margin=2.0 * math.sqrt(bits / 2 if margin_bits is None else margin_bits), **weights)

    def terms(self, x: Tensor, y: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """The three unweighted terms, each ½ × its mean cost over the batch's pairs."""
        same_batch(x, y, "MMSPH")
        need_batch(x, 2, "MMSPH")
        similar = labels.unsqueeze(1) == labels.unsqueeze(0)
        others = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        return {
            "cross": 0.5 * pair_costs(x, y, similar, self.margin).mean(),
            "intra_x": 0.5 * pair_costs(x, x, similar, self.margin)[others].mean(),
            "intra_y": 0.5 * pair_costs(y, y, similar, self.margin)[others].mean(),
        }

    def __call__(self, x: Tensor, y: Tensor, labels: Tensor) -> Tensor:
        t = self.terms(x, y, labels)
        return self.cross * t["cross"] + self.intra_x * t["intra_x"] + self.intra_y * t["intra_y"]


def train_coupled(coupled: CoupledHashing, loader: Iterable[dict], loss: MMSPHLoss, epochs: int, lr: float,
                  device: torch.device | str = "cpu",
                  report: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ξ and η jointly with Adam on paired batches (dicts of both modalities and "label").

    Returns each epoch's mean loss; ``report(epoch, mean_loss)`` is called after each epoch.
    """
    coupled.to(device).train()
    optimizer = torch.optim.Adam(coupled.parameters(), lr=lr)
    history = []
    for epoch in range(epochs):
        total, steps = 0.0, 0
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items() if k in (coupled.x, coupled.y, "label")}
            value = loss(*coupled(batch), batch["label"])
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            total, steps = total + float(value.detach()), steps + 1
        history.append(total / max(steps, 1))
        if report is not None:
            report(epoch, history[-1])
    return history


@torch.no_grad()
def collect_outputs(fn: Callable[[Tensor], Tensor], loader: Iterable[dict], modality: str,
                    device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(outputs, labels) of ``fn`` over a loader's batches of ``modality``, in the loader's order."""
    outputs, labels = [], []
    for batch in loader:
        outputs.append(fn(batch[modality].to(device)).float().cpu().numpy())
        labels.append(np.asarray(batch["label"]))
    return np.concatenate(outputs), np.concatenate(labels)
