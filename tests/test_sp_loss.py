import math

import numpy as np
import pytest
import torch

from pldistill.losses import similarity_matrix, sp_loss


def sp_reference(a_t: np.ndarray, a_s: np.ndarray) -> float:
    """Independent NumPy transcription of Tung & Mori's Eq. (2)-(4), with explicit loops."""
    b = a_t.shape[0]
    total = 0.0
    mats = []
    for a in (a_t.reshape(b, -1), a_s.reshape(b, -1)):
        g = np.zeros((b, b))
        for i in range(b):
            for j in range(b):
                g[i, j] = float(np.dot(a[i], a[j]))
        for i in range(b):
            g[i] /= math.sqrt(sum(x * x for x in g[i]))
        mats.append(g)
    for i in range(b):
        for j in range(b):
            total += (mats[0][i, j] - mats[1][i, j]) ** 2
    return total / b**2


def test_sp_loss_matches_hand_computed_value():
    # Teacher: orthogonal samples -> G = I. Student: identical samples -> rows (1/√2, 1/√2).
    # ‖I − S‖²_F / 4 = 2((1 − 1/√2)² + 1/2) / 4 = (2 − √2) / 2.
    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    assert sp_loss(teacher, student).item() == pytest.approx((2 - math.sqrt(2)) / 2, abs=1e-6)


def test_sp_loss_matches_reference_on_mismatched_conv_features():
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(6, 8, 3, 3, generator=g)  # wide, small spatial
    student = torch.randn(6, 4, 5, 5, generator=g)  # narrow, larger spatial
    expected = sp_reference(teacher.numpy().astype(np.float64), student.numpy().astype(np.float64))
    assert sp_loss(teacher, student).item() == pytest.approx(expected, rel=1e-5)


def test_similarity_matrix_rows_are_unit_norm():
    g = similarity_matrix(torch.randn(5, 7))
    assert g.shape == (5, 5)
    torch.testing.assert_close(g.norm(dim=1), torch.ones(5))


def test_sp_loss_is_invariant_to_feature_permutation():
    teacher, student = torch.randn(8, 16, 2, 2), torch.randn(8, 24, 3, 3)
    perm_t = torch.randperm(16 * 4)
    perm_s = torch.randperm(24 * 9)
    shuffled_t = teacher.reshape(8, -1)[:, perm_t]
    shuffled_s = student.reshape(8, -1)[:, perm_s]
    torch.testing.assert_close(sp_loss(teacher, student), sp_loss(shuffled_t, shuffled_s))


def test_sp_loss_is_invariant_to_global_scale_and_zero_at_identity():
    teacher = torch.randn(8, 32)
    assert sp_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    assert sp_loss(teacher, 7.5 * teacher).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.randn(8, 10)
    torch.testing.assert_close(sp_loss(teacher, student), sp_loss(3 * teacher, 0.1 * student))


def test_sp_loss_is_equivariant_to_batch_order():
    teacher, student = torch.randn(8, 12), torch.randn(8, 20)
    order = torch.randperm(8)
    torch.testing.assert_close(sp_loss(teacher, student), sp_loss(teacher[order], student[order]))


def test_sp_loss_depends_on_relations_across_spatial_size_mismatch():
    # The same relational structure at two resolutions gives zero loss.
    base = torch.randn(6, 3, 2, 2)
    upsampled = base.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 4x4, G scales by 4
    assert sp_loss(base, upsampled).item() == pytest.approx(0.0, abs=1e-6)


def test_sp_loss_is_bounded_by_four_over_b():
    for b in (2, 5, 32):
        value = sp_loss(torch.randn(b, 9), torch.randn(b, 4)).item()
        assert 0.0 <= value <= 4.0 / b


def test_sp_loss_gradcheck_float64():
    # float64 passes through the loss untouched, so the training function itself is checked
    teacher = torch.randn(4, 5, dtype=torch.float64)
    student = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    assert sp_loss(teacher, student).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda s: sp_loss(teacher, s), (student,))


def test_sp_loss_is_float32_under_low_precision_inputs():
    teacher = torch.randn(4, 8).to(torch.bfloat16)
    student = torch.randn(4, 8).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = sp_loss(teacher, student)
    assert value.dtype == torch.float32


def test_sp_loss_has_no_nan_on_zero_or_identical_activations():
    zeros = torch.zeros(4, 6, requires_grad=True)
    identical = torch.ones(4, 6)
    value = sp_loss(identical, zeros)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(zeros.grad).all()
    assert torch.isfinite(sp_loss(identical, identical))


def test_sp_loss_refuses_different_batch_sizes():
    with pytest.raises(ValueError, match="same batch"):
        sp_loss(torch.randn(4, 3), torch.randn(5, 3))
