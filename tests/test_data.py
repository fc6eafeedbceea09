import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pldistill.data import JointTransform, ModalityView, PairedDataset, SyntheticShapes
from pldistill.data.protocol import Modality
from pldistill.data.render import SHAPES, FAR
from pldistill.data.synthetic_shapes import render_split
from pldistill.models import TappedModel, build_model
from pldistill.engine import evaluate


def test_same_seed_renders_identical_bytes_and_other_seed_differs():
    kw = dict(num_samples=40, image_size=24, split="train", noise=0.04, camouflage=0.5, ambient=0.4)
    a, b = render_split(seed=3, **kw), render_split(seed=3, **kw)
    c = render_split(seed=4, **kw)
    for key in ("rgb", "depth", "label"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["rgb"], c["rgb"])


def test_train_and_test_splits_are_disjoint_renders():
    train = render_split(40, 24, 0, "train", 0.04, 0.5, 0.4)
    test = render_split(40, 24, 0, "test", 0.04, 0.5, 0.4)
    assert not np.array_equal(train["depth"], test["depth"])


def test_split_is_cached_on_disk_and_read_back_identically(isolated_cache):
    first = SyntheticShapes("train", 48, image_size=24, seed=1, cache_dir=isolated_cache)
    mtime = first.path.stat().st_mtime_ns
    second = SyntheticShapes("train", 48, image_size=24, seed=1, cache_dir=isolated_cache)
    assert second.path == first.path and second.path.stat().st_mtime_ns == mtime
    for i in range(len(first)):
        np.testing.assert_array_equal(first.load(i, ["rgb"])["rgb"], second.load(i, ["rgb"])["rgb"])


def test_samples_have_named_modalities_balanced_labels_and_metric_depth():
    ds = SyntheticShapes("train", 80, image_size=32, seed=0)
    sample = ds[0]
    assert set(sample) == {"rgb", "depth", "label"}
    assert sample["rgb"].shape == (32, 32, 3) and sample["rgb"].dtype == np.uint8
    assert sample["depth"].shape == (32, 32) and sample["depth"].dtype == np.float32
    labels = [ds.label(i) for i in range(len(ds))]
    assert np.bincount(labels).tolist() == [80 // len(SHAPES)] * len(SHAPES)
    depth = np.stack([ds.load(i, ["depth"])["depth"] for i in range(len(ds))])
    assert 2.0 < depth.min() and depth.max() <= FAR


def test_object_is_the_nearest_thing_in_depth():
    # The object floats in front of the wall: the nearest pixels form a blob, not the border.
    ds = SyntheticShapes("train", 16, image_size=32, seed=0)
    for i in range(len(ds)):
        d = ds.load(i, ["depth"])["depth"]
        assert d.min() < 6.0  # objects are at z ≤ 5.5 + radius, the wall at ≥ 6


class _Blocks(PairedDataset):
    """An RGB image and a depth map with a marker block at the same random place."""

    modalities = {
        "rgb": Modality("rgb", "image", 3, (0.5,) * 3, (0.25,) * 3),
        "depth": Modality("depth", "depth", 1, (0.0,), (1.0,)),
    }
    classes = ["a"]

    def __init__(self, n=32, size=40):
        rng = np.random.default_rng(0)
        self.rgb = np.zeros((n, size, size, 3), np.uint8)
        self.depth = np.full((n, size, size), 9.0, np.float32)
        for i in range(n):
            y, x = rng.integers(4, size - 10, 2)
            self.rgb[i, y : y + 6, x : x + 4] = 255
            self.depth[i, y : y + 6, x : x + 4] = 1.0

    def __len__(self):
        return len(self.rgb)

    def load(self, index, names):
        return {n: getattr(self, n)[index] for n in names}

    def label(self, index):
        return 0


def test_joint_augmentation_applies_the_same_geometry_to_every_modality():
    ds = _Blocks()
    transform = JointTransform(ds.modalities, hflip=True, shift=0.15, scale=0.1, rotate=10, color_jitter=0.3, seed=0)
    moved = 0
    for i in range(len(ds)):
        raw = ds.load(i, ["rgb", "depth"])
        out = transform(dict(raw))
        rgb_mask = out["rgb"].max(axis=2) > 127
        depth_mask = out["depth"] < 5.0
        overlap = (rgb_mask & depth_mask).sum() / max((rgb_mask | depth_mask).sum(), 1)
        assert overlap > 0.6, f"sample {i}: RGB and depth markers landed in different places"
        moved += not np.array_equal(depth_mask, raw["depth"] < 5.0)
    assert moved > len(ds) // 2  # the geometry really changed most samples


def test_depth_gets_geometry_but_no_colour_jitter():
    ds = _Blocks()
    transform = JointTransform(ds.modalities, hflip=False, color_jitter=0.8, seed=0)
    out = transform(ds.load(0, ["rgb", "depth"]))
    assert set(np.unique(out["depth"])) == {1.0, 9.0}  # values untouched


def test_depth_only_view_is_augmented_without_an_image():
    ds = _Blocks()
    view = ModalityView(ds, ["depth"], JointTransform({"depth": ds.modalities["depth"]}, shift=0.1, seed=0))
    sample = view[0]
    assert set(sample) == {"depth", "label"} and sample["depth"].shape == (1, 40, 40)


class _Guarded(_Blocks):
    """Raises if anything reads the privileged modality."""

    def load(self, index, names):
        if "depth" in names:
            raise AssertionError("the privileged modality was read")
        return super().load(index, names)


def test_student_evaluation_never_reads_the_privileged_modality():
    ds = _Guarded(n=8)
    student = TappedModel(build_model("mobilenetv3_small_100", 3, 1))
    loader = DataLoader(ModalityView(ds, ["rgb"]), batch_size=4)
    acc = evaluate(student, loader, "rgb", torch.device("cpu"), channels_last=True)
    assert acc == 1.0  # one class: every prediction is right, and depth was never touched
    with pytest.raises(AssertionError, match="privileged"):
        ModalityView(ds, ["rgb", "depth"])[0]


def test_view_refuses_a_modality_the_dataset_lacks():
    with pytest.raises(KeyError, match="not in this dataset"):
        ModalityView(_Blocks(), ["thermal"])
