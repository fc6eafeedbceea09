"""The privileged modality as an auxiliary target (losses/privileged_target.py): a decoder, no teacher."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pldistill.losses.privileged_target import PrivilegedTarget, privileged_target_loss
from pldistill.recipe import RecipeError, load_recipe, loss_entry
from pldistill.terms import build_terms

RECIPES = Path(__file__).parents[1] / "recipes"


def test_loss_by_hand_with_the_prediction_resized_to_the_target():
    prediction = torch.tensor([[[[1.0]]]])  # one 1×1 map, upsampled to 2×2 is all ones
    target = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]])
    assert privileged_target_loss(prediction, target).item() == pytest.approx((0 + 1 + 4 + 16) / 4)
    vectors = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])
    assert privileged_target_loss(*vectors).item() == pytest.approx((1 + 4) / 2)
    with pytest.raises(ValueError, match="same batch"):
        privileged_target_loss(torch.zeros(2, 3), torch.zeros(3, 3))


def test_the_decoder_is_a_per_position_linear_map_of_the_students_stage():
    part = PrivilegedTarget(student_channels=3, privileged_channels=1)
    student, depth = torch.randn(4, 3, 2, 2), torch.randn(4, 1, 8, 8)
    w, b = part.decoder.weight.view(1, 3), part.decoder.bias
    by_hand = F.interpolate(torch.einsum("oc,bchw->bohw", w, student) + b.view(1, 1, 1, 1), size=(8, 8),
                            mode="bilinear", align_corners=False)
    assert part(depth, student).item() == pytest.approx(F.mse_loss(by_hand, depth).item(), rel=1e-5)
    # a vector target (e.g. a measured feature vector) from the pooled stage
    part = PrivilegedTarget(student_channels=3, privileged_channels=5)
    target = torch.randn(4, 5)
    pooled = student.mean((2, 3)) @ part.decoder.weight.view(5, 3).t() + part.decoder.bias
    assert part(target, student).item() == pytest.approx(F.mse_loss(pooled, target).item(), rel=1e-5)


def test_a_student_learns_to_predict_the_privileged_input_through_the_decoder():
    torch.manual_seed(0)
    student = torch.nn.Conv2d(3, 8, 3, padding=1)
    part = PrivilegedTarget(8, 1)
    rgb = torch.randn(32, 3, 8, 8)
    depth = rgb.mean(1, keepdim=True)  # the target is computable from the input
    optimiser = torch.optim.Adam([*student.parameters(), *part.parameters()], lr=1e-2)
    first = None
    for _ in range(150):
        loss = part(depth, torch.relu(student(rgb)))
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.1 * first


def test_distill_step_reads_the_privileged_input_and_never_runs_the_teacher():
    from pldistill.engine import distill_step
    from pldistill.models import TappedModel, build_model

    torch.manual_seed(0)
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-2]).eval()
    entry = loss_entry({"name": "privileged_target", "weight": 0.5, "pairs": [{"teacher": -1, "student": -2}]})
    terms = build_terms([entry], lambda s: 999, lambda s: student.model.feature_info[s]["num_chs"], lambda: 1).terms
    assert terms[0].inputs == "privileged" and terms[0].fn.decoder.out_channels == 1

    class NoTeacher:
        def __call__(self, x):
            raise AssertionError("the auxiliary target must not run a teacher")

    x, depth, y = torch.randn(4, 3, 16, 16), torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])
    out = distill_step(student, x, y, NoTeacher(), depth, terms)
    with torch.no_grad():
        expected = 0.5 * terms[0].fn(depth, student(x)[1][0])
    torch.testing.assert_close(out.terms[terms[0].key], expected)
    with pytest.raises(ValueError, match="privileged input"):
        distill_step(student, x, y, NoTeacher(), None, terms)


def test_recipes_accept_it_and_refuse_it_with_the_teacher_cache(tmp_path):
    path = tmp_path / "r.yaml"
    entry = "distill:\n  losses: [{name: privileged_target, weight: 1.0, pairs: [{teacher: -1, student: -2}]}]\n"
    path.write_text(f"base: {RECIPES}/depth_to_rgb.yaml\nname: x\n" + entry)
    assert load_recipe(path).distill.losses[0].name == "privileged_target"
    path.write_text(f"base: {RECIPES}/depth_to_rgb.yaml\nname: x\n" + entry + "  teacher_cache: true\n")
    with pytest.raises(RecipeError, match="teacher_cache: false"):
        load_recipe(path)
