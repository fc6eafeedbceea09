"""Paired folders adapter on a tiny tree of real PNG / JPEG / .npy files."""

import numpy as np
import pytest
from PIL import Image

from pldistill.data.folders import PairedFolders, read_depth
from pldistill.data.protocol import Modality, ModalityView

DEPTH_MM = np.array([[0, 1, 255], [256, 1234, 65535]], dtype=np.uint16)
MODALITIES = {"rgb": "image", "depth": "depth"}


def _rgb(seed, size=(2, 3)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _save(path, array):
    """uint8 H×W → L, H×W×3 → RGB, H×W×4 → RGBA, uint16 H×W → 16-bit PNG (I;16)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array).save(path)


@pytest.fixture
def tree(tmp_path):
    """train: cat/001 (16-bit PNG depth), cat/002 (.npy depth), dog/003 (gray + RGBA); test: dog/004."""
    train = tmp_path / "train"
    _save(train / "rgb/cat/001.png", _rgb(1))
    _save(train / "depth/cat/001.png", DEPTH_MM)
    _save(train / "rgb/cat/002.png", _rgb(2))
    _save(train / "depth/cat/002.npy", np.full((2, 3), 1500.0, np.float32))
    _save(train / "rgb/dog/003.png", _rgb(3)[..., 0])  # grayscale
    _save(train / "depth/dog/003.png", DEPTH_MM[::-1].copy())
    (train / "rgb/.DS_Store").write_bytes(b"junk")  # hidden and foreign files are ignored
    (train / "depth/dog/notes.txt").write_text("not a sample")
    test = tmp_path / "test"
    rgba = np.dstack([_rgb(4), np.full((2, 3), 7, np.uint8)])
    _save(test / "rgb/dog/004.png", rgba)
    _save(test / "depth/dog/004.png", DEPTH_MM)
    return tmp_path


def test_pillow_opens_16_bit_png_as_i16(tree):
    with Image.open(tree / "train/depth/cat/001.png") as image:
        assert image.mode == "I;16"


def test_16_bit_depth_png_comes_back_exactly(tree):
    ds = PairedFolders(tree, MODALITIES, split="train")
    depth = ds.load(0, ["depth"])["depth"]
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    np.testing.assert_array_equal(depth, DEPTH_MM.astype(np.float32))  # 1234 and 65535 intact


def test_depth_scale_turns_millimetres_into_metres(tree):
    ds = PairedFolders(tree, MODALITIES, split="train", depth_scale=0.001)
    depth = ds.load(0, ["depth"])["depth"]
    np.testing.assert_array_equal(depth, (DEPTH_MM / 1000.0).astype(np.float32))
    assert depth[1, 1] == np.float32(1.234) and depth[1, 2] == np.float32(65.535)
    np.testing.assert_array_equal(ds.load(1, ["depth"])["depth"], np.full((2, 3), 1.5, np.float32))


def test_npy_depth_is_read_as_stored(tree):
    ds = PairedFolders(tree, MODALITIES, split="train")
    assert ds.samples[1] == "cat/002"
    np.testing.assert_array_equal(ds.load(1, ["depth"])["depth"], np.full((2, 3), 1500.0, np.float32))


def test_images_come_back_rgb_uint8_from_rgb_gray_and_rgba(tree):
    train = PairedFolders(tree, MODALITIES, split="train")
    np.testing.assert_array_equal(train.load(0, ["rgb"])["rgb"], _rgb(1))
    gray = train.load(2, ["rgb"])["rgb"]
    assert gray.shape == (2, 3, 3) and gray.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(gray[..., channel], _rgb(3)[..., 0])
    rgba = PairedFolders(tree, MODALITIES, split="test").load(0, ["rgb"])["rgb"]
    np.testing.assert_array_equal(rgba, _rgb(4))  # alpha dropped


def test_jpeg_images_are_read(tmp_path):
    _save(tmp_path / "rgb/cat/a.jpg", np.full((4, 4, 3), 128, np.uint8))
    _save(tmp_path / "depth/cat/a.npy", np.ones((4, 4), np.float32))
    rgb = PairedFolders(tmp_path, MODALITIES).load(0, ["rgb"])["rgb"]
    assert rgb.shape == (4, 4, 3) and abs(int(rgb.mean()) - 128) <= 2


def test_classes_from_first_folder_and_samples_sorted(tree):
    ds = PairedFolders(tree, MODALITIES, split="train")
    assert ds.samples == ["cat/001", "cat/002", "dog/003"]
    assert ds.classes == ["cat", "dog"]
    assert [ds.label(i) for i in range(3)] == [0, 0, 1]
    sample = ds[2]
    assert set(sample) == {"rgb", "depth", "label"} and sample["label"] == 1


def test_test_split_takes_the_train_classes(tree):
    train = PairedFolders(tree, MODALITIES, split="train")
    alone = PairedFolders(tree, MODALITIES, split="test")
    assert alone.classes == ["dog"] and alone.label(0) == 0
    test = PairedFolders(tree, MODALITIES, split="test", classes=train.classes)
    assert test.label(0) == 1


def test_load_reads_only_requested_modalities(tree):
    ds = PairedFolders(tree, MODALITIES, split="train")
    (tree / "train/depth/cat/001.png").unlink()  # the privileged files vanish after indexing
    assert set(ds.load(0, ["rgb"])) == {"rgb"}
    view = ModalityView(ds, ["rgb"])
    assert view[0]["rgb"].shape == (3, 2, 3)
    with pytest.raises(FileNotFoundError, match="001.png"):
        ds.load(0, ["depth"])
    with pytest.raises(KeyError, match="no modality"):
        ds.load(0, ["thermal"])


def test_csv_labels_override_folders(tree):
    (tree / "train/labels.csv").write_text(
        "\ufeffsample,label,note\ncat/001,small,x\ncat/002,large,\ndog/003,small,y\n"
    )
    ds = PairedFolders(tree, MODALITIES, split="train", labels="csv")
    assert ds.classes == ["large", "small"]
    assert [ds.label(i) for i in range(3)] == [1, 0, 1]


def test_csv_labels_without_class_folders_and_without_split(tmp_path):
    for name, depth in [("a", 1.0), ("b", 2.0)]:
        _save(tmp_path / f"rgb/{name}.png", _rgb(0))
        _save(tmp_path / f"depth/{name}.npy", np.full((2, 3), depth, np.float32))
    (tmp_path / "labels.csv").write_text("sample,label\nb,kitchen\na,bedroom\n")
    ds = PairedFolders(tmp_path, MODALITIES, labels="csv", classes=["kitchen", "bedroom"])
    assert ds.samples == ["a", "b"] and [ds.label(0), ds.label(1)] == [1, 0]
    with pytest.raises(ValueError, match="in no class folder"):
        PairedFolders(tmp_path, MODALITIES)


def test_csv_errors_name_the_problem(tree):
    csv = tree / "train/labels.csv"
    with pytest.raises(FileNotFoundError, match="labels.csv with columns sample,label"):
        PairedFolders(tree, MODALITIES, split="train", labels="csv")
    cases = [
        ("name,class\ncat/001,cat\n", "columns sample,label; found"),
        ("sample,label\ncat/001,cat\ncat/002,cat\n", r"no row for sample\(s\) dog/003"),
        ("sample,label\ncat/001,cat\ncat/002,cat\ndog/003,dog\ncat/009.png,cat\n", "no files: cat/009.png"),
        ("sample,label\ncat/001,cat\ncat/001,dog\n", "labels.csv:3: sample 'cat/001' is listed twice"),
        ("sample,label\ncat/001,\n", "labels.csv:2: empty sample or label"),
    ]
    for text, message in cases:
        csv.write_text(text)
        with pytest.raises(ValueError, match=message):
            PairedFolders(tree, MODALITIES, split="train", labels="csv")
    csv.write_text("sample,label\ncat/001,cat\ncat/002,cow\ndog/003,dog\n")
    with pytest.raises(ValueError, match=r"labels.csv: labels cow are not among classes \['cat', 'dog'\]"):
        PairedFolders(tree, MODALITIES, split="train", labels="csv", classes=["cat", "dog"])


def test_a_sample_missing_one_modality_names_the_file(tree):
    (tree / "train/depth/dog/003.png").unlink()
    with pytest.raises(ValueError, match=r"different samples.*depth/dog/003\.\* \(for .*rgb/dog/003\.png\)"):
        PairedFolders(tree, MODALITIES, split="train")
    _save(tree / "train/depth/dog/003.png", DEPTH_MM)
    _save(tree / "train/depth/dog/005.npy", np.ones((2, 3), np.float32))  # extra depth only
    with pytest.raises(ValueError, match=r"1 file\(s\) missing: .*rgb/dog/005\.\*"):
        PairedFolders(tree, MODALITIES, split="train")


def test_missing_or_empty_folders_are_named(tree):
    with pytest.raises(FileNotFoundError, match="dataset folder not found: .*val"):
        PairedFolders(tree, MODALITIES, split="val")
    with pytest.raises(FileNotFoundError, match=r"no folder for modality 'thermal'.*found \['depth', 'rgb'\]"):
        PairedFolders(tree, {"rgb": "image", "thermal": "depth"}, split="train")
    (tree / "empty/rgb").mkdir(parents=True)
    (tree / "empty/depth/cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no files with extensions .png"):
        PairedFolders(tree, MODALITIES, split="empty")
    with pytest.raises(ValueError, match="two files for sample 'cat/001'"):
        _save(tree / "train/depth/cat/001.npy", np.ones((2, 3), np.float32))
        PairedFolders(tree, MODALITIES, split="train")


def test_bad_declarations_are_refused(tree):
    with pytest.raises(ValueError, match="kind must be 'image' or 'depth'"):
        PairedFolders(tree, {"rgb": "video"}, split="train")
    with pytest.raises(ValueError, match="depth_scale"):
        PairedFolders(tree, MODALITIES, split="train", depth_scale=0)
    with pytest.raises(ValueError, match="labels must be"):
        PairedFolders(tree, MODALITIES, split="train", labels="parent")
    custom = {"rgb": "image", "depth": Modality("depth", "depth", 1, (2.5,), (1.5,))}
    assert PairedFolders(tree, custom, split="train").modalities["depth"].mean == (2.5,)


def test_bad_depth_files_are_refused(tmp_path):
    colour = tmp_path / "colour.png"
    _save(colour, _rgb(0))
    with pytest.raises(ValueError, match="single-channel, got a RGB image"):
        read_depth(colour, 1.0)
    stack = tmp_path / "stack.npy"
    np.save(stack, np.ones((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"H×W array of numbers, got float32 \(2, 2, 3\)"):
        read_depth(stack, 1.0)
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects.npy.*allow_pickle"):
        read_depth(pickled, 1.0)


def test_16_bit_png_declared_as_image_is_refused(tree):
    with pytest.raises(ValueError, match="I;16 image.*declare its modality as 'depth'"):
        PairedFolders(tree, {"rgb": "image", "depth": "image"}, split="test").load(0, ["depth"])
