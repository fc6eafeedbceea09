"""C2KD (losses/c2kd.py): proxies, on-the-fly selection on non-target classes, and a teacher that trains too."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pldistill.engine import Schedule, fit
from pldistill.losses.c2kd import C2KD, c2kd_loss, kendall_tau, non_target_kl
from pldistill.models import TappedModel, build_model
from pldistill.recipe import RecipeError, loss_entry
from pldistill.terms import build_terms
from random_pairs import RandomPairs


def _kl(p: list[float], q: list[float]) -> float:
    """KL(p ‖ q) by hand."""
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_kendall_tau_by_hand_and_against_scipy():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]])
    b = torch.tensor([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    # the third row: one discordant pair (2, 3) of 6 → (5 − 1) / 6
    torch.testing.assert_close(kendall_tau(a, b), torch.tensor([1.0, -1.0, 4 / 6]))
    scipy = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 9, generator=g), torch.randn(6, 9, generator=g)
    expected = torch.tensor([scipy.kendalltau(x[i].numpy(), y[i].numpy())[0] for i in range(6)], dtype=torch.float32)
    torch.testing.assert_close(kendall_tau(x, y), expected)


def test_non_target_kl_zeroes_the_true_class_logit_and_keeps_only_selected_samples_by_hand():
    learner = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -0.5]])
    target = torch.tensor([[3.0, 2.0, 1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 2])
    first = _kl(_softmax([0.0, 2.0, 1.0]), _softmax([0.0, 2.0, 3.0]))  # true class 0's logit set to 0 in both
    second = _kl(_softmax([0.0, 1.0, 0.0]), _softmax([0.5, 0.0, 0.0]))
    both = non_target_kl(learner, target, labels, torch.tensor([True, True]))
    assert both.item() == pytest.approx((first + second) / 2, rel=1e-5)
    only_first = non_target_kl(learner, target, labels, torch.tensor([True, False]))
    assert only_first.item() == pytest.approx(first / 2, rel=1e-5)  # a dropped sample still counts in the mean
    assert non_target_kl(learner, target, labels, torch.tensor([False, False])).item() == 0.0


def test_the_loss_is_the_teachers_ce_alone_when_all_four_agree_and_nothing_is_selected():
    z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]])
    labels = torch.tensor([0, 2])
    value = c2kd_loss(z, z.clone(), z.clone(), z.clone(), labels, kappa=1.0)  # τ = 1 is never > 1
    torch.testing.assert_close(value, F.cross_entropy(z, labels))


def test_each_network_learns_only_from_its_own_proxy_and_the_proxies_from_each_other():
    g = torch.Generator().manual_seed(3)
    t, pt, s, ps = (torch.randn(5, 4, generator=g).requires_grad_() for _ in range(4))
    labels = torch.tensor([0, 1, 2, 3, 0])
    c2kd_loss(t, pt, s, ps, labels, kappa=-2.0).backward()  # κ = −2: every sample selected
    kl = lambda learner, target: F.kl_div(F.log_softmax(learner, 1), F.softmax(target, 1),
                                          reduction="batchmean")
    # the student's logits: only KL(z_s ← p_s), the proxy as a fixed target; never the teacher
    s2 = s.detach().clone().requires_grad_()
    kl(s2, ps.detach()).backward()
    torch.testing.assert_close(s.grad, s2.grad)
    # the teacher's logits: its CE and KL(z_t ← p_t)
    t2 = t.detach().clone().requires_grad_()
    (F.cross_entropy(t2, labels) + kl(t2, pt.detach())).backward()
    torch.testing.assert_close(t.grad, t2.grad)
    # the student's proxy: from the student's logits and from the teacher's proxy on non-target classes
    ps2 = ps.detach().clone().requires_grad_()
    (kl(ps2, s.detach()) + non_target_kl(ps2, pt.detach(), labels, torch.ones(5, dtype=torch.bool))).backward()
    torch.testing.assert_close(ps.grad, ps2.grad)


def _models():
    torch.manual_seed(0)
    teacher = TappedModel(build_model("test_efficientnet_gn", 1, 3, None, 16), [-1])
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1])
    return teacher, student


def _terms(teacher, student, name="c2kd"):
    entry = loss_entry({"name": name, "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]})
    return build_terms([entry], lambda s: teacher.model.feature_info[s]["num_chs"],
                       lambda s: student.model.feature_info[s]["num_chs"], classes=3).terms


def test_a_c2kd_fit_trains_the_teacher_and_its_proxies_with_the_student_and_sp_leaves_the_teacher_alone():
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    for name, trains in (("c2kd", True), ("sp", False)):
        teacher, student = _models()
        before = [p.detach().clone() for p in teacher.parameters()]
        terms = _terms(teacher, student, name)
        result = fit(student, "rgb", loader, loader, schedule=Schedule(epochs=1, lr=3e-3, weight_decay=0.0),
                     device=torch.device("cpu"), teacher=teacher, teacher_modality="depth", terms=terms)
        changed = any(not torch.equal(p, q) for p, q in zip(teacher.parameters(), before))
        assert changed == trains, name
        assert all(not p.requires_grad for p in teacher.parameters()) != trains
        assert math.isfinite(result.history[-1]["train/terms/" + terms[0].key])
    assert isinstance(terms[0].fn, torch.nn.Module) is False  # SP has no learned parts


def test_c2kd_is_refused_with_a_teacher_cache_or_a_teacher_used_as_it_is(tmp_path):
    from pldistill.recipe import parse_recipe

    raw = {"name": "c", "data": {"kind": "synthetic_shapes", "num_train": 64, "num_test": 32, "image_size": 32},
           "teacher": {"model": "resnet10t", "modality": "depth"},
           "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
           "distill": {"losses": [{"name": "c2kd", "weight": 1.0, "pairs": [{"teacher": -2, "student": -2}]}],
                       "teacher_cache": True},
           "schedule": {"epochs": 1, "batch_size": 16, "lr": 0.002}}
    with pytest.raises(RecipeError, match="trains the teacher together with the student.*teacher_cache: false"):
        parse_recipe(raw, tmp_path / "c.yaml")
    raw["distill"]["teacher_cache"] = False
    assert parse_recipe(raw, tmp_path / "c.yaml").distill.losses[0].name == "c2kd"
