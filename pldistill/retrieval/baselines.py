"""What learned hash codes are measured against: chance, a linear cross-modal fit, and sign of an embedding.

* ``random_codes``: seeded ±1 codes, drawn independently per modality — the
  floor every score is read against.
* ``CCAHashing``: canonical correlation analysis (scikit-learn) fitted on
  the training pairs; the b canonical projections of each modality, by
  sign, are its codes. This is the classic linear cross-modal hashing
  baseline: correlated directions of the two modalities become shared bits.
* ``sign_codes``: any embedding, centred by a reference mean and cut by sign,
  e.g. a distilled student's pooled features against its teacher's. Features
  after a ReLU are all ≥ 0, so without centring every bit would be +1.
"""

from __future__ import annotations

import numpy as np

from .metrics import to_codes

MAX_CCA_INPUTS = 128  # wider inputs (images) are reduced by PCA first: CCA on raw pixels is slow and ill-posed


def random_codes(count: int, bits: int, seed: int) -> np.ndarray:
    """``count`` codes of ``bits`` independent fair ±1 bits (int8), the same for the same seed."""
    return to_codes(np.random.default_rng(seed).standard_normal((count, bits)))


def sign_codes(embedding: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """±1 codes of ``embedding − centre`` (centre: e.g. the training split's mean embedding)."""
    return to_codes(np.asarray(embedding) - np.asarray(centre))


class CCAHashing:
    """CCA fitted on paired training features of X and Y; ``codes_x`` / ``codes_y`` give b-bit codes."""

    def __init__(self, bits: int, seed: int = 0, max_inputs: int = MAX_CCA_INPUTS, max_iter: int = 1000):
        self.bits, self.seed, self.max_inputs, self.max_iter = bits, seed, max_inputs, max_iter

    def _reducer(self, features: np.ndarray):
        """A PCA to ``max_inputs`` dimensions (fewer than samples) for wide features, else None (as they are)."""
        PCA = _sklearn("decomposition").PCA

        dims = min(self.max_inputs, len(features))
        if features.shape[1] <= dims:
            return None
        return PCA(dims, svd_solver="randomized", random_state=self.seed).fit(features)

    @staticmethod
    def _reduce(reducer, features: np.ndarray) -> np.ndarray:
        return features if reducer is None else reducer.transform(features)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "CCAHashing":
        CCA = _sklearn("cross_decomposition").CCA
        x, y = _flat(x), _flat(y)
        self.reduce_x, self.reduce_y = self._reducer(x), self._reducer(y)
        x, y = self._reduce(self.reduce_x, x), self._reduce(self.reduce_y, y)
        possible = min(len(x), x.shape[1], y.shape[1])
        if self.bits > possible:
            raise ValueError(f"CCA gives at most {possible} components here (samples and each modality's "
                             f"dimensions bound it), fewer than the {self.bits} bits asked for")
        self.cca = CCA(n_components=self.bits, max_iter=self.max_iter).fit(x, y)
        return self

    def codes_x(self, x: np.ndarray) -> np.ndarray:
        return to_codes(self.cca.transform(self._reduce(self.reduce_x, _flat(x))))

    def codes_y(self, y: np.ndarray) -> np.ndarray:
        # scikit-learn transforms Y only beside an X: a zero X of the right width, whose scores are discarded
        x_width = self.cca.x_weights_.shape[0]
        _, scores = self.cca.transform(np.zeros((len(y), x_width)), self._reduce(self.reduce_y, _flat(y)))
        return to_codes(scores)


def _flat(features: np.ndarray) -> np.ndarray:
    """One row per sample (images flattened), as float64 for scikit-learn."""
    features = np.asarray(features, dtype=np.float64)
    return features.reshape(len(features), -1)


def _sklearn(module: str):
    """A scikit-learn module, or an ImportError saying how to get it (it is a dev dependency, not pldistill's)."""
    import importlib

    try:
        return importlib.import_module(f"sklearn.{module}")
    except ModuleNotFoundError:
        raise ImportError("the CCA baseline needs scikit-learn: pip install -e '.[dev]' "
                          "(or pip install scikit-learn)") from None
