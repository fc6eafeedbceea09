"""Resolution pairs: the student's low-resolution copy is made from the same augmented crop."""

import json

import cv2
import numpy as np
import pytest
import yaml

from pldistill.cli import main
from pldistill.data import JointTransform, ModalityView, SyntheticShapes
from pldistill.data.resolution import ResolutionPairs
from pldistill.recipe import RecipeError, parse_recipe


def test_low_resolution_copy_comes_from_the_same_augmented_crop():
    pairs = ResolutionPairs(SyntheticShapes("test", 8, image_size=32, seed=0), "rgb", factor=4)
    raw = pairs.load(3, ["rgb", "rgb_hires"])
    assert (raw["rgb"] == raw["rgb_hires"]).all()  # degraded only after augmentation
    transform = JointTransform({m: pairs.modalities[m] for m in ("rgb", "rgb_hires")}, shift=0.2, scale=0.2,
                               seed=3)
    out = pairs.finalize(transform(raw))
    assert out["rgb_hires"].shape == (32, 32, 3) and out["rgb"].shape == (8, 8, 3)
    expected = cv2.resize(out["rgb_hires"], (8, 8), interpolation=cv2.INTER_AREA)
    assert (out["rgb"] == expected).all()
    sample = ModalityView(pairs, ["rgb"])[3]  # the student's view: low resolution only
    assert tuple(sample["rgb"].shape) == (3, 8, 8)


def test_blur_and_noise_degrade_further():
    pairs = ResolutionPairs(SyntheticShapes("test", 4, image_size=32, seed=0), "rgb", factor=2, blur=1.5, noise=8)
    image = pairs.load(0, ["rgb_hires"])["rgb_hires"]
    plain = cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA)
    degraded = pairs.degrade(image)
    assert degraded.shape == (16, 16, 3) and np.abs(degraded.astype(int) - plain).mean() > 2


RECIPE = {
    "name": "hires",
    "data": {"kind": "resolution_pairs", "factor": 4, "image_size": 64,
             "source": {"kind": "synthetic_shapes", "num_train": 64, "num_test": 32}},
    "teacher": {"model": "resnet10t", "modality": "rgb_hires"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}],
                "same_modality_control": False},
    "schedule": {"epochs": 1, "batch_size": 16, "lr": 0.002},
    "logging": {"wandb": "disabled", "probe_size": 16},
}


def test_hires_to_lowres_recipe_sizes_each_model_and_runs(tmp_path):
    recipe = parse_recipe(RECIPE)
    assert recipe.data.privileged == ["rgb_hires"]
    assert recipe.data.input_size("rgb_hires") == 64 and recipe.data.input_size("rgb") == 16
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RECIPE))
    assert main(["run", str(tmp_path / "r.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "hires").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["teacher"]["modality"] == "rgb_hires" and results["students"]["distilled"]["modality"] == "rgb"


def test_student_on_the_high_resolution_copy_is_refused():
    bad = dict(RECIPE, student={"model": "mobilenetv3_small_100", "modality": "rgb_hires"})
    with pytest.raises(RecipeError, match=r"student\.modality: 'rgb_hires' is privileged"):
        parse_recipe(bad)
