"""student.holdout: the run delivers the distilled student only if a hold-out of the training split says it
did not hurt; the test set reports what was delivered, it never chooses it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from pldistill.cli import main
from pldistill.compare import delivery_notes
from pldistill.stages.delivery import deliver

TINY = {
    "name": "tiny_delivery",
    "data": {"kind": "synthetic_shapes", "num_train": 160, "num_test": 64, "image_size": 32},
    "teacher": {"model": "test_efficientnet_gn", "modality": "depth"},
    "student": {"model": "test_efficientnet_ln", "modality": "rgb", "holdout": 0.25, "refit": False},
    "distill": {"losses": [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}]},
    "schedule": {"epochs": 2, "batch_size": 32, "lr": 0.002},
    "logging": {"probe_size": 0},
}


def _student(test_acc, holdout_acc):
    return {"test_acc": test_acc, "holdout_acc": holdout_acc}


def test_distillation_is_declined_only_when_it_scores_below_scratch_on_the_holdout():
    lower = deliver(_student(0.60, 0.55), _student(0.70, 0.50), num_holdout=400)
    assert lower["student"] == "scratch" and lower["test_acc"] == 0.60 and lower["gain"] == 0.0
    # the hold-out decides even where the test set would have said otherwise: the test set never chooses
    assert "declined" in lower["reason"] and "50.0%" in lower["reason"] and "-5.0 points" in lower["reason"]
    # noise of a difference of two accuracies near 55% on 400 samples: sqrt(2 · 0.55 · 0.45 / 400) = 3.5 points
    assert "noise ±3.5" in lower["reason"]
    tie = deliver(_student(0.60, 0.55), _student(0.58, 0.55), num_holdout=400)
    assert tie["student"] == "distilled" and tie["gain"] == pytest.approx(-0.02)
    higher = deliver(_student(0.60, 0.50), _student(0.66, 0.52), num_holdout=400)
    assert higher["student"] == "distilled" and higher["gain"] == pytest.approx(0.06)
    assert higher["holdout_acc"] == {"scratch": 0.50, "distilled": 0.52}


def test_a_comparison_table_counts_the_declined_seeds_and_pairs_the_delivered_gain():
    cells = [{"seed": 0, "row": "scratch", "test_acc": 0.50}, {"seed": 1, "row": "scratch", "test_acc": 0.60},
             {"seed": 0, "row": "sp", "test_acc": 0.40, "delivered": "scratch", "delivered_acc": 0.50},
             {"seed": 1, "row": "sp", "test_acc": 0.66, "delivered": "distilled", "delivered_acc": 0.66},
             {"seed": 0, "row": "kd", "test_acc": 0.55}]  # trained without a hold-out: no line
    (line,) = delivery_notes(cells)
    # gains 0.0 and +6.0: mean +3.0, sample std 4.2
    assert line == "sp: +3.0 ± 4.2 points over 2 seed(s); distillation declined on 1 (seeds 0)"


def test_students_never_train_on_the_holdout_the_teacher_does_and_the_run_delivers_by_it(tmp_path, monkeypatch,
                                                                                        capsys):
    import pldistill.run as run_module

    real_check = run_module.checked_datasets
    loads: list[tuple[int, tuple[str, ...]]] = []

    def spied_check(data, *args, **kwargs):
        train, test = real_check(data, *args, **kwargs)
        load = train.load

        def spy(index, names):
            loads.append((int(index), tuple(names)))
            return load(index, names)

        train.load = spy
        return train, test

    monkeypatch.setattr(run_module, "checked_datasets", spied_check)
    monkeypatch.setenv("PLDISTILL_CACHE", str(tmp_path / "cache"))  # the teacher trains here, not reused from a cache
    probed = dict(TINY, logging={"probe_size": 16, "probe_knn": 4})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(probed))
    assert main(["run", str(tmp_path / "tiny.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    out = capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs" / "tiny_delivery").iterdir()
    results = json.loads((run_dir / "results.json").read_text())

    held = json.loads((run_dir / "data_split.json").read_text())["student_holdout"]["indices_into_train"]
    assert len(held) == 40 and results["dataset"]["num_train"] == 160  # a quarter of each class of 160
    held = set(held)
    distilled_reads = {i for i, names in loads if set(names) == {"rgb", "depth"}}  # a distilled student's batches
    assert distilled_reads and not distilled_reads & held
    assert held <= {i for i, names in loads if names == ("depth",)}  # the teachers train on all of the split
    control_reads = {i for i, names in loads if names == ("rgb",)}
    assert held <= control_reads  # read by the hold-out evaluations (rgb only), never with the privileged depth

    students, delivered = results["students"], results["delivered"]
    for kind in ("scratch", "distilled"):  # measured against the teacher on the probe as without a hold-out
        assert any(k.startswith("align/cka/") for k in students[kind]["alignment"])
    s, d = students["scratch"]["holdout_acc"], students["distilled"]["holdout_acc"]
    assert delivered["student"] == ("distilled" if d >= s else "scratch")
    assert delivered["test_acc"] == students[delivered["student"]]["test_acc"]
    assert delivered["num_holdout"] == 40
    assert results["control"]["student"]["holdout_acc"] is not None  # the control's student trained without it too
    assert f"delivered: the {delivered['student']} student" in out
    assert f"Delivered (student.holdout): the {delivered['student']} student" in (run_dir / "results.md").read_text()
    assert "Delivered: the" in (run_dir / "report.html").read_text()

    assert main(["export", str(run_dir), "--out", str(tmp_path / "exported")]) == 0
    config = json.loads((tmp_path / "exported" / "config.json").read_text())["pldistill"]
    assert config["student"] == delivered["student"] and config["delivery"]["reason"] == delivered["reason"]
    assert config["test_acc"] == delivered["test_acc"]


def _tiny_kd_comparison(tmp_path, name: str, **student) -> tuple:
    """A one-seed, one-epoch comparison of a KD row on TINY (no control); its folder and cells by row."""
    base = dict(TINY, distill={"same_modality_control": False, **TINY["distill"]},
                schedule={**TINY["schedule"], "epochs": 1}, student={**TINY["student"], **student})
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    comparison = {"name": name, "base": "base.yaml", "seeds": [0], "variants": {"kd": [{"name": "kd", "weight": 1.0}]}}
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(comparison, sort_keys=False))
    assert main(["compare", str(tmp_path / "cmp.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / name).iterdir()
    return run_dir, {c["row"]: c for c in map(json.loads, (run_dir / "cells.jsonl").read_text().splitlines())}


def test_a_comparison_with_a_holdout_records_each_rows_delivery(tmp_path):
    run_dir, cells = _tiny_kd_comparison(tmp_path, "tiny_delivery_cmp")
    scratch, kd = cells["scratch"], cells["kd"]
    assert kd["delivered"] == ("distilled" if kd["holdout_acc"] >= scratch["holdout_acc"] else "scratch")
    assert kd["delivered_acc"] == (kd["test_acc"] if kd["delivered"] == "distilled" else scratch["test_acc"])
    assert np.isfinite(scratch["holdout_acc"])
    assert "Delivered under student.holdout" in (run_dir / "comparison.md").read_text()


def test_refit_delivers_the_whole_split_student_of_the_kind_the_holdout_chose():
    from pldistill.stages.delivery import refitted

    decision = deliver(_student(0.60, 0.55), _student(0.70, 0.50), num_holdout=400)  # declined on the hold-out
    whole = refitted(decision, scratch={"test_acc": 0.64}, distilled={"test_acc": 0.75})
    assert whole["student"] == "scratch" and whole["test_acc"] == 0.64 and whole["gain"] == 0.0
    assert whole["refit"] and whole["decided_on"] == {"test_acc": 0.60, "gain": 0.0}
    assert whole["holdout_acc"] == {"scratch": 0.55, "distilled": 0.50}  # the decision is the deciding students'
    kept = refitted(deliver(_student(0.60, 0.50), _student(0.66, 0.52), 400), {"test_acc": 0.64}, {"test_acc": 0.61})
    # the whole-split distilled student is delivered even where it scores lower: the test set never chooses
    assert kept["student"] == "distilled" and kept["test_acc"] == 0.61 and kept["gain"] == pytest.approx(-0.03)
    assert kept["decided_on"]["gain"] == pytest.approx(0.06) and "whole-split distilled student" in kept["reason"]


def test_under_refit_the_tables_students_are_a_run_without_holdout_and_the_holdout_only_decides(tmp_path,
                                                                                               monkeypatch):
    from pldistill.stages.folder import RunFolder

    monkeypatch.setenv("PLDISTILL_CACHE", str(tmp_path / "cache"))  # both runs share one teacher
    base = dict(TINY, distill={"same_modality_control": False, **TINY["distill"]})
    plain = dict(base, name="tiny_plain", student={**TINY["student"], "holdout": 0.0})
    refit = dict(base, name="tiny_refit", student={**TINY["student"], "refit": True})
    results = {}
    for recipe in (plain, refit):
        (tmp_path / f"{recipe['name']}.yaml").write_text(yaml.safe_dump(recipe))
        assert main(["run", str(tmp_path / f"{recipe['name']}.yaml"), "--runs-dir", str(tmp_path / "runs"),
                     "--quiet"]) == 0
        (run_dir,) = (tmp_path / "runs" / recipe["name"]).iterdir()
        results[recipe["name"]] = (run_dir, json.loads((run_dir / "results.json").read_text()))
    _, without = results["tiny_plain"]
    run_dir, got = results["tiny_refit"]
    for kind in ("scratch", "distilled"):  # the same initial weights, batches and data: the same students
        assert got["students"][kind]["test_acc"] == without["students"][kind]["test_acc"]
        assert "holdout_acc" not in got["students"][kind]
        deciding = RunFolder(run_dir / "holdout").finished(f"student_{kind}")["result"]
        assert deciding["holdout_acc"] == got["delivered"]["holdout_acc"][kind]  # the deciding pair trained apart
    delivered = got["delivered"]
    assert delivered["refit"] and delivered["test_acc"] == got["students"][delivered["student"]]["test_acc"]
    held = json.loads((run_dir / "data_split.json").read_text())["student_holdout"]["indices_into_train"]
    assert len(held) == 40


def test_a_comparison_under_refit_fills_its_cells_with_whole_split_students(tmp_path):
    from pldistill.stages.folder import RunFolder

    run_dir, cells = _tiny_kd_comparison(tmp_path, "tiny_refit_cmp", refit=True)
    scratch, kd = cells["scratch"], cells["kd"]
    deciding = {kind: RunFolder(run_dir / "seed0" / "holdout").finished(f"student_{kind}")["result"]
                for kind in ("scratch", "kd")}
    whole = {kind: RunFolder(run_dir / "seed0").finished(f"student_{kind}")["result"] for kind in ("scratch", "kd")}
    assert scratch["test_acc"] == whole["scratch"]["test_acc"] and kd["test_acc"] == whole["kd"]["test_acc"]
    assert kd["holdout_acc"] == deciding["kd"]["holdout_acc"] and kd["deciding_test_acc"] == deciding["kd"]["test_acc"]
    assert kd["delivered"] == ("distilled" if deciding["kd"]["holdout_acc"] >= deciding["scratch"]["holdout_acc"]
                               else "scratch")
    assert kd["delivered_acc"] == (kd["test_acc"] if kd["delivered"] == "distilled" else scratch["test_acc"])
