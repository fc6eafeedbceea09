"""SSKD (losses/sskd.py): rotations of both modalities, the teacher's SS head, the three terms and their filtering."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pldistill.losses.kd import kd_loss
from pldistill.losses.sskd import (ROTATIONS, SSKD, keep_by_rank, rotations, similarity_to_originals, sskd_loss,
                                   target_rank)
from pldistill.recipe import RecipeError, load_recipe

RECIPES = Path(__file__).parents[1] / "recipes"


def test_rotations_follow_the_batch_in_order_and_four_turns_are_the_identity():
    x = torch.arange(8.0).view(2, 1, 2, 2)
    r = rotations(x)
    assert r.shape == (8, 1, 2, 2)
    torch.testing.assert_close(r[:2], x)
    # 90° counter-clockwise of [[0, 1], [2, 3]] is [[1, 3], [0, 2]]
    torch.testing.assert_close(r[2, 0], torch.tensor([[1.0, 3.0], [0.0, 2.0]]))
    torch.testing.assert_close(r[4], torch.flip(x[0], dims=(1, 2)))  # 180°
    torch.testing.assert_close(torch.rot90(r[6:], 1, dims=(2, 3)), x)  # 270° + 90°
    assert ROTATIONS.originals(r).shape == x.shape
    with pytest.raises(ValueError, match="square"):
        rotations(torch.zeros(2, 1, 2, 3))


def test_rank_of_the_target_and_which_rows_are_kept():
    scores = torch.tensor([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 1.0]])
    targets = torch.tensor([0, 2, 0, 0])
    rank = target_rank(scores, targets)
    assert rank.tolist() == [0, 1, 2, 1]
    assert keep_by_rank(rank, 1.0).tolist() == [0, 1, 2, 3]
    assert keep_by_rank(rank, 0.0).tolist() == [0]  # correct rows only
    assert keep_by_rank(rank, 0.5).tolist() == [0, 1]  # and the nearest half of the misses (rank 1 first)
    assert keep_by_rank(rank, 2 / 3).tolist() == [0, 1, 3]


def _kl(t, s, tau):
    return F.kl_div(F.log_softmax(s / tau, 1), F.softmax(t / tau, 1), reduction="batchmean") * tau ** 2


def test_each_term_by_hand():
    g = torch.Generator().manual_seed(0)
    b, classes, d = 3, 4, 5
    labels = torch.tensor([0, 1, 2])
    t_logits = torch.randn(4 * b, classes, generator=g)
    s_logits = torch.randn(4 * b, classes, generator=g)
    t_ss, s_ss = torch.randn(4 * b, d, generator=g), torch.randn(4 * b, d, generator=g)
    only = dict(kd=0.0, tf=0.0, ss=0.0)
    kd = sskd_loss(t_logits, t_ss, s_logits, s_ss, labels, **{**only, "kd": 1.0})
    assert kd.item() == pytest.approx(kd_loss(t_logits[:b], s_logits[:b], 4.0).item(), rel=1e-5)
    # tf with every rotated row kept (ratio 1): the tempered KL over the 3b rotated rows
    tf = sskd_loss(t_logits, t_ss, s_logits, s_ss, labels, ratio_tf=1.0, **{**only, "tf": 1.0})
    assert tf.item() == pytest.approx(_kl(t_logits[b:], s_logits[b:], 4.0).item(), rel=1e-5)
    # tf with misses dropped: only rows where the teacher's top-1 is the true class
    right = (t_logits[b:].argmax(1) == labels.repeat(3))
    tf0 = sskd_loss(t_logits, t_ss, s_logits, s_ss, labels, ratio_tf=0.0, **{**only, "tf": 1.0})
    expected = _kl(t_logits[b:][right], s_logits[b:][right], 4.0) if right.any() else torch.tensor(0.0)
    assert tf0.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
    # ss: cosine similarities of rotated rows to the originals, tempered at 0.5, all rows kept
    cos = lambda e: F.normalize(e[b:], dim=1) @ F.normalize(e[:b], dim=1).t()  # noqa: E731
    ss = sskd_loss(t_logits, t_ss, s_logits, s_ss, labels, ratio_ss=1.0, **{**only, "ss": 1.0})
    assert ss.item() == pytest.approx(_kl(cos(t_ss), cos(s_ss), 0.5).item(), rel=1e-5)
    total = sskd_loss(t_logits, t_ss, s_logits, s_ss, labels, ratio_ss=1.0, kd=2.0, tf=3.0, ss=5.0)
    assert total.item() == pytest.approx(2 * kd.item() + 3 * tf.item() + 5 * ss.item(), rel=1e-5)


def test_zero_when_the_student_matches_and_blind_to_the_rows_it_filters():
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 1])
    logits, ss = torch.randn(8, 3, generator=g), torch.randn(8, 6, generator=g)
    assert sskd_loss(logits, ss, logits, ss, labels).item() == pytest.approx(0.0, abs=1e-6)
    # a rotated row the teacher gets wrong, dropped by ratio_tf = 0: changing the student there changes nothing
    t_logits = logits.clone()
    t_logits[2] = torch.tensor([0.0, 5.0, 0.0])  # row 2 is sample 0 rotated: label 0, the teacher says 1
    moved = logits.clone()
    moved[2] += torch.tensor([3.0, -2.0, 1.0])
    args = dict(kd=0.0, ss=0.0, tf=1.0, ratio_tf=0.0)
    assert sskd_loss(t_logits, ss, moved, ss, labels, **args).item() == pytest.approx(
        sskd_loss(t_logits, ss, logits, ss, labels, **args).item(), rel=1e-6)


def test_the_teachers_ss_head_learns_to_tell_which_original_a_rotation_came_from():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 8, 3, padding=1)
    features = lambda x: torch.relu(conv(x))  # noqa: E731  a frozen "teacher" that is not rotation-invariant
    batches = [torch.randn(16, 1, 8, 8) for _ in range(4)]
    part = SSKD(student_channels=4, teacher_channels=8, ss_epochs=30)
    losses = part.fit_to_teacher(features, batches, torch.device("cpu"))
    assert len(losses) == 30 and losses[-1] < 0.8 * losses[0]
    assert not any(p.requires_grad for p in part.teacher_head.parameters())  # frozen for the student's stage
    with torch.no_grad():
        x = batches[0]
        emb = part.teacher_head(features(rotations(x)).mean((2, 3)))
        top1 = similarity_to_originals(emb, 4).argmax(1)
    assert (top1 == torch.arange(16).repeat(3)).float().mean() > 3 / 16  # chance is 1/16


def test_distill_step_rotates_both_modalities_and_gives_ce_the_originals_only():
    from pldistill.engine import distill_step
    from pldistill.models import TappedModel, build_model
    from pldistill.terms import build_terms
    from pldistill.recipe import loss_entry

    torch.manual_seed(0)
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1]).eval()
    teacher = TappedModel(build_model("test_efficientnet_ln", 1, 3, None, 16), [-1]).eval()
    seen = []
    teacher.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    entry = loss_entry({"name": "sskd", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]})
    terms = build_terms([entry], lambda s: teacher.model.feature_info[s]["num_chs"],
                        lambda s: student.model.feature_info[s]["num_chs"]).terms
    assert terms[0].inputs == "outputs" and terms[0].views is ROTATIONS
    x_s, x_t, y = torch.randn(4, 3, 16, 16), torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])
    out = distill_step(student, x_s, y, teacher, x_t, terms)
    torch.testing.assert_close(seen[0], rotations(x_t))  # the teacher saw the same rotations of its own modality
    assert out.logits.shape == (4, 3)
    with torch.no_grad():
        torch.testing.assert_close(out.terms["ce"], F.cross_entropy(student(x_s)[0], y), rtol=1e-4, atol=1e-5)
    assert out.terms[terms[0].key].item() > 0


def _recipe(tmp_path, base: str, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(f"base: {RECIPES}/{base}\nname: x\n" + text)
    return path


def test_recipes_refuse_sskd_where_rotations_cannot_apply(tmp_path):
    sskd = "distill:\n  losses: [{name: sskd, weight: 1.0, pairs: [{teacher: -1, student: -1}]}]\n"
    assert load_recipe(_recipe(tmp_path, "depth_to_rgb.yaml", sskd)).distill.losses[0].name == "sskd"
    with pytest.raises(RecipeError, match="is a vector modality"):
        load_recipe(_recipe(tmp_path, "mfeat_fac_to_zer.yaml", sskd))
    with pytest.raises(RecipeError, match="teacher_cache: false"):
        load_recipe(_recipe(tmp_path, "depth_to_rgb.yaml", sskd + "  teacher_cache: true\n"))
    with pytest.raises(RecipeError, match="student.mixup"):
        load_recipe(_recipe(tmp_path, "depth_to_rgb.yaml",
                            sskd + "student: {model: mobilenetv3_small_100, modality: rgb, mixup: 1.0}\n"))
    with pytest.raises((RecipeError, ValueError), match="'project' applies to feature losses"):
        load_recipe(_recipe(tmp_path, "depth_to_rgb.yaml", "distill:\n  losses: [{name: sskd, weight: 1.0, "
                            "project: true, pairs: [{teacher: -1, student: -1}]}]\n"))
