"""Before the student trains: how much of the privileged teacher can a network on the student's input reproduce?

Cross-modal distillation passes on only what the student's modality can
compute (Xue et al., *The Modality Focusing Hypothesis*, ICLR 2023). The
same-modality control teacher — the same model and budget, trained on the
student's modality — is the best available stand-in for "what the student's
input can compute". So, on the alignment probe (a fixed slice of the test
split; the privileged teacher reads its modality, the control teacher the
student's), for each teacher stage that a loss distils from:

* ``cka``: linear CKA between the two teachers' features (Kornblith et al.,
  2019): shared representation, 1 when equal up to rotation and scale;
* ``simcorr``: correlation of their row-normalised Gram matrices' off-diagonal
  entries: how much of SP's target the student's modality can produce;
* ``simcorr_within_class``: the same over pairs of samples of one class only,
  which the labels cannot explain: the instance part of SP's target that the
  student's modality can produce.

Low values say that the privileged teacher's similarities rest on what the
student's input lacks, and predict a small or negative privileged gain.
They are measured on the held-out probe, never used to choose anything.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
from torch import Tensor

from .alignment import linear_cka, similarity_correlation
from .models import TappedModel


def within_class_similarity_correlation(x: Tensor, y: Tensor, labels: Tensor) -> float:
    """Pearson correlation of two row-normalised Grams over distinct pairs (i, j) of the same class only."""
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool)
    if same.sum() < 3:
        raise ValueError("within-class similarity correlation needs at least 3 same-class pairs on the probe")
    return similarity_correlation(x.flatten(1), y.flatten(1), pairs=same)


def teacher_agreement(probe, control: TappedModel) -> dict[str, float]:
    """The metrics above for each distilled teacher stage, control teacher against privileged teacher."""
    feats = probe.features(control)
    out: dict[str, float] = {}
    for t, _ in probe.pairs:
        privileged, own = probe.teacher_pair_features[t], feats[t].flatten(1)
        out[f"cka/t{t}"] = linear_cka(privileged, own)
        out[f"simcorr/t{t}"] = similarity_correlation(privileged, own)
        out[f"simcorr_within_class/t{t}"] = within_class_similarity_correlation(privileged, own, probe.labels)
    return out


def describe_agreement(agreement: dict[str, float]) -> str:
    """'CKA 0.41, similarities r = 0.52 (within class 0.18) at t-1' for each stage."""
    stages = dict.fromkeys(k.split("/", 1)[1] for k in agreement)
    return "; ".join(f"CKA {agreement[f'cka/{t}']:.2f}, similarities r = {agreement[f'simcorr/{t}']:.2f} "
                     f"(within class {agreement[f'simcorr_within_class/{t}']:.2f}) at {t}" for t in stages)


AGREEMENT_FILE = "agreement.jsonl"  # in a comparison folder: one line per (seed, control teacher's modality)


def record_agreement(folder: Path, seed: int, privileged: str, modality: str, agreement: dict[str, float]) -> None:
    """Append one seed's agreement of the privileged teacher with a control teacher (one flushed line)."""
    with open(Path(folder) / AGREEMENT_FILE, "a") as f:
        f.write(json.dumps({"seed": seed, "privileged": privileged, "modality": modality, **agreement}) + "\n")


def read_agreements(folder: Path) -> list[dict]:
    path = Path(folder) / AGREEMENT_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def describe_mean_agreement(records: list[dict]) -> list[str]:
    """One sentence per control modality: the metrics' means over the seeds that measured them."""
    lines = []
    for modality in dict.fromkeys(r["modality"] for r in records):
        mine = [r for r in records if r["modality"] == modality]
        keys = [k for k in mine[0] if "/" in k]
        mean = {k: statistics.fmean(r[k] for r in mine) for k in keys}
        lines.append(f"Teacher agreement, the {mine[0]['privileged']} teacher against the {modality} one on the probe "
                     f"(measured before any student they teach trained), mean over {len(mine)} seed(s): "
                     f"{describe_agreement(mean)}.")
    return lines
