"""Depth encodings: hand-checked values, and a 3-channel teacher built from a colour-encoded recipe."""

import copy

import numpy as np
import pytest
import torch

from pldistill.data import Modality, ModalityView, SyntheticShapes
from pldistill.data.depth_encoding import encode_depth
from pldistill.data.protocol import encode
from pldistill.recipe import parse_recipe

COLOUR = {
    "name": "colour",
    "data": {"kind": "synthetic_shapes", "num_train": 32, "num_test": 16, "image_size": 32,
             "depth_encoding": "colour"},
    "teacher": {"model": "resnet10t", "modality": "depth"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]}],
                "same_modality_control": False},
    "schedule": {"epochs": 1, "batch_size": 8, "lr": 0.001},
}
DEPTH = Modality("depth", "depth", 1, (2.0,), (0.5,))


def test_metric_is_the_standardised_metres_the_default_path_gives():
    d = np.array([[1.0, 2.0], [3.0, 0.0]], dtype=np.float32)
    torch.testing.assert_close(encode_depth(d, DEPTH, "metric"), encode(d, DEPTH))
    torch.testing.assert_close(encode_depth(d, DEPTH, "metric")[0], torch.tensor([[-2.0, 0.0], [2.0, -4.0]]))


def test_inverse_is_mean_over_depth_minus_one_and_marks_missing_depth():
    d = np.array([[1.0, 2.0, 4.0, 0.0]], dtype=np.float32)
    torch.testing.assert_close(encode_depth(d, DEPTH, "inverse")[0], torch.tensor([[1.0, 0.0, -0.5, -1.0]]))


def test_colour_is_jet_over_mean_plus_minus_two_std_then_imagenet_standardised():
    d = np.array([[1.0, 2.0, 3.0, 9.0]], dtype=np.float32)  # t = 0, 0.5, 1, clipped 1
    x = encode_depth(d, DEPTH, "colour")
    assert x.shape == (3, 1, 4)
    rgb = x * torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    torch.testing.assert_close(rgb[:, 0, 0], torch.tensor([0.0, 0.0, 0.5]))  # jet: dark blue at the near end
    torch.testing.assert_close(rgb[:, 0, 1], torch.tensor([0.5, 1.0, 0.5]))  # green in the middle
    torch.testing.assert_close(rgb[:, 0, 2], torch.tensor([0.5, 0.0, 0.0]))  # dark red at the far end
    torch.testing.assert_close(x[:, 0, 3], x[:, 0, 2])


def test_views_encode_depth_as_asked_and_recipes_size_the_teacher_for_it():
    data = SyntheticShapes("test", 8, image_size=32, seed=0)
    sample = ModalityView(data, ["depth"], depth_encoding="colour")[0]
    assert sample["depth"].shape == (3, 32, 32)
    raw = copy.deepcopy(COLOUR)
    recipe = parse_recipe(raw)
    assert recipe.data.channels("depth") == 3 and recipe.data.channels("rgb") == 3
    raw["data"]["depth_encoding"] = "inverse"
    assert parse_recipe(raw).data.channels("depth") == 1
    raw["data"]["depth_encoding"] = "hha"
    with pytest.raises(Exception, match=r"data\.depth_encoding: Input should be 'metric', 'inverse' or 'colour'"):
        parse_recipe(raw)


def test_a_colour_encoded_depth_teacher_trains_end_to_end(tmp_path):
    import json

    import yaml

    from pldistill.cli import main

    raw = dict(copy.deepcopy(COLOUR), logging={"wandb": "disabled", "probe_size": 16})
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    assert main(["run", str(tmp_path / "r.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "colour").iterdir()
    state = torch.load(run_dir / "checkpoints" / "teacher.pt", weights_only=True)["state_dict"]
    assert state["conv1.0.weight"].shape[1] == 3  # the teacher's stem takes the 3-channel encoding
    assert json.loads((run_dir / "results.json").read_text())["teacher"]["test_acc"] is not None
