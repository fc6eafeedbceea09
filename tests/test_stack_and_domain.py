"""Stacked modalities (an RGB-D teacher) and teachers trained in another domain."""

import json

import numpy as np
import pytest
import torch
import yaml

from pldistill.cli import main
from pldistill.data import JointTransform, ModalityView, build_datasets, encode
from pldistill.data.synthetic_shapes import SyntheticShapesData
from pldistill.recipe import RecipeError, parse_recipe


def rgbd_data(**kw) -> SyntheticShapesData:
    return SyntheticShapesData(num_train=32, num_test=16, image_size=32, stack={"rgbd": ["rgb", "depth"]}, **kw)


def test_stack_concatenates_each_part_encoded_as_itself():
    data = rgbd_data()
    assert data.channels("rgbd") == 4 and rgbd_data(depth_encoding="colour").channels("rgbd") == 6
    train, _ = build_datasets(data)
    parts = train.base.load(3, ["rgb", "depth"])
    sample = ModalityView(train, ["rgbd"])[3]["rgbd"]
    expected = torch.cat([encode(parts["rgb"], train.modalities["rgb"]), encode(parts["depth"], train.modalities["depth"])])
    assert sample.shape == (4, 32, 32) and torch.equal(sample, expected)


def test_stack_parts_share_one_geometry_and_jitter_touches_rgb_only():
    train, _ = build_datasets(rgbd_data())
    augment = dict(hflip=True, shift=0.2, scale=0.2, rotate=20, color_jitter=0.5)
    stacked = ModalityView(train, ["rgbd"], JointTransform(
        {m: train.modalities[m] for m in train.inputs_of(["rgbd"])}, seed=5, **augment))
    separate = ModalityView(train, ["rgb", "depth"], JointTransform(
        {m: train.modalities[m] for m in ["rgb", "depth"]}, seed=5, **augment))
    for i in range(4):
        a, b = stacked[i], separate[i]
        assert torch.equal(a["rgbd"], torch.cat([b["rgb"], b["depth"]]))
    # the depth channel went through the geometry only: its values are a subset of the clean depth map's
    clean = train.base.load(0, ["depth"])["depth"]
    depth_channel = stacked[0]["rgbd"][3] * train.modalities["depth"].std[0] + train.modalities["depth"].mean[0]
    known = np.append(clean.ravel(), 0).astype(np.float64)  # nearest-neighbour moves values, never mixes them
    nearest = np.abs(depth_channel.double().numpy().ravel()[:, None] - known[None]).min(axis=1)
    assert (nearest < 1e-4).mean() > 0.99


class Spy:
    """Wraps a dataset and records which modalities each load asks for."""

    def __init__(self, inner):
        self.inner, self.asked = inner, []

    def load(self, index, names):
        self.asked.append(tuple(names))
        return self.inner.load(index, names)

    def label(self, index):
        return self.inner.label(index)


def test_student_view_of_an_rgbd_recipe_never_reads_depth():
    train, _ = build_datasets(rgbd_data())
    spy = Spy(train.base)
    train.base = spy
    ModalityView(train, ["rgb"])[0]
    assert spy.asked == [("rgb",)]
    ModalityView(train, ["rgbd"])[0]
    assert spy.asked[-1] == ("rgb", "depth")


def test_bad_stacks_and_a_privileged_stack_for_the_student_are_refused():
    raw = yaml.safe_load(open("recipes/depth_to_rgb.yaml"))
    raw["data"]["stack"] = {"rgbd": ["rgb", "dpeth"]}
    with pytest.raises(RecipeError, match=r"data: data\.stack\.rgbd: a stack is a new name for two or more"):
        parse_recipe(raw)
    raw["data"]["stack"] = {"rgbd": ["rgb", "depth"]}
    raw["student"]["modality"] = "rgbd"
    with pytest.raises(RecipeError, match=r"student\.modality: 'rgbd' is privileged"):
        parse_recipe(raw)


def domain_recipe(tmp_path, **source) -> dict:
    return {
        "name": "tiny_domain",
        "data": {"kind": "synthetic_shapes", "num_train": 96, "num_test": 64, "image_size": 32,
                 "camouflage": 0.9, "noise": 0.1},
        "teacher": {"model": "resnet10t", "modality": "rgb",
                    "data": {"kind": "synthetic_shapes", "num_train": 160, "num_test": 64, "image_size": 32,
                             "camouflage": 0.0, "noise": 0.0, **source}},
        "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
        "distill": {"losses": [{"name": "kd", "weight": 1.0}]},
        "schedule": {"epochs": 1, "teacher_epochs": 2, "batch_size": 16, "lr": 0.002},
        "logging": {"probe_size": 0},
    }


def test_teacher_from_another_domain_must_read_the_same_inputs(tmp_path):
    with pytest.raises(RecipeError, match=r"teacher\.data: 'rgb' is 3 channels at 48 px there but 3 channels at 32"):
        parse_recipe(domain_recipe(tmp_path, image_size=48))
    raw = domain_recipe(tmp_path)
    raw["teacher"].update(train=False, weights="t.pt")
    with pytest.raises(RecipeError, match=r"train: false uses the teacher as it is, so it cannot be trained on"):
        parse_recipe(raw)


def test_domain_transfer_run_trains_the_teacher_on_its_source_and_measures_it_on_the_target(tmp_path):
    raw = domain_recipe(tmp_path)
    recipe_file = tmp_path / "domain.yaml"
    recipe_file.write_text(yaml.safe_dump(raw))
    assert main(["run", str(recipe_file), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "tiny_domain").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    teacher = results["teacher"]
    assert teacher["domain"] == "source" and teacher["source_data"]["camouflage"] == 0.0
    assert 0 <= teacher["target_test_acc"] <= 1 and teacher["target_test_acc"] != teacher["test_acc"]
    # trained on the source split (160 samples at batch 16 = 10 steps per epoch), not on the target's 96
    assert [row["epoch"] for row in teacher["history"]] == [1, 2]
    assert "teacher, on this recipe's data" in (run_dir / "results.md").read_text()
    # the cached teacher is the one a plain recipe on the source domain trains: the same hash
    source_only = parse_recipe({**raw, "data": raw["teacher"]["data"],
                                "teacher": {k: v for k, v in raw["teacher"].items() if k != "data"}})
    assert teacher["teacher_hash"] == source_only.teacher_hash()
