"""A tiny real run through the command line: it trains, learns, writes and logs."""

import json

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from pldistill.cli import main
from pldistill.data import ModalityView, SyntheticShapes
from pldistill.models import TappedModel, build_model
from pldistill.probe import AlignmentProbe
from pldistill.engine import evaluate
from wandb_offline import read_offline_run

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"kind": "synthetic_shapes", "num_train": 640, "num_test": 256, "image_size": 32},
    "teacher": {"model": "resnet10t", "modality": "depth"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 1000.0, "pairs": [{"teacher": -1, "student": -1}]}]},
    "schedule": {"epochs": 3, "batch_size": 32, "lr": 0.002},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    recipe = root / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    code = main(["run", str(recipe), "--runs-dir", str(root / "runs"), "--quiet"])
    assert code == 0
    (run_dir,) = (root / "runs" / "tiny").iterdir()
    return recipe, run_dir, json.loads((run_dir / "results.json").read_text())


def test_run_folder_holds_resolved_recipe_checkpoints_and_results(tiny_run):
    _, run_dir, results = tiny_run
    for name in ("recipe.yaml", "results.json", "results.md", "metrics.jsonl"):
        assert (run_dir / name).is_file(), name
    for name in ("teacher", "student_scratch", "student_distilled"):
        assert (run_dir / "checkpoints" / f"{name}.pt").is_file()
    resolved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert resolved["schedule"]["weight_decay"] == 0.05  # defaults are written out
    assert results["schema_version"] == 1
    assert set(results["students"]) == {"scratch", "distilled"}
    assert results["students"]["distilled"]["losses"] == ["ce", "sp/t-1-s-1"]
    assert results["distill_gain"] == pytest.approx(
        results["students"]["distilled"]["test_acc"] - results["students"]["scratch"]["test_acc"]
    )
    table = (run_dir / "results.md").read_text()
    assert "| teacher | resnet10t | depth | depth |" in table
    control = results["control"]  # the same teacher model and budget on RGB, the same SP from it
    assert control["teacher"]["modality"] == "rgb" and control["student"]["modality"] == "rgb"
    assert control["privileged_gain"] == pytest.approx(
        results["students"]["distilled"]["test_acc"] - control["student"]["test_acc"])
    assert "| control teacher | resnet10t | rgb | rgb |" in table and "Privileged gain (distilled − control" in table
    agreement = control["teacher_agreement"]  # the depth teacher against the RGB one, before the control student
    assert set(agreement) == {"cka/t4", "simcorr/t4", "simcorr_within_class/t4"}  # resnet10t's last
    assert 0 < agreement["cka/t4"] < 1 and -1 < agreement["simcorr_within_class/t4"] < 1
    assert "Teacher agreement (the 'depth' teacher against the 'rgb' one" in table
    assert (run_dir / "control" / "checkpoints" / "student_distilled.pt").is_file()


def test_teacher_learns_well_above_chance(tiny_run):
    _, _, results = tiny_run
    assert results["teacher"]["test_acc"] > 0.6  # 4 classes: chance is 0.25
    history = results["teacher"]["history"]
    assert history[-1]["train/loss"] < history[0]["train/loss"]


def test_saved_student_reproduces_its_accuracy_from_rgb_alone(tiny_run):
    _, run_dir, results = tiny_run
    state = torch.load(run_dir / "checkpoints" / "student_distilled.pt", weights_only=True)
    model = TappedModel(build_model("mobilenetv3_small_100", 3, 4))
    model.model.load_state_dict(state["state_dict"])
    test = SyntheticShapes("test", 256, image_size=32, seed=0)
    loader = DataLoader(ModalityView(test, ["rgb"]), batch_size=100)
    acc = evaluate(model, loader, "rgb", torch.device("cpu"), channels_last=True)
    assert acc == pytest.approx(results["students"]["distilled"]["test_acc"])


