"""The alignment probe: a fixed slice of the validation split on which teacher and student meet.

The teacher is frozen, so its features, Gram matrices and logits on the probe
are computed once; each ``measure`` only runs the student forward (no
gradients) and compares. Used at the end of every epoch of every student, so a
scratch student's curves are the baseline a distilled student's are read
against. The teacher reads its privileged modality here — a training-time
diagnostic; the student's own inputs are only its restricted modality.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from .alignment import centred_gram, cka_from_grams, mutual_knn, prediction_agreement, similarity_correlation
from .data import ModalityView
from .similarity import similarity_matrix
from .models import TappedModel, num_stages


@dataclass
class ProbeSnapshot:
    """What the pictures need, saved as ``alignment/<student>.npz`` in the run folder."""

    cka_grid: np.ndarray  # teacher stages × student stages
    teacher_similarity: np.ndarray  # row-normalised Gram of the last paired layer, samples sorted by class
    student_similarity: np.ndarray
    labels: np.ndarray  # sorted

    def save(self, path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **self.__dict__)

    @classmethod
    def load(cls, path) -> "ProbeSnapshot":
        with np.load(path) as f:
            return cls(**{k: f[k] for k in ("cka_grid", "teacher_similarity", "student_similarity", "labels")})


class AlignmentProbe:
    def __init__(
        self,
        dataset,
        teacher: TappedModel,
        teacher_modality: str,
        student_modality: str,
        pairs: list[tuple[int, int]],
        size: int,
        knn: int,
        device: torch.device,
        channels_last: bool,
        unbiased: bool = False,
        transform=None,
        depth_encoding: str = "metric",
    ):
        self.student_modality, self.knn, self.device, self.unbiased = student_modality, knn, device, unbiased
        self.memory = torch.channels_last if channels_last else torch.contiguous_format
        view = ModalityView(dataset, list(dict.fromkeys([student_modality, teacher_modality])), transform,
                            depth_encoding)
        subset = torch.utils.data.Subset(view, range(min(size, len(dataset))))
        batch = next(iter(DataLoader(subset, batch_size=len(subset))))
        self.labels = batch["label"]
        self.order = torch.argsort(self.labels, stable=True)  # pictures group samples by class
        self.inputs = batch[student_modality]
        n_t = num_stages(teacher.model)
        t_logits, t_feats = self._forward(TappedModel(teacher.model, range(n_t)), batch[teacher_modality])
        self.teacher_logits = t_logits
        self.teacher_grams = [centred_gram(f) for f in t_feats]
        if not pairs:
            raise ValueError("the alignment probe needs at least one (teacher stage, student stage) pair")
        self.pairs = [(p_t % n_t, p_s) for p_t, p_s in pairs]
        self.teacher_pair_features = {t: t_feats[t].flatten(1) for t, _ in self.pairs}
        self.snapshot: ProbeSnapshot | None = None

    @torch.no_grad()
    def _forward(self, model: TappedModel, inputs: Tensor) -> tuple[Tensor, list[Tensor]]:
        was_training = model.training
        # one memory layout whatever the model's history (trained here or loaded): same kernels, same numbers
        model.to(self.device, memory_format=self.memory).eval()
        x = inputs.to(self.device).contiguous(memory_format=self.memory) if inputs.dim() == 4 else inputs
        logits, feats = [], []
        for chunk in x.split(128):
            out, fs = model(chunk.to(self.device))
            logits.append(out.float().cpu())
            feats.append([f.float().cpu() for f in fs])
        model.train(was_training)
        return torch.cat(logits), [torch.cat(stage) for stage in zip(*feats)]

    def features(self, model: TappedModel, inputs: Tensor | None = None) -> list[Tensor]:
        """Every stage's features of ``model`` on the probe (default: the student's modality's inputs)."""
        return self._forward(TappedModel(model.model, range(num_stages(model.model))),
                             self.inputs if inputs is None else inputs)[1]

    def measure(self, student: TappedModel) -> dict[str, float]:
        """Alignment scalars for every paired layer, plus the full CKA grid kept for the pictures."""
        start = time.perf_counter()
        n_s = num_stages(student.model)
        s_logits, s_feats = self._forward(TappedModel(student.model, range(n_s)), self.inputs)
        s_grams = [centred_gram(f) for f in s_feats]
        grid = np.array([[cka_from_grams(k, l, self.unbiased) for l in s_grams] for k in self.teacher_grams])
        out: dict[str, float] = {}
        for t, s in self.pairs:
            s = s % n_s
            name = f"t{t}-s{s}"
            t_f, s_f = self.teacher_pair_features[t], s_feats[s].flatten(1)
            out[f"align/cka/{name}"] = float(grid[t, s])
            out[f"align/simcorr/{name}"] = similarity_correlation(t_f, s_f)
            out[f"align/mknn/{name}"] = mutual_knn(t_f, s_f, self.knn)
        out["align/cka_grid_mean"] = float(grid.mean())
        if s_logits.shape == self.teacher_logits.shape:
            out["align/agreement"] = prediction_agreement(self.teacher_logits, s_logits)
        t_last, s_last = self.pairs[-1]
        o = self.order
        self.snapshot = ProbeSnapshot(
            cka_grid=grid,
            teacher_similarity=similarity_matrix(self.teacher_pair_features[t_last][o]).numpy(),
            student_similarity=similarity_matrix(s_feats[s_last % n_s].flatten(1)[o]).numpy(),
            labels=self.labels[o].numpy(),
        )
        out["align/seconds"] = time.perf_counter() - start
        return out
