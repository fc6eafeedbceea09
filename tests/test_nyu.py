"""NYU Depth v2 adapter on a tiny file written in the labeled .mat's exact layout."""

import pickle

import h5py
import numpy as np
import pytest
from torch.utils.data import DataLoader

from pldistill.data.nyu import GUPTA10, NYU_PAGE, NYUDepthV2

N, W, H = 6, 8, 6  # h5py sees MATLAB's H×W×C×N arrays reversed: (N, C, W, H)
SCENE_TYPES = ["bedroom", "kitchen", "living_room", "excercise_room", "bookstore", "home_office"]
SCENES = [f"{t}_{i + 1:04d}" for i, t in enumerate(SCENE_TYPES)]
OBJECT_NAMES = ["wall", "floor", "chair"]


def _cell_of_strings(f, name, strings):
    """A MATLAB cell array of char arrays: (1, n) object references into ``#refs#``."""
    refs = f.require_group("#refs#")
    pointers = []
    for i, text in enumerate(strings):
        codes = np.array([[ord(ch)] for ch in text], dtype=np.uint16)  # MATLAB char: (len, 1)
        node = refs.create_dataset(f"{name}_{i}", data=codes)
        node.attrs["MATLAB_class"] = np.bytes_("char")
        node.attrs["MATLAB_int_decode"] = np.int32(2)
        pointers.append(node.ref)
    cell = f.create_dataset(name, (1, len(strings)), dtype=h5py.ref_dtype)
    cell[0, :] = pointers
    cell.attrs["MATLAB_class"] = np.bytes_("cell")


def write_labeled_mat(path, drop=()):
    """Write a 6-frame ``nyu_depth_v2_labeled.mat`` look-alike; return its arrays (h5py order)."""
    rng = np.random.default_rng(0)
    arrays = {
        "images": rng.integers(0, 256, (N, 3, W, H), dtype=np.uint8),
        "depths": rng.uniform(0.5, 9.5, (N, W, H)).astype(np.float32),
        "labels": rng.integers(0, len(OBJECT_NAMES) + 1, (N, W, H)).astype(np.uint16),
    }
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, array in arrays.items():
            if name not in drop:
                f.create_dataset(name, data=array)
        if "sceneTypes" not in drop:
            _cell_of_strings(f, "sceneTypes", SCENE_TYPES)
        _cell_of_strings(f, "scenes", SCENES)
        _cell_of_strings(f, "names", OBJECT_NAMES)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2015 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:  # the userblock is where MATLAB writes its text header
        fh.write(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM")
    return arrays


@pytest.fixture
def nyu(tmp_path):
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    arrays = write_labeled_mat(path)
    splits = tmp_path / "train.txt"
    splits.write_text("# frames of the train split\n1\n3\n\n4\n6\n")
    return path, splits, arrays


def test_file_is_a_matlab_v73_file_with_userblock(nyu):
    path, _, _ = nyu
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    assert h5py.is_hdf5(path)


def test_rgb_comes_back_as_h_w_c_uint8_with_matlab_axes_reversed(nyu):
    path, splits, arrays = nyu
    ds = NYUDepthV2(path, "train", splits)
    rgb = ds.load(1, ["rgb"])["rgb"]  # split position 1 = frame 3 = h5py index 2
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    for r in range(H):
        for c in range(W):
            for ch in range(3):
                assert rgb[r, c, ch] == arrays["images"][2, ch, c, r]


def test_a_planted_pixel_lands_at_its_row_and_column(tmp_path):
    path = tmp_path / "nyu.mat"
    write_labeled_mat(path)
    with h5py.File(path, "r+") as f:
        images = f["images"]
        images[...] = 0
        images[4, 1, 7, 2] = 200  # MATLAB images(row 3, col 8, green, frame 5)
    split = tmp_path / "split.txt"
    split.write_text("5\n")
    rgb = NYUDepthV2(path, "test", split).load(0, ["rgb"])["rgb"]
    assert rgb[2, 7, 1] == 200 and rgb.sum() == 200


def test_depth_is_float32_metres_h_w_and_pixel_labels_match(nyu):
    path, splits, arrays = nyu
    ds = NYUDepthV2(path, "train", splits)
    depth = ds.load(3, ["depth"])["depth"]  # frame 6
    assert depth.shape == (H, W) and depth.dtype == np.float32
    np.testing.assert_array_equal(depth, arrays["depths"][5].T)
    assert 0.5 <= depth.min() and depth.max() <= 9.5
    labels = ds.pixel_labels(3)
    assert labels.shape == (H, W) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, arrays["labels"][5].T)
    assert ds.object_names() == OBJECT_NAMES


