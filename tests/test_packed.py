import json
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest
from torch.utils.data import DataLoader, Dataset

from pldistill.data import PairedDataset, SyntheticShapes
from pldistill.data.packed import SCHEMA_VERSION, PackedDataset, PackedDatasetError, pack


@pytest.fixture(scope="module")
def source():
    return SyntheticShapes("train", 64, image_size=32, seed=0)


@pytest.fixture(scope="module")
def packed_path(source, tmp_path_factory):
    return pack(source, tmp_path_factory.mktemp("packed") / "train.h5", progress=False)


class Tampered(PairedDataset):
    """The source split, but sample ``at`` raises or comes back with another rgb shape."""

    def __init__(self, source, at, *, fail=None, shape=None):
        self.source, self.at, self.fail, self.shape = source, at, fail, shape
        self.modalities, self.classes = source.modalities, source.classes

    def __len__(self):
        return len(self.source)

    def load(self, index, names):
        if index == self.at and self.fail is not None:
            raise self.fail
        arrays = self.source.load(index, names)
        if index == self.at and self.shape is not None:
            arrays = {**arrays, "rgb": np.zeros(self.shape, np.uint8)}
        return arrays

    def label(self, index):
        return self.source.label(index)


class Empty(Tampered):
    def __init__(self, source):
        super().__init__(source, at=-1)

    def __len__(self):
        return 0


def assert_same_split(packed, source):
    assert len(packed) == len(source)
    assert packed.classes == source.classes
    assert packed.modalities == source.modalities
    names = list(source.modalities)
    for i in range(len(source)):
        got, want = packed.load(i, names), source.load(i, names)
        for n in names:
            assert got[n].dtype == want[n].dtype and got[n].tobytes() == want[n].tobytes()
        assert packed.label(i) == source.label(i)


def test_packed_split_reads_back_every_modality_and_label_byte_identical(source, packed_path):
    assert_same_split(PackedDataset(packed_path), source)


