"""SUN RGB-D frames in their original layout: the 3-bit depth rotation, 16-bit lossless, scene labels; the two real frames."""

import numpy as np
import pytest
from PIL import Image

from pldistill.data.sunrgbd import SUNRGBDData, SUNRGBDFrames, decode_depth, find_frames
from real_layouts import encode_sunrgbd_depth, extract_members, shared, skip_reason, write_sunrgbd_frame

TOY = shared("sunrgbd-toy.tar.gz")
MM = np.array([[1, 800, 1234], [2500, 8191, 9000]], dtype=np.uint16)  # 9000 mm: rotation wraps high bits


def test_decoding_undoes_the_3_bit_rotation_exactly():
    stored = encode_sunrgbd_depth(MM)
    assert stored[0, 0] == 8 and stored[1, 1] == 65528  # millimetres << 3 ...
    assert stored[1, 2] == ((9000 << 3) & 0xFFFF) | (9000 >> 13)  # ... with the top bits wrapped round
    np.testing.assert_allclose(decode_depth(stored), MM / 1000.0, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="16-bit"):
        decode_depth(np.array([[70000]], dtype=np.int32))


@pytest.fixture
def frames(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (2, 3, 3), dtype=np.uint8)
    write_sunrgbd_frame(tmp_path, "kv1/NYUdata/NYU0001", "office", MM, rgb)
    write_sunrgbd_frame(tmp_path, "kv2/kinect2data/000002", "bedroom", MM[::-1].copy(), rgb)
    write_sunrgbd_frame(tmp_path, "realsense/lg/000003", "office", MM, rgb)
    return tmp_path


def test_frames_are_found_at_any_depth_with_16_bit_depth_read_losslessly(frames):
    assert find_frames(frames, "depth_bfx") == ["kv1/NYUdata/NYU0001", "kv2/kinect2data/000002",
                                                "realsense/lg/000003"]
    with Image.open(next((frames / "kv1/NYUdata/NYU0001/depth_bfx").iterdir())) as image:
        assert image.mode == "I;16"
    every = SUNRGBDFrames(frames, "train", test_fraction=0.01)  # rounds to no test frame
    assert every.classes == ["bedroom", "office"] and len(every) == 3
    sample = every.load(0, ["rgb", "depth"])
    assert sample["rgb"].shape == (2, 3, 3) and sample["depth"].dtype == np.float32
    np.testing.assert_allclose(sample["depth"], np.minimum(MM / 1000.0, 8.0), atol=1e-6)  # toolbox clip at 8 m
    raw = SUNRGBDFrames(frames, "train", depth="raw", test_fraction=0.01, max_depth=None).load(0, ["depth"])
    assert raw["depth"][0, 0] == 0 and raw["depth"][1, 2] == pytest.approx(9.0)  # holes stay 0; no clip


def test_split_by_list_or_seeded_hold_out_and_class_lists(frames, tmp_path):
    listing = tmp_path / "test.txt"
    listing.write_text("/n/fs/sun3d/data/SUNRGBD/kv2/kinect2data/000002\n")  # the toolbox's absolute paths
    test = SUNRGBDFrames(frames, "test", test_list=listing)
    assert test.frames == ["kv2/kinect2data/000002"] and test.split_record() == {}
    held = SUNRGBDFrames(frames, "test", test_fraction=0.34, seed=1)
    assert len(held) == 1 and held.split_record()["sunrgbd/test"]["frames"] == held.frames
    merged = SUNRGBDFrames(frames, "train", classes=["bedroom"], test_fraction=0.01)
    assert merged.classes == ["bedroom", "other"] and sorted(merged.label(i) for i in range(3)) == [0, 1, 1]


@pytest.mark.skipif(not TOY.exists(), reason=skip_reason("sunrgbd-toy.tar.gz"))
def test_the_two_real_frames_decode_to_plausible_metres(tmp_path):
    extract_members(TOY, tmp_path, lambda n: "/fullres/" not in n)
    cfg = SUNRGBDData(kind="sunrgbd", root=str(tmp_path), test_fraction=0.5)
    assert cfg.classes == ["office"] and cfg.modalities == ["rgb", "depth"]
    frames = [ds for ds in cfg.build()]
    assert sorted(f for ds in frames for f in ds.frames) == ["images/2014-12-18_11-31-54_260595134347",
                                                            "images/img_0063"]
    for ds in frames:
        stored = np.array(Image.open(next((tmp_path / ds.frames[0] / "depth").iterdir())))
        assert stored.dtype == np.uint16 and (stored % 8 == 0).all()  # millimetres below 8192 rotated by 3 bits
        sample = ds.load(0, ["rgb", "depth"])
        depth = sample["depth"]
        assert sample["rgb"].shape[:2] == depth.shape  # depth registered to the image
        median = float(np.median(depth[depth > 0]))
        assert 0.5 < median < 10 and depth.max() <= 8.0  # an office, in metres
        assert not 0.5 < np.median(stored[stored > 0]) / 1000 < 10  # without the decoding: implausible
        raw = SUNRGBDFrames(tmp_path, ds.split, depth="raw", test_fraction=0.5).load(0, ["depth"])["depth"]
        assert (raw == 0).mean() > 0.01 and (depth == 0).mean() < (raw == 0).mean()  # holes, filled in bfx
