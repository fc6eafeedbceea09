"""The teacher-agreement diagnostic (teacher_agreement.py): what of the privileged teacher the student's input carries."""

from __future__ import annotations

import pytest
import torch

from pldistill.teacher_agreement import describe_agreement, teacher_agreement, within_class_similarity_correlation


def test_within_class_correlation_by_hand():
    # three samples, class [0, 0, 0] plus one of class 1: the same-class pairs are (0,1), (0,2), (1,2) both ways
    labels = torch.tensor([0, 0, 0, 1])
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [5.0, 5.0]])
    y = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    # normalised rows: x: (1,0), (.707,.707), (0,1) → pairs 01: .707, 02: 0, 12: .707
    #                  y: (.707,.707), (1,0), (0,1) → pairs 01: .707, 02: .707, 12: 0
    a = torch.tensor([0.7071, 0.0, 0.7071])
    b = torch.tensor([0.7071, 0.7071, 0.0])
    expected = torch.corrcoef(torch.stack([a, b]))[0, 1].item()  # −0.5
    assert within_class_similarity_correlation(x, y, labels) == pytest.approx(expected, abs=1e-4)
    assert within_class_similarity_correlation(x, 3 * x, labels) == pytest.approx(1.0)  # scale does not matter
    with pytest.raises(ValueError, match="same-class pairs"):
        within_class_similarity_correlation(x[:2], y[:2], torch.tensor([0, 1]))


class _Probe:
    """What teacher_agreement reads of an AlignmentProbe: the privileged features at the paired stages."""

    def __init__(self, privileged: torch.Tensor, own: torch.Tensor, labels: torch.Tensor):
        self.pairs = [(1, 3)]
        self.teacher_pair_features = {1: privileged}
        self.labels = labels
        self._own = own

    def features(self, _model):
        return [None, self._own]


def test_a_control_teacher_equal_to_the_privileged_one_agrees_fully_and_noise_does_not():
    torch.manual_seed(0)
    labels = torch.arange(64) % 4
    privileged = torch.randn(64, 16)
    same = teacher_agreement(_Probe(privileged, privileged @ torch.linalg.qr(torch.randn(16, 16))[0], labels), None)
    assert same == {"cka/t1": pytest.approx(1.0), "simcorr/t1": pytest.approx(1.0),
                    "simcorr_within_class/t1": pytest.approx(1.0)}  # a rotation of the same features
    noise = teacher_agreement(_Probe(privileged, torch.randn(64, 16), labels), None)
    assert abs(noise["simcorr_within_class/t1"]) < 0.2 and noise["cka/t1"] < 0.5
    assert describe_agreement(same) == "CKA 1.00, similarities r = 1.00 (within class 1.00) at t1"
