"""A tiny loss comparison through the command line: one table, resumable, reproducible."""

import json

import pytest
import torch
import yaml

from pldistill.cli import main
from pldistill.models import build_model

BASE = {
    "name": "tiny_base",
    "data": {"kind": "synthetic_shapes", "num_train": 256, "num_test": 128, "image_size": 32},
    "teacher": {"model": "resnet10t", "modality": "depth"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}]},
    "schedule": {"epochs": 1, "batch_size": 32, "lr": 0.002},
}
COMPARISON = {
    "name": "tiny_cmp",
    "base": "base.yaml",
    "seeds": [0, 1],
    "variants": {
        "sp": [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}],
        "fitnet+kd": [{"name": "fitnet", "weight": 10.0, "pairs": "auto"}, {"name": "kd", "weight": 1.0}],
    },
}


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    (root / "base.yaml").write_text(yaml.safe_dump(BASE))
    (root / "cmp.yaml").write_text(yaml.safe_dump(COMPARISON, sort_keys=False))
    assert main(["compare", str(root / "cmp.yaml"), "--runs-dir", str(root / "runs"), "--quiet"]) == 0
    (run_dir,) = (root / "runs" / "tiny_cmp").iterdir()
    return root, run_dir


def test_one_table_with_every_row_and_seed(comparison):
    _, run_dir = comparison
    results = json.loads((run_dir / "comparison.json").read_text())
    assert [r["row"] for r in results["rows"]] == ["scratch", "sp", "fitnet+kd", "teacher"]
    assert len(results["cells"]) == 2 * 4
    for row in results["rows"]:
        assert row["seeds"] == [0, 1]
        assert row["mean"] == pytest.approx(sum(row["test_acc"]) / 2)
    scratch = results["rows"][0]["test_acc"]
    sp = results["rows"][1]
    assert sp["gain_mean"] == pytest.approx(sum(a - s for a, s in zip(sp["test_acc"], scratch)) / 2)
    table = (run_dir / "comparison.md").read_text()
    assert "| fitnet+kd | CE + FitNet (weight 10; stages t1↔s1, t3↔s3, t4↔s4) + KD (weight 1; T=4) |" in table
    assert (run_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in run_dir.glob("seed*")} == {"seed0", "seed1"}


