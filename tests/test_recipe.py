from pathlib import Path

import pytest
import yaml

from pldistill.recipe import RecipeError, load_recipe, parse_recipe

RECIPES = sorted(Path(__file__).parents[1].glob("recipes/*.yaml"))


def minimal() -> dict:
    return {
        "name": "t",
        "data": {"kind": "synthetic_shapes", "num_train": 64, "num_test": 32},
        "teacher": {"model": "resnet10t", "modality": "depth"},
        "student": {"model": "mobilenetv3_small_100", "modality": "rgb"},
        "distill": {"losses": [{"name": "sp", "weight": 100.0, "pairs": [{"teacher": -1, "student": -1}]}]},
        "schedule": {"epochs": 1, "batch_size": 8, "lr": 0.001},
    }


def write(tmp_path: Path, raw) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return path


def test_every_shipped_recipe_validates(tmp_path):
    from test_nyu import write_labeled_mat
    from test_real_recipes import REAL as REAL_DATA

    assert len(RECIPES) > 0
    for path in RECIPES:
        if path.stem in REAL_DATA:  # need a real data set: test_real_recipes.py checks them with and without it
            continue
        raw = yaml.safe_load(path.read_text())
        if raw.get("data", {}).get("kind") == "nyu_depth_v2":  # needs the user's file: a clear error, then a stand-in file
            with pytest.raises(RecipeError, match=r"data: NYU Depth v2 labeled file not found .* never downloads"):
                load_recipe(path)
            write_labeled_mat(tmp_path / "nyu.mat")
            (tmp_path / "ids.txt").write_text("1\n2\n3\n")
            raw["data"].update(path=str(tmp_path / "nyu.mat"), split_file=None,
                               train_split=str(tmp_path / "ids.txt"), test_split=str(tmp_path / "ids.txt"))
            path = write(tmp_path, raw).rename(tmp_path / path.name)
        recipe = load_recipe(path)
        assert recipe.name == path.stem


def test_unknown_key_names_file_key_and_suggestion(tmp_path):
    raw = minimal()
    raw["schedule"]["epochz"] = 3
    path = write(tmp_path, raw)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message
    assert "schedule.epochz: unknown key (did you mean 'epochs'?)" in message


def test_wrong_type_names_the_key(tmp_path):
    raw = minimal()
    raw["schedule"]["batch_size"] = "sixty-four"
    with pytest.raises(RecipeError, match=r"schedule\.batch_size: .*integer.*sixty-four"):
        load_recipe(write(tmp_path, raw))


def test_non_positive_values_are_refused(tmp_path):
    raw = minimal()
    raw["schedule"]["lr"] = 0.0
    with pytest.raises(RecipeError, match=r"schedule\.lr: .*greater than 0"):
        load_recipe(write(tmp_path, raw))


def test_unknown_timm_model_is_refused_with_close_matches(tmp_path):
    raw = minimal()
    raw["student"]["model"] = "mobilenetv3_smal_100"
    with pytest.raises(RecipeError, match=r"student\.model: timm has no model named 'mobilenetv3_smal_100' \(did you mean 'mobilenetv3_small_100'"):
        load_recipe(write(tmp_path, raw))


def test_modality_the_dataset_lacks_is_refused(tmp_path):
    raw = minimal()
    raw["teacher"]["modality"] = "dpeth"
    with pytest.raises(RecipeError, match=r"teacher\.modality: the dataset 'synthetic_shapes' has no modality 'dpeth' \(did you mean 'depth'\?\)"):
        load_recipe(write(tmp_path, raw))


def test_layer_index_out_of_range_is_refused(tmp_path):
    raw = minimal()
    raw["distill"]["losses"][0]["pairs"][0]["student"] = 9
    with pytest.raises(RecipeError, match=r"distill\.losses\.0\.pairs\.0\.student: stage 9 is out of range; mobilenetv3_small_100 has 5 stages"):
        load_recipe(write(tmp_path, raw))


def test_missing_required_key(tmp_path):
    raw = minimal()
    del raw["teacher"]
    with pytest.raises(RecipeError, match=r"teacher: required key is missing"):
        load_recipe(write(tmp_path, raw))


def test_malformed_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "name: [unclosed\n"))


def test_yaml_that_would_execute_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, text))
    assert not marker.exists()


def test_teacher_hash_ignores_student_but_not_teacher_settings():
    base = parse_recipe(minimal())
    other_student = minimal()
    other_student["student"]["model"] = "regnetx_002"
    assert parse_recipe(other_student).teacher_hash() == base.teacher_hash()
    other_teacher = minimal()
    other_teacher["teacher"]["model"] = "resnet18"
    assert parse_recipe(other_teacher).teacher_hash() != base.teacher_hash()