def test_load_returns_only_the_requested_modalities(nyu):
    path, splits, _ = nyu
    ds = NYUDepthV2(path, "train", splits)
    assert set(ds.load(0, ["depth"])) == {"depth"}
    sample = ds[0]
    assert set(sample) == {"rgb", "depth", "label"}
    with pytest.raises(KeyError, match="no modality"):
        ds.load(0, ["thermal"])


def test_rgb_reads_never_touch_the_depth_dataset(nyu):
    path, splits, _ = nyu
    ds = NYUDepthV2(path, "train", splits)
    with h5py.File(path, "r+") as f:  # the privileged modality is gone after construction
        del f["depths"]
    for i in range(len(ds)):
        assert ds.load(i, ["rgb"])["rgb"].shape == (H, W, 3)
    with pytest.raises(ValueError, match="lacks dataset 'depths'"):
        ds.load(0, ["depth"])


def test_scene_types_are_decoded_and_merged_into_the_ten_classes(nyu):
    path, _, _ = nyu
    split = path.parent / "all.txt"
    split.write_text("\n".join(str(i) for i in range(1, N + 1)))
    ds = NYUDepthV2(path, "all", split)
    assert ds.classes == list(GUPTA10) and len(ds.classes) == 10
    assert [ds.scene_type(i) for i in range(N)] == SCENE_TYPES
    assert [ds.scene(i) for i in range(N)] == SCENES
    names = [ds.classes[ds.label(i)] for i in range(N)]
    # the rare excercise_room (sic, as spelled in the file) is merged into "other"
    assert names == ["bedroom", "kitchen", "living_room", "other", "bookstore", "home_office"]


def test_other_class_protocols(nyu):
    path, splits, _ = nyu
    every = NYUDepthV2(path, "train", splits, classes="all")
    assert every.classes == sorted(SCENE_TYPES)
    assert every.classes[every.label(2)] == "excercise_room"  # frame 4
    custom = NYUDepthV2(path, "train", splits, classes=["kitchen", "bedroom"])
    assert custom.classes == ["kitchen", "bedroom", "other"]
    assert [custom.label(i) for i in range(len(custom))] == [1, 2, 2, 2]
    with pytest.raises(ValueError, match="unknown NYU class protocol"):
        NYUDepthV2(path, "train", splits, classes="gupta13")


def test_text_split_selects_those_frames_in_order(nyu):
    path, splits, arrays = nyu
    ds = NYUDepthV2(path, "train", splits)
    assert len(ds) == 4
    assert [ds.frame_number(i) for i in range(4)] == [1, 3, 4, 6]
    assert [ds.scene_type(i) for i in range(4)] == [SCENE_TYPES[k] for k in (0, 2, 3, 5)]
    for i, frame in enumerate((0, 2, 3, 5)):
        np.testing.assert_array_equal(ds.load(i, ["depth"])["depth"], arrays["depths"][frame].T)


def test_hdf5_splits_mat_picks_train_or_test(nyu):
    path, _, _ = nyu
    split = path.parent / "splits.mat"
    with h5py.File(split, "w") as f:  # MATLAB stores indices as 1-based doubles, (1, n)
        f.create_dataset("trainNdxs", data=np.array([[1.0, 2.0, 5.0]]))
        f.create_dataset("testNdxs", data=np.array([[3.0, 4.0, 6.0]]))
    train, test = NYUDepthV2(path, "train", split), NYUDepthV2(path, "test", split)
    assert [train.frame_number(i) for i in range(3)] == [1, 2, 5]
    assert [test.frame_number(i) for i in range(3)] == [3, 4, 6]
    with pytest.raises(ValueError, match="only 'train' and 'test'"):
        NYUDepthV2(path, "val", split)


