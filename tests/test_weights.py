"""Local weights files: safe loading, foreign heads and stems adapted, bad files named."""

import pytest
import torch

from pldistill.models import WeightsError, build_model, classifier_outputs, read_state_dict


def test_foreign_head_starts_fresh_and_body_weights_load(tmp_path, capsys):
    source = build_model("resnet10t", 1, 10)
    path = tmp_path / "ten_classes.pt"
    torch.save(source.state_dict(), path)
    assert classifier_outputs("resnet10t", read_state_dict(path)) == 10
    model = build_model("resnet10t", 1, 4, weights=path)
    assert model.fc.out_features == 4
    torch.testing.assert_close(model.conv1[0].weight, source.conv1[0].weight)
    assert "the head starts fresh" in capsys.readouterr().out


def test_rgb_stem_weights_are_adapted_for_a_one_channel_modality(tmp_path):
    rgb = build_model("resnet10t", 3, 4)
    path = tmp_path / "rgb.pt"
    torch.save(rgb.state_dict(), path)
    depth = build_model("resnet10t", 1, 4, weights=path)
    # timm's adapt_input_conv sums the RGB filters into one channel
    torch.testing.assert_close(depth.conv1[0].weight, rgb.conv1[0].weight.sum(1, keepdim=True))


def test_pldistill_checkpoints_are_accepted_as_weights(tmp_path):
    model = build_model("mobilenetv3_small_100", 3, 4)
    path = tmp_path / "student.pt"
    torch.save({"state_dict": model.state_dict(), "model": "mobilenetv3_small_100"}, path)
    loaded = build_model("mobilenetv3_small_100", 3, 4, weights=path)
    torch.testing.assert_close(loaded.classifier.weight, model.classifier.weight)


def test_weights_of_another_architecture_are_refused_by_name(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save(build_model("resnet10t", 3, 4).state_dict(), path)
    with pytest.raises(WeightsError, match=r"resnet\.pt: keys not in mobilenetv3_small_100"):
        build_model("mobilenetv3_small_100", 3, 4, weights=path)


def test_files_that_would_unpickle_code_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, path)
    with pytest.raises(WeightsError, match=r"evil\.pt: not a loadable tensor file"):
        read_state_dict(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a loadable tensor file"):
        read_state_dict(path)
