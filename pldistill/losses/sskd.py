"""SSKD: Knowledge Distillation Meets Self-Supervision (Xu, Liu, Li & Loy, ECCV 2020).

Every batch of b samples is followed by its 90°, 180° and 270° rotations
(``ROTATIONS``: the trainer rotates the teacher's modality exactly as the
student's). A self-supervision (SS) head, a two-layer MLP on the pooled last
stage, maps each sample to an embedding; the teacher's head is trained first
on its own modality with its backbone frozen, to tell which original each
rotated copy came from (contrastive prediction: softmax over the cosine
similarities A_ij = cos(φ(x̃_i), φ(x_j)) / τ_ss, target j = the original of i).
The student then minimises, beside its cross-entropy on the originals,

    L = w_kd · τ²   · KL(σ(z_t(x)/τ)        ‖ σ(z_s(x)/τ))            originals
      + w_tf · τ_tf² · KL(σ(z_t(x̃)/τ_tf)   ‖ σ(z_s(x̃)/τ_tf))        rotated copies, kept by rank
      + w_ss · τ_ss² · KL(σ(A_t(x̃)/τ_ss)   ‖ σ(A_s(x̃)/τ_ss))        SS similarities, kept by rank

with A_t, A_s the (3b × b) similarity matrices of the teacher's and the
student's SS embeddings. Rows on which the teacher errs are filtered: a row's
error is the rank of its target (the true class for the tf term, the original
sample for the ss term) in the teacher's scores; every correct row is kept,
and of the wrong rows the fraction ``ratio_tf`` / ``ratio_ss`` with the
smallest rank (the teacher's nearest misses).

The paper's weights are CE 0.1, KD 0.9, TF 2.7, SS 10 with τ = τ_tf = 4 and
τ_ss = 0.5, ratio_tf = 1.0, ratio_ss = 0.75 (as its public code sets them).
Cross-entropy keeps weight 1 here, so the defaults are the paper's ratios to
CE: w_kd = 9, w_tf = 27, w_ss = 100, with the entry's weight 1 (with AdamW the
common factor 10 only changes how weight decay weighs in).

Uncertain, and chosen: the SS head as Linear–BN–ReLU–Linear of the pooled
feature's width; the teacher head trained for ``ss_epochs`` passes over the
training set (features of the frozen teacher on the unaugmented rotations,
Adam at lr 1e-3) — the paper's schedule for it was not established here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from .pooling import global_pool
from .precision import at_least_float32
from .registry import LossParams, LossSpec, register_loss
from .batch_views import BatchViews

__all__ = ["ROTATIONS", "SSKD", "keep_by_rank", "rotations", "sskd_loss", "target_rank"]


def rotations(x: Tensor) -> Tensor:
    """(b, c, h, w) → (4b, c, h, w): the batch, then its 90°, 180° and 270° rotations."""
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotations need square (b, c, h, w) maps, not {tuple(x.shape)}")
    return torch.cat([x] + [torch.rot90(x, k, dims=(2, 3)) for k in (1, 2, 3)])


ROTATIONS = BatchViews("rotations", rotations, copies=4, kinds=("image", "depth", "stack"),
                       why="a rotated spectrogram or feature vector is not the same sample seen otherwise")


def target_rank(scores: Tensor, targets: Tensor) -> Tensor:
    """Per row, the rank of the target among the scores (0: the teacher's top-1 is right)."""
    return (scores > scores.gather(1, targets[:, None])).sum(1)


def keep_by_rank(rank: Tensor, ratio: float) -> Tensor:
    """Indices of the rows kept: every rank-0 row, and of the others the ``ratio`` with the smallest rank."""
    order = torch.argsort(rank, stable=True)
    wrong = int((rank > 0).sum())
    return torch.sort(order[: len(rank) - wrong + int(wrong * ratio)]).values


def _tempered_kl_rows(teacher: Tensor, student: Tensor, temperature: float) -> Tensor:
    if len(teacher) == 0:
        return student.sum() * 0.0
    t = F.log_softmax(teacher / temperature, 1)
    s = F.log_softmax(student / temperature, 1)
    return F.kl_div(s, t, reduction="batchmean", log_target=True) * temperature ** 2


def similarity_to_originals(embeddings: Tensor, copies: int) -> Tensor:
    """(copies·b, d) → ((copies−1)·b, b): cosine of each transformed sample's embedding to each original's."""
    b = len(embeddings) // copies
    return F.normalize(embeddings[b:], dim=1) @ F.normalize(embeddings[:b], dim=1).t()


def sskd_loss(teacher_logits: Tensor, teacher_ss: Tensor, student_logits: Tensor, student_ss: Tensor,
              labels: Tensor, *, temperature: float = 4.0, tf_temperature: float = 4.0, ss_temperature: float = 0.5,
              ratio_tf: float = 1.0, ratio_ss: float = 0.75, kd: float = 9.0, tf: float = 27.0,
              ss: float = 100.0, copies: int = 4) -> Tensor:
    """The three SSKD terms on a batch of ``copies`` × b rows (originals first); CE is the trainer's."""
    b = len(labels)
    if not len(teacher_logits) == len(student_logits) == len(teacher_ss) == len(student_ss) == copies * b:
        raise ValueError(f"SSKD: teacher and student must cover the same batch of {copies} × {b} samples (the "
                         f"originals, then each transformed copy); got {len(teacher_logits)} and {len(student_logits)}")
    t_logits, s_logits = at_least_float32(teacher_logits), at_least_float32(student_logits)
    kd_term = _tempered_kl_rows(t_logits[:b], s_logits[:b], temperature)
    rotated_labels = labels.repeat(copies - 1)
    keep_tf = keep_by_rank(target_rank(t_logits[b:], rotated_labels), ratio_tf)
    tf_term = _tempered_kl_rows(t_logits[b:][keep_tf], s_logits[b:][keep_tf], tf_temperature)
    t_sim = similarity_to_originals(at_least_float32(teacher_ss), copies)
    s_sim = similarity_to_originals(at_least_float32(student_ss), copies)
    originals = torch.arange(b, device=labels.device).repeat(copies - 1)
    keep_ss = keep_by_rank(target_rank(t_sim, originals), ratio_ss)
    ss_term = _tempered_kl_rows(t_sim[keep_ss], s_sim[keep_ss], ss_temperature)
    return kd * kd_term + tf * tf_term + ss * ss_term


def ss_head(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                         nn.Linear(width, width))


class SSKD(nn.Module):
    """The student's SS head (trained with the student) and the teacher's (fitted to the frozen teacher first)."""

    def __init__(self, student_channels: int, teacher_channels: int, **params):
        super().__init__()
        self.params = params
        self.student_head = ss_head(student_channels)
        self.teacher_head = ss_head(teacher_channels)

    def forward(self, teacher: tuple[Tensor, Tensor], student: tuple[Tensor, Tensor], labels: Tensor) -> Tensor:
        (t_logits, t_feat), (s_logits, s_feat) = teacher, student
        with torch.autocast(device_type=s_logits.device.type, enabled=False):
            self.teacher_head.eval()
            dtype = self.student_head[0].weight.dtype
            with torch.no_grad():
                t_ss = self.teacher_head(global_pool(t_feat).to(dtype))
            s_ss = self.student_head(global_pool(s_feat).to(dtype))
            fit = {k: v for k, v in self.params.items() if k != "ss_epochs"}
            return sskd_loss(t_logits, t_ss, s_logits, s_ss, labels, copies=ROTATIONS.copies, **fit)

    def fit_to_teacher(self, features: "callable", batches, device: torch.device) -> list[float]:
        """Train the teacher's SS head on the frozen teacher's pooled features of rotated batches.

        ``features(x)`` → the teacher's tapped feature for a batch of its modality;
        ``batches`` yields such batches (originals only). Returns the epoch losses.
        """
        head = self.teacher_head.to(device).train()
        optimiser = torch.optim.Adam(head.parameters(), lr=1e-3)
        tau = self.params.get("ss_temperature", 0.5)
        losses = []
        cached = []
        with torch.no_grad():
            for x in batches:
                cached.append(global_pool(features(rotations(x.to(device)))).float())
        for _ in range(self.params.get("ss_epochs", 5)):
            total = 0.0
            for feat in cached:
                b = len(feat) // ROTATIONS.copies
                sim = similarity_to_originals(head(feat), ROTATIONS.copies) / tau
                loss = F.cross_entropy(sim, torch.arange(b, device=device).repeat(ROTATIONS.copies - 1))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item()
            losses.append(total / max(len(cached), 1))
        head.eval().requires_grad_(False)
        return losses


class SSKDParams(LossParams):
    temperature: float = Field(4.0, gt=0, description="τ of the KD term on the original samples")
    tf_temperature: float = Field(4.0, gt=0, description="τ_tf of the KD term on the rotated copies")
    ss_temperature: float = Field(0.5, gt=0, description="τ_ss of the similarity (self-supervision) term")
    ratio_tf: float = Field(1.0, ge=0, le=1, description="share of the rotated copies the teacher misclassifies "
                            "that are still distilled (nearest misses first)")
    ratio_ss: float = Field(0.75, ge=0, le=1, description="share of the rotated copies whose original the "
                            "teacher's SS head misses that are still distilled")
    kd: float = Field(9.0, ge=0, description="w_kd, relative to CE (the paper's 0.9 / 0.1)")
    tf: float = Field(27.0, ge=0, description="w_tf, relative to CE (the paper's 2.7 / 0.1)")
    ss: float = Field(100.0, ge=0, description="w_ss, relative to CE (the paper's 10 / 0.1)")
    ss_epochs: int = Field(5, ge=1, description="passes over the training set that fit the teacher's SS head")


register_loss(LossSpec(
    name="sskd", display="SSKD", what="self-supervised KD on rotated copies",
    citation="Xu, Liu, Li & Loy, Knowledge Distillation Meets Self-Supervision, ECCV 2020",
    learned=SSKD, inputs="outputs", params=SSKDParams, views=ROTATIONS,
    symbols={"temperature": "τ", "ss_temperature": "τ_ss"},
    preset={"weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]},
))