def test_flagship_teacher_hash_is_stable_so_cached_teachers_stay_valid():
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "depth_to_rgb.yaml")
    # change only with a cache-invalidation note (484e2b5ede8b8a03 until the hash became an exclude-list)
    assert recipe.teacher_hash() == "73407364ddc64092"
    raw = recipe.to_dict()
    raw["data"]["depth_encoding"] = "colour"
    assert parse_recipe(raw).teacher_hash() != recipe.teacher_hash()


def test_recipe_is_frozen():
    recipe = parse_recipe(minimal())
    with pytest.raises(Exception):
        recipe.seed = 3


def _with_losses(tmp_path, losses, batch_size=8):
    raw = minimal()
    raw["distill"]["losses"] = losses
    raw["schedule"]["batch_size"] = batch_size
    return write(tmp_path, raw)


def test_every_loss_name_is_accepted_with_the_right_inputs(tmp_path):
    pair = [{"teacher": -1, "student": -1}]
    losses = [{"name": n, "weight": 1.0, "pairs": pair} for n in ("sp", "at", "rkd", "cc")]
    losses.append({"name": "kd", "weight": 1.0, "temperature": 2.0})
    recipe = load_recipe(_with_losses(tmp_path, losses))
    assert [loss.name for loss in recipe.distill.losses] == ["sp", "at", "rkd", "cc", "kd"]


def test_kd_with_layer_pairs_is_refused(tmp_path):
    path = _with_losses(tmp_path, [{"name": "kd", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]}])
    with pytest.raises(RecipeError, match=r"distill\.losses\.0: 'kd' compares logits; remove its 'pairs'"):
        load_recipe(path)


def test_feature_loss_without_pairs_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"'at' needs at least one layer pair"):
        load_recipe(_with_losses(tmp_path, [{"name": "at", "weight": 1.0}]))


