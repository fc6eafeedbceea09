"""DTD: the seeded 40/40/40 split per class, on a tiny copy of the layout and on the real file names."""

import json

import numpy as np
import pytest

from pldistill.data.dtd import DTDData, DTDTextures, dtd_split
from pldistill.data.image_classes import read_picture
from pldistill.data.splits import write_split_record
from real_layouts import extract_members, list_members, shared, skip_reason, write_dtd

DTD = shared("dtd10-images.tar.gz")


@pytest.fixture(scope="module")
def dtd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dtd")
    write_dtd(root, ["banded", "blotchy", "braided"])
    return root


def _check_split(parts, by_class):
    for c, files in by_class.items():
        train, val, test = (set(parts[p][c]) for p in ("train", "val", "test"))
        assert len(train) == len(val) == len(test) == 40
        assert not (train & val or train & test or val & test)  # disjoint
        assert train | val | test == set(files)  # 120 images: every one used once


def test_split_is_40_40_40_per_class_disjoint_and_seeded(dtd_root):
    ds = DTDTextures(dtd_root, "train", seed=0)
    by_class = {c: sorted(f for p in ("train", "val", "test") for f in ds.parts[p][c]) for c in ds.classes}
    _check_split(ds.parts, by_class)
    assert DTDTextures(dtd_root, "train", seed=0).parts == ds.parts  # same seed, same split
    assert DTDTextures(dtd_root, "train", seed=1).parts["test"] != ds.parts["test"]  # another seed, another
    sizes = {s: len(DTDTextures(dtd_root, s)) for s in ("train", "val", "test", "trainval")}
    assert sizes == {"train": 120, "val": 120, "test": 120, "trainval": 240}
    image = DTDTextures(dtd_root, "test").load(0, ["rgb"])["rgb"]
    assert image.shape == (12, 12, 3) and image.dtype == np.uint8


def test_a_class_split_does_not_depend_on_the_other_classes():
    files = {c: [f"images/{c}/{c}_{i:04d}.jpg" for i in range(120)] for c in ("a", "b")}
    alone = dtd_split({"a": files["a"]}, seed=3)
    together = dtd_split(files, seed=3)
    assert all(alone[p]["a"] == together[p]["a"] for p in ("train", "val", "test"))


def test_a_short_class_is_refused(tmp_path):
    write_dtd(tmp_path, ["banded"], per_class=119)
    with pytest.raises(ValueError, match="'banded' has 119 images; the 40/40/40 split needs 120"):
        DTDTextures(tmp_path, "train")


def test_the_split_is_recorded_in_the_run_folder(dtd_root, tmp_path):
    train, test = DTDData(kind="dtd", root=str(dtd_root), split_seed=7).build()
    path = write_split_record(tmp_path, train, test)
    record = json.loads(path.read_text())["dtd"]
    assert path.name == "data_split.json" and record["seed"] == 7 and "40/40/40" in record["protocol"]
    assert record["test"] == train.parts["test"] and sorted(test.files) == sorted(
        f for files in record["test"].values() for f in files)


@pytest.mark.skipif(not DTD.exists(), reason=skip_reason("dtd10-images.tar.gz"))
def test_real_dtd10_names_split_and_images(tmp_path):
    names = list_members(DTD)
    by_class = {}
    for n in names:
        _, c, file = n.split("/")
        assert file.startswith(f"{c}_") and file.endswith(".jpg")  # DTD's <class>/<class>_NNNN.jpg naming
        by_class.setdefault(c, []).append(n)
    assert len(by_class) == 10 and {len(v) for v in by_class.values()} == {120}
    _check_split(dtd_split({c: sorted(v) for c, v in by_class.items()}, seed=0), by_class)
    first = [sorted(v)[0] for v in by_class.values()]
    extract_members(DTD, tmp_path, lambda n: n in first)
    for name in first:
        image = read_picture(tmp_path / name)
        assert image.dtype == np.uint8 and image.shape[2] == 3
        assert 300 <= min(image.shape[:2]) and max(image.shape[:2]) <= 640  # DTD's originals: 300-640 px
