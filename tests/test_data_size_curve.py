"""The data-size curve: one comparison per training-set size, the same step budget, one table and one plot."""

import json

import pytest
import yaml

from experiments.data_size_curve import curve_table, epochs_for, run_curve
from real_layouts import write_mfeat


def test_every_size_gets_about_the_same_number_of_steps():
    assert epochs_for(10, 10, 64, 600) == 600  # 100 samples: one whole batch per epoch
    assert epochs_for(160, 10, 64, 600) == 24  # 1600 samples: 25 batches per epoch
    assert epochs_for(50, 10, 64, 600) * (500 // 64) >= 600
    assert epochs_for(3, 2, 64, 10) == 10  # fewer samples than a batch still trains


def test_a_curve_runs_each_size_resumes_and_tabulates(tmp_path):
    root = write_mfeat(tmp_path / "mfeat", signal=0.7)
    base = {"name": "curve_tiny", "data": {"kind": "uci_mfeat", "root": str(root), "views": ["fac", "mor"],
                                          "privileged": ["fac"], "augment": {"hflip": False}},
            "teacher": {"model": "mlp_16x1", "modality": "fac"}, "student": {"model": "mlp_8x1", "modality": "mor"},
            "distill": {"losses": [{"name": "kd", "weight": 1.0, "temperature": 4.0}],
                        "same_modality_control": False},
            "schedule": {"epochs": 1, "batch_size": 32, "lr": 0.01}, "logging": {"probe_size": 0, "wandb": "disabled"}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    kd = [{"name": "kd", "weight": 1.0, "temperature": 4.0}]
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump({"name": "tiny", "base": "base.yaml", "variants": {
        "kd": kd, "kd-shuffled": {"teacher_signal": "shuffled", "control_for": "kd", "losses": kd}}}))
    out = tmp_path / "curve"
    curve = run_curve(tmp_path / "cmp.yaml", [4, 8], [0, 1], out, steps=4, progress=False)
    assert set(curve["per_size"]) == {"4", "8"} and curve["per_size"]["4"]["epochs"] == 4
    for size, expected in (("4", 40), ("8", 80)):
        cells = curve["per_size"][size]["cells"]
        assert {c["row"] for c in cells} == {"scratch", "kd", "kd-shuffled", "teacher"}
        (split_file,) = (out / f"size{size}").glob("*/*/seed0/data_split.json")
        assert len(json.loads(split_file.read_text())["uci_mfeat"]["train_rows"]) == expected
    table = (out / "curve.md").read_text()
    assert "| kd | " in table and "kd − kd-shuffled" in table and (out / "curve.png").stat().st_size > 5000
    assert table == curve_table(json.loads((out / "curve.json").read_text()))
    again = run_curve(tmp_path / "cmp.yaml", [4, 8], [0, 1], out, steps=4, progress=False)  # resumed: nothing new
    assert again["per_size"]["4"]["cells"] == curve["per_size"]["4"]["cells"]
    assert len(list((out / "size4").glob("*/*/comparison.yaml"))) == 1