@pytest.mark.parametrize("name, batch, minimum", [("rkd", 2, 3), ("sp", 1, 2), ("cc", 1, 2)])
def test_relational_losses_refuse_batches_too_small_at_load(tmp_path, name, batch, minimum):
    path = _with_losses(tmp_path, [{"name": name, "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]}], batch)
    with pytest.raises(RecipeError, match=rf"distill\.losses\.0: {name.upper()} compares samples within a batch "
                                          rf"and needs batches of at least {minimum}; schedule.batch_size is {batch}"):
        load_recipe(path)


def test_attention_transfer_on_a_1x1_layer_is_refused_with_the_sizes_to_pick_from(tmp_path):
    raw = minimal()
    raw["data"]["image_size"] = 16  # resnet10t's last stage (stride 32) is 1×1 at 16 px
    raw["distill"]["losses"] = [{"name": "at", "weight": 1.0, "pairs": [{"teacher": 1, "student": 1},
                                                                         {"teacher": -1, "student": -1}]}]
    with pytest.raises(RecipeError, match=r"distill\.losses\.0\.pairs\.1\.teacher: stage -1 of resnet10t is 1×1 "
                                          r"at 16 px.*map is a constant and attention transfer would always be 0.*0: 8×8"):
        load_recipe(write(tmp_path, raw))
    raw["distill"]["losses"][0]["pairs"].pop()  # the 4×4 pair alone is fine
    assert load_recipe(write(tmp_path, raw)).distill.losses[0].name == "at"


def test_fixed_size_models_are_built_for_the_data_size_and_checked_there(tmp_path):
    raw = minimal()
    raw["data"]["image_size"] = 32
    raw["student"]["model"] = "vit_tiny_patch16_224"  # built with img_size=32: a 2×2 token grid
    raw["distill"]["losses"] = [{"name": "sp", "weight": 1.0, "pairs": "auto"}]
    assert load_recipe(write(tmp_path, raw)).student.model == "vit_tiny_patch16_224"
    raw["student"]["model"] = "mixer_s32_224"  # 32 px / patch 32 = one token: no map to attend over
    raw["distill"]["losses"] = [{"name": "at", "weight": 1.0, "pairs": [{"teacher": 2, "student": -1}]}]
    with pytest.raises(RecipeError, match=r"pairs\.0\.student: stage -1 of mixer_s32_224 is 1×1 at 32 px"):
        load_recipe(write(tmp_path, raw))


def _teacher_weights(tmp_path, num_classes):
    import torch

    from pldistill.models import build_model

    path = tmp_path / f"teacher_{num_classes}.pt"
    torch.save(build_model("resnet10t", 1, num_classes).state_dict(), path)
    return path


def test_kd_with_a_teacher_of_another_label_space_is_refused(tmp_path):
    raw = minimal()
    raw["teacher"].update(weights=str(_teacher_weights(tmp_path, 10)), train=False)
    raw["distill"]["losses"] = [{"name": "sp", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]},
                                {"name": "kd", "weight": 1.0}]
    with pytest.raises(RecipeError, match=r"distill\.losses\.1: KD needs the teacher and the student to predict "
                                          r"the same classes.*predicts 10 classes and synthetic_shapes has 4"):
        load_recipe(write(tmp_path, raw))
    raw["distill"]["losses"].pop()  # feature losses need no shared label space
    assert not load_recipe(write(tmp_path, raw)).teacher.train
    raw["teacher"]["weights"] = str(_teacher_weights(tmp_path, 4))  # same classes: KD is fine
    raw["distill"]["losses"].append({"name": "kd", "weight": 1.0})
    assert len(load_recipe(write(tmp_path, raw)).distill.losses) == 2


def test_teacher_used_as_is_needs_weights_and_missing_weights_are_named(tmp_path):
    raw = minimal()
    raw["teacher"]["train"] = False
    with pytest.raises(RecipeError, match=r"teacher: train: false uses the teacher as it is, so it needs 'weights'"):
        load_recipe(write(tmp_path, raw))
    raw["teacher"]["weights"] = str(tmp_path / "nope.pt")
    with pytest.raises(RecipeError, match=r"teacher\.weights: weights file .*nope\.pt not found: pldistill never "
                                          r"downloads weights"):
        load_recipe(write(tmp_path, raw))


def test_pool_is_refused_for_losses_that_need_maps_or_logits(tmp_path):
    path = _with_losses(tmp_path, [{"name": "at", "weight": 1.0, "pool": True, "pairs": [{"teacher": -1, "student": -1}]}])
    with pytest.raises(RecipeError, match=r"distill\.losses\.0: 'pool' applies to \['cc', 'rkd', 'sp'\]; 'at' needs "
                                          r"spatial maps$"):
        load_recipe(path)
    ok = [{"name": n, "weight": 1.0, "pool": True, "pairs": [{"teacher": -1, "student": -1}]} for n in ("sp", "rkd", "cc")]
    assert all(loss.pool for loss in load_recipe(_with_losses(tmp_path, ok)).distill.losses)


def test_unknown_loss_name_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"distill\.losses\.0\.name"):
        load_recipe(_with_losses(tmp_path, [{"name": "crd", "weight": 1.0}]))


def test_auto_pairs_spread_by_relative_depth_and_end_last_to_last():
    from pldistill.recipe import auto_pairs

    assert [(p.teacher, p.student) for p in auto_pairs(5, 5)] == [(1, 1), (3, 3), (4, 4)]
    assert [(p.teacher, p.student) for p in auto_pairs(12, 5)] == [(3, 1), (7, 3), (11, 4)]


def test_auto_pairs_are_resolved_at_load(tmp_path):
    recipe = load_recipe(_with_losses(tmp_path, [{"name": "fitnet", "weight": 1.0, "pairs": "auto"}]))
    assert [(p.teacher, p.student) for p in recipe.distill.losses[0].pairs] == [(1, 1), (3, 3), (4, 4)]


def test_shipped_comparisons_validate_every_variant():
    from pldistill.compare import load_comparison

    from test_real_recipes import REAL as REAL_DATA

    files = sorted(Path(__file__).parents[1].glob("recipes/compare/*.yaml"))
    assert files
    for path in files:
        if yaml.safe_load(path.read_text())["base"].removeprefix("../").removesuffix(".yaml") in REAL_DATA:
            continue  # a real data set's path comes as an override: test_real_recipes.py checks these
        comparison, base, variants = load_comparison(path)
        assert set(variants) == set(comparison.variants)
        for name, v in variants.items():
            control, mixup = comparison.variants[name].teacher_modality, comparison.variants[name].mixup
            assert v.data == base.data
            assert v.student == base.student.model_copy(update={"mixup": base.student.mixup if mixup is None else mixup})
            # a control on one modality has no stack to drop parts of (rgbd_moddrop_to_rgb_privileged.yaml)
            dropout = base.teacher.modality_dropout if control is None or control in base.data.stack else 0.0
            expected = base.teacher.model_copy(update={"modality": control or base.teacher.modality,
                                                       "modality_dropout": dropout})
            assert v.teacher == expected


def test_a_bad_comparison_variant_is_named_before_anything_trains(tmp_path):
    from pldistill.compare import load_comparison

    base = write(tmp_path, minimal())
    cmp = tmp_path / "cmp.yaml"
    cmp.write_text(yaml.safe_dump({"name": "c", "base": base.name, "variants": {
        "ok": [{"name": "sp", "weight": 1.0, "pairs": [{"teacher": -1, "student": -1}]}],
        "bad": [{"name": "sp", "weight": 1.0, "pairs": [{"teacher": 9, "student": -1}]}]}}))
    with pytest.raises(RecipeError, match=r"cmp\.yaml: variants\.bad\.0\.pairs\.0\.teacher: stage 9 is out of range"):
        load_comparison(cmp)
    cmp.write_text(yaml.safe_dump({"name": "c", "base": base.name, "variants": {"scratch": []}}))
    with pytest.raises(RecipeError, match=r"cmp\.yaml: variants: .*'scratch'"):
        load_comparison(cmp)
