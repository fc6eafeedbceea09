"""LS-KD: KD on per-sample Z-scored logits, against hand-computed values and the invariances the paper states."""

import math

import pytest
import torch

from pldistill.losses.kd import kd_loss
from pldistill.losses.lskd import lskd_loss, standardise_logits


def test_standardised_logits_have_zero_mean_and_unit_unbiased_std():
    z = standardise_logits(torch.tensor([[1.0, 2.0, 3.0]]))
    torch.testing.assert_close(z, torch.tensor([[-1.0, 0.0, 1.0]]), atol=1e-6, rtol=0)  # std of 1,2,3 is 1


def test_hand_computed_value_on_two_classes():
    # two classes: Z maps any unequal pair to ±1/√2 (unbiased std of (a, b) is |a − b|/√2)
    t, s = torch.tensor([[3.0, 1.0]]), torch.tensor([[0.0, 5.0]])
    tau = 2.0
    zt, zs = torch.tensor([1.0, -1.0]) / math.sqrt(2), torch.tensor([-1.0, 1.0]) / math.sqrt(2)
    p, q = torch.softmax(zt / tau, 0), torch.softmax(zs / tau, 0)
    expected = tau**2 * (p * (p.log() - q.log())).sum()
    assert lskd_loss(t, s, tau).item() == pytest.approx(expected.item(), rel=1e-5)


def test_invariant_to_shift_and_positive_scale_of_either_side_where_kd_is_not():
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g)
    base = lskd_loss(t, s)
    moved_t, moved_s = 5.0 * t + 3.0, 0.2 * s - 7.0
    assert lskd_loss(moved_t, moved_s).item() == pytest.approx(base.item(), rel=1e-4)
    assert kd_loss(moved_t, moved_s).item() != pytest.approx(kd_loss(t, s).item(), rel=1e-2)
    assert lskd_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert lskd_loss(t, 3.0 * t + 1.0).item() == pytest.approx(0.0, abs=1e-5)  # the same relations: nothing to learn


def test_different_label_spaces_are_refused():
    with pytest.raises(ValueError, match="one label space"):
        lskd_loss(torch.zeros(2, 10), torch.zeros(2, 5))
