"""Sweeps: grid × seeds as ordinary run folders, one mean ± std table, finished runs skipped."""

import json
from pathlib import Path

import pytest
import yaml

import pldistill.run as run_module
from pldistill.cli import main
from pldistill.recipe import RecipeError
from pldistill.sweep import grid_cells, sweep_table
from wandb_offline import read_offline_run

TINY = {
    "name": "tiny_sweep",
    "data": {"kind": "synthetic_shapes", "num_train": 96, "num_test": 64, "image_size": 32},
    "teacher": {"model": "resnet10t", "modality": "depth"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}],
                "same_modality_control": False},
    "schedule": {"epochs": 1, "batch_size": 16, "lr": 0.002},
    "logging": {"probe_size": 0},
}


def test_grid_is_the_cartesian_product_in_order():
    cells = grid_cells(["distill.loss=sp,kd", "schedule.lr=0.1,0.2"])
    assert [c.overrides for c in cells] == [
        ("distill.loss=sp", "schedule.lr=0.1"), ("distill.loss=sp", "schedule.lr=0.2"),
        ("distill.loss=kd", "schedule.lr=0.1"), ("distill.loss=kd", "schedule.lr=0.2")]
    assert [c.slug for c in cells][0] == "loss-sp_lr-0.1" and grid_cells([])[0].slug == "base"
    for bad in ["distill.loss", "distill.loss=", "a=1,1", "=1,2"]:
        with pytest.raises(RecipeError):
            grid_cells([bad])
    with pytest.raises(RecipeError, match="appear on two axes"):
        grid_cells(["a=1,2", "a=3"])


def test_sweep_runs_every_cell_once_and_skips_finished_runs(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    calls = []
    real = run_module.run_recipe

    def counting(recipe_obj, *args, **kwargs):
        calls.append((recipe_obj.seed, [l.name for l in recipe_obj.distill.losses]))
        return real(recipe_obj, *args, **kwargs)

    monkeypatch.setattr(run_module, "run_recipe", counting)
    argv = ["sweep", str(recipe), "--grid", "distill.loss=sp,kd", "--seeds", "2",
            "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 0
    assert sorted(calls) == [(0, ["kd"]), (0, ["sp"]), (1, ["kd"]), (1, ["sp"])]
    (root,) = (tmp_path / "runs" / "tiny_sweep").iterdir()
    summary = json.loads((root / "sweep.json").read_text())
    assert len(summary["runs"]) == 4 and [r["cell"] for r in summary["rows"]] == ["distill.loss=sp", "distill.loss=kd"]
    for run in summary["runs"]:  # ordinary run folders, with the right losses and seed
        results = json.loads((Path(run["run_dir"]) / "results.json").read_text())
        assert results["seed"] == run["seed"] and run["distilled"] == results["students"]["distilled"]["test_acc"]
        assert results["students"]["distilled"]["losses"][1].startswith(run["overrides"][0].split("=")[1])
        wandb_run = read_offline_run(Path(results["wandb"]["dir"]))
        assert wandb_run.group == summary["wandb_group"]
    kd = summary["rows"][1]
    values = [r["distilled"] for r in summary["runs"] if r["cell"] == "distill.loss=kd"]
    assert kd["distilled"]["mean"] == pytest.approx(sum(values) / 2) and kd["seeds"] == [0, 1]
    table = (root / "sweep.md").read_text()
    assert f"W&B group: `{summary['wandb_group']}`" in table and "| distill.loss=kd | 0 1 |" in table
    assert "--grid distill.loss=sp,kd --seeds 2" in table  # the command that made it

    calls.clear()  # the same command again: nothing trains, the same table comes back
    assert main(argv) == 0
    assert calls == [] and json.loads((root / "sweep.json").read_text())["rows"] == summary["rows"]
    assert main([a if a != "2" else "3" for a in argv]) == 0
    assert sorted(calls) == [(2, ["kd"]), (2, ["sp"])]  # only the new seed runs


def test_sweep_validates_every_cell_before_training(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    monkeypatch.setattr(run_module, "run_recipe", lambda *a, **k: pytest.fail("trained before validating"))
    code = main(["sweep", str(recipe), "--grid", "schedule.batch_size=16,1", "--runs-dir", str(tmp_path)])
    assert code == 2
    assert "batches of at least 2" in capsys.readouterr().err


def test_table_shows_domain_and_control_columns_only_when_present():
    row = {"cell": "c", "seeds": [0], "teacher": {"mean": 0.9, "std": 0.0}, "scratch": {"mean": 0.5, "std": 0.0},
           "distilled": {"mean": 0.6, "std": 0.0}, "gain": {"mean": 0.1, "std": 0.0}}
    summary = {"recipe": "r", "command": "pldistill sweep r.yaml --seeds 1", "wandb_group": "g", "wall_seconds": 6,
               "host": {"platform": "p", "torch": "t", "threads": 2, "device": "cpu"}, "rows": [row]}
    plain = sweep_table(summary)
    assert "| c | 0 | 90.0 ± 0.0 | 50.0 ± 0.0 | 60.0 ± 0.0 | +10.0 ± 0.0 |" in plain and "privileged gain" not in plain
    row.update(teacher_on_data={"mean": 0.3, "std": 0.0}, control={"mean": 0.55, "std": 0.0},
               privileged_gain={"mean": 0.05, "std": 0.0})
    assert "| c | 0 | 90.0 ± 0.0 | 30.0 ± 0.0 | 50.0 ± 0.0 | 60.0 ± 0.0 | +10.0 ± 0.0 | 55.0 ± 0.0 | +5.0 ± 0.0 |" \
        in sweep_table(summary)
