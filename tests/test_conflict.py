"""Gradient surgery (engine/conflict.py): the terms' gradient never opposes CE's after projection."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pldistill.engine import Schedule, fit
from pldistill.engine.conflict import ConflictProjection, project_away_conflict
from pldistill.terms import DistillTerm
from random_pairs import RandomPairs
from test_balance import _models


def test_a_conflicting_gradient_loses_its_component_along_ce_by_hand():
    g_ce = torch.tensor([1.0, 0.0])
    g_d = torch.tensor([-1.0, 1.0])  # g_d · g_ce = −1, ‖g_ce‖² = 1 → g_d' = g_d + g_ce = (0, 1)
    projected, cosine = project_away_conflict(g_ce, g_ce + g_d)
    torch.testing.assert_close(projected, torch.tensor([1.0, 1.0]))
    assert cosine == pytest.approx(-(2 ** -0.5))


def test_an_agreeing_or_orthogonal_gradient_is_left_as_it_is():
    g_ce = torch.tensor([2.0, 0.0, 0.0])
    for g_d, cosine in ((torch.tensor([1.0, 1.0, 0.0]), 2 ** -0.5), (torch.tensor([0.0, 3.0, 4.0]), 0.0)):
        total = g_ce + g_d
        projected, cos = project_away_conflict(g_ce, total)
        assert projected is total and cos == pytest.approx(cosine)


def test_after_projection_the_terms_never_oppose_ce_and_the_projection_commutes_with_a_loss_scale():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        g_ce, g_d = torch.randn(40, generator=gen, dtype=torch.float64), torch.randn(40, generator=gen,
                                                                                     dtype=torch.float64)
        projected, cosine = project_away_conflict(g_ce, g_ce + g_d)
        assert float(torch.dot(projected - g_ce, g_ce)) >= -1e-9  # the terms' part: never against CE
        assert cosine == pytest.approx(float(F.cosine_similarity(g_d, g_ce, dim=0)))
        scaled, _ = project_away_conflict(1024 * g_ce, 1024 * (g_ce + g_d))  # fp16's loss scale: same direction
        torch.testing.assert_close(scaled, 1024 * projected)
        if cosine < 0:  # the removed part lies along CE's gradient only: what is orthogonal to it is kept
            d_orth = g_d - torch.dot(g_d, g_ce) / torch.dot(g_ce, g_ce) * g_ce
            torch.testing.assert_close(projected - g_ce, d_orth)


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def test_a_pure_harm_term_is_removed_and_a_helpful_one_kept_on_a_real_backward():
    torch.manual_seed(0)
    model, x, y = nn.Linear(5, 3), torch.randn(8, 5), torch.randint(0, 3, (8,))
    params = list(model.parameters())
    ce = F.cross_entropy(model(x), y)
    ce.backward(retain_graph=True)
    g_ce = _grads(model)
    projection = ConflictProjection()
    for term, expected in ((-2 * ce, g_ce), (0.5 * ce, [1.5 * g for g in g_ce])):
        model.zero_grad(set_to_none=True)
        adjust = projection.prepare(ce, params, scale=lambda t: t)
        (ce + term).backward(retain_graph=True)
        adjust()
        for got, want in zip(_grads(model), expected):
            torch.testing.assert_close(got, want)
    metrics = projection.epoch_metrics()
    assert metrics == {"conflict/fraction": 0.5, "conflict/cosine": pytest.approx(0.0, abs=1e-6),  # −1 then +1
                       "conflict/projected": 1.0}
    assert projection.epoch_metrics() == {}  # a new epoch starts empty


def _anti_ce(teacher_outputs, student_outputs, labels):
    """A 'teacher' that pulls the student straight away from its labels."""
    return -F.cross_entropy(student_outputs[0].float(), labels)


def test_training_with_a_term_that_only_opposes_ce_under_projection_is_training_on_ce_alone():
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    schedule = Schedule(epochs=2, lr=3e-3, weight_decay=0.0)

    def train(terms, conflicts):
        teacher, student = _models()
        result = fit(student, "rgb", loader, loader, schedule=schedule, device=torch.device("cpu"), teacher=teacher,
                     teacher_modality="depth", terms=terms, conflicts=conflicts)
        return student, result

    harm = [DistillTerm("harm", _anti_ce, 3.0, -1, -1, inputs="outputs")]
    alone, _ = train([], "keep")
    projected, result = train(harm, "project")
    unprojected, harmed = train(harm, "keep")
    for p, q in zip(projected.parameters(), alone.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert [h["conflict/fraction"] for h in result.history] == [1.0, 1.0]
    assert all(h["conflict/cosine"] == pytest.approx(-1.0, abs=1e-4) for h in result.history)
    assert harmed.history[-1]["train/terms/ce"] > 2 * result.history[-1]["train/terms/ce"]  # unprojected: it harms
    assert "conflict/fraction" not in harmed.history[-1]
    measured_model, measured = train(harm, "measure")  # the same numbers, the gradients left as they are
    for p, q in zip(measured_model.parameters(), unprojected.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert [h["conflict/fraction"] for h in measured.history] == [1.0, 1.0]
    assert measured.history[-1]["conflict/projected"] == 0.0


def test_the_report_says_how_often_the_terms_opposed_ce():
    from pldistill.report import weight_lines

    history = [{"weight/sp": 600.0, "grad_ratio/sp": 1.0, "conflict/fraction": 0.25, "conflict/cosine": -0.03},
               {"weight/sp": 600.0, "grad_ratio/sp": 1.0, "conflict/fraction": 0.75, "conflict/cosine": -0.2}]
    lines = weight_lines({"students": {"distilled": {"history": history}}})
    assert lines[-1] == ("conflicts with CE projected out: the terms' gradient opposed CE's on 25% of epoch 1's "
                         "steps (mean cosine -0.03) and 75% of the last epoch's (-0.20)")
    measured = [{**h, "conflict/projected": 0.0} for h in history]
    assert weight_lines({"students": {"distilled": {"history": measured}}})[-1].startswith(
        "conflicts with CE measured: the terms' gradient opposed CE's on 25% of epoch 1's")
    plain = [{"weight/sp": 600.0, "grad_ratio/sp": 1.0}]  # a run without gradient surgery
    assert not any("conflict" in line for line in weight_lines({"students": {"distilled": {"history": plain}}}))


def test_a_comparison_row_may_project_conflicts_and_is_then_a_row_of_its_own(tmp_path):
    import yaml

    from pldistill.compare import _spec, load_comparison
    from test_compare import BASE, COMPARISON

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    sp = [{"name": "sp", "weight": 1.0, "relative": True, "pairs": [{"teacher": -1, "student": -1}]}]
    variants = {"sp": sp, "sp-projected": {"conflicts": "project", "losses": sp}}
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump({**COMPARISON, "variants": variants}))
    comparison, _, recipes = load_comparison(tmp_path / "cmp.yaml")
    assert recipes["sp"].distill.conflicts == "keep" and recipes["sp-projected"].distill.conflicts == "project"
    plain, projected = (_spec(comparison.variants[n], recipes[n]) for n in ("sp", "sp-projected"))
    assert projected["conflicts"] == "project" and projected["losses"] == plain  # never resumed into sp's cells
