"""Controls that test *what* a teacher passes on: shuffled pairing and the class-mean teacher.

The same-modality control (``pipeline.py``) asks whether the privileged
modality adds anything beyond having a teacher at all. These two ask whether
what it adds is knowledge of the *instance*:

* ``shuffled`` — each training sample's teacher input is another training
  sample of the same class (``ShuffledPairing``: a seeded random cycle through
  each class's samples, so no sample keeps its own partner; fixed for the
  run). Classes survive, pairing does not: a gain that comes from
  instance-level privileged information must vanish here.
* ``class_mean`` — the teacher's logits and tapped features on every
  training sample, averaged per class (``ClassMeanOutputs``); each sample's
  teacher outputs are its class's means. That is what label smoothing could
  give: a gain that survives it is not instance knowledge.

A comparison variant picks one with ``teacher_signal`` (``compare.py``);
``paired`` is the recipe's own pairing. A run trains both beside its
distilled student with ``distill.instance_controls: true``
(``pipeline.instance_controls``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..data.protocol import DerivedDataset, ModalityView, PairedDataset

if TYPE_CHECKING:
    from ..models import TappedModel

TeacherSignal = Literal["paired", "shuffled", "class_mean"]
SIGNALS: dict[str, str] = {
    "paired": "the teacher reads the sample's own privileged input",
    "shuffled": "the teacher reads another training sample of the same class (pairing destroyed, classes kept)",
    "class_mean": "the teacher's outputs are replaced by their per-class means over the training set",
}

# What a row minus its control of that signal measures (comparison tables).
CONTROL_MEANINGS: dict[str, str] = {
    "shuffled": "the instance gain: what the teacher passes on about this sample beyond its class",
    "class_mean": "what the teacher passes on beyond its per-class mean outputs (what label smoothing could give)",
}


def class_cycles(labels: np.ndarray, seed: int) -> np.ndarray:
    """``partner[i]``: a same-class sample ≠ i (a random cycle per class; a class of one keeps its sample)."""
    rng = np.random.default_rng([seed, 0x5EED])
    partner = np.arange(len(labels))
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        partner[members] = np.roll(members, -1)
    return partner


class ShuffledPairing(DerivedDataset):
    """``base`` with the ``moved`` modalities of sample i read from sample ``partner[i]`` (same class)."""

    def __init__(self, base: PairedDataset, moved: Sequence[str], seed: int):
        super().__init__(base)
        self.moved, self.seed = list(moved), seed
        self.partner = class_cycles(np.array([base.label(i) for i in range(len(base))]), seed)

    def label(self, index: int) -> int:
        return self.base.label(index)

    def load(self, index: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        own = [n for n in names if n not in self.moved]
        moved = [n for n in names if n in self.moved]
        shared = set(self.base.inputs_of(own)) & set(self.base.inputs_of(moved))
        if shared:
            raise ValueError(f"shuffled pairing: {moved} and {own} both read {sorted(shared)}, which cannot come "
                             "from two samples at once")
        out = dict(self.base.load(index, own)) if own else {}
        if moved:
            out.update(self.base.load(int(self.partner[index]), moved))
        return out

    def source(self, index: int, modality: str) -> str:
        return self.base.source(int(self.partner[index]) if modality in self.moved else index, modality)

    def split_record(self) -> dict:
        return {**self.base.split_record(),
                "shuffled_pairing": {"protocol": SIGNALS["shuffled"], "seed": self.seed, "moved": self.moved,
                                     "partner_index": self.partner.tolist()}}


class ClassMeanOutputs:
    """The teacher's per-class mean outputs, looked up by sample index like a teacher cache."""

    def __init__(self, labels: np.ndarray | Tensor, logits: Tensor, features: list[Tensor]):
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.logits, self.features = logits, features

    def __len__(self) -> int:
        return len(self.labels)

    def lookup(self, index: Tensor, device: torch.device, channels_last: bool = False) -> tuple[Tensor, list[Tensor]]:
        rows = self.labels[index.cpu()]

        def take(means: Tensor) -> Tensor:
            t = means[rows].to(device)
            return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t

        return take(self.logits), [take(f) for f in self.features]


@torch.no_grad()
def class_mean_outputs(teacher: TappedModel, view: ModalityView, num_classes: int, device: torch.device,
                       batch_size: int = 256) -> ClassMeanOutputs:
    """Run the frozen teacher (eval mode) over ``view`` (the training set, unaugmented) and average per class."""
    was_training = teacher.training
    teacher.eval().to(device)
    modality = view.names[0]
    sums: list[Tensor] | None = None
    counts = torch.zeros(num_classes)
    labels = []
    for batch in DataLoader(view, batch_size=batch_size, shuffle=False):
        logits, feats = teacher(batch[modality].to(device))
        y = batch["label"]
        labels.append(y)
        outputs = [logits.float().cpu(), *(f.float().cpu() for f in feats)]
        if sums is None:
            sums = [torch.zeros(num_classes, *o.shape[1:]) for o in outputs]
        for total, o in zip(sums, outputs):
            total.index_add_(0, y, o)
        counts += torch.bincount(y, minlength=num_classes).float()
    teacher.train(was_training)
    means = [s / counts.clamp(min=1).view(-1, *([1] * (s.dim() - 1))) for s in sums]
    return ClassMeanOutputs(torch.cat(labels), means[0], means[1:])

