"""The class-pairing floor of SP: hand-computed values, its two extremes, and its invariances."""

import math

import pytest
import torch

from experiments.class_pairing import floor_of_draws, partner_draws, sp_class_pairing_floor


def test_floor_matches_a_hand_computed_two_sample_case():
    # pool: class 0 = {[1, 0], [1, 1]}, class 1 = {[0, 1]}; a batch of classes (0, 1) has two equally likely draws
    features = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    draws = torch.tensor([[0, 2], [1, 2]])
    # draw 1: G = I (rows already unit); draw 2: G = [[2, 1], [1, 1]] → rows [2, 1]/√5 and [1, 1]/√2.
    # Each draw sits ±(G1 − G2)/2 from the mean, so the floor is ‖G1 − G2‖² / 4 / b² with b = 2.
    diff = (1 - 2 / math.sqrt(5)) ** 2 + (1 / math.sqrt(5)) ** 2 + (1 / math.sqrt(2)) ** 2 + (1 - 1 / math.sqrt(2)) ** 2
    floor, target, share = floor_of_draws(features, draws, unbiased=False)
    assert floor == pytest.approx(diff / 16, rel=1e-6)
    # off-diagonal entries: draw 1 (0, 0), draw 2 (1/√5, 1/√2); the share is their spread around the mean over
    # draws, over their spread around each draw's own mean
    off = torch.tensor([[0.0, 0.0], [1 / math.sqrt(5), 1 / math.sqrt(2)]])
    within = (off - off.mean(0)).pow(2).mean()
    total = (off - off.mean(1, keepdim=True)).pow(2).mean()
    assert share == pytest.approx(float(within / total), rel=1e-6)
    assert target > 0


def test_unbiased_correction_is_r_over_r_minus_one():
    features = torch.randn(30, 8, generator=torch.Generator().manual_seed(0))
    draws = torch.randint(30, (5, 6), generator=torch.Generator().manual_seed(1))
    biased = floor_of_draws(features, draws, unbiased=False)[0]
    assert floor_of_draws(features, draws)[0] == pytest.approx(biased * 5 / 4, rel=1e-6)


def test_instance_like_pairing_has_no_floor():
    # every sample of a class looks the same to the teacher: redrawing changes nothing, all of SP is learnable
    g = torch.Generator().manual_seed(0)
    centroids = torch.randn(5, 16, generator=g)
    labels = torch.arange(5).repeat(20)
    result = sp_class_pairing_floor(centroids[labels], labels, batch_size=16, batches=5, redraws=8)
    assert result.floor == pytest.approx(0.0, abs=1e-10)
    assert result.within_share == pytest.approx(0.0, abs=1e-6)
    assert result.target > 0.01  # the classes themselves still shape the matrix


def test_features_unrelated_to_class_are_all_floor():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(400, 32, generator=g).relu()  # non-negative, like post-ReLU activations
    labels = torch.randint(10, (400,), generator=g)
    result = sp_class_pairing_floor(features, labels, batch_size=32, batches=10, redraws=32)
    assert result.within_share > 0.9
    assert result.floor == pytest.approx(result.target, rel=0.15)


def test_floor_grows_with_the_within_class_spread():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat(30)
    centroids = torch.randn(10, 32, generator=g)
    noise = torch.randn(300, 32, generator=g)
    floors = [sp_class_pairing_floor(centroids[labels] + s * noise, labels, 32, batches=8, redraws=16).floor
              for s in (0.1, 0.5, 2.0)]
    assert floors[0] < floors[1] < floors[2]


def test_floor_is_invariant_to_the_scale_of_the_features():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(200, 4, 3, 3, generator=g)
    labels = torch.randint(4, (200,), generator=g)
    a = sp_class_pairing_floor(features, labels, 16, batches=4, redraws=8, seed=3)
    b = sp_class_pairing_floor(7.5 * features, labels, 16, batches=4, redraws=8, seed=3)
    assert (a.floor, a.target, a.within_share) == pytest.approx((b.floor, b.target, b.within_share), rel=1e-5)


def test_partners_are_drawn_within_their_class():
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 0])
    draws = partner_draws(labels, torch.tensor([2, 0, 1, 2]), redraws=50, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (50, 4)
    assert (labels[draws] == torch.tensor([2, 0, 1, 2])).all()
    assert len(set(draws[:, 0].tolist())) == 3  # every member of class 2 gets drawn


def test_clear_errors():
    labels = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="class 3 has no sample"):
        partner_draws(labels, torch.tensor([3]), 2, torch.Generator())
    with pytest.raises(ValueError, match="larger than the pool"):
        sp_class_pairing_floor(torch.randn(3, 2), labels, batch_size=4)
    with pytest.raises(ValueError, match="2 feature rows but 3 labels"):
        sp_class_pairing_floor(torch.randn(2, 2), labels, batch_size=2)
