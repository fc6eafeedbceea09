"""The student-side projector: the loss sees P(F_s); P learns, the tapped layer is not constrained directly."""

import pytest
import torch

from pldistill.losses.projector import StudentProjector
from pldistill.losses.sp import sp_loss
from pldistill.recipe import RecipeError, loss_entry
from pldistill.terms import build_terms


def _projector(channels: int, weight: torch.Tensor | None = None) -> StudentProjector:
    p = StudentProjector(sp_loss, channels)
    if weight is not None:
        with torch.no_grad():
            p.projector.weight.copy_(weight.view(channels, channels, 1, 1))
    return p


def test_identity_projector_is_the_plain_loss_on_maps_and_vectors():
    g = torch.Generator().manual_seed(0)
    teacher, student = torch.randn(6, 8, 3, 3, generator=g), torch.randn(6, 4, 2, 2, generator=g)
    p = _projector(4, torch.eye(4))
    assert p(teacher, student).item() == pytest.approx(sp_loss(teacher, student).item(), rel=1e-6)
    vectors = torch.randn(6, 4, generator=g)
    assert p(teacher.flatten(1), vectors).item() == pytest.approx(sp_loss(teacher.flatten(1), vectors).item(), rel=1e-6)


def test_projection_is_a_per_position_linear_map_computed_by_hand():
    # P swaps and scales two channels: the loss must see exactly W·F at every position
    w = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    student = torch.randn(5, 2, 3, 3)
    by_hand = torch.einsum("oc,bchw->bohw", w, student)
    assert torch.allclose(_projector(2, w).project(student), by_hand, atol=1e-6)
    assert torch.allclose(_projector(2, w).project(student[:, :, 0, 0]), by_hand[:, :, 0, 0], atol=1e-6)


def test_the_projector_can_hide_a_direction_that_sp_would_otherwise_constrain():
    # the student's channel 1 carries a signal the teacher's similarities contradict; with P zeroing it,
    # SP no longer depends on that channel at all (the decoupling the projector is for)
    teacher, student = torch.randn(6, 3), torch.randn(6, 2)
    p = _projector(2, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    changed = student.clone()
    changed[:, 1] = torch.randn(6) * 10
    assert p(teacher, changed).item() == pytest.approx(p(teacher, student).item(), rel=1e-6)
    assert sp_loss(teacher, changed).item() != pytest.approx(sp_loss(teacher, student).item(), rel=1e-3)


def test_gradients_reach_both_the_projector_and_the_student():
    p = _projector(4)
    student = torch.randn(6, 4, 2, 2, requires_grad=True)
    p(torch.randn(6, 8, 2, 2), student).backward()
    assert p.projector.weight.grad.abs().sum() > 0 and student.grad.abs().sum() > 0


def test_recipe_key_builds_a_learned_term_and_refuses_logit_losses():
    entry = loss_entry({"name": "sp", "weight": 1.0, "project": True, "pool": True,
                        "pairs": [{"teacher": -1, "student": -1}]})
    term = build_terms([entry], lambda stage: 16, lambda stage: 4).terms[0]
    assert term.key == "sp/t-1-s-1/pooled/projected"
    assert isinstance(term.fn, torch.nn.Module)  # so the trainer finds it and optimises it with the student
    assert term.fn.projector.weight.shape == (4, 4, 1, 1)
    # pooled inside: the projected map is pooled, then related
    teacher, student = torch.randn(5, 16, 2, 2), torch.randn(5, 4, 2, 2)
    by_hand = sp_loss(teacher.mean((2, 3)), term.fn.project(student).mean((2, 3)))
    assert term.fn(teacher, student).item() == pytest.approx(by_hand.item(), rel=1e-5)
    with pytest.raises((RecipeError, ValueError), match="'project' applies to feature losses"):
        loss_entry({"name": "kd", "weight": 1.0, "project": True})
