"""Modality dropout (engine/modality_dropout.py): whole parts of a stacked teacher input zeroed while it trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pldistill.engine.modality_dropout import ModalityDropout
from pldistill.recipe import RecipeError, load_recipe

RECIPES = Path(__file__).parents[1] / "recipes"


def test_each_sample_keeps_or_zeroes_whole_parts_and_never_all_of_them():
    drop = ModalityDropout(((0, 3), (3, 4)), p=0.6, seed=0)
    x = torch.randn(512, 4, 5, 5) + 10  # no real channel is zero
    y = drop(x, step=7)
    zeroed = (y == 0).flatten(2).all(2)  # (sample, channel): a whole map zeroed
    rgb, depth = zeroed[:, :3], zeroed[:, 3]
    assert (rgb.all(1) | ~rgb.any(1)).all()  # RGB's three channels go together
    assert not (rgb.all(1) & depth).any()  # never both parts
    kept = ~zeroed
    torch.testing.assert_close(y[kept], x[kept])  # what is kept is untouched
    # P(a part dropped) = p − p²/2 for two parts (both drawn dropped → one of them restored at random)
    assert depth.float().mean().item() == pytest.approx(0.6 - 0.36 / 2, abs=0.06)
    assert rgb.all(1).float().mean().item() == pytest.approx(0.6 - 0.36 / 2, abs=0.06)


def test_the_draw_is_fixed_by_seed_rank_and_step():
    drop = ModalityDropout(((0, 3), (3, 4)), p=0.5, seed=3)
    assert torch.equal(drop.keep(64, 5), drop.keep(64, 5))  # a resumed stage drops what it would have
    assert not torch.equal(drop.keep(64, 5), drop.keep(64, 6))
    assert not torch.equal(drop.keep(64, 5), ModalityDropout(((0, 3), (3, 4)), 0.5, 3, rank=1).keep(64, 5))
    assert ModalityDropout(((0, 3), (3, 4)), 0.0, 3).keep(64, 5).all()


def _recipe(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_a_recipe_refuses_modality_dropout_on_a_teacher_that_reads_no_stack(tmp_path):
    path = _recipe(tmp_path, f"base: {RECIPES}/depth_to_rgb.yaml\nname: x\n"
                             "teacher: {model: resnet10t, modality: depth, modality_dropout: 0.3}\n")
    with pytest.raises(RecipeError, match="is not a stack"):
        load_recipe(path)


def test_modality_dropout_changes_the_stacked_teachers_hash_only(tmp_path):
    stacked = f"base: {RECIPES}/rgbd_to_rgb.yaml\nname: x\n"
    plain = load_recipe(_recipe(tmp_path, stacked))
    dropped = load_recipe(_recipe(tmp_path, stacked + "teacher: {model: resnet10t, modality: rgbd, "
                                                     "modality_dropout: 0.3}\n"))
    assert dropped.teacher_hash() != plain.teacher_hash()
    # the same-modality control swaps the teacher onto the student's modality: the key no longer matters
    control = dropped.model_copy(update={"teacher": dropped.teacher.model_copy(update={"modality": "rgb"})})
    reference = plain.model_copy(update={"teacher": plain.teacher.model_copy(update={"modality": "rgb"})})
    assert control.teacher_hash() == reference.teacher_hash()


def test_fit_drops_parts_of_the_training_inputs_only():
    from pldistill.engine import Schedule, fit
    from pldistill.models import TappedModel, build_model
    from random_pairs import RandomPairs

    torch.manual_seed(0)
    model = TappedModel(build_model("test_efficientnet_ln", 3, 3, None, 16), [-1])
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append((model.training, args[0].detach().clone())))
    loader = torch.utils.data.DataLoader(RandomPairs(), batch_size=8, drop_last=True)
    fit(model, "rgb", loader, loader, schedule=Schedule(epochs=1, lr=1e-3, weight_decay=0.0),
        device=torch.device("cpu"), input_dropout=ModalityDropout(((0, 1), (1, 3)), p=0.5, seed=0))
    train = torch.cat([x for training, x in seen if training])
    test = torch.cat([x for training, x in seen if not training])
    first_zeroed = (train[:, 0] == 0).flatten(1).all(1)
    assert 0 < first_zeroed.float().mean() < 1  # some training samples lost the first part
    assert not (test[:, 0] == 0).flatten(1).all(1).any()  # evaluation sees the whole input


def test_the_teacher_stage_drops_the_stacks_parts_by_their_channels(tmp_path):
    from pldistill.stages.teacher import _modality_dropout

    recipe = load_recipe(_recipe(tmp_path, f"base: {RECIPES}/rgbd_moddrop_to_rgb.yaml\nname: x\n"))
    drop = _modality_dropout(recipe)
    assert drop.parts == ((0, 3), (3, 4)) and drop.p == 0.5 and drop.seed == recipe.seed
    control = recipe.model_copy(update={"teacher": recipe.teacher.model_copy(update={"modality": "rgb"})})
    assert _modality_dropout(control) is None  # the same-modality control's teacher reads one modality
