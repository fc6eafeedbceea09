"""Joint mixup (engine/mixup.py) and STKD (losses/stkd.py): one partner and one λ for every modality of a sample."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pldistill.engine.mixup import JointMixup, MixDraw, mixed_cross_entropy
from pldistill.losses.kd import kd_loss
from pldistill.losses.stkd import stkd_loss
from pldistill.recipe import RecipeError, load_recipe

RECIPES = Path(__file__).parents[1] / "recipes"


class AffinePairs(torch.utils.data.Dataset):
    """depth = 2 · mean(rgb) + 1 per pixel: any joint mix keeps the relation, any other mix breaks it."""

    def __init__(self, n: int = 32, size: int = 16):
        g = torch.Generator().manual_seed(0)
        self.rgb = torch.randn(n, 3, size, size, generator=g)
        self.depth = 2 * self.rgb.mean(1, keepdim=True) + 1
        self.label = torch.arange(n) % 3

    def __len__(self):
        return len(self.label)

    def __getitem__(self, i):
        return {"rgb": self.rgb[i], "depth": self.depth[i], "label": self.label[i]}


def test_mixed_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    draw = MixDraw(torch.tensor([1, 0]), 0.75)
    ce = lambda z, y: -torch.log_softmax(z, 0)[y]  # noqa: E731
    expected = 0.5 * sum(0.75 * ce(logits[i], labels[i]) + 0.25 * ce(logits[i], labels[1 - i]) for i in range(2))
    assert mixed_cross_entropy(logits, labels, draw).item() == pytest.approx(expected.item(), rel=1e-6)
    # λ = 1 is plain cross-entropy
    assert mixed_cross_entropy(logits, labels, MixDraw(torch.tensor([1, 0]), 1.0)).item() == pytest.approx(
        F.cross_entropy(logits, labels).item(), rel=1e-6)


def test_a_draw_mixes_each_sample_with_its_partner():
    x = torch.arange(4.0).view(4, 1)
    draw = MixDraw(torch.tensor([2, 3, 0, 1]), 0.8)
    torch.testing.assert_close(draw.mix(x), 0.8 * x + 0.2 * x[[2, 3, 0, 1]])


def test_the_draw_is_fixed_by_seed_rank_and_step_and_lambda_follows_beta():
    mix = JointMixup(alpha=1.0, seed=3)
    a, b = mix.draw(16, 5), mix.draw(16, 5)
    assert torch.equal(a.partner, b.partner) and a.lam == b.lam  # a resumed stage mixes what it would have
    assert sorted(a.partner.tolist()) == list(range(16))  # a permutation of the batch
    c = mix.draw(16, 6)
    assert not (torch.equal(a.partner, c.partner) and a.lam == c.lam)
    assert JointMixup(1.0, 3, rank=1).draw(16, 5).lam != a.lam
    # Beta(α, α) has mean 1/2 and variance 1 / (4(2α + 1)): 1/12 at α = 1, 1/20 at α = 2
    for alpha, variance in ((1.0, 1 / 12), (2.0, 1 / 20)):
        lams = torch.tensor([JointMixup(alpha, 0).draw(4, s).lam for s in range(4000)])
        assert lams.mean().item() == pytest.approx(0.5, abs=0.02)
        assert lams.var().item() == pytest.approx(variance, rel=0.1)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        JointMixup(0.0, 0)


def test_fit_mixes_the_teachers_input_with_the_students_partner_and_lambda():
    from pldistill.engine import Schedule, fit
    from pldistill.models import TappedModel, build_model
    from pldistill.terms import DistillTerm

    torch.manual_seed(0)
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1])
    teacher = TappedModel(build_model("test_efficientnet_ln", 1, 3, None, 16), [-1])
    seen = {"student": [], "teacher": []}
    student.register_forward_pre_hook(lambda m, args: seen["student"].append((m.training, args[0].clone())))
    teacher.register_forward_pre_hook(lambda m, args: seen["teacher"].append(args[0].clone()))
    data = AffinePairs()
    loader = torch.utils.data.DataLoader(data, batch_size=8, drop_last=True)
    fit(student, "rgb", loader, loader, schedule=Schedule(epochs=1, lr=1e-3, weight_decay=0.0),
        device=torch.device("cpu"), teacher=teacher, teacher_modality="depth",
        terms=[DistillTerm("stkd", stkd_loss, 1.0, -1, -1, inputs="logits")], mixup=JointMixup(1.0, seed=0))
    trained = [x for training, x in seen["student"] if training]
    assert len(trained) == len(seen["teacher"]) == 4
    originals = data.rgb.flatten(1)
    for x_s, x_t in zip(trained, seen["teacher"]):
        # the teacher's depth is the mix of the same two samples with the same λ as the student's RGB
        torch.testing.assert_close(x_t, 2 * x_s.mean(1, keepdim=True) + 1, atol=1e-5, rtol=1e-5)
        # and the samples really are mixed: only those the permutation pairs with themselves stay original
        unchanged = (torch.cdist(x_s.flatten(1), originals).min(1).values < 1e-5).sum().item()
        assert unchanged <= 4
    tested = [x for training, x in seen["student"] if not training]
    assert torch.cdist(torch.cat(tested).flatten(1), originals).min() < 1e-6  # evaluation is never mixed


def test_stkd_is_the_tempered_kl_on_the_mixed_logits_by_hand():
    teacher, student = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    p = torch.softmax(teacher / 4, 1)[0]
    expected = 16 * sum(p[k] * math.log(p[k] / 0.5) for k in range(2))
    assert stkd_loss(teacher, student).item() == pytest.approx(expected.item(), rel=1e-5)
    t, s = torch.randn(5, 7), torch.randn(5, 7)
    assert stkd_loss(t, s, 2.0).item() == pytest.approx(kd_loss(t, s, 2.0).item(), rel=1e-6)
    assert stkd_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)


def _recipe(tmp_path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(f"base: {RECIPES}/depth_to_rgb.yaml\nname: x\n" + text)
    return path


def test_recipes_refuse_stkd_without_mixup_and_mixup_with_the_teacher_cache(tmp_path):
    stkd = "distill:\n  losses: [{name: stkd, weight: 1.0}]\n"
    with pytest.raises(RecipeError, match="student.mixup"):
        load_recipe(_recipe(tmp_path, stkd))
    mixed = "student: {model: mobilenetv3_small_100, modality: rgb, mixup: 1.0}\n"
    assert load_recipe(_recipe(tmp_path, stkd + mixed)).student.mixup == 1.0
    with pytest.raises(RecipeError, match="teacher_cache: false"):
        load_recipe(_recipe(tmp_path, "distill:\n  teacher_cache: true\n  losses: [{name: stkd, weight: 1.0}]\n"
                            + mixed))
