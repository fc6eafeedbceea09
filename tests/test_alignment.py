"""Alignment metrics against known values and their invariances."""

import pytest
import torch

from pldistill.alignment import cka_grid, linear_cka, mutual_knn, prediction_agreement, similarity_correlation

g = torch.Generator().manual_seed(0)


def randn(*shape):
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def orthogonal(d):
    q, _ = torch.linalg.qr(randn(d, d))
    return q


@pytest.mark.parametrize("unbiased", [False, True])
def test_cka_is_one_for_a_representation_with_itself_up_to_rotation_scale_and_shift(unbiased):
    x = randn(50, 8)
    assert linear_cka(x, x, unbiased) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ orthogonal(8) + 2.0, unbiased) == pytest.approx(1.0)


def test_cka_matches_the_feature_space_formula():
    x, y = randn(30, 6), randn(30, 4)
    xc, yc = x - x.mean(0), y - y.mean(0)
    expected = (yc.t() @ xc).norm() ** 2 / ((xc.t() @ xc).norm() * (yc.t() @ yc).norm())
    assert linear_cka(x, y) == pytest.approx(expected.item())


def test_cka_of_independent_features_is_near_zero_at_large_n_and_unbiased_is_closer():
    x, y = randn(2000, 10), randn(2000, 10)
    biased, unbiased = linear_cka(x, y), linear_cka(x, y, unbiased=True)
    assert biased < 0.02
    assert abs(unbiased) < 0.005 and abs(unbiased) < biased


def test_cka_takes_conv_maps_of_different_shapes_and_float32():
    x = randn(20, 4, 3, 3).float()
    assert linear_cka(x, x.flatten(1)[:, torch.randperm(36)]) == pytest.approx(1.0, abs=1e-6)
    grid = cka_grid([x, randn(20, 7)], [x, randn(20, 2, 2, 2), randn(20, 5)])
    assert grid.shape == (2, 3) and grid[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert ((grid >= 0) & (grid <= 1 + 1e-9)).all()


def test_similarity_correlation_is_one_for_same_relations_and_blind_to_width():
    x = randn(16, 12)
    assert similarity_correlation(x, 5.0 * x @ orthogonal(12)) == pytest.approx(1.0)
    assert abs(similarity_correlation(randn(400, 50), randn(400, 3))) < 0.05


def test_mutual_knn_hand_computed_case():
    # points on a line: each one's nearest neighbour (cosine on 2-D directions) by construction
    angles = torch.tensor([0.0, 0.1, 1.0, 1.1, 2.0, 2.1], dtype=torch.float64)
    x = torch.stack([angles.cos(), angles.sin()], 1)
    assert mutual_knn(x, x, k=1) == 1.0
    y = x[[1, 0, 3, 2, 5, 4]]  # same points, pairs swapped: sample i's neighbour is now its partner's
    # for sample 0: x says {1}; y's row 0 is point 1 whose neighbour is point 0 = row 1 → {1}: shared
    assert mutual_knn(x, y, k=1) == 1.0
    z = x[[0, 2, 1, 4, 3, 5]]  # breaks every pair
    assert mutual_knn(x, z, k=1) == 0.0


def test_mutual_knn_of_unrelated_features_is_chance():
    n, k = 300, 10
    value = mutual_knn(randn(n, 8), randn(n, 8), k)
    assert value == pytest.approx(k / (n - 1), abs=0.02)


def test_prediction_agreement_counts_equal_argmax_and_refuses_other_label_spaces():
    t = torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [0.0, 5.0]])
    s = torch.tensor([[9.0, 1.0], [2.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert prediction_agreement(t, s) == 0.75
    with pytest.raises(ValueError, match="one label space"):
        prediction_agreement(t, torch.zeros(4, 3))


def test_metrics_refuse_mismatched_samples():
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(randn(5, 2), randn(6, 2))


def test_probe_can_use_the_unbiased_estimator(tmp_path):
    from pldistill.data import SyntheticShapes
    from pldistill.models import TappedModel, build_model
    from pldistill.probe import AlignmentProbe

    torch.manual_seed(0)
    data = SyntheticShapes("test", 40, image_size=32, seed=0)
    teacher, student = TappedModel(build_model("resnet10t", 1, 4)), TappedModel(build_model("resnet10t", 1, 4))
    args = (data, teacher, "depth", "depth", [(-1, -1)], 40, 5, torch.device("cpu"), True)
    biased, unbiased = AlignmentProbe(*args).measure(student), AlignmentProbe(*args, unbiased=True).measure(student)
    same = AlignmentProbe(*args, unbiased=True).measure(teacher)
    assert same["align/cka/t4-s4"] == pytest.approx(1.0)  # a model against itself
    assert unbiased["align/cka/t4-s4"] != pytest.approx(biased["align/cka/t4-s4"])
    assert unbiased["align/simcorr/t4-s4"] == pytest.approx(biased["align/simcorr/t4-s4"])