def test_wandb_offline_run_reads_back_what_was_logged(tiny_run):
    _, run_dir, results = tiny_run
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    run = read_offline_run(offline)
    assert run.group == "tiny" and run.tags == ["tiny", "seed0"] and run.name.startswith("tiny-seed0-")
    assert run.config["name"] == "tiny" and run.config["schedule"]["batch_size"] == 32
    teacher_acc = [row["teacher/val/acc"] for row in run.history if "teacher/val/acc" in row]
    assert len(teacher_acc) == 3 and teacher_acc[-1] == pytest.approx(results["teacher"]["test_acc"])
    sp_terms = [row["student_distilled/train/terms/sp/t-1-s-1"] for row in run.history
                if "student_distilled/train/terms/sp/t-1-s-1" in row]
    assert len(sp_terms) == 3 and all(v > 0 for v in sp_terms)
    assert run.summary["student_scratch/test_acc"] == pytest.approx(results["students"]["scratch"]["test_acc"])
    assert results["wandb"]["sync"].startswith("wandb sync ")


def test_alignment_is_measured_every_epoch_and_reproduced_from_the_saved_models(tiny_run):
    _, run_dir, results = tiny_run
    key = "align/simcorr/t4-s4"
    for kind in ("scratch", "distilled"):
        history = results["students"][kind]["history"]
        assert [h["epoch"] for h in history if key in h] == [1, 2, 3]
        assert 0 <= results["students"][kind]["alignment"]["align/cka/t4-s4"] <= 1
    # the logged end-of-training values are what the saved models give on the probe set
    load = lambda name: torch.load(run_dir / "checkpoints" / f"{name}.pt", weights_only=True)["state_dict"]
    teacher, student = build_model("resnet10t", 1, 4), build_model("mobilenetv3_small_100", 3, 4)
    teacher.load_state_dict(load("teacher"))
    student.load_state_dict(load("student_distilled"))
    probe = AlignmentProbe(SyntheticShapes("test", 256, image_size=32, seed=0), TappedModel(teacher), "depth", "rgb",
                           [(-1, -1)], 256, 10, torch.device("cpu"), channels_last=True)
    again = probe.measure(TappedModel(student))
    logged = results["students"]["distilled"]["alignment"]
    for name in ("align/cka/t4-s4", "align/simcorr/t4-s4", "align/mknn/t4-s4", "align/agreement"):
        assert again[name] == pytest.approx(logged[name], abs=1e-6), name
    snapshot = np.load(run_dir / "alignment" / "student_distilled.npz")
    assert snapshot["cka_grid"].shape == (5, 5)
    assert snapshot["teacher_similarity"].shape == (256, 256)
    assert (np.diff(snapshot["labels"]) >= 0).all()  # grouped by class for the picture


def test_report_holds_every_figure_and_wandb_holds_the_same_images(tiny_run):
    _, run_dir, _ = tiny_run
    page = (run_dir / "report.html").read_text()
    for name in ("curves", "alignment", "similarity", "cka_grid"):
        png = run_dir / "figures" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and f"src='figures/{name}.png'" in page
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    run = read_offline_run(offline)
    images = {k.removesuffix("/_type"): row[k.removesuffix("/_type") + "/path"]
              for row in run.history for k, v in row.items() if k.endswith("/_type") and v == "image-file"}
    assert set(images) == {"figures/curves", "figures/alignment", "figures/similarity", "figures/cka_grid"}
    assert all((offline / "files" / path).is_file() for path in images.values())
    aligned = [row for row in run.history if "student_distilled/align/cka/t4-s4" in row]
    assert len(aligned) == 3


