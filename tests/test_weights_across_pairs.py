"""experiments/weights_across_pairs.py: the per-pair table of γ = 3000 against a weight relative to CE."""

import json
import math
import statistics

import pytest
import yaml

from experiments.weights_across_pairs import main, pair_summary


def _folder(tmp_path, name, scratch, paper, relative):
    folder = tmp_path / name
    folder.mkdir()
    cells = []
    for seed, (s, p, r) in enumerate(zip(scratch, paper, relative)):
        cells += [{"seed": seed, "row": "teacher", "test_acc": 0.99},
                  {"seed": seed, "row": "scratch", "test_acc": s},
                  {"seed": seed, "row": "sp-paper", "test_acc": p, "weights": {"sp/t-1-s-1": {"weight": 3000.0,
                   "grad_ratio": 16.0}}, "health": [{"kind": "dominates"}]},
                  {"seed": seed, "row": "sp-relative", "test_acc": r,
                   "weights": {"sp/t-1-s-1": {"weight": 300.0 + seed, "grad_ratio": 1.0}}, "health": []}]
    (folder / "comparison.json").write_text(json.dumps({"comparison": "w", "cells": cells}))
    (folder / "comparison.yaml").write_text(yaml.safe_dump({"overrides": ["student.model=regnetx_002"]}))
    (folder / "comparison.md").write_text("table")
    (folder / "cells.jsonl").write_text("\n".join(json.dumps(c) for c in cells))
    return folder


def test_gains_are_paired_by_seed_and_seeds_below_scratch_are_counted(tmp_path):
    folder = _folder(tmp_path, "a", [0.60, 0.50], [0.40, 0.45], [0.62, 0.49])
    summary = pair_summary(folder)
    assert summary["overrides"] == ["student.model=regnetx_002"]
    paper, relative = summary["rows"]["sp-paper"], summary["rows"]["sp-relative"]
    assert paper["gains"] == pytest.approx([-0.20, -0.05]) and paper["below_scratch"] == 2
    assert relative["gains"] == pytest.approx([0.02, -0.01]) and relative["below_scratch"] == 1
    assert paper["health"] == ["dominates"] and relative["weight"] == [300.0, 301.0]


def test_the_table_and_each_pair_s_files_are_written(tmp_path, capsys):
    a = _folder(tmp_path, "a", [0.60, 0.50], [0.40, 0.45], [0.62, 0.49])
    out = tmp_path / "out"
    assert main([str(a), "--names", "convnext_atto→regnetx_002", "--out", str(out)]) == 0
    table = (out / "pairs.md").read_text()
    # paper: gains −0.20, −0.05: t = −0.125 / (0.106 / √2) = −1.67; with 1 degree of freedom p = 1 − (2/π)·atan|t|
    p = 1 - 2 / math.pi * math.atan(0.125 / (statistics.stdev([-0.20, -0.05]) / 2 ** 0.5))
    assert (f"| convnext_atto→regnetx_002 | 2 | 55.0 | -12.5 ± 10.6 | 2/2, p = {p:.2f} | 16.0× | +0.5 ± 2.1 | 1/2 | 300 "
            "| dominates |") in table
    assert (out / "convnext_atto_regnetx_002" / "cells.jsonl").exists()
    assert json.loads((out / "pairs.json").read_text())[0]["name"] == "convnext_atto→regnetx_002"


def test_a_consistent_small_loss_is_significant_and_a_noisy_large_one_is_not():
    from experiments.weights_across_pairs import paired_t

    t, p = paired_t([-0.013, -0.014, -0.015])  # −1.4 ± 0.1 points on every seed
    assert t < -20 and p < 0.01
    t, p = paired_t([-0.15, 0.01, -0.05])  # −6.3 ± 8.1 points
    assert -2 < t < 0 and p > 0.05
    assert paired_t([0.01]) is None


def test_a_projected_row_gets_its_own_columns_where_a_folder_has_it(tmp_path):
    a = _folder(tmp_path, "a", [0.60, 0.50], [0.40, 0.45], [0.62, 0.49])
    b = _folder(tmp_path, "b", [0.30, 0.40], [0.35, 0.41], [0.36, 0.44])
    comparison = json.loads((a / "comparison.json").read_text())
    comparison["cells"] += [{"seed": 0, "row": "sp-projected", "test_acc": 0.61, "weights": {}, "health": []}]
    (a / "comparison.json").write_text(json.dumps(comparison))
    out = tmp_path / "out"
    assert main([str(a), str(b), "--names", "r", "m", "--out", str(out)]) == 0
    table = (out / "pairs.md").read_text().splitlines()
    assert table[0].endswith("| SP relative, conflicts projected: gain | below scratch |")
    assert table[2].endswith("| dominates | +1.0 ± 0.0 (1 seeds) | 0/1 |")  # 61 − 60, seed 0 only
    assert table[3].endswith("| dominates | | |")  # b has no such row
    assert "sp-projected" not in pair_summary(b)["rows"]