def test_v5_splits_mat_like_the_official_one(nyu):
    scipy_io = pytest.importorskip("scipy.io")
    path, _, _ = nyu
    split = path.parent / "splits_v5.mat"
    scipy_io.savemat(split, {"trainNdxs": np.array([[2.0], [4.0]]), "testNdxs": np.array([[1.0], [3.0]])})
    assert split.read_bytes().startswith(b"MATLAB 5.0")
    test = NYUDepthV2(path, "test", split)
    assert [test.frame_number(i) for i in range(len(test))] == [1, 3]


def test_bad_split_files_are_refused_with_the_reason(nyu):
    path, _, _ = nyu
    with pytest.raises(ValueError, match="needs split_file.*splits.mat"):
        NYUDepthV2(path, "train")
    bad = path.parent / "bad.txt"
    for text, message in [
        ("1\n7\n", r"outside 1\.\.6.*\[7\]"),
        ("0\n2\n", r"outside 1\.\.6.*\[0\]"),
        ("2\n2\n", r"more than once: \[2\]"),
        ("1\ntwo\n", r"bad.txt:2: expected one 1-based index"),
        ("\n", "lists no frames"),
    ]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            NYUDepthV2(path, "train", bad)
    with pytest.raises(FileNotFoundError, match="split file not found"):
        NYUDepthV2(path, "train", path.parent / "nope.txt")
    overlapping = path.parent / "overlap.mat"
    with h5py.File(overlapping, "w") as f:
        f.create_dataset("trainNdxs", data=np.array([[1.0, 2.0]]))
        f.create_dataset("testNdxs", data=np.array([[2.0, 3.0]]))
    with pytest.raises(ValueError, match=r"share frames \[2\]"):
        NYUDepthV2(path, "train", overlapping)
    fractional = path.parent / "fractional.mat"
    with h5py.File(fractional, "w") as f:
        f.create_dataset("trainNdxs", data=np.array([[1.0, 2.5]]))
    with pytest.raises(ValueError, match=r"non-integer indices: \[2.5\]"):
        NYUDepthV2(path, "train", fractional)
    with pytest.raises(ValueError, match=r"has no 'testNdxs' \(it has \['trainNdxs'\]\)"):
        NYUDepthV2(path, "test", fractional)


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        NYUDepthV2(tmp_path / "nyu_depth_v2_labeled.mat", "train", tmp_path / "split.txt")
    assert NYU_PAGE in str(info.value) and "never downloads" in str(info.value)


def test_files_of_the_wrong_kind_or_layout_are_named(tmp_path):
    split = tmp_path / "split.txt"
    split.write_text("1\n")
    not_hdf5 = tmp_path / "v5.mat"
    not_hdf5.write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    with pytest.raises(ValueError, match="not an HDF5"):
        NYUDepthV2(not_hdf5, "train", split)
    for missing in ("depths", "sceneTypes"):
        path = tmp_path / f"no-{missing}.mat"
        write_labeled_mat(path, drop=(missing,))
        with pytest.raises(ValueError, match=rf"lacks dataset\(s\) \['{missing}'\]"):
            NYUDepthV2(path, "train", split)


def test_survives_pickling_and_reads_in_forked_workers(nyu):
    path, splits, _ = nyu
    ds = NYUDepthV2(path, "train", splits)
    expected = [ds.load(i, ["rgb", "depth"]) for i in range(len(ds))]  # parent holds a handle now
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone.load(2, ["rgb"])["rgb"], expected[2]["rgb"])
    loader = DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="fork")
    batches = list(loader)
    got = np.concatenate([b["depth"].numpy() for b in batches])
    np.testing.assert_array_equal(got, np.stack([e["depth"] for e in expected]))
    assert np.concatenate([b["label"].numpy() for b in batches]).tolist() == [ds.label(i) for i in range(4)]
