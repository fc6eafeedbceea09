"""Cross-modal retrieval, a task beside classification: hash two paired modalities into one Hamming space.

``hashing``: coupled networks trained with the multimodal similarity-preserving
hashing loss (Masci et al., TPAMI 2014); ``metrics``: exact Hamming ranking,
mAP, precision@k, partner recall@k; ``baselines``: random codes, CCA, sign of
an embedding. docs/retrieval.md tells how to run the experiment.
"""

from .baselines import CCAHashing, random_codes, sign_codes
from .hashing import CoupledHashing, HashingNet, MMSPHLoss, build_hashing_net, collect_outputs, train_coupled
from .metrics import (direction_scores, hamming_distances, hamming_ranking, mean_average_precision, pack_codes,
                      partner_recall_at_k, precision_at_k, relevance, to_codes)

__all__ = [
    "CCAHashing", "CoupledHashing", "HashingNet", "MMSPHLoss", "build_hashing_net", "collect_outputs",
    "direction_scores", "hamming_distances", "hamming_ranking", "mean_average_precision", "pack_codes",
    "partner_recall_at_k", "precision_at_k", "random_codes", "relevance", "sign_codes", "to_codes",
    "train_coupled",
]
