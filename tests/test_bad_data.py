"""The catalogue of bad data: each defect ends the run before anything trains, with one line naming the file.

Each case writes a small real data set in one of the layouts pldistill reads
(paired folders, class folders, packed HDF5, NYU v2 ``.mat``, SUN RGB-D
frames, FSDD WAVs, archives), plants one defect, and runs ``pldistill run``:
exit status 2, stderr one ``pldistill: error:`` line (a list, one line per
defect, when there are several) that names the file, no traceback, and no
run folder. The recipe-level catalogue is ``test_bad_inputs.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from pldistill.cli import main
from real_layouts import make_tar, pattern, write_class_folders, write_fsdd, write_sunrgbd_frame

os.environ.setdefault("WANDB_MODE", "offline")

SIZE = 16


def paired_folders(root: Path, per_class: int = 2, classes=("cat", "dog")) -> Path:
    """root/<split>/{rgb,depth}/<class>/<i>.png: 16×16 RGB and 16-bit millimetre depth."""
    for split in ("train", "test"):
        for k, c in enumerate(classes):
            for i in range(per_class):
                for modality in ("rgb", "depth"):
                    (root / split / modality / c).mkdir(parents=True, exist_ok=True)
                rgb = pattern(hash((split, c, i)) % 2**31, (SIZE, SIZE, 3))
                Image.fromarray(rgb).save(root / split / "rgb" / c / f"{i}.png")
                depth = np.full((SIZE, SIZE), 1000 + 500 * k, np.uint16)
                Image.fromarray(depth).save(root / split / "depth" / c / f"{i}.png")
    return root


FOLDERS = {"kind": "folders", "modalities": {"rgb": "image", "depth": "depth"}, "depth_scale": 0.001,
           "privileged": ["depth"], "image_size": SIZE}


def recipe(tmp_path: Path, data: dict, teacher="depth", student="rgb") -> Path:
    raw = {
        "name": "bad_data",
        "data": data,
        "teacher": {"model": "resnet10t", "modality": teacher},
        "student": {"model": "resnet10t", "modality": student},
        "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}]},
        "schedule": {"epochs": 1, "batch_size": 4, "lr": 0.001},
        "logging": {"wandb": "disabled"},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def folders_case(plant):
    """A case on paired folders: ``plant(root, tmp_path)`` breaks the data, returns the data section changes."""
    def make(tmp_path: Path) -> dict:
        root = paired_folders(tmp_path / "pairs")
        return {**FOLDERS, "root": str(root), **(plant(root, tmp_path) or {})}
    return make


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00not an image at all\xff" * 4)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bigger_depth(root: Path, _):
    Image.fromarray(np.full((SIZE * 2, SIZE + 8), 1500, np.uint16)).save(root / "train/depth/dog/1.png")
    return {"size_mismatch": "refuse"}


def _test_class_absent(root: Path, _):
    for modality in ("rgb", "depth"):
        (root / "test" / modality / "bird").mkdir()
        (root / "test" / modality / "cat" / "0.png").rename(root / "test" / modality / "bird" / "0.png")


def _many_corrupt(root: Path, _):
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            for i in range(2, 8):
                for modality in ("rgb", "depth"):
                    _garbage(root / split / modality / c / f"{i}.png")


def _npy_depth(root: Path, values: np.ndarray):
    (root / "train/depth/cat/0.png").unlink()
    np.save(root / "train/depth/cat/0.npy", values)


def _sixteen_bit_rgb(root: Path, _):
    Image.fromarray(np.full((SIZE, SIZE), 300, np.uint16)).save(root / "train/rgb/cat/1.png")


def _packed(tmp_path: Path, content: bytes | None) -> dict:
    train, test = tmp_path / "train.h5", tmp_path / "test.h5"
    if content is None:
        with h5py.File(train, "w") as f:
            f.create_dataset("something_else", data=np.zeros(3))
    else:
        train.write_bytes(content)
    test.write_bytes(b"")
    return {"kind": "packed", "train": str(train), "test": str(test), "privileged": ["depth"]}


def _image_classes(tmp_path: Path, plant) -> dict:
    root = tmp_path / "cifar"
    write_class_folders(root, ["airplane", "cat"], {"train": 3, "test": 2}, size=SIZE, ext="jpg")
    plant(root)
    return {"kind": "resolution_pairs", "image_size": SIZE * 2, "factor": 2,
            "source": {"kind": "image_classes", "root": str(root)}}


def _sunrgbd(tmp_path: Path, plant) -> dict:
    root = tmp_path / "sun"
    for i, scene in enumerate(["office", "kitchen", "office", "kitchen"]):
        write_sunrgbd_frame(root, f"kv1/f{i}", scene, np.full((SIZE, SIZE), 1200 + 100 * i, np.uint16),
                            pattern(i, (SIZE, SIZE, 3)))
    plant(root)
    return {"kind": "sunrgbd", "root": str(root), "image_size": SIZE}


def _nyu(tmp_path: Path, content: bytes) -> dict:
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    path.write_bytes(content)
    (tmp_path / "train.txt").write_text("1\n2\n")
    (tmp_path / "test.txt").write_text("3\n")
    return {"kind": "nyu_depth_v2", "path": str(path), "image_size": SIZE,
            "train_split": str(tmp_path / "train.txt"), "test_split": str(tmp_path / "test.txt")}


def _speech_pair(tmp_path: Path, plant) -> dict:
    fsdd, mnist = tmp_path / "fsdd", tmp_path / "mnist"
    write_fsdd(fsdd, speakers=("alice",), indices=range(6))
    write_class_folders(mnist, [str(d) for d in range(10)], {"train": 1, "test": 1}, size=SIZE, gray=True)
    plant(fsdd)
    return {"kind": "class_paired", "image_size": SIZE,
            "primary": {"kind": "image_classes", "root": str(mnist), "modality": "digit", "grayscale": True},
            "partner": {"kind": "speech_digits", "root": str(fsdd), "size": SIZE}}


# case → (make the data section from tmp_path, expected message (regex), teacher, student)
CASES = {
    # paired folders: undecodable files, one modality of one sample
    "corrupt rgb image": (folders_case(lambda r, t: _garbage(r / "train/rgb/cat/1.png")),
                          r"train/rgb/cat/1\.png \(train sample 1, rgb\): cannot be read \(UnidentifiedImageError"),
    "truncated rgb image": (folders_case(lambda r, t: _truncate(r / "test/rgb/dog/0.png")),
                            r"test/rgb/dog/0\.png \(test sample 2, rgb\): cannot be read"),
    "corrupt depth image": (folders_case(lambda r, t: _garbage(r / "train/depth/dog/0.png")),
                            r"train/depth/dog/0\.png \(train sample 2, depth\): cannot be read"),
    "truncated depth image": (folders_case(lambda r, t: _truncate(r / "train/depth/cat/0.png")),
                              r"train/depth/cat/0\.png \(train sample 0, depth\): cannot be read"),
    "empty file": (folders_case(lambda r, t: (r / "test/rgb/cat/1.png").write_bytes(b"")),
                   r"test/rgb/cat/1\.png \(test sample 1, rgb\): cannot be read"),
    "several defects listed together": (folders_case(_many_corrupt), None),
    # paired folders: files that decode but are the wrong thing
    "rgb and depth at different sizes (refused)": (
        folders_case(_bigger_depth),
        r"train/depth/dog/1\.png \(train sample 3, depth\+rgb\): modalities differ in size \(depth 32×24, rgb 16×16\)"),
    "colour image as depth": (
        folders_case(lambda r, t: Image.fromarray(pattern(1, (SIZE, SIZE, 3))).save(r / "train/depth/cat/1.png")),
        r"train/depth/cat/1\.png \(train sample 1, depth\): cannot be read .*depth must be single-channel"),
    "16-bit image as rgb": (folders_case(_sixteen_bit_rgb),
                            r"train/rgb/cat/1\.png \(train sample 1, rgb\): cannot be read .*I;16 image"),
    "depth .npy with colour channels": (
        folders_case(lambda r, t: _npy_depth(r, np.ones((SIZE, SIZE, 3), np.float32))),
        r"train/depth/cat/0\.npy \(train sample 0, depth\): cannot be read .*H×W array of numbers"),
    "depth .npy holding Python objects": (
        folders_case(lambda r, t: _npy_depth(r, np.array([{"a": 1}], dtype=object))),
        r"train/depth/cat/0\.npy \(train sample 0, depth\): cannot be read .*allow_pickle"),
    # paired folders: layout
    "test class absent from training": (
        folders_case(_test_class_absent),
        r"data: .*test: labels bird are not among classes \['cat', 'dog'\]; a test split holds only the training "
        r"split's classes"),
    "depth file missing for a sample": (
        folders_case(lambda r, t: (r / "train/depth/dog/1.png").unlink()),
        r"data: the modality folders under .*train hold different samples; 1 file\(s\) missing: .*depth/dog/1\.\*"),
    "modality folder missing": (
        folders_case(lambda r, t: [p.unlink() for p in (r / "test/depth").rglob("*.png")] and None),
        r"data: .*test/depth holds no files with extensions"),
    "root is a file, not an archive": (
        lambda t: {**FOLDERS, "root": str(Path(t / "pairs.tar.gz").write_bytes(b"not a tarball") and
                                          t / "pairs.tar.gz")},
        r"data: root: .*pairs\.tar\.gz: not a readable archive"),
    "truncated archive": (
        lambda t: {**FOLDERS, "root": str(_truncated_tar(t))},
        r"data: root: .*pairs\.tar\.gz: not a readable archive"),
    # class-folder images (CIFAR-10 layout), read as a resolution pair
    "corrupt JPEG in a class folder": (
        lambda t: _image_classes(t, lambda r: _garbage(r / "test/cat/0001.jpg")),
        r"test/cat/0001\.jpg \(test sample 3, rgb\): cannot be read", "rgb_hires", "rgb"),
    # packed HDF5
    "packed split that is not HDF5": (lambda t: _packed(t, b"PK\x03\x04 a zip, not HDF5"),
                                      r"train\.h5 is not a readable HDF5 file"),
    "packed split that is foreign HDF5": (lambda t: _packed(t, None), r"train\.h5"),
    # NYU v2 .mat
    "NYU .mat that is not MATLAB v7.3": (lambda t: _nyu(t, b"MATLAB 5.0 MAT-file" + b"\x00" * 200),
                                         r"nyu_depth_v2_labeled\.mat"),
    # SUN RGB-D frames
    "SUN RGB-D frame without its depth": (
        lambda t: _sunrgbd(t, lambda r: [p.unlink() for p in (r / "kv1/f1/depth_bfx").iterdir()] and None),
        r"kv1/f1/depth_bfx"),
    "SUN RGB-D frame with a corrupt depth PNG": (
        lambda t: _sunrgbd(t, lambda r: _garbage(next((r / "kv1/f2/depth_bfx").iterdir()))),
        r"kv1/f2/depth_bfx/0000001\.png \((train|test) sample \d, depth\): cannot be read"),
    # FSDD WAVs, class-paired with digits
    "corrupt WAV recording": (
        lambda t: _speech_pair(t, lambda r: _garbage(r / "recordings" / "3_alice_5.wav")),
        r"3_alice_5\.wav", "speech", "digit"),
}


def _truncated_tar(tmp_path: Path) -> Path:
    archive = make_tar(paired_folders(tmp_path / "src"), tmp_path / "pairs.tar.gz")
    _truncate(archive)
    return archive


def _run(tmp_path: Path, path: Path, capsys) -> tuple[int, str, str]:
    code = main(["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_gets_one_clear_line_before_anything_trains(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLDISTILL_CACHE", str(tmp_path / "cache"))
    make, expected, *models = CASES[case]
    data = make(tmp_path)
    code, out, err = _run(tmp_path, recipe(tmp_path, data, *models), capsys)
    assert code == 2, (out, err)
    assert err.startswith("pldistill: error: ") and "Traceback" not in err, err
    if expected is None:  # several defects: a header line, then one line each (the first 20, then a count)
        lines = err.rstrip("\n").split("\n")
        assert "found 48 defect(s); nothing was trained" in lines[0], err
        assert len(lines) == 1 + 20 + 1 and lines[-1].strip() == "… and 28 more", err
        assert all(re.search(r"\.png \((train|test) sample \d+, (rgb|depth)\): cannot be read", ln) for ln in lines[1:21])
    else:
        assert err.count("\n") == 1, err
        assert re.search(expected, err), err
    assert not (tmp_path / "runs").exists()  # no run folder, half-made or otherwise
    assert "epoch" not in out  # nothing trained


def test_pldistill_check_lists_the_same_defects_without_a_recipe_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PLDISTILL_CACHE", str(tmp_path / "cache"))
    root = paired_folders(tmp_path / "pairs")
    path = recipe(tmp_path, {**FOLDERS, "root": str(root)})
    assert main(["check", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "data check: 8 samples read, no defects" in out and "ready to run" in out
    assert main(["check", str(path), "--quiet"]) == 0  # the pass is remembered: nothing is read again
    assert "cached pass" in capsys.readouterr().out
    _garbage(root / "train/rgb/cat/0.png")  # a changed file invalidates the remembered pass
    assert main(["check", str(path), "--quiet"]) == 2
    assert re.search(r"train/rgb/cat/0\.png \(train sample 0, rgb\): cannot be read", capsys.readouterr().err)


def test_an_empty_recipe_file_says_it_is_empty(tmp_path, capsys):
    for text, said in (("", "is empty"), ("# nothing yet\n", "holds only comments")):
        (tmp_path / "r.yaml").write_text(text)
        assert main(["run", str(tmp_path / "r.yaml")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"r.yaml: the recipe file {said}" in err, err


# -- the policies: what is not a defect ------------------------------------------------------------------------

def test_modalities_of_different_sizes_are_each_resized_before_the_shared_geometry():
    from pldistill.data import JointTransform
    from pldistill.data.folders import default_modality

    modalities = {"rgb": default_modality("rgb", "image"), "depth": default_modality("depth", "depth")}
    rgb = pattern(0, (1080 // 40, 1920 // 40, 3))  # Kinect v2's colour and depth aspect ratios, shrunk
    depth = np.zeros((424 // 8, 512 // 8), np.float32)
    depth[:, 32:] = 2.5  # two depths only: nearest-neighbour resizing must not invent a third
    out = JointTransform(modalities, hflip=False, size=SIZE)({"rgb": rgb, "depth": depth})
    assert out["rgb"].shape == (SIZE, SIZE, 3) and out["depth"].shape == (SIZE, SIZE)
    assert set(np.unique(out["depth"])) == {0.0, 2.5}
    assert out["depth"][:, 0].max() == 0.0 and out["depth"][:, -1].min() == 2.5  # the geometry kept its sides


def test_missing_depth_is_read_as_zero_and_counted_by_the_check(tmp_path, monkeypatch):
    from pldistill.data import ModalityView
    from pldistill.data.check import checked_datasets
    from pldistill.recipe import load_recipe

    monkeypatch.setenv("PLDISTILL_CACHE", str(tmp_path / "cache"))
    root = paired_folders(tmp_path / "pairs")
    holes = np.full((SIZE, SIZE), 1.5, np.float32)
    holes[2:5, 3:9], holes[0, 0], holes[1, 1] = np.nan, np.inf, -np.inf
    _npy_depth(root, holes)
    data = load_recipe(recipe(tmp_path, {**FOLDERS, "root": str(root), "depth_scale": 1.0})).data
    train, _ = checked_datasets(data, progress=False)
    from pldistill.data.check import check_data

    report = check_data(data, *checked_datasets(data, progress=False), progress=False)
    assert report.cached and report.notes == {"depth with NaN or ±inf, read as missing (0)": 1}
    depth = ModalityView(train, ["depth"])[0]["depth"]
    assert torch_finite(depth) and (depth == 0).sum() == 3 * 6 + 2


def torch_finite(t) -> bool:
    import torch

    return bool(torch.isfinite(t).all())


def test_a_file_that_breaks_during_training_stops_the_run_naming_it_and_resume_finishes(tmp_path, capsys,
                                                                                      monkeypatch):
    """Changed on disk after the check: the teacher is kept, the error names the file, --resume goes on."""
    import pldistill.run

    monkeypatch.setenv("PLDISTILL_CACHE", str(tmp_path / "cache"))
    root = paired_folders(tmp_path / "pairs", per_class=6)  # the alignment probe needs 11 test samples
    path = recipe(tmp_path, {**FOLDERS, "root": str(root)})
    bad, good = root / "train/rgb/cat/1.png", (root / "train/rgb/cat/1.png").read_bytes()
    checked = pldistill.run.checked_datasets

    def check_then_break(*args, **kwargs):
        datasets = checked(*args, **kwargs)
        _garbage(bad)  # the teacher reads depth only: the first stage to meet it is the scratch student
        return datasets

    monkeypatch.setattr(pldistill.run, "checked_datasets", check_then_break)
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--quiet"]) == 2
    err = capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs" / "bad_data").iterdir()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(r"train/rgb/cat/1\.png: cannot be read during training \(UnidentifiedImageError", err), err
    assert f"pldistill run --resume {run_dir}" in err
    assert (run_dir / "checkpoints" / "teacher.pt").is_file() and not (run_dir / "results.json").exists()

    bad.write_bytes(good)
    monkeypatch.setattr(pldistill.run, "checked_datasets", checked)
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    assert (run_dir / "results.json").is_file()