def test_report_command_rebuilds_one_run_and_compares_several(tiny_run, tmp_path, capsys):
    _, run_dir, _ = tiny_run
    (run_dir / "report.html").unlink()
    for png in (run_dir / "figures").glob("*.png"):
        png.unlink()
    assert main(["report", str(run_dir), str(run_dir), "--out", str(tmp_path / "both")]) == 0
    assert len(list((run_dir / "figures").glob("*.png"))) == 4
    page = (run_dir / "report.html").read_text()
    assert "<h2>similarity</h2>" in page
    results = json.loads((run_dir / "results.json").read_text())  # the control's rows and the privileged gain
    control = results["control"]
    assert "control teacher (same model and budget)" in page and "student: control (distilled from the rgb" in page
    assert f"privileged gain (distilled − control) {100 * control['privileged_gain']:+.1f} points" in page
    assert "teacher agreement (depth teacher against the rgb one, on the probe): CKA" in page
    side = (tmp_path / "both" / "report.html").read_text()
    assert side.count("<tr>") == 3 and "distilled CKA per pair" in side
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_second_run_reuses_the_cached_teacher(tiny_run, tmp_path):
    """Student-side settings (their epochs, the control) leave the teacher's hash alone: it is not retrained.

    (That the same recipe and seed give the same students is asserted, weight for weight, by test_resume.)
    """
    recipe, _, first = tiny_run
    student_side = ["schedule.teacher_epochs=3", "schedule.epochs=1", "distill.same_modality_control=false"]
    code = main(["run", str(recipe), *student_side, "--runs-dir", str(tmp_path), "--quiet"])
    assert code == 0
    (run_dir,) = (tmp_path / "tiny").iterdir()
    second = json.loads((run_dir / "results.json").read_text())
    assert second["teacher"]["reused"] is True and first["teacher"]["reused"] is False
    assert second["teacher"]["test_acc"] == first["teacher"]["test_acc"]
    assert len(second["students"]["scratch"]["history"]) == 1 and second["control"] is None


def test_cli_reports_a_bad_recipe_in_one_line(tmp_path, capsys):
    bad = dict(TINY, schedule={"epochs": 0, "batch_size": 8, "lr": 0.1})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pldistill: error: ") and "schedule.epochs" in err and "Traceback" not in err


def test_exported_student_reloads_with_timm_alone_and_predicts_the_same(tiny_run, tmp_path):
    """Export → timm.create_model('local-dir:…') → the very predictions of the evaluated student."""
    import timm
    from safetensors.torch import load_file

    _, run_dir, results = tiny_run
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "mobilenetv3_small_100"
    assert config["label_names"] == results["dataset"]["classes"]
    assert config["pldistill"]["modality"] == "rgb" and config["pldistill"]["input_size"] == 32
    student_state = torch.load(run_dir / "checkpoints" / "student_distilled.pt", weights_only=True)["state_dict"]
    assert set(load_file(out / "model.safetensors")) == set(student_state)  # the student only, no teacher

    exported = timm.create_model(f"local-dir:{out}", pretrained=True).eval()  # timm alone, no pldistill
    original = build_model("mobilenetv3_small_100", 3, 4)
    original.load_state_dict(student_state)
    original.eval()
    test = SyntheticShapes("test", 256, image_size=32)
    loader = DataLoader(ModalityView(test, ["rgb"]), batch_size=200)
    with torch.no_grad():
        for batch in loader:
            assert torch.equal(exported(batch["rgb"]).argmax(1), original(batch["rgb"]).argmax(1))
    acc = evaluate(TappedModel(exported), loader, "rgb", torch.device("cpu"), channels_last=False)
    assert acc == pytest.approx(results["students"]["distilled"]["test_acc"], abs=0.01)


def test_predict_classifies_image_files_with_the_exported_student_only(tiny_run, tmp_path, capsys):
    """`pldistill predict` reads PNG files (RGB only) and agrees with the student on the same pixels."""
    import cv2

    from pldistill.data import encode
    from pldistill.export import load_exported

    _, run_dir, results = tiny_run
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    test = SyntheticShapes("test", 256, image_size=32)
    images = tmp_path / "images"
    images.mkdir()
    expected = []
    model, _ = load_exported(out)
    for i in range(40):
        rgb = test.load(i, ["rgb"])["rgb"]
        cv2.imwrite(str(images / f"{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        with torch.no_grad():
            logits = model(encode(rgb, test.modalities["rgb"])[None])
        expected.append(results["dataset"]["classes"][int(logits.argmax())])
    capsys.readouterr()
    assert main(["predict", str(out), str(images), "--json", "--top", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == expected
    assert all(len(r["top"]) == 2 and r["top"][0][1] >= r["top"][1][1] for r in rows)


def test_predict_and_export_refuse_what_they_cannot_use(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), str(tmp_path / "x.png")]) == 2
    assert "not an exported student" in capsys.readouterr().err
