"""Class-folder image sets (CIFAR-10 JPEG, MNIST PNG + CSVs): tiny copies of the layout, then the real archives."""

import numpy as np
import pytest

from pldistill.data.image_classes import ImageClasses, ImageClassesData
from real_layouts import extract_members, first_per_folder, shared, skip_reason, write_class_folders

CIFAR, MNIST = shared("cifar10-jpeg.tar.gz"), shared("mnist-png.tar.gz")
DIGITS = [str(d) for d in range(10)]


def test_png_pixels_come_back_exactly_with_folder_labels(tmp_path):
    written = write_class_folders(tmp_path, ["cat", "dog"], {"train": 3, "test": 2}, ext="png")
    ds = ImageClasses(tmp_path, "train")
    assert ds.classes == ["cat", "dog"] and len(ds) == 6 and ds.modalities["rgb"].channels == 3
    for i in range(len(ds)):
        image = ds.load(i, ["rgb"])["rgb"]
        np.testing.assert_array_equal(image, written[ds.files[i]])
        assert ds.classes[ds.label(i)] == ds.files[i].split("/")[1]
    assert [ds.label(i) for i in range(4)] == [0, 1, 0, 1]  # round-robin: every prefix is class-balanced


def test_jpeg_reads_as_rgb_uint8_close_to_what_was_written(tmp_path):
    written = write_class_folders(tmp_path, ["a", "b"], {"train": 2}, size=32, ext="jpg")
    ds = ImageClasses(tmp_path, "train")
    image = ds.load(0, ["rgb"])["rgb"]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - written[ds.files[0]]).mean() < 12  # JPEG is lossy, not wrong


def test_mnist_layout_grayscale_and_labels_from_its_csv(tmp_path):
    written = write_class_folders(tmp_path, DIGITS, {"train": 2, "test": 1}, size=28, gray=True, csv_files=True)
    by_csv = ImageClasses(tmp_path, "test", modality="digit", grayscale=True, labels="csv")
    by_folder = ImageClasses(tmp_path, "test", modality="digit", grayscale=True)
    assert by_csv.classes == DIGITS == by_folder.classes and by_csv.files == by_folder.files
    image = by_csv.load(3, ["digit"])["digit"]
    assert image.shape == (28, 28, 1) and by_csv.modalities["digit"].channels == 1
    np.testing.assert_array_equal(image[..., 0], written[by_csv.files[3]])
    (tmp_path / "test.csv").write_text("filepath,label\ntest/0/9999.png,0\n")
    with pytest.raises(FileNotFoundError, match="lists 1 file"):
        ImageClasses(tmp_path, "test", labels="csv")


def test_limit_per_class_is_a_seeded_subset_recorded_for_the_run(tmp_path):
    write_class_folders(tmp_path, ["a", "b"], {"train": 10}, size=4)
    pick = lambda seed: ImageClasses(tmp_path, "train", limit_per_class=3, seed=seed)  # noqa: E731
    ds = pick(0)
    assert len(ds) == 6 and [ds.label(i) for i in range(len(ds))].count(0) == 3
    assert pick(0).files == ds.files and pick(1).files != ds.files
    record = ds.split_record()["rgb/train"]
    assert record["files"] == sorted(ds.files) and record["seed"] == 0 and record["limit_per_class"] == 3
    assert ImageClasses(tmp_path, "train").split_record() == {}  # the whole split: nothing chosen, nothing to record


def test_the_test_split_takes_the_train_classes_and_a_stray_class_is_named(tmp_path):
    write_class_folders(tmp_path, ["a", "b"], {"train": 1, "test": 1}, size=4)
    write_class_folders(tmp_path, ["zebra"], {"test": 1}, size=4)
    with pytest.raises(ValueError, match="zebra"):
        ImageClassesData(kind="image_classes", root=str(tmp_path)).build()


def test_a_tar_gz_in_the_layout_is_unpacked_and_read(tmp_path):
    from real_layouts import make_tar

    write_class_folders(tmp_path / "src", ["a", "b"], {"train": 2, "test": 1}, size=4)
    archive = make_tar(tmp_path / "src", tmp_path / "set.tar.gz")
    cfg = ImageClassesData(kind="image_classes", root=str(archive))
    assert cfg.classes == ["a", "b"] and [len(s) for s in cfg.build()] == [4, 2]


@pytest.mark.skipif(not CIFAR.exists(), reason=skip_reason("cifar10-jpeg.tar.gz"))
def test_real_cifar10_jpeg_layout(tmp_path):
    names = extract_members(CIFAR, tmp_path, first_per_folder(3))
    assert len(names) == 60  # 3 per class per split
    train = ImageClasses(tmp_path, "train")
    assert train.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    image = train.load(0, ["rgb"])["rgb"]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image.std() > 5  # a real photograph


@pytest.mark.skipif(not MNIST.exists(), reason=skip_reason("mnist-png.tar.gz"))
def test_real_mnist_png_layout_and_its_csv_agree_with_the_folders(tmp_path):
    extract_members(MNIST, tmp_path, lambda n: n == "test.csv" or (n.startswith("test/") and n.endswith(".png")))
    by_csv = ImageClasses(tmp_path, "test", grayscale=True, labels="csv")
    by_folder = ImageClasses(tmp_path, "test", grayscale=True)
    assert len(by_csv) == 10_000 and by_csv.classes == DIGITS
    assert by_csv.files == by_folder.files and all(by_csv.label(i) == by_folder.label(i) for i in range(len(by_csv)))
    digit = by_csv.load(0, ["rgb"])["rgb"]
    assert digit.shape == (28, 28, 1) and digit.max() > 200 and np.median(digit) < 20  # white digit on black