def test_packed_file_has_schema_attributes_and_one_chunk_per_sample(source, packed_path):
    with h5py.File(packed_path, "r") as f:
        assert int(f.attrs["schema_version"]) == SCHEMA_VERSION == 1
        assert json.loads(f.attrs["classes"]) == source.classes
        assert json.loads(f.attrs["modalities"]) == {
            "rgb": {"kind": "image", "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3},
            "depth": {"kind": "depth", "channels": 1, "mean": [6.0], "std": [3.0]},
        }
        assert "SyntheticShapes" in f.attrs["source"] and "64 samples" in f.attrs["source"]
        assert f.attrs["pldistill_version"]
        assert f["rgb"].shape == (64, 32, 32, 3) and f["rgb"].chunks == (1, 32, 32, 3)
        assert f["depth"].shape == (64, 32, 32) and f["depth"].chunks == (1, 32, 32)
        assert f["label"].shape == (64,) and f["label"].dtype == np.int64


def test_load_reads_only_the_requested_modalities(packed_path, monkeypatch):
    read = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        read.append(self.name)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    ds = PackedDataset(packed_path)
    read.clear()  # opening reads the labels once
    sample = ds.load(3, ["rgb"])
    assert list(sample) == ["rgb"] and read == ["/rgb"]
    ds.label(3)
    assert read == ["/rgb"]  # labels are held in memory


def test_rgb_stays_readable_when_the_depth_dataset_is_gone(packed_path, tmp_path, source):
    copy = shutil.copy(packed_path, tmp_path / "copy.h5")
    ds = PackedDataset(copy)  # validated while complete, handle not yet opened
    with h5py.File(copy, "a") as f:
        del f["depth"]
    np.testing.assert_array_equal(ds.load(5, ["rgb"])["rgb"], source.load(5, ["rgb"])["rgb"])
    with pytest.raises(PackedDatasetError, match="depth"):
        ds.load(5, ["depth"])
    with pytest.raises(PackedDatasetError, match=r"lacks the datasets \['depth'\]"):
        PackedDataset(copy)  # and a fresh open refuses the incomplete file


class WithPid(Dataset):
    def __init__(self, packed):
        self.packed = packed

    def __len__(self):
        return len(self.packed)

    def __getitem__(self, i):
        sample = self.packed[i]
        return {**sample, "index": i, "pid": os.getpid(), "handle_pid": self.packed._pid}


def test_dataloader_workers_each_open_their_own_handle(packed_path, source):
    ds = PackedDataset(packed_path)
    ds.load(0, ["rgb"])  # the parent holds an open handle before the workers fork
    loader = DataLoader(WithPid(ds), batch_size=8, num_workers=2)
    pids = set()
    for batch in loader:
        assert (batch["pid"] == batch["handle_pid"]).all()
        pids.update(batch["pid"].tolist())
        for k, i in enumerate(batch["index"].tolist()):
            want = source.load(i, ["rgb", "depth"])
            np.testing.assert_array_equal(batch["rgb"][k].numpy(), want["rgb"])
            np.testing.assert_array_equal(batch["depth"][k].numpy(), want["depth"])
            assert batch["label"][k] == source.label(i)
    assert len(pids) == 2 and os.getpid() not in pids
    assert ds._pid == os.getpid()  # the parent's handle is untouched and still works
    np.testing.assert_array_equal(ds.load(1, ["rgb"])["rgb"], source.load(1, ["rgb"])["rgb"])


def test_packed_dataset_pickles_without_its_handle_and_reads_after(packed_path, source):
    ds = PackedDataset(packed_path)
    ds.load(0, ["rgb"])
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._file is None and copy._pid is None
    assert_same_split(copy, source)


@pytest.mark.parametrize("interrupt", [RuntimeError("disk read failed"), KeyboardInterrupt()])
def test_interrupted_pack_leaves_no_file_and_keeps_the_old_one(source, tmp_path, interrupt):
    target = tmp_path / "train.h5"
    with pytest.raises(type(interrupt)):
        pack(Tampered(source, 40, fail=interrupt), target, progress=False)
    assert list(tmp_path.iterdir()) == []  # no target, no temp file
    pack(source, target, progress=False)
    before = target.read_bytes()
    with pytest.raises(type(interrupt)):
        pack(Tampered(source, 40, fail=interrupt), target, progress=False)
    assert list(tmp_path.iterdir()) == [target] and target.read_bytes() == before


def test_newer_schema_is_refused_with_upgrade_advice(packed_path, tmp_path):
    copy = shutil.copy(packed_path, tmp_path / "future.h5")
    with h5py.File(copy, "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(PackedDatasetError, match="schema version 2.*upgrade pldistill"):
        PackedDataset(copy)


def test_missing_or_foreign_files_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PackedDataset(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(PackedDatasetError, match="not a readable HDF5 file"):
        PackedDataset(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(PackedDatasetError, match="not a pldistill packed split"):
        PackedDataset(tmp_path / "other.h5")


def test_shape_mismatch_names_the_sample_and_both_shapes(source, tmp_path):
    message = r"'rgb': sample 7 has shape \(16, 16, 3\) but sample 0 has \(32, 32, 3\)"
    with pytest.raises(PackedDatasetError, match=message):
        pack(Tampered(source, 7, shape=(16, 16, 3)), tmp_path / "bad.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "compression, filter_, level",
    [("none", None, None), ("lzf", "lzf", None), ("gzip-1", "gzip", 1), ("gzip", "gzip", 4)],
)
def test_every_compression_round_trips(source, tmp_path, compression, filter_, level):
    path = pack(source, tmp_path / f"{compression}.h5", compression=compression, progress=False)
    with h5py.File(path, "r") as f:
        for name in ("rgb", "depth"):
            assert f[name].compression == filter_ and f[name].compression_opts == level
    assert_same_split(PackedDataset(path), source)


def test_bad_compression_and_empty_dataset_are_refused_before_writing(source, tmp_path):
    with pytest.raises(PackedDatasetError, match="unknown compression 'zstd'"):
        pack(source, tmp_path / "x.h5", compression="zstd")
    with pytest.raises(PackedDatasetError, match="empty"):
        pack(Empty(source), tmp_path / "x.h5")
    assert list(tmp_path.iterdir()) == []
