"""Real dataset kinds through recipes: folders and NYU files load, pack, and train end to end."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from pldistill.cli import main
from pldistill.recipe import RecipeError, parse_recipe

from test_nyu import write_labeled_mat

BASE = {
    "name": "kinds",
    "teacher": {"model": "resnet10t", "modality": "depth"},
    "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
    "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}],
                "same_modality_control": False},
    "schedule": {"epochs": 1, "batch_size": 8, "lr": 0.002},
    "logging": {"wandb": "disabled", "probe_size": 16},
}


def write_folders(root, per_class=12, size=(40, 30)):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(("near", "far")):
            for i in range(per_class):
                for modality in ("rgb", "depth"):
                    (root / split / modality / name).mkdir(parents=True, exist_ok=True)
                rgb = rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)
                Image.fromarray(rgb).save(root / split / "rgb" / name / f"{i:03d}.png")
                depth_mm = np.full(size[::-1], 800 + 2000 * c, dtype=np.uint16)  # 16-bit millimetres
                Image.fromarray(depth_mm).save(root / split / "depth" / name / f"{i:03d}.png")


def folders_recipe(root, image_size=32):
    return dict(BASE, schedule={"epochs": 1, "teacher_epochs": 6, "batch_size": 8, "lr": 0.005}, data={"kind": "folders", "root": str(root), "modalities": {"rgb": "image", "depth": "depth"},
                            "depth_scale": 0.001, "image_size": image_size})


def test_folders_recipe_loads_its_layout_and_trains_end_to_end(tmp_path):
    write_folders(tmp_path / "data")
    recipe = parse_recipe(folders_recipe(tmp_path / "data"))
    assert recipe.data.classes == ["far", "near"] and recipe.data.channels("depth") == 1
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(folders_recipe(tmp_path / "data")))
    assert main(["run", str(tmp_path / "r.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "kinds").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    dataset = {k: v for k, v in results["dataset"].items() if k != "modalities"}
    assert dataset == {"kind": "folders", "classes": ["far", "near"], "num_train": 24, "num_test": 24}
    assert results["dataset"]["modalities"]["depth"]["channels"] == 1  # what `pldistill export` reads
    # depth alone separates the classes (0.8 m vs 2.8 m): a few epochs get the teacher well above chance
    assert results["teacher"]["test_acc"] >= 0.75, results["teacher"]["history"]


def test_pack_then_train_on_the_packed_files(tmp_path, capsys):
    write_folders(tmp_path / "data")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(folders_recipe(tmp_path / "data")))
    assert main(["pack", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "packed"), "--quiet"]) == 0
    assert "kind: packed" in capsys.readouterr().out
    packed = dict(BASE, data={"kind": "packed", "train": str(tmp_path / "packed" / "train.h5"),
                              "test": str(tmp_path / "packed" / "test.h5"), "image_size": 32})
    recipe = parse_recipe(packed)
    assert recipe.data.classes == ["far", "near"]
    train, _ = recipe.data.build()
    sample = train.load(0, ["depth"])["depth"]
    assert sample.dtype == np.float32 and sample[0, 0] == pytest.approx(2.8)  # 2800 mm, read without loss
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(packed))
    assert main(["run", str(tmp_path / "p.yaml"), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 0


def test_nyu_recipe_reads_the_mat_file_and_names_problems(tmp_path):
    mat = tmp_path / "nyu.mat"
    write_labeled_mat(mat)
    (tmp_path / "train.txt").write_text("1\n2\n3\n")
    (tmp_path / "test.txt").write_text("4\n5\n6\n")
    raw = dict(BASE, data={"kind": "nyu_depth_v2", "path": str(mat), "train_split": str(tmp_path / "train.txt"),
                           "test_split": str(tmp_path / "test.txt")})
    recipe = parse_recipe(raw)
    assert recipe.data.classes[-1] == "other" and len(recipe.data.classes) == 10
    train, test = recipe.data.build()
    assert len(train) == 3 and len(test) == 3
    raw["data"] = dict(raw["data"], path=str(tmp_path / "missing.mat"))
    with pytest.raises(RecipeError, match=r"data: NYU Depth v2 labeled file not found .* pldistill never downloads"):
        parse_recipe(raw)
    raw["data"] = dict(raw["data"], path=str(mat), test_split=None)
    with pytest.raises(RecipeError, match=r"give either split_file \(splits.mat\) or both train_split and test_split"):
        parse_recipe(raw)


def test_nyu_frames_go_through_the_joint_augmentation_and_the_loader(tmp_path):
    from torch.utils.data import DataLoader

    from pldistill.data import JointTransform, ModalityView
    from pldistill.data.nyu import NYUDepthV2

    mat = tmp_path / "nyu.mat"
    write_labeled_mat(mat)
    (tmp_path / "ids.txt").write_text("1\n2\n3\n4\n")
    nyu = NYUDepthV2(mat, "train", tmp_path / "ids.txt")
    transform = JointTransform({m: nyu.modalities[m] for m in ("rgb", "depth")}, shift=0.1, scale=0.1, seed=0,
                               size=32)
    batch = next(iter(DataLoader(ModalityView(nyu, ["rgb", "depth"], transform), batch_size=4, num_workers=2)))
    assert tuple(batch["rgb"].shape) == (4, 3, 32, 32) and tuple(batch["depth"].shape) == (4, 1, 32, 32)
    assert batch["label"].tolist() == [nyu.label(i) for i in range(4)]


def test_pack_names_a_dataset_that_cannot_be_packed(tmp_path, capsys, monkeypatch):
    from pldistill.data import packed

    write_folders(tmp_path / "data")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(folders_recipe(tmp_path / "data")))

    def refuse(*args, **kwargs):
        raise packed.PackedDatasetError("modality 'rgb': sample 7 has shape (16, 16, 3) but sample 0 has (32, 32, 3)")

    monkeypatch.setattr(packed, "pack", refuse)
    assert main(["pack", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "packed")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pldistill: error: ") and "r.yaml: data: modality 'rgb': sample 7" in err
