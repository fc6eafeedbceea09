"""Vector models (pldistill/nets): built by name beside timm, with timm's interface, tapped per hidden layer."""

import numpy as np
import pytest
import torch

from pldistill.data.protocol import Modality, encode
from pldistill.data.transforms import JointTransform
from pldistill.model_names import UnknownModelError, check_model_name
from pldistill.models import (TappedModel, WeightsError, build_model, checked_state, classifier_outputs,
                              feature_shapes, takes_vectors)
from pldistill.nets import is_net


def test_names_follow_the_width_x_depth_pattern_and_timm_keeps_its_own():
    assert is_net("mlp_256x3") and takes_vectors("mlp_16x1")
    assert not is_net("resnet10t") and not takes_vectors("resnet10t")
    check_model_name("mlp_64x2")
    check_model_name("mixer_b16_224")  # timm's MLP-Mixer is still timm's
    with pytest.raises(UnknownModelError, match=r"e\.g\. 'mlp_256x3'"):
        check_model_name("mlp_64")
    with pytest.raises(ValueError, match="width ≥ 1"):
        build_model("mlp_0x2", 6, 10)


def test_mlp_taps_every_hidden_block_in_one_forward():
    torch.manual_seed(0)
    model = build_model("mlp_32x3", in_chans=6, num_classes=10)
    assert len(model.feature_info) == 3 and model.feature_info[-1]["num_chs"] == 32
    tapped = TappedModel(model, [0, -1, 1]).eval()
    x = torch.randn(8, 6)
    logits, feats = tapped(x)
    assert logits.shape == (8, 10) and [f.shape for f in feats] == [(8, 32)] * 3
    torch.testing.assert_close(logits, model.eval()(x))  # the tapped forward is the plain forward
    # each tap is that block's output: recompute by hand
    h = x
    outs = []
    for block in model.blocks:
        h = block(h)
        outs.append(h)
    torch.testing.assert_close(feats[0], outs[0])
    torch.testing.assert_close(feats[1], outs[2])
    torch.testing.assert_close(feats[2], outs[1])
    assert feature_shapes("mlp_32x3", 6, 48) == ((32,), (32,), (32,))


def test_mlp_refuses_images_with_the_shape_it_got():
    with pytest.raises(ValueError, match=r"\(batch, features\) vectors, got a tensor of shape \(2, 1, 4, 4\)"):
        build_model("mlp_8x1", 16, 3)(torch.randn(2, 1, 4, 4))


def test_weights_round_trip_and_another_label_space_drops_only_the_head(tmp_path):
    model = build_model("mlp_16x2", 6, 10)
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    assert classifier_outputs("mlp_16x2", model.state_dict()) == 10
    again = build_model("mlp_16x2", 6, 10, weights=path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    five = build_model("mlp_16x2", 6, 5, weights=path)  # the head starts fresh, the blocks are loaded
    torch.testing.assert_close(five.blocks[0][0].weight, model.blocks[0][0].weight)
    with pytest.raises(WeightsError, match="do not fit"):
        checked_state(build_model("mlp_16x2", 7, 10), "mlp_16x2", path, quiet=True)


def test_vectors_are_encoded_as_given_and_never_augmented():
    m = Modality("mor", "vector", 6, (), ())
    v = np.arange(6, dtype=np.float32) - 2.5
    torch.testing.assert_close(encode(v, m), torch.from_numpy(v))
    image = Modality("rgb", "image", 3, (0.5,) * 3, (0.5,) * 3)
    t = JointTransform({"rgb": image, "mor": m}, hflip=True, shift=0.2, rotate=30, color_jitter=0.5, seed=0, size=16)
    rgb = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    for _ in range(5):
        out = t({"rgb": rgb, "mor": v})
        assert out["mor"] is v and out["rgb"].shape == (16, 16, 3)
