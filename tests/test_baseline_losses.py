"""Baseline losses against their papers' formulas on hand-made tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from pldistill.losses.at import at_loss, attention_map
from pldistill.losses.cc import cc_loss, correlation_matrix
from pldistill.losses.kd import kd_loss
from pldistill.losses.rkd import rkd_angle_loss, rkd_distance_loss


# -- Hinton KD -----------------------------------------------------------------
def test_kd_matches_hand_computed_kl_with_t_squared_scaling():
    t = torch.tensor([[2.0, 0.0]])
    s = torch.tensor([[0.0, 0.0]])
    temperature = 2.0
    p = torch.softmax(t / temperature, 1)[0]  # (e/(e+1), 1/(e+1))
    expected = temperature**2 * sum(p[i] * math.log(p[i] / 0.5) for i in range(2))
    assert kd_loss(t, s, temperature).item() == pytest.approx(expected.item(), rel=1e-6)


def test_kd_is_zero_for_identical_logits_and_shift_invariant():
    z = torch.randn(5, 7)
    assert kd_loss(z, z).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(5, 7)
    torch.testing.assert_close(kd_loss(z, s), kd_loss(z + 3.0, s - 1.0))


def test_kd_refuses_different_label_spaces():
    with pytest.raises(ValueError, match="one label space"):
        kd_loss(torch.randn(4, 10), torch.randn(4, 5))


# -- attention transfer ----------------------------------------------------------
def test_attention_map_is_channel_mean_of_squares_normalised():
    a = torch.zeros(1, 2, 1, 2)
    a[0, 0, 0, 0], a[0, 1, 0, 1] = 3.0, 4.0  # Σ_c A² / c = (4.5, 8) → normalised
    q = attention_map(a)
    norm = math.hypot(4.5, 8.0)
    torch.testing.assert_close(q, torch.tensor([[4.5 / norm, 8.0 / norm]]))


def test_at_is_invariant_to_channel_permutation_and_scale_and_zero_at_identity():
    t, s = torch.randn(3, 8, 4, 4), torch.randn(3, 5, 4, 4)
    assert at_loss(t, t).item() == pytest.approx(0.0, abs=1e-7)
    torch.testing.assert_close(at_loss(t, s), at_loss(t[:, torch.randperm(8)], 2.5 * s[:, torch.randperm(5)]))


def test_at_resizes_the_student_map_when_resolutions_differ():
    t = torch.ones(2, 4, 8, 8)
    s = torch.ones(2, 16, 2, 2)  # uniform attention at any size: zero loss
    assert at_loss(t, s).item() == pytest.approx(0.0, abs=1e-7)
    assert at_loss(torch.randn(2, 4, 8, 8), torch.randn(2, 16, 2, 2)).item() > 0


# -- relational KD ----------------------------------------------------------------
def _orthogonal(d):
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    return q.float()


def test_rkd_distance_is_invariant_to_rotation_scale_and_translation():
    t = torch.randn(6, 5)
    s = 3.0 * t @ _orthogonal(5) + 1.0
    assert rkd_distance_loss(t, s).item() == pytest.approx(0.0, abs=1e-5)
    assert rkd_angle_loss(t, s).item() == pytest.approx(0.0, abs=1e-5)


def test_rkd_distance_matches_hand_computed_value():
    # Teacher: 3 collinear points at 0, 1, 2 → distances (1, 2, 1) twice, mean 4/3.
    t = torch.tensor([[0.0], [1.0], [2.0]])
    s = torch.tensor([[0.0], [1.0], [3.0]])  # distances (1, 3, 2), mean 2
    d_t = torch.tensor([[0, 1, 2], [1, 0, 1], [2, 1, 0]]) / (4 / 3)
    d_s = torch.tensor([[0, 1, 3], [1, 0, 2], [3, 2, 0]]) / 2.0
    assert rkd_distance_loss(t, s).item() == pytest.approx(F.smooth_l1_loss(d_s, d_t).item(), rel=1e-6)


def test_rkd_works_across_widths_and_refuses_tiny_batches():
    assert torch.isfinite(rkd_angle_loss(torch.randn(4, 32), torch.randn(4, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        rkd_distance_loss(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match="at least 3"):
        rkd_angle_loss(torch.randn(2, 4), torch.randn(2, 4))


def test_rkd_has_no_nan_gradient_on_identical_samples():
    s = torch.ones(4, 3, requires_grad=True)
    (rkd_distance_loss(torch.randn(4, 3), s) + rkd_angle_loss(torch.randn(4, 3), s)).backward()
    assert torch.isfinite(s.grad).all()


# -- correlation congruence --------------------------------------------------------
def test_cc_correlation_is_taylor_expansion_of_gaussian_kernel():
    e = F.normalize(torch.randn(5, 6, dtype=torch.float64), dim=1)
    gamma = 0.4
    exact = torch.exp(-gamma * torch.cdist(e, e).pow(2))  # unit vectors: ‖x−y‖² = 2 − 2x·y
    approx = correlation_matrix(e, gamma, order=8).double()
    torch.testing.assert_close(approx, exact, atol=1e-5, rtol=1e-5)


def test_cc_is_zero_at_identity_and_width_agnostic():
    t = torch.randn(6, 10)
    assert cc_loss(t, t).item() == pytest.approx(0.0, abs=1e-7)
    assert cc_loss(t, torch.randn(6, 3)).item() > 0


def test_baseline_losses_gradcheck_in_float64():
    t = torch.randn(4, 3, dtype=torch.float64)

    def cc64(s):
        def corr(x):
            e = F.normalize(x, dim=1)
            d = e @ e.t()
            return sum(math.exp(-0.8) * 0.8**p / math.factorial(p) * d.pow(p) for p in range(3))

        return (corr(t) - corr(s)).pow(2).sum() / 16

    s = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cc64, (s,))
    assert cc_loss(t, s).item() == pytest.approx(cc64(s).item(), rel=1e-5)


def test_losses_return_float32_from_bfloat16_inputs():
    t = torch.randn(4, 8, 2, 2).bfloat16()
    s = torch.randn(4, 4, 2, 2).bfloat16()
    for value in (at_loss(t, s), rkd_distance_loss(t, s), rkd_angle_loss(t, s), cc_loss(t, s),
                  kd_loss(t.flatten(1)[:, :5], s.flatten(1)[:, :5])):
        assert value.dtype == torch.float32


# -- FitNets ----------------------------------------------------------------------
def test_fitnet_loss_is_mse_after_resizing_to_the_teacher():
    from pldistill.losses import fitnet_loss

    t = torch.full((2, 3, 4, 4), 2.0)
    s = torch.full((2, 3, 2, 2), 1.0)  # constant map: resizing keeps 1.0 → MSE = 1
    assert fitnet_loss(t, s).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="channels"):
        fitnet_loss(t, torch.ones(2, 5, 4, 4))


def test_fitnet_hint_regressor_maps_channels_and_learns():
    from pldistill.losses import FitNetHint

    hint = FitNetHint(student_channels=5, teacher_channels=3)
    t, s = torch.randn(4, 3, 4, 4), torch.randn(4, 5, 2, 2)
    before = hint(t, s).item()
    opt = torch.optim.SGD(hint.parameters(), lr=0.1)
    for _ in range(20):
        loss = hint(t, s)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert hint(t, s).item() < before
