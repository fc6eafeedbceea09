"""How closely does a student's representation line up with its teacher's?

Each metric takes two feature matrices of the *same n samples* — the teacher's
(n × d_t) and the student's (n × d_s), any widths; conv maps are flattened —
and returns one number. Computed in float64 on a fixed probe set: these are
measurements, not training signals, so no gradients and no autocast.

* ``linear_cka``: centred kernel alignment with linear kernels (Kornblith et
  al., ICML 2019); 1 for representations equal up to rotation and scale.
  ``unbiased=True`` uses the unbiased HSIC estimator (Song et al., 2012),
  which is ~0 for unrelated features even at small n.
* ``similarity_correlation``: Pearson correlation of the off-diagonal entries
  of the two row-normalised Gram matrices — the very matrices SP matches.
* ``mutual_knn``: mean fraction of each sample's k cosine nearest neighbours
  that both representations share (Huh et al., ICML 2024).
* ``prediction_agreement``: share of samples whose top-1 classes agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .similarity import similarity_matrix


def _matrix(x: Tensor) -> Tensor:
    return x.detach().reshape(x.shape[0], -1).to(torch.float64)


def _check(x: Tensor, y: Tensor, minimum: int, what: str) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{what} compares the same samples: got {x.shape[0]} and {y.shape[0]} rows")
    if x.shape[0] < minimum:
        raise ValueError(f"{what} needs at least {minimum} samples, got {x.shape[0]}")


def _centred_gram(x: Tensor) -> Tensor:
    x = x - x.mean(0, keepdim=True)
    return x @ x.t()


def _hsic_unbiased(k: Tensor, l: Tensor) -> Tensor:
    n = k.shape[0]
    k = k - torch.diag(torch.diagonal(k))
    l = l - torch.diag(torch.diagonal(l))
    kl = k @ l
    return (
        torch.trace(kl) + k.sum() * l.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * kl.sum()
    ) / (n * (n - 3))


def centred_gram(x: Tensor) -> Tensor:
    """K = X̄X̄ᵀ of the column-centred features, float64: compute once per layer, reuse for every pair."""
    return _centred_gram(_matrix(x))


def cka_from_grams(k: Tensor, l: Tensor, unbiased: bool = False) -> float:
    """CKA(X, Y) = HSIC(K, L) / √(HSIC(K, K) · HSIC(L, L)) from centred Grams K = XXᵀ, L = YYᵀ."""
    if unbiased:
        hsic = _hsic_unbiased
    else:  # centred Grams: tr(KHLH) = ⟨K, L⟩; the 1/(n−1)² factors cancel
        hsic = lambda a, b: (a * b).sum()  # noqa: E731
    denominator = torch.sqrt(hsic(k, k) * hsic(l, l))
    if not denominator > 0:
        return 0.0  # a constant representation aligns with nothing
    return float(hsic(k, l) / denominator)


def linear_cka(x: Tensor, y: Tensor, unbiased: bool = False) -> float:
    _check(x, y, 4 if unbiased else 2, "CKA")
    return cka_from_grams(centred_gram(x), centred_gram(y), unbiased)


def cka_grid(teacher: list[Tensor], student: list[Tensor], unbiased: bool = False) -> Tensor:
    """CKA of every teacher stage (rows) against every student stage (columns)."""
    k, l = [centred_gram(t) for t in teacher], [centred_gram(s) for s in student]
    return torch.tensor([[cka_from_grams(a, b, unbiased) for b in l] for a in k])


def _off_diagonal(m: Tensor) -> Tensor:
    n = m.shape[0]
    return m.flatten()[1:].view(n - 1, n + 1)[:, :-1].flatten()


def similarity_correlation(x: Tensor, y: Tensor, pairs: Tensor | None = None) -> float:
    """Pearson correlation of the two row-normalised Grams over all distinct pairs, or the (i, j) in ``pairs``."""
    _check(x, y, 3, "similarity correlation")
    gx, gy = similarity_matrix(_matrix(x)), similarity_matrix(_matrix(y))
    a, b = (_off_diagonal(gx), _off_diagonal(gy)) if pairs is None else (gx[pairs], gy[pairs])
    a, b = a - a.mean(), b - b.mean()
    denominator = a.norm() * b.norm()
    return float((a @ b) / denominator) if denominator > 0 else 0.0


def mutual_knn(x: Tensor, y: Tensor, k: int = 10) -> float:
    _check(x, y, k + 1, f"mutual {k}-NN")

    def neighbours(m: Tensor) -> Tensor:
        unit = F.normalize(m, dim=1)
        sim = unit @ unit.t()
        sim.fill_diagonal_(-float("inf"))  # a sample is not its own neighbour
        return sim.topk(k, dim=1).indices

    nx, ny = neighbours(_matrix(x)), neighbours(_matrix(y))
    shared = (nx.unsqueeze(2) == ny.unsqueeze(1)).any(2).sum(1)
    return float(shared.double().mean() / k)


def prediction_agreement(teacher_logits: Tensor, student_logits: Tensor) -> float:
    if teacher_logits.shape != student_logits.shape:
        raise ValueError("prediction agreement needs one label space: logits of equal shape")
    return float((teacher_logits.argmax(1) == student_logits.argmax(1)).double().mean())
