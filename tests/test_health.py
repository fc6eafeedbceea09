"""The health check (engine/health.py): a run says when distillation is hurting its student, and can act."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from pldistill.cli import main
from pldistill.engine import Schedule, fit
from pldistill.engine.balance import TermBalance
from pldistill.engine.callbacks import TrainState
from pldistill.engine.health import HealthCheck, HealthPolicy
from pldistill.losses import sp_loss
from pldistill.models import TappedModel, build_model
from pldistill.terms import DistillTerm
from random_pairs import RandomPairs

POLICY = HealthPolicy(dominance=10.0, ce_margin=0.25, acc_points=5.0, patience=2, on_harm="warn", lower_factor=0.1)


def _state(terms) -> TrainState:
    return TrainState("student_distilled", 8, None, None, None, None, balance=TermBalance(terms, steps=1))


def _record(epoch, ce, acc, ratios=None, **terms):
    """An epoch record as fit writes it: mean weighted terms, test accuracy, the measured gradient ratios."""
    return {"epoch": epoch, "train/terms/ce": ce, "val/acc": acc, **{f"train/terms/{k}": v for k, v in terms.items()},
            **{f"grad_ratio/{k}": v for k, v in (ratios or {}).items()}}


def test_a_term_whose_gradient_drowns_ce_is_reported_once_with_its_magnitude():
    state = _state([DistillTerm("sp", sp_loss, 3000.0, 0, 0)])
    check = HealthCheck(POLICY, reference=None)
    for epoch in (1, 2):
        state.history.append(_record(epoch, 1.0, 0.4, {"sp": 36.0}, sp=35.0))
        check.on_epoch_end(state, state.history[-1])
    (finding,) = state.health
    assert finding["kind"] == "dominates" and finding["term"] == "sp" and finding["epoch"] == 1
    assert finding["magnitude"] == pytest.approx(36.0)
    assert "36× CE's" in finding["message"] and "relative: true" in finding["message"]


def test_trailing_the_scratch_student_is_reported_after_patience_epochs_only():
    state = _state([DistillTerm("sp", sp_loss, 1.0, 0, 0)])
    scratch = [_record(e, 1.0, 0.6) for e in (1, 2, 3, 4)]
    check = HealthCheck(POLICY, reference=scratch)
    # epoch 1: CE 30% above; epoch 2: fine (streak broken); epochs 3, 4: above again → found at epoch 4
    for epoch, ce in zip((1, 2, 3, 4), (1.3, 1.1, 1.3, 1.4)):
        state.history.append(_record(epoch, ce, 0.6, sp=0.1))
        check.on_epoch_end(state, state.history[-1])
    assert [(f["kind"], f["term"], f["epoch"]) for f in state.health] == [("trails", "ce", 4)]


def test_test_accuracy_is_reported_but_never_acted_on():
    policy = HealthPolicy(**{**POLICY.__dict__, "on_harm": "stop"})
    state = _state([DistillTerm("sp", sp_loss, 1.0, 0, 0)])
    check = HealthCheck(policy, reference=[_record(e, 1.0, 0.6) for e in (1, 2)])
    for epoch in (1, 2):
        state.history.append(_record(epoch, 1.0, 0.4, sp=0.1))  # 20 points behind, same CE
        check.on_epoch_end(state, state.history[-1])
    (finding,) = state.health
    assert finding["term"] == "test acc" and finding["action"] == "warn" and not state.stop


def test_on_harm_lower_scales_every_weight_and_a_resumed_stage_does_not_lower_twice():
    policy = HealthPolicy(**{**POLICY.__dict__, "on_harm": "lower"})
    terms = [DistillTerm("sp", sp_loss, 3000.0, 0, 0)]
    state = _state(terms)
    HealthCheck(policy, None).on_epoch_end(state, _record(1, 1.0, 0.4, {"sp": 36.0}, sp=35.0))
    assert state.balance.weights["sp"] == pytest.approx(300.0) and "×0.1 from here" in state.health[0]["message"]
    resumed = _state(terms)
    resumed.balance.full["sp"] = 300.0  # restored from the progress file
    resumed.history = [_record(1, 1.0, 0.4, {"sp": 36.0}, sp=35.0), _record(2, 1.0, 0.4, {"sp": 3.6}, sp=3.5)]
    HealthCheck(policy, None).on_epoch_end(resumed, resumed.history[-1])
    assert resumed.balance.weights["sp"] == 300.0 and [f["epoch"] for f in resumed.health] == [1]


def _models():
    torch.manual_seed(0)
    teacher = TappedModel(build_model("test_efficientnet_gn", 1, 3, None, 16), [-1]).eval()
    student = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1])
    return teacher, student


def test_on_harm_stop_ends_a_real_fit_after_the_epoch_it_was_found():
    teacher, student = _models()
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    policy = HealthPolicy(**{**POLICY.__dict__, "on_harm": "stop"})
    result = fit(student, "rgb", loader, loader, schedule=Schedule(epochs=4, lr=3e-3, weight_decay=0.0),
                 device=torch.device("cpu"), teacher=teacher, teacher_modality="depth",
                 terms=[DistillTerm("sp", sp_loss, 1e6, 0, 0)], callbacks=[HealthCheck(policy, None)])
    assert len(result.history) == 1 and result.health[0]["kind"] == "dominates"


TINY = {
    "name": "tiny_health",
    "data": {"kind": "synthetic_shapes", "num_train": 96, "num_test": 32, "image_size": 16},
    "teacher": {"model": "test_efficientnet_gn", "modality": "depth"},
    "student": {"model": "test_efficientnet_ln", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 1e6, "pairs": [{"teacher": -1, "student": -1}]}],
                "same_modality_control": False},
    "schedule": {"epochs": 2, "batch_size": 32, "lr": 0.002},
    "logging": {"probe_size": 16, "probe_knn": 4},
}


def test_a_run_whose_term_dominates_says_so_in_one_line_and_in_results_and_report(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["run", str(tmp_path / "tiny.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs" / "tiny_health").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    findings = results["students"]["distilled"]["health"]
    assert findings[0]["kind"] == "dominates" and findings[0]["epoch"] == 1
    line = [ln for ln in out.splitlines() if ln.startswith("health: student_distilled epoch 1:")]
    assert len(line) == 2  # as it happened, and again under the results table
    assert "health: student_distilled epoch 1" in (run_dir / "report.html").read_text()
    assert "health" not in results["students"]["scratch"]  # nothing to check without a teacher


def test_the_same_recipe_with_a_relative_weight_is_healthy_and_records_its_weight(tmp_path, capsys):
    recipe = dict(TINY, distill={**TINY["distill"], "losses": [
        {"name": "sp", "weight": 1.0, "relative": True, "pairs": [{"teacher": -1, "student": -1}]}]})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["run", str(tmp_path / "tiny.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs" / "tiny_health").iterdir()
    distilled = json.loads((run_dir / "results.json").read_text())["students"]["distilled"]
    assert not [f for f in distilled["health"] if f["kind"] == "dominates"]
    last = distilled["history"][-1]
    assert last["grad_ratio/sp/t-1-s-1"] == pytest.approx(1.0) and last["weight/sp/t-1-s-1"] > 0
    assert "1× CE's gradient" in out and "Distillation weights (distilled student): sp/t-1-s-1: weight" in out


def test_comparison_and_sweep_tables_list_the_findings_under_the_table():
    from pldistill.compare import health_notes
    from pldistill.sweep import sweep_table

    finding = {"kind": "dominates", "term": "sp/t-1-s-1", "message": "health: student_sp epoch 1: sp/t-1-s-1's …"}
    cells = [{"row": "sp", "seed": 1, "health": [finding]}, {"row": "kd", "seed": 1, "health": []}, {"row": "scratch"}]
    assert health_notes(cells) == [f"sp (seed 1): {finding['message']}"]
    summary = {"recipe": "r", "command": "c", "wandb_group": "g", "wall_seconds": 60.0,
               "host": {"platform": "p", "torch": "t", "threads": 2, "device": "cpu"},
               "rows": [{"cell": "a", "seeds": [0]}],
               "runs": [{"cell": "a", "seed": 0, "health": [finding["message"]]}]}
    assert f"- a (seed 0): {finding['message']}" in sweep_table(summary).splitlines()


def test_a_term_that_comes_to_drown_ce_later_in_training_is_reported_at_that_epoch():
    state = _state([DistillTerm("sp", sp_loss, 1.0, 0, 0, relative=True)])
    check = HealthCheck(POLICY, reference=None)
    for epoch, later in ((1, None), (2, 3.0), (3, 12.0), (4, 14.0)):
        record = _record(epoch, 0.2, 0.4, {"sp": 1.0}, sp=2.0)
        if later is not None:
            record["grad_ratio_epoch/sp"] = later  # the epoch's probe steps (balance.py): CE's gradient has shrunk
        state.history.append(record)
        check.on_epoch_end(state, record)
    (finding,) = state.health
    assert (finding["kind"], finding["epoch"], finding["magnitude"]) == ("dominates", 3, 12.0)


def test_on_harm_lower_lowers_again_while_the_training_ce_still_trails_and_warn_reports_once():
    reference = [_record(e, 1.0, 0.6) for e in range(1, 8)]
    ces = [1.0, 1.3, 1.3, 1.3, 1.3, 1.0, 1.3]  # behind from epoch 2; level at epoch 6
    for on_harm, lowered_at in (("lower", [3, 5]), ("warn", [3])):
        state = _state([DistillTerm("sp", sp_loss, 100.0, 0, 0)])
        check = HealthCheck(HealthPolicy(**{**POLICY.__dict__, "on_harm": on_harm}), reference)
        for epoch, ce in enumerate(ces, start=1):
            state.history.append(_record(epoch, ce, 0.6, sp=0.1))
            check.on_epoch_end(state, state.history[-1])
        assert [f["epoch"] for f in state.health] == lowered_at
        assert state.balance.weights["sp"] == pytest.approx(100.0 * (0.01 if on_harm == "lower" else 1.0))


def test_a_student_on_mixed_samples_is_compared_on_test_accuracy_only():
    from pldistill.engine.mixup import MIXUP_ALPHA

    """Joint mixup (STKD) makes the training CE one on mixed inputs and labels: higher than scratch's by
    construction, so trailing on it would be a false alarm (and, with on_harm: lower, would cut a helpful term)."""
    policy = HealthPolicy(**{**POLICY.__dict__, "on_harm": "lower"})
    state = _state([DistillTerm("stkd", sp_loss, 1.0, 0, 0)])
    check = HealthCheck(policy, reference=[_record(e, 1.0, 0.6) for e in (1, 2, 3)])
    for epoch, acc in zip((1, 2, 3), (0.6, 0.4, 0.4)):
        record = {**_record(epoch, 2.0, acc, sp=0.1), MIXUP_ALPHA: 1.0}  # CE twice scratch's every epoch
        state.history.append(record)
        check.on_epoch_end(state, state.history[-1])
    assert [(f["term"], f["epoch"]) for f in state.health] == [("test acc", 3)]
    assert state.balance.weights["stkd"] == 1.0  # nothing lowered