def test_resume_trains_only_missing_rows_and_reproduces_them(comparison, capsys):
    root, run_dir = comparison
    cells_file = run_dir / "cells.jsonl"
    full = cells_file.read_text().splitlines()
    cells_file.write_text("\n".join(full[:5]) + "\n")  # as if it crashed during seed 1
    capsys.readouterr()
    assert main(["compare", str(root / "cmp.yaml"), "--resume", str(run_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "[seed 0]" not in out and "[seed 1] fitnet+kd student" in out
    again = cells_file.read_text().splitlines()
    assert len(again) == 8
    strip = lambda lines: sorted((c["seed"], c["row"], c["test_acc"]) for c in map(json.loads, lines))
    assert strip(again) == strip(full)  # same seeds, same accuracies: training is deterministic


def test_same_modality_control_trains_its_own_teacher_and_reports_the_privileged_gain(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    sp = [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}]
    comparison = dict(COMPARISON, seeds=[0], variants={
        "sp": sp, "sp-rgb": {"losses": sp, "teacher_modality": "rgb", "control_for": "sp"}})
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(comparison, sort_keys=False))
    assert main(["compare", str(tmp_path / "cmp.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "tiny_cmp").iterdir()
    results = json.loads((run_dir / "comparison.json").read_text())
    assert [r["row"] for r in results["rows"]] == ["scratch", "sp", "sp-rgb", "teacher", "teacher_rgb"]
    acc = {c["row"]: c["test_acc"] for c in results["cells"]}
    (gain,) = results["controlled_gains"]
    assert gain["row"] == "sp" and gain["control"] == "sp-rgb"
    assert gain["mean"] == pytest.approx(acc["sp"] - acc["sp-rgb"])
    control = torch.load(run_dir / "seed0" / "teacher_rgb" / "checkpoints" / "teacher.pt", weights_only=True)
    assert control["state_dict"]["conv1.0.weight"].shape[1] == 3  # the control teacher takes RGB
    assert "sp − sp-rgb (paired over 1 seeds)" in (run_dir / "comparison.md").read_text()
    # the diagnostic, measured on the probe when the control teacher is ready: one line per seed and modality
    (record,) = results["agreement"]
    assert record["seed"] == 0 and record["privileged"] == "depth" and record["modality"] == "rgb"
    (stage,) = [k.split("/")[1] for k in record if k.startswith("cka/")]  # the distilled teacher stage
    assert -1 <= record[f"simcorr/{stage}"] <= 1 and 0 <= record[f"cka/{stage}"] <= 1 + 1e-6
    assert (f"Teacher agreement, the depth teacher against the rgb one on the probe (measured before any student "
            f"they teach trained), mean over 1 seed(s): CKA {record[f'cka/{stage}']:.2f}, similarities r = "
            f"{record[f'simcorr/{stage}']:.2f}") in (run_dir / "comparison.md").read_text()
    assert len((run_dir / "agreement.jsonl").read_text().splitlines()) == 1


def test_resume_refuses_a_variant_whose_losses_changed(comparison, capsys):
    root, run_dir = comparison
    changed = dict(COMPARISON, variants=dict(COMPARISON["variants"], sp=[
        {"name": "sp", "weight": 10.0, "pairs": [{"teacher": -1, "student": -1}]}]))
    (root / "changed.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    before = (run_dir / "cells.jsonl").read_text()
    assert main(["compare", str(root / "changed.yaml"), "--resume", str(run_dir), "--quiet"]) == 2
    assert "variants ['sp'] changed since" in capsys.readouterr().err
    assert (run_dir / "cells.jsonl").read_text() == before


def test_teacher_used_as_is_from_another_label_space_still_teaches_features(tmp_path):
    weights = tmp_path / "foreign_teacher.pt"
    torch.save(build_model("resnet10t", 1, 10).state_dict(), weights)
    recipe = dict(BASE, name="as_is", teacher={"model": "resnet10t", "modality": "depth",
                                                "weights": str(weights), "train": False})
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["run", str(tmp_path / "r.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "as_is").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["teacher"]["test_acc"] is None
    assert "predicts 10 classes" in results["teacher"]["note"]
    assert 0 <= results["students"]["distilled"]["test_acc"] <= 1
    assert "| teacher | resnet10t | depth | depth | 4.93M | n/a | predicts 10 classes" in (run_dir / "results.md").read_text()


def test_command_line_overrides_reach_the_base_and_every_variant(tmp_path):
    from pldistill.compare import load_comparison

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(dict(COMPARISON, overrides=["schedule.epochs=3"])))
    comparison, base, variants = load_comparison(tmp_path / "cmp.yaml", ["data.num_train=64", "schedule.epochs=2"])
    assert comparison.overrides == ["schedule.epochs=3", "data.num_train=64", "schedule.epochs=2"]  # file's first
    for recipe in [base, *variants.values()]:
        assert recipe.data.num_train == 64 and recipe.schedule.epochs == 2
    assert variants["sp"].distill.losses[0].weight == 3000.0  # a variant's losses still replace the base's


def test_resume_refuses_other_overrides_than_the_folder_was_trained_with(comparison, capsys):
    root, run_dir = comparison
    before = (run_dir / "cells.jsonl").read_text()
    assert main(["compare", str(root / "cmp.yaml"), "data.num_test=64", "--resume", str(run_dir), "--quiet"]) == 2
    assert "trained with overrides none, resumed with ['data.num_test=64']" in capsys.readouterr().err
    assert (run_dir / "cells.jsonl").read_text() == before


def test_a_base_without_a_top_level_test_count_gets_its_table_and_resumes_to_it(tmp_path):
    base = {
        "name": "tiny_res",
        "data": {"kind": "resolution_pairs", "image_size": 32, "factor": 2,
                 "source": {"kind": "synthetic_shapes", "num_train": 64, "num_test": 48}},
        "teacher": {"model": "resnet10t", "modality": "rgb_hires"},
        "student": {"model": "resnet10t", "modality": "rgb"},
        "distill": {"losses": [{"name": "kd", "weight": 1.0}], "same_modality_control": False},
        "schedule": {"epochs": 1, "batch_size": 32, "lr": 0.002},
        "logging": {"probe_size": 0},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(
        {"name": "tiny_res_cmp", "base": "base.yaml", "seeds": [0], "variants": {"kd": [{"name": "kd", "weight": 1.0}]}}))
    assert main(["compare", str(tmp_path / "cmp.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "tiny_res_cmp").iterdir()
    table = (run_dir / "comparison.md").read_text()
    assert "on resolution_pairs (48 test samples)" in table
    (run_dir / "comparison.md").unlink()  # as if the last call died while writing its table
    assert main(["compare", str(tmp_path / "cmp.yaml"), "--resume", str(run_dir), "--quiet"]) == 0
    assert (run_dir / "comparison.md").read_text() == table  # nothing retrained, the same table


def test_rows_recorded_before_later_loss_keys_existed_still_match_and_a_set_key_does_not(tmp_path):
    from pldistill.compare import _recorded_spec, _spec, load_comparison

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    variants = {"sp": [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}],
                "sp-warm": [{"name": "sp", "weight": 3000.0, "warmup_epochs": 2,
                             "pairs": [{"teacher": -1, "student": -1}]}]}
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump({**COMPARISON, "variants": variants}))
    comparison, _, recipes = load_comparison(tmp_path / "cmp.yaml")
    # what a folder written on 2026-12-02 recorded for the row (no project, rebalance or warmup_epochs keys)
    recorded = [{"name": "sp", "weight": 3000.0, "relative": False, "pairs": [{"teacher": -1, "student": -1}],
                 "pool": False, "scope": "local"}]
    assert _spec(comparison.variants["sp"], recipes["sp"]) == recorded
    warm = _spec(comparison.variants["sp-warm"], recipes["sp-warm"])
    assert warm != recorded and warm[0]["warmup_epochs"] == 2
    # a folder written between (2026-12-05) recorded project at its default: the same row
    between = [{**recorded[0], "project": False}]
    assert _recorded_spec(between) == _spec(comparison.variants["sp"], recipes["sp"])
    assert _recorded_spec([{**recorded[0], "project": True}]) != recorded


def test_a_folder_that_kept_only_its_cells_trains_the_scratch_student_again_for_the_health_check(comparison, capsys):
    root, run_dir = comparison
    kept = root / "kept_cells"
    kept.mkdir()
    for name in ("comparison.yaml", "cells.jsonl"):  # what experiments/results/ keeps of a comparison
        (kept / name).write_text((run_dir / name).read_text())
    more = dict(COMPARISON, variants=dict(COMPARISON["variants"], kd=[{"name": "kd", "weight": 1.0}]))
    (root / "more.yaml").write_text(yaml.safe_dump(more, sort_keys=False))
    capsys.readouterr()
    assert main(["compare", str(root / "more.yaml"), "--resume", str(kept), "--seeds", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "[seed 0] scratch student (CE only)" in out and "[seed 0] kd student" in out
    assert (kept / "seed0" / "checkpoints" / "student_scratch.pt").exists()
    cells = [json.loads(line) for line in (kept / "cells.jsonl").read_text().splitlines()]
    assert [(c["seed"], c["row"]) for c in cells].count((0, "scratch")) == 1  # the recorded cell is kept, not added
    assert (0, "kd") in [(c["seed"], c["row"]) for c in cells]


def test_rows_trains_only_the_named_variants_and_refuses_unknown_ones(comparison, capsys):
    root, run_dir = comparison
    kept = root / "only_rows"
    kept.mkdir()
    for name in ("comparison.yaml", "cells.jsonl"):
        (kept / name).write_text((run_dir / name).read_text())
    more = dict(COMPARISON, variants=dict(COMPARISON["variants"], kd=[{"name": "kd", "weight": 1.0}],
                                          at=[{"name": "at", "weight": 100.0, "pairs": [{"teacher": 2, "student": 2}]}]))
    (root / "rows.yaml").write_text(yaml.safe_dump(more, sort_keys=False))
    assert main(["compare", str(root / "rows.yaml"), "--resume", str(kept), "--rows", "nope", "--quiet"]) == 2
    assert "--rows ['nope']: " in capsys.readouterr().err
    assert main(["compare", str(root / "rows.yaml"), "--resume", str(kept), "--seeds", "1", "--rows", "at",
                 "--quiet"]) == 0
    rows = [(c["seed"], c["row"]) for c in map(json.loads, (kept / "cells.jsonl").read_text().splitlines())]
    assert (1, "at") in rows and (1, "kd") not in rows and (0, "at") not in rows
    assert yaml.safe_load((kept / "comparison.yaml").read_text())["seeds"] == [0, 1]  # every seed it holds
    assert "| kd |" not in (kept / "comparison.md").read_text()  # no cells yet: no row


def test_a_row_sets_its_own_health_policy_over_the_base_recipe_and_its_spec_records_it(tmp_path):
    from pldistill.compare import _recorded_spec, _spec, load_comparison

    base = {**BASE, "distill": {**BASE["distill"], "calibration_steps": 3, "health": {"patience": 4}}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    variants = {"sp": [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}],
                "sp-guarded": {"health": {"on_harm": "lower", "ce_margin": 0.05},
                               "losses": [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}]}}
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump({**COMPARISON, "variants": variants}))
    comparison, _, recipes = load_comparison(tmp_path / "cmp.yaml")
    plain, guarded = recipes["sp"].distill, recipes["sp-guarded"].distill
    assert plain.calibration_steps == guarded.calibration_steps == 3  # the base's distill keys reach every row
    assert (plain.health.on_harm, plain.health.patience) == ("warn", 4)
    assert (guarded.health.on_harm, guarded.health.ce_margin, guarded.health.patience) == ("lower", 0.05, 4)
    assert isinstance(_spec(comparison.variants["sp"], recipes["sp"]), list)  # as older folders recorded it
    assert _spec(comparison.variants["sp-guarded"], recipes["sp-guarded"])["health"]["on_harm"] == "lower"


def _copy_with_rows(comparison, name: str, rows: dict):
    """A copy of the module's finished comparison (teachers and scratch students kept) and a file with more rows."""
    import shutil

    root, run_dir = comparison
    copy = root / name
    shutil.copytree(run_dir, copy)
    (root / f"{name}.yaml").write_text(yaml.safe_dump(dict(COMPARISON, variants={**COMPARISON["variants"], **rows}),
                                                      sort_keys=False))
    return root / f"{name}.yaml", copy


def test_a_rows_health_policy_is_the_one_its_student_trains_with(comparison):
    sp = [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}]  # the file's own sp row
    path, run_dir = _copy_with_rows(comparison, "strict", {"sp-strict": {"health": {"dominance": 1e-6,
                                                                                     "on_harm": "stop"}, "losses": sp}})
    assert main(["compare", str(path), "--resume", str(run_dir), "--seeds", "0", "--rows", "sp-strict",
                 "--quiet"]) == 0
    cells = {(c["seed"], c["row"]): c for c in map(json.loads, (run_dir / "cells.jsonl").read_text().splitlines())}
    assert [(f["kind"], f["action"]) for f in cells[0, "sp-strict"]["health"]] == [("dominates", "stop")]
    assert all(f["action"] == "warn" for f in cells[0, "sp"]["health"])  # the same losses under the base's policy


def test_a_hallucination_row_trains_a_network_on_the_students_modality_that_then_teaches(comparison, capsys):
    root, _ = comparison
    sp = [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}]
    hint = [{"name": "fitnet", "weight": 1.0, "pairs": [{"teacher": 3, "student": 3}]}]
    path, run_dir = _copy_with_rows(comparison, "hallucination", {"sp-hallucinated": {"hallucinate": hint,
                                                                                      "losses": sp}})
    capsys.readouterr()
    assert main(["compare", str(path), "--resume", str(run_dir), "--seeds", "0", "--rows", "sp-hallucinated",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "hallucination network resnet10t on 'rgb' for 1 epochs, reproducing the 'depth' teacher" in out
    cells = {(c["seed"], c["row"]): c for c in map(json.loads, (run_dir / "cells.jsonl").read_text().splitlines())}
    assert {(0, "sp-hallucinated"), (0, "teacher_hallucination")} <= set(cells)
    assert "FitNet" in cells[0, "teacher_hallucination"]["losses"]
    network = torch.load(run_dir / "seed0" / "teacher_hallucination" / "checkpoints" / "teacher.pt", weights_only=True)
    assert network["modality"] == "rgb" and network["result"]["reproduces"] == "depth"
    assert network["state_dict"]["conv1.0.weight"].shape[1] == 3  # it reads RGB: the student never meets depth
    history = network["result"]["history"]
    assert history[0]["train/terms/fitnet/t3-s3"] > 0  # it was trained towards the depth teacher's stage 3
    assert (run_dir / "seed0" / "teacher_hallucination" / "checkpoints" / "student_sp-hallucinated.pt").exists()
    assert "| teacher_hallucination |" in (run_dir / "comparison.md").read_text()
    bad = {"sp-x": {"hallucinate": hint, "teacher_modality": "rgb", "losses": sp}}
    (root / "bad.yaml").write_text(yaml.safe_dump({**COMPARISON, "variants": bad}))
    assert main(["compare", str(root / "bad.yaml"), "--quiet"]) == 2
    assert "does not combine with 'teacher_modality'" in capsys.readouterr().err


def test_a_resumed_control_row_is_health_checked_against_the_scratch_student(comparison, monkeypatch):
    """A control's sub-run copies the scratch reference when it is made: a resumed seed must read it back first."""
    from pldistill.engine import health as health_module
    from pldistill.stages import context

    references = []

    class Recording(health_module.HealthCheck):
        def __init__(self, policy, reference):
            references.append(reference)
            super().__init__(policy, reference)

    monkeypatch.setattr(context, "HealthCheck", Recording)
    sp = [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}]
    path, run_dir = _copy_with_rows(comparison, "control_health",
                                    {"sp-rgb-teacher": {"teacher_modality": "rgb", "control_for": "sp", "losses": sp}})
    assert main(["compare", str(path), "--resume", str(run_dir), "--seeds", "0", "--rows", "sp-rgb-teacher",
                 "--quiet"]) == 0
    scratch = torch.load(run_dir / "seed0" / "checkpoints" / "student_scratch.pt", weights_only=True)
    assert references == [scratch["result"]["history"]]  # the control student's, and not None


def test_a_control_on_one_modality_of_a_dropout_teachers_stack_is_the_plain_teacher_of_that_modality(tmp_path):
    """ModDrop zeroes parts of a stack; a control teacher on RGB alone has none, so it is the ordinary RGB teacher
    (same hash: the flagship's cached RGB teacher is reused) instead of a refusal."""
    from pldistill.compare import load_comparison
    from pldistill.recipe import parse_recipe

    stacked = {**BASE, "data": {**BASE["data"], "stack": {"rgbd": ["rgb", "depth"]}},
               "teacher": {"model": "resnet10t", "modality": "rgbd", "modality_dropout": 0.5}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(stacked))
    sp = [{"name": "sp", "weight": 1.0, "relative": True, "pairs": [{"teacher": -1, "student": -1}]}]
    variants = {"sp": sp, "sp-rgb-teacher": {"teacher_modality": "rgb", "control_for": "sp", "losses": sp}}
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump({**COMPARISON, "variants": variants}))
    _, base, recipes = load_comparison(tmp_path / "cmp.yaml")
    assert (recipes["sp"].teacher.modality, recipes["sp"].teacher.modality_dropout) == ("rgbd", 0.5)
    control = recipes["sp-rgb-teacher"]
    assert (control.teacher.modality, control.teacher.modality_dropout) == ("rgb", 0.0)
    plain_rgb = parse_recipe({**BASE, "teacher": {"model": "resnet10t", "modality": "rgb"}}, tmp_path / "p.yaml")
    assert control.teacher_hash() == plain_rgb.teacher_hash()
    assert recipes["sp"].teacher_hash() != base.model_copy(
        update={"teacher": base.teacher.model_copy(update={"modality_dropout": 0.0})}).teacher_hash()


def test_a_mixup_row_is_health_checked_on_test_accuracy_only(comparison):
    """STKD's student trains on mixed samples and labels while scratch does not: its training CE is higher by
    construction, so its epoch records say so and the check compares test accuracy only (engine/health.py); that
    holds for its same-modality control too, whose sub-run's recipe is the row's own (where the mixup was first
    decided, the control row was missed)."""
    from pldistill.engine.mixup import MIXUP_ALPHA

    stkd = [{"name": "stkd", "weight": 1.0}]
    rows = {"stkd": {"mixup": 1.0, "losses": stkd},
            "stkd-rgb": {"mixup": 1.0, "teacher_modality": "rgb", "control_for": "stkd", "losses": stkd},
            "kd": [{"name": "kd", "weight": 1.0}]}
    path, run_dir = _copy_with_rows(comparison, "mixup_health", rows)
    assert main(["compare", str(path), "--resume", str(run_dir), "--seeds", "0", "--rows", "stkd", "stkd-rgb", "kd",
                 "--quiet"]) == 0

    def history(stage: str, folder: str = "") -> list[dict]:
        path = run_dir / "seed0" / folder / "checkpoints" / f"student_{stage}.pt"
        return torch.load(path, weights_only=True)["result"]["history"]

    assert [h[MIXUP_ALPHA] for h in history("stkd")] == [1.0]
    assert [h[MIXUP_ALPHA] for h in history("stkd-rgb", "teacher_rgb")] == [1.0]
    assert all(MIXUP_ALPHA not in h for h in history("kd") + history("scratch"))  # these two compare CE


def test_a_call_that_trained_one_seed_reports_the_controlled_gain_over_every_seed_the_folder_holds():
    from types import SimpleNamespace

    from pldistill.compare import controlled_gains

    cells = [{"seed": s, "row": row, "test_acc": acc} for s, row, acc in
             [(0, "sp", 0.50), (0, "sp-rgb", 0.45), (1, "sp", 0.52), (1, "sp-rgb", 0.49), (2, "sp", 0.40)]]
    comparison = SimpleNamespace(seeds=[1], variants={"sp": SimpleNamespace(control_for=None),
                                                      "sp-rgb": SimpleNamespace(control_for="sp")})
    (gain,) = controlled_gains(cells, comparison)  # as after `--resume FOLDER --seeds 1`
    assert gain["seeds"] == 2  # seeds 0 and 1 hold both rows; seed 2 lacks the control
    assert gain["mean"] == pytest.approx(0.04) and gain["std"] == pytest.approx(0.0141421, rel=1e-4)
