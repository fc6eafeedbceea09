"""experiments/agreement_vs_gain.py: runs' teacher agreement against their privileged gain, grouped and drawn."""

from __future__ import annotations

import json

import pytest

from experiments.agreement_vs_gain import main


def _run(folder, recipe, seed, gain, within, cka=0.5):
    folder.mkdir(parents=True)
    agreement = {"cka/t2": 0.9, "simcorr/t2": 0.9, "simcorr_within_class/t2": 0.9,  # a shallower stage: ignored
                 "cka/t4": cka, "simcorr/t4": within + 0.3, "simcorr_within_class/t4": within}
    (folder / "results.json").write_text(json.dumps({
        "recipe": recipe, "seed": seed,
        "control": {"privileged_gain": gain, "teacher_agreement": agreement}}))


def test_groups_by_recipe_and_sweep_cell_and_ranks_agreement_against_gain(tmp_path):
    _run(tmp_path / "runs" / "a" / "20261207-0100", "flag", 0, -0.10, 0.1)
    _run(tmp_path / "runs" / "a" / "20261207-0200", "flag", 1, -0.06, 0.1)
    _run(tmp_path / "sweep" / "teacher.modality_dropout=0" / "seed0", "rgbd", 0, 0.00, 0.3)
    _run(tmp_path / "sweep" / "teacher.modality_dropout=0.5" / "seed0", "rgbd", 0, 0.04, 0.6)
    (tmp_path / "runs" / "nocontrol").mkdir()
    (tmp_path / "runs" / "nocontrol" / "results.json").write_text(json.dumps({"recipe": "x", "seed": 0, "control": None}))
    out = tmp_path / "out"
    assert main([str(tmp_path / "runs"), str(tmp_path / "sweep"), "--out", str(out)]) == 0
    summary = json.loads((out / "agreement.json").read_text())
    groups = {g["group"]: g for g in summary["groups"]}
    assert set(groups) == {"flag", "rgbd [teacher.modality_dropout=0]", "rgbd [teacher.modality_dropout=0.5]"}
    assert groups["flag"]["privileged_gain"] == pytest.approx(-0.08) and groups["flag"]["seeds"] == [0, 1]
    assert groups["flag"]["simcorr_within_class"] == pytest.approx(0.1)  # the last stage, not t2
    assert summary["spearman"]["simcorr_within_class"] == pytest.approx(1.0)  # agreement order = gain order
    assert summary["spearman"]["cka"] is None  # the same CKA everywhere: nothing to rank
    md = (out / "agreement.md").read_text()
    assert "| flag | 0 1 | 0.50 | 0.40 | 0.10 | -8.0 ± 2.8 |" in md
    assert (out / "agreement.png").stat().st_size > 10_000


def test_folders_without_measured_runs_say_so(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "no finished run" in capsys.readouterr().out


def test_a_comparison_folder_gives_one_point_per_seed_and_same_modality_control(tmp_path):
    import yaml

    folder = tmp_path / "cmp"
    folder.mkdir()
    variants = {"sp": [{"name": "sp"}], "sp-rgb": {"teacher_modality": "rgb", "control_for": "sp"},
                "sp-shuffled": {"teacher_modality": None, "teacher_signal": "shuffled", "control_for": "sp"}}
    (folder / "comparison.yaml").write_text(yaml.safe_dump({"variants": variants}))
    cells = [{"seed": s, "row": r, "test_acc": a} for s, r, a in
             [(0, "sp", 0.50), (0, "sp-rgb", 0.45), (0, "sp-shuffled", 0.40),
              (1, "sp", 0.40), (1, "sp-rgb", 0.43), (1, "sp-shuffled", 0.30), (2, "sp", 0.5)]]
    agreement = [{"seed": s, "privileged": "depth", "modality": "rgb", "cka/t4": 0.5, "simcorr/t4": 0.6,
                  "simcorr_within_class/t4": w, "cka/t2": 0.9, "simcorr/t2": 0.9, "simcorr_within_class/t2": 0.9}
                 for s, w in ((0, 0.3), (1, 0.2), (2, 0.1))]  # seed 2 has no control student: no point
    gains = [{"row": "sp", "control": "sp-rgb"}, {"row": "sp", "control": "sp-shuffled"}]
    (folder / "comparison.json").write_text(json.dumps({"comparison": "flag_cmp", "cells": cells,
                                                        "controlled_gains": gains, "agreement": agreement}))
    out = tmp_path / "out"
    assert main([str(tmp_path), "--out", str(out)]) == 0
    summary = json.loads((out / "agreement.json").read_text())
    assert [(r["group"], r["seed"]) for r in summary["runs"]] == [("flag_cmp [sp]", 0), ("flag_cmp [sp]", 1)]
    assert [r["privileged_gain"] for r in summary["runs"]] == pytest.approx([0.05, -0.03])  # vs sp-rgb only
    (group,) = summary["groups"]
    assert group["simcorr_within_class"] == pytest.approx(0.25)


def test_earlier_summaries_join_the_new_folders_points(tmp_path):
    _run(tmp_path / "old" / "r0", "flag", 0, -0.10, 0.1)
    assert main([str(tmp_path / "old"), "--out", str(tmp_path / "first")]) == 0
    _run(tmp_path / "new" / "r1", "rgbd", 0, 0.02, 0.4)
    assert main([str(tmp_path / "new"), "--include", str(tmp_path / "first" / "agreement.json"),
                 "--out", str(tmp_path / "both")]) == 0
    summary = json.loads((tmp_path / "both" / "agreement.json").read_text())
    assert [g["group"] for g in summary["groups"]] == ["flag", "rgbd"]


def test_tied_agreements_share_their_mean_rank_as_spearmans_rho_defines_it():
    from experiments.agreement_vs_gain import _ranks, _spearman

    assert _ranks([0.5, 0.2, 0.5, 0.9]) == [1.5, 0.0, 1.5, 3.0]
    # three methods on one teacher pair (one agreement), two other pairs. By hand: agreement ranks [2, 2, 2, 0, 4],
    # gain ranks [4, 1, 2, 0, 3]; deviations from the mean rank 2 give Σdxdy = 6, Σdx² = 8, Σdy² = 10, so
    # rho = 6 / √80 = 0.671 (the minimum rank for ties, as before, gave 0.521)
    agreement, gain = [0.53, 0.53, 0.53, 0.15, 0.83], [2.2, -1.1, 0.8, -5.8, 1.0]
    assert _spearman(agreement, gain) == pytest.approx(6 / 80 ** 0.5)
