"""Class pairing (AV-MNIST protocol): same-class pairs only, deterministic per seed; a speech → digits run end to end."""

import json

import numpy as np
import pytest
import yaml

from pldistill.cli import main
from pldistill.data.image_classes import ImageClasses
from pldistill.data.paired import ClassPaired
from pldistill.data.speech import SpokenDigits
from pldistill.recipe import RecipeError, parse_recipe
from real_layouts import write_class_folders, write_fsdd

DIGITS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("avmnist")
    write_class_folders(base / "mnist", DIGITS, {"train": 6, "test": 3}, size=28, gray=True, csv_files=True)
    write_fsdd(base / "fsdd")
    return base


def _sets(roots, split):
    digits = ImageClasses(roots / "mnist", split, modality="digit", grayscale=True)
    speech = SpokenDigits(roots / "fsdd" / "recordings", split, cache_dir=roots / "cache")
    return digits, speech


def test_every_pair_shares_its_class_and_the_pairing_is_seeded(roots):
    digits, speech = _sets(roots, "train")
    paired = ClassPaired(digits, speech, seed=0, split="train")
    assert len(paired) == len(digits) and sorted(paired.modalities) == ["digit", "speech"]
    for i in range(len(paired)):
        j = paired.partner_index[i]
        assert speech.classes[speech.label(j)] == digits.classes[paired.label(i)]
    assert (ClassPaired(digits, speech, seed=0, split="train").partner_index == paired.partner_index).all()
    assert (ClassPaired(digits, speech, seed=1, split="train").partner_index != paired.partner_index).any()
    sample = paired.load(5, ["speech", "digit"])
    np.testing.assert_array_equal(sample["speech"], speech.load(paired.partner_index[5], ["speech"])["speech"])
    assert set(paired.load(5, ["digit"])) == {"digit"}  # a view of one modality reads only that one


def test_the_test_split_pairs_within_the_partners_test_split(roots):
    digits, speech = _sets(roots, "test")
    paired = ClassPaired(digits, speech, seed=0, split="test")
    test_files = set(speech.files)
    assert all(speech.files[j] in test_files and int(speech.files[j].rsplit("_", 1)[1][:-4]) < 5
               for j in paired.partner_index)
    record = paired.split_record()["pairing/test"]
    assert record["partner_index"] == paired.partner_index.tolist() and "class, not instance" in record["protocol"]


def test_mismatched_classes_and_clashing_names_are_refused(roots, tmp_path):
    digits, speech = _sets(roots, "train")
    with pytest.raises(ValueError, match="distinct modality names"):
        ClassPaired(digits, ImageClasses(roots / "mnist", "train", modality="digit", grayscale=True))
    write_class_folders(tmp_path, ["cat", "dog"], {"train": 2}, size=4)
    with pytest.raises(ValueError, match=r"classes \['cat', 'dog'\] of the primary"):
        ClassPaired(ImageClasses(tmp_path, "train"), speech)


def _recipe(roots, **data):
    return {
        "name": "speech_to_digits_tiny",
        "data": {"kind": "class_paired", "image_size": 32, "privileged": ["speech"],
                 "augment": {"hflip": False, "shift": 0.1},
                 "primary": {"kind": "image_classes", "root": str(roots / "mnist"), "modality": "digit",
                             "grayscale": True, "labels": "csv", "limit_per_class": 4},
                 "partner": {"kind": "speech_digits", "root": str(roots / "fsdd"), "size": 32}, **data},
        "teacher": {"model": "resnet10t", "modality": "speech"},
        "student": {"model": "mobilenetv3_small_100", "modality": "digit"},
        "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}]},
        "schedule": {"epochs": 1, "batch_size": 8, "lr": 0.002},
        "logging": {"wandb": "disabled", "probe_size": 16},
    }


def test_each_modality_gets_its_own_size_and_channels(roots):
    recipe = parse_recipe(_recipe(roots))
    assert recipe.data.input_size("speech") == 32 and recipe.data.input_size("digit") == 32
    assert recipe.data.channels("speech") == 1 and recipe.data.channels("digit") == 1
    bigger = parse_recipe(_recipe(roots, image_size=48))
    assert bigger.data.input_size("speech") == 32 and bigger.data.input_size("digit") == 48


def test_a_missing_partner_root_names_its_key(roots, tmp_path):
    bad = _recipe(roots)
    bad["data"]["partner"]["root"] = str(tmp_path / "nowhere")
    with pytest.raises(RecipeError, match=r"data: partner\.root: .*nowhere: no such folder or archive for the Free Spoken Digit Dataset"):
        parse_recipe(bad)


def test_speech_teacher_to_digit_student_runs_end_to_end(roots, tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(_recipe(roots)))
    assert main(["run", str(tmp_path / "r.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "speech_to_digits_tiny").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["teacher"]["modality"] == "speech" and results["students"]["distilled"]["modality"] == "digit"
    assert results["control"]["teacher"]["modality"] == "digit"
    split = json.loads((run_dir / "data_split.json").read_text())
    assert len(split["digit/train"]["files"]) == 40 and len(split["pairing/train"]["partner_index"]) == 40
