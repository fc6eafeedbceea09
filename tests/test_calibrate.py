"""`pldistill calibrate`: pilots judged on a hold-out of the training split, never on the test set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from pldistill.cli import main
from pldistill.data.holdout import holdout_split
from pldistill.data.synthetic_shapes import SyntheticShapes
from pldistill.recipe import load_recipe
from spies import record_loads

TINY = {
    "name": "tiny_cal",
    "data": {"kind": "synthetic_shapes", "num_train": 160, "num_test": 64, "image_size": 32},
    "teacher": {"model": "test_efficientnet_gn", "modality": "depth"},
    "student": {"model": "test_efficientnet_ln", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 3000.0, "pairs": [{"teacher": -1, "student": -1}]}]},
    "schedule": {"epochs": 2, "batch_size": 32, "lr": 0.002},
    "logging": {"probe_size": 0},
}


def test_the_holdout_is_seeded_stratified_and_disjoint():
    train = SyntheticShapes("train", 200, image_size=16, seed=0)
    fit, held = holdout_split(train, 0.25, seed=3)
    assert sorted(np.concatenate([fit.indices, held.indices]).tolist()) == list(range(200))
    labels = np.array([train.label(i) for i in range(200)])
    for c in np.unique(labels):  # a quarter of every class, rounded
        assert (labels[held.indices] == c).sum() == round(0.25 * (labels == c).sum())
    assert held.label(0) == train.label(int(held.indices[0]))
    assert np.array_equal(holdout_split(train, 0.25, seed=3)[1].indices, held.indices)
    assert not np.array_equal(holdout_split(train, 0.25, seed=4)[1].indices, held.indices)
    with pytest.raises(ValueError, match="between 0 and 1"):
        holdout_split(train, 1.0, seed=0)


def test_calibrate_trains_pilots_never_reads_the_test_set_and_writes_a_recipe(tmp_path, monkeypatch, capsys):
    import pldistill.data.check as check
    import pldistill.data.holdout as holdout

    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(TINY))
    real_check, real_split = check.checked_datasets, holdout.holdout_split
    after_teacher: list[int] = []

    def spied_check(data, *args, **kwargs):
        train, test = real_check(data, *args, **kwargs)
        test.load_calls = record_loads(test)
        spied_check.test = test
        return train, test

    def spied_split(train, fraction, seed):  # called once the teacher is there: the pilots start
        after_teacher.append(len(spied_check.test.load_calls))
        return real_split(train, fraction, seed)

    monkeypatch.setattr(check, "checked_datasets", spied_check)
    monkeypatch.setattr(holdout, "holdout_split", spied_split)
    out = tmp_path / "chosen.yaml"
    assert main(["calibrate", str(recipe_file), "--weights", "0.5", "1", "--epochs", "1",
                 "--runs-dir", str(tmp_path / "runs"), "--write", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    (folder,) = (tmp_path / "runs" / "tiny_cal_calibrate").iterdir()
    results = json.loads((folder / "calibration.json").read_text())
    assert [s["setting"] for s in results["settings"]] == ["as written", "0.5× CE", "1× CE"]
    assert results["num_holdout"] == 32 and results["num_fit"] == 128  # 20% of 160, per class
    # the teacher (the real run's, trained here once) is tested like in a run; no pilot reads the test set
    assert after_teacher == [len(spied_check.test.load_calls)]
    relative = results["settings"][2]
    assert relative["grad_ratios"]["sp/t-1-s-1"] == pytest.approx(1.0)
    assert results["settings"][0]["grad_ratios"]["sp/t-1-s-1"] > 0  # the recipe's γ, measured the same way
    assert "| setting | losses |" in printed and "calibration folder:" in printed
    assert results["noise"] == pytest.approx(2 * (2 * results["scratch_holdout_acc"]
                                                  * (1 - results["scratch_holdout_acc"]) / 32) ** 0.5)
    for s in results["settings"]:
        assert s["verdict"] == ("below scratch" if s["gain"] < -results["noise"] else
                                "above scratch" if s["gain"] > results["noise"] else "within noise")
    if results["chosen"] is None:
        assert not out.exists() and "No setting stayed" in printed
        return
    chosen = next(s for s in results["settings"] if s["setting"] == results["chosen"])
    eligible = [s for s in results["settings"] if s["verdict"] != "below scratch"
                and not any(f["kind"] == "dominates" for f in s["health"])]
    assert chosen["holdout_acc"] == max(s["holdout_acc"] for s in eligible)
    written = load_recipe(out)
    assert written.name == "tiny_cal" and written.student.model == "test_efficientnet_ln"
    assert written.distill.losses[0].model_dump(mode="json") == chosen["distill"][0]
    overridden = load_recipe(recipe_file, results["override"])
    assert overridden.distill.losses == written.distill.losses
