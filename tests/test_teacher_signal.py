"""The non-label mass a teacher's soft targets carry, against hand-computed values."""

import math

import pytest
import torch

from experiments.teacher_signal import non_label_mass, signal_summary


def test_non_label_mass_matches_hand_computed_softmax():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    e2 = math.exp(2.0)
    expected = torch.tensor([1 - e2 / (e2 + 2), 2 / 3])
    torch.testing.assert_close(non_label_mass(logits, labels), expected)
    # T = 2 halves the logits: 1 − e / (e + 2)
    torch.testing.assert_close(non_label_mass(logits, labels, 2.0)[0], torch.tensor(1 - math.e / (math.e + 2)))


def test_a_memorising_teacher_says_nothing_beyond_the_label_and_temperature_reveals_more():
    labels = torch.arange(10)
    confident = 20.0 * torch.eye(10)  # one-hot-like logits on the label
    assert non_label_mass(confident, labels).max() < 1e-7
    hedging = torch.eye(10) + 0.1 * torch.randn(10, 10, generator=torch.Generator().manual_seed(0))
    masses = [non_label_mass(hedging, labels, t).mean().item() for t in (1.0, 2.0, 4.0, 8.0)]
    assert masses == sorted(masses) and masses[-1] < 0.9  # softening moves mass to the other classes, towards 9/10
    # shifting every logit of a sample by a constant changes nothing
    torch.testing.assert_close(non_label_mass(hedging + 5.0, labels, 4.0), non_label_mass(hedging, labels, 4.0))


def test_signal_summary_and_bad_shapes():
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    summary = signal_summary(logits, torch.tensor([0, 0, 0]), 4.0)
    assert summary["acc"] == pytest.approx(2 / 3)
    assert summary["true_class_prob"] == pytest.approx(torch.softmax(logits, 1)[:, 0].mean().item())
    with pytest.raises(ValueError, match=r"logits must be \(n, classes\)"):
        non_label_mass(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="temperature must be positive"):
        non_label_mass(logits, torch.tensor([0, 0, 0]), 0.0)