def test_the_delivery_table_pairs_both_gains_by_seed_and_names_the_declined_seeds(tmp_path):
    from experiments.delivery_across_pairs import main as delivery_main

    folder = tmp_path / "held"
    folder.mkdir()
    cells = [{"seed": 0, "row": "scratch", "test_acc": 0.60}, {"seed": 1, "row": "scratch", "test_acc": 0.70},
             {"seed": 0, "row": "sp-relative", "test_acc": 0.45, "delivered": "scratch", "delivered_acc": 0.60},
             {"seed": 1, "row": "sp-relative", "test_acc": 0.72, "delivered": "distilled", "delivered_acc": 0.72},
             {"seed": 0, "row": "teacher", "test_acc": 0.99}]
    (folder / "cells.jsonl").write_text("\n".join(json.dumps(c) for c in cells))
    out = tmp_path / "out"
    assert delivery_main([str(folder), "--names", "a→b", "--out", str(out)]) == 0
    (pair,) = json.loads((out / "pairs.json").read_text())
    row = pair["rows"]["sp-relative"]
    assert row["gains"] == pytest.approx([-0.15, 0.02]) and row["delivered_gains"] == pytest.approx([0.0, 0.02])
    assert row["declined"] == [0] and row["below_scratch"] == 1
    # distilled: mean −6.5, std of (−15, +2) = 12.0, t = −0.765 on 1 df: p = 1 − 2·atan(0.765)/π = 0.58;
    # delivered: +1.0 ± 1.4, never below scratch
    line = (out / "pairs.md").read_text().splitlines()[2]
    assert line == "| a→b | sp-relative | 2 | 65.0 | -6.5 ± 12.0 | 1/2, p = 0.58 | +1.0 ± 1.4 | 0/2 | 0 |"
    assert (out / "a_b" / "cells.jsonl").exists()


def test_the_delivery_table_applies_each_holdout_decision_to_the_whole_split_students(tmp_path):
    from experiments.delivery_across_pairs import main as delivery_main

    held, whole = tmp_path / "held", tmp_path / "whole"
    for folder, cells in ((held, [{"seed": 0, "row": "scratch", "test_acc": 0.60},
                                  {"seed": 1, "row": "scratch", "test_acc": 0.70},
                                  {"seed": 0, "row": "sp", "test_acc": 0.45, "delivered": "scratch", "delivered_acc": 0.60},
                                  {"seed": 1, "row": "sp", "test_acc": 0.72, "delivered": "distilled",
                                   "delivered_acc": 0.72}]),
                          (whole, [{"seed": 0, "row": "scratch", "test_acc": 0.62},
                                   {"seed": 1, "row": "scratch", "test_acc": 0.71},
                                   {"seed": 0, "row": "sp", "test_acc": 0.50},  # declined: the scratch one is delivered
                                   {"seed": 1, "row": "sp", "test_acc": 0.68}])):  # kept: delivered though lower
        folder.mkdir()
        (folder / "cells.jsonl").write_text("\n".join(json.dumps(c) for c in cells))
    out = tmp_path / "out"
    assert delivery_main([str(held), "--names", "a→b", "--out", str(out), "--whole-split", str(whole)]) == 0
    row = json.loads((out / "pairs.json").read_text())[0]["rows"]["sp"]
    assert row["whole_split_gains"] == pytest.approx([-0.12, -0.03])
    assert row["refit_gains"] == pytest.approx([0.0, -0.03])
    # whole-split scratch 66.5; refit gains 0 and −3: mean −1.5, std 2.1, t = −1 on 1 df: p = 0.50
    line = (out / "pairs.md").read_text().splitlines()[2]
    assert line.endswith("| 66.5 | -7.5 ± 6.4 | -1.5 ± 2.1 | 1/2, p = 0.50 |")
    with pytest.raises(SystemExit, match="no whole-split cells of row 'sp' for seeds \\[1\\]"):
        (whole / "cells.jsonl").write_text(json.dumps({"seed": 0, "row": "scratch", "test_acc": 0.6}) + "\n"
                                           + json.dumps({"seed": 0, "row": "sp", "test_acc": 0.5}))
        delivery_main([str(held), "--names", "a→b", "--out", str(tmp_path / "out2"), "--whole-split", str(whole)])
