"""Relative term weights (engine/balance.py): one number that means the same strength for every pair."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pldistill.engine import Schedule, StepOutput, fit
from pldistill.engine.balance import TermBalance, gradient_norm
from pldistill.losses import sp_loss
from pldistill.models import TappedModel, build_model
from pldistill.recipe import loss_entry
from pldistill.report import describe_losses
from pldistill.terms import DistillTerm
from random_pairs import RandomPairs


def _out(raw: dict[str, torch.Tensor]) -> StepOutput:
    return StepOutput(sum(raw.values()), torch.zeros(1, 2), dict(raw), raw)


def test_relative_weight_is_r_times_the_ratio_of_gradient_norms_by_hand():
    theta = nn.Parameter(torch.tensor(2.0))
    balance = TermBalance([DistillTerm("t", None, 0.5, 0, 0, relative=True)], steps=1)
    ce, term = (theta - 1) ** 2, 3 * theta ** 2  # gradients at θ = 2: 2 and 12
    out = balance.observe(_out({"ce": ce, "t": term}), [theta])
    assert balance.weights["t"] == pytest.approx(0.5 * 2 / 12)
    torch.testing.assert_close(out.terms["t"], torch.tensor(1.0))  # (1/12) · 3θ² at θ = 2
    torch.testing.assert_close(out.total, torch.tensor(2.0))  # CE (θ − 1)² = 1, weight 1, plus 1
    assert balance.ratios() == {"t": pytest.approx(0.5)}


def test_weights_average_over_the_calibration_steps_then_stay_fixed():
    theta = nn.Parameter(torch.tensor(0.0))
    balance = TermBalance([DistillTerm("t", None, 1.0, 0, 0, relative=True),
                           DistillTerm("a", None, 7.0, 0, 0)], steps=2)
    # step 1: |∂ce| = 1, |∂t| = 4;  step 2: |∂ce| = 3, |∂t| = 4  →  w = (1 + 3) / (4 + 4)
    balance.observe(_out({"ce": 1 * theta, "t": 4 * theta, "a": theta}), [theta])
    assert balance.weights["t"] == pytest.approx(0.25)
    balance.observe(_out({"ce": 3 * theta, "t": 4 * theta, "a": theta}), [theta])
    assert balance.weights == {"t": pytest.approx(0.5), "a": 7.0}  # an absolute weight is never changed
    out = balance.observe(_out({"ce": 100 * theta, "t": theta, "a": theta}), [theta])  # past calibration
    assert balance.weights["t"] == pytest.approx(0.5) and not balance.calibrating
    assert balance.ratios() == {"t": pytest.approx(1.0), "a": pytest.approx(7.0 * 2 / 4)}
    torch.testing.assert_close(out.terms["a"], 7.0 * theta)


class _Stage(nn.Module):
    """A random ReLU stage of the given width: features and logits for a batch."""

    def __init__(self, width: int, classes: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.body, self.head = nn.Linear(10, width), nn.Linear(width, classes)

    def forward(self, x):
        feats = torch.relu(self.body(x))
        return self.head(feats), feats


class _ConvStage(nn.Module):
    """A random ReLU conv stage: (b, width, size, size) maps, pooled into a linear head."""

    def __init__(self, width: int, classes: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.body, self.head = nn.Conv2d(3, width, 3, padding=1), nn.Linear(width, classes)

    def forward(self, x):
        feats = torch.relu(self.body(x))
        return self.head(feats.mean((2, 3))), feats


def _case(width: int, batch: int, size: int | None):
    """A student, its inputs and labels, and teacher features: vectors (size None) or size × size maps."""
    torch.manual_seed(1)
    y = torch.randint(0, 3, (batch,))
    teacher_feats = torch.randn(batch, 48).relu()
    if size is None:
        return _Stage(width), torch.randn(batch, 10), y, teacher_feats
    return _ConvStage(width), torch.randn(batch, 3, size, size), y, teacher_feats


CASES = [(8, 16, None), (256, 16, None), (32, 64, None), (32, 8, None), (16, 16, 2), (16, 16, 12)]


@pytest.mark.parametrize("width,batch,size", CASES)
def test_a_relative_weight_gives_the_same_effective_strength_whatever_the_width_stage_size_or_batch(width, batch,
                                                                                                      size):
    student, x, y, teacher_feats = _case(width, batch, size)
    params = list(student.parameters())
    logits, feats = student(x)
    raw = {"ce": nn.functional.cross_entropy(logits, y), "sp": sp_loss(teacher_feats, feats)}
    balance = TermBalance([DistillTerm("sp", sp_loss, 2.0, 0, 0, relative=True)], steps=1)
    out = balance.observe(_out(raw), params)
    # measured afresh on the weighted term: its gradient is exactly 2× CE's, for every width and batch
    assert gradient_norm(out.terms["sp"], params) / gradient_norm(out.terms["ce"], params) == pytest.approx(2.0)


def test_the_same_absolute_weight_means_very_different_strengths_across_widths_stage_sizes_and_batches():
    ratios = []
    for case in CASES:
        student, x, y, teacher_feats = _case(*case)
        logits, feats = student(x)
        params = list(student.parameters())
        ratios.append(3000 * gradient_norm(sp_loss(teacher_feats, feats), params)
                      / gradient_norm(nn.functional.cross_entropy(logits, y), params))
    assert max(ratios) / min(ratios) > 3  # why γ does not carry from one pair to another


def _models():
    torch.manual_seed(0)
    teacher = TappedModel(build_model("test_efficientnet_gn", 1, 3, None, 16), [-1]).eval()
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1])
    return teacher, student


def _fit(term: DistillTerm, calibration_steps: int):
    teacher, student = _models()
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    result = fit(student, "rgb", loader, loader, schedule=Schedule(epochs=2, lr=3e-3, weight_decay=0.0),
                 device=torch.device("cpu"), teacher=teacher, teacher_modality="depth", terms=[term],
                 calibration_steps=calibration_steps)
    return student, result


def test_measuring_absolute_terms_changes_nothing_in_training():
    term = DistillTerm("sp", sp_loss, 100.0, 0, 0)
    a, ra = _fit(term, calibration_steps=1)
    b, rb = _fit(term, calibration_steps=8)  # every step of both epochs measured
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert ra.history[-1]["weight/sp"] == rb.history[-1]["weight/sp"] == 100.0
    assert rb.history[-1]["grad_ratio/sp"] > 0


def test_a_relative_term_trains_with_its_calibrated_weight_recorded_in_the_history():
    _, result = _fit(DistillTerm("sp", sp_loss, 1.5, 0, 0, relative=True), calibration_steps=3)
    first, last = result.history[0], result.history[-1]
    assert first["grad_ratio/sp"] == pytest.approx(1.5) and last["weight/sp"] == first["weight/sp"] > 0
    assert first["train/terms/sp"] > 0  # the term trained with its calibrated weight, not the placeholder 0


def test_the_calibration_survives_a_resume(tmp_path):
    from torch.utils.data import DataLoader

    from pldistill.resume import load_progress, save_progress

    def parts(balance):
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        return {"model": model, "learned": nn.ModuleList(), "optimizer": opt, "balance": balance,
                "scheduler": torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
                "loader": DataLoader(list(range(4)), batch_size=2, generator=torch.Generator().manual_seed(0))}

    term = DistillTerm("t", None, 1.0, 0, 0, relative=True)
    before = TermBalance([term], steps=2)
    theta = nn.Parameter(torch.tensor(0.0))
    before.observe(_out({"ce": 3 * theta, "t": 4 * theta}), [theta])
    save_progress(tmp_path / "p.pt", **parts(before), epoch=1, step=1, seconds=0.0, history=[])
    after = TermBalance([term], steps=2)
    load_progress(tmp_path / "p.pt", **parts(after))
    assert after.state_dict() == before.state_dict() and after.calibrating  # one more step to measure


def test_a_recipe_states_a_relative_weight_and_the_tables_say_so():
    entry = loss_entry({"name": "sp", "weight": 1.0, "relative": True, "pairs": [{"teacher": -1, "student": -1}]})
    assert entry.relative and "1× CE's gradient" in describe_losses([entry])
    assert "γ=3000" in describe_losses([loss_entry({"name": "sp", "weight": 3000,
                                                    "pairs": [{"teacher": -1, "student": -1}]})])


def _epoch(balance, theta, ce, t, steps):
    """One epoch of ``steps`` observed steps whose gradients are ce and t (by hand: d/dθ of c·θ is c); an absolute
    term "a", where the balance has one, has gradient 1."""
    balance.start_epoch()
    for _ in range(steps):
        raw = {"ce": ce * theta, "t": t * theta, **({"a": theta} if "a" in balance.weights else {})}
        balance.observe(_out(raw), [theta])


def test_later_epochs_measure_the_ratio_again_and_once_keeps_the_calibrated_weight():
    theta = nn.Parameter(torch.tensor(0.0))
    balance = TermBalance([DistillTerm("t", None, 1.0, 0, 0, relative=True)], steps=2, probe_steps=2)
    _epoch(balance, theta, ce=2, t=4, steps=5)  # calibration: w = 1 · (2 + 2) / (4 + 4); no probe while calibrating
    assert balance.weights["t"] == pytest.approx(0.5) and balance.epoch_ratios == {}
    _epoch(balance, theta, ce=0.5, t=4, steps=5)  # CE's gradient fell 4×: the fixed weight is now 4× CE's
    assert balance.epoch_ratios == {"t": pytest.approx(0.5 * 8 / 1)}
    assert balance.weights["t"] == pytest.approx(0.5)  # once: unchanged
    metrics = balance.epoch_metrics()
    assert metrics["grad_ratio/t"] == pytest.approx(1.0) and metrics["grad_ratio_epoch/t"] == pytest.approx(4.0)


def test_every_epoch_rebalancing_holds_the_term_at_r_times_ce():
    theta = nn.Parameter(torch.tensor(0.0))
    balance = TermBalance([DistillTerm("t", None, 1.0, 0, 0, relative=True, rebalance=True),
                           DistillTerm("a", None, 7.0, 0, 0)], steps=1, probe_steps=2)
    _epoch(balance, theta, ce=2, t=4, steps=3)
    assert balance.weights == {"t": pytest.approx(0.5), "a": 7.0}
    balance.start_epoch()
    balance.observe(_out({"ce": 0.5 * theta, "t": 4 * theta, "a": theta}), [theta])
    assert balance.weights["t"] == pytest.approx(0.5)  # one probe step of two: not yet reset
    out = balance.observe(_out({"ce": 1.5 * theta, "t": 4 * theta, "a": theta}), [theta])
    assert balance.epoch_ratios["t"] == pytest.approx(0.5 * 8 / 2)  # measured with the weight it came in with
    assert balance.weights == {"t": pytest.approx(1.0 * 2 / 8), "a": 7.0}  # r · Σ CE / Σ t; absolute untouched
    torch.testing.assert_close(out.terms["t"], 0.25 * 4 * theta)  # the last probe step trains with the new weight
    assert balance.ratios() == {"t": pytest.approx(1.0), "a": pytest.approx(7.0 * 2 / 4)}  # calibration's, kept
    balance.scale(0.1)  # the health check's lower: the next rebalancing keeps it
    _epoch(balance, theta, ce=2, t=4, steps=2)
    assert balance.weights["t"] == pytest.approx(0.1 * 2 / 4)


def test_probing_every_epoch_changes_nothing_in_training():
    term = DistillTerm("sp", sp_loss, 100.0, 0, 0)
    teacher, a = _models()
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    results = []
    for probe_steps, student in ((0, a), (3, _models()[1])):
        results.append(fit(student, "rgb", loader, loader, schedule=Schedule(epochs=3, lr=3e-3, weight_decay=0.0),
                           device=torch.device("cpu"), teacher=teacher, teacher_modality="depth", terms=[term],
                           calibration_steps=1, probe_steps=probe_steps))
    b = student
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert "grad_ratio_epoch/sp" not in results[0].history[1]
    assert [r.get("grad_ratio_epoch/sp", 0) > 0 for r in results[1].history] == [False, True, True]


def test_a_recipe_rebalances_a_relative_weight_every_epoch_and_refuses_it_on_an_absolute_one():
    from pydantic import ValidationError

    entry = loss_entry({"name": "sp", "weight": 1.0, "relative": True, "rebalance": "every_epoch",
                        "pairs": [{"teacher": -1, "student": -1}]})
    assert "1× CE's gradient, every epoch" in describe_losses([entry])
    with pytest.raises(ValidationError, match="add 'relative: true'"):
        loss_entry({"name": "sp", "weight": 3000, "rebalance": "every_epoch", "pairs": [{"teacher": -1, "student": -1}]})


def test_a_warming_term_ramps_linearly_from_zero_by_hand_and_its_calibration_is_unchanged():
    theta = nn.Parameter(torch.tensor(0.0))
    terms = [DistillTerm("t", None, 1.0, 0, 0, relative=True, warmup_epochs=2),
             DistillTerm("a", None, 6.0, 0, 0, warmup_epochs=0.5), DistillTerm("b", None, 3.0, 0, 0)]
    balance = TermBalance(terms, steps=1, steps_per_epoch=4)  # warm-ups of 8 and 2 steps
    out = balance.observe(_out({"ce": 2 * theta, "t": 4 * theta, "a": theta, "b": theta}), [theta])
    assert balance.full == {"t": pytest.approx(0.5), "a": 6.0, "b": 3.0}  # r · 2 / 4, as without a warm-up
    assert balance.weights == {"t": 0.0, "a": 0.0, "b": 3.0}  # step 0: only the term without a warm-up counts
    torch.testing.assert_close(out.terms["t"], torch.tensor(0.0))
    balance.at_step(1)
    assert balance.weights == {"t": pytest.approx(0.5 / 8), "a": pytest.approx(3.0), "b": 3.0}
    balance.at_step(4)
    assert balance.weights == {"t": pytest.approx(0.25), "a": 6.0, "b": 3.0}  # "a" is past its warm-up
    balance.at_step(100)
    assert balance.weights == {"t": pytest.approx(0.5), "a": 6.0, "b": 3.0}
    assert balance.ratios() == {"t": pytest.approx(1.0), "a": pytest.approx(3.0), "b": pytest.approx(1.5)}


def test_a_warm_up_trains_the_first_step_on_ce_alone_and_records_the_ramped_weight():
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    steps = len(loader)
    schedule = Schedule(epochs=1, lr=3e-3, weight_decay=0.0)

    def first_step(terms):  # one step of training
        teacher, student = _models()
        one = torch.utils.data.DataLoader(RandomPairs(n=8), batch_size=8)
        fit(student, "rgb", one, one, schedule=schedule, device=torch.device("cpu"), teacher=teacher,
            teacher_modality="depth", terms=terms)
        return student

    warming = first_step([DistillTerm("sp", sp_loss, 100.0, 0, 0, warmup_epochs=1)])
    alone = first_step([])
    plain = first_step([DistillTerm("sp", sp_loss, 100.0, 0, 0)])
    for p, q, r in zip(warming.parameters(), alone.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert any(not torch.equal(p, r) for p, r in zip(warming.parameters(), plain.parameters()))
    _, result = _fit(DistillTerm("sp", sp_loss, 100.0, 0, 0, warmup_epochs=2), calibration_steps=1)
    # the last step of epoch 1 is step steps − 1 of a 2·steps ramp; epoch 2 ends at step 2·steps − 1
    assert result.history[0]["weight/sp"] == pytest.approx(100.0 * (steps - 1) / (2 * steps))
    assert result.history[1]["weight/sp"] == pytest.approx(100.0 * (2 * steps - 1) / (2 * steps))
    assert result.history[0]["grad_ratio/sp"] > 0  # the full weight's ratio, measured as always


def test_a_recipe_warms_a_term_up_and_the_tables_say_so():
    entry = loss_entry({"name": "sp", "weight": 1.0, "relative": True, "warmup_epochs": 4,
                        "pairs": [{"teacher": -1, "student": -1}]})
    assert "1× CE's gradient, warmed up over 4 epochs" in describe_losses([entry])
