"""DIST (Huang et al. 2022) against hand-computed values and the invariances its Pearson relations promise."""

import numpy as np
import pytest
import torch

from pldistill.losses.dist import dist_loss


def test_two_classes_two_samples_by_hand():
    # rows: teacher prefers class 0 then 1, student the opposite → every Pearson ρ is −1 (1 − ρ = 2)
    teacher = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    student = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert dist_loss(teacher, student).item() == pytest.approx(4.0, abs=1e-6)
    assert dist_loss(teacher, student, inter=1.0, intra=0.0).item() == pytest.approx(2.0, abs=1e-6)
    assert dist_loss(teacher, student, temperature=2.0).item() == pytest.approx(4 * 4.0, abs=1e-5)


def test_matches_numpy_corrcoef_on_random_logits():
    g = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    t, tau = 2.0, 2.0
    y_t = torch.softmax(teacher / tau, 1).numpy().astype(np.float64)
    y_s = torch.softmax(student / tau, 1).numpy().astype(np.float64)
    inter = 1 - np.mean([np.corrcoef(y_s[i], y_t[i])[0, 1] for i in range(6)])
    intra = 1 - np.mean([np.corrcoef(y_s[:, c], y_t[:, c])[0, 1] for c in range(5)])
    expected = t**2 * (0.5 * inter + 2.0 * intra)
    got = dist_loss(teacher, student, temperature=tau, inter=0.5, intra=2.0).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_zero_at_identity_and_blind_to_per_sample_logit_shifts():
    logits = torch.randn(8, 10)
    assert dist_loss(logits, logits).item() == pytest.approx(0.0, abs=1e-6)
    shifted = logits + torch.randn(8, 1) * 5  # softmax is unchanged by a constant per row
    assert dist_loss(logits, shifted).item() == pytest.approx(0.0, abs=1e-5)


def test_equivariant_to_batch_order_and_class_order():
    teacher, student = torch.randn(7, 4), torch.randn(7, 4)
    order, classes = torch.randperm(7), torch.randperm(4)
    reference = dist_loss(teacher, student)
    torch.testing.assert_close(dist_loss(teacher[order], student[order]), reference)
    torch.testing.assert_close(dist_loss(teacher[:, classes], student[:, classes]), reference)


def test_refuses_different_label_spaces():
    with pytest.raises(ValueError, match="one label space"):
        dist_loss(torch.randn(4, 3), torch.randn(4, 5))


def test_recipe_preset_and_report(tmp_path):
    from pldistill.recipe import load_recipe
    from pldistill.report import describe_losses

    recipe = load_recipe("recipes/depth_to_rgb.yaml", ["distill.loss=sp+dist", "distill.losses.dist.temperature=4"])
    assert [loss.name for loss in recipe.distill.losses] == ["sp", "dist"]
    assert describe_losses(recipe.distill.losses).endswith("DIST (weight 1; τ=4)")
